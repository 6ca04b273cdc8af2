# shellcheck shell=bash
# A switch that a coordinator drives across several hosts (COORDINATED=yes; the coordinator is
# local-coordinate.js, where pulumi runs). Sourced by switch.sh after lib.sh and watch.sh,
# never run. The protocol, one line each way:
#
#   switch.sh says (stdout)                       the coordinator answers (stdin)
#   @bluegreen prepared move|noop FROM TO         commit | abort WHY
#   @bluegreen committed MOVED_MS VERIFIED_MS     (nothing; during the watch: abort WHY)
#   @bluegreen watch RESPONSES ERRORS             (every 0.5 s during the watch)
#   @bluegreen watched RESPONSES ERRORS|deferred  confirm | abort WHY
#   @bluegreen confirmed                          (nothing)
#
# Until `confirm` arrives, anything else puts traffic back, as any exit before confirmation
# does: `abort`, an unexpected word, the end of stdin (the coordinator was killed or its SSH
# connection closed), or no word within PHASE_TIMEOUT seconds. Times are epoch milliseconds,
# so the coordinator can tell the window in which hosts served different colours.

coordinated() { [ "${COORDINATED:-}" = yes ]; }

# phase_say WORDS...: one line to the coordinator; nothing when no coordinator drives the switch.
phase_say() {
  coordinated || return 0
  printf '@bluegreen %s\n' "$*"
}

# phase_wait WORD: waits up to PHASE_TIMEOUT s for the coordinator's WORD. Returns 1 with
# ABORT_WHY set on anything else.
ABORT_WHY=""
phase_wait() {
  coordinated || return 0
  local word=""
  if ! IFS= read -r -t "$PHASE_TIMEOUT" word; then
    ABORT_WHY="the coordinator went away (its connection closed, or no word in $PHASE_TIMEOUT s)"
    return 1
  fi
  phase_word "$1" "$word"
}

# phase_word EXPECTED WORD: 0 when WORD is EXPECTED; else ABORT_WHY says what came, and 1.
phase_word() {
  case "$2" in
    "$1") return 0 ;;
    abort*) ABORT_WHY="the coordinator called every host back: ${2#abort }" ;;
    *) ABORT_WHY="the coordinator said \"$2\", not \"$1\"" ;;
  esac
  return 1
}

# phase_poll: during the watch, a look at stdin that does not wait. Returns 1 with ABORT_WHY
# set when the coordinator aborted or went away.
phase_poll() {
  coordinated || return 0
  local word="" rc=0
  IFS= read -r -t 0.01 word || rc=$?
  if [ "$rc" -gt 128 ]; then return 0; fi
  if [ "$rc" -ne 0 ]; then
    ABORT_WHY="the coordinator went away (its connection closed)"
    return 1
  fi
  phase_word "" "$word"
}

# phase_tick: called by watch_for after each read of the counts. Tells the coordinator what the
# watch has seen (at most every 0.5 s), and moves traffic back (watch_breach) when it aborts.
# The time is read with now_ms_to (no subshell: this runs after every read of the counts).
PHASE_SAID_MS=0
phase_tick() {
  coordinated || return 0
  local now
  now_ms_to now
  if [ $((now - PHASE_SAID_MS)) -ge 500 ]; then
    phase_say watch "$W_TOTAL" "$W_ERRORS"
    PHASE_SAID_MS=$now
  fi
  phase_poll || watch_breach "$ABORT_WHY"
}

# phase_sections: the hooks' sections, which a coordinator sends first, ending with a line
# "@end-sections" (the rest of stdin carries its words).
phase_sections() {
  local line
  while IFS= read -r -t "$PHASE_TIMEOUT" line && [ "$line" != "@end-sections" ]; do
    printf '%s\n' "$line"
  done
}

# phase_noop WHY: a host with nothing to move (already on the target, or just put back there)
# still answers every phase, so the coordinator hears from every host; an abort leaves it as it is.
phase_noop() {
  coordinated || return 0
  phase_say prepared noop "${on_link:-none}" "$TARGET"
  phase_wait commit || phase_left_alone
  local now
  now_ms_to now
  phase_say committed "$now" "$now"
  phase_say watched 0 0
  phase_wait confirm || phase_left_alone
  phase_say confirmed
}

# phase_left_alone: the coordinator called the hosts back, and this one had nothing to move.
phase_left_alone() {
  audit switch "to=$TARGET${SWITCH_ID:+ switch_id=$SWITCH_ID}" aborted || true
  printf 'bluegreen: error: %s; this host had nothing to move, so it stays on %s\n' "$ABORT_WHY" "${on_link:-none}" >&2
  exit 3
}
