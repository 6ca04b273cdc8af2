#!/usr/bin/env bash
# Moves live traffic to TARGET. Order: lock, readiness gate, record the intent,
# rename the live link (nginx tests it on every request: no reload, in either
# link mode), verify through nginx, watch the new slot's 5xx for WATCH_SECONDS
# and move back on a breach, record the live colour. Then the slot that just
# went idle picks up any config staged while it was live.
#
# Crash safety: the intent (from, to, when the link moved) is written before the
# rename and removed once the move is confirmed. Until then, any exit (an error, a
# breach, SIGTERM/SIGHUP/SIGINT, a closed SSH pipe) puts the link back. After a
# kill -9 the intent remains, and the next run finishes that move (with the full
# watch) when it targets the same colour, or undoes it when it targets the old one.
# Hooks (HOOKS=yes: stdin carries the sections preSwitch and postSwitch): preSwitch runs
# as the target slot before the link moves (not when a killed switch is resumed: it had
# finished by then); its failure refuses the switch. postSwitch runs as the new live slot
# once the watch has passed; its failure warns, or with POST_SWITCH_FAILURE=rollback
# moves traffic back. Both run only when traffic moves, rollbacks included.
# Input: TARGET, HEALTH_PATH, CHECK_PORT (nginx's loopback check listener),
#        VERIFY_TIMEOUT (s, default 15), WATCH_SECONDS (default 0: no watch),
#        ERROR_PERCENT (default 5), MIN_ERRORS (default 5), HOOKS (default no),
#        POST_SWITCH_FAILURE (warn or rollback), HOOK_TIMEOUT (s, default 600),
#        SECRET_NAMES (env names whose values are scrubbed from hook output).
set -euo pipefail
# shellcheck source=/dev/null
. "$(dirname "$(readlink -f "$0")")/lib.sh"
: "${TARGET:?}" "${HEALTH_PATH:?}" "${CHECK_PORT:?}"
VERIFY_TIMEOUT=${VERIFY_TIMEOUT:-15}
WATCH_SECONDS=${WATCH_SECONDS:-0}
ERROR_PERCENT=${ERROR_PERCENT:-5}
MIN_ERRORS=${MIN_ERRORS:-5}
POST_SWITCH_FAILURE=${POST_SWITCH_FAILURE:-warn}
HOOK_TIMEOUT=${HOOK_TIMEOUT:-600}
SECRET_NAMES=${SECRET_NAMES:-}
check_color "$TARGET"
idle=$(other_color "$TARGET")
pre_switch="" post_switch=""
if [ "${HOOKS:-no}" = yes ]; then
  hooks_in=$(cat)
  pre_switch=$(section preSwitch <<<"$hooks_in")
  post_switch=$(section postSwitch <<<"$hooks_in")
fi

take_lock "$BG_LOCK" 300
started=$(now_ms)
on_link=$(live_color)
intent_from="" intent_to=""
if [ -f "$BG_SWITCH_INTENT" ]; then
  intent_from=$(field "$BG_SWITCH_INTENT" from)
  intent_to=$(field "$BG_SWITCH_INTENT" to)
fi

# catch_up SLOT: an idle slot with a staged config runs it now. A failure leaves the
# switch done (traffic is fine) and is reported, audited and shown by bluegreen-status.
catch_up() {
  local slot=$1 pending out
  pending=$(pending_dir "$slot")
  [ -d "$pending" ] || return 0
  if out=$(slot_apply "$slot" "$pending" 2>&1); then
    rm -rf "$pending"
    audit deploy "slot=$slot version=$(recorded version "$slot") staged=applied" ok
    echo "slot $slot (now idle) picked up its staged settings: $(recorded version "$slot") on $(cat "$(slot_dir "$slot")/listen")"
  else
    audit deploy "slot=$slot version=$(field "$pending/record" version) staged=applied" failed
    echo "bluegreen: warning: slot $slot (now idle) did not come up with its staged settings, so a rollback to it would be refused until it is ready: ${out#bluegreen: error: }" >&2
  fi
}

