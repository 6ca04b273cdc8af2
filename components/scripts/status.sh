#!/usr/bin/env bash
# What this host serves: the live colour, each slot's version, unit state and
# readiness, maintenance, and the last audit lines. Read-only; takes no lock.
# Input: HEALTH_PATH (default /health/ready), LINES (audit lines, default 10).
set -euo pipefail
# shellcheck source=/dev/null
. "$(dirname "$(readlink -f "$0")")/lib.sh"
HEALTH_PATH=${HEALTH_PATH:-/health/ready}
LINES=${LINES:-10}
# The site says which link nginx follows; after a mode change both links may exist.
mode=socket
if grep -qF "include $BG_LIVE_UPSTREAM;" "$BG_NGINX_SITE" 2>/dev/null; then mode=tcp; fi
live=$(live_color "$mode")
printf 'live:        %s (%s mode, recorded %s)\n' "${live:-none}" "$mode" "$(cat "$BG_ACTIVE_FILE" 2>/dev/null || echo none)"
if [ -f "$BG_STATE_DIR/maintenance" ]; then
  printf 'maintenance: on since %s\n' "$(cat "$BG_STATE_DIR/maintenance")"
else
  printf 'maintenance: off\n'
fi
for c in blue green; do
  unit="bluegreen@$c"
  ready=no
  if slot_ready "$c" "$HEALTH_PATH"; then ready=yes; fi
  printf '%-6s       %-10s unit %-9s ready %-3s pid %s\n' "$c:" "$(recorded version "$c" | grep . || echo none)" \
    "$(systemctl is-active "$unit" 2>/dev/null || true)" "$ready" "$(systemctl show -p MainPID --value "$unit" 2>/dev/null || echo -)"
done
printf 'releases:    %s\n' "$(find "$BG_RELEASES_DIR" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%f ' 2>/dev/null)"
printf 'logs:        journalctl -u bluegreen@blue -u bluegreen@green -f\n'
printf 'last %s audit lines (%s):\n' "$LINES" "$BG_AUDIT_LOG"
tail -n "$LINES" "$BG_AUDIT_LOG" 2>/dev/null | sed 's/^/  /' || true
