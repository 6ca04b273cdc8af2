#!/usr/bin/env bash
# The metrics step: STATE=on serves the app's metrics (metrics.sh) on its loopback port through
# a systemd socket (Accept=yes: one short-lived metrics.sh per scrape, no daemon), and, when the
# host has node_exporter's textfile directory, writes them there every 30 s too; STATE=off (its
# delete step) removes both. Checks the port answers before it says so.
# Inputs (components/host/tools.ts):
#   STATE        required  on or off
#   PORT         required(STATE=on)  the 127.0.0.1 port
# Stdin sections (components/app/metrics.ts):
#   socket       optional  the .socket unit
#   service      optional  the per-connection service (a template)
#   textService  optional  the textfile writer's service
#   textTimer    optional  its timer
set -euo pipefail
# lib.sh is beside this file: a symlink to it (bluegreen-status) is resolved; no program runs otherwise.
BG_SELF=$0 && { [[ $0 == */* ]] || BG_SELF=./$0; } && { [ ! -L "$0" ] || BG_SELF=$(readlink -f "$0"); }
# shellcheck source=/dev/null
. "${BG_SELF%/*}/lib.sh"
: "${STATE:?}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
u=$BG_METRICS_UNIT
files=("$u.socket" "$u@.service" "$u-textfile.service" "$u-textfile.timer")

case "$STATE" in
  off)
    systemctl disable -q --now "$u.socket" "$u-textfile.timer" 2>/dev/null || true
    for f in "${files[@]}"; do rm -f "$BG_UNIT_DIR/$f"; done
    rm -f "$BG_TEXTFILE_DIR/$BG_NS.prom"
    with_deadline 120 "systemctl daemon-reload" systemctl daemon-reload
    echo "metrics: off"
    exit 0
    ;;
  on) : "${PORT:?PORT is required with STATE=on}" ;;
  *) die "STATE must be on or off (got '$STATE')" ;;
esac
# The delete step (off) reads nothing on stdin.
read_sections "$work"
for s in socket service textService textTimer; do [ -s "$work/$s" ] || die "stdin must carry the $s section"; done
install -d -m 0755 "$BG_METRICS_DIR"
changed=no
for pair in socket:"$u.socket" service:"$u@.service" textService:"$u-textfile.service" textTimer:"$u-textfile.timer"; do
  if ! cmp -s "$work/${pair%%:*}" "$BG_UNIT_DIR/${pair#*:}"; then
    install -m 0644 "$work/${pair%%:*}" "$BG_UNIT_DIR/${pair#*:}"
    changed=yes
  fi
done
if [ "$changed" = yes ]; then
  with_deadline 120 "systemctl daemon-reload" systemctl daemon-reload
  # A new port takes a restart of the socket (no scrape is lost for long: Prometheus retries).
  systemctl restart "$u.socket" 2>/dev/null || true
fi
systemctl enable -q --now "$u.socket" || die "the metrics socket $u.socket did not start on 127.0.0.1:$PORT (a port in use?): $(systemctl status --no-pager "$u.socket" 2>&1 | tail -n 3)"
textfile="no node_exporter textfile directory ($BG_TEXTFILE_DIR)"
if [ -d "$BG_TEXTFILE_DIR" ]; then
  systemctl enable -q --now "$u-textfile.timer"
  textfile="and every 30 s into $BG_TEXTFILE_DIR/$BG_NS.prom"
else
  systemctl disable -q --now "$u-textfile.timer" 2>/dev/null || true
fi
answer=$(curl -fsS --max-time 20 "http://127.0.0.1:$PORT/metrics" 2>&1) || die "the metrics endpoint 127.0.0.1:$PORT did not answer: $answer"
echo "metrics: http://127.0.0.1:$PORT/metrics ($(grep -c '^bluegreen_' <<<"$answer") samples now), $textfile"
