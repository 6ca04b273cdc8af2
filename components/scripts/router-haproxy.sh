# shellcheck shell=bash
# The HAProxy router, sourced by lib.sh when BG_ROUTER=haproxy: the same operations as
# router-nginx.sh. HAProxy cannot test a file per request, so the state (live, idle,
# maintenance) is pushed to it: a map file, rewritten with one rename and then set through
# the runtime API (root-only admin socket), which the very next request reads. A switch
# never reloads. A config change reloads the master-worker, which hands its listening
# sockets to the new workers; `option idle-close-on-response` keeps idle keep-alive
# connections open until their next request, answered with Connection: close.

router_name() { echo haproxy; }

# haproxy_cli COMMANDS: runs runtime API commands (";"-separated) on the admin socket; prints the answer.
haproxy_cli() {
  printf '%s\n' "$1" | timeout 10 socat -t 5 - "UNIX-CONNECT:$BG_HAPROXY_ADMIN"
}

# slot_backend COLOR: the backend that reaches the slot the way it listens now.
slot_backend() {
  if [ -f "$(slot_dir "$1")/tcp" ]; then echo "${BG_IDENT}_$1_tcp"; else echo "${BG_IDENT}_$1_socket"; fi
}

# router_sync: writes the map (one rename) from the state files, then sets each entry at
# runtime when HAProxy has the map loaded (before this app's first reload it has not:
# the reload reads the file).
router_sync() {
  local live idle maint=off out
  live=$(live_color)
  [ -n "$live" ] || live=blue
  idle=$(other_color "$live")
  [ ! -f "$BG_MAINTENANCE_FLAG" ] || maint=on
  printf 'live %s\nidle %s\nmaintenance %s\n' "$(slot_backend "$live")" "$(slot_backend "$idle")" "$maint" >"$BG_HAPROXY_MAP.new"
  chmod 0644 "$BG_HAPROXY_MAP.new"
  mv -f "$BG_HAPROXY_MAP.new" "$BG_HAPROXY_MAP"
  [ -S "$BG_HAPROXY_ADMIN" ] || return 0
  out=$(haproxy_cli "show map") || die "the HAProxy runtime API ($BG_HAPROXY_ADMIN) did not answer"
  grep -qF "($BG_HAPROXY_MAP)" <<<"$out" || return 0
  out=$(haproxy_cli "set map $BG_HAPROXY_MAP live $(slot_backend "$live"); set map $BG_HAPROXY_MAP idle $(slot_backend "$idle"); set map $BG_HAPROXY_MAP maintenance $maint")
  [ -z "$(tr -d '[:space:]' <<<"$out")" ] || die "HAProxy refused the new routing of $BG_APP: $out"
}

router_test() { haproxy_test; }
router_reload() { haproxy_reload; }

router_sections() { echo "main public app route page"; }
router_target() {
  case "$1" in
    main) echo "$BG_HAPROXY_MAIN" ;;
    public) echo "$BG_HAPROXY_ROUTES_DIR/head" ;;
    app) echo "$BG_HAPROXY_APP" ;;
    route) echo "$BG_HAPROXY_ROUTE" ;;
    page) echo "$BG_WWW_DIR/maintenance.html" ;;
    frontend) echo "$BG_HAPROXY_PUBLIC" ;;
    *) die "unknown router section: $1" ;;
  esac
}

# haproxy_frontend HEAD ROUTE_FILES...: the public frontend: the head, then each app's
# routes, the catch-all app (no domains) last.
haproxy_frontend() {
  local head=$1 f
  shift
  cat "$head"
  for f in "$@"; do grep -q '^# bluegreen route: catch-all' "$f" || cat "$f"; done
  for f in "$@"; do ! grep -q '^# bluegreen route: catch-all' "$f" || cat "$f"; done
}

