# shellcheck shell=bash
# Backups of the app's SQLite files (data/backup.sh, data/restore.sh, and the snapshot switch.sh
# takes before preSwitch). A copy is consistent while the app writes: `VACUUM INTO` runs in one
# read transaction (in WAL mode the app's writers go on meanwhile), never a cp. It runs as the
# app's user, so sqlite never leaves root-owned -wal or -shm files the app cannot open, and a
# copy counts only once `PRAGMA integrity_check` says ok and it is renamed into place with its
# manifest (app, id, kind, each file's sha256, size and journal mode). Without backup.conf
# (bluegreen:backupDatabases empty) nothing here runs.
# Sourced by lib.sh (after layout.sh and the router file), never run.

BG_BACKUP_CONF=$BG_BACKUP_CONF_DIR/backup.conf

backups_on() { [ -f "$BG_BACKUP_CONF" ]; }
backup_setting() { field "$BG_BACKUP_CONF" "$1"; }

# as_app COMMAND...: runs COMMAND as the app's user and group, the owners of its data.
as_app() {
  if [ "$(id -u)" = 0 ] && id -u "$BG_APP_USER" >/dev/null 2>&1; then
    setpriv --reuid="$BG_APP_USER" --regid="$BG_APP_GROUP" --clear-groups -- "$@"
  else
    "$@"
  fi
}

# sql_quote TEXT: TEXT as an SQL string literal.
sql_quote() { printf "'%s'" "${1//\'/\'\'}"; }

# backup_integrity FILE: prints sqlite's answer to PRAGMA integrity_check on a copy ("ok" when
# sound); immutable=1 opens it without locks or journal files, exactly as it is on disk.
backup_integrity() {
  timeout 600 sqlite3 -batch -init /dev/null -readonly "file:$1?immutable=1" "PRAGMA integrity_check;" 2>&1 | head -n 5 | tr '\n' ' ' | sed 's/ $//'
}

# backup_copy DB DEST: a consistent copy of the live database DB (a path under the data
# directory) into DEST (which must not exist), as the app's user; prints the source's journal mode.
backup_copy() {
  local src="$BG_DATA_DIR/$1" out
  [ -f "$src" ] || { echo "missing"; return 0; }
  out=$(as_app timeout 3600 sqlite3 -batch -bail -init /dev/null -noheader -cmd ".timeout 30000" "file:$src?mode=rw" \
    "PRAGMA journal_mode; VACUUM INTO $(sql_quote "$2");" 2>&1) || {
    log "copying $1 failed: $out"
    return 1
  }
  printf '%s\n' "$out" | head -n 1
}

