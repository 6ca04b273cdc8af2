# shellcheck shell=bash disable=SC2034
# The check through the router and the post-switch watch, sourced by switch.sh, and by
# maintenance.sh, which runs the watch that maintenance deferred (watch_deferred).
# Sourced after lib.sh, never run.
#
# The caller sets W_TARGET (the slot that went live), W_FROM (where a breach moves traffic
# back), W_BASE (router_watch_base at the move), W_MOVED_MS, W_PERCENT, W_MIN, HEALTH_PATH
# and CHECK_PORT, and defines watch_breach, which moves traffic back and exits.

W_TOTAL=0 W_ERRORS=0 W_READS=0 W_UNREAD=0

# watch_check: one read of the router's counts for W_TARGET since the move. A read that fails
# (the runtime API did not answer in time) is counted: a watch that never read passes nothing.
watch_check() {
  if ! router_watch_read "$W_TARGET" "$W_BASE" "$W_MOVED_MS"; then
    W_UNREAD=$((W_UNREAD + 1))
    return 0
  fi
  W_TOTAL=$WATCH_TOTAL W_ERRORS=$WATCH_ERRORS W_READS=$((W_READS + 1))
  if [ "$W_ERRORS" -ge "$W_MIN" ] && [ $((W_ERRORS * 100)) -ge $((W_TOTAL * W_PERCENT)) ]; then
    watch_breach "$W_ERRORS of $W_TOTAL responses since the switch were 5xx, $(($(now_ms) - W_MOVED_MS)) ms after it (limit: ${W_PERCENT}% and at least $W_MIN)"
  fi
}

# watch_for SECONDS: reads the counts every 0.2 s for SECONDS, then once more; every
# BG_PROGRESS_SECONDS (10; tests shorten it) a line on stderr says what it has seen so far.
# A coordinated switch (phases.sh) also reports the counts and hears an abort at each read.
watch_for() {
  local start end said every=${BG_PROGRESS_SECONDS:-10}
  start=$(now_s) && end=$((start + $1)) && said=$start
  while [ "$(now_s)" -lt "$end" ]; do
    watch_check
    phase_tick
    if [ $(($(now_s) - said)) -ge "$every" ]; then
      said=$(now_s)
      echo "watching $W_TARGET: $((said - start)) of $1 s, $W_TOTAL responses, $W_ERRORS 5xx so far" >&2
    fi
    sleep 0.2
  done
  watch_check
}

# serves_target TIMEOUT [WATCHING]: asks the router's check listener (the live slot, never in
# maintenance) until it answers 2xx from W_TARGET, for up to TIMEOUT s; with WATCHING=yes the
# counts are read between tries. Each request picks its upstream from the link (nginx) or the
# map (HAProxy), so the first answer after a move already comes from the target. An app that
# sends no X-Bluegreen-Color is checked for 2xx only. Sets VERIFIED (what was seen), or
# LAST_CODE and LAST_COLOR when it returns 1.
# Each request is bash's own (http_get: no curl, no fork but its connect guard).
VERIFIED="" LAST_CODE="" LAST_COLOR=""
serves_target() {
  local deadline now
  printf -v deadline '%(%s)T' -1
  deadline=$((deadline + $1))
  VERIFIED=""
  while :; do
    LAST_CODE="" LAST_COLOR=""
    if http_get "$CHECK_PORT" "$HEALTH_PATH" 3; then
      LAST_CODE=$HTTP_STATUS
      http_header LAST_COLOR X-Bluegreen-Color
    fi
    case "$LAST_CODE" in
      2??)
        if [ "$LAST_COLOR" = "$W_TARGET" ]; then VERIFIED="X-Bluegreen-Color: $W_TARGET" && return 0; fi
        if [ -z "$LAST_COLOR" ]; then VERIFIED="HTTP $LAST_CODE (the app sends no X-Bluegreen-Color)" && return 0; fi
        ;;
    esac
    printf -v now '%(%s)T' -1
    [ "$now" -lt "$deadline" ] || return 1
    [ "${2:-no}" != yes ] || watch_check
    sleep 0.05
  done
}

# watch_summary SECONDS: what the watch saw, for the output line. A watch that saw no public
# response proves nothing either way, and says so.
watch_summary() {
  local s="watched $1 s: $W_ERRORS of $W_TOTAL responses 5xx"
  [ "$W_TOTAL" -gt 0 ] || s="watched $1 s: no public request reached $W_TARGET, so the watch saw no evidence either way"
  [ "$W_UNREAD" -eq 0 ] || s="$s ($W_UNREAD of $((W_READS + W_UNREAD)) reads of the counts failed)"
  echo "$s"
}

# watch_audit_field: " watch=no-traffic" for the audit line when the watch saw no public response.
watch_audit_field() { [ "$W_TOTAL" -gt 0 ] || echo " watch=no-traffic"; }

