// The hosts a stack's config names: one `Host` ("host"), or one per bluegreen:hosts entry
// ("host-<name>"; the first one also found as "host", so a stack that grows from one host to
// several keeps its machine). Several Hetzner servers share one private network and sit behind
// one Hetzner load balancer, which sends a host requests only once it serves the live colour.
import * as crypto from "crypto";
import * as pulumi from "@pulumi/pulumi";
import { FleetHost } from "../app/fleetSwitch";
import { BluegreenConfig } from "../config";
import { BALANCER_HEALTH_PATH } from "../router/nginx";
import { BalancerTls, HetznerBalancer } from "./balancer";
import { Host } from "./host";
import { HetznerNetwork } from "./network";

/** A host's index in the subnet, from its name: stable when other hosts come or go. */
export function hostSlot(name: string, taken: ReadonlySet<number>): number {
  const slot = crypto.createHash("sha256").update(name).digest().readUInt16BE(0) % 240;
  if (taken.has(slot))
    throw new Error(`bluegreen:hosts: ${name} would take another host's private address; give it another name`);
  return slot;
}

/** The stack's hosts, and the private network of several Hetzner servers. */
export function hostsFor(cfg: BluegreenConfig): { hosts: FleetHost[]; network?: HetznerNetwork } {
  const named = cfg.hosts[0].name !== "";
  if (!named)
    return { hosts: [{ name: "", host: new Host("host", { host: cfg.host, ssh: cfg.ssh, arch: cfg.arch }) }] };
  const network = cfg.balancer.enabled
    ? new HetznerNetwork("network", {
        locations: cfg.hosts.map((h) => (h.host.kind === "hetzner" ? h.host.location : "")),
        ipRange: cfg.balancer.network.ipRange,
      })
    : undefined;
  // sshHostKey names one host's key: with several, each host's is pinned or recorded on its own.
  const ssh = { ...cfg.ssh, hostKey: undefined };
  const taken = new Set<number>();
  const hosts: FleetHost[] = [];
  for (const [i, h] of cfg.hosts.entries()) {
    const slot = network ? hostSlot(h.name, taken) : 0;
    taken.add(slot);
    const host = new Host(
      `host-${h.name}`,
      {
        host: h.host,
        ssh,
        arch: cfg.arch,
        ...(network ? { network: { networkId: network.networkId, ip: network.hostIp(slot) }, publicHttp: false } : {}),
        // One upload of the login key: Hetzner refuses the same fingerprint twice.
        ...(i > 0 && hosts[0].host instanceof Host && hosts[0].host.sshKeyIds
          ? { sshKeyIds: hosts[0].host.sshKeyIds }
          : {}),
      },
      i === 0 ? { aliases: [{ name: "host" }] } : undefined,
    );
    hosts.push({ name: h.name, host });
  }
  return { hosts, network };
}

/** What the balancer does with HTTPS, from the config. */
function balancerTls(cfg: BluegreenConfig): BalancerTls {
  switch (cfg.balancer.tlsMode) {
    case "managed":
      return { mode: "managed", domains: cfg.domains };
    case "uploaded":
      if (cfg.tls.mode !== "files") throw new Error("an uploaded certificate needs tls files");
      return { mode: "uploaded", certificate: cfg.tls.certificate, privateKey: cfg.tls.privateKey };
    default:
      return { mode: cfg.balancer.tlsMode };
  }
}

/**
 * The Hetzner load balancer of several Hetzner servers: one target per server, added once the
 * switch has made that server serve the live colour (`after`).
 */
export function balancerFor(
  cfg: BluegreenConfig,
  fleet: { hosts: readonly FleetHost[]; network?: HetznerNetwork },
  after: pulumi.Input<pulumi.Resource>[],
): HetznerBalancer | undefined {
  if (!cfg.balancer.enabled || !fleet.network) return undefined;
  const b = cfg.balancer;
  return new HetznerBalancer("balancer", {
    servers: fleet.hosts.map((h) => {
      const host = h.host as Host;
      return { name: h.name, serverId: host.serverId!, privateIp: host.privateIp!, ready: [host.ready, ...after] };
    }),
    networkZone: b.networkZone,
    type: b.type,
    algorithm: b.algorithm,
    health: { path: BALANCER_HEALTH_PATH, domain: cfg.domains[0], ...b.health, statusCodes: ["2??"] },
    tls: balancerTls(cfg),
    ...(b.stickyCookie ? { stickySessions: { cookieName: b.stickyCookie } } : {}),
    network: { networkId: fleet.network.networkId, ip: fleet.network.plan.balancerIp },
    protect: cfg.host.kind === "hetzner" ? cfg.host.protect : undefined,
  });
}
