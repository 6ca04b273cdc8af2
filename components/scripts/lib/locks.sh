# shellcheck shell=bash
# The app lock (take_lock) and what its holder says of itself.
# Sourced by lib.sh (after layout.sh and the router file), never run.

# take_lock FILE WAIT_S [HOLD_S WHAT]: serialize with every other bluegreen step on this host.
# The lock is held by fd 9 until the script exits, so it is never released early. The holder
# writes what it is and how long it may hold the lock (HOLD_S: a switch with a long watch or
# hooks holds it for up to an hour); a waiter waits WAIT_S, or for as long as the holder said it
# may need plus a minute (BG_LOCK_MARGIN, for tests), whichever is longer, and then names the holder.
take_lock() {
  local file=$1 wait=$2 hold=${3:-$2} what=${4:-${0##*/}} start deadline until
  printf -v start '%(%s)T' -1
  exec 9>"$file"
  until flock -w 1 9; do
    until=$(field "$file.holder" until)
    deadline=$((start + wait))
    [[ ! $until =~ ^[0-9]+$ ]] || [ $((until + ${BG_LOCK_MARGIN:-60})) -le "$deadline" ] || deadline=$((until + ${BG_LOCK_MARGIN:-60}))
    if [ "$(now_s)" -ge "$deadline" ]; then
      die "another bluegreen operation ($(field "$file.holder" what | grep . || echo unknown), pid $(field "$file.holder" pid | grep . || echo unknown), since $(field "$file.holder" since | grep . || echo unknown)) has held $file for over $(($(now_s) - start)) s, longer than it said it may; look for it with: fuser -v $file"
    fi
  done
  lock_holder "$file" "$hold" "$what"
}
# lock_holder FILE HOLD_S WHAT: says (again) what holds the lock and for how long it may.
lock_holder() {
  local now since
  printf -v now '%(%s)T' -1
  TZ=UTC printf -v since '%(%Y-%m-%dT%H:%M:%SZ)T' "$now"
  { printf 'pid=%s\nwhat=%s\nsince=%s\nuntil=%s\n' "$$" "$3" "$since" "$((now + $2))" >"$1.holder.new" &&
    mv -f "$1.holder.new" "$1.holder"; } 2>/dev/null || rm -f "$1.holder.new"
}
