# shellcheck shell=bash
# Free space: checks before a step writes, the switch's 1 MiB reserve, and room for a release.
# Sourced by lib.sh (after layout.sh and the router file), never run.

# free_kib PATH: KiB free on PATH's filesystem for root (who may use the blocks reserved for it).
free_kib() {
  local f b
  read -r f b < <(stat -f -c '%f %S' "$1" 2>/dev/null) || return 1
  echo $((f * b / 1024))
}
# space_note PATH: "the filesystem of PATH (mounted on M) has N KiB free".
space_note() { echo "the filesystem of $1 (mounted on $(df -P "$1" 2>/dev/null | awk 'NR == 2 { print $6 }')) has $(free_kib "$1" || echo "an unknown number of") KiB free"; }
# need_space PATH KIB WHAT: fails, naming the filesystem and what is needed, when PATH has less than KIB free.
need_space() {
  local f b have
  # One process (stat), not two: free_kib in a command substitution would fork a subshell too.
  read -r f b < <(stat -f -c '%f %S' "$1" 2>/dev/null) || return 0
  have=$((f * b / 1024))
  [ "$have" -ge "$2" ] || {
    SPACE_ERROR="$(space_note "$1"); $3 needs $2 KiB there"
    return 1
  }
}
# shellcheck disable=SC2034 # read by the callers of need_space
SPACE_ERROR=""
# The switch keeps 1 MiB of the state filesystem in a file of its own while it has room, and
# frees it when it must put traffic back on a disk that filled meanwhile: a rename, a record
# and a line of audit need a few blocks.
BG_RESERVE=$BG_STATE_DIR/.space-reserve
keep_reserve() {
  [ ! -f "$BG_RESERVE" ] || return 0
  need_space "$BG_STATE_DIR" 4096 "the reserve" || return 0
  { head -c 1048576 /dev/zero >"$BG_RESERVE.new" && mv -f "$BG_RESERVE.new" "$BG_RESERVE"; } 2>/dev/null || rm -f "$BG_RESERVE.new"
}
release_reserve() {
  [ -f "$BG_RESERVE" ] && ! need_space "$BG_STATE_DIR" 256 "putting traffic back" || return 0
  log "the state filesystem is full ($(space_note "$BG_STATE_DIR")): freeing bluegreen's 1 MiB reserve to put traffic back"
  rm -f "$BG_RESERVE"
}

# mib BYTES [up]: whole MiB, rounded down (or up).
mib() { if [ "${2:-}" = up ]; then echo $((($1 + 1048575) / 1048576)); else echo $(($1 / 1048576)); fi; }

# need_release_space DIR BYTES WHAT: dies unless the filesystem holding DIR has BYTES free plus a margin
# (64 MiB, or a tenth of BYTES when that is more) left for the host: a release that fills the
# disk would fail half-written, and the host's logs and the other slot need room too.
need_release_space() {
  local bytes=$2 margin avail mount
  margin=$((bytes / 10))
  [ "$margin" -ge $((64 << 20)) ] || margin=$((64 << 20))
  avail=$(df --output=avail -B1 "$1" | tail -n 1 | tr -d ' ')
  [ "$avail" -lt $((bytes + margin)) ] || return 0
  mount=$(df --output=target "$1" | tail -n 1)
  die "not enough free space on $mount for $3 ($(mib "$bytes" up) MiB): $(mib "$avail") MiB free, $(mib $((bytes + margin)) up) MiB needed with a $(mib "$margin" up) MiB margin; nothing was stored and the slots are untouched. Free space on $mount (releases no slot uses are in $BG_RELEASES_DIR), then run pulumi up again."
}
