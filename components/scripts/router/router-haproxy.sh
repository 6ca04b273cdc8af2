# shellcheck shell=bash
# The HAProxy router, sourced by lib.sh when BG_ROUTER=haproxy: the same operations as
# router-nginx.sh (components/router/contract.ts). HAProxy cannot test a file per request,
# so the state (live, idle, maintenance) is pushed to it: a map file, rewritten with one
# rename and then set through the runtime API (root-only admin socket), which the very next
# request reads. A switch
# never reloads. A config change reloads the master-worker, which hands its listening
# sockets to the new workers; `option idle-close-on-response` keeps idle keep-alive
# connections open until their next request, answered with Connection: close.
# HTTPS: one :443 listener with a crt-list (each app's certificate by SNI for its domains),
# assembled on the host like the public frontend. A renewed certificate is written to disk
# first (the live link), then handed to HAProxy over the runtime API (set ssl cert, commit
# ssl cert): new handshakes get it, open connections keep theirs, nothing reloads. An app's
# first certificate reloads once (it adds a crt-list entry, and the listener itself when it
# is the host's first). The redirect to https is the map's https entry, like maintenance.

router_name() { echo haproxy; }

# haproxy_cli COMMANDS: runs runtime API commands (";"-separated) on the admin socket; prints the answer.
haproxy_cli() {
  printf '%s\n' "$1" | timeout 10 socat -t 5 - "UNIX-CONNECT:$BG_HAPROXY_ADMIN"
}

# haproxy_cli_payload COMMAND FILE: COMMAND with FILE as its payload, through socat's stdin
# (never argv: FILE may hold a private key). An empty line ends a payload, so none is sent.
haproxy_cli_payload() {
  { printf '%s <<\n' "$1" && sed '/^[[:space:]]*$/d' "$2" && printf '\n'; } |
    timeout 10 socat -t 5 - "UNIX-CONNECT:$BG_HAPROXY_ADMIN"
}

# slot_backend VAR COLOR: sets VAR to the backend that reaches the slot the way it listens now.
slot_backend() {
  if [ -f "$BG_STATE_DIR/slots/$2/tcp" ]; then printf -v "$1" '%s' "${BG_IDENT}_$2_tcp"; else printf -v "$1" '%s' "${BG_IDENT}_$2_socket"; fi
}

# haproxy_master COMMANDS: runs commands (";"-separated; "@1 CMD" goes to the current worker,
# "@!PID CMD" to that one) on the master CLI (root only); prints the answer. socat's own
# bounds, no timeout(1) around it (one program, not two; the switch calls this 2 to 4 times):
# the connect is non-blocking (a unix socket whose queue is full fails at once, EAGAIN, as a
# master re-executing for a reload refuses: callers retry), -T 10 ends a silent CLI, and -t 5
# the wait for the rest of the answer once the command is sent.
haproxy_master() {
  printf '%s\n' "$1" | socat -t 5 -T 10 - "UNIX-CONNECT:$BG_HAPROXY_MASTER,connect-timeout=10"
}

