#!/usr/bin/env bash
# The app's backups on this host (bluegreen-backup): run by the hourly timer, and by people.
#   run     (the timer) an hourly backup of every database in backup.conf, checked, kept by the
#           retention; then the off-host copies (rclone, encrypted by rclone crypt) of every
#           backup not sent yet, and the remote's own retention. A failure of either is audited
#           and notified (backup-failed), and a later run sends what is still unsent.
#   now     the same, as a manual backup (kept with the snapshots).
#   upload  only the off-host copies.
#   list    the backups on this host (--remote: those off it), newest first.
# Settings: $BG_BACKUP_CONF_DIR/backup.conf and rclone.conf (the remote's credentials, 0600;
# never on a command line: rclone reads them from the file), both written by backup-config.sh.
# An operator tool: people run it on the host (bluegreen-backup), without the program.
# Inputs: none (backup.conf says everything).
# Arguments: [run|now|upload|list [--remote]]
set -euo pipefail
# lib.sh is beside this file: a symlink to it (bluegreen-status) is resolved; no program runs otherwise.
BG_SELF=$0 && { [[ $0 == */* ]] || BG_SELF=./$0; } && { [ ! -L "$0" ] || BG_SELF=$(readlink -f "$0"); }
# shellcheck source=/dev/null
. "${BG_SELF%/*}/lib.sh"
action=${1:-list}
usage="usage: ${0##*/} [run|now|upload|list [--remote]]
  list     $BG_APP's backups on this host, newest first (--remote: those on the off-host remote)
  now      a backup now (kept with the snapshots), then the off-host copies
  run      what the hourly timer runs: an hourly backup, then the off-host copies
  upload   only the off-host copies of the backups not sent yet"
case "$action" in
  run | now | upload | list) ;;
  -h | --help) echo "$usage" && exit 0 ;;
  *) die "$usage" ;;
esac
backups_on || die "backups are not configured for $BG_APP (bluegreen:backupDatabases is empty)"
status_file="$BG_STATE_DIR/backup.status"

# status KEY VALUE...: fields of the backup status record (bluegreen-status and the metrics read it).
status() {
  local tmp
  tmp=$(mktemp "$status_file.XXXXXX")
  [ ! -f "$status_file" ] || cp "$status_file" "$tmp"
  while [ $# -ge 2 ]; do
    sed -i "/^$1=/d" "$tmp"
    printf '%s=%s\n' "$1" "$2" >>"$tmp"
    shift 2
  done
  chmod 0644 "$tmp" && mv -f "$tmp" "$status_file"
}
now_iso() { date -u +%Y-%m-%dT%H:%M:%SZ; }

list() {
  local id dir
  if [ "${1:-}" = --remote ]; then
    remote_on || die "no off-host remote is configured (bluegreen:backupRemote)"
    rclone_run lsf --dirs-only "$(remote_root)" | sed 's|/$||' | sort -r
    return 0
  fi
  printf '%-36s %-11s %-10s %-8s %s\n' ID KIND BYTES OFFSITE REASON
  for id in $(backup_ids | sort -r); do
    dir="$BG_BACKUP_DIR/$id"
    printf '%-36s %-11s %-10s %-8s %s\n' "$id" "$(field "$dir/manifest" kind)" "$(field "$dir/manifest" bytes)" \
      "$([ -f "$dir/offsite" ] && echo sent || echo -)" "$(field "$dir/manifest" reason)"
  done
}

take() {
  local kind=$1 started
  started=$(now_ms)
  status last_attempt "$(now_iso)"
  if ! backup_take "$kind" "$([ "$kind" = hourly ] && echo scheduled || echo "by ${SUDO_USER:-$(id -un)}")"; then
    status last_result failed last_error "$BACKUP_ERROR"
    audit backup "kind=$kind why=$(backup_why)" failed
    die "backup failed: $BACKUP_ERROR; the backups taken before are untouched"
  fi
  status last_result ok last_error "" last_ok "$(now_iso)" last_id "$BACKUP_ID" last_bytes "$(field "$BG_BACKUP_DIR/$BACKUP_ID/manifest" bytes)"
  audit backup "id=$BACKUP_ID kind=$kind bytes=$(field "$BG_BACKUP_DIR/$BACKUP_ID/manifest" bytes)" ok
  echo "backup $BACKUP_ID: $(field "$BG_BACKUP_DIR/$BACKUP_ID/manifest" databases) ($(field "$BG_BACKUP_DIR/$BACKUP_ID/manifest" bytes) bytes), integrity ok, in $(($(now_ms) - started)) ms"
}

# upload: every backup not sent yet, newest first, each tried BG_BACKUP_TRIES times (3) with
# BG_BACKUP_BACKOFF s (30) between; then the remote's retention, from the remote's own list.
upload() {
  remote_on || return 0
  local id tries every failed=0 sent=0 out n err upfd
  tries=${BG_BACKUP_TRIES:-3} every=${BG_BACKUP_BACKOFF:-30}
  exec {upfd}>"$BG_STATE_DIR/backup-upload.lock"
  flock -n "$upfd" || { echo "another upload is running; it sends what is unsent"; return 0; }
  for id in $(backup_ids | sort -r); do
    [ ! -f "$BG_BACKUP_DIR/$id/offsite" ] || continue
    n=0 err=""
    until out=$(rclone_run copy "$BG_BACKUP_DIR/$id" "$(remote_root)/$id" 2>&1); do
      n=$((n + 1)) err=$(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')
      echo "off-host copy of $id: try $n of $tries failed: $err" >&2
      [ "$n" -lt "$tries" ] || break
      sleep "$every"
    done
    if [ "$n" -ge "$tries" ]; then
      failed=$((failed + 1))
      status offsite_last_result failed offsite_last_error "$err" offsite_last_attempt "$(now_iso)"
      BACKUP_ERROR="rclone copy to the remote failed $tries times: $err"
      audit backup-offsite "id=$id tries=$tries why=$(backup_why)" failed
      continue
    fi
    now_iso >"$BG_BACKUP_DIR/$id/offsite" 2>/dev/null || true
    sent=$((sent + 1))
    status offsite_last_result ok offsite_last_error "" offsite_last_ok "$(now_iso)" offsite_last_attempt "$(now_iso)"
    audit backup-offsite "id=$id tries=$((n + 1))" ok
  done
  [ "$failed" -eq 0 ] || { echo "off-host copies: $sent sent, $failed failed (a later run sends them)" >&2; return 1; }
  remote_prune
  echo "off-host copies: $sent sent to $(field "$BG_BACKUP_CONF" remote_kind) (encrypted), remote retention applied"
}

# remote_prune: the retention on the remote's own list (never on this host's: a new host with
# few backups must not remove the remote's older ones). A list that cannot be read prunes nothing.
remote_prune() {
  local ids id
  ids=$(rclone_run lsf --dirs-only "$(remote_root)") || { echo "could not list the remote; nothing removed there" >&2; return 0; }
  while IFS= read -r id; do
    [ -n "$id" ] || continue
    if rclone_run purge "$(remote_root)/$id" >/dev/null 2>&1; then audit backup-prune "id=$id where=remote" ok; fi
  done < <(printf '%s\n' "$ids" | backup_retain)
}

case "$action" in
  list) list "${2:-}" ;;
  upload) upload ;;
  run | now)
    take "$([ "$action" = run ] && echo hourly || echo manual)"
    upload
    ;;
esac
