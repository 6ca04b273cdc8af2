# shellcheck shell=bash
# Hooks: preSwitch and postSwitch, run as the slot, their output scrubbed of secrets.
# Sourced by lib.sh (after layout.sh and the router file), never run.

# scrub_secrets ENV_FILE NAMES: copies stdin to stdout with the values of the env file's
# variables NAMES (space-separated) replaced by [secret NAME]. The env file is render.ts's
# renderSlotEnv: NAME="value" with \\ and \" escaped.
scrub_secrets() {
  awk -v names=" $2 " '
    FNR == NR {
      eq = index($0, "=")
      if (eq < 2) next
      name = substr($0, 1, eq - 1)
      if (index(names, " " name " ") == 0) next
      v = substr($0, eq + 2, length($0) - eq - 2)
      out = ""
      for (i = 1; i <= length(v); i++) {
        ch = substr(v, i, 1)
        if (ch == "\\" && i < length(v)) { i++; ch = substr(v, i, 1) }
        out = out ch
      }
      if (out != "") { n++; val[n] = out; label[n] = "[secret " name "]" }
      next
    }
    FNR == 1 {
      # Longest first: a value that contains another must go whole.
      for (i = 2; i <= n; i++)
        for (k = i; k > 1 && length(val[k]) > length(val[k - 1]); k--) {
          t = val[k]; val[k] = val[k - 1]; val[k - 1] = t
          t = label[k]; label[k] = label[k - 1]; label[k - 1] = t
        }
    }
    {
      line = $0
      for (k = 1; k <= n; k++) {
        res = ""
        while ((p = index(line, val[k])) > 0) {
          res = res substr(line, 1, p - 1) label[k]
          line = substr(line, p + length(val[k]))
        }
        line = res line
      }
      print line
    }' "$1" -
}

