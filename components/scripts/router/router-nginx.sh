# shellcheck shell=bash
# The nginx router, sourced by lib.sh when BG_ROUTER=nginx. Each router_* function here is one
# of the router seam's operations (components/router/contract.ts says what each must do;
# router-haproxy.sh has the same ones); every other host script is the same for both routers.
# nginx reads the live link, the slots' tcp flags and the maintenance flag on every
# request, so moving traffic is one rename and nothing is pushed to nginx.

router_name() { echo nginx; }

# router_sync: make the router serve what the state files say (live, idle, maintenance).
router_sync() { :; }

router_test() { nginx_test; }
router_reload() { nginx_reload; }

# router_sections: the stdin sections router-config.sh reads; router_target NAME: where each goes.
router_sections() { echo "common site"; }
router_files() { router_sections; }
router_target() {
  case "$1" in
    site) echo "$BG_NGINX_SITE" ;;
    common) echo "$BG_NGINX_COMMON" ;;
    *) die "unknown router section: $1" ;;
  esac
}

# router_prepare WORK: turns the sections in WORK into the files to install. The shared
# http-level file is never replaced by an older one (another app's newer bluegreen).
router_prepare() {
  local work=$1 have
  have=$(shared_version "$BG_NGINX_COMMON" bluegreen-common)
  if [ -n "$have" ] && [ "$have" -gt "$(shared_version "$work/common" bluegreen-common)" ]; then
    log "keeping the host's shared nginx file (version $have, newer than this app's bluegreen)"
    cp "$BG_NGINX_COMMON" "$work/common"
  fi
}

# router_config_hash WORK: what the check listener answers on /.bluegreen/site once nginx serves this site.
router_config_hash() { sed -n 's|^ *return 200 "\([0-9a-f]\{16\}\)";$|\1|p' "$1/site" | head -n 1; }

# router_serves_https WORK: the prepared site listens on :443.
router_serves_https() { grep -q '^ *listen 443 ' "$1/site"; }

# router_remove_app: takes this app's site out and reloads (app-remove.sh, host lock held).
router_remove_app() {
  [ -f "$BG_NGINX_SITE" ] || return 0
  mv -f "$BG_NGINX_SITE" "$BG_NGINX_SITE.removed"
  if ! out=$(nginx_test 2>&1); then
    mv -f "$BG_NGINX_SITE.removed" "$BG_NGINX_SITE"
    die "nginx rejected the host's config without this app's site, so it was put back:
$out"
  fi
  rm -f "$BG_NGINX_SITE.removed"
  nginx_reload
}

router_error_log_tail() { tail -n 5 "${BG_NGINX_ERROR_LOG:-/var/log/nginx/error.log}" 2>/dev/null | sed 's/^/  /'; }

# router_watch_base TARGET: where the post-switch watch starts counting (the access log's size).
router_watch_base() { echo $(($(stat -c %s "$BG_ACCESS_LOG" 2>/dev/null || echo 0) + 1)); }

# router_watch_read TARGET BASE MOVED_MS: sets WATCH_TOTAL and WATCH_ERRORS, the responses and
# 5xx proxied to the app since the move; fails when the log cannot be read. Log lines start
# "$msec $status $upstream_status"; "-" marks a response nginx made itself (the maintenance page).
router_watch_read() {
  local since c
  since="$(($3 / 1000)).$(printf '%03d' $(($3 % 1000)))"
  [ -r "$BG_ACCESS_LOG" ] || return 1
  c=$(tail -c +"$2" "$BG_ACCESS_LOG" |
    awk -v since="$since" '$1 >= since && $3 != "-" { t++; if ($2 >= 500) e++ } END { print t + 0, e + 0 }') || return 1
  # shellcheck disable=SC2034 # read by the watch (watch.sh)
  read -r WATCH_TOTAL WATCH_ERRORS <<<"$c"
}

# ---- HTTPS ---------------------------------------------------------------------------------

# router_tls_group: the group nginx's workers run as; they open the certificate at each handshake.
router_tls_group() { nginx_group; }

# router_tls_hint: how to see which certificate the router serves.
router_tls_hint() { echo "nginx -T | grep ssl_certificate"; }

# router_acme_http_args: lego's HTTP-01 flags: tokens in the webroot nginx serves under
# /.well-known/acme-challenge/ (the site's location), never redirected, no reload.
router_acme_http_args() {
  install -d -m 0755 "$BG_ACME_WEBROOT" "$BG_ACME_WEBROOT/.well-known" "$BG_ACME_WEBROOT/.well-known/acme-challenge" || return 1
  echo "--http --http.webroot $BG_ACME_WEBROOT"
}

# router_tls_install: nginx opens the live file at each handshake (the site's ssl_certificate
# is a variable), so the renamed link is all it takes. Prints what was done.
router_tls_install() { echo "nginx was not reloaded"; }
