#!/usr/bin/env bash
# Runs VERSION in SLOT and waits for its readiness. The env file arrives on
# stdin (it may hold secrets) and is stored with mode 0600.
# Refuses to restart the slot the live link points at: that would drop requests.
# Input: SLOT, VERSION, MODE, LISTEN, HEALTH_PATH, HEALTH_TIMEOUT.
set -euo pipefail
# shellcheck source=/dev/null
. "$(dirname "$(readlink -f "$0")")/lib.sh"
: "${SLOT:?}" "${VERSION:?}" "${MODE:?}" "${LISTEN:?}" "${HEALTH_PATH:?}" "${HEALTH_TIMEOUT:?}"
check_color "$SLOT"
check_mode "$MODE"
unit="bluegreen@$SLOT"
sdir=$(slot_dir "$SLOT")
release="$BG_RELEASES_DIR/$VERSION"
[ -x "$release/app" ] || die "release $VERSION is not on the host ($release/app); its release step must run first"

umask 077
envfile=$(mktemp)
trap 'rm -f "$envfile"' EXIT
cat >"$envfile"
desired="version=$VERSION
env=$(sha256sum "$envfile" | cut -d' ' -f1)
listen=$LISTEN"

# Same lock as the switch: the live check and the restart happen with no switch in between.
take_lock "$BG_LOCK" 300
install -d -m 0755 "$sdir"
started=$(now_ms)

restarted=no
previous_version=$(recorded version "$SLOT")
if [ "$(cat "$sdir/deployed" 2>/dev/null)" = "$desired" ] && systemctl is-active -q "$unit"; then
  log "slot $SLOT already runs $VERSION with this environment; not restarting it"
else
  restarted=yes
  live=$(live_color "$MODE")
  if [ "$live" = "$SLOT" ] && systemctl is-active -q "$unit"; then
    running=$previous_version
    other=$(other_color "$SLOT")
    die_audited deploy "slot=$SLOT version=$VERSION running=${running:-unknown}" refused "slot $SLOT is live (nginx sends it traffic) and runs ${running:-an unknown version}; refusing to restart it with $VERSION because that would drop requests.
Deploy to the idle slot instead, then switch:
  pulumi config set ${SLOT}Version ${running:-<its current version>}
  pulumi config set ${other}Version $VERSION && pulumi up
  pulumi config set active $other && pulumi up"
  fi
  install -m 0600 -o root -g root "$envfile" "$BG_ENV_DIR/$SLOT.env"
  atomic_link "$release" "$sdir/current"
  printf '%s\n' "$LISTEN" >"$sdir/listen"
  systemctl enable -q "$unit"
  # restart drains the old process (SIGTERM) before the new one starts; this slot is idle.
  systemctl restart "$unit"
fi

deadline=$(($(date +%s) + HEALTH_TIMEOUT))
until slot_ready "$SLOT" "$HEALTH_PATH"; do
  if [ "$(date +%s)" -ge "$deadline" ] || systemctl is-failed -q "$unit"; then
    state=$(systemctl is-active "$unit" 2>/dev/null || true)
    die_audited deploy "slot=$SLOT version=$VERSION" failed "slot $SLOT ($VERSION) did not become ready: GET $HEALTH_PATH on $LISTEN gave no 2xx within ${HEALTH_TIMEOUT}s (unit $state).
It gets no public traffic: the live slot is untouched. Last journal lines of $unit:
$(journal_tail "$SLOT")"
  fi
  sleep 0.5
done
printf '%s\n' "$desired" >"$sdir/deployed"
if [ "$restarted" = yes ]; then audit deploy "slot=$SLOT version=$VERSION was=${previous_version:-none}" ok; fi
echo "slot $SLOT: $VERSION ready on $LISTEN in $(($(now_ms) - started)) ms (pid $(systemctl show -p MainPID --value "$unit"))"
