#!/usr/bin/env bash
# Writes the nginx site read from stdin, checks it with nginx -t, then reloads.
# On a rejected config the previous file is restored and nginx keeps serving.
# The site names no colour and no link mode: each request reads the live link and
# the slot's tcp flag. A port change that would cut nginx off from the live slot
# is refused before anything changes.
# Input: BLUE_PORT, GREEN_PORT (the ports the site sends a tcp slot's traffic to); stdin: the site.
set -euo pipefail
# shellcheck source=/dev/null
. "$(dirname "$(readlink -f "$0")")/lib.sh"
: "${BLUE_PORT:?}" "${GREEN_PORT:?}"
take_lock "$BG_LOCK" 300

new=$(mktemp)
trap 'rm -f "$new"' EXIT
cat >"$new"

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
grep -q '^ *listen 443 ' "$new" || rm -f "$BG_HTTPS_FLAG"

if cmp -s "$new" "$BG_NGINX_SITE"; then
  echo "nginx site unchanged"
  exit 0
fi
backup=$(mktemp)
had_old=no
if [ -f "$BG_NGINX_SITE" ]; then cp -p "$BG_NGINX_SITE" "$backup"; had_old=yes; fi
install -m 0644 "$new" "$BG_NGINX_SITE"
if ! out=$(nginx_test 2>&1); then
  if [ "$had_old" = yes ]; then cp -p "$backup" "$BG_NGINX_SITE"; else rm -f "$BG_NGINX_SITE"; fi
  rm -f "$backup"
  die "nginx rejected the new site, so the previous one was restored and nginx keeps serving:
$out"
fi
rm -f "$backup"
nginx_reload
echo "nginx site updated and reloaded"
