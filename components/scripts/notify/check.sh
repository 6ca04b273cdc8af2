#!/usr/bin/env bash
# The periodic checks (the app's check timer, every 5 minutes): what no step sees happen.
#   backup-missed  backups are configured but none succeeded for over two hours, or the timer is off;
#   tls-expiring   the served certificate expires in under 14 days;
#   disk-low       the data's or the state's filesystem has less than disk_free_percent free;
#   drift          the host disagrees with what bluegreen recorded: the live link is not the
#                  recorded live colour, a switch was interrupted, or a deployed slot's unit is not running.
# Each condition is told when it starts, when what it says changes, and again once a day while it
# lasts; its record is in $BG_NOTIFY_DIR/state. Prints what it found.
# Inputs: none (notify.conf, backup.conf and the state files say everything).
set -euo pipefail
# lib.sh is beside this file: a symlink to it (bluegreen-status) is resolved; no program runs otherwise.
BG_SELF=$0 && { [[ $0 == */* ]] || BG_SELF=./$0; } && { [ ! -L "$0" ] || BG_SELF=$(readlink -f "$0"); }
# shellcheck source=/dev/null
. "${BG_SELF%/*}/lib.sh"
[ -f "$BG_NOTIFY_CONF" ] || exit 0
install -d -m 0700 "$BG_NOTIFY_DIR/state"
now=$(now_s)

# tell NAME RESULT MESSAGE: the event, unless the same was told in the last day; no condition: cleared.
tell() {
  local f="$BG_NOTIFY_DIR/state/$1" said at
  if [ -z "$3" ]; then
    rm -f "$f"
    return 0
  fi
  echo "$1: $3"
  said=$(field "$f" message) at=$(field "$f" at)
  if [ "$said" = "$3" ] && [ $((now - ${at:-0})) -lt 86400 ]; then return 0; fi
  notify_event "$1" "$2" "$BG_APP: $3"
  printf 'message=%s\nat=%s\n' "$3" "$now" >"$f"
}

# backup-missed
missed=""
if backups_on; then
  last=$(field "$BG_STATE_DIR/backup.status" last_ok)
  last_s=0
  [ -z "$last" ] || last_s=$(date -u -d "$last" +%s 2>/dev/null || echo 0)
  since=$(backup_setting configured_at)
  if [ $((now - ${since:-$now})) -gt 7200 ] && [ $((now - last_s)) -gt 7200 ]; then
    missed="no backup has succeeded for over 2 hours (last: ${last:-never}; last error: $(field "$BG_STATE_DIR/backup.status" last_error | grep . || echo none)); see journalctl -u $BG_BACKUP_UNIT"
  elif command -v systemctl >/dev/null 2>&1 && [ -f "$BG_UNIT_DIR/$BG_BACKUP_UNIT.timer" ] && ! systemctl is-active -q "$BG_BACKUP_UNIT.timer"; then
    missed="the backup timer $BG_BACKUP_UNIT.timer is not active, so no backup will run: systemctl enable --now $BG_BACKUP_UNIT.timer"
  fi
fi
tell backup-missed missed "$missed"

# tls-expiring
expiring=""
not_after=$(tls_field not_after)
if [ -n "$not_after" ] && [ "$(tls_field mode)" != off ]; then
  left=$(($(date -u -d "$not_after" +%s) - now))
  if [ "$left" -lt $((14 * 86400)) ]; then
    expiring="the certificate for $(tls_field names) expires in $((left / 86400)) days ($not_after); last renewal: $(tls_field last_result | grep . || echo none) $(tls_field last_error)"
  fi
fi
tell tls-expiring expiring "$expiring"

# disk-low
low="" want=$(field "$BG_NOTIFY_CONF" disk_free_percent)
for p in "$BG_DATA_DIR" "$BG_STATE_DIR"; do
  [ -d "$p" ] || continue
  read -r size avail mount < <(df -P -B1 "$p" | awk 'NR == 2 { print $2, $4, $6 }')
  [ "${size:-0}" -gt 0 ] || continue
  if [ $((avail * 100 / size)) -lt "${want:-10}" ] && [[ $low != *" $mount "* ]]; then
    low+=" $mount $((avail / 1048576)) MiB free ($((avail * 100 / size))%, under ${want:-10}%);"
  fi
done
tell disk-low low "${low# }"

# drift
drift=() live=$(live_color) recorded_live=$(cat "$BG_ACTIVE_FILE" 2>/dev/null || true)
if [ -n "$live" ] && [ -n "$recorded_live" ] && [ "$live" != "$recorded_live" ]; then
  drift+=("the live link serves $live but bluegreen recorded $recorded_live (moved by hand?)")
fi
if [ -f "$BG_SWITCH_INTENT" ] && [ $((now - $(stat -c %Y "$BG_SWITCH_INTENT"))) -gt 600 ]; then
  drift+=("a switch to $(field "$BG_SWITCH_INTENT" to) was interrupted and never finished (run pulumi up)")
fi
for c in blue green; do
  if [ -f "$(slot_dir "$c")/deployed" ] && command -v systemctl >/dev/null 2>&1 && ! systemctl is-active -q "$BG_NS@$c"; then
    drift+=("slot $c is deployed ($(recorded version "$c")) but $BG_NS@$c is $(systemctl is-active "$BG_NS@$c" 2>/dev/null || true)")
  fi
done
tell drift drift "$(printf '%s; ' "${drift[@]}" | sed 's/; $//')"
