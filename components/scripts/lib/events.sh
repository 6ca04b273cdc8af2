# shellcheck shell=bash
# Events: what bluegreen tells people (components/scripts/notify/). Every audit line is looked
# at (audit calls events_from_audit), and the ones that matter are queued as files in a queue
# directory; notify-drain.sh delivers them, started by a systemd .path unit when the queue is
# not empty. So no step waits for a webhook, and a target that hangs or refuses delays nothing.
# Without notifications configured (no notify.conf) nothing is queued.
# Sourced by lib.sh (after layout.sh and the router file), never run.

BG_NOTIFY_CONF=$BG_NOTIFY_CONF_DIR/notify.conf
bg_event_seq=0

# notify_event EVENT RESULT MESSAGE [FIELDS]: queues one event when notifications are on and
# EVENT is one of bluegreen:notifyEvents. One small file, written then renamed; never fails and
# never waits (a full disk loses the event; the audit log has it, when it has room). Builtins
# only but the rename: it runs inside a switch.
notify_event() {
  [ -f "$BG_NOTIFY_CONF" ] || return 0
  local line wanted="" id t tmp
  while IFS= read -r line || [ -n "$line" ]; do
    [[ $line != events=* ]] || wanted=" ${line#events=} "
  done <"$BG_NOTIFY_CONF"
  [[ $wanted == *" $1 "* ]] || return 0
  t=${EPOCHREALTIME/[.,]/}
  bg_event_seq=$((bg_event_seq + 1))
  id="${t:-0}-$$-$bg_event_seq"
  # Written beside the queue, then renamed into it: the drain's .path unit sees only whole events.
  tmp="$BG_NOTIFY_DIR/.new-$id"
  {
    [ -d "$BG_NOTIFY_DIR/queue" ] &&
      printf 'event=%s\nresult=%s\nat=%(%Y-%m-%dT%H:%M:%SZ)T\nmessage=%s\nfields=%s\nattempts=0\nnext=0\n' \
        "$1" "$2" -1 "${3//$'\n'/ }" "${4:-}" >"$tmp" &&
      mv -f "$tmp" "$BG_NOTIFY_DIR/queue/$id"
  } 2>/dev/null || rm -f "$tmp" 2>/dev/null || true
  return 0
}

# events_from_audit ACTION FIELDS RESULT: the audit line as an event, for the ones people want
# to hear of: a switch (done, refused or put back), an automatic rollback, a staged change that
# failed on the old slot, a failed hook, a failed backup, a restore, a failed certificate renewal.
# A switch's duration comes in BG_SWITCH_MS (switch.sh sets it before its audit line).
events_from_audit() {
  local action=$1 fields=$2 result=$3 to from was="" took=""
  # Neither notifications nor metrics on this host: nothing to do.
  [ -f "$BG_NOTIFY_CONF" ] || [ -d "$BG_METRICS_DIR" ] || return 0
  audit_field "$fields" to && to=$AF
  audit_field "$fields" from && from=$AF
  case "$action:$result" in
    switch:ok)
      switch_timing
      [ -z "$from" ] || [ "$from" = none ] || was=" (was $from)"
      [ -z "${BG_SWITCH_MS:-}" ] || took=", switched in ${BG_SWITCH_MS} ms"
      audit_field "$fields" version
      notify_event switch "$result" "$BG_APP: $to is live$was, version $AF$took" "$fields"
      ;;
    switch:*) notify_event switch "$result" "$BG_APP: the switch to $to was $result; traffic stays on ${from:-the slot it was on}" "$fields" ;;
    rollback:*) notify_event rollback "$result" "$BG_APP: automatic rollback from $from to $to: $result" "$fields" ;;
    deploy:failed)
      [[ " $fields " == *" staged=applied "* ]] || return 0
      audit_field "$fields" slot
      notify_event staged-failed "$result" "$BG_APP: slot $AF (now idle) did not come up with the settings staged for it; a rollback to it is refused until it is ready" "$fields"
      ;;
    hook:failed)
      local name slot
      audit_field "$fields" name && name=$AF
      audit_field "$fields" slot && slot=$AF
      audit_field "$fields" exit
      notify_event hook-failed "$result" "$BG_APP: $name failed on slot $slot (exit $AF)" "$fields"
      ;;
    backup:failed | backup-offsite:failed)
      local id
      audit_field "$fields" id && id=$AF
      audit_field "$fields" why
      notify_event backup-failed "$result" "$BG_APP: $action $id failed: $AF" "$fields"
      ;;
    restore:*)
      audit_field "$fields" id
      notify_event restore "$result" "$BG_APP: restore of backup $AF: $result" "$fields"
      ;;
    tls-*:failed) notify_event tls-failed "$result" "$BG_APP: certificate $action failed; the certificate served before stays in place" "$fields" ;;
  esac
  return 0
}

# audit_field FIELDS KEY: sets AF to the value of KEY=... in an audit line's fields ("" when absent).
AF=""
audit_field() {
  AF=""
  [[ " $1 " =~ \ $2=([^ ]*)\  ]] && AF=${BASH_REMATCH[1]}
  return 0
}

# switch_timing: adds the switch's duration (BG_SWITCH_MS) to the metrics' record of switch durations.
switch_timing() {
  { [ -n "${BG_SWITCH_MS:-}" ] && [ -d "$BG_METRICS_DIR" ]; } || return 0
  printf '%s\n' "$BG_SWITCH_MS" >>"$BG_METRICS_DIR/switch-ms" 2>/dev/null || true
}

# json_str TEXT: TEXT as a JSON string; backslash, quote and every control character escaped
# (hosts have no jq). status.sh and the notifications build their JSON with it.
json_str() {
  local s=$1 out="" c
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/\\r}
  s=${s//$'\t'/\\t}
  while [[ $s =~ ^([^[:cntrl:]]*)([[:cntrl:]])(.*)$ ]]; do
    printf -v c '\\u%04x' "'${BASH_REMATCH[2]}"
    out+=${BASH_REMATCH[1]}$c
    s=${BASH_REMATCH[3]}
  done
  printf '"%s"' "$out$s"
}
