#!/usr/bin/env bash
# First command on a new host: waits for cloud-init and the package manager,
# and checks the CPU architecture matches the artifacts we will send.
# Sent on stdin, before the host tools exist. Input: EXPECTED_ARCH (amd64|arm64).
set -euo pipefail
: "${EXPECTED_ARCH:?EXPECTED_ARCH is required}"

if command -v cloud-init >/dev/null 2>&1; then
  # Exit code 2 means "done, with recoverable errors"; anything is better than racing it.
  # Bounded: a stuck cloud-init must not hold the step forever (the provider never kills it).
  timeout 900 cloud-init status --wait >/dev/null 2>&1 || true
fi
for _ in $(seq 1 120); do
  if ! fuser /var/lib/dpkg/lock-frontend /var/lib/apt/lists/lock >/dev/null 2>&1; then break; fi
  sleep 2
done

arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
case "$arch" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; esac
if [ "$arch" != "$EXPECTED_ARCH" ]; then
  echo "bluegreen: error: the host is $arch but bluegreen:hostArch is $EXPECTED_ARCH; set it with: pulumi config set hostArch $arch" >&2
  exit 1
fi
command -v systemctl >/dev/null || { echo "bluegreen: error: the host has no systemd" >&2; exit 1; }
# shellcheck source=/dev/null
. /etc/os-release
echo "host up: $PRETTY_NAME, $arch"
