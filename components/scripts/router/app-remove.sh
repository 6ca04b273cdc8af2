#!/usr/bin/env bash
# Delete step of the router config (`pulumi destroy` of this app's stack): removes this
# app, and nothing of any other app on the host. By then the slots' own delete steps have
# stopped them. Removes its router config (one reload), the claims, the units and the renewal
# timer, the releases, state, env files and tools. Keeps the data directory and the audit
# log (say where), and the app's user, which owns the data.
# Inputs (components/host/tools.ts):
#   OWNER  required  the stack being destroyed
set -euo pipefail
# lib.sh is beside this file: a symlink to it (bluegreen-status) is resolved; no program runs otherwise.
BG_SELF=$0 && { [[ $0 == */* ]] || BG_SELF=./$0; } && { [ ! -L "$0" ] || BG_SELF=$(readlink -f "$0"); }
# shellcheck source=/dev/null
. "${BG_SELF%/*}/lib.sh"
: "${OWNER:?}"
take_lock "$BG_LOCK" 300
install -d -m 0755 "$BG_CLAIMS_DIR"
exec 7>"$BG_HOST_LOCK"
flock -w 120 7 || die "another app's router change has held $BG_HOST_LOCK for over 120 s"
if [ -f "$BG_CLAIMS_FILE" ] && [ "$(field "$BG_CLAIMS_FILE" owner)" != "$OWNER" ]; then
  die "app '$BG_APP' on this host belongs to stack $(field "$BG_CLAIMS_FILE" owner), not $OWNER; it was left as it is"
fi

# The router config goes first (nothing routes here any more), then the processes.
router_remove_app

systemctl disable -q --now "$BG_TLS_RENEW_UNIT.timer" 2>/dev/null || true
systemctl stop "$BG_TLS_RENEW_UNIT.service" 2>/dev/null || true
for c in blue green; do
  systemctl disable -q --now "$BG_NS@$c" 2>/dev/null || true
  rm -f "$BG_UNIT_DIR/$BG_NS@$c.service"
done
rm -f "$BG_UNIT_DIR/$BG_TLS_RENEW_UNIT.timer" "$BG_UNIT_DIR/$BG_TLS_RENEW_UNIT.service"
with_deadline 120 "systemctl daemon-reload" systemctl daemon-reload
rm -f "$BG_CLAIMS_FILE"

audit remove "app=$BG_APP owner=$OWNER" ok
rm -rf "$BG_RELEASES_DIR" "$BG_ENV_DIR" "$BG_RUN_DIR" "$BG_STATUS_COMMAND"
find "$BG_STATE_DIR" -mindepth 1 -maxdepth 1 ! -name data -exec rm -rf {} +
# Exactly 16 hex digits: app "x" must not match app "x-upload"'s files.
find "$BG_UPLOAD_DIR" -maxdepth 1 -regextype posix-extended -regex ".*/$BG_NS-upload-[0-9a-f]{16}" -delete
echo "app $BG_APP removed from this host; kept: its data in $BG_DATA_DIR, its audit log $BG_AUDIT_LOG and user $BG_APP_USER"
# Last, the tools (this script included: bash has it open already).
rm -rf "$BG_TOOLS_DIR"