# backup_take KIND REASON: a backup of every configured database, checked, then renamed into
# $BG_BACKUP_DIR/<id>; sets BACKUP_ID. KIND: hourly (the timer), snapshot (before preSwitch),
# manual, pre-restore. Holds the backup lock (never the app lock) while it copies, and prunes
# this host's backups to the retention afterwards. Fails, with BACKUP_ERROR set, leaving nothing.
# Runs in the caller's shell (not in $(...)), so the caller sees BACKUP_ID and BACKUP_ERROR.
BACKUP_ERROR="" BACKUP_ID=""
backup_take() {
  BACKUP_ERROR="" BACKUP_ID=""
  local kind=$1 reason=$2 id stamp n=1 stage dir db mode bytes total=0 integrity dbs lockfd rc=0
  dbs=$(backup_setting databases)
  { install -d -m 0700 "$BG_BACKUP_DIR" && install -d -m 0755 "$BG_STATE_DIR"; } || { BACKUP_ERROR="cannot create $BG_BACKUP_DIR"; return 1; }
  exec {lockfd}>"$BG_STATE_DIR/backup.lock"
  if ! flock -w 900 "$lockfd"; then
    exec {lockfd}>&-
    BACKUP_ERROR="another backup or restore has held $BG_STATE_DIR/backup.lock for over 900 s"
    return 1
  fi
  printf -v stamp '%(%Y%m%dT%H%M%SZ)T' -1
  id="$stamp-$kind"
  while [ -e "$BG_BACKUP_DIR/$id" ]; do n=$((n + 1)) && id="$stamp-$kind-$n"; done
  stage="$BG_STATE_DIR/backup-staging"
  rm -rf "$stage" "$BG_BACKUP_DIR/.new-$id"
  # The app's user writes the copies (it reads its data); only root reaches the backups.
  install -d -m 0700 -o "$(backup_owner)" "$stage"
  dir="$BG_BACKUP_DIR/.new-$id"
  install -d -m 0700 "$dir/db"
  : >"$dir/sha256sums"
  for db in $dbs; do
    install -d -m 0700 -o "$(backup_owner)" "$stage/$(dirname "$db")"
    if ! mode=$(backup_copy "$db" "$stage/$db"); then
      BACKUP_ERROR="sqlite could not copy $db (see above)" rc=1
      break
    fi
    if [ "$mode" = missing ]; then
      printf 'missing.%s=yes\n' "$db" >>"$dir/manifest.part"
      continue
    fi
    integrity=$(backup_integrity "$stage/$db")
    if [ "$integrity" != ok ]; then
      BACKUP_ERROR="the copy of $db failed PRAGMA integrity_check: $integrity" rc=1
      break
    fi
    install -d -m 0700 "$dir/db/$(dirname "$db")"
    { mv -f "$stage/$db" "$dir/db/$db" && chown 0:0 "$dir/db/$db" && chmod 0600 "$dir/db/$db"; } || {
      BACKUP_ERROR="could not move the copy of $db into $dir ($(space_note "$BG_BACKUP_DIR"))" rc=1
      break
    }
    (cd "$dir" && sha256sum "db/$db") >>"$dir/sha256sums"
    bytes=$(stat -c %s "$dir/db/$db")
    total=$((total + bytes))
    printf 'journal.%s=%s\nbytes.%s=%s\n' "$db" "$mode" "$db" "$bytes" >>"$dir/manifest.part"
  done
  rm -rf "$stage"
  if [ "$rc" -eq 0 ]; then
    [ -f "$dir/manifest.part" ] || : >"$dir/manifest.part"
    if ! {
      printf 'app=%s\nns=%s\nid=%s\nkind=%s\ncreated=%(%Y-%m-%dT%H:%M:%SZ)T\nreason=%s\ndatabases=%s\nbytes=%s\nintegrity=ok\n' \
        "$BG_APP" "$BG_NS" "$id" "$kind" -1 "${reason//$'\n'/ }" "$dbs" "$total" >"$dir/manifest" &&
        cat "$dir/manifest.part" >>"$dir/manifest" && rm -f "$dir/manifest.part" && mv -T "$dir" "$BG_BACKUP_DIR/$id"
    }; then
      BACKUP_ERROR="could not write the backup's manifest ($(space_note "$BG_BACKUP_DIR"))" rc=1
    fi
  fi
  if [ "$rc" -ne 0 ]; then
    rm -rf "$dir"
    exec {lockfd}>&-
    return 1
  fi
  BACKUP_ID=$id
  backup_prune_local
  exec {lockfd}>&-
}

# backup_owner: who writes the copies: the app's user when it exists (a real host), else root.
backup_owner() { if id -u "$BG_APP_USER" >/dev/null 2>&1; then echo "$BG_APP_USER"; else id -un; fi; }

