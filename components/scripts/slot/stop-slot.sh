#!/usr/bin/env bash
# Delete step of a slot: stops it only if it still runs the VERSION this
# resource deployed, so a replacement never stops the process it just started.
# Inputs (components/host/tools.ts):
#   SLOT     required  the slot (blue or green)
#   VERSION  required  the version this resource deployed
set -euo pipefail
# shellcheck source=/dev/null
. "$(dirname "$(readlink -f "$0")")/lib.sh"
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
