#!/usr/bin/env bash
# gofmt and go vet for the Go code (the demo app, the in-VM load generator and the metrics checker), as part of `npm test`.
set -euo pipefail
root="$(dirname "$0")/../.."
for dir in app test/bench/loadgen test/support/promcheck; do
  unformatted=$(cd "$root/$dir" && gofmt -l .)
  if [ -n "$unformatted" ]; then
    echo "gofmt: these files in $dir need formatting (run gofmt -w $dir):" >&2
    echo "$unformatted" >&2
    exit 1
  fi
  (cd "$root/$dir" && go vet ./...)
done