# router_sync: writes the map (one rename) from the state files, then sets each entry on every
# worker through the master CLI, in the same round trip as `show proc`. No reload can lose it:
# a reload re-executes the master, which reads the map file while it parses the config, forks
# the new worker, and only then answers its CLI again (while it re-executes, a connection is
# refused, and is retried). So an answer that comes after the rename either came before that
# reload's parse (which then reads the new file) or names the worker the parse made, which
# `@1` set. Workers still draining after an earlier reload are set too, by PID, so their last
# answers follow the switch. Before this app's first reload HAProxy has no map of it loaded
# ("Unknown map identifier"): the reload reads the file. An entry the loaded map lacks (https,
# on a map loaded by an older bluegreen) is added. Serialized by its own lock: the switch and
# the tls step both sync, and the later one must read the state after the earlier one changed it.
router_sync() {
  (
    flock -w 30 5 || die "another router sync has held $BG_STATE_DIR/router-sync.lock for over 30 s"
    # In this subshell only: the map file is created 0644 (HAProxy's master reads it as root).
    umask 022
    haproxy_sync
  ) 5>"$BG_STATE_DIR/router-sync.lock"
}
haproxy_sync() {
  local live=blue idle=green blue green maint=off https=off drain=off cmds="" k v deadline
  # The live link's colour file, as live_color reads it (no subshell: this runs in every switch).
  if [ -f "$BG_LIVE_LINK/green" ] || { [ ! -f "$BG_LIVE_LINK/blue" ] && [ "$(live_color)" = green ]; }; then
    live=green idle=blue
  fi
  slot_backend blue blue
  slot_backend green green
  [ ! -f "$BG_MAINTENANCE_FLAG" ] || maint=on
  [ ! -f "$BG_HTTPS_FLAG" ] || https=on
  [ ! -f "$BG_DRAIN_FLAG" ] || drain=on
  # Checked step by step: a reload would load a map file that did not get written.
  # blue and green: each slot's backend, for the check listener's X-Bluegreen-Slot (the switch's gate).
  # drain: on while drain.sh takes this host out of the load balancer (its health path answers 503).
  { printf 'live %s\nidle %s\nmaintenance %s\nhttps %s\ndrain %s\nblue %s\ngreen %s\n' "${!live}" "${!idle}" \
    "$maint" "$https" "$drain" "$blue" "$green" >"$BG_HAPROXY_MAP.new" &&
    mv -f "$BG_HAPROXY_MAP.new" "$BG_HAPROXY_MAP"; } || {
    rm -f "$BG_HAPROXY_MAP.new"
    die "could not write $BG_HAPROXY_MAP, so HAProxy was not told ($(space_note "$BG_STATE_DIR"))"
  }
  if [ ! -S "$BG_HAPROXY_MASTER" ]; then
    # HAProxy is not running: it reads the file when it starts.
    [ ! -S "$BG_HAPROXY_ADMIN" ] || die "HAProxy runs without its master CLI ($BG_HAPROXY_MASTER), through which bluegreen reaches every worker: start it with -S $BG_HAPROXY_MASTER, as Debian's unit does (an EXTRAOPTS line in /etc/default/haproxy replaces the unit's; pulumi up adds -S to it)"
    return 0
  fi
  while read -r k v; do cmds+="@1 set map $BG_HAPROXY_MAP $k $v; "; done <"$BG_HAPROXY_MAP"
  printf -v deadline '%(%s)T' -1
  deadline=$((deadline + 15))
  until haproxy_sync_all "$cmds"; do
    [ "$(now_s)" -lt "$deadline" ] || die "HAProxy's master CLI ($BG_HAPROXY_MASTER) gave no whole answer for 15 s, so $BG_APP's routing may not be what $BG_HAPROXY_MAP says; its log says:
$(router_error_log_tail)"
    sleep 0.05
  done
}

# haproxy_sync_all CMDS: one try at setting the map on every worker; fails (to be retried) when an
# answer did not come whole: the master refuses connections while it re-executes for a reload,
# and a reload closes the connections it had. Each batch ends with `show proc`, so a whole
# answer ("# programs" at its end) proves every command before it was run.
haproxy_sync_all() {
  local out pid old=""
  out=$(haproxy_master "${1}show proc" 2>/dev/null) && [[ $out == *"# programs"* ]] || return 1
  # Each `set map` answers nothing when it took the entry.
  if [[ ${out%%"#<PID>"*} =~ [^[:space:]] ]]; then haproxy_sync_worker 1 || return 1; fi
  haproxy_old_workers old "$out"
  for pid in $old; do haproxy_sync_worker "!$pid" || return 1; done
}

# haproxy_old_workers VAR ANSWER: sets VAR to the PIDs under "# old workers" in a `show proc`
# answer (draining after a reload), space-separated; read in bash (this runs in every switch).
haproxy_old_workers() {
  local _line _in=no _pids=""
  while IFS= read -r _line; do
    case "$_line" in
      "# old workers"*) _in=yes ;;
      "#"*) _in=no ;;
      *) if [ "$_in" = yes ] && [[ $_line =~ ^([0-9]+)[[:space:]] ]]; then _pids+="${BASH_REMATCH[1]} "; fi ;;
    esac
  done <<<"$2"
  printf -v "$1" '%s' "$_pids"
}

# haproxy_worker_gone ANSWER: the worker an @ prefix named has exited (HAProxy 2.6 then closes
# the session, so nothing after it ran), or is exiting and no longer takes commands.
haproxy_worker_gone() { [[ $1 == *"Can't find the target PID"* || $1 == *"Can't connect to the target CLI"* ]]; }