# other_routes: every other app's route file on this host.
other_routes() {
  local f
  for f in "$BG_HAPROXY_ROUTES_DIR"/*.route; do
    [ -f "$f" ] && [ "$f" != "$BG_HAPROXY_ROUTE" ] && echo "$f"
  done
  return 0
}

# router_prepare WORK: keeps a newer shared main file and head, writes the map this app's
# frontends read, and assembles the public frontend with this app's new routes.
router_prepare() {
  local work=$1 f have routes=()
  for f in main public; do
    have=$(shared_version "$(router_target "$f")" bluegreen-haproxy)
    if [ -n "$have" ] && [ "$have" -gt "$(shared_version "$work/$f" bluegreen-haproxy)" ]; then
      log "keeping the host's shared HAProxy file $(router_target "$f") (version $have, newer than this app's bluegreen)"
      cp "$(router_target "$f")" "$work/$f"
    fi
  done
  install -d -m 0755 "$BG_HAPROXY_DIR" "$BG_HAPROXY_ROUTES_DIR" "$BG_WWW_DIR"
  mapfile -t routes < <(other_routes)
  haproxy_frontend "$work/public" "${routes[@]}" "$work/route" >"$work/frontend"
  [ -f "$BG_HAPROXY_MAP" ] || router_sync
}
router_files() { echo "main public app route page frontend"; }

# router_config_hash WORK: what the check listener answers on /.bluegreen/site once HAProxy serves this config.
router_config_hash() { sed -n 's|^ *http-request return status 200 .* string \([0-9a-f]\{16\}\) if .*$|\1|p' "$1/app" | head -n 1; }

router_serves_https() { return 1; }

# router_remove_app: takes this app's frontends, backends and routes out, and reloads.
router_remove_app() {
  local work routes=() out f
  [ -f "$BG_HAPROXY_APP" ] || [ -f "$BG_HAPROXY_ROUTE" ] || return 0
  work=$(mktemp -d)
  for f in "$BG_HAPROXY_APP" "$BG_HAPROXY_ROUTE" "$BG_HAPROXY_PUBLIC"; do [ ! -f "$f" ] || cp -p "$f" "$work/"; done
  rm -f "$BG_HAPROXY_APP" "$BG_HAPROXY_ROUTE"
  mapfile -t routes < <(other_routes)
  haproxy_frontend "$BG_HAPROXY_ROUTES_DIR/head" "${routes[@]}" >"$BG_HAPROXY_PUBLIC.new"
  mv -f "$BG_HAPROXY_PUBLIC.new" "$BG_HAPROXY_PUBLIC"
  if ! out=$(haproxy_test 2>&1); then
    for f in "$BG_HAPROXY_APP" "$BG_HAPROXY_ROUTE" "$BG_HAPROXY_PUBLIC"; do
      [ ! -f "$work/$(basename "$f")" ] || cp -p "$work/$(basename "$f")" "$f"
    done
    rm -rf "$work"
    die "HAProxy rejected the host's config without this app, so it was put back:
$out"
  fi
  rm -rf "$work"
  haproxy_reload
}

router_error_log_tail() { journalctl -u haproxy -n 5 --no-pager 2>/dev/null | sed 's/^/  /' || true; }

# haproxy_counts TARGET: "requests 5xx" HAProxy counted for the slot's backends (both ways
# of listening), including the 502/503/504 it made itself when the slot failed. Fails,
# printing nothing, when the runtime API gave no stats (no header: a timeout or an error).
haproxy_counts() {
  local out
  out=$(haproxy_cli "show stat") || return 1
  awk -F, -v a="${BG_IDENT}_$1_socket" -v b="${BG_IDENT}_$1_tcp" '
    NR == 1 {
      if ($1 != "# pxname") { bad = 1; exit 1 }
      for (i = 1; i <= NF; i++) { if ($i == "hrsp_5xx") h = i; if ($i == "req_tot") r = i }
      next
    }
    ($1 == a || $1 == b) && $2 == "BACKEND" { t += $r; e += $h }
    END { if (bad || !h || !r) exit 1; print t + 0, e + 0 }' <<<"$out"
}

# router_watch_base TARGET: the counters at the move, "requests,5xx".
router_watch_base() {
  local c
  c=$(haproxy_counts "$1") || return 1
  echo "${c/ /,}"
}

# router_watch_count TARGET BASE MOVED_MS: "responses 5xx" for the slot since the move.
# Counters restart at a reload (another app's change): then they count from there.
router_watch_count() {
  local t e bt be c
  c=$(haproxy_counts "$1") || return 1
  read -r t e <<<"$c"
  IFS=, read -r bt be <<<"$2"
  if [ "$t" -lt "${bt:-0}" ]; then bt=0 be=0; fi
  echo "$((t - ${bt:-0})) $((e - ${be:-0}))"
}
