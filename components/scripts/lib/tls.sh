# shellcheck shell=bash
# HTTPS: the served certificate, its status record, and installing a new one without a reload.
# Sourced by lib.sh (after layout.sh and the router file), never run.

# nginx_group: the group nginx's workers run as; they open the certificate at each handshake.
nginx_group() { if getent group www-data >/dev/null; then echo www-data; else echo nginx; fi; }

# cert_field FILE FIELD: serial, enddate or subject of the first certificate in FILE.
cert_field() { openssl x509 -noout "-$2" -in "$1" | sed 's/^[^=]*=//'; }

# cert_names FILE: the certificate's DNS names, sorted, space-separated.
cert_names() {
  openssl x509 -noout -ext subjectAltName -in "$1" 2>/dev/null | tr ',' '\n' | sed -n 's/^ *DNS://p' | sort | tr '\n' ' ' | sed 's/ $//'
}

# tls_status KEY VALUE...: sets fields of the TLS status record bluegreen-status shows.
tls_status() {
  local f="$BG_TLS_DIR/status" tmp
  install -d -m 0755 "$BG_TLS_DIR"
  tmp=$(mktemp "$f.XXXXXX")
  [ -f "$f" ] && cp "$f" "$tmp"
  while [ $# -ge 2 ]; do
    sed -i "/^$1=/d" "$tmp"
    printf '%s=%s\n' "$1" "$2" >>"$tmp"
    shift 2
  done
  chmod 0644 "$tmp"
  mv -f "$tmp" "$f"
}

# tls_install CHAIN KEY SOURCE: makes CHAIN (leaf first) and KEY the served certificate with
# one rename(2), then tells the router (router_tls_install: nginx opens the file at each
# handshake; HAProxy is handed it over its runtime API), so nothing is reloaded and no
# connection is closed; new handshakes get the new certificate. If the router does not take
# it, the link goes back to the certificate served before, and the status and the audit log
# say so. TLS_INSTALL_NOTE says what was done. The host lock is held from the rename to the
# router's answer: another app's reload in between would load the new file behind our back.
TLS_INSTALL_NOTE=""
tls_install() {
  local chain=$1 key=$2 source=$3 dir group keep prev why
  local leaf_pub key_pub
  leaf_pub=$(openssl x509 -noout -pubkey -in "$chain" | openssl pkey -pubin -outform DER | sha256sum)
  key_pub=$(openssl pkey -in "$key" -pubout -outform DER | sha256sum)
  [ "$leaf_pub" = "$key_pub" ] || die "the private key does not belong to the certificate ($(cert_field "$chain" subject)); nothing was installed"
  group=$(router_tls_group)
  install -d -m 0755 "$BG_TLS_DIR"
  dir=$(mktemp -d "$BG_TLS_DIR/gen-$(date -u +%Y%m%dT%H%M%SZ)-XXXXXX")
  chmod 0750 "$dir"
  chgrp "$group" "$dir"
  (umask 0137 && cat "$chain" "$key" >"$dir/cert.pem")
  chgrp "$group" "$dir/cert.pem"
  exec 7>"$BG_HOST_LOCK"
  flock -w 120 7 || die "another app's router change has held $BG_HOST_LOCK for over 120 s; the certificate was not installed"
  prev=$(readlink "$BG_TLS_DIR/live" 2>/dev/null || true)
  atomic_link "$dir" "$BG_TLS_DIR/live"
  # shellcheck disable=SC2034 # read by tls-config.sh and tls-renew.sh
  if ! TLS_INSTALL_NOTE=$(router_tls_install); then
    if [ -n "$prev" ]; then atomic_link "$prev" "$BG_TLS_DIR/live"; else rm -f "$BG_TLS_DIR/live"; fi
    rm -rf "$dir"
    why="$(router_name) did not take the new certificate ($(cert_field "$chain" serial)), so the one served before stays in place"
    tls_status last_attempt "$(date -u +%Y-%m-%dT%H:%M:%SZ)" last_result failed last_error "$why"
    audit tls-install "serial=$(cert_field "$chain" serial)" failed
    die "$why"
  fi
  exec 7>&-
  tls_status source "$source" serial "$(cert_field "$dir/cert.pem" serial)" \
    not_after "$(date -u -d "$(cert_field "$dir/cert.pem" enddate)" +%Y-%m-%dT%H:%M:%SZ)" \
    names "$(cert_names "$dir/cert.pem")" installed_at "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  # Keep the live certificate and the one before it.
  keep=$(readlink "$BG_TLS_DIR/live")
  find "$BG_TLS_DIR" -mindepth 1 -maxdepth 1 -type d -name 'gen-*' ! -path "$keep" -printf '%T@ %p\n' |
    sort -rn | tail -n +2 | cut -d' ' -f2- | xargs -r rm -rf
}

# cert_covers PEM DOMAINS: the certificate in PEM names every domain (a wildcard covers one label).
cert_covers() {
  local names d list
  [ -f "$1" ] || return 1
  names=" $(cert_names "$1") "
  read -r -a list <<<"$2"
  for d in "${list[@]}"; do
    case "$names" in *" $d "*) continue ;; esac
    case "$d" in \*.*) return 1 ;; esac
    case "$names" in *" *.${d#*.} "*) continue ;; esac
    return 1
  done
}

# tls_served_serial SNI: the serial of the certificate the router serves on 127.0.0.1:443 to a new handshake.
tls_served_serial() {
  timeout 10 openssl s_client -connect "127.0.0.1:${BG_HTTPS_PORT:-443}" -servername "$1" </dev/null 2>/dev/null |
    openssl x509 -noout -serial 2>/dev/null | sed 's/^serial=//'
}

# tls_field KEY: a field of the TLS status record.
tls_field() { field "$BG_TLS_DIR/status" "$1"; }
