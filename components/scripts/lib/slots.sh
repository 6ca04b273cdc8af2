# shellcheck shell=bash
# Running a slot the way a staged or new deploy record says (slot_apply).
# Sourced by lib.sh (after layout.sh and the router file), never run.

# slot_apply SLOT DIR: runs SLOT the way DIR says (record, env, unit) and waits for readiness.
# Every step is checked: catch_up calls it in a condition, where set -e does not stop it, and a
# full disk must not leave a slot restarted with its old env under a record of the new one.
# Only for a slot that takes no public traffic. The record has version, listen,
# health_path and health_timeout; the release must be on the host.
slot_apply() {
  local slot=$1 src=$2 sdir version listen
  sdir=$(slot_dir "$slot")
  version=$(field "$src/record" version)
  listen=$(field "$src/record" listen)
  [ -n "$(release_sha "$version")" ] || die "release $version is not on the host"
  install -d -m 0755 "$sdir" || return 1
  cp "$src/record" "$sdir/current.record" || return 1
  install -m 0600 -o root -g root "$src/env" "$BG_ENV_DIR/$slot.env" || return 1
  install -m 0644 "$src/unit" "$BG_UNIT_DIR/$BG_NS@$slot.service" || return 1
  with_deadline 120 "systemctl daemon-reload" systemctl daemon-reload || return 1
  atomic_link "$BG_RELEASES_DIR/$version" "$sdir/current" || return 1
  printf '%s\n' "$listen" >"$sdir/listen" || return 1
  # Restart first, then tell nginx how the slot listens: only the preview listener reaches an idle slot.
  systemctl enable -q "$BG_NS@$slot" || return 1
  # restart drains the old process (SIGTERM) before the new one starts.
  with_deadline 900 "restarting $BG_NS@$slot" systemctl restart "$BG_NS@$slot" || return 1
  case "$listen" in unix:*) rm -f "$sdir/tcp" ;; *) : >"$sdir/tcp" ;; esac || return 1
  router_sync || return 1
  wait_ready "$slot" "$(field "$src/record" health_path)" "$(field "$src/record" health_timeout)" || return 1
  cp "$src/record" "$sdir/deployed" || return 1
}

# same_run RECORD_A RECORD_B: both describe the same process (version, env, unit, listen).
same_run() {
  local k
  for k in version env unit listen; do
    [ "$(field "$1" "$k")" = "$(field "$2" "$k")" ] || return 1
  done
}
