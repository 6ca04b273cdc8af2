#!/usr/bin/env bash
# What this host serves: the live colour, each slot's version, unit state and
# readiness, maintenance, and the last audit lines. Read-only; takes no lock.
# An operator tool: people run it on the host (bluegreen-status), without the program, so its
# optional inputs keep defaults of their own (the only tool that does).
# Inputs (components/host/tools.ts):
#   HEALTH_PATH  optional  the readiness path asked of each slot (default /health/ready)
#   LINES        optional  how many audit lines to show (default 10)
# Arguments: [live]: `bluegreen-status live` prints only the colour the live link serves (for scripts).
set -euo pipefail
# lib.sh is beside this file: a symlink to it (bluegreen-status) is resolved; no program runs otherwise.
BG_SELF=$0 && { [[ $0 == */* ]] || BG_SELF=./$0; } && { [ ! -L "$0" ] || BG_SELF=$(readlink -f "$0"); }
# shellcheck source=/dev/null
. "${BG_SELF%/*}/lib.sh"
if [ "${1:-}" = live ]; then
  live_color
  exit 0
fi
HEALTH_PATH=${HEALTH_PATH:-/health/ready}
LINES=${LINES:-10}
live=$(live_color)

# ---- --json: the same report as one JSON object (npm run status -- --json) ----------------
# json_str (lib/events.sh): TEXT as a JSON string. json_or_null TEXT: the same, or null for an empty TEXT.
json_or_null() { if [ -n "$1" ]; then json_str "$1"; else printf null; fi; }
json_bool() { if "$@"; then printf true; else printf false; fi; }
json_slot() {
  local c=$1 unit="$BG_NS@$1" pid pending=null p
  pid=$(systemctl show -p MainPID --value "$unit" 2>/dev/null || true)
  [[ $pid =~ ^[1-9][0-9]*$ ]] || pid=null
  p="$(pending_dir "$c")/record"
  if [ -f "$p" ]; then
    pending="{\"version\": $(json_or_null "$(field "$p" version)"), \"listen\": $(json_or_null "$(field "$p" listen)")}"
  fi
  printf '{"version": %s, "unit": %s, "ready": %s, "pid": %s, "listen": %s, "pending": %s}' \
    "$(json_or_null "$(recorded version "$c")")" "$(json_or_null "$(systemctl is-active "$unit" 2>/dev/null || true)")" \
    "$(json_bool slot_ready "$c" "$HEALTH_PATH")" "$pid" "$(json_or_null "$(cat "$(slot_dir "$c")/listen" 2>/dev/null || true)")" "$pending"
}
json_tls() {
  local mode renewal=null
  mode=$(tls_field mode)
  if [ "$mode" != acme ] && [ "$mode" != files ]; then printf null && return 0; fi
  if [ "$mode" = acme ]; then
    renewal="{\"result\": $(json_or_null "$(tls_field last_result)"), \"at\": $(json_or_null "$(tls_field last_attempt)"), \"error\": $(json_or_null "$(tls_field last_error)"), \"next\": $(json_or_null "$(systemctl show -p NextElapseUSecRealtime --value "$BG_TLS_RENEW_UNIT.timer" 2>/dev/null || true)")}"
  fi
  printf '{"mode": %s, "serial": %s, "names": %s, "notAfter": %s, "renewal": %s}' "$(json_str "$mode")" \
    "$(json_or_null "$(tls_field serial)")" "$(json_or_null "$(tls_field names)")" "$(json_or_null "$(tls_field not_after)")" "$renewal"
}
# json_lines: stdin's lines as a JSON array of strings.
json_lines() {
  local line sep=""
  printf '['
  while IFS= read -r line || [ -n "$line" ]; do
    printf '%s%s' "$sep" "$(json_str "$line")"
    sep=", "
  done
  printf ']'
}
# json_backups: the backups' record (null when bluegreen:backupDatabases is empty on this host).
json_backups() {
  backups_on || { printf null && return 0; }
  local f="$BG_STATE_DIR/backup.status"
  printf '{"kept": %s, "newest": %s, "lastResult": %s, "lastOk": %s, "lastError": %s, "offsite": %s}' \
    "$(backup_ids | grep -c . || true)" "$(json_or_null "$(backup_ids | tail -n 1)")" "$(json_or_null "$(field "$f" last_result)")" \
    "$(json_or_null "$(field "$f" last_ok)")" "$(json_or_null "$(field "$f" last_error)")" "$(json_or_null "$(field "$f" offsite_last_result)")"
}
if [ "${1:-}" = --json ]; then
  interrupted=null
  if [ -f "$BG_SWITCH_INTENT" ]; then
    interrupted="{\"from\": $(json_or_null "$(field "$BG_SWITCH_INTENT" from)"), \"to\": $(json_or_null "$(field "$BG_SWITCH_INTENT" to)")}"
  fi
  maintenance="{\"on\": false, \"since\": null}"
  if [ -f "$BG_STATE_DIR/maintenance" ]; then
    maintenance="{\"on\": true, \"since\": $(json_or_null "$(cat "$BG_STATE_DIR/maintenance")")}"
  fi
  printf '{"live": %s, "recorded": %s, "interruptedSwitch": %s, "maintenance": %s, "slots": {"blue": %s, "green": %s}, "tls": %s, "backups": %s, "releases": %s, "logs": %s, "audit": {"file": %s, "lines": %s}}\n' \
    "$(json_or_null "$live")" "$(json_or_null "$(cat "$BG_ACTIVE_FILE" 2>/dev/null || true)")" "$interrupted" "$maintenance" \
    "$(json_slot blue)" "$(json_slot green)" "$(json_tls)" "$(json_backups)" \
    "$(find "$BG_RELEASES_DIR" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%f\n' 2>/dev/null | sort | json_lines)" \
    "$(json_str "journalctl -u $BG_NS@blue -u $BG_NS@green -f")" "$(json_str "$BG_AUDIT_LOG")" \
    "$(tail -n "$LINES" "$BG_AUDIT_LOG" 2>/dev/null | json_lines)"
  exit 0
fi

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
if backups_on; then
  printf 'backups:     %s kept, newest %s; last run %s%s; off-host %s (%s list)\n' "$(backup_ids | grep -c . || true)" \
    "$(backup_ids | tail -n 1 | grep . || echo none)" "$(field "$BG_STATE_DIR/backup.status" last_result | grep . || echo "not yet")" \
    "$([ "$(field "$BG_STATE_DIR/backup.status" last_result)" = failed ] && printf ' (%s)' "$(field "$BG_STATE_DIR/backup.status" last_error)")" \
    "$(field "$BG_STATE_DIR/backup.status" offsite_last_result | grep . || echo none)" "$BG_BACKUP_COMMAND"
fi
printf 'releases:    %s\n' "$(find "$BG_RELEASES_DIR" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%f ' 2>/dev/null)"
printf 'logs:        journalctl -u %s@blue -u %s@green -f\n' "$BG_NS" "$BG_NS"
printf 'last %s audit lines (%s):\n' "$LINES" "$BG_AUDIT_LOG"
tail -n "$LINES" "$BG_AUDIT_LOG" 2>/dev/null | sed 's/^/  /' || true