# run_hook NAME SLOT TEXT TIMEOUT SECRET_NAMES: runs TEXT with `sh -e` as SLOT runs: its user
# and group, env file, data directory and sandbox, all read from the slot's installed unit,
# from the slot's release directory, as a transient oneshot unit. The hook's unit gets no
# ExecStartPre and no ReadWritePaths of the slot's socket directory, so it never touches that.
# Not `systemd-run --wait --pipe`: those need the D-Bus system bus, which a minimal host
# lacks; a oneshot start job blocks until the command ends over systemd's private socket.
# The unit's output goes to a FIFO (opened by systemd as root, before the sandbox applies),
# read by a reader that keeps only its last HOOK_OUTPUT_CAP bytes, so a hook that prints
# without end cannot fill the disk before hookTimeout stops it.
# Prints the output (secret values scrubbed) and appends it to the audit log; returns the
# hook's exit status and never exits itself. HOOK_OUTPUT holds the scrubbed output.
HOOK_OUTPUT=""
HOOK_OUTPUT_CAP=$((1024 * 1024))
run_hook() {
  local name=$1 slot=$2 text=$3 timeout=$4 secrets=$5 unitfile file out props=() line rc=0 version unit stamp state
  local fifo reader hold rd notes
  unitfile="$BG_UNIT_DIR/$BG_NS@$slot.service"
  unit="$BG_NS-$name-$slot"
  version=$(recorded version "$slot")
  HOOK_OUTPUT=""
  if [ ! -f "$unitfile" ]; then
    HOOK_OUTPUT="slot $slot has no unit ($unitfile), so $name cannot run as it"
    return 1
  fi
  # A switch killed while its hook ran leaves the hook running: never stop it halfway.
  state=$(systemctl show -p ActiveState --value "$unit.service" 2>/dev/null || true)
  case "$state" in activating | active | deactivating | reloading)
    HOOK_OUTPUT="$name from an earlier, interrupted run is still running ($unit.service, $state); wait for it to end (journalctl -fu $unit), then run pulumi up again"
    return 75
    ;;
  esac
  while IFS= read -r line; do
    case "$line" in
      # The slot's socket directory: the hook never writes there.
      "ReadWritePaths=-$BG_RUN_DIR/"*) ;;
      User=* | Group=* | EnvironmentFile=* | UMask=* | ReadWritePaths=* | NoNewPrivileges=* | \
        Protect* | Private* | Restrict* | LockPersonality=* | CapabilityBoundingSet=* | SystemCallArchitectures=*)
        props+=(-p "$line")
        ;;
    esac
  done < <(sed -n '/^\[Service\]/,/^\[/p' "$unitfile")
  # The script is the app user's to read; the output (it may hold secrets until scrubbed)
  # goes to the root-only env directory.
  install -d -m 0755 "$BG_STATE_DIR/hooks"
  file="$BG_STATE_DIR/hooks/$name.sh"
  out="$BG_ENV_DIR/hook-$name.out"
  printf '%s\n' "$text" >"$file.new"
  chmod 0644 "$file.new"
  mv -f "$file.new" "$file"
  systemctl reset-failed "$unit.service" >/dev/null 2>&1 || true
  fifo="$out.fifo"
  rm -f "$fifo" "$out"
  mkfifo -m 0600 "$fifo"
  # $hold keeps the pipe open for writing (opening a FIFO read-write never blocks on Linux),
  # so the read end opens at once, here, before anything can write, and the reader sees the end
  # only after the hook and this shell let go of it, even when the hook never ran. systemd
  # opens StandardOutput=file: with open(O_WRONLY). The reader does not keep take_lock's fd 9:
  # if this shell is killed, the next run gets the "still running" answer, not a held lock.
  exec {hold}<>"$fifo"
  exec {rd}<"$fifo"
  tail -c $((HOOK_OUTPUT_CAP + 1)) <&"$rd" >"$out" {rd}<&- {hold}>&- 9>&- &
  reader=$!
  exec {rd}<&-
  timeout --kill-after=10 $((timeout + 30)) systemd-run --quiet --unit="$unit" -p Type=oneshot \
    -p TimeoutStartSec="$timeout" -p TimeoutStopSec=10 -p StandardOutput="file:$fifo" -p StandardError=inherit \
    "${props[@]}" -p WorkingDirectory="$BG_STATE_DIR/slots/$slot/current" --setenv=BLUEGREEN_HOOK="$name" \
    -- /bin/sh -e "$file" </dev/null >/dev/null 2>"$out.run" {hold}>&- || rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then systemctl stop "$unit.service" >/dev/null 2>&1 || true; fi
  exec {hold}>&-
  # The unit has ended, so its processes have closed the pipe; the bound is for a writer that
  # escaped the unit. Killed, the reader writes nothing, and a note says so.
  for _ in $(seq 1 300); do
    kill -0 "$reader" 2>/dev/null || break
    sleep 0.1
  done
  kill "$reader" 2>/dev/null || true
  notes=()
  wait "$reader" 2>/dev/null || notes+=("the output of $name was lost: something outside its unit kept the pipe open")
  rm -f "$fifo"
  # Only whole lines go to the scrubber, so it sees every secret value whole: a cut output loses
  # its first line, and a failed hook (perhaps killed mid-write) its unfinished last one.
  if [ "$(stat -c %s "$out" 2>/dev/null || echo 0)" -gt "$HOOK_OUTPUT_CAP" ]; then
    sed 1d "$out" >"$out.cut"
    mv -f "$out.cut" "$out"
    notes+=("$name printed over $((HOOK_OUTPUT_CAP / 1024)) KiB; only the end is kept")
  fi
  if [ -s "$out" ] && [ "$(tail -c 1 "$out" | wc -l)" -eq 0 ]; then
    if [ "$rc" -ne 0 ]; then
      sed -i '$d' "$out"
      notes+=("the unfinished last line of $name is not shown (it may have been cut inside a secret value)")
    else
      echo >>"$out"
    fi
  fi
  for line in "${notes[@]}"; do printf 'bluegreen: %s\n' "$line" >>"$out"; done
  if [ "$rc" -ne 0 ]; then
    case "$(systemctl show -p Result --value "$unit.service" 2>/dev/null || true)" in
      timeout) printf 'bluegreen: %s was stopped after %s s (bluegreen:hookTimeout)\n' "$name" "$timeout" >>"$out" ;;
    esac
    rc=$(systemctl show -p ExecMainStatus --value "$unit.service" 2>/dev/null || true)
    # No status: the unit never ran, and systemd-run's own message says why.
    if [ -z "$rc" ] || [ "$rc" = 0 ]; then
      rc=1
      cat "$out.run" >>"$out"
    fi
    systemctl reset-failed "$unit.service" >/dev/null 2>&1 || true
  fi
  rm -f "$out.run"
  HOOK_OUTPUT=$(scrub_secrets "$BG_ENV_DIR/$slot.env" "$secrets" <"$out" | tail -n 200) || true
  rm -f "$out"
  stamp=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  if [ -n "$HOOK_OUTPUT" ]; then
    printf '%s\n' "$HOOK_OUTPUT" | sed "s/^/$stamp hook-output name=$name slot=$slot | /" >>"$BG_AUDIT_LOG"
  fi
  audit hook "name=$name slot=$slot version=${version:-none} exit=$rc" "$([ "$rc" -eq 0 ] && echo ok || echo failed)"
  if [ -n "$HOOK_OUTPUT" ]; then printf '%s\n' "$HOOK_OUTPUT" | sed "s/^/  $name| /"; fi
  return "$rc"
}
