#!/usr/bin/env bash
# The app's Prometheus metrics, in the text exposition format (version 0.0.4).
#   metrics.sh            prints them (people, and the tests);
#   metrics.sh serve      answers one HTTP request on stdin/stdout with them (the metrics
#                         .socket unit, Accept=yes, on 127.0.0.1:metricsPort);
#   metrics.sh textfile   writes them into node_exporter's textfile directory, when the host has one.
# Every value is read when asked: the live colour, the versions, readiness and staged changes
# from the slots' records; switches, their durations, rollbacks, backup failures and
# notifications from the audit log; requests and 5xx per slot from the router's own counts
# (nginx: its access log; HAProxy: each worker's backend counters, `show stat`); backups from
# their manifests; certificate expiry from the TLS record. The logs are read from where the
# last read stopped (the counters are kept in $BG_METRICS_DIR), so a read costs what was logged since.
# Inputs: none (layout.sh and the records say everything).
# Arguments: [serve|textfile]
set -euo pipefail
# lib.sh is beside this file: a symlink to it (bluegreen-status) is resolved; no program runs otherwise.
BG_SELF=$0 && { [[ $0 == */* ]] || BG_SELF=./$0; } && { [ ! -L "$0" ] || BG_SELF=$(readlink -f "$0"); }
# shellcheck source=/dev/null
. "${BG_SELF%/*}/lib.sh"
mode=${1:-print}
case "$mode" in print | serve | textfile) ;; *) die "usage: ${0##*/} [serve|textfile]" ;; esac
install -d -m 0755 "$BG_METRICS_DIR"
exec {metricsfd}>"$BG_METRICS_DIR/lock"
flock -w 20 "$metricsfd" || die "another read of the metrics has held $BG_METRICS_DIR/lock for over 20 s"
counters="$BG_METRICS_DIR/counters"
lines=$(mktemp)
trap 'rm -f "$lines"' EXIT
declare -A C=()
if [ -f "$counters" ]; then
  while IFS='=' read -r k v; do [ -z "$k" ] || C[$k]=$v; done <"$counters"
fi

# new_lines FILE KEY: the lines FILE got since the last read (KEY: where that read stopped, by
# inode and offset, kept in C: call it with its output redirected, never in $(...) or <(...)). A rotated file (new inode) is read from its start, after the end of the
# old one (FILE.1) when that is the file read last time.
new_lines() {
  local f=$1 k=$2 ino size off old
  [ -r "$f" ] || return 0
  read -r ino size < <(stat -c '%i %s' "$f")
  off=${C[$k.offset]:-0} old=${C[$k.inode]:-}
  if [ -n "$old" ] && [ "$old" != "$ino" ]; then
    if [ -r "$f.1" ] && [ "$(stat -c %i "$f.1")" = "$old" ]; then tail -c +$((off + 1)) "$f.1"; fi
    off=0
  elif [ "$size" -lt "$off" ]; then
    off=0
  fi
  tail -c +$((off + 1)) "$f" | head -c $((size - off))
  C[$k.inode]=$ino C[$k.offset]=$size
}

# haproxy_counts_all COLOR: "PID requests 5xx" per HAProxy worker for the slot's backends (both
# ways of listening), as each worker counted them (show stat through the master CLI).
haproxy_counts_all() {
  local procs pid out
  procs=$(haproxy_master "show proc") && [[ $procs == *"# workers"* ]] || return 1
  while read -r pid; do
    out=$(haproxy_master "@!$pid show stat") || return 1
    case "$out" in *"Can't find the target PID"*) continue ;; esac
    awk -F, -v pid="$pid" -v a="${BG_IDENT}_$1_socket" -v b="${BG_IDENT}_$1_tcp" '
      NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "hrsp_5xx") h = i; if ($i == "req_tot") r = i }; next }
      ($1 == a || $1 == b) && $2 == "BACKEND" { t += $r; e += $h }
      END { if (h && r) print pid, t + 0, e + 0 }' <<<"$out"
  done < <(awk '/^# / { w = ($0 ~ /workers/); next } w && $1 ~ /^[0-9]+$/ { print $1 }' <<<"$procs")
}