# haproxy_sync_worker WHO: sets the map file's entries on one worker ("1": the current one,
# "!PID": that one), adding only those its map, as it answered whole, lacks. A worker gone
# meanwhile, or one that has not loaded this app's map ("Unknown map identifier": before this
# app's first reload), has nothing to set. Fails (retry) when an answer did not come whole.
haproxy_sync_worker() {
  local who=$1 have out cmds="" k v
  have=$(haproxy_master "@$who show map $BG_HAPROXY_MAP; show proc" 2>/dev/null) || return 1
  ! haproxy_worker_gone "$have" || return 0
  [[ $have == *"# programs"* ]] || return 1
  [[ $have != *"Unknown map identifier"* ]] || return 0
  have=${have%%"#<PID>"*}
  while read -r k v; do
    if awk -v k="$k" '$2 == k { f = 1 } END { exit !f }' <<<"$have"; then
      cmds+="@$who set map $BG_HAPROXY_MAP $k $v; "
    else
      cmds+="@$who add map $BG_HAPROXY_MAP $k $v; "
    fi
  done <"$BG_HAPROXY_MAP"
  out=$(haproxy_master "${cmds}show proc" 2>/dev/null) || return 1
  ! haproxy_worker_gone "$out" || return 0
  [[ $out == *"# programs"* ]] || return 1
  out=${out%%"#<PID>"*}
  [ -z "$(tr -d '[:space:]' <<<"$out")" ] || die "HAProxy refused the new routing of $BG_APP: $out"
}

# haproxy_master_cli_opts FILE: makes an EXTRAOPTS line of /etc/default/haproxy (it replaces the
# unit's own, "-S /run/haproxy-master.sock") keep the master CLI; prints "added" when it changed it.
haproxy_master_cli_opts() {
  local f=$1
  { [ -f "$f" ] && grep -q '^EXTRAOPTS=' "$f"; } || return 0
  ! grep -q "^EXTRAOPTS=.*-S $BG_HAPROXY_MASTER" "$f" || return 0
  sed -i -E "s|^EXTRAOPTS=\"?([^\"]*)\"?\$|EXTRAOPTS=\"\\1 -S $BG_HAPROXY_MASTER\"|" "$f"
  echo added
}

router_test() { haproxy_test; }
router_reload() { haproxy_reload_settled; }

# haproxy_worker_pid: the PID of the worker that answers the runtime API now; nothing if none does.
haproxy_worker_pid() { { haproxy_cli "show info" 2>/dev/null || true; } | sed -n 's/^Pid: *//p'; }

# haproxy_reload_settled: reloads the master-worker (layout.sh's haproxy_reload), then waits
# until only a new worker answers the admin socket. Right after a reload the old worker still
# accepts there for a moment (HAProxy 2.6 here: the first one or two connections), and a
# `set map` or `set ssl cert` it takes is lost with it while the new worker serves every new
# connection: a switch right after a config change would not move traffic.
haproxy_reload_settled() {
  local old pid seen=0 deadline
  old=$(haproxy_worker_pid)
  haproxy_reload || return 1
  [ -n "$old" ] || return 0
  deadline=$(($(now_s) + 30))
  while [ "$seen" -lt 3 ]; do
    pid=$(haproxy_worker_pid)
    if [ -n "$pid" ] && [ "$pid" != "$old" ]; then seen=$((seen + 1)); else seen=0; fi
    if [ "$(now_s)" -ge "$deadline" ]; then
      log "HAProxy was reloaded, but its runtime API is still answered by the old worker (pid $old) after 30 s; its log says:
$(router_error_log_tail)"
      return 1
    fi
    sleep 0.02
  done
}

# The sections every app sends; "crt" (its crt-list line) comes only with tls.
router_sections() { echo "main public app route page"; }
router_target() {
  case "$1" in
    main) echo "$BG_HAPROXY_MAIN" ;;
    public) echo "$BG_HAPROXY_ROUTES_DIR/head" ;;
    app) echo "$BG_HAPROXY_APP" ;;
    route) echo "$BG_HAPROXY_ROUTE" ;;
    page) echo "$BG_WWW_DIR/maintenance.html" ;;
    crt) echo "$BG_HAPROXY_CRT" ;;
    certs) echo "$BG_HAPROXY_CRT_LIST" ;;
    frontend) echo "$BG_HAPROXY_PUBLIC" ;;
    *) die "unknown router section: $1" ;;
  esac
}

