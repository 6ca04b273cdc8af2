// The TLS step's files on the host: acme.conf, the DNS provider's env file and the renewal
// timer's units. Pure renderers: tests compare their output with expected text.

import { AppLayout } from "../host/layout";
import { MANAGED, shellQuote } from "../host/shell";

export interface AcmeConfOptions {
  readonly email: string;
  readonly directory: string;
  readonly challenge: "http-01" | "dns-01";
  readonly domains: readonly string[];
  readonly dnsProvider?: string;
  readonly dnsResolvers: readonly string[];
  readonly dnsPropagationCheck?: boolean;
  /** HTTP-01 through HAProxy: the 127.0.0.1 port lego's own server answers challenges on. */
  readonly httpPort?: number;
}

/** acme.conf, sourced by tls-renew.sh: what to ask the ACME server for. Values are validated in config.ts. */
export function renderAcmeConf(o: AcmeConfOptions): string {
  const vars: Record<string, string> = {
    ACME_EMAIL: o.email,
    ACME_DIRECTORY: o.directory,
    ACME_CHALLENGE: o.challenge,
    ACME_DOMAINS: o.domains.join(" "),
    ...(o.dnsProvider ? { ACME_DNS_PROVIDER: o.dnsProvider } : {}),
    ...(o.dnsResolvers.length ? { ACME_DNS_RESOLVERS: o.dnsResolvers.join(" ") } : {}),
    ...(o.dnsPropagationCheck === false ? { ACME_DNS_DISABLE_CP: "1" } : {}),
    ...(o.challenge === "http-01" && o.httpPort ? { ACME_HTTP_PORT: String(o.httpPort) } : {}),
  };
  return (
    MANAGED +
    "\n" +
    Object.entries(vars)
      .map(([k, v]) => `${k}=${shellQuote(v)}\n`)
      .join("")
  );
}

/** The DNS provider's credentials as lego reads them from its environment (a 0600 file, sourced). */
export function renderDnsEnv(env: Readonly<Record<string, string>>): string {
  return Object.entries(env)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${shellQuote(v)}\n`)
    .join("");
}

/**
 * The renewal service and its timer: twice a day at a random minute (Let's Encrypt
 * asks clients not to renew on the hour), catching up after downtime. lego renews
 * only within 30 days of expiry; a failure leaves the served certificate alone and
 * shows in bluegreen-status, the audit log and `systemctl --failed`.
 */
export function renderTlsRenewUnits(L: AppLayout): { service: string; timer: string } {
  return {
    service: [
      MANAGED,
      "[Unit]",
      "Description=bluegreen: renew the site's certificate (lego), installed with no reload of nginx or HAProxy",
      "After=network-online.target nginx.service haproxy.service",
      "Wants=network-online.target",
      "",
      "[Service]",
      "Type=oneshot",
      `ExecStart=${L.toolsDir}/tls-renew.sh renew`,
      "TimeoutStartSec=900",
      "",
    ].join("\n"),
    timer: [
      MANAGED,
      "[Unit]",
      "Description=bluegreen: renew the site's certificate twice a day",
      "",
      "[Timer]",
      "OnCalendar=*-*-* 00,12:00:00",
      "RandomizedDelaySec=12h",
      "Persistent=true",
      "",
      "[Install]",
      "WantedBy=timers.target",
      "",
    ].join("\n"),
  };
}
