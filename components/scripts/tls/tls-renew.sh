#!/usr/bin/env bash
# Issues or renews the site's certificate with lego, then installs it with one rename
# (no router reload: tls_install). Run by bluegreen-tls-renew.timer twice a day and by the tls step.
# Inputs: none (the settings are in acme.conf, below).
# Arguments: [renew|issue|force]
#   renew (the timer): only when the certificate expires within 30 days;
#   issue: a new certificate now (first issue, or the domains or directory changed);
#   force: renew now even if not due.
# Settings: $BG_TLS_CONF_DIR/acme.conf (written by tls-config.sh); DNS provider
# credentials, if any, in dns.env (0600), read into lego's environment, never argv.
set -euo pipefail
# lib.sh is beside this file: a symlink to it (bluegreen-status) is resolved; no program runs otherwise.
BG_SELF=$0 && { [[ $0 == */* ]] || BG_SELF=./$0; } && { [ ! -L "$0" ] || BG_SELF=$(readlink -f "$0"); }
# shellcheck source=/dev/null
. "${BG_SELF%/*}/lib.sh"
# lego writes HTTP-01 tokens into nginx's webroot with the process umask; nginx's workers must
# read them (a caller's umask 077 made them 404s). lego keeps its own files 0600/0700.
umask 022
action=${1:-renew}
case "$action" in renew | issue | force) ;; *) die "usage: tls-renew.sh [renew|issue|force]" ;; esac
conf="$BG_TLS_CONF_DIR/acme.conf"
[ -f "$conf" ] || die "tls is not acme on this host ($conf is missing)"
# shellcheck source=/dev/null
. "$conf"
: "${ACME_EMAIL:?}" "${ACME_DIRECTORY:?}" "${ACME_CHALLENGE:?}" "${ACME_DOMAINS:?}"
# Its own lock: a renewal never waits for, or blocks, a deploy or a switch. tls-config.sh
# holds it already when it calls this (BG_TLS_LOCKED), so the two never interleave.
if [ -z "${BG_TLS_LOCKED:-}" ]; then
  exec 8>"$BG_STATE_DIR/tls.lock"
  flock -w 600 8 || die "another certificate renewal has held $BG_STATE_DIR/tls.lock for over 600 s"
fi

secrets=()
if [ -f "$BG_TLS_CONF_DIR/dns.env" ]; then
  set -a
  # shellcheck source=/dev/null
  . "$BG_TLS_CONF_DIR/dns.env"
  set +a
  while IFS= read -r name; do
    [ -z "${!name:-}" ] || secrets+=("${!name}")
  done < <(sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' "$BG_TLS_CONF_DIR/dns.env")
fi
# scrub TEXT: TEXT with every DNS credential value replaced (some lego providers print
# their request URL, token included, in errors).
scrub() {
  local text=$1 v
  for v in "${secrets[@]}"; do text=${text//"$v"/[secret]}; done
  printf '%s' "$text"
}
if [ -f "$BG_TLS_CONF_DIR/ca.pem" ]; then export LEGO_CA_CERTIFICATES="$BG_TLS_CONF_DIR/ca.pem"; fi

read -r -a domains <<<"$ACME_DOMAINS"
args=(--accept-tos --email "$ACME_EMAIL" --server "$ACME_DIRECTORY" --path "$BG_ACME_DIR" --key-type ec256)
for d in "${domains[@]}"; do args+=(--domains "$d"); done
if [ "$ACME_CHALLENGE" = http-01 ]; then
  # The router's way: nginx serves lego's webroot; HAProxy routes to lego's own server.
  http_flags=$(router_acme_http_args) || die "HTTP-01 through $(router_name) is not set up on this host"
  read -r -a http_args <<<"$http_flags"
  args+=("${http_args[@]}")
else
  args+=(--dns "${ACME_DNS_PROVIDER:?}")
  read -r -a resolvers <<<"${ACME_DNS_RESOLVERS:-}"
  for r in "${resolvers[@]}"; do args+=(--dns.resolvers "$r"); done
  if [ "${ACME_DNS_DISABLE_CP:-}" = 1 ]; then args+=(--dns.disable-cp); fi
fi
# Renewals keep the key: nginx opens the live file twice per handshake (certificate, then
# key), so a renewal with a new key could pair one certificate with the other key for a
# handshake that straddles the rename. A new key comes with `issue` (new names or directory).
# --no-random-sleep: the timer already waits a random time (RandomizedDelaySec).
case "$action" in
  issue) args+=(run) ;;
  renew) args+=(renew --days 30 --reuse-key --no-random-sleep) ;;
  force) args+=(renew --days 36500 --reuse-key --no-random-sleep) ;;
esac

# lego names its files after the first domain, "*" as "_".
base="$BG_ACME_DIR/certificates/${domains[0]/\*/_}"
before=$(sha256sum "$base.crt" 2>/dev/null || true)
install -d -m 0700 "$BG_ACME_DIR"
install -d -m 0755 "$(dirname "$BG_AUDIT_LOG")"
log_file="$(dirname "$BG_AUDIT_LOG")/tls.log"
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
rc=0
run_log=$(mktemp)
trap 'rm -f "$run_log"' EXIT
timeout --kill-after=10 600 lego "${args[@]}" >"$run_log" 2>&1 || rc=$?
# The log keeps lego's words without the credentials, root only.
(umask 077 && { printf '\n== %s lego %s for %s (exit %s)\n' "$started" "$action" "$ACME_DOMAINS" "$rc"; scrub "$(cat "$run_log")"; echo; } >>"$log_file")
chmod 0600 "$log_file"
if [ "$rc" -ne 0 ]; then
  reason=$(scrub "$(grep -v '^$' "$run_log" | tail -n 1 | cut -c1-300)")
  [ "$rc" -ne 124 ] || reason="lego did not finish within 600 s"
  tls_status last_attempt "$started" last_result failed last_error "$reason"
  audit "tls-$action" "domains=${ACME_DOMAINS// /,}" failed
  die "certificate $action for $ACME_DOMAINS failed; the certificate served before stays in place. lego said:
$(scrub "$(tail -n 15 "$run_log")" | sed 's/^/  /')"
fi
after=$(sha256sum "$base.crt" 2>/dev/null || true)
# Not due: lego kept its certificate and it is the one installed. A certificate lego got
# but the router did not take (tls_install put the old one back) is installed now.
if [ "$before" = "$after" ] && [ -e "$BG_TLS_DIR/live" ] &&
  [ "$(cert_field "$base.crt" serial)" = "$(cert_field "$BG_TLS_PEM" serial 2>/dev/null || true)" ]; then
  tls_status last_attempt "$started" last_result not-due last_error ""
  echo "certificate for $ACME_DOMAINS not due for renewal (expires $(tls_field not_after))"
  exit 0
fi
tls_install "$base.crt" "$base.key" "acme $ACME_DIRECTORY"
tls_status last_attempt "$started" last_result ok last_error "" directory "$ACME_DIRECTORY" domains "$ACME_DOMAINS"
audit "tls-$action" "domains=${ACME_DOMAINS// /,} serial=$(tls_field serial)" ok
echo "certificate for $ACME_DOMAINS installed: serial $(tls_field serial), expires $(tls_field not_after); $TLS_INSTALL_NOTE"
