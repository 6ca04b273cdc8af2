#!/usr/bin/env bash
# Creates the app's user and directories. Idempotent; runs after the tools are installed.
# Every app has its own user (its slots run as it, and only it enters its data directory);
# slots run in the shared web group, through which nginx's workers reach their sockets.
set -euo pipefail
# shellcheck source=/dev/null
. "$(dirname "$(readlink -f "$0")")/lib.sh"

getent group "$BG_WEB_GROUP" >/dev/null || groupadd --system "$BG_WEB_GROUP"
getent group "$BG_APP_USER" >/dev/null || groupadd --system "$BG_APP_USER"
id -u "$BG_APP_USER" >/dev/null 2>&1 ||
  useradd --system --gid "$BG_APP_USER" --home-dir "$BG_DATA_DIR" --no-create-home --shell /usr/sbin/nologin "$BG_APP_USER"

install -d -m 0755 "$BG_STATE_DIR" "$BG_STATE_DIR/slots" "$BG_RELEASES_DIR"
# 0700: every app's slots share the web group, so only the owner may enter its data.
install -d -m 0700 -o "$BG_APP_USER" -g "$BG_APP_USER" "$BG_DATA_DIR"
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
echo "host ready for app $BG_APP: user $BG_APP_USER, state in $BG_STATE_DIR"
