# shellcheck shell=bash
# Shared helpers for bluegreen's host scripts. Sourced, never run: every host tool sources
# this file, which brings layout.sh (generated: components/host/layout.ts), the router's
# file (router-nginx.sh or router-haproxy.sh: components/router/contract.ts) and the topic
# files beside it (components/scripts/lib/*.sh, installed flat in the same tools folder).
# The helpers a switch calls are bash builtins where they can be (no date, sed, head or
# dirname): under load every fork and exec competes with the router and the app for the
# CPU, and the switch is a few dozen of them (`npm run bench -- --peers` measures it).
# Sourcing a file is no fork.
BG_LIB_DIR=${BASH_SOURCE[0]%/*}
[ "$BG_LIB_DIR" != "${BASH_SOURCE[0]}" ] || BG_LIB_DIR=.
# shellcheck source=/dev/null
. "$BG_LIB_DIR/layout.sh"
# The router seam: router-nginx.sh or router-haproxy.sh (the same functions).
# shellcheck source=/dev/null
. "$BG_LIB_DIR/router-${BG_ROUTER:-nginx}.sh"

log() { printf 'bluegreen: %s\n' "$*" >&2; }
die() { printf 'bluegreen: error: %s\n' "$*" >&2; exit 1; }

# The topics (the order does not matter: each only defines functions and its own variables).
# shellcheck source=/dev/null
{
  . "$BG_LIB_DIR/state.sh"
  . "$BG_LIB_DIR/audit.sh"
  . "$BG_LIB_DIR/space.sh"
  . "$BG_LIB_DIR/locks.sh"
  . "$BG_LIB_DIR/commands.sh"
  . "$BG_LIB_DIR/sections.sh"
  . "$BG_LIB_DIR/http.sh"
  . "$BG_LIB_DIR/health.sh"
  . "$BG_LIB_DIR/slots.sh"
  . "$BG_LIB_DIR/release.sh"
  . "$BG_LIB_DIR/tls.sh"
  . "$BG_LIB_DIR/claims.sh"
  . "$BG_LIB_DIR/hooks.sh"
  . "$BG_LIB_DIR/events.sh"
  . "$BG_LIB_DIR/backups.sh"
}
