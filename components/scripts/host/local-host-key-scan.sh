#!/usr/bin/env bash
# Runs where `pulumi up` runs, once per host: reads the host's SSH key, which every later
# step's connection then pins (components/host/hostKeys.ts). Prints the key line
# (`type base64`) on stdout; the stack's state keeps it.
# - PINNED set (a server the program gave its key): waits until the host shows exactly
#   that key; any other key, to the end of the wait, is refused.
# - PINNED empty: the first key the host shows is recorded (first use), and said on stderr
#   with its fingerprint, to check against the server's console.
# Inputs (components/host/tools.ts):
#   HOST          required  the host's address
#   PORT          required  its SSH port (bluegreen:sshPort)
#   WAIT_SECONDS  required  how long a new server may take to answer
#   PINNED        optional  the key the host must show
#
# This script itself arrives on stdin (bash -s): every command here reads /dev/null.
set -euo pipefail
: "${HOST:?}" "${PORT:?}" "${WAIT_SECONDS:?}"
pinned=$(printf '%s' "${PINNED:-}" | awk '{print $1, $2}' | sed 's/^ $//')
command -v ssh-keyscan >/dev/null 2>&1 || {
  echo "bluegreen: error: ssh-keyscan is not installed here: install OpenSSH's client (apt install openssh-client), or set bluegreen:sshHostKey" >&2
  exit 1
}

# The key's SHA256 fingerprint, as ssh-keygen -l prints it (its stdin is the key line).
fp() { printf '%s\n' "$1" | ssh-keygen -lf - | awk '{print $2}'; }

# The host's keys as `type base64` lines, ed25519 first; nothing when it does not answer.
scan() {
  local out type
  out=$(ssh-keyscan -T 5 -p "$PORT" -t ed25519,ecdsa,rsa "$HOST" 2>/dev/null </dev/null || true)
  for type in ssh-ed25519 ecdsa-sha2-nistp256 ecdsa-sha2-nistp384 ecdsa-sha2-nistp521 ssh-rsa; do
    printf '%s\n' "$out" | awk -v t="$type" '$2 == t {print $2, $3}'
  done
}

# Ask every 2 s; say how long it has waited every 10 s.
poll=2 every=10
started=$SECONDS said=$SECONDS seen=
while :; do
  keys=$(scan)
  if [ -n "$keys" ]; then
    seen=$(printf '%s\n' "$keys" | head -n 1)
    if [ -z "$pinned" ]; then
      echo "bluegreen: recorded the SSH host key of $HOST:$PORT on first use: ${seen%% *} $(fp "$seen"). Check it on the server's console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub); every later step refuses any other key." >&2
      printf '%s\n' "$seen"
      exit 0
    fi
    if printf '%s\n' "$keys" | grep -qxF "$pinned"; then
      printf '%s\n' "$pinned"
      exit 0
    fi
  fi
  if [ $((SECONDS - started)) -ge "$WAIT_SECONDS" ]; then break; fi
  if [ $((SECONDS - said)) -ge "$every" ]; then
    if [ -n "$seen" ]; then
      echo "waiting for $HOST:$PORT to show its key $(fp "$pinned"): $((SECONDS - started)) s so far (it shows $(fp "$seen"))" >&2
    else
      echo "waiting for SSH on $HOST:$PORT: $((SECONDS - started)) s so far (no answer yet)" >&2
    fi
    said=$SECONDS
  fi
  sleep "$poll"
done

if [ -n "$seen" ]; then
  echo "bluegreen: error: $HOST:$PORT shows the SSH host key ${seen%% *} $(fp "$seen"), not the key this stack gave it ($(fp "$pinned")); nothing was run on it. If you rebuilt the server yourself, check the key on its console and set it: pulumi config set bluegreen:sshHostKey '<that key line>'. Otherwise someone may be in between: do not go on." >&2
else
  echo "bluegreen: error: no SSH answer from $HOST:$PORT in $WAIT_SECONDS s (ssh-keyscan); check that the host is up and that bluegreen:sshPort is its SSH port" >&2
fi
exit 1
