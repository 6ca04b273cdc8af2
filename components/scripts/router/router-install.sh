#!/usr/bin/env bash
# Installs nginx and curl if missing and lets nginx's workers reach the slot sockets. Idempotent.
# Inputs: none.
set -euo pipefail
# lib.sh is beside this file: a symlink to it (bluegreen-status) is resolved; no program runs otherwise.
BG_SELF=$0 && { [[ $0 == */* ]] || BG_SELF=./$0; } && { [ ! -L "$0" ] || BG_SELF=$(readlink -f "$0"); }
# shellcheck source=/dev/null
. "${BG_SELF%/*}/lib.sh"
export DEBIAN_FRONTEND=noninteractive

ensure_commands nginx=nginx curl=curl flock=util-linux openssl=openssl

# nginx's workers join the routers' group (shared.webGroup), the group of every app's socket
# directory, so they may connect to every app's 0660 socket; no app's processes are in it.
# A worker gets its groups when it is spawned (ngx_worker_process_init: initgroups for the
# worker user), so a reload would do; this first install restarts anyway.
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
