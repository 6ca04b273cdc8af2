#!/usr/bin/env bash
# The backups step: STATE=on installs backup.conf, the off-host remote (rclone.conf, 0600) and
# the hourly timer; STATE=off (its delete step: bluegreen:backupDatabases emptied) stops the
# timer and removes the settings. Backups already taken stay on the host (and off it).
# The remote's credentials and the passphrase come on stdin and go only into rclone.conf; the
# passwords rclone keeps obscured are obscured by `rclone obscure -`, reading them on its stdin.
# With a remote, the step checks it can list it through the encryption, or fails with rclone's words.
# Inputs (components/host/tools.ts):
#   STATE       required         on or off
# Stdin sections (components/app/backups.ts):
#   conf        optional         backup.conf: the databases and the retention
#   service     optional         the backup service unit
#   timer       optional         its hourly timer
#   remote      optional secret  rclone's settings of the remote, NAME=value lines
#   passphrase  optional secret  rclone crypt's passphrase
set -euo pipefail
# lib.sh is beside this file: a symlink to it (bluegreen-status) is resolved; no program runs otherwise.
BG_SELF=$0 && { [[ $0 == */* ]] || BG_SELF=./$0; } && { [ ! -L "$0" ] || BG_SELF=$(readlink -f "$0"); }
# shellcheck source=/dev/null
. "${BG_SELF%/*}/lib.sh"
: "${STATE:?}"
umask 077
install -d -m 0700 "$BG_ENV_DIR" "$BG_BACKUP_CONF_DIR"
work=$(mktemp -d "$BG_ENV_DIR/.backup.XXXXXX")
trap 'rm -rf "$work"' EXIT
unit=$BG_BACKUP_UNIT

units_off() {
  if [ -f "$BG_UNIT_DIR/$unit.timer" ]; then
    systemctl disable -q --now "$unit.timer" 2>/dev/null || true
    rm -f "$BG_UNIT_DIR/$unit.timer" "$BG_UNIT_DIR/$unit.service"
    with_deadline 120 "systemctl daemon-reload" systemctl daemon-reload
  fi
}

case "$STATE" in
  off)
    units_off
    rm -f "$BG_BACKUP_CONF" "$BG_RCLONE_CONF"
    audit backup-config "state=off" ok
    echo "backups: off; the timer is stopped; the $(backup_ids | wc -l) backups in $BG_BACKUP_DIR stay (restore: $BG_RESTORE_COMMAND ID)"
    exit 0
    ;;
  on) ;;
  *) die "STATE must be on or off (got '$STATE')" ;;
esac
# The delete step (off) reads nothing on stdin.
read_sections "$work"

{ [ -s "$work/conf" ] && [ -s "$work/service" ] && [ -s "$work/timer" ]; } || die "stdin must carry the conf, service and timer sections"
need=(sqlite3=sqlite3)
[ ! -s "$work/remote" ] || need+=(rclone=rclone)
ensure_commands "${need[@]}"
install -d -m 0700 "$BG_BACKUP_DIR"
install -d -m 0755 "$BG_STATE_DIR"
# When backups were first configured: a backup that has not run within two hours of it is missed.
since=$(field "$BG_BACKUP_CONF" configured_at)
{ cat "$work/conf" && printf 'configured_at=%s\n' "${since:-$(date -u +%s)}"; } >"$work/backup.conf"
install -m 0644 "$work/backup.conf" "$BG_BACKUP_CONF"

# rclone.conf: the remote as given, the passwords rclone keeps obscured obscured, and the crypt
# remote over it. Written whole, then renamed.
if [ -s "$work/remote" ]; then
  [ -s "$work/passphrase" ] || die "stdin must carry the passphrase section with the remote"
  {
    echo "# Managed by bluegreen (Pulumi): the off-host remote of $BG_APP's backups. Root only."
    echo "[bluegreen-remote]"
    while IFS='=' read -r k v; do
      [ -n "$k" ] || continue
      case "$k" in pass | key_file_pass) v=$(printf '%s' "$v" | rclone obscure -) ;; esac
      printf '%s = %s\n' "$k" "$v"
    done <"$work/remote"
    echo
    echo "[bluegreen-crypt]"
    echo "type = crypt"
    echo "remote = bluegreen-remote:$(field "$BG_BACKUP_CONF" remote_path)"
    echo "filename_encryption = standard"
    echo "directory_name_encryption = true"
    printf 'password = %s\n' "$(tr -d '\n' <"$work/passphrase" | rclone obscure -)"
  } >"$work/rclone.conf"
  install -m 0600 "$work/rclone.conf" "$BG_RCLONE_CONF.new"
  mv -f "$BG_RCLONE_CONF.new" "$BG_RCLONE_CONF"
  # The remote must take a copy now, not at 3 a.m.: list it through the encryption (made if new).
  rclone_run mkdir "$(remote_root)" >/dev/null 2>&1 || true
  if ! out=$(rclone_run lsf --dirs-only "$(remote_root)"); then
    die "the off-host remote ($(field "$BG_BACKUP_CONF" remote_kind)) could not be listed, so no copy could reach it; rclone said:
$(printf '%s\n' "$out" | tail -n 5 | sed 's/^/  /')
Check bluegreen:backupRemote and bluegreen:backupRemotePath, then run pulumi up again."
  fi
  remote_note="off-host: $(field "$BG_BACKUP_CONF" remote_kind), encrypted (rclone crypt), reachable ($(printf '%s' "$out" | grep -c . || true) backups there)"
else
  rm -f "$BG_RCLONE_CONF"
  remote_note="off-host: none (bluegreen:backupRemote is empty)"
fi

changed=no
for u in service:service timer:timer; do
  if ! cmp -s "$work/${u%%:*}" "$BG_UNIT_DIR/$unit.${u##*:}"; then
    install -m 0644 "$work/${u%%:*}" "$BG_UNIT_DIR/$unit.${u##*:}"
    changed=yes
  fi
done
[ "$changed" = no ] || with_deadline 120 "systemctl daemon-reload" systemctl daemon-reload
systemctl enable -q --now "$unit.timer"
install -d -m 0755 "${BG_BACKUP_COMMAND%/*}"
ln -sfn "$BG_TOOLS_DIR/backup.sh" "$BG_BACKUP_COMMAND"
ln -sfn "$BG_TOOLS_DIR/restore.sh" "$BG_RESTORE_COMMAND"
audit backup-config "state=on databases=$(field "$BG_BACKUP_CONF" databases | tr ' ' ',')" ok
echo "backups: $(field "$BG_BACKUP_CONF" databases) hourly (keep $(field "$BG_BACKUP_CONF" keep_hourly) hourly, $(field "$BG_BACKUP_CONF" keep_daily) daily, $(field "$BG_BACKUP_CONF" keep_snapshots) snapshots), and a snapshot before every preSwitch; $remote_note; $(backup_ids | wc -l) backups on this host ($BG_BACKUP_COMMAND list)"
