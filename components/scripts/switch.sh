#!/usr/bin/env bash
# Moves live traffic to TARGET. Order: lock, readiness gate, rename the links,
# (tcp: nginx -t, reload), verify through nginx, record, then watch the new
# slot's 5xx for WATCH_SECONDS and move traffic back on a breach. Any failure
# puts the links back and exits non-zero with the reason; the old slot keeps
# serving. The lock is held until the watch ends.
# Input: TARGET, MODE, HEALTH_PATH, CHECK_PORT (nginx's loopback check listener),
#        VERIFY_TIMEOUT (s, default 15), WATCH_SECONDS (default 0: no watch),
#        ERROR_PERCENT (default 5), MIN_ERRORS (default 5).
set -euo pipefail
# shellcheck source=/dev/null
. "$(dirname "$(readlink -f "$0")")/lib.sh"
: "${TARGET:?}" "${MODE:?}" "${HEALTH_PATH:?}" "${CHECK_PORT:?}"
VERIFY_TIMEOUT=${VERIFY_TIMEOUT:-15}
WATCH_SECONDS=${WATCH_SECONDS:-0}
ERROR_PERCENT=${ERROR_PERCENT:-5}
MIN_ERRORS=${MIN_ERRORS:-5}
check_color "$TARGET"
check_mode "$MODE"
idle=$(other_color "$TARGET")
live_l=$(live_link "$MODE")
preview_l=$(preview_link "$MODE")

take_lock "$BG_LOCK" 300
started=$(now_ms)
previous=$(live_color "$MODE")
old_live=$(readlink "$live_l" 2>/dev/null || true)
old_preview=$(readlink "$preview_l" 2>/dev/null || true)
fields="from=${previous:-none} to=$TARGET version=$(recorded version "$TARGET" | grep . || echo none)"

if ! slot_ready "$TARGET" "$HEALTH_PATH"; then
  die_audited switch "$fields" refused "refusing to switch to $TARGET: it is not ready (GET $HEALTH_PATH on the slot gave no 2xx). Traffic stays on ${previous:-the current slot}.
Last journal lines of bluegreen@$TARGET:
$(journal_tail "$TARGET")"
fi

put_links_back() {
  if [ -n "$old_live" ]; then atomic_link "$old_live" "$live_l"; fi
  if [ -n "$old_preview" ]; then atomic_link "$old_preview" "$preview_l"; fi
}
# After nginx has loaded the new links (tcp mode reloaded), it must load the old ones again.
restore_links() {
  put_links_back
  if [ "$MODE" = tcp ]; then nginx_reload; fi
}

# Post-switch analysis: the proxied public responses since the link moves (the old
# slot's last pooled answers count too, which only makes it stricter). It runs
# during verification and then for WATCH_SECONDS, every 100-200 ms.
watching=no
if [ "$WATCH_SECONDS" -gt 0 ] && [ -n "$previous" ] && [ "$previous" != "$TARGET" ] && [ ! -f "$BG_MAINTENANCE_FLAG" ]; then
  watching=yes
