#!/usr/bin/env bash
# Writes the nginx site read from stdin, checks it with nginx -t, then reloads.
# On a rejected config the previous file is restored and nginx keeps serving.
# Input: MODE (socket|tcp), BLUE_PORT, GREEN_PORT (tcp mode); stdin: the site.
set -euo pipefail
# shellcheck source=/dev/null
. "$(dirname "$(readlink -f "$0")")/lib.sh"
: "${MODE:?}" "${BLUE_PORT:?}" "${GREEN_PORT:?}"
check_mode "$MODE"
take_lock "$BG_LOCK" 120

new=$(mktemp)
trap 'rm -f "$new"' EXIT
cat >"$new"

install -d -m 0755 "$BG_NGINX_DIR"
printf 'server 127.0.0.1:%s;\n' "$BLUE_PORT" >"$BG_NGINX_DIR/slot-blue.conf"
printf 'server 127.0.0.1:%s;\n' "$GREEN_PORT" >"$BG_NGINX_DIR/slot-green.conf"

# A new host (or a mode change) gets links that follow the recorded live colour,
# so nginx -t can resolve its includes before the first switch.
live=$(cat "$BG_ACTIVE_FILE" 2>/dev/null || echo blue)
check_color "$live"
[ -L "$(live_link "$MODE")" ] || atomic_link "$(link_target "$MODE" "$live")" "$(live_link "$MODE")"
[ -L "$(preview_link "$MODE")" ] || atomic_link "$(link_target "$MODE" "$(other_color "$live")")" "$(preview_link "$MODE")"

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
echo "nginx site updated ($MODE mode) and reloaded"
