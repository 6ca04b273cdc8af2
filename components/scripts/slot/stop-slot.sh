#!/usr/bin/env bash
# Delete step of a slot: stops it only if it still runs the VERSION this
# resource deployed, so a replacement never stops the process it just started.
# Inputs (components/host/tools.ts):
#   SLOT     required  the slot (blue or green)
#   VERSION  required  the version this resource deployed
set -euo pipefail
# lib.sh is beside this file: a symlink to it (bluegreen-status) is resolved; no program runs otherwise.
BG_SELF=$0 && { [[ $0 == */* ]] || BG_SELF=./$0; } && { [ ! -L "$0" ] || BG_SELF=$(readlink -f "$0"); }
# shellcheck source=/dev/null
. "${BG_SELF%/*}/lib.sh"
: "${SLOT:?}" "${VERSION:?}"
check_color "$SLOT"
take_lock "$BG_LOCK" 300
running=$(recorded version "$SLOT")
if [ "$running" != "$VERSION" ]; then
  echo "slot $SLOT now runs ${running:-nothing}, not $VERSION; leaving it running"
  exit 0
fi
systemctl disable -q --now "$BG_NS@$SLOT" || true
rm -f "$(slot_dir "$SLOT")/deployed"
echo "slot $SLOT ($VERSION) stopped"
