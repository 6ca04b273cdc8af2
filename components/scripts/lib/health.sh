# shellcheck shell=bash
# Asking a slot directly (bypassing the router): readiness, the switch's gate, its journal.
# Sourced by lib.sh (after layout.sh and the router file), never run.

# slot_curl COLOR PATH [CURL_ARGS...]: a request straight to the slot, bypassing nginx.
slot_curl() {
  local color=$1 path=$2 listen
  shift 2
  { read -r listen <"$BG_STATE_DIR/slots/$color/listen"; } 2>/dev/null || [ -n "$listen" ] || return 1
  case "$listen" in
    unix:*) curl --unix-socket "${listen#unix:}" "$@" "http://$color$path" ;;
    *) curl "$@" "http://$listen$path" ;;
  esac
}

# slot_ready COLOR PATH: 0 when the slot answers 2xx on its readiness path. With CHECK_PORT set
# (the switch, and the watch maintenance deferred), asked through the router's check listener,
# which takes the slot by name (X-Bluegreen-Slot) and says which slot answered: the upstream the
# public reaches after a move, in bash alone (http_get). When the router does not say it asked
# that slot (no answer, or a config from an older bluegreen that ignores the header and serves
# the live slot), the slot is asked directly, as without CHECK_PORT.
slot_ready() {
  local via=""
  if [ -n "${CHECK_PORT:-}" ] && http_get "$CHECK_PORT" "$2" 3 "X-Bluegreen-Slot: $1"; then
    http_header via X-Bluegreen-Slot
    if [ "$via" = "$1" ]; then
      [[ $HTTP_STATUS == 2?? ]]
      return
    fi
  fi
  slot_curl "$1" "$2" -fsS -o /dev/null --max-time 3 2>/dev/null
}

journal_tail() {
  journalctl -u "$BG_NS@$1" -n "${2:-25}" --no-pager -o short-iso 2>&1 | sed 's/^/    /' || true
}

# wait_ready SLOT PATH TIMEOUT: until the slot answers 2xx on PATH; fails with its journal tail.
wait_ready() {
  local deadline=$(($(now_s) + $3))
  until slot_ready "$1" "$2"; do
    if [ "$(now_s)" -ge "$deadline" ] || systemctl is-failed -q "$BG_NS@$1"; then
      die "slot $1 ($(field "$(slot_dir "$1")/current.record" version)) did not become ready: GET $2 on $(cat "$(slot_dir "$1")/listen") gave no 2xx within $3 s (unit $(systemctl is-active "$BG_NS@$1" 2>/dev/null || true)).
Last journal lines of $BG_NS@$1:
$(journal_tail "$1")"
    fi
    sleep 0.5
  done
}

# slot_answer COLOR PATH: what the slot answers on PATH when asked as switch.sh's gate asks
# (slot_ready: straight to the slot, curl -f, 3 s): "HTTP 503", or "no answer (WHY)" with
# curl's own error. Returns curl's status: 0 when the gate would pass.
slot_answer() {
  local out rc=0
  out=$(slot_curl "$1" "$2" -fs -o /dev/null -w '%{http_code} %{errormsg}' --max-time 3 2>/dev/null) || rc=$?
  case "$out" in
    "") echo "no answer (no listen address in $(slot_dir "$1")/listen)" ;;
    "000 "*) echo "no answer (${out#000 }; curl exit $rc)" ;;
    *) echo "HTTP ${out%% *}" ;;
  esac
  return "$rc"
}

# health_gate COLOR PATH TIMEOUT: the readiness gate of a switch to COLOR, asked until it
# passes or TIMEOUT s have gone by. On failure prints the last answer (slot_answer), returns 1.
health_gate() {
  local deadline=$(($(now_s) + $3)) answer
  until answer=$(slot_answer "$1" "$2"); do
    if [ "$(now_s)" -ge "$deadline" ]; then
      printf '%s\n' "$answer"
      return 1
    fi
    sleep 0.5
  done
}
