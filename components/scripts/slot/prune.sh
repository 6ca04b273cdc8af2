#!/usr/bin/env bash
# Release retention, after both slots' deploy steps: keeps KEEP newest releases plus
# every version in PROTECT (what either slot is configured for in this run), what
# either slot runs, and what is staged for a live slot. Also removes what a killed
# release left behind (.incoming.* directories) and uploads of removed versions.
# Inputs (components/host/tools.ts):
#   KEEP     required  how many of the newest releases to keep (bluegreen:keepReleases)
#   PROTECT  required  comma-separated versions either slot is configured for
set -euo pipefail
# lib.sh is beside this file: a symlink to it (bluegreen-status) is resolved; no program runs otherwise.
BG_SELF=$0 && { [[ $0 == */* ]] || BG_SELF=./$0; } && { [ ! -L "$0" ] || BG_SELF=$(readlink -f "$0"); }
# shellcheck source=/dev/null
. "${BG_SELF%/*}/lib.sh"
: "${KEEP:?}" "${PROTECT:?}"
# The release lock: no release is being stored while we look.
take_lock "$BG_RELEASE_LOCK" 900

in_use=" ${PROTECT//,/ } "
for c in blue green; do
  r=$(readlink "$(slot_dir "$c")/current" 2>/dev/null || true)
  [ -z "$r" ] || in_use="$in_use$(basename "$r") "
  v=$(field "$(pending_dir "$c")/record" version)
  [ -z "$v" ] || in_use="$in_use$v "
done

stale=$(find "$BG_RELEASES_DIR" -mindepth 1 -maxdepth 1 -type d -name '.incoming.*' -printf '%f ' 2>/dev/null || true)
find "$BG_RELEASES_DIR" -mindepth 1 -maxdepth 1 -type d -name '.incoming.*' -exec rm -rf {} +

kept=0 removed=""
while read -r r; do
  [ -n "$r" ] || continue
  name=$(basename "$r")
  kept=$((kept + 1))
  case "$in_use" in *" $name "*) continue ;; esac
  if [ "$kept" -gt "$KEEP" ]; then
    sha=$(release_sha "$name")
    rm -rf "$r"
    [ -z "$sha" ] || rm -f "$BG_UPLOAD_DIR/$BG_NS-upload-${sha:0:16}"
    removed="$removed $name"
  fi
done < <(find "$BG_RELEASES_DIR" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%T@ %p\n' | sort -rn | cut -d' ' -f2-)

if [ -n "$removed" ]; then audit release-prune "removed=${removed# } keep=$KEEP" ok; fi
echo "releases: kept the $KEEP newest and those in use (${in_use# }); removed:${removed:- none}; stale incoming: ${stale:-none}"
