#!/usr/bin/env bash
# Moves live traffic to TARGET. Order: lock, readiness gate, rename the links,
# (tcp: nginx -t, reload), verify through nginx, record. Any failure puts the
# links back and exits non-zero with the reason; the old slot keeps serving.
# Input: TARGET, MODE, HEALTH_PATH, VERIFY_TIMEOUT (s).
set -euo pipefail
# shellcheck source=/dev/null
. "$(dirname "$0")/lib.sh"
: "${TARGET:?}" "${MODE:?}" "${HEALTH_PATH:?}"
VERIFY_TIMEOUT=${VERIFY_TIMEOUT:-15}
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

if ! slot_ready "$TARGET" "$HEALTH_PATH"; then
  die "refusing to switch to $TARGET: it is not ready (GET $HEALTH_PATH on the slot gave no 2xx). Traffic stays on ${previous:-the current slot}.
Last journal lines of bluegreen@$TARGET:
$(journal_tail "$TARGET")"
fi

restore_links() {
  if [ -n "$old_live" ]; then atomic_link "$old_live" "$live_l"; fi
  if [ -n "$old_preview" ]; then atomic_link "$old_preview" "$preview_l"; fi
}

atomic_link "$(link_target "$MODE" "$TARGET")" "$live_l"
atomic_link "$(link_target "$MODE" "$idle")" "$preview_l"
if [ "$MODE" = tcp ]; then
  if ! out=$(nginx_test 2>&1); then
    restore_links
    die "nginx -t failed after relinking to $TARGET, so the links were put back and nginx keeps serving ${previous:-the old slot}:
$out"
  fi
  nginx_reload
fi

# Verify through nginx, as a client would. In socket mode nginx's pooled upstream
# connections (at most 1 s old or idle: keepalive_time/keepalive_timeout) may still
# reach the old slot, so convergence is: that bound has passed and nginx serves the
# target. In tcp mode the reload's new workers start with empty pools.
# Apps that do not send X-Bluegreen-Color are checked for 2xx only.
linked=$(now_ms)
settle_ms=0
[ "$MODE" = tcp ] || settle_ms=1100
deadline=$(($(date +%s) + VERIFY_TIMEOUT))
verified=""
while :; do
  headers=$(curl -sS -o /dev/null -D - --max-time 3 "http://127.0.0.1:$BG_HTTP_PORT$HEALTH_PATH" 2>/dev/null | tr -d '\r' || true)
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
    [ "$MODE" = socket ] || nginx_reload
    die "nginx did not serve $TARGET within ${VERIFY_TIMEOUT}s after the switch (last answer: HTTP ${code:-none}, colour ${color:-none}); the links were put back to ${previous:-their old targets}."
  fi
  sleep 0.1
done

printf '%s\n' "$TARGET" >"$BG_ACTIVE_FILE.new"
mv -f "$BG_ACTIVE_FILE.new" "$BG_ACTIVE_FILE"
version=$(recorded version "$TARGET")
done_ms=$(now_ms)
echo "live: $TARGET ${version:-} (was ${previous:-none}); switched in $((done_ms - started)) ms, converged $((done_ms - linked)) ms after the link moved; verified through nginx: $verified"