# From the audit log: switches by result, their durations, rollbacks, backup failures, notifications.
new_lines "$BG_AUDIT_LOG" audit >"$lines"
while read -r _ action rest; do
  result=${rest##*result=} result=${result%% *}
  case "$action" in
    switch) C[switch.$result]=$((${C[switch.$result]:-0} + 1)) ;;
    rollback) [ "$result" != rolled-back ] || C[rollbacks]=$((${C[rollbacks]:-0} + 1)) ;;
    backup | backup-offsite) [ "$result" != failed ] || C[backup.failures]=$((${C[backup.failures]:-0} + 1)) ;;
    notify) C[notify.$result]=$((${C[notify.$result]:-0} + 1)) ;;
  esac
done < <(grep -E '^[0-9-]+T[0-9:]+Z (switch|rollback|backup|backup-offsite|notify) ' "$lines" || true)
if [ -s "$BG_METRICS_DIR/switch-ms" ]; then
  new_lines "$BG_METRICS_DIR/switch-ms" switchms >"$lines"
  while read -r ms; do
    [[ $ms =~ ^[0-9]+$ ]] || continue
    C[switch.ms.sum]=$((${C[switch.ms.sum]:-0} + ms)) C[switch.ms.count]=$((${C[switch.ms.count]:-0} + 1))
  done <"$lines"
fi

# From the router: requests and 5xx per slot.
if [ "$BG_ROUTER" = nginx ]; then
  # Lines start "$msec $status $upstream_status"; ua="$upstream_addr" names the slot (its socket
  # or its loopback port). A response nginx made itself (the maintenance page) reached no slot.
  blue_at=$(cat "$(slot_dir blue)/listen" 2>/dev/null || true) green_at=$(cat "$(slot_dir green)/listen" 2>/dev/null || true)
  new_lines "$BG_ACCESS_LOG" access >"$lines"
  while read -r color req err; do
    C[$color.requests]=$((${C[$color.requests]:-0} + req)) C[$color.5xx]=$((${C[$color.5xx]:-0} + err))
  done < <(awk -v b="$BG_RUN_DIR/blue/" -v g="$BG_RUN_DIR/green/" -v bt="${blue_at#unix:}" -v gt="${green_at#unix:}" '
    $3 == "-" { next }
    { c = ""; if (match($0, / ua="[^"]*"/)) { u = substr($0, RSTART + 5, RLENGTH - 6); n = split(u, us, ", "); u = us[n]; sub(/^unix:/, "", u)
        if (index(u, b) == 1 || u == bt) c = "blue"; else if (index(u, g) == 1 || u == gt) c = "green" }
      if (c == "") next; r[c]++; if ($2 >= 500) e[c]++ }
    END { for (c in r) print c, r[c], e[c] + 0 }' "$lines")
else
  # Each worker counts on its own and a reload's new worker from 0: the counters add what each
  # worker counted, and keep the last counts of a worker that has gone.
  declare -A seen=()
  for color in blue green; do
    if counts=$(haproxy_counts_all "$color"); then
      while read -r pid req err; do
        seen[$color.$pid]="$req $err"
      done <<<"$counts"
    fi
  done
  for k in "${!C[@]}"; do
    [[ $k =~ ^haproxy\.(blue|green)\.([0-9]+)$ ]] || continue
    if [ -z "${seen[${BASH_REMATCH[1]}.${BASH_REMATCH[2]}]:-}" ]; then
      read -r req err <<<"${C[$k]}"
      C[${BASH_REMATCH[1]}.gone.requests]=$((${C[${BASH_REMATCH[1]}.gone.requests]:-0} + req))
      C[${BASH_REMATCH[1]}.gone.5xx]=$((${C[${BASH_REMATCH[1]}.gone.5xx]:-0} + err))
      unset "C[$k]"
    fi
  done
  for k in "${!seen[@]}"; do C[haproxy.$k]=${seen[$k]}; done
  for color in blue green; do
    req=${C[$color.gone.requests]:-0} err=${C[$color.gone.5xx]:-0}
    for k in "${!seen[@]}"; do
      [[ $k == "$color."* ]] || continue
      read -r r e <<<"${seen[$k]}"
      req=$((req + r)) err=$((err + e))
    done
    C[$color.requests]=$req C[$color.5xx]=$err
  done
fi

for k in "${!C[@]}"; do printf '%s=%s\n' "$k" "${C[$k]}"; done | sort >"$counters.new"
mv -f "$counters.new" "$counters"
exec {metricsfd}>&-

# ---- the exposition -----------------------------------------------------------------------
out=""
app="app=\"$BG_APP\""
metric() { out+="# HELP $1 $3"$'\n'"# TYPE $1 $2"$'\n'; }
sample() { out+="$1{$app${2:+,$2}} $3"$'\n'; }
esc() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '%s' "${s//$'\n'/\\n}"; }

