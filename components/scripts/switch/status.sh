#!/usr/bin/env bash
# What this host serves: the live colour, each slot's version, unit state and
# readiness, maintenance, and the last audit lines. Read-only; takes no lock.
# Input: HEALTH_PATH (default /health/ready), LINES (audit lines, default 10).
# `bluegreen-status live` prints only the colour the live link serves (for scripts).
set -euo pipefail
# shellcheck source=/dev/null
. "$(dirname "$(readlink -f "$0")")/lib.sh"
if [ "${1:-}" = live ]; then
  live_color
  exit 0
fi
HEALTH_PATH=${HEALTH_PATH:-/health/ready}
LINES=${LINES:-10}
live=$(live_color)
printf 'live:        %s (recorded %s)\n' "${live:-none}" "$(cat "$BG_ACTIVE_FILE" 2>/dev/null || echo none)"
if [ -f "$BG_SWITCH_INTENT" ]; then
  printf 'switch:      INTERRUPTED %s -> %s, not confirmed; the link serves %s. Run pulumi up to finish it (with its watch) or set active back to undo it.\n' \
    "$(field "$BG_SWITCH_INTENT" from)" "$(field "$BG_SWITCH_INTENT" to)" "${live:-none}"
fi
if [ -f "$BG_STATE_DIR/maintenance" ]; then
  printf 'maintenance: on since %s\n' "$(cat "$BG_STATE_DIR/maintenance")"
else
  printf 'maintenance: off\n'
fi
for c in blue green; do
  unit="$BG_NS@$c"
  ready=no
  if slot_ready "$c" "$HEALTH_PATH"; then ready=yes; fi
  printf '%-6s       %-10s unit %-9s ready %-3s pid %-7s on %s\n' "$c:" "$(recorded version "$c" | grep . || echo none)" \
    "$(systemctl is-active "$unit" 2>/dev/null || true)" "$ready" "$(systemctl show -p MainPID --value "$unit" 2>/dev/null || echo -)" \
    "$(cat "$(slot_dir "$c")/listen" 2>/dev/null || echo -)"
  if [ -f "$(pending_dir "$c")/record" ]; then
    printf '             PENDING: %s on %s staged while live; applies right after the next switch away from %s\n' \
      "$(field "$(pending_dir "$c")/record" version)" "$(field "$(pending_dir "$c")/record" listen)" "$c"
  fi
done
tls_mode=$(tls_field mode)
if [ "$tls_mode" = acme ] || [ "$tls_mode" = files ]; then
  printf 'tls:         %s; serial %s for %s, expires %s\n' "$tls_mode" "$(tls_field serial)" "$(tls_field names)" "$(tls_field not_after)"
  if [ "$tls_mode" = acme ]; then
    result=$(tls_field last_result)
    printf '             renewal %s at %s%s; next run %s\n' "${result:-none yet}" "$(tls_field last_attempt)" \
      "$([ "$result" = failed ] && printf ' (%s); see %s' "$(tls_field last_error)" "$(dirname "$BG_AUDIT_LOG")/tls.log")" \
      "$(systemctl show -p NextElapseUSecRealtime --value "$BG_TLS_RENEW_UNIT.timer" 2>/dev/null || echo unknown)"
  fi
fi
printf 'releases:    %s\n' "$(find "$BG_RELEASES_DIR" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%f ' 2>/dev/null)"
printf 'logs:        journalctl -u %s@blue -u %s@green -f\n' "$BG_NS" "$BG_NS"
printf 'last %s audit lines (%s):\n' "$LINES" "$BG_AUDIT_LOG"
tail -n "$LINES" "$BG_AUDIT_LOG" 2>/dev/null | sed 's/^/  /' || true