gate() {
  if ! slot_ready "$TARGET" "$HEALTH_PATH"; then
    die_audited switch "from=${1:-none} to=$TARGET version=$(recorded version "$TARGET" | grep . || echo none)" refused "refusing to switch to $TARGET: it is not ready (GET $HEALTH_PATH on the slot gave no 2xx). Traffic stays on ${on_link:-the current slot}.
Last journal lines of $BG_NS@$TARGET:
$(journal_tail "$TARGET")"
  fi
}

# An interrupted switch back to where it came from: undo it.
if [ -n "$intent_to" ] && [ "$TARGET" != "$intent_to" ]; then
  gate "$intent_to"
  set_live "$TARGET"
  record_active "$TARGET"
  rm -f "$BG_SWITCH_INTENT"
  audit switch "from=$intent_to to=$TARGET interrupted=undone" ok
  catch_up "$idle"
  echo "live: $TARGET $(recorded version "$TARGET") (an interrupted switch to $intent_to was undone)"
  exit 0
fi

# Nothing to move: make the record agree with the link.
if [ -z "$intent_to" ] && [ "$on_link" = "$TARGET" ]; then
  record_active "$TARGET"
  catch_up "$idle"
  echo "live: $TARGET $(recorded version "$TARGET") (already live; nothing moved)"
  exit 0
fi

# A new switch, or one to finish: `from` is the last confirmed live colour.
if [ -n "$intent_to" ]; then from=$intent_from; resumed=" resumed=yes"; else from=$on_link; resumed=""; fi
fields="from=${from:-none} to=$TARGET version=$(recorded version "$TARGET" | grep . || echo none)$resumed"
gate "$from"

if [ -n "$pre_switch" ] && [ -z "$intent_to" ]; then
  echo "preSwitch: running as slot $TARGET ($(recorded version "$TARGET")) before traffic moves"
  if ! run_hook preSwitch "$TARGET" "$pre_switch" "$HOOK_TIMEOUT" "$SECRET_NAMES"; then
    die_audited switch "$fields" refused "preSwitch failed on $TARGET, so the switch did not happen: traffic stays on ${from:-the current slot}. Its output:
$HOOK_OUTPUT"
  fi
fi

confirmed=no
put_back() {
  [ "$confirmed" = no ] || return 0
  confirmed=restored
  if [ -n "$from" ]; then set_live "$from"; record_active "$from"; else rm -f "$BG_LIVE_LINK"; fi
  rm -f "$BG_SWITCH_INTENT"
}
on_exit() {
  local rc=$?
  if [ "$confirmed" = no ]; then
    put_back
    audit switch "$fields" interrupted
    printf 'bluegreen: error: the switch to %s stopped before it was confirmed (exit %s); traffic was put back on %s\n' "$TARGET" "$rc" "${from:-the default slot}" >&2 || true
  fi
}
trap on_exit EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM

moved_ms=$(now_ms)
if [ -n "$intent_to" ]; then moved_ms=$(field "$BG_SWITCH_INTENT" moved_ms); fi
printf 'from=%s\nto=%s\nmoved_ms=%s\n' "$from" "$TARGET" "$moved_ms" >"$BG_SWITCH_INTENT.new"
mv -f "$BG_SWITCH_INTENT.new" "$BG_SWITCH_INTENT"

# Post-switch analysis: the proxied public responses since the link moved (the old
# slot's last in-flight answers count too, which only makes it stricter). It runs
# during verification and then for WATCH_SECONDS.
watching=no
if [ "$WATCH_SECONDS" -gt 0 ] && [ -n "$from" ] && [ ! -f "$BG_MAINTENANCE_FLAG" ]; then watching=yes; fi
total=0 errors=0
# A resumed switch reads the whole log from the original move; a new one only what follows.
log_offset=1
[ -n "$intent_to" ] || log_offset=$(($(stat -c %s "$BG_ACCESS_LOG" 2>/dev/null || echo 0) + 1))
check_errors() {
  [ "$watching" = yes ] || return 0
  local since
  since="$((moved_ms / 1000)).$(printf '%03d' $((moved_ms % 1000)))"
  # Log lines start "$msec $status $upstream_status"; "-" marks a response nginx made itself.
  read -r total errors < <(tail -c +"$log_offset" "$BG_ACCESS_LOG" 2>/dev/null |
    awk -v since="$since" '$1 >= since && $3 != "-" { t++; if ($2 >= 500) e++ } END { print t + 0, e + 0 }')
  if [ "$errors" -ge "$MIN_ERRORS" ] && [ $((errors * 100)) -ge $((total * ERROR_PERCENT)) ]; then
    put_back
    die_audited rollback "from=$TARGET to=$from errors=$errors responses=$total" rolled-back \
      "switch to $TARGET rolled back: $errors of $total responses since the switch were 5xx, $(($(now_ms) - moved_ms)) ms after it (limit: ${ERROR_PERCENT}% and at least $MIN_ERRORS). Traffic is back on $from ($(recorded version "$from")).
Last journal lines of $BG_NS@$TARGET:
$(journal_tail "$TARGET")
Next: fix the app and deploy a new version to $TARGET (pulumi config set ${TARGET}Version ...), or stay on $from: pulumi config set active $from"
  fi
}

