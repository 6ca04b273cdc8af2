#!/usr/bin/env bash
# Runs where `pulumi up` runs: launches the multipass VM, or checks that the
# existing one has the CPUs, memory and disk the stack asks for, then prints
# `multipass info --format json` for the program to read the IP from, and on a last
# line the VM's SSH host key, read inside it over multipass's own channel (not SSH),
# which every host step then pins.
# Inputs (components/host/tools.ts):
#   NAME        required  the VM's name (bluegreen:multipassName)
#   CPUS        required  bluegreen:multipassCpus
#   MEMORY      required  bluegreen:multipassMemory (1G, 512M)
#   DISK        required  bluegreen:multipassDisk
#   IMAGE       required  the image multipass launches
#   CLOUD_INIT  required  the cloud-init user data
#
# This script itself arrives on stdin (bash -s), so every multipass call except
# the launch reads /dev/null: a command that read stdin would eat the script.
set -euo pipefail
: "${NAME:?}" "${CPUS:?}" "${MEMORY:?}" "${DISK:?}" "${IMAGE:?}" "${CLOUD_INIT:?}"
command -v multipass >/dev/null 2>&1 || {
  echo "bluegreen: error: multipass is not installed here (https://multipass.run), or use hostKind hetzner or ssh" >&2
  exit 1
}

# A size as multipass prints it (MemorySize::human_readable: one decimal, binary units): 1G -> 1.0GiB.
human_size() {
  awk -v s="$1" 'BEGIN {
    n = substr(s, 1, length(s) - 1); u = substr(s, length(s))
    b = n * (u == "G" ? 1073741824 : u == "M" ? 1048576 : 1024)
    if (b >= 1073741824) printf "%.1fGiB\n", b / 1073741824
    else if (b >= 1048576) printf "%.1fMiB\n", b / 1048576
    else printf "%.1fKiB\n", b / 1024
  }'
}

# Bytes of a size multipass printed (1.5GiB, 512.0MiB, 100B), for comparing disks.
size_bytes() {
  awk -v s="$1" 'BEGIN {
    u = s; sub(/^[0-9.]+/, "", u); n = substr(s, 1, length(s) - length(u))
    printf "%.0f\n", n * (u == "GiB" ? 1073741824 : u == "MiB" ? 1048576 : u == "KiB" ? 1024 : 1)
  }'
}

# A setting of the VM as multipass recorded it at launch or `multipass set` (needs multipass 1.10+).
vm_setting() {
  multipass get "local.$NAME.$1" </dev/null || {
    echo "bluegreen: error: cannot read local.$NAME.$1 from multipass (needs multipass 1.10 or newer) to compare it with the stack config" >&2
    exit 1
  }
}

if ! multipass info "$NAME" </dev/null >/dev/null 2>&1; then
  # Snap-confined multipass on Linux cannot read files under the host's /tmp,
  # so cloud-init goes on stdin (`--cloud-init -`), never through a temp file.
  printf '%s\n' "$CLOUD_INIT" |
    multipass launch --name "$NAME" --cpus "$CPUS" --memory "$MEMORY" --disk "$DISK" --cloud-init - "$IMAGE" >&2
else
  # The VM exists: launch settings cannot apply by themselves. Say what differs and how to change it.
  problems=()
  settable=()
  have=$(vm_setting cpus)
  if [[ $have != "$CPUS" ]]; then
    problems+=("bluegreen:multipassCpus is $CPUS, the VM has $have")
    settable+=("multipass set local.$NAME.cpus=$CPUS")
  fi
  have=$(vm_setting memory)
  want=$(human_size "$MEMORY")
  if [[ $have != "$want" ]]; then
    problems+=("bluegreen:multipassMemory is $MEMORY ($want), the VM has $have")
    settable+=("multipass set local.$NAME.memory=$MEMORY")
  fi
  have=$(vm_setting disk)
  want=$(human_size "$DISK")
  shrink=
  if [[ $have != "$want" ]]; then
    if (($(size_bytes "$want") < $(size_bytes "$have"))); then
      problems+=("bluegreen:multipassDisk is $DISK ($want), the VM has $have, and multipass can only grow a disk")
      shrink=1
    else
      problems+=("bluegreen:multipassDisk is $DISK ($want), the VM has $have")
      settable+=("multipass set local.$NAME.disk=$DISK")
    fi
  fi
  if ((${#problems[@]})); then
    {
      echo "bluegreen: error: multipass VM $NAME does not match the stack config, and launch settings do not change a running VM:"
      printf '  - %s\n' "${problems[@]}"
      if ((${#settable[@]})); then
        echo "Resize the VM while it is stopped, then run pulumi up again:"
        line="multipass stop $NAME"
        for s in "${settable[@]}"; do line+=" && $s"; done
        echo "  $line && multipass start $NAME"
      fi
      if [[ -n $shrink ]]; then
        echo "A smaller disk needs a new VM: change bluegreen:multipassName (the next pulumi up purges VM $NAME and everything on it)."
      fi
      echo "Or set the keys back to what the VM has."
    } >&2
    exit 1
  fi
fi
info=$(multipass info "$NAME" --format json </dev/null)
hostkey=$(multipass exec "$NAME" -- cat /etc/ssh/ssh_host_ed25519_key.pub </dev/null | awk '{print $1, $2}') || hostkey=
if [[ $hostkey != "ssh-ed25519 "* ]]; then
  echo "bluegreen: error: cannot read the SSH host key of multipass VM $NAME (multipass exec $NAME -- cat /etc/ssh/ssh_host_ed25519_key.pub); if it is stopped, multipass start $NAME, then pulumi up again" >&2
  exit 1
fi
printf '%s\n%s\n' "$info" "$hostkey"
