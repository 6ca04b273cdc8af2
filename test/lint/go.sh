#!/usr/bin/env bash
# gofmt and go vet for the demo app, as part of `npm test`.
set -euo pipefail
cd "$(dirname "$0")/../../app"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
  echo "gofmt: these files need formatting (run gofmt -w app/):" >&2
  echo "$unformatted" >&2
  exit 1
fi
go vet ./...
