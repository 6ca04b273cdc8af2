#!/usr/bin/env bash
# Stores one release on the host, once: $BG_RELEASES_DIR/VERSION/app.
# Input: VERSION, SHA256, and SOURCE_FILE (an uploaded file) or SOURCE_URL (https).
# A version is immutable: the same version with other bytes is refused.
set -euo pipefail
# shellcheck source=/dev/null
. "$(dirname "$0")/lib.sh"
: "${VERSION:?}" "${SHA256:?}"
SOURCE_FILE=${SOURCE_FILE:-}
SOURCE_URL=${SOURCE_URL:-}
take_lock "$BG_RELEASE_LOCK" 600

dir="$BG_RELEASES_DIR/$VERSION"
if [ -f "$dir/app" ]; then
  have=$(sha256sum "$dir/app" | cut -d' ' -f1)
  if [ "$have" = "$SHA256" ]; then
    [ -z "$SOURCE_FILE" ] || rm -f "$SOURCE_FILE"
    echo "release $VERSION already on the host (sha256 $SHA256)"
    exit 0
  fi
  die "release $VERSION is already on the host with sha256 $have, but the artifact is now $SHA256.
Versions are immutable here: give the new build a new version string."
fi

incoming=$(mktemp -d "$BG_RELEASES_DIR/.incoming.XXXXXX")
trap 'rm -rf "$incoming"' EXIT
if [ -n "$SOURCE_URL" ]; then
  case "$SOURCE_URL" in https://*) ;; *) die "SOURCE_URL must be https (got $SOURCE_URL)" ;; esac
  curl -fsSL --proto '=https' --retry 3 --max-time 600 -o "$incoming/app" "$SOURCE_URL" ||
    die "could not download release $VERSION from $SOURCE_URL"
elif [ -n "$SOURCE_FILE" ]; then
  [ -f "$SOURCE_FILE" ] || die "uploaded artifact $SOURCE_FILE is missing on the host"
  cp "$SOURCE_FILE" "$incoming/app"
else
  die "release $VERSION needs SOURCE_FILE or SOURCE_URL"
fi
got=$(sha256sum "$incoming/app" | cut -d' ' -f1)
[ "$got" = "$SHA256" ] || die "release $VERSION failed verification: expected sha256 $SHA256, got $got"
chmod 0755 "$incoming/app"
chmod 0755 "$incoming"
echo "$SHA256" >"$incoming/sha256"
mv -T "$incoming" "$dir"
[ -z "$SOURCE_FILE" ] || rm -f "$SOURCE_FILE"
echo "release $VERSION stored (sha256 $SHA256)"
