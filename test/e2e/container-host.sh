#!/usr/bin/env bash
# One e2e host as a systemd-nspawn container (test/e2e/container.ts starts it): the e2e
# image's rootfs (test/e2e/vm/build-image.sh) under an overlay whose writes go to a tmpfs,
# booted with systemd as PID 1 on its own veth pair, with its own address, SSH keys and name.
# Run it as `unshare --mount --propagation private bash container-host.sh ...`: the tmpfs and
# the overlay exist only in that mount namespace, so they go when its last process does and
# are never seen on the machine (nothing to unmount, whatever way the run ends).
# A reboot inside the container ends nspawn with 133; this script starts it again on the same
# overlay, so the host keeps its disk across the reboot, as a VM does.
# The container is stopped (its PID 1 killed, which ends its PID and network namespaces, so
# its veth goes too) when this script exits or is killed, or when OWNER_PID is gone.
# Inputs (arguments): WORK (this host's directory: keys/ and the files written below),
# ROOTFS (the image's tree, read only), NAME (machine name, <= 11 characters: the veth is
# ve-NAME), NET (1-254: the pair is 10.231.NET.1/30 here, 10.231.NET.2 in the container),
# OWNER_PID (the test process).
# Writes: WORK/leader (PID and start time of the container's PID 1), WORK/boots (how many
# boots have reached the point where the veth is up), WORK/console.log.
# Usage: container-host.sh WORK ROOTFS NAME NET OWNER_PID
set -euo pipefail
work=$1 rootfs=$2 name=$3 net=$4 owner=$5
die() {
  echo "container-host: error: $*" >&2
  exit 1
}
[ -d "$rootfs/etc" ] || die "$rootfs is not an image tree"
if ! [[ $net =~ ^[0-9]+$ ]] || [ "$net" -lt 1 ] || [ "$net" -gt 254 ]; then die "NET must be 1-254 (got $net)"; fi
[ "${#name}" -le 11 ] || die "NAME must be at most 11 characters (got $name): the veth is ve-NAME"

# The image stays untouched: every write goes to a tmpfs that lives as long as this namespace.
mkdir -p "$work/rw" "$work/root"
mount -t tmpfs -o mode=0755 bluegreen-e2e-rw "$work/rw"
mkdir "$work/rw/upper" "$work/rw/work"
mount -t overlay overlay -o "lowerdir=$rootfs,upperdir=$work/rw/upper,workdir=$work/rw/work" "$work/root"
root=$work/root

# This host's own identity: host keys, root's authorized key, name, and host0's address (the
# image's ifupdown file names the VM's eth0, which a container does not have).
install -m 0600 "$work"/keys/ssh_host_*_key "$root/etc/ssh/"
install -m 0644 "$work"/keys/ssh_host_*_key.pub "$root/etc/ssh/"
install -m 0600 "$work/keys/id_ed25519.pub" "$root/root/.ssh/authorized_keys"
echo "$name" >"$root/etc/hostname"
sed -i "s/bluegreen-e2e\$/$name/" "$root/etc/hosts"
cat >"$root/etc/network/interfaces" <<NET
auto lo
iface lo inet loopback
auto host0
iface host0 inet static
  address 10.231.$net.2/30
NET

leader() { cut -d' ' -f1 "$work/leader" 2>/dev/null || true; }
# "PID STARTTIME" of the child of nspawn (PID $1) in another PID namespace, if one is alive.
own_ns=$(readlink /proc/self/ns/pid)
container_of() {
  local c ns stat fields
  for c in $(pgrep -P "$1" || true); do
    ns=$(readlink "/proc/$c/ns/pid" 2>/dev/null) || continue
    if [ -z "$ns" ] || [ "$ns" = "$own_ns" ]; then continue; fi
    stat=$(cat "/proc/$c/stat" 2>/dev/null) || continue
    read -ra fields <<<"${stat##*) }"
    echo "$c ${fields[19]}"
    return
  done
}
stop() {
  local pid
  pid=$(leader)
  if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
}
trap stop EXIT
trap 'exit 143' TERM INT HUP

# The watchdog: a test process killed with SIGKILL runs no cleanup, and nspawn killed that way
# leaves its container running; so the container is stopped once its owner or this script is gone.
# A zombie counts as gone: its parent may not have reaped it yet.
running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}
self=$$
(
  trap '' TERM INT HUP
  while running "$owner" && running "$self"; do sleep 1; done
  pid=$(leader)
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
) &

boots=0
while :; do
  # The last boot's veth goes with its network namespace; a new one by the same name must wait.
  for _ in $(seq 1 50); do ip link show "ve-$name" >/dev/null 2>&1 || break; sleep 0.1; done
  systemd-nspawn -D "$root" --register=no --keep-unit --boot --network-veth -M "$name" \
    --console=read-only >>"$work/console.log" 2>&1 &
  nspawn=$!
  # The container's PID 1 is the child of nspawn in a PID namespace of its own. nspawn's
  # short-lived helper child is one too for a moment: a process that is gone by the time its
  # namespace or start time is read is not the one.
  tag=""
  for _ in $(seq 1 100); do
    if ip link show "ve-$name" >/dev/null 2>&1; then
      tag=$(container_of "$nspawn")
      sleep 0.1
      # Still there, the same process: the container, not a helper on its way out.
      [ -n "$tag" ] && [ "$(container_of "$nspawn")" = "$tag" ] && break
    fi
    sleep 0.1
  done
  [ -n "$tag" ] || die "systemd-nspawn started no container (see $work/console.log)"
  echo "$tag" >"$work/leader"
  ip addr add "10.231.$net.1/30" dev "ve-$name"
  ip link set "ve-$name" up
  boots=$((boots + 1))
  echo "$boots" >"$work/boots"
  rc=0
  wait "$nspawn" || rc=$?
  rm -f "$work/leader"
  echo "container-host: nspawn exited $rc" >>"$work/console.log"
  [ "$rc" -eq 133 ] || exit "$rc"
done
