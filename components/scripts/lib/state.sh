# shellcheck shell=bash
# This app's state on the host: colours, the clock, the live link, records and their fields.
# Sourced by lib.sh (after layout.sh and the router file), never run.

check_color() {
  case "$1" in blue|green) ;; *) die "colour must be blue or green (got '$1')" ;; esac
}
other_color() { if [ "$1" = blue ]; then echo green; else echo blue; fi; }

# now_ms: milliseconds since the epoch; now_s: seconds (bash 5's EPOCHREALTIME, else date).
# now_ms_to VAR: sets VAR to now_ms's value, without the subshell of VAR=$(now_ms).
now_ms_to() {
  local _now=${EPOCHREALTIME:-}
  _now=${_now/[.,]/}
  if [[ $_now =~ ^[0-9]{16,}$ ]]; then _now=${_now:0:-3}; else _now=$(date +%s%3N); fi
  printf -v "$1" '%s' "$_now"
}
now_ms() {
  local ms
  now_ms_to ms
  echo "$ms"
}
now_s() { printf '%(%s)T\n' -1; }

# atomic_link TARGET LINK: point LINK at TARGET with one rename(2); there is never a moment without a link.
# GNU ln does the rename itself (coreutils 8.27 and later; Debian 12 has 9.1): when LINK exists,
# ln -sfn makes the new link under a temporary name beside it and renames it over LINK
# (test/unit/scripts.test.ts races a reader against it). One program, not ln and then mv.
# A directory that is not a link is refused, where ln would put the link inside it.
atomic_link() {
  { [ ! -d "$2" ] || [ -L "$2" ]; } && ln -sfn "$1" "$2"
}

# live_color: the colour the live link points at on this host, or nothing (a new host). The
# link's directory holds one file named after its colour (set_live), which is what nginx
# tests: two file tests answer without running readlink; a link to anything else is read.
live_color() {
  local target
  if [ -f "$BG_LIVE_LINK/green" ] && [ ! -f "$BG_LIVE_LINK/blue" ]; then echo green && return 0; fi
  if [ -f "$BG_LIVE_LINK/blue" ] && [ ! -f "$BG_LIVE_LINK/green" ]; then echo blue && return 0; fi
  target=$(readlink "$BG_LIVE_LINK" 2>/dev/null) || return 0
  case "$target" in */colors/blue) echo blue ;; */colors/green) echo green ;; esac
}
# set_live COLOR: one rename(2). nginx tests the link on every request; HAProxy is told
# through its runtime API (router_sync). Neither reloads.
set_live() {
  { [ -d "$BG_STATE_DIR/colors/$1" ] || install -d -m 0755 "$BG_STATE_DIR/colors/$1"; } &&
    { [ -f "$BG_STATE_DIR/colors/$1/$1" ] || : >"$BG_STATE_DIR/colors/$1/$1"; } &&
    atomic_link "$BG_STATE_DIR/colors/$1" "$BG_LIVE_LINK" && router_sync
}

# shared_version FILE TAG: N from a "# TAG N" line of a file every app shares; nothing if none.
shared_version() { { sed -n "s/^# $2 \([0-9][0-9]*\)$/\1/p" "$1" 2>/dev/null || true; } | head -n 1; }
record_active() {
  { printf '%s\n' "$1" >"$BG_ACTIVE_FILE.new" && mv -f "$BG_ACTIVE_FILE.new" "$BG_ACTIVE_FILE"; } || {
    rm -f "$BG_ACTIVE_FILE.new"
    return 1
  }
}
# field FILE KEY: the value of the first KEY=... line of a record file; nothing when the
# file or the key is missing.
field() {
  local line
  { [ -f "$1" ] && [ -r "$1" ]; } || return 0
  while IFS= read -r line || [ -n "$line" ]; do
    if [[ $line == "$2="* ]]; then
      printf '%s\n' "${line#"$2="}"
      return 0
    fi
  done <"$1"
}

slot_dir() { echo "$BG_STATE_DIR/slots/$1"; }

# recorded KEY COLOR: a field of the slot's last successful deploy record.
recorded() { field "$(slot_dir "$2")/deployed" "$1"; }

# A live slot's config change waits here (env file, unit, record; mode 0700) until the slot is idle.
pending_dir() { echo "$BG_ENV_DIR/$1.pending"; }
