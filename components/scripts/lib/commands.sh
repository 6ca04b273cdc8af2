# shellcheck shell=bash
# Commands with a deadline, and commands installed on demand with apt.
# Sourced by lib.sh (after layout.sh and the router file), never run.

# with_deadline SECONDS WHAT COMMAND...: runs COMMAND, killed after SECONDS with a message that names WHAT.
with_deadline() {
  local s=$1 what=$2 rc=0
  shift 2
  timeout --kill-after=10 "$s" "$@" || rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then die "$what did not finish within $s s and was stopped"; fi
  return "$rc"
}

# ensure_commands COMMAND=PACKAGE...: installs with apt the packages whose command is missing.
ensure_commands() {
  local pair missing=()
  for pair in "$@"; do command -v "${pair%%=*}" >/dev/null 2>&1 || missing+=("${pair#*=}"); done
  [ ${#missing[@]} -gt 0 ] || return 0
  with_deadline 900 "apt-get update" apt-get -o DPkg::Lock::Timeout=300 update -q
  with_deadline 900 "apt-get install ${missing[*]}" \
    apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}"
}
