#!/usr/bin/env bash
# Delivers the queued notifications (lib/events.sh queues them), started by the app's notify
# .path unit whenever the queue is not empty, so no step ever waits for a target. Each event goes
# to every configured target: a JSON webhook, Slack, Discord, ntfy (curl, its URL read from a
# 0600 config file with -K, never argv) and mail (the host's sendmail). A target that fails is
# tried again, BG_NOTIFY_TRIES times in all (5), after BG_NOTIFY_BACKOFF s (5 30 120 300), each
# try bounded (10 s); then it is given up on and the event kept in failed/. Every delivery,
# ok or not, is an audit line. Runs until the queue is empty; one runs at a time.
# Inputs: none (notify.conf says everything).
set -euo pipefail
# lib.sh is beside this file: a symlink to it (bluegreen-status) is resolved; no program runs otherwise.
BG_SELF=$0 && { [[ $0 == */* ]] || BG_SELF=./$0; } && { [ ! -L "$0" ] || BG_SELF=$(readlink -f "$0"); }
# shellcheck source=/dev/null
. "${BG_SELF%/*}/lib.sh"
[ -f "$BG_NOTIFY_CONF" ] || exit 0
install -d -m 0700 "$BG_NOTIFY_DIR/failed"
exec {drainfd}>"$BG_NOTIFY_DIR/drain.lock"
flock -n "$drainfd" || exit 0
tries=${BG_NOTIFY_TRIES:-5}
read -r -a backoff <<<"${BG_NOTIFY_BACKOFF:-5 30 120 300}"
host=$(uname -n)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# fields_json FIELDS: an audit line's k=v words as a JSON object.
fields_json() {
  local w sep="" out="{"
  for w in $1; do
    [[ $w == *=* ]] || continue
    out+="$sep$(json_str "${w%%=*}"): $(json_str "${w#*=}")"
    sep=", "
  done
  printf '%s}' "$out"
}

# deliver KIND FILE: one try of one event to one target; prints why it failed.
deliver() {
  local kind=$1 f=$2 event result message title code rc=0 conf="$BG_NOTIFY_CONF_DIR/$1.curl"
  event=$(field "$f" event) result=$(field "$f" result) message=$(field "$f" message)
  title="[bluegreen] $BG_APP on $host: $event ($result)"
  if [ "$kind" = email ]; then
    command -v sendmail >/dev/null 2>&1 || { echo "the host has no sendmail (install postfix or msmtp-mta)"; return 2; }
    {
      printf 'To: %s\nSubject: %s\nContent-Type: text/plain; charset=utf-8\nAuto-Submitted: auto-generated\n\n' \
        "$(field "$BG_NOTIFY_CONF" email | sed 's/ /, /g')" "$title"
      printf '%s\n\nat: %s\nfields: %s\n' "$message" "$(field "$f" at)" "$(field "$f" fields)"
    } | timeout 30 sendmail -t -oi 2>&1 || { echo "sendmail exited with $?"; return 1; }
    return 0
  fi
  [ -f "$conf" ] || { echo "no $conf"; return 2; }
  local headers=(-H "Content-Type: application/json")
  case "$kind" in
    webhook)
      printf '{"event": %s, "result": %s, "app": %s, "host": %s, "at": %s, "message": %s, "fields": %s}\n' \
        "$(json_str "$event")" "$(json_str "$result")" "$(json_str "$BG_APP")" "$(json_str "$host")" \
        "$(json_str "$(field "$f" at)")" "$(json_str "$message")" "$(fields_json "$(field "$f" fields)")" >"$work/body" ;;
    slack) printf '{"text": %s}\n' "$(json_str "*$title*"$'\n'"$message")" >"$work/body" ;;
    discord) printf '{"content": %s}\n' "$(json_str "$(printf '%s' "**$title**"$'\n'"$message" | cut -c1-1900)")" >"$work/body" ;;
    ntfy)
      printf '%s\n' "$message" >"$work/body"
      headers=(-H "Title: $title" -H "Tags: bluegreen,$event")
      case "$result" in ok) ;; *) headers+=(-H "Priority: high") ;; esac
      ;;
  esac
  code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 --connect-timeout 5 -K "$conf" "${headers[@]}" \
    --data-binary @"$work/body" 2>"$work/err") || rc=$?
  if [ "$rc" -ne 0 ] || [[ $code != 2?? ]]; then
    echo "HTTP ${code:-none}, curl exit $rc: $(head -c 200 "$work/err" | tr '\n' ' ')"
    return 1
  fi
}

# One pass over the queue: each event due now is tried on its pending targets. Prints the
# seconds until the next event is due (0: the queue is empty).
pass() {
  local f id now next wait=0 pending still lost t why n rc
  now=$(now_s)
  for f in "$BG_NOTIFY_DIR"/queue/*; do
    [ -f "$f" ] || continue
    id=${f##*/}
    next=$(field "$f" next)
    if [ "${next:-0}" -gt "$now" ]; then
      [ "$wait" -ne 0 ] && [ "$wait" -le $((next - now)) ] || wait=$((next - now))
      continue
    fi
    pending=$(field "$f" pending)
    [ -n "$pending" ] || pending=$(field "$BG_NOTIFY_CONF" targets)
    n=$(($(field "$f" attempts) + 1))
    still="" lost=""
    for t in $pending; do
      rc=0
      why=$(deliver "$t" "$f") || rc=$?
      if [ "$rc" -eq 0 ]; then
        audit notify "event=$(field "$f" event) target=$t try=$n id=$id" ok
      elif [ "$rc" -eq 2 ] || [ "$n" -ge "$tries" ]; then
        audit notify "event=$(field "$f" event) target=$t try=$n id=$id why=$(printf '%s' "$why" | tr -s ' ' '_')" gave-up
        echo "notification $id ($(field "$f" event)) to $t given up after $n tries: $why" >&2
        lost=yes
      else
        audit notify "event=$(field "$f" event) target=$t try=$n id=$id why=$(printf '%s' "$why" | tr -s ' ' '_')" failed
        still+=" $t"
      fi
    done
    if [ -z "$still" ]; then
      if [ -n "$lost" ]; then mv -f "$f" "$BG_NOTIFY_DIR/failed/$id"; else rm -f "$f"; fi
      continue
    fi
    next=$(($(now_s) + ${backoff[$((n - 1))]:-${backoff[-1]}}))
    { grep -v -e '^attempts=' -e '^next=' -e '^pending=' "$f"; printf 'attempts=%s\nnext=%s\npending=%s\n' "$n" "$next" "${still# }"; } >"$f.new" &&
      mv -f "$f.new" "$f"
    [ "$wait" -ne 0 ] && [ "$wait" -le $((next - $(now_s))) ] || wait=$((next - $(now_s)))
  done
  # Keep the last 100 given-up events.
  find "$BG_NOTIFY_DIR/failed" -type f -printf '%f\n' | sort | head -n -100 | sed "s|^|$BG_NOTIFY_DIR/failed/|" | xargs -r rm -f
  echo "$wait"
}

while :; do
  wait=$(pass)
  compgen -G "$BG_NOTIFY_DIR/queue/*" >/dev/null || exit 0
  [ "$wait" -gt 0 ] || wait=1
  sleep "$wait"
done
