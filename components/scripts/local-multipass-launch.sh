#!/usr/bin/env bash
# Runs where `pulumi up` runs: launches (or reuses) a multipass VM and prints
# `multipass info --format json` for the program to read the IP from.
# Input: NAME, CPUS, MEMORY, DISK, IMAGE, CLOUD_INIT.
set -euo pipefail
: "${NAME:?}" "${CPUS:?}" "${MEMORY:?}" "${DISK:?}" "${IMAGE:?}" "${CLOUD_INIT:?}"
command -v multipass >/dev/null 2>&1 || {
  echo "bluegreen: error: multipass is not installed here (https://multipass.run), or use hostKind hetzner or ssh" >&2
  exit 1
}
if ! multipass info "$NAME" >/dev/null 2>&1; then
  init=$(mktemp)
  trap 'rm -f "$init"' EXIT
  printf '%s\n' "$CLOUD_INIT" >"$init"
  multipass launch --name "$NAME" --cpus "$CPUS" --memory "$MEMORY" --disk "$DISK" --cloud-init "$init" "$IMAGE" >&2
fi
multipass info "$NAME" --format json