# backup_ids: this host's backups, oldest first (ids start with their UTC time).
backup_ids() { find "$BG_BACKUP_DIR" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%f\n' 2>/dev/null | sort; }

# backup_retain: reads ids (any order) on stdin and prints those the retention drops: the newest
# keep_hourly hourly ones and the first of each of the newest keep_daily days stay, and the
# newest keep_snapshots of the others (snapshots, manual and pre-restore copies). The same rule
# runs on this host's list and on the remote's, each on its own, so a new host with no backups
# never prunes the remote's older ones.
backup_retain() {
  sort -r | awk -v h="$(backup_setting keep_hourly)" -v d="$(backup_setting keep_daily)" -v s="$(backup_setting keep_snapshots)" '
    { id = $0; sub(/\/$/, "", id); if (id == "") next; n++; ids[n] = id
      if (id ~ /^[0-9]{8}T[0-9]{6}Z-hourly(-[0-9]+)?$/) { hourly++; if (hourly <= h) keep[id] = 1; day[substr(id, 1, 8)] = id }
      else { other++; if (other <= s) keep[id] = 1 } }
    END {
      # day[] holds each day'\''s earliest hourly backup (the list is newest first); keep the newest d days.
      m = 0; for (k in day) days[++m] = k
      for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (days[j] > days[i]) { t = days[i]; days[i] = days[j]; days[j] = t }
      for (i = 1; i <= m && i <= d; i++) keep[day[days[i]]] = 1
      for (i = 1; i <= n; i++) if (!(ids[i] in keep)) print ids[i]
    }'
}

# backup_prune_local: removes this host's backups the retention drops (the caller holds the backup lock).
backup_prune_local() {
  local id
  while IFS= read -r id; do
    [ -n "$id" ] && rm -rf "${BG_BACKUP_DIR:?}/$id" && audit backup-prune "id=$id" ok
  done < <(backup_ids | backup_retain)
  rm -rf "$BG_BACKUP_DIR"/.new-* 2>/dev/null || true
}

# backup_verify DIR ID: checks backup ID (in DIR) before it is put back: it belongs to this app,
# its manifest names it, its files have the checksums the manifest recorded, and each passes
# PRAGMA integrity_check. Sets BACKUP_ERROR and fails otherwise.
backup_verify() {
  local dir=$1 id=$2 app sums db answer
  [ -f "$dir/manifest" ] || { BACKUP_ERROR="$id has no manifest: it is not a bluegreen backup"; return 1; }
  app=$(field "$dir/manifest" app)
  if [ "$app" != "$BG_APP" ]; then
    BACKUP_ERROR="backup $id belongs to the app '${app:-unknown}', not to '$BG_APP'; restoring another app's data here is refused"
    return 1
  fi
  if [ "$(field "$dir/manifest" id)" != "$id" ]; then
    BACKUP_ERROR="backup $id has the manifest of another backup ($(field "$dir/manifest" id)); it is refused"
    return 1
  fi
  if ! sums=$(cd "$dir" && sha256sum --quiet --strict -c sha256sums 2>&1); then
    BACKUP_ERROR="backup $id does not match its checksums: ${sums//$'\n'/; }"
    return 1
  fi
  for db in $(field "$dir/manifest" databases); do
    [ "$(field "$dir/manifest" "missing.$db")" != yes ] || continue
    answer=$(backup_integrity "$dir/db/$db")
    if [ "$answer" != ok ]; then
      BACKUP_ERROR="backup $id: $db fails PRAGMA integrity_check: $answer"
      return 1
    fi
  done
}

# backup_snapshot REASON: before preSwitch (switch.sh): a snapshot of the databases, when backups
# are configured; sets BACKUP_ID (empty when they are not). Fails with BACKUP_ERROR set.
backup_snapshot() {
  BACKUP_ID=""
  backups_on || return 0
  if ! backup_take snapshot "$1"; then
    audit backup "kind=snapshot why=$(backup_why)" failed
    return 1
  fi
  audit backup "id=$BACKUP_ID kind=snapshot" ok
}

# backup_why: BACKUP_ERROR as one audit field value (no spaces).
backup_why() { printf '%s' "$BACKUP_ERROR" | tr -s ' \n\t' '___' | cut -c1-300; }

# ---- off-host copies (rclone) ----------------------------------------------------------------

BG_RCLONE_CONF=$BG_BACKUP_CONF_DIR/rclone.conf
remote_on() { [ -f "$BG_RCLONE_CONF" ]; }
# remote_root: where this app's copies go: the crypt remote (contents and names encrypted on this
# host before they leave it), under the app's name.
remote_root() { echo "bluegreen-crypt:$BG_APP"; }

# rclone_run ARGS...: rclone reading the 0600 config file (no credential on a command line),
# bounded, its output scrubbed of every credential value in that file.
rclone_run() {
  local out rc=0
  out=$(timeout --kill-after=10 3600 rclone --config "$BG_RCLONE_CONF" -q --retries 1 --low-level-retries 3 \
    --contimeout 15s --timeout 120s "$@" 2>&1) || rc=$?
  rclone_scrub "$out"
  return "$rc"
}

# rclone_scrub TEXT: TEXT with the values of the config's credentials replaced by [secret].
rclone_scrub() {
  local text=$1 k v
  while IFS='=' read -r k v; do
    k=${k// /} v=${v# }
    case "$k" in pass | password | password2 | secret_access_key | access_key_id | key_pem | key_file_pass | session_token | account | key)
      [ -z "$v" ] || text=${text//"$v"/[secret]} ;;
    esac
  done <"$BG_RCLONE_CONF"
  [ -z "$text" ] || printf '%s\n' "$text"
}
