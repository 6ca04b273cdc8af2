#!/usr/bin/env bash
# Installs nginx and curl if missing and lets nginx's workers reach the slot sockets. Idempotent.
set -euo pipefail
# shellcheck source=/dev/null
. "$(dirname "$(readlink -f "$0")")/lib.sh"
export DEBIAN_FRONTEND=noninteractive

ensure_commands nginx=nginx curl=curl flock=util-linux openssl=openssl

# nginx's workers join the web group so they may connect to every app's 0660 sockets.
# Workers pick up supplementary groups only when nginx starts, hence the restart.
restart=no
if ! id -nG www-data | tr ' ' '\n' | grep -qx "$BG_WEB_GROUP"; then
  usermod -aG "$BG_WEB_GROUP" www-data
  restart=yes
fi
# Our site is the default server; the distro's would shadow it.
if [ -e /etc/nginx/sites-enabled/default ]; then
  rm -f /etc/nginx/sites-enabled/default
  restart=yes
fi
systemctl enable -q nginx
if [ "$restart" = yes ] || ! systemctl is-active -q nginx; then
  with_deadline 120 "restarting nginx" systemctl restart nginx
fi
echo "nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') installed and running"
