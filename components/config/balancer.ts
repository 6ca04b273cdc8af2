// Several Hetzner hosts behind one Hetzner load balancer: its type, algorithm and health check,
// where HTTPS ends, sticky sessions, and the private network. Every key is checked with one host
// too; the rules between keys, hosts and tls apply only when a balancer is made.

import { ipRangeProblem, networkPlan, networkZoneProblem, NETWORK_ZONES } from "../host/network";
import { DEFAULTS, Key } from "./keys";
import { key, q, Reader } from "./reader";
import { BalancerConfig, BalancerTlsMode, HostConfig, TlsConfig } from "./types";

/** What the balancer's rules depend on besides its own keys. */
export interface BalancerContext {
  /** Every host of the app (one, for today's stacks). */
  readonly hosts: readonly HostConfig[];
  readonly tls: TlsConfig;
}

/** The keys only a balancer reads. */
export const BALANCER_KEYS: readonly Key[] = [
  "loadBalancerType",
  "loadBalancerAlgorithm",
  "loadBalancerHealthInterval",
  "loadBalancerHealthTimeout",
  "loadBalancerHealthRetries",
  "loadBalancerTls",
  "loadBalancerStickyCookie",
  "networkIpRange",
];

/** The balancer's TLS mode: tls off is none; else loadBalancerTls host passes it through, balancer ends it. */
export function balancerTlsMode(tls: TlsConfig, tlsAt: "host" | "balancer"): BalancerTlsMode {
  if (tls.mode === "off") return "none";
  if (tlsAt === "host") return "passthrough";
  return tls.mode === "acme" ? "managed" : "uploaded";
}

/**
 * The balancer's config, every key checked. `enabled` only with several hosts that are all
 * Hetzner servers; then the hosts, tls and these keys must fit together.
 */
export function readBalancer(r: Reader, ctx: BalancerContext): BalancerConfig {
  const interval = r.int("loadBalancerHealthInterval");
  const timeout = r.int("loadBalancerHealthTimeout");
  if (timeout >= interval)
    r.problem(
      `${key("loadBalancerHealthTimeout")} (${timeout}) must be less than ${key("loadBalancerHealthInterval")} (${interval}): a check must end before the next one starts`,
    );
  const tlsAt = r.oneOf("loadBalancerTls");
  const stickyValue = r.raw("loadBalancerStickyCookie");
  const stickyCookie = stickyValue === undefined ? undefined : r.checked("loadBalancerStickyCookie", stickyValue);
  const hetzner = ctx.hosts.filter((h) => h.kind === "hetzner");
  const locations = hetzner.map((h) => h.location);
  const config: BalancerConfig = {
    enabled: ctx.hosts.length > 1 && hetzner.length === ctx.hosts.length,
    type: r.checked("loadBalancerType"),
    algorithm: r.oneOf("loadBalancerAlgorithm"),
    health: { interval, timeout, retries: r.int("loadBalancerHealthRetries") },
    tlsAt,
    tlsMode: balancerTlsMode(ctx.tls, tlsAt),
    stickyCookie,
    network: readNetwork(r),
    networkZone: locations.length && !networkZoneProblem(locations) ? NETWORK_ZONES[locations[0]] : undefined,
  };
  if (config.enabled) checkBalanced(r, config, ctx, locations);
  else if (ctx.hosts.length > 1) {
    // The health check's keys describe any balancer (drain.sh waits by them); the rest make Hetzner's.
    for (const k of BALANCER_KEYS.filter((k) => !k.startsWith("loadBalancerHealth") && r.setToNonDefault(k)))
      r.problem(
        `${key(k)} is set, but a Hetzner load balancer fronts Hetzner servers only and not every host is one; it would be ignored`,
      );
  }
  return config;
}

function readNetwork(r: Reader): BalancerConfig["network"] {
  let ipRange = r.str("networkIpRange");
  const problem = ipRangeProblem(ipRange);
  if (problem) {
    r.problem(`${key("networkIpRange")} ${problem} (got ${q(ipRange)})`);
    ipRange = DEFAULTS.networkIpRange;
  }
  const plan = networkPlan(ipRange);
  return { ipRange, subnet: plan.subnet, balancerIp: plan.balancerIp };
}

/** The rules of several hosts behind a balancer. */
function checkBalanced(r: Reader, config: BalancerConfig, ctx: BalancerContext, locations: string[]): void {
  const zone = networkZoneProblem(locations);
  if (zone) r.problem(`${key("hetznerLocation")}: ${zone}`);
  const { tls } = ctx;
  if (tls.mode === "acme" && config.tlsAt === "host" && tls.challenge === "http-01")
    r.problem(
      `${key("acmeChallenge")} "http-01" cannot work with ${ctx.hosts.length} hosts behind the balancer: the CA's request can land on any host, not the one that asked; ` +
        `use acmeChallenge dns-01 (each host gets the certificate), or loadBalancerTls balancer (a Hetzner managed certificate; the domains must be in Hetzner DNS)`,
    );
  if (tls.mode === "off" && r.setToNonDefault("loadBalancerTls"))
    r.problem(`${key("loadBalancerTls")} is ${q(config.tlsAt)} but ${key("tls")} is "off"; it would be ignored`);
  if (config.stickyCookie !== undefined && config.tlsMode === "passthrough")
    r.problem(
      `${key("loadBalancerStickyCookie")} needs the balancer to see HTTP, but with ${key("loadBalancerTls")} "host" it passes TLS through unread: ` +
        `set loadBalancerTls balancer, or remove the cookie: pulumi config rm loadBalancerStickyCookie`,
    );
}