# defer_watch FROM VERSION SECONDS: maintenance hides the public from the slot that just went
# live, so its watch waits until maintenance is off (maintenance.sh runs it, or the next switch).
defer_watch() {
  printf 'to=%s\nfrom=%s\nversion=%s\nseconds=%s\npercent=%s\nmin=%s\nhealth_path=%s\ncheck_port=%s\nswitched_at=%s\n' \
    "$W_TARGET" "$1" "$2" "$3" "$W_PERCENT" "$W_MIN" "$HEALTH_PATH" "$CHECK_PORT" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$BG_WATCH_PENDING.new"
  mv -f "$BG_WATCH_PENDING.new" "$BG_WATCH_PENDING"
}

# watch_deferred: runs the watch maintenance deferred, once the public reaches the live slot
# again. Nothing to do without one, or while maintenance is still on; a pending watch of a
# slot that is no longer live is dropped. A breach moves traffic back when that slot is ready.
# The caller holds the app lock.
watch_deferred() {
  local f=$BG_WATCH_PENDING version seconds at
  [ -f "$f" ] && [ ! -f "$BG_MAINTENANCE_FLAG" ] || return 0
  W_TARGET=$(field "$f" to) W_FROM=$(field "$f" from) version=$(field "$f" version) seconds=$(field "$f" seconds)
  W_PERCENT=$(field "$f" percent) W_MIN=$(field "$f" min) HEALTH_PATH=$(field "$f" health_path) CHECK_PORT=$(field "$f" check_port)
  at=$(field "$f" switched_at)
  if [ "$(live_color)" != "$W_TARGET" ]; then
    # A switch moved on since, or a rollback of this watch was killed after the link moved back:
    # the record follows the link.
    record_active "$(live_color)"
    rm -f "$f"
    audit watch "to=$W_TARGET version=$version deferred=yes" dropped
    echo "watch: the deferred watch of $W_TARGET ($version) was dropped: $(live_color) is live now"
    return 0
  fi
  W_BASE=$(router_watch_base "$W_TARGET") ||
    die_audited watch "to=$W_TARGET version=$version deferred=yes" failed "could not read $(router_name)'s counters for $W_TARGET, so the watch deferred by maintenance (switch of $at) could not start; it runs at the next pulumi up.
$(router_error_log_tail)"
  W_MOVED_MS=$(now_ms)
  watch_breach() {
    local why=$1
    if ! slot_ready "$W_FROM" "$HEALTH_PATH"; then
      die_audited rollback "from=$W_TARGET to=$W_FROM errors=$W_ERRORS responses=$W_TOTAL deferred=yes" failed "$W_TARGET breached its watch after maintenance went off ($why), but $W_FROM is not ready (GET $HEALTH_PATH gave no 2xx), so traffic stays on $W_TARGET. Turn maintenance on again, or fix $W_TARGET."
    fi
    if ! { set_live "$W_FROM" && record_active "$W_FROM"; }; then
      die_audited rollback "from=$W_TARGET to=$W_FROM errors=$W_ERRORS responses=$W_TOTAL deferred=yes" failed "$W_TARGET breached its watch after maintenance went off ($why), and moving traffic back to $W_FROM failed (see above); the link points at $(live_color || true). Run pulumi up again: the deferred watch runs again."
    fi
    rm -f "$f"
    die_audited rollback "from=$W_TARGET to=$W_FROM errors=$W_ERRORS responses=$W_TOTAL deferred=yes" rolled-back "switch to $W_TARGET (made during maintenance, at $at) rolled back once maintenance went off: $why. Traffic is back on $W_FROM ($(recorded version "$W_FROM")).
Last journal lines of $BG_NS@$W_TARGET:
$(journal_tail "$W_TARGET")
Next: fix the app and deploy a new version to $W_TARGET, or stay on $W_FROM: pulumi config set active $W_FROM"
  }
  echo "watch: maintenance is off, so the public reaches $W_TARGET ($version, live since $at) now: watching it for $seconds s"
  watch_for "$seconds"
  if [ "$W_READS" -eq 0 ]; then
    die_audited watch "to=$W_TARGET version=$version deferred=yes" failed "the watch deferred by maintenance could not read $(router_name)'s counts for $W_TARGET even once in $seconds s ($W_UNREAD tries); traffic stays on $W_TARGET, and the watch runs again at the next pulumi up.
$(router_error_log_tail)"
  fi
  serves_target 15 || watch_breach "after the watch, $(router_name) served ${LAST_COLOR:-no colour} (HTTP ${LAST_CODE:-none}) on its check listener, not $W_TARGET"
  rm -f "$f"
  audit watch "to=$W_TARGET version=$version deferred=yes errors=$W_ERRORS responses=$W_TOTAL$(watch_audit_field)" ok
  echo "watch: $W_TARGET ($version) passed the watch deferred by maintenance; $(watch_summary "$seconds")"
}