fi
log_offset=$(($(stat -c %s "$BG_ACCESS_LOG" 2>/dev/null || echo 0) + 1))
moved_ms=$(now_ms)
total=0 errors=0
check_errors() {
  [ "$watching" = yes ] || return 0
  local since
  since="$((moved_ms / 1000)).$(printf '%03d' $((moved_ms % 1000)))"
  # Log lines start "$msec $status $upstream_status"; "-" marks a response nginx made itself.
  read -r total errors < <(tail -c +"$log_offset" "$BG_ACCESS_LOG" 2>/dev/null |
    awk -v since="$since" '$1 >= since && $3 != "-" { t++; if ($2 >= 500) e++ } END { print t + 0, e + 0 }')
  if [ "$errors" -ge "$MIN_ERRORS" ] && [ $((errors * 100)) -ge $((total * ERROR_PERCENT)) ]; then
    restore_links
    record_active "$previous"
    die_audited rollback "from=$TARGET to=$previous errors=$errors responses=$total" rolled-back \
      "switch to $TARGET rolled back: $errors of $total responses since the switch were 5xx, $(($(now_ms) - moved_ms)) ms after it (limit: ${ERROR_PERCENT}% and at least $MIN_ERRORS). Traffic is back on $previous ($(recorded version "$previous")).
Last journal lines of bluegreen@$TARGET:
$(journal_tail "$TARGET")
Next: fix the app and deploy a new version to $TARGET (pulumi config set ${TARGET}Version ...), or stay on $previous: pulumi config set active $previous"
  fi
}
record_active() {
  printf '%s\n' "$1" >"$BG_ACTIVE_FILE.new"
  mv -f "$BG_ACTIVE_FILE.new" "$BG_ACTIVE_FILE"
}

atomic_link "$(link_target "$MODE" "$TARGET")" "$live_l"
atomic_link "$(link_target "$MODE" "$idle")" "$preview_l"
if [ "$MODE" = tcp ]; then
  if ! out=$(nginx_test 2>&1); then
    # nginx never loaded the rejected links, so there is nothing to reload.
    put_links_back
    die_audited switch "$fields" failed "nginx -t failed after relinking to $TARGET, so the links were put back and nginx keeps serving ${previous:-the old slot}:
$out"
  fi
  nginx_reload
fi

# Verify through nginx's check listener (the live upstream, never in maintenance).
# In socket mode a pooled upstream connection to the old slot can be reused until
# keepalive_time + keepalive_timeout (500 ms + 500 ms) after the rename, so
# convergence is: that bound has passed and nginx serves the target. In tcp mode
# the reload's new workers start with empty pools. Apps that do not send
# X-Bluegreen-Color are checked for 2xx only.
linked=$(now_ms)
settle_ms=0
[ "$MODE" = tcp ] || settle_ms=1100
deadline=$(($(date +%s) + VERIFY_TIMEOUT))
verified=""
while :; do
  headers=$(curl -sS -o /dev/null -D - --max-time 3 "http://127.0.0.1:$CHECK_PORT$HEALTH_PATH" 2>/dev/null | tr -d '\r' || true)
  code=$(printf '%s\n' "$headers" | sed -n '1s/^HTTP\/[0-9.]* \([0-9]*\).*/\1/p')
  color=$(printf '%s\n' "$headers" | sed -n 's/^[Xx]-[Bb]luegreen-[Cc]olor: *//p' | head -n1)
  if [ $(($(now_ms) - linked)) -ge "$settle_ms" ]; then
    case "$code" in
      2??)
        if [ "$color" = "$TARGET" ]; then verified="X-Bluegreen-Color: $TARGET"; break; fi
        if [ -z "$color" ]; then verified="HTTP $code (the app sends no X-Bluegreen-Color)"; break; fi
        ;;
    esac
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    restore_links
    die_audited switch "$fields" failed "nginx did not serve $TARGET within ${VERIFY_TIMEOUT}s after the switch (last answer: HTTP ${code:-none}, colour ${color:-none}); the links were put back to ${previous:-their old targets}."
  fi
  check_errors
  sleep 0.1
done

record_active "$TARGET"
done_ms=$(now_ms)
summary="switched in $((done_ms - started)) ms, converged $((done_ms - linked)) ms after the link moved; verified through nginx: $verified"

watched=""
if [ "$watching" = yes ]; then
  watch_end=$(($(date +%s) + WATCH_SECONDS))
  while [ "$(date +%s)" -lt "$watch_end" ]; do
    check_errors
    sleep 0.2
  done
  watched="; watched ${WATCH_SECONDS} s: $errors of $total responses 5xx"
fi

audit switch "$fields" ok
echo "live: $TARGET $(recorded version "$TARGET") (was ${previous:-none}); $summary$watched"