live=$(live_color)
metric bluegreen_live gauge "1 for the slot that serves live traffic (the live link), 0 for the other."
for c in blue green; do sample bluegreen_live "color=\"$c\"" "$([ "$live" = "$c" ] && echo 1 || echo 0)"; done
metric bluegreen_slot_info gauge "The release each slot last deployed, as its version label."
for c in blue green; do
  v=$(recorded version "$c")
  [ -z "$v" ] || sample bluegreen_slot_info "color=\"$c\",version=\"$(esc "$v")\"" 1
done
metric bluegreen_slot_ready gauge "1 when the slot answers 2xx on its readiness path now."
for c in blue green; do
  sample bluegreen_slot_ready "color=\"$c\"" "$(slot_ready "$c" "$(recorded health_path "$c" | grep . || echo /health/ready)" && echo 1 || echo 0)"
done
metric bluegreen_slot_staged gauge "1 when a change is staged for the slot (it applies right after the next switch away from it)."
for c in blue green; do sample bluegreen_slot_staged "color=\"$c\"" "$([ -f "$(pending_dir "$c")/record" ] && echo 1 || echo 0)"; done
metric bluegreen_maintenance gauge "1 while maintenance mode is on."
sample bluegreen_maintenance "" "$([ -f "$BG_MAINTENANCE_FLAG" ] && echo 1 || echo 0)"
metric bluegreen_switches_total counter "Switches, by result (ok, refused, failed, interrupted), from the audit log."
for r in ok refused failed interrupted; do sample bluegreen_switches_total "result=\"$r\"" "${C[switch.$r]:-0}"; done
metric bluegreen_switch_duration_seconds summary "How long switches took, from the lock to the router serving the new slot (the watch not included)."
sample bluegreen_switch_duration_seconds_sum "" "$(awk -v ms="${C[switch.ms.sum]:-0}" 'BEGIN { printf "%.3f", ms / 1000 }')"
sample bluegreen_switch_duration_seconds_count "" "${C[switch.ms.count]:-0}"
metric bluegreen_rollbacks_total counter "Automatic rollbacks (the post-switch watch, or a failed postSwitch with postSwitchFailure rollback)."
sample bluegreen_rollbacks_total "" "${C[rollbacks]:-0}"
metric bluegreen_slot_requests_total counter "Public requests the router sent to each slot ($BG_ROUTER's own counts)."
for c in blue green; do sample bluegreen_slot_requests_total "color=\"$c\"" "${C[$c.requests]:-0}"; done
metric bluegreen_slot_responses_5xx_total counter "Of those, the responses with a 5xx status."
for c in blue green; do sample bluegreen_slot_responses_5xx_total "color=\"$c\"" "${C[$c.5xx]:-0}"; done

