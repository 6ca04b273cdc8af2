#!/usr/bin/env bash
# Creates the app's user, group and directories. Idempotent; runs after the tools are installed.
# Every app has its own user and group (its slots and hooks run as them, and only it enters its
# data directory). The routers' group (BG_WEB_GROUP) holds only the routers: each slot's socket
# directory is in it (the unit's ExecStartPre), so the router reaches the socket and no other
# app's processes do. An app user is in its own group and no other.
# Inputs: none (layout.sh says everything).
set -euo pipefail
# lib.sh is beside this file: a symlink to it (bluegreen-status) is resolved; no program runs otherwise.
BG_SELF=$0 && { [[ $0 == */* ]] || BG_SELF=./$0; } && { [ ! -L "$0" ] || BG_SELF=$(readlink -f "$0"); }
# shellcheck source=/dev/null
. "${BG_SELF%/*}/lib.sh"

getent group "$BG_WEB_GROUP" >/dev/null || groupadd --system "$BG_WEB_GROUP"
getent group "$BG_APP_GROUP" >/dev/null || groupadd --system "$BG_APP_GROUP"
if ! id -u "$BG_APP_USER" >/dev/null 2>&1; then
  useradd --system --gid "$BG_APP_GROUP" --home-dir "$BG_DATA_DIR" --no-create-home --shell /usr/sbin/nologin "$BG_APP_USER"
elif was=$(id -gn "$BG_APP_USER") && [ "$was" != "$BG_APP_GROUP" ]; then
  # The default app's user, made by a bluegreen before apps had groups: its primary group was
  # the routers'. usermod also moves its data directory's files to the new group (running
  # processes keep theirs: the live slot is untouched, and still reached through its socket).
  usermod --gid "$BG_APP_GROUP" "$BG_APP_USER"
  log "user $BG_APP_USER now has primary group $BG_APP_GROUP (was $was)"
fi
if [[ " $(id -nG "$BG_APP_USER") " == *" $BG_WEB_GROUP "* ]]; then
  gpasswd -d "$BG_APP_USER" "$BG_WEB_GROUP" >/dev/null
  log "user $BG_APP_USER left the routers' group $BG_WEB_GROUP (through it, it reached every app's socket)"
fi

install -d -m 0755 "$BG_STATE_DIR" "$BG_STATE_DIR/slots" "$BG_RELEASES_DIR"
# 0700: only the app's own user enters its data.
install -d -m 0700 -o "$BG_APP_USER" -g "$BG_APP_GROUP" "$BG_DATA_DIR"
install -d -m 0700 "$BG_ENV_DIR"
install -d -m 0755 "$(dirname "$BG_AUDIT_LOG")" "$BG_WWW_DIR"
touch "$BG_LOCK" "$BG_RELEASE_LOCK" "$BG_AUDIT_LOG"
# Hook output lands in the audit log (secret values scrubbed): root's to read, and adm's.
chmod 0640 "$BG_AUDIT_LOG"
chgrp adm "$BG_AUDIT_LOG" 2>/dev/null || true
# Ubuntu's needrestart restarts services whose libraries an apt run replaced, unattended
# upgrades included; a restart of the live slot drops requests. Slots are left alone
# (override_rc, as Ubuntu does for docker): a new release goes through the switch instead.
if [ -d /etc/needrestart ]; then
  install -d -m 0755 /etc/needrestart/conf.d
  # shellcheck disable=SC2016 # Perl, not shell
  printf '%s\n' '# Managed by bluegreen: never restart a blue-green slot (a live one would drop requests).' \
    '$nrconf{override_rc}{qr(^bluegreen(-[a-z0-9-]+)?@(blue|green)\.service$)} = 0;' >/etc/needrestart/conf.d/bluegreen.conf
fi
# Operators' read-only view of the host: live colour, versions, health, audit tail.
ln -sfn "$BG_TOOLS_DIR/status.sh" "$BG_STATUS_COMMAND"
echo "host ready for app $BG_APP: user $BG_APP_USER, group $BG_APP_GROUP, state in $BG_STATE_DIR"
