#!/usr/bin/env bash
# Writes this app's router config (nginx: its site and the http-level file all apps share;
# HAProxy: its backends and loopback frontends, its routes in the shared public frontend,
# the shared main file), checks it, then reloads. On a rejected config the previous files
# are restored and the router keeps serving. Before anything is written, the app's claims
# are checked against every other app's on this host: its name (owned by one stack), its
# domains, its catch-all (no domains), its loopback ports, and the host's router. A port
# change that would cut the router off from the live tcp slot is refused too.
# The config names no colour and no link mode (nginx reads the live link and the slot's
# tcp flag per request; HAProxy reads a map set through its runtime API), so only a change
# of domains, ports, TLS or Retry-After reloads.
# After the reload it waits until the router answers the new config's hash on the check
# listener: a reload can fail after the config check passed (a port someone else holds),
# and the router then keeps the old config; the old files are put back so the disk says
# what it serves. The router-specific parts are in router-nginx.sh and router-haproxy.sh.
# Inputs (components/host/tools.ts):
#   OWNER       required  org/project/stack/id
#   DOMAINS     required  space-separated; may be empty (a catch-all app)
#   PORTS       required  "preview check blue green [acme]": acme only for HTTP-01 through HAProxy
#   BLUE_PORT   required  bluegreen:bluePort
#   GREEN_PORT  required  bluegreen:greenPort
# Stdin sections (components/router/routers.ts; the router's own, router_sections):
#   common      optional  nginx: the http-level file every app shares
#   site        optional  nginx: this app's site
#   main        optional  haproxy: the shared main file
#   public      optional  haproxy: the head of the shared public frontend
#   app         optional  haproxy: this app's backends and loopback frontends
#   route       optional  haproxy: this app's routes in the public frontend
#   page        optional  haproxy: the maintenance page
#   crt         optional  haproxy: this app's crt-list line (with tls)
set -euo pipefail
# lib.sh is beside this file: a symlink to it (bluegreen-status) is resolved; no program runs otherwise.
BG_SELF=$0 && { [[ $0 == */* ]] || BG_SELF=./$0; } && { [ ! -L "$0" ] || BG_SELF=$(readlink -f "$0"); }
# shellcheck source=/dev/null
. "${BG_SELF%/*}/lib.sh"
: "${OWNER:?}" "${DOMAINS?}" "${PORTS:?}" "${BLUE_PORT:?}" "${GREEN_PORT:?}"
take_lock "$BG_LOCK" 300

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
read_sections "$work"
for f in $(router_sections); do
  [ -s "$work/$f" ] || die "stdin must carry the sections $(router_sections) for the $(router_name) router"
done

live=$(live_color)
if [ -n "$live" ] && [ -f "$(slot_dir "$live")/tcp" ]; then
  want=$BLUE_PORT
  [ "$live" = blue ] || want=$GREEN_PORT
  have=$(cat "$(slot_dir "$live")/listen")
  if [ "$have" != "127.0.0.1:$want" ]; then
    die "bluegreen:${live}Port is now $want, but $live is live and listens on $have; $(router_name) would lose it. Nothing was changed.
Change the idle slot's port first, switch to it, then change this one:
  pulumi config set ${live}Port ${have##*:} && pulumi up"
  fi
fi

# The shared files and the claims change under the host lock, held for seconds; a switch
# of any app never takes it.
install -d -m 0755 "$BG_CLAIMS_DIR" "$(dirname "$BG_NGINX_SITE")"
exec 7>"$BG_HOST_LOCK"
flock -w 120 7 || die "another app's router change has held $BG_HOST_LOCK for over 120 s"
check_claims "$OWNER" "$DOMAINS" "$PORTS"

# A host whose conf.d file is still a whole single-app site (bluegreen before apps had
# names) belongs to the app named bluegreen; only that app's stack moves it.
if [ -f "$BG_NGINX_COMMON" ] && grep -q '^upstream bluegreen_blue_socket' "$BG_NGINX_COMMON" && [ "$BG_APP" != bluegreen ]; then
  die "this host serves an app of an older bluegreen from $BG_NGINX_COMMON. Run pulumi up on that app's stack first (it moves its site aside, with one reload and no other change), then this one. Nothing was changed."
fi

# A host set up before the live link existed: seed it (and the slots' tcp flags) from
# what the host records, so the new site serves the same slot from its first request.
if [ ! -L "$BG_LIVE_LINK" ] && [ -f "$BG_ACTIVE_FILE" ]; then
  recorded_live=$(cat "$BG_ACTIVE_FILE")
  check_color "$recorded_live"
  set_live "$recorded_live"
fi
for c in blue green; do
  case "$(cat "$(slot_dir "$c")/listen" 2>/dev/null || true)" in
    127.0.0.1:*) [ -f "$(slot_dir "$c")/tcp" ] || : >"$(slot_dir "$c")/tcp" ;;
  esac
done

router_prepare "$work"

# Port 80 redirects to https only while the served certificate covers every domain and the
# site serves :443: tls turned off, or a new domain (the tls step issues for it and puts the
# redirect back once a handshake gets the new certificate).
had_https=no
[ ! -f "$BG_HTTPS_FLAG" ] || had_https=yes
https_ok=yes
if ! router_serves_https "$work" || ! cert_covers "$BG_TLS_PEM" "$DOMAINS"; then https_ok=no; fi
if [ "$https_ok" = no ] && [ -f "$BG_HTTPS_FLAG" ]; then
  rm -f "$BG_HTTPS_FLAG"
  router_sync
  log "port 80 stops redirecting to https until the certificate covers: $DOMAINS"
fi

files=$(router_files)
unchanged=yes
for f in $files; do cmp -s "$work/$f" "$(router_target "$f")" || unchanged=no; done
if [ "$unchanged" = yes ]; then
  write_claims "$OWNER" "$DOMAINS" "$PORTS"
  echo "$(router_name) config unchanged"
  exit 0
fi
# put_back: the files the router still serves go back on disk (and the redirect with them).
put_back() {
  local f
  for f in $files; do
    if [ -f "$work/$f.old" ]; then cp -p "$work/$f.old" "$(router_target "$f")"; else rm -f "$(router_target "$f")"; fi
  done
  if [ "$had_https" = yes ] && [ ! -f "$BG_HTTPS_FLAG" ]; then
    : >"$BG_HTTPS_FLAG"
    router_sync
  fi
}
for f in $files; do
  if [ -f "$(router_target "$f")" ]; then cp -p "$(router_target "$f")" "$work/$f.old"; fi
  install -d -m 0755 "$(dirname "$(router_target "$f")")"
  install -m 0644 "$work/$f" "$(router_target "$f")"
done
if ! out=$(router_test 2>&1); then
  put_back
  die "$(router_name) rejected the new config, so the previous one was restored and $(router_name) keeps serving:
$out"
fi
router_reload
want=$(router_config_hash "$work")
check_port=$(echo "$PORTS" | cut -d' ' -f2)
deadline=$(($(date +%s) + 15))
until [ "$(curl -s --max-time 2 "http://127.0.0.1:$check_port/.bluegreen/site" || true)" = "$want" ]; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    put_back
    die "$(router_name) accepted the new config but did not load it within 15 s, so it keeps serving the previous one, whose files were put back. Its log says:
$(router_error_log_tail)"
  fi
  sleep 0.2
done
write_claims "$OWNER" "$DOMAINS" "$PORTS"
echo "$(router_name) config updated and reloaded (verified: $(router_name) serves it)"