# haproxy_frontend HEAD CERTS ROUTE_FILES...: the public frontend: the head (its :443 lines
# uncommented when the crt-list CERTS has an entry: renderHaproxy.ts HTTPS_BIND_MARK), then
# each app's routes, the catch-all app (no domains) last.
haproxy_frontend() {
  local head=$1 certs=$2 f
  shift 2
  if [ -s "$certs" ]; then sed 's/^#bluegreen-https//' "$head"; else cat "$head"; fi
  for f in "$@"; do grep -q '^# bluegreen route: catch-all' "$f" || cat "$f"; done
  for f in "$@"; do ! grep -q '^# bluegreen route: catch-all' "$f" || cat "$f"; done
}

# haproxy_certs CRT_FILES...: the crt-list: each app's line whose certificate is on disk
# (HAProxy refuses to load a missing file; the tls step installs it, then adds the line),
# sorted: the same list whichever app deployed last, so no needless reload, and the same
# default certificate (the first line: HAProxy's answer to a client without a known SNI).
haproxy_certs() {
  local f line pem
  for f in "$@"; do
    while IFS= read -r line; do
      pem=${line%% *}
      [ -z "$pem" ] || [ ! -s "$pem" ] || printf '%s\n' "$line"
    done <"$f"
  done | LC_ALL=C sort
}

