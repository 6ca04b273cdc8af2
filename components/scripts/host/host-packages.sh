#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages the app needs (hostPackages), before any slot starts.
# Idempotent: only packages that are not installed (or not at a pinned NAME=VERSION) are
# installed. apt plans first (apt-get -s): if the plan would upgrade or remove a package
# already on the host (a newer libc a runtime wants, say), nothing is done and the step
# says which. needrestart is told not to restart services, so a running slot is never
# restarted by this step. The package lists are refreshed only when apt does not know a
# package yet. An unknown package fails with apt's message.
# Inputs (components/host/tools.ts):
#   PACKAGES  required  space-separated names, optionally NAME=VERSION; may be empty
set -euo pipefail
# lib.sh is beside this file: a symlink to it (bluegreen-status) is resolved; no program runs otherwise.
BG_SELF=$0 && { [[ $0 == */* ]] || BG_SELF=./$0; } && { [ ! -L "$0" ] || BG_SELF=$(readlink -f "$0"); }
# shellcheck source=/dev/null
. "${BG_SELF%/*}/lib.sh"
: "${PACKAGES?}"
read -r -a want <<<"$PACKAGES"
if [ ${#want[@]} -eq 0 ]; then
  echo "host packages: none requested"
  exit 0
fi

missing=()
for p in "${want[@]}"; do
  name=${p%%=*}
  have=$(dpkg-query -W -f='${Status}|${Version}' "$name" 2>/dev/null || true)
  case "$have" in
    "install ok installed|"*) [ "$p" = "$name" ] || [ "${have#*|}" = "${p#*=}" ] || missing+=("$p") ;;
    *) missing+=("$p") ;;
  esac
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "host packages: ${want[*]} already installed; nothing changed"
  exit 0
fi

# needrestart (Ubuntu) would otherwise restart services whose libraries apt replaced.
export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 NEEDRESTART_MODE=l
apt_opts=(-o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confold -y -q --no-install-recommends --no-remove)
plan_missing() { with_deadline 300 "apt-get -s install ${missing[*]}" apt-get -s install "${apt_opts[@]}" "${missing[@]}" 2>&1; }
install_missing() { with_deadline 1200 "apt-get install ${missing[*]}" apt-get install "${apt_opts[@]}" "${missing[@]}" 2>&1; }
apt_errors() { grep -E '^(E|W): ' <<<"$1" | head -n 10 || true; }

if ! out=$(plan_missing); then
  if ! grep -qE 'Unable to locate package|has no installation candidate|Version .* was not found|Couldn.t find any package' <<<"$out"; then
    die_audited packages "install=${missing[*]}" failed "apt-get could not install ${missing[*]}; nothing else was changed:
$(apt_errors "$out")"
  fi
  log "apt does not know ${missing[*]} yet; refreshing the package lists (apt-get update)"
  if ! up=$(with_deadline 600 "apt-get update" apt-get update -q -o DPkg::Lock::Timeout=300 2>&1); then
    die_audited packages "install=${missing[*]}" failed "apt-get update failed, so ${missing[*]} could not be installed:
$(apt_errors "$up")"
  fi
  if ! out=$(plan_missing); then
    die_audited packages "install=${missing[*]}" failed "apt-get could not install ${missing[*]} (bluegreen:hostPackages); nothing was changed:
$(apt_errors "$out")"
  fi
fi
# "Inst NAME [OLD] (NEW ...)" is an upgrade; "Remv NAME" a removal.
changes=$(grep -E '^(Inst [^ ]+ \[|Remv )' <<<"$out" | sed 's/^/  /' || true)
if [ -n "$changes" ]; then
  die_audited packages "install=${missing[*]}" refused "installing ${missing[*]} would change packages already on this host, which bluegreen does not do on a live host; nothing was changed:
$changes
Upgrade them yourself when it suits you (apt-get install --only-upgrade NAME), then run pulumi up again."
fi
if ! out=$(install_missing); then
  die_audited packages "install=${missing[*]}" failed "apt-get could not install ${missing[*]}; nothing else was changed:
$(apt_errors "$out")"
fi
audit packages "install=${missing[*]}" ok
versions=$(dpkg-query -W -f='${Package} ${Version}\n' "${missing[@]%%=*}" | paste -sd, - | sed 's/,/, /g')
echo "host packages: installed ${versions}"