set_live "$TARGET"
linked=$(now_ms)

# Verify through nginx's check listener (the live slot, never in maintenance). Each
# request picks its upstream group from the link, so the first answer after the
# rename already comes from the target. Apps that do not send X-Bluegreen-Color
# are checked for 2xx only.
deadline=$(($(date +%s) + VERIFY_TIMEOUT))
verified=""
while :; do
  headers=$(curl -sS -o /dev/null -D - --max-time 3 "http://127.0.0.1:$CHECK_PORT$HEALTH_PATH" 2>/dev/null | tr -d '\r' || true)
  code=$(printf '%s\n' "$headers" | sed -n '1s/^HTTP\/[0-9.]* \([0-9]*\).*/\1/p')
  color=$(printf '%s\n' "$headers" | sed -n 's/^[Xx]-[Bb]luegreen-[Cc]olor: *//p' | head -n1)
  case "$code" in
    2??)
      if [ "$color" = "$TARGET" ]; then verified="X-Bluegreen-Color: $TARGET"; break; fi
      if [ -z "$color" ]; then verified="HTTP $code (the app sends no X-Bluegreen-Color)"; break; fi
      ;;
  esac
  if [ "$(date +%s)" -ge "$deadline" ]; then
    put_back
    die_audited switch "$fields" failed "nginx did not serve $TARGET within ${VERIFY_TIMEOUT}s after the switch (last answer: HTTP ${code:-none}, colour ${color:-none}); the link was put back to ${from:-its default}."
  fi
  check_errors
  sleep 0.05
done
done_ms=$(now_ms)
summary="switched in $((done_ms - started)) ms, verified $((done_ms - linked)) ms after the link moved through nginx: $verified"

watched=""
if [ "$watching" = yes ]; then
  watch_end=$(($(date +%s) + WATCH_SECONDS))
  while [ "$(date +%s)" -lt "$watch_end" ]; do
    check_errors
    sleep 0.2
  done
  watched="; watched ${WATCH_SECONDS} s: $errors of $total responses 5xx"
fi

post_note=""
if [ -n "$post_switch" ]; then
  echo "postSwitch: running as slot $TARGET ($(recorded version "$TARGET")), now live"
  if ! run_hook postSwitch "$TARGET" "$post_switch" "$HOOK_TIMEOUT" "$SECRET_NAMES"; then
    if [ "$POST_SWITCH_FAILURE" = rollback ] && [ -n "$from" ]; then
      put_back
      die_audited rollback "from=$TARGET to=$from reason=postSwitch" rolled-back "postSwitch failed on $TARGET, and postSwitchFailure is rollback: traffic is back on $from ($(recorded version "$from")). Its output:
$HOOK_OUTPUT"
    fi
    post_note="; postSwitch FAILED (traffic stays on $TARGET: postSwitchFailure is $POST_SWITCH_FAILURE$([ -n "$from" ] || echo ", and there is no previous slot"))"
    printf 'bluegreen: warning: postSwitch failed on %s; traffic stays on %s. Its output:\n%s\n' "$TARGET" "$TARGET" "$HOOK_OUTPUT" >&2
  fi
fi

record_active "$TARGET"
rm -f "$BG_SWITCH_INTENT"
confirmed=yes
audit switch "$fields" ok
echo "live: $TARGET $(recorded version "$TARGET") (was ${from:-none}); $summary$watched$post_note"
[ -z "$from" ] || catch_up "$from"
