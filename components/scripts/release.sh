#!/usr/bin/env bash
# Stores one release on the host, once: $BG_RELEASES_DIR/VERSION/app.
# Input: VERSION, SHA256, SOURCE_FILE (an uploaded file) or SOURCE_URL (https),
#        KEEP (releases to keep, default 5).
# A version is immutable: the same version with other bytes is refused.
# Afterwards the oldest releases beyond KEEP are removed, never one a slot uses.
set -euo pipefail
# shellcheck source=/dev/null
. "$(dirname "$(readlink -f "$0")")/lib.sh"
: "${VERSION:?}" "${SHA256:?}"
SOURCE_FILE=${SOURCE_FILE:-}
SOURCE_URL=${SOURCE_URL:-}
KEEP=${KEEP:-5}
take_lock "$BG_RELEASE_LOCK" 600

# prune: keep this version, the KEEP newest, and whatever either slot's current link uses.
prune() {
  local in_use=" $VERSION " kept=0 r name removed=""
  for c in blue green; do
    r=$(readlink "$(slot_dir "$c")/current" 2>/dev/null || true)
    [ -z "$r" ] || in_use="$in_use$(basename "$r") "
  done
  while read -r r; do
    name=$(basename "$r")
    kept=$((kept + 1))
    case "$in_use" in *" $name "*) continue ;; esac
    if [ "$kept" -gt "$KEEP" ]; then
      rm -rf "$r"
      removed="$removed $name"
    fi
  done < <(find "$BG_RELEASES_DIR" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%T@ %p\n' | sort -rn | cut -d' ' -f2-)
  if [ -n "$removed" ]; then
    audit release-prune "removed=${removed# } keep=$KEEP" ok
    echo "removed old releases:$removed"
  fi
}

dir="$BG_RELEASES_DIR/$VERSION"
if [ -f "$dir/app" ]; then
  have=$(sha256sum "$dir/app" | cut -d' ' -f1)
  if [ "$have" = "$SHA256" ]; then
    [ -z "$SOURCE_FILE" ] || rm -f "$SOURCE_FILE"
    echo "release $VERSION already on the host (sha256 $SHA256)"
    prune
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
audit release "version=$VERSION sha256=$SHA256" ok
echo "release $VERSION stored (sha256 $SHA256)"
prune
