#!/usr/bin/env bash
# Writes this app's nginx site and the http-level file all apps share, checks them with
# nginx -t, then reloads. On a rejected config the previous files are restored and nginx
# keeps serving. Before anything is written, the app's claims are checked against every
# other app's on this host: its name (owned by one stack), its domains, its catch-all
# (no domains) and its loopback ports. A port change that would cut nginx off from the
# live tcp slot is refused too.
# The site names no colour and no link mode: each request reads the live link and the
# slot's tcp flag, so only a change of domains, ports, TLS or Retry-After reloads nginx.
# After the reload it waits until nginx answers the new site's hash on the check listener:
# a reload can fail after nginx -t passed (a port someone else holds), and nginx then keeps
# the old config; the old files are put back so the disk says what nginx serves.
# Input: OWNER (org/project/stack/id), DOMAINS (space-separated), PORTS ("preview check blue
# green"), BLUE_PORT, GREEN_PORT; stdin: sections common and site (render.ts).
set -euo pipefail
# shellcheck source=/dev/null
. "$(dirname "$(readlink -f "$0")")/lib.sh"
: "${OWNER:?}" "${DOMAINS?}" "${PORTS:?}" "${BLUE_PORT:?}" "${GREEN_PORT:?}"
take_lock "$BG_LOCK" 300

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
read_sections "$work"
if ! { [ -s "$work/site" ] && [ -s "$work/common" ]; }; then die "stdin must carry the common and site sections"; fi

live=$(live_color)
if [ -n "$live" ] && [ -f "$(slot_dir "$live")/tcp" ]; then
  want=$BLUE_PORT
  [ "$live" = blue ] || want=$GREEN_PORT
  have=$(cat "$(slot_dir "$live")/listen")
  if [ "$have" != "127.0.0.1:$want" ]; then
    die "bluegreen:${live}Port is now $want, but $live is live and listens on $have; nginx would lose it. Nothing was changed.
Change the idle slot's port first, switch to it, then change this one:
  pulumi config set ${live}Port ${have##*:} && pulumi up"
  fi
fi

# The shared files and the claims change under the host lock, held for seconds; a switch
# of any app never takes it.
install -d -m 0755 "$BG_CLAIMS_DIR" "$(dirname "$BG_NGINX_SITE")"
exec 7>"$BG_HOST_LOCK"
flock -w 120 7 || die "another app's nginx change has held $BG_HOST_LOCK for over 120 s"
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

# The shared http-level file: never replace a newer one (another app's newer bluegreen) with ours.
common_version() { { sed -n 's/^# bluegreen-common \([0-9][0-9]*\)$/\1/p' "$1" 2>/dev/null || true; } | head -n 1; }
have_version=$(common_version "$BG_NGINX_COMMON")
if [ -n "$have_version" ] && [ "$have_version" -gt "$(common_version "$work/common")" ]; then
  log "keeping the host's shared nginx file (version $have_version, newer than this app's bluegreen)"
  cp "$BG_NGINX_COMMON" "$work/common"
fi

# Port 80 redirects to https only while the served certificate covers every domain and the
# site serves :443: tls turned off, or a new domain (the tls step issues for it and puts the
# redirect back once a handshake gets the new certificate).
had_https=no
[ ! -f "$BG_HTTPS_FLAG" ] || had_https=yes
https_ok=yes
if ! grep -q '^ *listen 443 ' "$work/site" || ! cert_covers "$BG_TLS_PEM" "$DOMAINS"; then https_ok=no; fi
[ "$https_ok" = yes ] || [ ! -f "$BG_HTTPS_FLAG" ] || { rm -f "$BG_HTTPS_FLAG" && log "port 80 stops redirecting to https until the certificate covers: $DOMAINS"; }

if cmp -s "$work/site" "$BG_NGINX_SITE" && cmp -s "$work/common" "$BG_NGINX_COMMON"; then
  write_claims "$OWNER" "$DOMAINS" "$PORTS"
  echo "nginx site unchanged"
  exit 0
fi
# target_of NAME: where the site or the common section goes.
target_of() { if [ "$1" = site ]; then echo "$BG_NGINX_SITE"; else echo "$BG_NGINX_COMMON"; fi; }
# put_back: the files nginx still serves go back on disk (and the redirect with them).
put_back() {
  local f
  for f in site common; do
    if [ -f "$work/$f.old" ]; then cp -p "$work/$f.old" "$(target_of "$f")"; else rm -f "$(target_of "$f")"; fi
  done
  [ "$had_https" = no ] || : >"$BG_HTTPS_FLAG"
}
for f in site common; do
  if [ -f "$(target_of "$f")" ]; then cp -p "$(target_of "$f")" "$work/$f.old"; fi
  install -m 0644 "$work/$f" "$(target_of "$f")"
done
if ! out=$(nginx_test 2>&1); then
  put_back
  die "nginx rejected the new site, so the previous one was restored and nginx keeps serving:
$out"
fi
nginx_reload
want=$(sed -n 's|^ *return 200 "\([0-9a-f]\{16\}\)";$|\1|p' "$BG_NGINX_SITE" | head -n 1)
check_port=$(echo "$PORTS" | cut -d' ' -f2)
deadline=$(($(date +%s) + 15))
until [ "$(curl -s --max-time 2 "http://127.0.0.1:$check_port/.bluegreen/site" || true)" = "$want" ]; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    put_back
    die "nginx accepted the new site (nginx -t) but did not load it within 15 s, so it keeps serving the previous one, whose files were put back. nginx's error log says:
$(tail -n 5 "${BG_NGINX_ERROR_LOG:-/var/log/nginx/error.log}" 2>/dev/null | sed 's/^/  /')"
  fi
  sleep 0.2
done
write_claims "$OWNER" "$DOMAINS" "$PORTS"
echo "nginx site updated and reloaded (verified: nginx serves it)"
