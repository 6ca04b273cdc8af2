#!/usr/bin/env bash
# Moves live traffic to TARGET, through either router. Order: lock, free space, readiness
# gate, record the intent, rename the live link (nginx tests it on every request; HAProxy's
# map is set on every worker through its master CLI, router_sync: no reload, in either link
# mode), verify through the router's check listener, watch the new slot's 5xx for
# WATCH_SECONDS and move back on a breach, verify once more, record the live colour.
# While maintenance is on the watch is deferred to maintenance.sh off (watch.sh). Then the
# slot that just went idle picks up any config staged while it was live.
#
# Crash safety: the intent (from, to, when the link moved) is written before the
# rename and removed once the move is confirmed. Until then, any exit (an error, a
# breach, SIGTERM/SIGHUP/SIGINT, a closed SSH pipe) puts the link back. After a
# kill -9 the intent remains, and the next run finishes that move (with the full
# watch) when it targets the same colour, or undoes it when it targets the old one.
# Hooks (HOOKS=yes: stdin carries the sections preSwitch and postSwitch): preSwitch runs
# as the target slot before the link moves; its failure refuses the switch. It is skipped
# when a killed switch is resumed (it had finished by then) and on a rollback to the release
# that was live before. postSwitch runs as the new live slot once the watch has passed and
# the switch is recorded; its failure warns, or with POST_SWITCH_FAILURE=rollback moves
# traffic back. Both run only when traffic moves.
# Inputs (components/host/tools.ts; no defaults here):
#   TARGET               required              the colour to make live (blue or green)
#   HEALTH_PATH          required              the readiness path the gate and the verify ask
#   CHECK_PORT           required              the router's loopback check listener
#   VERIFY_TIMEOUT       required              s the router may take to serve TARGET, each verify
#   WATCH_SECONDS        required              the post-switch watch (0: none)
#   ERROR_PERCENT        required              the watch's breach: this share of 5xx...
#   MIN_ERRORS           required              ...and at least this many
#   HOOKS                optional              yes: stdin carries the hooks' sections
#   HOOK_TIMEOUT         required(HOOKS=yes)   s each hook may run
#   POST_SWITCH_FAILURE  required(postSwitch)  warn or rollback
#   SECRET_NAMES         optional              env names whose values are scrubbed from hook output
#   COORDINATED          optional              yes: a coordinator drives the phases over stdin/stdout (phases.sh)
#   PHASE_TIMEOUT        required(COORDINATED=yes)  s to wait for the coordinator's next word
#   SWITCH_ID            optional              the id a coordinated switch shares across hosts, in each audit line
# Stdin sections (with HOOKS=yes; coordinated: ending with a line @end-sections):
#   preSwitch            optional              the preSwitch hook's text
#   postSwitch           optional              the postSwitch hook's text
set -euo pipefail
# lib.sh is beside this file: a symlink to it (bluegreen-status) is resolved; no program runs otherwise.
BG_SELF=$0 && { [[ $0 == */* ]] || BG_SELF=./$0; } && { [ ! -L "$0" ] || BG_SELF=$(readlink -f "$0"); }
# shellcheck source=/dev/null
. "${BG_SELF%/*}/lib.sh"
# shellcheck source=/dev/null
. "$BG_LIB_DIR/watch.sh"
# shellcheck source=/dev/null
. "$BG_LIB_DIR/phases.sh"
: "${TARGET:?}" "${HEALTH_PATH:?}" "${CHECK_PORT:?}" "${VERIFY_TIMEOUT:?}" "${WATCH_SECONDS:?}" "${ERROR_PERCENT:?}" "${MIN_ERRORS:?}"
SECRET_NAMES=${SECRET_NAMES:-}
check_color "$TARGET"
idle=$(other_color "$TARGET")
pre_switch="" post_switch="" hooks_bound=0 phases_bound=0
if [ "${COORDINATED:-}" = yes ]; then
  : "${PHASE_TIMEOUT:?PHASE_TIMEOUT is required with COORDINATED=yes}"
  phases_bound=$((2 * PHASE_TIMEOUT))
fi
switch_id=${SWITCH_ID:+ switch_id=$SWITCH_ID}
if [ "${HOOKS:-}" = yes ]; then
  : "${HOOK_TIMEOUT:?HOOK_TIMEOUT is required with HOOKS=yes}"
  if coordinated; then hooks_in=$(phase_sections); else hooks_in=$(cat); fi
  pre_switch=$(section preSwitch <<<"$hooks_in")
  post_switch=$(section postSwitch <<<"$hooks_in")
  hooks_bound=$((2 * (HOOK_TIMEOUT + 40)))
fi
[ -z "$post_switch" ] || : "${POST_SWITCH_FAILURE:?POST_SWITCH_FAILURE is required with a postSwitch hook}"

# The lock's bound: verification twice, the watch, both hooks (when there are any) and the
# catch-up of the idle slot (a restart, up to 900 s, and its readiness, up to 300 s).
# A coordinated switch also waits for the coordinator between its phases.
take_lock "$BG_LOCK" 300 $((2 * VERIFY_TIMEOUT + WATCH_SECONDS + hooks_bound + phases_bound + 1200)) "a switch to $TARGET"
now_ms_to started
on_link=$(live_color)
# A switch writes its intent, the live colour and a line of audit: refuse on a full disk
# before anything moves, rather than stop halfway. keep_reserve holds 1 MiB for putting back.
if ! need_space "$BG_STATE_DIR" 1024 "a switch" || ! need_space "${BG_AUDIT_LOG%/*}" 64 "its audit line"; then
  die_audited switch "to=$TARGET$switch_id" refused "$SPACE_ERROR to record its intent, the live colour and the audit line. Nothing moved: traffic stays on ${on_link:-the current slot}. Free space there (journalctl --vacuum-size=100M, apt-get clean, fewer releases kept: pulumi config set keepReleases 2), then run pulumi up again."
fi
keep_reserve
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
  audit switch "from=$intent_to to=$TARGET interrupted=undone$switch_id" ok
  on_link=$TARGET phase_noop
  catch_up "$idle"
  echo "live: $TARGET $(recorded version "$TARGET") (an interrupted switch to $intent_to was undone)"
  exit 0
fi

# Nothing to move: make the record agree with the link.
if [ -z "$intent_to" ] && [ "$on_link" = "$TARGET" ]; then
  phase_noop
  record_active "$TARGET"
  watch_deferred
  catch_up "$idle"
  echo "live: $TARGET $(recorded version "$TARGET") (already live; nothing moved)"
  exit 0
fi

# A new switch, or one to finish: `from` is the last confirmed live colour.
if [ -n "$intent_to" ]; then from=$intent_from; resumed=" resumed=yes"; else from=$on_link; resumed=""; fi
target_version=$(recorded version "$TARGET")
fields="from=${from:-none} to=$TARGET version=${target_version:-none}$resumed$switch_id"
gate "$from"

# preSwitch, unless this moves back to the release that was live before the last switch
# (a rollback): that release already ran against this data, and a rollback must not
# depend on a hook that may fail in the very incident it answers.
if [ -n "$pre_switch" ] && [ -z "$intent_to" ]; then
  version=$(recorded version "$TARGET")
  if [ "$(field "$BG_STATE_DIR/previous" color)" = "$TARGET" ] && [ "$(field "$BG_STATE_DIR/previous" version)" = "$version" ]; then
    echo "preSwitch: skipped: $TARGET ($version) was live before the last switch, so this is a rollback to a release that already ran against this data"
  else
    # A snapshot of the databases first (bluegreen:backupDatabases; data/restore.sh puts it back).
    if ! backup_snapshot "before preSwitch of $TARGET ($version)"; then
      die_audited switch "$fields" refused "the snapshot before preSwitch failed, so neither the migration nor the switch ran: traffic stays on ${from:-the current slot}. $BACKUP_ERROR"
    fi
    if [ -n "$BACKUP_ID" ]; then
      fields="$fields snapshot=$BACKUP_ID"
      echo "snapshot: $BACKUP_ID taken before preSwitch (restore: $BG_RESTORE_COMMAND $BACKUP_ID)"
    fi
    echo "preSwitch: running as slot $TARGET ($version) before traffic moves"
    if ! run_hook preSwitch "$TARGET" "$pre_switch" "$HOOK_TIMEOUT" "$SECRET_NAMES"; then
      die_audited switch "$fields" refused "preSwitch failed on $TARGET, so the switch did not happen: traffic stays on ${from:-the current slot}. Its output:
$HOOK_OUTPUT
To switch without the hook: pulumi config set preSwitch '' && pulumi up"
    fi
  fi
fi

# The watch runs on the public's first traffic to the target. Maintenance hides the public
# from every slot, so then it is deferred: maintenance.sh runs it when maintenance goes off.
watching=no
if [ "$WATCH_SECONDS" -gt 0 ] && [ -n "$from" ]; then
  if [ -f "$BG_MAINTENANCE_FLAG" ]; then watching=deferred; else watching=yes; fi
fi
# shellcheck disable=SC2034 # read by watch.sh
W_TARGET=$TARGET W_FROM=$from W_PERCENT=$ERROR_PERCENT W_MIN=$MIN_ERRORS W_BASE=""
# Where the watch starts counting the target's responses (router-*.sh). A resumed switch
# counts from the original move (an intent without a base: nginx's whole log). A watch
# that cannot count must not pass: a new switch without a base refuses before anything moves.
if [ -z "$intent_to" ] && ! W_BASE=$(router_watch_base "$TARGET") && [ "$watching" = yes ]; then
  die_audited switch "$fields" failed "could not read $(router_name)'s counters for $TARGET before the switch, so the post-switch watch could not count; nothing moved, traffic stays on $from.
$(router_error_log_tail)"
fi
confirmed=no
# put_back: the link and the record back where they were. Every step is checked: it runs in
# the exit trap too, where set -e does not apply, and on a disk that may have filled since the
# start (release_reserve frees the reserve for it).
put_back() {
  [ "$confirmed" = no ] || return 0
  confirmed=restored
  release_reserve
  local back=yes
  if [ -n "$from" ]; then
    { set_live "$from" && record_active "$from"; } || back=no
  else
    { rm -f "$BG_LIVE_LINK" && router_sync; } || back=no
  fi
  rm -f "$BG_SWITCH_INTENT.new"
  if [ "$back" = yes ]; then
    rm -f "$BG_SWITCH_INTENT"
    return 0
  fi
  local why
  why="$(router_name) did not take the move back (its message is above)"
  need_space "$BG_STATE_DIR" 64 "putting traffic back" || why="$SPACE_ERROR; free space there"
  die_audited switch "$fields" failed "the switch to $TARGET could not be put back on ${from:-the default slot}: $why. The link points at $(live_color || true); run pulumi up again: the switch then finishes or undoes itself from its intent."
}
on_exit() {
  local rc=$? note=""
  if [ "$confirmed" = no ]; then
    put_back
    audit switch "$fields" interrupted 2>/dev/null || note=" (this could not be written to the audit log: $(space_note "${BG_AUDIT_LOG%/*}"))"
    printf 'bluegreen: error: the switch to %s stopped before it was confirmed (exit %s); traffic was put back on %s%s\n' "$TARGET" "$rc" "${from:-the default slot}" "$note" >&2 || true
  fi
}
trap on_exit EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM

now_ms_to W_MOVED_MS
if [ -n "$intent_to" ]; then
  W_MOVED_MS=$(field "$BG_SWITCH_INTENT" moved_ms)
  W_BASE=$(field "$BG_SWITCH_INTENT" watch_base | grep . || echo 1)
fi
printf 'from=%s\nto=%s\nmoved_ms=%s\nwatch_base=%s\n' "$from" "$TARGET" "$W_MOVED_MS" "$W_BASE" >"$BG_SWITCH_INTENT.new"
mv -f "$BG_SWITCH_INTENT.new" "$BG_SWITCH_INTENT"

# A breach of the watch (watch.sh): the proxied public responses since the link moved (the
# old slot's last in-flight answers count too, which only makes it stricter).
watch_breach() {
  put_back
  die_audited rollback "from=$TARGET to=$from errors=$W_ERRORS responses=$W_TOTAL" rolled-back \
    "switch to $TARGET rolled back: $1. Traffic is back on $from ($(recorded version "$from")).
Last journal lines of $BG_NS@$TARGET:
$(journal_tail "$TARGET")
Next: fix the app and deploy a new version to $TARGET (pulumi config set ${TARGET}Version ...), or stay on $from: pulumi config set active $from"
}

# Coordinated: every host has come this far (gate, hook, counters, intent) before any link moves.
phase_say prepared move "${from:-none}" "$TARGET"
if ! phase_wait commit; then
  put_back
  die_audited switch "$fields" aborted "$ABORT_WHY; nothing moved on this host: traffic stays on ${from:-the default slot}."
fi
set_live "$TARGET"
now_ms_to linked
if ! serves_target "$VERIFY_TIMEOUT" "$watching"; then
  put_back
  die_audited switch "$fields" failed "$(router_name) did not serve $TARGET within ${VERIFY_TIMEOUT}s after the switch (last answer: HTTP ${LAST_CODE:-none}, colour ${LAST_COLOR:-none}); the link was put back to ${from:-its default}."
fi
now_ms_to done_ms
# shellcheck disable=SC2154 # linked and done_ms are set by now_ms_to
phase_say committed "$linked" "$done_ms"
# shellcheck disable=SC2154 # started, linked and done_ms are set by now_ms_to
summary="switched in $((done_ms - started)) ms, verified $((done_ms - linked)) ms after the link moved through $(router_name): $VERIFIED"

watched="" audit_watch=""
if [ "$watching" = yes ]; then
  watch_for "$WATCH_SECONDS"
  if [ "$W_READS" -eq 0 ]; then
    put_back
    die_audited switch "$fields" failed "the post-switch watch could not read $(router_name)'s counts for $TARGET even once in ${WATCH_SECONDS} s ($W_UNREAD tries), so the switch is not confirmed; traffic is back on $from.
$(router_error_log_tail)"
  fi
  # The counts say nothing of where the router sends the next request: ask it once more.
  if ! serves_target "$VERIFY_TIMEOUT"; then
    put_back
    die_audited switch "$fields" failed "after the post-switch watch, $(router_name) served ${LAST_COLOR:-no colour} (HTTP ${LAST_CODE:-none}) on its check listener, not $TARGET, for ${VERIFY_TIMEOUT}s, so the switch is not confirmed; traffic is back on $from.
$(router_error_log_tail)"
  fi
  watched="; $(watch_summary "$WATCH_SECONDS")"
  audit_watch=$(watch_audit_field)
elif [ "$watching" = deferred ]; then
  defer_watch "$from" "$(recorded version "$TARGET")" "$WATCH_SECONDS"
  watched="; not watched yet: maintenance is on, so the public reaches no slot; the ${WATCH_SECONDS} s watch of $TARGET runs when maintenance is turned off"
  audit_watch=" watch=deferred"
fi
# Coordinated: the switch is confirmed only once every host's watch passed.
if [ "$watching" = deferred ]; then phase_say watched deferred; else phase_say watched "$W_TOTAL" "$W_ERRORS"; fi
phase_wait confirm || watch_breach "$ABORT_WHY"

record_active "$TARGET"
rm -f "$BG_SWITCH_INTENT"
# A watch deferred for a slot that is live no more goes with this switch.
[ "$watching" = deferred ] || [ ! -e "$BG_WATCH_PENDING" ] || rm -f "$BG_WATCH_PENDING"
confirmed=yes
# shellcheck disable=SC2034 # read by audit (lib/events.sh): the switch's duration, for notifications and metrics
BG_SWITCH_MS=$((done_ms - started))
audit switch "$fields$audit_watch" ok
phase_say confirmed
# What was live before: a switch back to it is a rollback (preSwitch above).
if [ -n "$from" ]; then printf 'color=%s\nversion=%s\n' "$from" "$(recorded version "$from")" >"$BG_STATE_DIR/previous"; fi
echo "live: $TARGET $target_version (was ${from:-none}); $summary$watched"

# postSwitch runs once the switch is confirmed and recorded: a failure, a kill or a closed
# connection here never moves traffic by itself.
if [ -n "$post_switch" ]; then
  echo "postSwitch: running as slot $TARGET ($(recorded version "$TARGET")), now live"
  if ! run_hook postSwitch "$TARGET" "$post_switch" "$HOOK_TIMEOUT" "$SECRET_NAMES"; then
    if [ "$POST_SWITCH_FAILURE" = rollback ] && [ -n "$from" ] && slot_ready "$from" "$HEALTH_PATH"; then
      set_live "$from"
      record_active "$from"
      rm -f "$BG_STATE_DIR/previous"
      die_audited rollback "from=$TARGET to=$from reason=postSwitch" rolled-back "postSwitch failed on $TARGET, and postSwitchFailure is rollback: traffic is back on $from ($(recorded version "$from")). Its output:
$HOOK_OUTPUT"
    fi
    why="postSwitchFailure is $POST_SWITCH_FAILURE"
    if [ "$POST_SWITCH_FAILURE" = rollback ]; then
      if [ -n "$from" ]; then why="$why, but $from is not ready"; else why="$why, but there is no previous slot"; fi
    fi
    echo "postSwitch FAILED (traffic stays on $TARGET: $why)"
    printf 'bluegreen: warning: postSwitch failed on %s; traffic stays on %s. Its output:\n%s\n' "$TARGET" "$TARGET" "$HOOK_OUTPUT" >&2
  fi
fi
[ -z "$from" ] || catch_up "$from"
