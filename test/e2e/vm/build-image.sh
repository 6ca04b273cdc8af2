#!/usr/bin/env bash
# Builds the e2e test VM: Debian 12 with systemd, sshd, nginx and curl, a cloud
# kernel with virtio, a local apt repository (nodejs, sqlite3, haproxy, socat), and an SSH
# key for root. Output, in OUT:
#   vmlinuz, initrd, disk.img (ext4 root), id_ed25519(.pub), host_key.pub
#   rootfs/: the same tree disk.img is made from, for the container rig (test/e2e/container.ts),
#   so qemu and systemd-nspawn boot the same guest
# Needs root, debootstrap and Debian's package mirror. About 2 minutes.
# Usage: build-image.sh OUT
set -euo pipefail
out=$1
mirror=${BLUEGREEN_VM_MIRROR:-http://deb.debian.org/debian}
work=$(mktemp -d /tmp/bluegreen-vm-build.XXXXXX)
rootfs="$work/rootfs"
cleanup() {
  for m in proc sys dev; do umount -l "$rootfs/$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

debootstrap --variant=minbase \
  --include=systemd-sysv,openssh-server,iproute2,ifupdown,isc-dhcp-client,curl,ca-certificates,sudo,nginx,procps,openssl,lego,pebble,apt-utils \
  bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || { tail -30 "$work/debootstrap.log"; exit 1; }

mount -t proc proc "$rootfs/proc"
mount -t sysfs sys "$rootfs/sys"
mount --bind /dev "$rootfs/dev"
chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends linux-image-cloud-amd64 >"$work/kernel.log" 2>&1 ||
  { tail -30 "$work/kernel.log"; exit 1; }
# hostPackages needs apt to work in the VM, which has no network: a local repository inside
# the image holds nodejs, sqlite3, haproxy and socat (with what they depend on), and is the
# VM's only source.
# They are downloaded here, not installed: the e2e installs them through bluegreen.
chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --download-only --no-install-recommends \
  nodejs sqlite3 haproxy socat >"$work/repo.log" 2>&1 || { tail -30 "$work/repo.log"; exit 1; }
install -d "$rootfs/var/local/bluegreen-apt"
mv "$rootfs"/var/cache/apt/archives/*.deb "$rootfs/var/local/bluegreen-apt/"
chroot "$rootfs" sh -c 'cd /var/local/bluegreen-apt && apt-ftparchive packages . >Packages'
echo "deb [trusted=yes] file:/var/local/bluegreen-apt ./" >"$rootfs/etc/apt/sources.list"
chroot "$rootfs" apt-get update -q >"$work/repo.log" 2>&1 || { tail -30 "$work/repo.log"; exit 1; }
chroot "$rootfs" apt-get clean
for m in proc sys dev; do umount -l "$rootfs/$m"; done

cat >"$rootfs/etc/network/interfaces" <<'NET'
auto lo
iface lo inet loopback
auto eth0
iface eth0 inet dhcp
NET
echo "/dev/vda / ext4 defaults 0 1" >"$rootfs/etc/fstab"
echo bluegreen-e2e >"$rootfs/etc/hostname"
echo "127.0.1.1 bluegreen-e2e" >>"$rootfs/etc/hosts"

mkdir -p "$out"
rm -f "$out/id_ed25519" "$out/id_ed25519.pub"
ssh-keygen -q -t ed25519 -N "" -C bluegreen-e2e -f "$out/id_ed25519"
install -d -m 0700 "$rootfs/root/.ssh"
install -m 0600 "$out/id_ed25519.pub" "$rootfs/root/.ssh/authorized_keys"
# The host keys become the image's: generated once here, pinned by the tests.
chroot "$rootfs" ssh-keygen -A >/dev/null
chroot "$rootfs" systemctl enable ssh >/dev/null 2>&1
# No network inside the VM (restrict=on): don't wait for it at boot.
chroot "$rootfs" systemctl mask apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1 || true

cp "$rootfs"/boot/vmlinuz-* "$out/vmlinuz"
cp "$rootfs"/boot/initrd.img-* "$out/initrd"
cp "$rootfs/etc/ssh/ssh_host_ed25519_key.pub" "$out/host_key.pub"
rm -f "$out/disk.img"
truncate -s 2G "$out/disk.img"
mkfs.ext4 -q -d "$rootfs" "$out/disk.img"
rm -rf "$out/rootfs"
mv "$rootfs" "$out/rootfs"
echo "VM image ready in $out"
