#!/usr/bin/env bash
# A slot's deploy step. Stores the release if the host lacks it, checks the unit
# with systemd-analyze, then:
#  - idle slot: runs it with this unit and env file and waits for readiness;
#  - live slot with the same version: stages the new unit/env/listen address and
#    exits 0; the switch applies it once traffic has moved off this slot. The live
#    slot is never restarted, so a change that touches both slots never blocks;
#  - live slot with another version: refused (that would restart the live slot).
# A slot it does not restart (already running this way, or live with a change staged) must
# still pass the readiness gate of a switch to it (switch.sh) with the current HEALTH_PATH
# within HEALTH_TIMEOUT, or the step fails, naming the path and the answer; a live slot keeps
# serving. On a pass its deployed record takes the current health_path and health_timeout.
# Inputs (components/host/tools.ts; no defaults here):
#   SLOT            required                the slot (blue or green)
#   VERSION         required                the release to run
#   SHA256          required                the artifact's sha256
#   LISTEN          required                unix:PATH or 127.0.0.1:PORT
#   HEALTH_PATH     required                the readiness path (bluegreen:healthPath)
#   HEALTH_TIMEOUT  required                s to become ready (bluegreen:healthTimeout)
#   KIND            optional                bundle: a .tar.gz unpacked safely; absent: one executable
#   BUNDLE_MAX_MB   required(KIND=bundle)   what a bundle may unpack to (bluegreen:bundleMaxMegabytes)
#   SOURCE_FILE     optional                the uploaded artifact; absent: the sourceUrl section
# Stdin sections (components/host/shell.ts renderBundle):
#   unit            required                the slot's systemd unit
#   env             required secret         the slot's env file
#   sourceUrl       optional secret         the artifact's https URL (may hold a token)
set -euo pipefail
# lib.sh is beside this file: a symlink to it (bluegreen-status) is resolved; no program runs otherwise.
BG_SELF=$0 && { [[ $0 == */* ]] || BG_SELF=./$0; } && { [ ! -L "$0" ] || BG_SELF=$(readlink -f "$0"); }
# shellcheck source=/dev/null
. "${BG_SELF%/*}/lib.sh"
: "${SLOT:?}" "${VERSION:?}" "${SHA256:?}" "${LISTEN:?}" "${HEALTH_PATH:?}" "${HEALTH_TIMEOUT:?}"
SOURCE_FILE=${SOURCE_FILE:-}
kind=binary max_mb=""
if [ "${KIND:-}" = bundle ]; then
  kind=bundle max_mb=${BUNDLE_MAX_MB:?BUNDLE_MAX_MB is required with KIND=bundle}
fi
check_color "$SLOT"
unit="$BG_NS@$SLOT"
started=$(now_ms)

umask 077
install -d -m 0700 "$BG_ENV_DIR"
work=$(mktemp -d "$BG_ENV_DIR/.deploy-$SLOT.XXXXXX")
trap 'rm -rf "$work"' EXIT
read_sections "$work"
if [ ! -s "$work/unit" ] || [ ! -f "$work/env" ]; then die "stdin must carry the unit and env sections"; fi
url_file=""
[ ! -s "$work/sourceUrl" ] || url_file="$work/sourceUrl"
cat >"$work/record" <<RECORD
version=$VERSION
sha256=$SHA256
env=$(sha256sum "$work/env" | cut -d' ' -f1)
unit=$(sha256sum "$work/unit" | cut -d' ' -f1)
listen=$LISTEN
health_path=$HEALTH_PATH
health_timeout=$HEALTH_TIMEOUT
RECORD

# The release, under its own lock so a long download never holds up a switch.
(
  take_lock "$BG_RELEASE_LOCK" 900
  ensure_release "$VERSION" "$SHA256" "$SOURCE_FILE" "$url_file" "$kind" "$max_mb"
)

# The unit must load before it goes anywhere: a bad one would surface only at the next crash or boot.
# It is checked against this release (current/ still points at the one before), so a program
# missing from the release or the host (hostPackages) is refused here.
check=$(mktemp -d)
sed "s#$BG_STATE_DIR/slots/$SLOT/current#$BG_RELEASES_DIR/$VERSION#g" "$work/unit" >"$check/$unit.service"
if ! out=$(with_deadline 60 "systemd-analyze verify" systemd-analyze verify "$check/$unit.service" 2>&1); then
  rm -rf "$check"
  die "the unit for slot $SLOT does not load (systemd-analyze verify); nothing was changed:
$out"
fi
rm -rf "$check"

# Same lock as the switch: the live check and the restart happen with no switch in between.
# Bound: daemon-reload (120 s), the restart (900 s) and readiness (HEALTH_TIMEOUT), with room.
take_lock "$BG_LOCK" 300 $((1200 + HEALTH_TIMEOUT)) "the deploy of slot $SLOT ($VERSION)"
sdir=$(slot_dir "$SLOT")
pending=$(pending_dir "$SLOT")
running=$(recorded version "$SLOT")

# gate_unrestarted: a switch or rollback to this slot gates on HEALTH_PATH (switch.sh), so a
# slot this step leaves running must pass that gate now, not during an incident.
gate_unrestarted() {
  local answer was what next
  answer=$(health_gate "$SLOT" "$HEALTH_PATH" "$HEALTH_TIMEOUT") && return 0
  was=$(recorded health_path "$SLOT")
  what="GET $HEALTH_PATH on it got $answer for $HEALTH_TIMEOUT s, not 2xx (bluegreen:healthPath, bluegreen:healthTimeout)"
  if [ "$was" = "$HEALTH_PATH" ]; then
    next="It passed on $HEALTH_PATH when last deployed: see why it does not now (its journal below), then run pulumi up again."
  elif [ "$(live_color)" = "$SLOT" ]; then
    next="Set healthPath back to one ${running:-it} answers 2xx on${was:+ (it passed on $was)}: pulumi config set healthPath ${was:-PATH} && pulumi up
Or keep that healthPath until a release that serves $HEALTH_PATH is live (deploy it to the idle slot, switch to it), then set $HEALTH_PATH."
  else
    next="Set healthPath back to one ${running:-it} answers 2xx on${was:+ (it passed on $was)}: pulumi config set healthPath ${was:-PATH} && pulumi up
Or deploy a release that serves $HEALTH_PATH to $SLOT: pulumi config set ${SLOT}Version VERSION && pulumi up"
  fi
  next="$next
Last journal lines of $unit:
$(journal_tail "$SLOT")"
  if [ "$(live_color)" = "$SLOT" ]; then
    die_audited deploy "slot=$SLOT version=$VERSION health_path=$HEALTH_PATH" refused "slot $SLOT is live and does not pass the readiness gate: $what. It was not restarted and traffic stays on $SLOT (${running:-its release}), as before; nothing was changed. But once traffic moves off it, a switch back to it (a rollback) would be refused.
$next"
  fi
  die_audited deploy "slot=$SLOT version=$VERSION health_path=$HEALTH_PATH" failed "slot $SLOT (${running:-its release}) does not pass the readiness gate: $what, so a switch or rollback to it would be refused. It was not restarted and gets no public traffic: the live slot is untouched; nothing was changed.
$next"
}

# set_checked_health: the slot's deployed record says which healthPath it last passed on.
set_checked_health() {
  [ -f "$sdir/deployed" ] || return 0
  { grep -v -e '^health_path=' -e '^health_timeout=' "$sdir/deployed" || true; } >"$sdir/deployed.new"
  printf 'health_path=%s\nhealth_timeout=%s\n' "$HEALTH_PATH" "$HEALTH_TIMEOUT" >>"$sdir/deployed.new"
  mv -f "$sdir/deployed.new" "$sdir/deployed"
}

if [ -f "$sdir/deployed" ] && same_run "$work/record" "$sdir/deployed" && systemctl is-active -q "$unit"; then
  gate_unrestarted
  rm -rf "$pending"
  cp "$work/record" "$sdir/deployed"
  echo "slot $SLOT: already runs $VERSION this way; not restarted (pid $(systemctl show -p MainPID --value "$unit"))"
  exit 0
fi

if [ "$(live_color)" = "$SLOT" ] && systemctl is-active -q "$unit"; then
  if [ "$running" != "$VERSION" ]; then
    other=$(other_color "$SLOT")
    die_audited deploy "slot=$SLOT version=$VERSION running=${running:-unknown}" refused "slot $SLOT is live ($(router_name) sends it traffic) and runs ${running:-an unknown version}; refusing to restart it with $VERSION because that would drop requests. Nothing was changed.
Deploy to the idle slot instead, then switch:
  pulumi config set ${SLOT}Version ${running:-<its current version>}
  pulumi config set ${other}Version $VERSION && pulumi up
  pulumi config set active $other && pulumi up"
  fi
  gate_unrestarted
  set_checked_health
  rm -rf "$pending"
  mv "$work" "$pending"
  trap - EXIT
  audit deploy "slot=$SLOT version=$VERSION" staged
  echo "slot $SLOT: PENDING. It is live, so its new settings (env, secrets, unit or listen address) are staged, not applied; it keeps serving as before (pid $(systemctl show -p MainPID --value "$unit")). They apply when $SLOT is idle: right after the next switch away from it."
  exit 0
fi

previous=$running
if ! out=$(slot_apply "$SLOT" "$work" 2>&1); then
  die_audited deploy "slot=$SLOT version=$VERSION" failed "${out#bluegreen: error: }
It gets no public traffic: the live slot is untouched."
fi
rm -rf "$pending"
audit deploy "slot=$SLOT version=$VERSION was=${previous:-none}" ok
echo "slot $SLOT: $VERSION ready on $LISTEN in $(($(now_ms) - started)) ms (pid $(systemctl show -p MainPID --value "$unit"))"
