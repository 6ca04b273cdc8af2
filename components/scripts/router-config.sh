#!/usr/bin/env bash
# Writes this app's nginx site and the http-level file all apps share, checks them with
# nginx -t, then reloads. On a rejected config the previous files are restored and nginx
# keeps serving. Before anything is written, the app's claims are checked against every
# other app's on this host: its name (owned by one stack), its domains, its catch-all
# (no domains) and its loopback ports. A port change that would cut nginx off from the
# live tcp slot is refused too.
# The site names no colour and no link mode: each request reads the live link and the
# slot's tcp flag, so only a change of domains, ports, TLS or Retry-After reloads nginx.
# Input: OWNER (org/project/stack), DOMAINS (space-separated), PORTS ("preview check blue
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

# tls turned off: stop redirecting to :443 before the new site stops serving it.
grep -q '^ *listen 443 ' "$work/site" || rm -f "$BG_HTTPS_FLAG"

if cmp -s "$work/site" "$BG_NGINX_SITE" && cmp -s "$work/common" "$BG_NGINX_COMMON"; then
  write_claims "$OWNER" "$DOMAINS" "$PORTS"
  echo "nginx site unchanged"
  exit 0
fi
for f in site common; do
  target=$BG_NGINX_SITE
  [ "$f" = site ] || target=$BG_NGINX_COMMON
  if [ -f "$target" ]; then cp -p "$target" "$work/$f.old"; fi
  install -m 0644 "$work/$f" "$target"
done
if ! out=$(nginx_test 2>&1); then
  for f in site common; do
    target=$BG_NGINX_SITE
    [ "$f" = site ] || target=$BG_NGINX_COMMON
    if [ -f "$work/$f.old" ]; then cp -p "$work/$f.old" "$target"; else rm -f "$target"; fi
  done
  die "nginx rejected the new site, so the previous one was restored and nginx keeps serving:
$out"
fi
write_claims "$OWNER" "$DOMAINS" "$PORTS"
nginx_reload
echo "nginx site updated and reloaded"
