# shellcheck shell=bash
# HTTP requests to the router's loopback listeners without running a program: bash's own
# /dev/tcp. A switch asks the router at least twice (the gate, the verify); curl is a fork
# and an exec of a program that loads some thirty libraries, about 13 ms each on a quiet
# 2-core VPS and several times that under load, CPU the router and the app need then.
# Sourced by lib.sh (after layout.sh and the router file), never run.

# http_get PORT PATH TIMEOUT [HEADER]: GET PATH on 127.0.0.1:PORT (HTTP/1.1, Connection:
# close), with HEADER ("Name: value") if given, the whole answer within TIMEOUT s (whole
# seconds). Sets HTTP_STATUS (the status code; empty without a whole status line) and
# HTTP_HEADERS (the response's header lines after the status line, each ending in \r\n).
# Returns 0 when a status line came, 1 otherwise (refused, timed out, not HTTP).
#
# bash's connect(2) to /dev/tcp has no timeout of its own: a listener whose accept queue is
# full (a router that stopped accepting) holds it until the kernel gives up on the SYN,
# about 2 minutes. A trapped SIGALRM interrupts it (EINTR, and the redirection fails), so
# the connect is guarded by a process substitution that sends one unless it reads a line
# within TIMEOUT s, from a pipe only this process writes to (made once per process): one
# fork and no exec. A connect that took less than the timeout writes the line, and the
# guard ends without a signal (no kill: its PID may have been reused once it is gone). Not
# a background job (`&`): with one, bash 5.2 loses track of later children now and then
# ("wait_for: No record of process"), as a watch's many command substitutions showed.
HTTP_STATUS="" HTTP_HEADERS="" HTTP_PIPE=""
http_get() {
  local port=$1 path=$2 timeout=$3 header=${4:+$4$'\r\n'} me=$BASHPID fd guard_fd start answer="" rc=0
  HTTP_STATUS="" HTTP_HEADERS=""
  # Set in this (sub)shell: a subshell does not keep its parent's traps.
  trap : ALRM
  if [ -z "$HTTP_PIPE" ]; then exec {HTTP_PIPE}<> <(:); fi
  start=${EPOCHREALTIME/[.,]/}
  exec {guard_fd}< <(
    trap - ALRM
    read -r -t "$timeout" -u "$HTTP_PIPE" || kill -ALRM "$me"
  )
  # In braces: a redirection of exec itself would silence the whole script's stderr.
  { exec {fd}<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || rc=1
  # Well inside the timeout (0.2 s to spare), the guard has not fired: end it.
  if [ $((${EPOCHREALTIME/[.,]/} - start)) -lt $((timeout * 1000000 - 200000)) ]; then echo >&"$HTTP_PIPE"; fi
  exec {guard_fd}<&-
  [ "$rc" -eq 0 ] || return 1
  # The answer ends when the router closes the connection (Connection: close). read -t keeps
  # what came before a timeout, so a slow body still leaves the status line and headers.
  # shellcheck disable=SC2261 # $fd is the socket, never 2
  if printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nUser-Agent: bluegreen\r\nConnection: close\r\n%s\r\n' \
    "$path" "$port" "$header" >&"$fd" 2>/dev/null; then
    IFS= read -r -d '' -t "$timeout" -u "$fd" answer || true
  fi
  exec {fd}>&-
  [[ $answer =~ ^HTTP/[0-9.]+\ ([0-9][0-9][0-9])[^$'\r\n']*$'\r\n' ]] || return 1
  # shellcheck disable=SC2034 # read by the callers
  HTTP_STATUS=${BASH_REMATCH[1]}
  answer=${answer%%$'\r\n\r\n'*}
  if [[ $answer == *$'\r\n'* ]]; then HTTP_HEADERS=${answer#*$'\r\n'}$'\r\n'; fi
}

# http_header VAR NAME: sets VAR to the value of the response header NAME (any case) of the
# last http_get; empty when the answer had none.
http_header() {
  local re=$'(^|\n)'"$2"$':[ \t]*([^\r\n]*)\r' value="" nocase=yes
  shopt -q nocasematch || nocase=no
  shopt -s nocasematch
  if [[ $HTTP_HEADERS =~ $re ]]; then value=${BASH_REMATCH[2]}; fi
  [ "$nocase" = yes ] || shopt -u nocasematch
  printf -v "$1" '%s' "$value"
}
