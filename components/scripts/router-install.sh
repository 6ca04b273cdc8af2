#!/usr/bin/env bash
# Installs nginx and curl if missing and lets nginx's workers reach the slot sockets. Idempotent.
set -euo pipefail
# shellcheck source=/dev/null
. "$(dirname "$(readlink -f "$0")")/lib.sh"
export DEBIAN_FRONTEND=noninteractive

missing=()
command -v nginx >/dev/null 2>&1 || missing+=(nginx)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v flock >/dev/null 2>&1 || missing+=(util-linux)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  with_deadline 900 "apt-get update" apt-get -o DPkg::Lock::Timeout=300 update -q
  with_deadline 900 "apt-get install ${missing[*]}" apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}"
fi

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
