#!/usr/bin/env bash
# Starts a test ACME server in the e2e VM: pebble (RFC 8555, Let's Encrypt's test CA) and
# pebble-challtestsrv as its DNS, which answers 127.0.0.1 for every name, so pebble's
# HTTP-01 validation reaches the VM's own nginx on port 80. Also writes the DNS-01 hook
# the wildcard scenario names as lego's exec provider. Facts behind each flag: see the
# comments; verified against pebble v2.4.0 and lego v4.9.1 sources.
# Usage: pebble-in-vm.sh DIR   (writes DIR/ca.pem: the CA of pebble's own https listener)
set -euo pipefail
dir=${1:?usage: pebble-in-vm.sh DIR}
install -d -m 0700 "$dir"
cd "$dir"

# pebble serves its API over https only; lego must trust that listener (LEGO_CA_CERTIFICATES,
# which bluegreen's acmeCaCertificate feeds). The certificate needs an IP:127.0.0.1 SAN.
openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
  -keyout ca.key -out ca.pem -days 2 -subj "/CN=bluegreen e2e pebble listener CA" 2>/dev/null
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
  -keyout pebble.key -out pebble.csr -subj "/CN=localhost" 2>/dev/null
printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "extendedKeyUsage=serverAuth" >pebble.ext
openssl x509 -req -in pebble.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
  -extfile pebble.ext -out pebble.crt 2>/dev/null

# httpPort 80: HTTP-01 is validated at http://<name>:80/.well-known/acme-challenge/<token>.
# 90-day certificates, as Let's Encrypt's, so `renew --days 30` is a no-op and the timer's
# normal run renews nothing.
cat >pebble.json <<JSON
{ "pebble": { "listenAddress": "127.0.0.1:14000", "managementListenAddress": "127.0.0.1:15000",
  "certificate": "$dir/pebble.crt", "privateKey": "$dir/pebble.key",
  "httpPort": 80, "tlsPort": 5001, "ocspResponderURL": "", "externalAccountBindingRequired": false,
  "certificateValidityPeriod": 7776000 } }
JSON

systemctl stop pebble challtestsrv 2>/dev/null || true
systemctl reset-failed pebble challtestsrv 2>/dev/null || true
# -http01 "" etc.: challtestsrv must not take ports 5002/5003/5001 (or 80) itself.
# -defaultIPv6 "": pebble looks up AAAA first and dials the first answer; nginx serves IPv4 here.
systemd-run -q --unit=challtestsrv pebble-challtestsrv -management 127.0.0.1:8055 -dns01 127.0.0.1:8053 \
  -http01 "" -https01 "" -tlsalpn01 "" -defaultIPv4 127.0.0.1 -defaultIPv6 ""
# NOSLEEP: validate at once; NONCEREJECT=0: no random bad-nonce errors; AUTHZREUSE=0: every
# renewal validates again, so the renewals really go through nginx and the hook.
systemd-run -q --unit=pebble --setenv=PEBBLE_VA_NOSLEEP=1 --setenv=PEBBLE_WFE_NONCEREJECT=0 \
  --setenv=PEBBLE_AUTHZREUSE=0 pebble -config "$dir/pebble.json" -dnsserver 127.0.0.1:8053

# lego's exec DNS provider calls: HOOK present|cleanup FQDN VALUE (lego providers/dns/exec).
# It refuses to run without the token, which bluegreen must pass from acmeDnsEnv via dns.env.
cat >fake-dns.sh <<'HOOK'
#!/usr/bin/env bash
set -euo pipefail
[ "${FAKE_DNS_TOKEN:-}" = secret-dns-token-e2e ] || { echo "fake-dns: no credentials" >&2; exit 3; }
case "$1" in
  present) curl -fsS -X POST -d "{\"host\":\"$2\",\"value\":\"$3\"}" http://127.0.0.1:8055/set-txt ;;
  cleanup) curl -fsS -X POST -d "{\"host\":\"$2\"}" http://127.0.0.1:8055/clear-txt ;;
  *) echo "fake-dns: unknown action $1" >&2; exit 2 ;;
esac
HOOK
chmod 0755 fake-dns.sh

for _ in $(seq 1 100); do
  if curl -fsS --cacert ca.pem https://127.0.0.1:14000/dir >/dev/null 2>&1 &&
    curl -fsS -X POST -d '{"host":"probe.invalid."}' http://127.0.0.1:8055/clear-txt >/dev/null 2>&1; then
    echo "pebble and challtestsrv are up"
    exit 0
  fi
  sleep 0.3
done
echo "pebble did not start:" >&2
journalctl -u pebble -u challtestsrv -n 30 --no-pager >&2
exit 1
