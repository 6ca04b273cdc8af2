#!/usr/bin/env bash
# The notifications step: STATE=on installs notify.conf, one curl config per webhook target (its
# URL, 0600: no URL ever reaches a command line), the drain (a .path unit starts it when the
# queue is not empty) and the periodic checks' timer; STATE=off (its delete step) removes them.
# Inputs (components/host/tools.ts):
#   STATE         required         on or off
# Stdin sections (components/app/notifications.ts):
#   conf          optional         notify.conf: targets, mail addresses, events, disk threshold
#   urls          optional secret  KIND=URL lines, one per webhook target
#   drainService  optional         the drain's service unit
#   drainPath     optional         its .path unit (the queue is not empty)
#   checkService  optional         the periodic checks' service unit
#   checkTimer    optional         their timer
set -euo pipefail
# lib.sh is beside this file: a symlink to it (bluegreen-status) is resolved; no program runs otherwise.
BG_SELF=$0 && { [[ $0 == */* ]] || BG_SELF=./$0; } && { [ ! -L "$0" ] || BG_SELF=$(readlink -f "$0"); }
# shellcheck source=/dev/null
. "${BG_SELF%/*}/lib.sh"
: "${STATE:?}"
umask 077
install -d -m 0700 "$BG_ENV_DIR" "$BG_NOTIFY_CONF_DIR"
work=$(mktemp -d "$BG_ENV_DIR/.notify.XXXXXX")
trap 'rm -rf "$work"' EXIT
units=("$BG_NOTIFY_UNIT.service" "$BG_NOTIFY_UNIT.path" "$BG_CHECK_UNIT.service" "$BG_CHECK_UNIT.timer")

case "$STATE" in
  off)
    systemctl disable -q --now "$BG_NOTIFY_UNIT.path" "$BG_CHECK_UNIT.timer" 2>/dev/null || true
    for u in "${units[@]}"; do rm -f "$BG_UNIT_DIR/$u"; done
    with_deadline 120 "systemctl daemon-reload" systemctl daemon-reload
    rm -rf "$BG_NOTIFY_CONF_DIR"
    audit notify-config "state=off" ok
    echo "notifications: off"
    exit 0
    ;;
  on) ;;
  *) die "STATE must be on or off (got '$STATE')" ;;
esac
# The delete step (off) reads nothing on stdin.
read_sections "$work"

for s in conf drainService drainPath checkService checkTimer; do [ -s "$work/$s" ] || die "stdin must carry the $s section"; done
install -d -m 0700 "$BG_NOTIFY_DIR" "$BG_NOTIFY_DIR/queue" "$BG_NOTIFY_DIR/failed" "$BG_NOTIFY_DIR/state"
install -m 0644 "$work/conf" "$BG_NOTIFY_CONF.new" && mv -f "$BG_NOTIFY_CONF.new" "$BG_NOTIFY_CONF"
# One curl config per target: `url = "..."` (config validated it: no quote, backslash or space).
for kind in webhook slack discord ntfy; do
  url=""
  [ ! -f "$work/urls" ] || url=$(sed -n "s/^$kind=//p" "$work/urls")
  if [ -z "$url" ]; then
    rm -f "$BG_NOTIFY_CONF_DIR/$kind.curl"
    continue
  fi
  printf '# Managed by bluegreen (Pulumi): the %s target of %s. Root only.\nurl = "%s"\n' "$kind" "$BG_APP" "$url" >"$work/$kind.curl"
  install -m 0600 "$work/$kind.curl" "$BG_NOTIFY_CONF_DIR/$kind.curl.new"
  mv -f "$BG_NOTIFY_CONF_DIR/$kind.curl.new" "$BG_NOTIFY_CONF_DIR/$kind.curl"
done
changed=no
for pair in drainService:"$BG_NOTIFY_UNIT.service" drainPath:"$BG_NOTIFY_UNIT.path" checkService:"$BG_CHECK_UNIT.service" checkTimer:"$BG_CHECK_UNIT.timer"; do
  if ! cmp -s "$work/${pair%%:*}" "$BG_UNIT_DIR/${pair#*:}"; then
    install -m 0644 "$work/${pair%%:*}" "$BG_UNIT_DIR/${pair#*:}"
    changed=yes
  fi
done
[ "$changed" = no ] || with_deadline 120 "systemctl daemon-reload" systemctl daemon-reload
systemctl enable -q --now "$BG_NOTIFY_UNIT.path" "$BG_CHECK_UNIT.timer"
note=""
if [ -n "$(field "$BG_NOTIFY_CONF" email)" ] && ! command -v sendmail >/dev/null 2>&1; then
  note="; warning: mail is configured but this host has no sendmail (install postfix or msmtp-mta): mail notifications are given up on and audited"
fi
audit notify-config "state=on targets=$(field "$BG_NOTIFY_CONF" targets | tr ' ' ',')" ok
echo "notifications: $(field "$BG_NOTIFY_CONF" targets) for $(field "$BG_NOTIFY_CONF" events | wc -w) kinds of event; delivered by $BG_NOTIFY_UNIT.service, never by the step that made the event$note"
