#!/usr/bin/env bash
# Packs the Node.js demo app for one release: build.sh VERSION ARCH OUT
# OUT is a gzip'd tarball with server.js, migrate.js, package.json and migrations/ at its
# root. It is reproducible: the same sources give the same sha256 on every run and
# machine (sorted names, fixed mtime, owner and modes, no gzip name or timestamp).
# VERSION and ARCH are accepted for the build interface and not used: the app reads its
# version from BLUEGREEN_VERSION at run time, and JavaScript runs on any architecture.
set -euo pipefail
if [ "$#" -ne 3 ]; then
  echo "usage: $0 VERSION ARCH OUT" >&2
  exit 2
fi
out=$3
case $out in
/*) ;;
*) out=$PWD/$out ;;
esac
cd "$(dirname "$0")"
mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
# --mode sets the permission bits whatever the checkout's umask left: 0644 for files,
# 0755 for directories (and for a file tracked as executable).
tar --sort=name --mtime='@0' --owner=0 --group=0 --numeric-owner --mode='a+rX,u+w,go-w' --format=gnu \
  -cf - migrate.js migrations package.json server.js | gzip -n -9 >"$tmp"
mv -f "$tmp" "$out"