# other_app_files EXT: every other app's route (route) or crt-list line (crt) on this host.
other_app_files() {
  local f mine=$BG_HAPROXY_ROUTE
  [ "$1" = route ] || mine=$BG_HAPROXY_CRT
  for f in "$BG_HAPROXY_ROUTES_DIR"/*."$1"; do
    [ -f "$f" ] && [ "$f" != "$mine" ] && echo "$f"
  done
  return 0
}

# router_prepare WORK: keeps a newer shared main file and head, writes the map this app's
# frontends read, and assembles the crt-list and the public frontend with this app's new
# routes and crt-list line.
router_prepare() {
  local work=$1 f have routes=() crts=()
  for f in main public; do
    have=$(shared_version "$(router_target "$f")" bluegreen-haproxy)
    if [ -n "$have" ] && [ "$have" -gt "$(shared_version "$work/$f" bluegreen-haproxy)" ]; then
      log "keeping the host's shared HAProxy file $(router_target "$f") (version $have, newer than this app's bluegreen)"
      cp "$(router_target "$f")" "$work/$f"
    fi
  done
  install -d -m 0755 "$BG_HAPROXY_DIR" "$BG_HAPROXY_ROUTES_DIR" "$BG_WWW_DIR"
  [ -f "$work/crt" ] || : >"$work/crt"
  mapfile -t crts < <(other_app_files crt)
  haproxy_certs "${crts[@]}" "$work/crt" >"$work/certs"
  mapfile -t routes < <(other_app_files route)
  haproxy_frontend "$work/public" "$work/certs" "${routes[@]}" "$work/route" >"$work/frontend"
  [ -f "$BG_HAPROXY_MAP" ] || router_sync
}
router_files() { echo "main public app route page crt certs frontend"; }

# router_config_hash WORK: what the check listener answers on /.bluegreen/site once HAProxy serves this config.
router_config_hash() { sed -n 's|^ *http-request return status 200 .* string \([0-9a-f]\{16\}\) if .*$|\1|p' "$1/app" | head -n 1; }

# router_serves_https WORK: the prepared config serves this app's certificate on :443.
router_serves_https() { grep -qF "$BG_TLS_PEM " "$1/certs"; }

# router_remove_app: takes this app's frontends, backends, routes and certificate out, and reloads.
router_remove_app() {
  local work routes=() crts=() out f
  [ -f "$BG_HAPROXY_APP" ] || [ -f "$BG_HAPROXY_ROUTE" ] || return 0
  work=$(mktemp -d)
  for f in "$BG_HAPROXY_APP" "$BG_HAPROXY_ROUTE" "$BG_HAPROXY_CRT" "$BG_HAPROXY_CRT_LIST" "$BG_HAPROXY_PUBLIC"; do
    [ ! -f "$f" ] || cp -p "$f" "$work/"
  done
  rm -f "$BG_HAPROXY_APP" "$BG_HAPROXY_ROUTE" "$BG_HAPROXY_CRT"
  mapfile -t crts < <(other_app_files crt)
  haproxy_certs "${crts[@]}" >"$BG_HAPROXY_CRT_LIST.new"
  mv -f "$BG_HAPROXY_CRT_LIST.new" "$BG_HAPROXY_CRT_LIST"
  mapfile -t routes < <(other_app_files route)
  haproxy_frontend "$BG_HAPROXY_ROUTES_DIR/head" "$BG_HAPROXY_CRT_LIST" "${routes[@]}" >"$BG_HAPROXY_PUBLIC.new"
  mv -f "$BG_HAPROXY_PUBLIC.new" "$BG_HAPROXY_PUBLIC"
  if ! out=$(haproxy_test 2>&1); then
    for f in "$BG_HAPROXY_APP" "$BG_HAPROXY_ROUTE" "$BG_HAPROXY_CRT" "$BG_HAPROXY_CRT_LIST" "$BG_HAPROXY_PUBLIC"; do
      [ ! -f "$work/$(basename "$f")" ] || cp -p "$work/$(basename "$f")" "$f"
    done
    rm -rf "$work"
    die "HAProxy rejected the host's config without this app, so it was put back:
$out"
  fi
  rm -rf "$work"
  haproxy_reload_settled
}

router_error_log_tail() { journalctl -u haproxy -n 5 --no-pager 2>/dev/null | sed 's/^/  /' || true; }

# haproxy_counts TARGET: one line "PID requests 5xx" per worker (the current one and those still
# draining after a reload): what each counted for the slot's backends (both ways of listening),
# including the 502/503/504 it made itself when the slot failed, less what came through the
# check listener (the switch's own requests: the live slot's backends serve it too), so only
# public traffic counts, as nginx's watch reads the public access log. Fails, printing nothing, when
# the master gave no list of workers or a worker gave no stats (no header: a timeout or an error).
haproxy_counts() {
  local procs pid pids="" line out c lines="" workers=no
  procs=$(haproxy_master "show proc") && [[ $procs == *"# workers"* ]] || return 1
  # The PIDs under "# workers" and "# old workers", read in bash (no awk: this runs in every switch).
  while IFS= read -r line; do
    case "$line" in
      "#"*workers*) workers=yes ;;
      "#"*) workers=no ;;
      *) if [ "$workers" = yes ] && [[ $line =~ ^([0-9]+)[[:space:]] ]]; then pids+="${BASH_REMATCH[1]} "; fi ;;
    esac
  done <<<"$procs"
  for pid in $pids; do
    out=$(haproxy_master "@!$pid show stat") || return 1
    case "$out" in *"Can't find the target PID"*) continue ;; esac
    haproxy_stat_counts c "$1" "$out" || return 1
    lines+="$pid $c"$'\n'
  done
  [ -n "$lines" ] || return 1
  printf '%s' "$lines"
}

# haproxy_stat_counts VAR TARGET CSV: sets VAR to "requests 5xx" of TARGET's backends (both
# ways of listening) in one worker's `show stat` CSV, less its check frontend's; fails on an
# answer that is not the CSV (no header, or no req_tot or hrsp_5xx column).
haproxy_stat_counts() {
  local csv=$3 line i r=-1 h=-1 t=0 e=0 ct=0 ce=0 a="${BG_IDENT}_$2_socket" b="${BG_IDENT}_$2_tcp" check="${BG_IDENT}_check"
  local -a f
  line=${csv%%$'\n'*}
  [[ $line == "# pxname,"* ]] || return 1
  IFS=, read -ra f <<<"${line#"# "}"
  for i in "${!f[@]}"; do
    case "${f[i]}" in req_tot) r=$i ;; hrsp_5xx) h=$i ;; esac
  done
  [ "$r" -ge 0 ] && [ "$h" -ge 0 ] || return 1
  while IFS=, read -ra f; do
    if [ "${f[1]:-}" = BACKEND ] && { [ "${f[0]}" = "$a" ] || [ "${f[0]}" = "$b" ]; }; then
      t=$((t + ${f[r]:-0})) e=$((e + ${f[h]:-0}))
    elif [ "${f[1]:-}" = FRONTEND ] && [ "${f[0]}" = "$check" ]; then
      ct=$((ct + ${f[r]:-0})) ce=$((ce + ${f[h]:-0}))
    fi
  done <<<"${csv#*$'\n'}"
  printf -v "$1" '%s %s' $((t - ct)) $((e - ce))
}

# router_watch_base TARGET: the counters at the move, "PID:requests:5xx" per worker.
router_watch_base() {
  local c pid t e base=""
  c=$(haproxy_counts "$1") || return 1
  while read -r pid t e; do base+="$pid:$t:$e "; done <<<"$c"
  echo "${base% }"
}

# router_watch_read TARGET BASE MOVED_MS: sets WATCH_TOTAL and WATCH_ERRORS, the responses and
# 5xx for the slot since the move, summed over every worker seen since then: each worker counts
# on its own, a reload's new one from 0, and a draining one's last counts are kept after it is
# gone (HAPROXY_SEEN, for this process). A base token of an older bluegreen (no PID) counts from 0.
declare -gA HAPROXY_SEEN=()
router_watch_read() {
  local c pid t e tok bt be total=0 errors=0
  local -A base=()
  c=$(haproxy_counts "$1") || return 1
  while read -r pid t e; do HAPROXY_SEEN[$pid]="$t $e"; done <<<"$c"
  for tok in $2; do
    IFS=: read -r pid t e <<<"$tok"
    [ -z "$e" ] || base[$pid]="$t $e"
  done
  for pid in "${!HAPROXY_SEEN[@]}"; do
    read -r t e <<<"${HAPROXY_SEEN[$pid]}"
    read -r bt be <<<"${base[$pid]:-0 0}"
    total=$((total + t - bt)) errors=$((errors + e - be))
  done
  # shellcheck disable=SC2034 # read by the watch (watch.sh)
  WATCH_TOTAL=$total WATCH_ERRORS=$errors
}

# ---- HTTPS ---------------------------------------------------------------------------------

# router_tls_group: the group that may read the certificate file (HAProxy's master reads it as root).
router_tls_group() { echo root; }

# router_tls_hint: how to see which certificate the router serves.
router_tls_hint() { echo "echo 'show ssl cert $BG_TLS_PEM' | socat - UNIX-CONNECT:$BG_HAPROXY_ADMIN"; }

# router_acme_http_args: lego's HTTP-01 flags. HAProxy cannot serve a directory, so lego runs
# its own server on the app's loopback acme port, behind this app's acme backend on :80.
router_acme_http_args() {
  [ -n "${ACME_HTTP_PORT:-}" ] || {
    log "acme.conf has no ACME_HTTP_PORT, which HTTP-01 through HAProxy needs: run pulumi up with this bluegreen"
    return 1
  }
  echo "--http --http.port 127.0.0.1:$ACME_HTTP_PORT"
}

# router_tls_install: makes HAProxy serve the certificate the live link ($BG_TLS_PEM) points
# at now, already on disk (so a reload or a reboot reads it too). A certificate HAProxy
# serves already is replaced through the runtime API: set ssl cert (the file over socat's
# stdin, never argv), then commit ssl cert; new handshakes get it, open connections keep
# theirs, nothing reloads. An app's first certificate enters the crt-list with one reload.
# Prints what was done; returns non-zero (with a message on stderr) if HAProxy does not serve it.
# The caller (tls_install) holds the host lock, so no other app's reload or certificate
# transaction interleaves: any transaction open now is a leftover (a killed renewal), and
# HAProxy 2.6 has one at a time, whose `set ssl cert` answers for the open path, not the
# one asked (fixed upstream in 3.1): it is aborted first, and the answer must name our path.
router_tls_install() {
  local out want got size open
  [ -S "$BG_HAPROXY_ADMIN" ] || { log "HAProxy's runtime API ($BG_HAPROXY_ADMIN) is not there: is haproxy running?"; return 1; }
  out=$(haproxy_cli "show ssl cert") || { log "the HAProxy runtime API ($BG_HAPROXY_ADMIN) did not answer"; return 1; }
  while IFS= read -r open; do
    haproxy_cli "abort ssl cert $open" >/dev/null 2>&1 || true
    log "aborted a certificate transaction left open on $open"
  done < <(sed -n 's/^\*//p' <<<"$out")
  if ! grep -qxF "$BG_TLS_PEM" <<<"$out"; then
    haproxy_tls_first || return 1
    echo "haproxy was reloaded once to add the app's first certificate to its :443 crt-list"
    return 0
  fi
  # A payload must fit one CLI buffer (tune.bufsize, 16 KiB by default); a bigger one gets no answer.
  size=$(sed '/^[[:space:]]*$/d' "$BG_TLS_PEM" | wc -c)
  [ "$size" -lt 16000 ] || { log "the certificate file is $size bytes, more than HAProxy's runtime API takes in one command (16 KiB): shorten the chain"; return 1; }
  if ! out=$(haproxy_cli_payload "set ssl cert $BG_TLS_PEM" "$BG_TLS_PEM"); then
    haproxy_tls_abort
    log "the HAProxy runtime API did not answer set ssl cert"
    return 1
  fi
  if ! grep -qxF "Transaction created for certificate $BG_TLS_PEM!" <<<"$out" &&
    ! grep -qxF "Transaction updated for certificate $BG_TLS_PEM!" <<<"$out"; then
    haproxy_tls_abort
    log "HAProxy refused the new certificate: ${out:-no answer}"
    return 1
  fi
  if ! out=$(haproxy_cli "commit ssl cert $BG_TLS_PEM"); then
    haproxy_tls_abort
    log "the HAProxy runtime API did not answer commit ssl cert"
    return 1
  fi
  grep -q '^Success!' <<<"$out" || {
    haproxy_tls_abort
    log "HAProxy did not commit the new certificate: $out"
    return 1
  }
  want=$(cert_field "$BG_TLS_PEM" serial)
  got=$(haproxy_cli "show ssl cert $BG_TLS_PEM" | sed -n 's/^Serial: *//p')
  [ "$got" = "$want" ] || { log "HAProxy holds certificate serial '${got:-none}' after the commit, not $want"; return 1; }
  echo "haproxy was not reloaded (runtime API: set ssl cert, commit ssl cert)"
}

