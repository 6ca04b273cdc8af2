#!/usr/bin/env bash
# First command on a new host: waits for cloud-init and the package manager,
# and checks the CPU architecture matches the artifacts we will send.
# Sent on stdin, before the host tools exist.
# Inputs (components/host/tools.ts):
#   EXPECTED_ARCH  required  amd64 or arm64 (bluegreen:hostArch)
set -euo pipefail
: "${EXPECTED_ARCH:?EXPECTED_ARCH is required}"

# A line every BG_PROGRESS_SECONDS (10; tests shorten it) while it waits, so a long first boot
# shows what it waits for instead of silence.
poll=${BG_POLL_SECONDS:-2} every=${BG_PROGRESS_SECONDS:-10}
started=$SECONDS said=$SECONDS
progress() {
  if [ $((SECONDS - said)) -ge "$every" ]; then
    echo "waiting for $1: $((SECONDS - started)) s so far ($2)" >&2
    said=$SECONDS
  fi
}

if command -v cloud-init >/dev/null 2>&1; then
  # Until cloud-init is done ("done", or "error"/"degraded": anything is better than racing it).
  # Bounded: a stuck cloud-init must not hold the step forever (the provider never kills it).
  while [ $((SECONDS - started)) -lt 900 ]; do
    state=$(cloud-init status 2>/dev/null | sed -n 's/^status: *//p' || true)
    case "$state" in running | "not started" | "not run" | "") ;; *) break ;; esac
    progress cloud-init "status: ${state:-unknown}"
    sleep "$poll"
  done
fi
started=$SECONDS said=$SECONDS
for _ in $(seq 1 120); do
  if ! fuser /var/lib/dpkg/lock-frontend /var/lib/apt/lists/lock >/dev/null 2>&1; then break; fi
  progress "the package manager" "another apt or dpkg holds its lock"
  sleep "$poll"
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
