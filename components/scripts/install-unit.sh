#!/usr/bin/env bash
# Installs the slots' systemd template unit from stdin. Running slots pick it up
# at their next restart: restarting the live slot here would drop requests.
set -euo pipefail
# shellcheck source=/dev/null
. "$(dirname "$(readlink -f "$0")")/lib.sh"

new=$(mktemp)
trap 'rm -f "$new"' EXIT
cat >"$new"
if cmp -s "$new" "$BG_UNIT_FILE"; then
  echo "slot unit unchanged"
  exit 0
fi
install -m 0644 "$new" "$BG_UNIT_FILE"
systemctl daemon-reload
echo "slot unit installed; slots use it from their next restart"
