#!/usr/bin/env bash
# Puts a backup or snapshot of the app's databases back (bluegreen-restore ID; npm run restore).
# Before anything changes, the backup is checked: it must belong to this app, match its
# checksums and pass PRAGMA integrity_check, or it is refused. Then, holding the app's lock (no
# switch or deploy meanwhile): maintenance on (public requests get the maintenance page), both
# slots stopped (their writers, the live-only job included), a pre-restore copy of the current
# data kept as a backup of its own, the files put back (stale -wal and -shm removed, the journal
# mode set as it was), integrity checked in place, the slots that ran started again and gated
# on their readiness, and maintenance off (unless it was on before). Any failure after the
# slots stopped puts the data as it was back, starts the slots and lifts maintenance.
# An operator tool: people run it on the host, without the program.
# Inputs: none (the backup's manifest and the slots' records say everything).
# Arguments: [--remote] ID|latest   ID from bluegreen-backup list (--remote: fetched from the remote)
set -euo pipefail
# lib.sh is beside this file: a symlink to it (bluegreen-status) is resolved; no program runs otherwise.
BG_SELF=$0 && { [[ $0 == */* ]] || BG_SELF=./$0; } && { [ ! -L "$0" ] || BG_SELF=$(readlink -f "$0"); }
# shellcheck source=/dev/null
. "${BG_SELF%/*}/lib.sh"
usage="usage: ${0##*/} [--remote] ID|latest
Puts backup ID (bluegreen-backup list shows them; latest: the newest) of $BG_APP's databases back:
checked first (this app's, its checksums, PRAGMA integrity_check), then maintenance on, both
slots stopped, the data as it is now kept as a pre-restore backup, the files put back and checked,
the slots started and gated on readiness, maintenance off. --remote fetches it from the off-host remote."
case "${1:-}" in -h | --help) echo "$usage" && exit 0 ;; esac
from=local
if [ "${1:-}" = --remote ]; then from=remote && shift; fi
want=${1:-}
[ -n "$want" ] || die "$usage"
started=$(now_ms)
fetched=""
cleanup() { [ -z "$fetched" ] || rm -rf "$fetched"; }
trap cleanup EXIT

# The backup, found (and fetched) and checked before anything changes.
if [ "$from" = remote ]; then
  remote_on || die "no off-host remote is configured (bluegreen:backupRemote), so there is nothing to fetch"
  [ "$want" != latest ] || want=$(rclone_run lsf --dirs-only "$(remote_root)" | sed 's|/$||' | sort | tail -n 1)
  [[ $want =~ ^[0-9]{8}T[0-9]{6}Z-[a-z-]+(-[0-9]+)?$ ]] || die "no such backup on the remote: '$want'"
  install -d -m 0700 "$BG_BACKUP_DIR"
  fetched="$BG_BACKUP_DIR/.fetch-$want"
  rm -rf "$fetched"
  out=$(rclone_run copy "$(remote_root)/$want" "$fetched") || die "fetching $want from the remote failed: $out"
  dir=$fetched
else
  [ "$want" != latest ] || want=$(backup_ids | grep -v -- '-pre-restore' | tail -n 1)
  { [[ $want =~ ^[0-9]{8}T[0-9]{6}Z-[a-z-]+(-[0-9]+)?$ ]] && [ -d "$BG_BACKUP_DIR/$want" ]; } ||
    die "no such backup on this host: '$want' (bluegreen-backup list shows them; --remote fetches one from the remote)"
  dir=$BG_BACKUP_DIR/$want
fi
if ! backup_verify "$dir" "$want"; then
  die_audited restore "id=$want source=$from" refused "$BACKUP_ERROR. Nothing was changed: the slots and the data are as they were."
fi
dbs=$(field "$dir/manifest" databases)
checked=$(now_ms)

take_lock "$BG_LOCK" 300 1800 "a restore of backup $want"
maint_was=no running=() pre="" swapped=no
[ ! -f "$BG_MAINTENANCE_FLAG" ] || maint_was=yes

maintenance() {
  if [ "$1" = on ]; then
    [ "$maint_was" = no ] || return 0
    install -d -m 0755 "$BG_WWW_DIR"
    [ -s "$BG_WWW_DIR/maintenance.html" ] ||
      printf '<!doctype html><title>Down for maintenance</title><h1>Down for maintenance</h1><p>We will be back shortly.</p>\n' >"$BG_WWW_DIR/maintenance.html"
    date -u +%Y-%m-%dT%H:%M:%SZ >"$BG_MAINTENANCE_FLAG"
  else
    [ "$maint_was" = no ] || return 0
    rm -f "$BG_MAINTENANCE_FLAG"
  fi
  router_sync
}

# put_files DIR: the databases of backup DIR into the data directory, each in place with one
# rename, its stale -wal, -shm and -journal removed first, its journal mode set again.
put_files() {
  local src=$1 db target owner mode journal
  for db in $(field "$src/manifest" databases); do
    [ "$(field "$src/manifest" "missing.$db")" != yes ] || continue
    target="$BG_DATA_DIR/$db"
    owner=$(stat -c '%U:%G' "$target" 2>/dev/null || stat -c '%U:%G' "$BG_DATA_DIR")
    mode=$(stat -c '%a' "$target" 2>/dev/null || echo 600)
    # Each step checked: put_files runs in conditions, where set -e does not stop it.
    install -d -o "${owner%%:*}" -g "${owner##*:}" -m 0700 "$(dirname "$target")" || return 1
    install -o "${owner%%:*}" -g "${owner##*:}" -m "$mode" "$src/db/$db" "$target.restore-new" || return 1
    rm -f "$target-wal" "$target-shm" "$target-journal" || return 1
    mv -f "$target.restore-new" "$target" || return 1
    journal=$(field "$src/manifest" "journal.$db")
    if [ "$journal" = wal ]; then
      as_app sqlite3 -batch -bail -init /dev/null "file:$target?mode=rw" "PRAGMA journal_mode = WAL;" >/dev/null || return 1
    fi
    answer=$(as_app sqlite3 -batch -init /dev/null "file:$target?mode=ro" "PRAGMA integrity_check;" 2>&1 | head -n 3 | tr '\n' ' ')
    [ "${answer% }" = ok ] || { log "$db fails PRAGMA integrity_check in place: $answer"; return 1; }
  done
}

# start_slots: the slots that ran before, started and gated on their recorded readiness path.
start_slots() {
  local c ok=0
  for c in "${running[@]}"; do
    with_deadline 900 "starting $BG_NS@$c" systemctl start "$BG_NS@$c" || ok=1
  done
  for c in "${running[@]}"; do
    (wait_ready "$c" "$(recorded health_path "$c" | grep . || echo /health/ready)" "$(recorded health_timeout "$c" | grep . || echo 60)") || ok=1
  done
  return "$ok"
}

# undo WHY: the data as it was (the pre-restore copy), the slots started, maintenance lifted.
undo() {
  trap - EXIT
  local note="the data is as it was before"
  if [ "$swapped" = yes ]; then
    if [ -n "$pre" ] && [ -d "$BG_BACKUP_DIR/$pre" ] && put_files "$BG_BACKUP_DIR/$pre"; then
      note="the data before the restore (backup $pre) was put back"
    else
      note="the data could NOT be put back as it was; backup ${pre:-none} holds it: $BG_RESTORE_COMMAND ${pre:-ID}"
    fi
  fi
  start_slots || note="$note; a slot did not come back ready (see above)"
  maintenance off || true
  cleanup
  die_audited restore "id=$want source=$from pre_restore=${pre:-none}" failed "restore of $want failed: $1; $note."
}
trap 'undo "interrupted"' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

maintenance on
stopping=$(now_ms)
for c in blue green; do
  if systemctl is-active -q "$BG_NS@$c"; then running+=("$c"); fi
done
if [ ${#running[@]} -gt 0 ]; then
  units=()
  for c in "${running[@]}"; do units+=("$BG_NS@$c"); done
  with_deadline 900 "stopping ${units[*]}" systemctl stop "${units[@]}" || undo "the slots did not stop"
fi
stopped=$(now_ms)
# The data as it is now, kept: a restore can be undone with the same command.
if backup_take pre-restore "before restoring $want"; then
  pre=$BACKUP_ID
  audit backup "id=$pre kind=pre-restore" ok
else
  undo "the data as it is now could not be kept first ($BACKUP_ERROR); nothing was put back"
fi
exec {restore_lock}>"$BG_STATE_DIR/backup.lock"
flock -w 900 "$restore_lock" || undo "a backup held $BG_STATE_DIR/backup.lock for over 900 s"
swapped=yes
put_files "$dir" || undo "the restored files did not pass the integrity check in place"
exec {restore_lock}>&-
restored=$(now_ms)
start_slots || undo "a slot did not come back ready on the restored data"
maintenance off
trap cleanup EXIT
audit restore "id=$want source=$from pre_restore=$pre databases=${dbs// /,} ms=$(($(now_ms) - checked))" ok
echo "restored $want ($dbs) from $from: checked in $((checked - started)) ms; slots stopped in $((stopped - stopping)) ms (their drain), down $(($(now_ms) - stopped)) ms (files in place $((restored - stopped)) ms after they stopped); ${running[*]:-no slot} running again$([ "$maint_was" = yes ] && echo "; maintenance stays on, as it was" || echo "; maintenance off")."
echo "the data as it was before is kept as backup $pre: $BG_RESTORE_COMMAND $pre undoes this restore"
