#!/usr/bin/env bash
# Maintenance mode: STATE=on serves the page from stdin as a 503 with Retry-After
# to public traffic; STATE=off sends traffic to the live slot again. Both slots
# keep running, the links do not move, and the router is not reloaded: nginx checks
# for the flag file on each request; HAProxy reads its map, set through its runtime API.
# A switch made while maintenance was on has not been watched (the public reached no slot):
# STATE=off runs that watch now (watch.sh watch_deferred), with the usual rollback on a breach.
# Inputs (components/host/tools.ts):
#   STATE  required  on or off
# Stdin: the maintenance page (STATE=on)
set -euo pipefail
# lib.sh is beside this file: a symlink to it (bluegreen-status) is resolved; no program runs otherwise.
BG_SELF=$0 && { [[ $0 == */* ]] || BG_SELF=./$0; } && { [ ! -L "$0" ] || BG_SELF=$(readlink -f "$0"); }
# shellcheck source=/dev/null
. "${BG_SELF%/*}/lib.sh"
# shellcheck source=/dev/null
. "$BG_LIB_DIR/watch.sh"
# shellcheck source=/dev/null
. "$BG_LIB_DIR/phases.sh"
: "${STATE:?}"
# Turning maintenance off may run a deferred watch: its length bounds how long the lock is held,
# said again once the lock is ours (a switch it waited for may have deferred one meanwhile).
hold() { echo $((300 + $(field "$BG_WATCH_PENDING" seconds | grep . || echo 0))); }
take_lock "$BG_LOCK" 300 "$(hold)" "maintenance $STATE"
lock_holder "$BG_LOCK" "$(hold)" "maintenance $STATE"
flag="$BG_STATE_DIR/maintenance"
live=$(cat "$BG_ACTIVE_FILE" 2>/dev/null || echo none)
case "$STATE" in
  on)
    install -d -m 0755 "$BG_STATE_DIR/www"
    page=$(mktemp "$BG_STATE_DIR/www/.maintenance.XXXXXX")
    cat >"$page"
    chmod 0644 "$page"
    mv -f "$page" "$BG_STATE_DIR/www/maintenance.html"
    if [ -f "$flag" ]; then
      echo "maintenance already on since $(cat "$flag")"
      exit 0
    fi
    date -u +%Y-%m-%dT%H:%M:%SZ >"$flag.new"
    mv -f "$flag.new" "$flag"
    router_sync
    audit maintenance "state=on live=$live" ok
    echo "maintenance on: public requests get 503 with Retry-After; $live keeps running"
    ;;
  off)
    if [ ! -f "$flag" ]; then
      echo "maintenance already off; live: $live"
      watch_deferred
      exit 0
    fi
    rm -f "$flag"
    router_sync
    audit maintenance "state=off live=$live" ok
    echo "maintenance off: public traffic goes to $live again"
    watch_deferred
    ;;
  *) die "STATE must be on or off (got '$STATE')" ;;
esac