# haproxy_tls_abort: ends this app's open certificate transaction, if any.
haproxy_tls_abort() { haproxy_cli "abort ssl cert $BG_TLS_PEM" >/dev/null 2>&1 || true; }

# haproxy_tls_first: adds this app's certificate (on disk now) to the crt-list, with the :443
# listener if it is the host's first, and reloads; the host lock is held.
haproxy_tls_first() {
  local work crts=() routes=() f out deadline
  [ -s "$BG_HAPROXY_CRT" ] || { log "this app has no crt-list line ($BG_HAPROXY_CRT): the router step writes it with tls on; run pulumi up"; return 1; }
  # Called in a command substitution's condition, where set -e does not apply: each step checks.
  work=$(mktemp -d) || return 1
  mapfile -t crts < <(other_app_files crt)
  haproxy_certs "${crts[@]}" "$BG_HAPROXY_CRT" >"$work/certs" || return 1
  mapfile -t routes < <(other_app_files route)
  [ ! -f "$BG_HAPROXY_ROUTE" ] || routes+=("$BG_HAPROXY_ROUTE")
  haproxy_frontend "$BG_HAPROXY_ROUTES_DIR/head" "$work/certs" "${routes[@]}" >"$work/frontend" || return 1
  for f in "$BG_HAPROXY_CRT_LIST" "$BG_HAPROXY_PUBLIC"; do
    [ ! -f "$f" ] || cp -p "$f" "$work/$(basename "$f").old" || return 1
  done
  haproxy_tls_put_back() {
    for f in "$BG_HAPROXY_CRT_LIST" "$BG_HAPROXY_PUBLIC"; do
      if [ -f "$work/$(basename "$f").old" ]; then cp -p "$work/$(basename "$f").old" "$f"; else rm -f "$f"; fi
    done
    rm -rf "$work"
  }
  install -m 0644 "$work/certs" "$BG_HAPROXY_CRT_LIST" || { haproxy_tls_put_back; return 1; }
  install -m 0644 "$work/frontend" "$BG_HAPROXY_PUBLIC" || { haproxy_tls_put_back; return 1; }
  if ! out=$(haproxy_test 2>&1); then
    haproxy_tls_put_back
    log "HAProxy rejected the config with this app's certificate, so the previous one was restored:
$out"
    return 1
  fi
  haproxy_reload_settled || { haproxy_tls_put_back; log "reloading HAProxy failed"; return 1; }
  deadline=$(($(date +%s) + 15))
  until haproxy_cli "show ssl cert" 2>/dev/null | grep -qxF "$BG_TLS_PEM"; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      haproxy_tls_put_back
      log "HAProxy was reloaded but does not list $BG_TLS_PEM after 15 s; its log says:
$(router_error_log_tail)"
      return 1
    fi
    sleep 0.2
  done
  rm -rf "$work"
}
