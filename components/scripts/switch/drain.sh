#!/usr/bin/env bash
# Takes this host out of the load balancer (STATE=on), or puts it back (STATE=off), for one of
# several hosts. on: the router answers the balancer's health check (/.bluegreen/health) with
# 503, and the step waits for the evidence that the balancer stopped sending: at least the
# balancer's own time to drop a failing target (EJECT_SECONDS), and no public request for the
# last QUIET_SECONDS. Only then does it end, so the steps that wait for it (the slots, the
# switch) touch nothing that serves. Fails if requests still come after WAIT_SECONDS. off:
# the health check answers the live slot's readiness again; the balancer takes the host back
# after its own number of passing checks. Neither reloads the router or touches a slot.
# Inputs (components/host/tools.ts):
#   STATE          required  on or off
#   CHECK_PORT     required  the router's loopback check listener, which answers the health path as the public one does
#   EJECT_SECONDS  required  s the balancer takes to drop a target whose checks fail (interval x retries + timeout)
#   QUIET_SECONDS  required  s with no public request that show the balancer has stopped sending
#   WAIT_SECONDS   required  s to wait for that quiet before giving up
set -euo pipefail
# lib.sh is beside this file: a symlink to it (bluegreen-status) is resolved; no program runs otherwise.
BG_SELF=$0 && { [[ $0 == */* ]] || BG_SELF=./$0; } && { [ ! -L "$0" ] || BG_SELF=$(readlink -f "$0"); }
# shellcheck source=/dev/null
. "${BG_SELF%/*}/lib.sh"
: "${STATE:?}" "${CHECK_PORT:?}" "${EJECT_SECONDS:?}" "${QUIET_SECONDS:?}" "${WAIT_SECONDS:?}"
HEALTH=/.bluegreen/health

# health_code: what the balancer's health check gets from this host now (its check listener),
# 000 without an answer; in bash alone (http_get), as the switch asks that listener.
health_code() { if http_get "$CHECK_PORT" "$HEALTH" 3; then echo "$HTTP_STATUS"; else echo 000; fi; }

take_lock "$BG_LOCK" 300 $((WAIT_SECONDS + 60)) "drain $STATE"
live=$(live_color)
case "$STATE" in
  on)
    if [ ! -f "$BG_DRAIN_FLAG" ]; then
      date -u +%Y-%m-%dT%H:%M:%SZ >"$BG_DRAIN_FLAG.new"
      mv -f "$BG_DRAIN_FLAG.new" "$BG_DRAIN_FLAG"
      router_sync
      audit drain "state=on live=${live:-none}" ok
    fi
    code=$(health_code)
    [ "$code" = 503 ] || die "drained, but the balancer's health check ($HEALTH) answers HTTP $code here, not 503: the router did not take the drain"
    # The evidence: the live slot's public responses stop growing for QUIET_SECONDS.
    base=$(router_watch_base "${live:-blue}")
    # In milliseconds: whole seconds would end the waits up to a second early.
    started=0 now=0
    now_ms_to started
    since=$started last=-1
    while :; do
      now_ms_to now
      router_watch_read "${live:-blue}" "$base" "$((now - WAIT_SECONDS * 1000))" || die "could not read $(router_name)'s counts, so there is no evidence that the balancer stopped sending"
      now_ms_to now
      if [ "$WATCH_TOTAL" != "$last" ]; then last=$WATCH_TOTAL since=$now; fi
      if [ $((now - since)) -ge $((QUIET_SECONDS * 1000)) ] && [ $((now - started)) -ge $((EJECT_SECONDS * 1000)) ]; then break; fi
      if [ $((now - started)) -ge $((WAIT_SECONDS * 1000)) ]; then
        die "this host is drained (its health check answers 503), but public requests still arrived $(((now - since) / 1000)) s ago, after ${WAIT_SECONDS} s; is the balancer's health check on $HEALTH of each host (docs/hosts.md)? Nothing else was run here."
      fi
      sleep 0.5
    done
    echo "drained: the balancer's health check gets 503, and no public request came for ${QUIET_SECONDS} s ($WATCH_TOTAL since the drain began); $live keeps running"
    ;;
  off)
    if [ -f "$BG_DRAIN_FLAG" ]; then
      rm -f "$BG_DRAIN_FLAG"
      router_sync
      audit drain "state=off live=${live:-none}" ok
    fi
    code=$(health_code)
    if [ -z "$live" ]; then
      echo "not drained; nothing is live here yet, so the balancer's health check fails until the first switch"
    elif [[ $code == 2?? ]]; then
      echo "not drained: the balancer's health check gets HTTP $code from $live; the balancer sends requests after its own number of passing checks"
    else
      echo "bluegreen: warning: not drained, but the balancer's health check ($HEALTH) answers HTTP $code here: $live is not ready, so the balancer sends this host nothing until it is" >&2
    fi
    ;;
  *) die "STATE must be on or off (got '$STATE')" ;;
esac
