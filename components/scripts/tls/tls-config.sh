#!/usr/bin/env bash
# The tls step: makes the host serve HTTPS the way the stack says, without a reload (HAProxy:
# one, the first time an app has a certificate; router_tls_install).
# Inputs (components/host/tools.ts):
#   MODE          required         off, acme or files
#   DOMAINS       required         space-separated
# Stdin sections (components/host/shell.ts renderBundle; components/app/tls.ts):
#   acme          optional         acme.conf for tls-renew.sh (no secrets)
#   dnsEnv        optional secret  the DNS provider's credentials
#   ca            optional         a CA for a private ACME directory
#   certificate   optional         files: the certificate chain
#   key           optional secret  files: its private key
#   renewService  optional         acme: the renewal service unit
#   renewTimer    optional         acme: the renewal timer unit
# Nothing secret is printed. A failure leaves the certificate served before in place.
set -euo pipefail
# lib.sh is beside this file: a symlink to it (bluegreen-status) is resolved; no program runs otherwise.
BG_SELF=$0 && { [[ $0 == */* ]] || BG_SELF=./$0; } && { [ ! -L "$0" ] || BG_SELF=$(readlink -f "$0"); }
# shellcheck source=/dev/null
. "${BG_SELF%/*}/lib.sh"
: "${MODE:?}" "${DOMAINS?}"
umask 077
install -d -m 0700 "$BG_ENV_DIR"
work=$(mktemp -d "$BG_ENV_DIR/.tls.XXXXXX")
trap 'rm -rf "$work"' EXIT
read_sections "$work"

timer="$BG_TLS_RENEW_UNIT.timer"
# A renewal in flight (the timer's) finishes first, so it cannot install over what this
# step does; tls-renew.sh, called from here, knows the lock is held.
exec 8>"$BG_STATE_DIR/tls.lock"
flock -w 660 8 || die "a certificate renewal has held $BG_STATE_DIR/tls.lock for over 660 s"
export BG_TLS_LOCKED=1
stop_renewals() {
  if [ -f "$BG_UNIT_DIR/$timer" ]; then
    systemctl disable -q --now "$timer" 2>/dev/null || true
    systemctl stop "$BG_TLS_RENEW_UNIT.service" 2>/dev/null || true
    rm -f "$BG_UNIT_DIR/$timer" "$BG_UNIT_DIR/$BG_TLS_RENEW_UNIT.service"
    with_deadline 120 "systemctl daemon-reload" systemctl daemon-reload
  fi
}

case "$MODE" in
  off)
    stop_renewals
    rm -f "$BG_HTTPS_FLAG" "$BG_TLS_CONF_DIR/acme.conf" "$BG_TLS_CONF_DIR/dns.env" "$BG_TLS_CONF_DIR/ca.pem"
    router_sync
    tls_status mode off
    echo "tls: off; port 80 serves the app over plain HTTP"
    ;;
  files)
    stop_renewals
    rm -f "$BG_TLS_CONF_DIR/acme.conf" "$BG_TLS_CONF_DIR/dns.env" "$BG_TLS_CONF_DIR/ca.pem"
    if ! { [ -s "$work/certificate" ] && [ -s "$work/key" ]; }; then die "stdin must carry the certificate and key sections"; fi
    live="$BG_TLS_DIR/live/cert.pem"
    if [ -f "$live" ] && [ "$(tls_field source)" = files ] &&
      [ "$(cert_field "$live" serial)" = "$(cert_field "$work/certificate" serial)" ] && [ -f "$BG_HTTPS_FLAG" ]; then
      tls_status mode files
      echo "tls: files; certificate serial $(tls_field serial) already served, expires $(tls_field not_after)"
      exit 0
    fi
    tls_install "$work/certificate" "$work/key" files
    tls_status mode files
    audit tls-files "domains=${DOMAINS// /,} serial=$(tls_field serial)" ok
    echo "tls: files; certificate serial $(tls_field serial) installed, expires $(tls_field not_after); $TLS_INSTALL_NOTE"
    ;;
  acme)
    if ! { [ -s "$work/acme" ] && [ -s "$work/renewService" ] && [ -s "$work/renewTimer" ]; }; then
      die "stdin must carry the acme and renewal unit sections"
    fi
    if ! command -v lego >/dev/null 2>&1; then
      export DEBIAN_FRONTEND=noninteractive
      with_deadline 900 "apt-get install lego" apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends lego ||
        { with_deadline 900 "apt-get update" apt-get -o DPkg::Lock::Timeout=300 update -q &&
          with_deadline 900 "apt-get install lego" apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends lego; }
    fi
    install -d -m 0700 "$BG_TLS_CONF_DIR"
    install -m 0600 "$work/acme" "$BG_TLS_CONF_DIR/acme.conf"
    if [ -s "$work/dnsEnv" ]; then install -m 0600 "$work/dnsEnv" "$BG_TLS_CONF_DIR/dns.env"; else rm -f "$BG_TLS_CONF_DIR/dns.env"; fi
    if [ -s "$work/ca" ]; then install -m 0644 "$work/ca" "$BG_TLS_CONF_DIR/ca.pem"; else rm -f "$BG_TLS_CONF_DIR/ca.pem"; fi
    units_changed=no
    for u in renewService:service renewTimer:timer; do
      if ! cmp -s "$work/${u%%:*}" "$BG_UNIT_DIR/$BG_TLS_RENEW_UNIT.${u##*:}"; then
        install -m 0644 "$work/${u%%:*}" "$BG_UNIT_DIR/$BG_TLS_RENEW_UNIT.${u##*:}"
        units_changed=yes
      fi
    done
    if [ "$units_changed" = yes ]; then with_deadline 120 "systemctl daemon-reload" systemctl daemon-reload; fi
    systemctl enable -q --now "$timer"
    tls_status mode acme
    # shellcheck source=/dev/null
    . "$BG_TLS_CONF_DIR/acme.conf"
    live="$BG_TLS_DIR/live/cert.pem"
    want=$(tr ' ' '\n' <<<"$ACME_DOMAINS" | sort | tr '\n' ' ' | sed 's/ $//')
    # A new order (and key) only for new names or another directory: Let's Encrypt allows
    # 5 duplicate certificates a week, and a renewal keeps the key (see tls-renew.sh).
    if [ -f "$live" ] && [ "$(tls_field source)" = "acme $ACME_DIRECTORY" ] && [ "$(cert_names "$live")" = "$want" ]; then
      if openssl x509 -checkend $((30 * 86400)) -noout -in "$live" >/dev/null; then
        echo "tls: acme; certificate for $ACME_DOMAINS valid until $(tls_field not_after); renewals: $timer"
      else
        "$BG_TOOLS_DIR/tls-renew.sh" renew
      fi
    else
      "$BG_TOOLS_DIR/tls-renew.sh" issue
    fi
    ;;
  *) die "MODE must be off, acme or files (got '$MODE')" ;;
esac

# What new handshakes get now (a check, not a guess): the served serial must be the installed one.
if [ "$MODE" != off ]; then
  sni=${DOMAINS%% *}
  sni=${sni/\*/check}
  served=$(tls_served_serial "$sni" || true)
  [ "$served" = "$(tls_field serial)" ] ||
    die "$(router_name) serves certificate serial '${served:-none}' on :443, not the installed $(tls_field serial); see: $(router_tls_hint)"
  echo "verified: a new TLS handshake on 127.0.0.1:443 gets serial $served"
  # Only now may port 80 send clients to https (nginx tests the flag per request; HAProxy
  # reads the map's https entry, which router_sync sets).
  : >"$BG_HTTPS_FLAG"
  router_sync
fi
