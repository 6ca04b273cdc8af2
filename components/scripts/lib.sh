# shellcheck shell=bash
# Shared helpers for bluegreen's host scripts. Sourced, never run.
# shellcheck source=/dev/null
. "$(dirname "${BASH_SOURCE[0]}")/layout.sh"

log() { printf 'bluegreen: %s\n' "$*" >&2; }
die() { printf 'bluegreen: error: %s\n' "$*" >&2; exit 1; }

# audit ACTION FIELDS RESULT: one line per deploy, switch, rollback and maintenance change.
audit() {
  install -d -m 0755 "$(dirname "$BG_AUDIT_LOG")"
  printf '%s %s %s result=%s by=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" "$2" "$3" "${SUDO_USER:-$(id -un)}" >>"$BG_AUDIT_LOG"
}
# die_audited ACTION FIELDS RESULT MESSAGE
die_audited() {
  audit "$1" "$2" "$3"
  die "$4"
}

check_color() {
  case "$1" in blue|green) ;; *) die "colour must be blue or green (got '$1')" ;; esac
}
other_color() { if [ "$1" = blue ]; then echo green; else echo blue; fi; }
check_mode() {
  case "$1" in socket|tcp) ;; *) die "link mode must be socket or tcp (got '$1')" ;; esac
}

now_ms() { date +%s%3N; }

# take_lock FILE WAIT_S: serialize with every other bluegreen step on this host.
# The lock is held by fd 9 until the script exits, so it is never released early.
take_lock() {
  exec 9>"$1"
  if ! flock -w "$2" 9; then
    die "another bluegreen operation has held $1 for over $2 s; look for it with: fuser -v $1"
  fi
}

# atomic_link TARGET LINK: point LINK at TARGET with one rename(2); there is never a moment without a link.
atomic_link() {
  local tmp="$2.new.$$"
  ln -sfn "$1" "$tmp"
  mv -Tf "$tmp" "$2"
}

live_link() { if [ "$1" = socket ]; then echo "$BG_LIVE_SOCK"; else echo "$BG_LIVE_UPSTREAM"; fi; }
preview_link() { if [ "$1" = socket ]; then echo "$BG_PREVIEW_SOCK"; else echo "$BG_PREVIEW_UPSTREAM"; fi; }
# link_target MODE COLOR: what the links point at for that slot.
link_target() {
  if [ "$1" = socket ]; then echo "$BG_RUN_DIR/$2/app.sock"; else echo "$BG_NGINX_DIR/slot-$2.conf"; fi
}

# live_color MODE: the colour the live link really points at on this host, or nothing.
live_color() {
  local target c
  target=$(readlink "$(live_link "$1")" 2>/dev/null) || return 0
  for c in blue green; do
    if [ "$target" = "$(link_target "$1" "$c")" ]; then echo "$c"; fi
  done
}

slot_dir() { echo "$BG_STATE_DIR/slots/$1"; }

# slot_curl COLOR PATH [CURL_ARGS...]: a request straight to the slot, bypassing nginx.
slot_curl() {
  local color=$1 path=$2 listen
  shift 2
  listen=$(cat "$(slot_dir "$color")/listen" 2>/dev/null) || { log "slot $color has never been deployed"; return 1; }
  case "$listen" in
    unix:*) curl --unix-socket "${listen#unix:}" "$@" "http://$color$path" ;;
    *) curl "$@" "http://$listen$path" ;;
  esac
}

# slot_ready COLOR PATH: 0 when the slot answers 2xx on its readiness path.
slot_ready() {
  slot_curl "$1" "$2" -fsS -o /dev/null --max-time 3 2>/dev/null
}

journal_tail() {
  journalctl -u "bluegreen@$1" -n "${2:-25}" --no-pager -o short-iso 2>&1 | sed 's/^/    /' || true
}

# recorded KEY COLOR: a field of the slot's last successful deploy record.
recorded() {
  sed -n "s/^$1=//p" "$(slot_dir "$2")/deployed" 2>/dev/null || true
}
