#!/usr/bin/env bash
# Installs HAProxy (and socat, the runtime API's client) if missing, and points Debian's
# unit at bluegreen's config directory. Idempotent. HAProxy runs master-worker (Debian's
# unit: -Ws), so a reload hands the listening sockets to the new workers, and has its master
# CLI (-S /run/haproxy-master.sock), which the switch goes through.
# A host whose apps nginx serves is refused: the two cannot both hold port 80, and moving
# live apps from one router to the other is not done in place.
# Inputs: none.
set -euo pipefail
# lib.sh is beside this file: a symlink to it (bluegreen-status) is resolved; no program runs otherwise.
BG_SELF=$0 && { [[ $0 == */* ]] || BG_SELF=./$0; } && { [ ! -L "$0" ] || BG_SELF=$(readlink -f "$0"); }
# shellcheck source=/dev/null
. "${BG_SELF%/*}/lib.sh"
export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 NEEDRESTART_MODE=l

served=$(find /etc/nginx/bluegreen -maxdepth 1 -name '*.conf' -printf '%f ' 2>/dev/null || true)
if [ -n "$served" ] || grep -qs '^upstream bluegreen_' /etc/nginx/conf.d/bluegreen.conf; then
  die "nginx serves bluegreen apps on this host (${served:-/etc/nginx/conf.d/bluegreen.conf}); bluegreen:router haproxy cannot take port 80 from them. Keep router nginx on this host, or deploy to a new host with router haproxy and move traffic there. Nothing was changed."
fi

ensure_commands haproxy=haproxy socat=socat curl=curl flock=util-linux openssl=openssl

install -d -m 0755 "$BG_HAPROXY_DIR" "$BG_HAPROXY_ROUTES_DIR"
# The distribution's haproxy.cfg opens the admin socket to the haproxy group, and a reload
# keeps a socket as it was created: replace it before HAProxy (re)starts, with a main file
# that router-config.sh replaces (version 0 is older than any).
restart=no
if ! grep -q '^# bluegreen-haproxy [0-9]' "$BG_HAPROXY_MAIN" 2>/dev/null; then
  [ ! -f "$BG_HAPROXY_MAIN" ] || cp -p "$BG_HAPROXY_MAIN" "$BG_HAPROXY_MAIN.before-bluegreen"
  cat >"$BG_HAPROXY_MAIN" <<CFG
# Managed by bluegreen: a start-up file until an app's config replaces it. The distribution's
# file is kept as $BG_HAPROXY_MAIN.before-bluegreen.
# bluegreen-haproxy 0
global
    stats socket $BG_HAPROXY_ADMIN mode 600 level admin
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
CFG
  restart=yes
fi
# Debian's unit runs `haproxy -Ws -f $CONFIG`: bluegreen's directory is read after the main file.
want="CONFIG=\"$BG_HAPROXY_MAIN -f $BG_HAPROXY_DIR\""
if ! grep -qxF "$want" /etc/default/haproxy 2>/dev/null; then
  printf '# Added by bluegreen: every app'"'"'s backends and frontends are in %s.\n%s\n' "$BG_HAPROXY_DIR" "$want" >>/etc/default/haproxy
  restart=yes
fi
# The switch reaches every worker through the master CLI (-S), which Debian's unit passes in
# EXTRAOPTS: an EXTRAOPTS line of the defaults file replaces it, so it gets -S too (a restart:
# a reload keeps the master's command line).
if [ "$(haproxy_master_cli_opts /etc/default/haproxy)" = added ]; then
  log "/etc/default/haproxy sets EXTRAOPTS without the master CLI: added -S $BG_HAPROXY_MASTER (HAProxy restarts once)"
  restart=yes
fi
systemctl enable -q haproxy
if [ "$restart" = yes ] || ! systemctl is-active -q haproxy; then
  with_deadline 120 "restarting haproxy" systemctl restart haproxy
fi
for _ in $(seq 1 50); do [ -S "$BG_HAPROXY_MASTER" ] && break; sleep 0.1; done
[ -S "$BG_HAPROXY_MASTER" ] || die "HAProxy runs without its master CLI $BG_HAPROXY_MASTER, which bluegreen switches through; check how the unit starts it: systemctl cat haproxy (it needs -S $BG_HAPROXY_MASTER)"
echo "haproxy $(haproxy -v | sed -n '1s/^HAProxy version \([^ ]*\).*/\1/p') installed and running"