if backups_on || [ -d "$BG_BACKUP_DIR" ]; then
  newest=$(backup_ids | tail -n 1)
  metric bluegreen_backups gauge "Backups kept on this host."
  sample bluegreen_backups "" "$(backup_ids | grep -c . || true)"
  metric bluegreen_backup_failures_total counter "Failed backups and off-host copies, from the audit log."
  sample bluegreen_backup_failures_total "" "${C[backup.failures]:-0}"
  if [ -n "$newest" ]; then
    created=$(date -u -d "$(field "$BG_BACKUP_DIR/$newest/manifest" created)" +%s)
    metric bluegreen_backup_last_success_timestamp_seconds gauge "When the newest backup on this host was taken (Unix time)."
    sample bluegreen_backup_last_success_timestamp_seconds "" "$created"
    metric bluegreen_backup_age_seconds gauge "How old the newest backup on this host is."
    sample bluegreen_backup_age_seconds "" "$(($(now_s) - created))"
    metric bluegreen_backup_size_bytes gauge "The size of each database in the newest backup."
    for db in $(field "$BG_BACKUP_DIR/$newest/manifest" databases); do
      b=$(field "$BG_BACKUP_DIR/$newest/manifest" "bytes.$db")
      [ -z "$b" ] || sample bluegreen_backup_size_bytes "database=\"$(esc "$db")\"" "$b"
    done
  fi
  ok=$(field "$BG_STATE_DIR/backup.status" offsite_last_ok)
  if [ -n "$ok" ]; then
    metric bluegreen_backup_offsite_last_success_timestamp_seconds gauge "When a copy last reached the off-host remote (Unix time)."
    sample bluegreen_backup_offsite_last_success_timestamp_seconds "" "$(date -u -d "$ok" +%s)"
  fi
fi

not_after=$(tls_field not_after)
if [ -n "$not_after" ] && [ "$(tls_field mode)" != off ]; then
  metric bluegreen_tls_certificate_expiry_timestamp_seconds gauge "When the served certificate expires (Unix time)."
  sample bluegreen_tls_certificate_expiry_timestamp_seconds "" "$(date -u -d "$not_after" +%s)"
  metric bluegreen_tls_renewal_failed gauge "1 when the last certificate renewal failed."
  sample bluegreen_tls_renewal_failed "" "$([ "$(tls_field last_result)" = failed ] && echo 1 || echo 0)"
fi

if [ -f "$BG_NOTIFY_CONF" ]; then
  metric bluegreen_notifications_total counter "Notification deliveries, by result (ok, failed: tried again, gave-up)."
  for r in ok failed gave-up; do sample bluegreen_notifications_total "result=\"$r\"" "${C[notify.$r]:-0}"; done
  metric bluegreen_notifications_queued gauge "Notifications waiting to be delivered."
  sample bluegreen_notifications_queued "" "$(find "$BG_NOTIFY_DIR/queue" -maxdepth 1 -type f ! -name '.*' 2>/dev/null | grep -c . || true)"
fi

case "$mode" in
  print) printf '%s' "$out" ;;
  textfile)
    [ -d "$BG_TEXTFILE_DIR" ] || exit 0
    printf '%s' "$out" >"$BG_TEXTFILE_DIR/.$BG_NS.prom.new"
    mv -f "$BG_TEXTFILE_DIR/.$BG_NS.prom.new" "$BG_TEXTFILE_DIR/$BG_NS.prom"
    ;;
  serve)
    # One request on stdin (the socket): its request line, then headers up to a blank line.
    IFS= read -r -t 5 line || true
    while IFS= read -r -t 5 h && [ -n "${h%$'\r'}" ]; do :; done
    case "$line" in
      "GET /metrics "* | "GET / "*)
        printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s' \
          "$(printf '%s' "$out" | wc -c)" "$out" ;;
      *) printf 'HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 19\r\nConnection: close\r\n\r\nGET /metrics only.\n' ;;
    esac
    ;;
esac
