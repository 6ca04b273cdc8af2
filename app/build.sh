#!/usr/bin/env bash
# Builds the demo app for one release: build.sh VERSION ARCH OUT
# Reproducible (-trimpath, no VCS stamp) so the same source gives the same sha256.
set -euo pipefail
version=$1 arch=$2 out=$3
cd "$(dirname "$0")"
mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
CGO_ENABLED=0 GOOS=linux GOARCH="$arch" go build -trimpath -buildvcs=false \
  -ldflags "-s -w -X main.version=$version" -o "$tmp" .
mv -f "$tmp" "$out"
