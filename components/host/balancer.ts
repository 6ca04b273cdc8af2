// One Hetzner Cloud load balancer in front of several Hetzner servers: it reaches each over the
// private network, checks that each serves its live slot, and passes or ends HTTPS. The target
// set stays fixed: a switch happens inside every host (Hetzner does not drain a removed target).

import * as hcloud from "@pulumi/hcloud";
import * as pulumi from "@pulumi/pulumi";
import { DEFAULTS } from "../config/keys";
import { BalancerTlsMode } from "../config/types";

/** A server the balancer sends requests to. */
export interface BalancerServer {
  /** Names the target resource (`${name}-target-${name}`); unique per balancer. */
  readonly name: string;
  readonly serverId: pulumi.Input<number>;
  /** Its fixed address in the private network (HetznerNetwork.hostIp). */
  readonly privateIp: string;
  /**
   * What must be done before the balancer may send it a request: its network attachment and the
   * step after which it serves the live colour (Host.ready waits for the attachment). Hetzner
   * refuses a private target whose server is not attached (server_not_attached_to_network).
   */
  readonly ready?: pulumi.Input<pulumi.Resource>[];
}

/** The HTTP health check, asked of each host's live slot through its router. */
export interface BalancerHealth {
  /** The path asked for, e.g. the app's healthPath. */
  readonly path: string;
  /** The Host header; undefined: none (the router's default site answers). */
  readonly domain?: string;
  readonly interval: number;
  readonly timeout: number;
  /** Failures in a row before a host is out, and passes before it is in again (Hetzner: 1 to 5). */
  readonly retries: number;
  /** Status codes that pass, wildcards as "2??"; a redirect must not count as a live slot. */
  readonly statusCodes: readonly string[];
}

export type BalancerTls =
  /** HTTP on 80 to the hosts' 80. */
  | { readonly mode: "none" }
  /** TCP 443 to the hosts' 443 (each host has the certificate) and TCP 80 to their 80. */
  | { readonly mode: "passthrough" }
  /** A Hetzner managed certificate (its domains must be in Hetzner DNS): HTTPS 443 to the hosts' HTTP 80; 80 redirects. */
  | { readonly mode: "managed"; readonly domains: readonly string[] }
  /** Your certificate, uploaded: HTTPS 443 to the hosts' HTTP 80; 80 redirects. */
  | {
      readonly mode: "uploaded";
      readonly certificate: pulumi.Input<string>;
      readonly privateKey: pulumi.Input<string>;
    };

export interface HetznerBalancerArgs {
  readonly servers: readonly BalancerServer[];
  /** Where the balancer is: a location (fsn1) or a network zone (eu-central), one of the two. */
  readonly location?: string;
  readonly networkZone?: string;
  /** Default loadBalancerType's (lb11). */
  readonly type?: string;
  /** Default loadBalancerAlgorithm's (round_robin). */
  readonly algorithm?: "round_robin" | "least_connections";
  readonly health: BalancerHealth;
  readonly tls: BalancerTls;
  /** A cookie that sends a client back to the same host; HTTP at the balancer only (not passthrough). */
  readonly stickySessions?: { readonly cookieName: string; readonly cookieLifetime?: number };
  /** The private network the balancer joins, at its own fixed address (HetznerNetwork.plan.balancerIp). */
  readonly network: { readonly networkId: pulumi.Input<number>; readonly ip: string };
  /**
   * Pulumi `protect` on the balancer (e.g. hetznerProtect's value): its public addresses are the
   * ones DNS names, and a new location or network zone replaces it (both ForceNew in
   * terraform-provider-hcloud internal/loadbalancer/resource.go), with new addresses.
   */
  readonly protect?: boolean;
}

/** Why these args cannot make a balancer, or undefined. */
export function balancerArgsProblem(args: HetznerBalancerArgs): string | undefined {
  const { servers, health, tls } = args;
  const names = servers.map((s) => s.name);
  const ips = servers.map((s) => s.privateIp);
  if (servers.length === 0) return "a balancer needs at least one server";
  if (new Set(names).size !== names.length) return `server names must be unique (got ${names.join(", ")})`;
  if (new Set([...ips, args.network.ip]).size !== ips.length + 1)
    return `private addresses must be unique (servers ${ips.join(", ")}, balancer ${args.network.ip})`;
  if ((args.location === undefined) === (args.networkZone === undefined))
    return "give the balancer a location or a networkZone, one of the two";
  if (health.timeout >= health.interval) return "the health check's timeout must be less than its interval";
  if (!Number.isInteger(health.retries) || health.retries < 1 || health.retries > 5)
    return "the health check's retries must be 1 to 5";
  if (health.statusCodes.length === 0) return "the health check needs status codes that pass";
  if (tls.mode === "managed" && tls.domains.length === 0) return "a managed certificate needs domains";
  if (args.stickySessions && tls.mode === "passthrough")
    return "sticky sessions need the balancer to see HTTP, and passthrough keeps it encrypted";
  return undefined;
}

/** One listener of the balancer, as the service resource takes it. */
interface Listener {
  readonly protocol: "http" | "https" | "tcp";
  readonly listenPort: number;
  readonly destinationPort: number;
}

/**
 * The services of a TLS mode. HTTP services always say whether sessions are sticky: the
 * provider keeps an omitted `http` block as it is (Optional and Computed in
 * terraform-provider-hcloud internal/loadbalancer/resource_service.go), so leaving it out would
 * keep a cookie turned on once.
 */
export function balancerListeners(mode: BalancerTlsMode): Listener[] {
  switch (mode) {
    case "none":
      return [{ protocol: "http", listenPort: 80, destinationPort: 80 }];
    case "passthrough":
      return [
        { protocol: "tcp", listenPort: 443, destinationPort: 443 },
        { protocol: "tcp", listenPort: 80, destinationPort: 80 },
      ];
    case "managed":
    case "uploaded":
      return [{ protocol: "https", listenPort: 443, destinationPort: 80 }];
  }
}

/**
 * The health check of every service. It asks the path over the way the hosts serve the public:
 * plain HTTP on 80, or HTTPS on 443 when TLS passes through (there the hosts answer 80 with a
 * redirect, which must not pass as a live slot). Several services may check one port: the
 * hcloud cloud controller manager gives every port of a Kubernetes service the same
 * health-check-port (internal/hcops/load_balancer.go extractHealthCheck).
 */
export function balancerHealthCheck(
  mode: BalancerTlsMode,
  health: BalancerHealth,
): hcloud.types.input.LoadBalancerServiceHealthCheck {
  const https = mode === "passthrough";
  return {
    protocol: "http",
    port: https ? 443 : 80,
    interval: health.interval,
    timeout: health.timeout,
    retries: health.retries,
    http: {
      path: health.path,
      ...(health.domain ? { domain: health.domain } : {}),
      statusCodes: [...health.statusCodes],
      tls: https,
    },
  };
}

/**
 * Resource options of a target (exported for tests: mocks do not see options). A target joins
 * only once the balancer is on the network and the server is ready: its attachment made, its
 * live colour serving. Never a label selector, whose new servers may take requests before their
 * first check (hetznercloud/hcloud-cloud-controller-manager#109).
 */
export function balancerTargetOptions(
  parent: pulumi.Resource,
  balancerNetwork: pulumi.Resource,
  ready: readonly pulumi.Input<pulumi.Resource>[] = [],
): pulumi.CustomResourceOptions {
  return { parent, dependsOn: [balancerNetwork, ...ready] };
}

/**
 * Resource options of the balancer's network attachment. network_id and ip are RequiresReplace
 * (terraform-provider-hcloud internal/loadbalancer/resource_network.go), and a balancer joins a
 * network once: the old attachment goes first.
 */
export function balancerNetworkOptions(parent: pulumi.Resource): pulumi.CustomResourceOptions {
  return { parent, deleteBeforeReplace: true };
}

/** A Hetzner load balancer in front of several Hetzner servers, over their private network. */
export class HetznerBalancer extends pulumi.ComponentResource {
  public readonly ipv4: pulumi.Output<string>;
  public readonly ipv6: pulumi.Output<string>;
  /** The balancer's address in the private network: the hosts see requests come from it. */
  public readonly privateIp: pulumi.Output<string>;
  public readonly loadBalancerId: pulumi.Output<string>;

  constructor(name: string, args: HetznerBalancerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("bluegreen:index:HetznerBalancer", name, {}, opts);
    const problem = balancerArgsProblem(args);
    if (problem) throw new Error(`bluegreen: balancer ${name}: ${problem}`);
    const self = { parent: this };
    const lb = new hcloud.LoadBalancer(
      `${name}-lb`,
      {
        loadBalancerType: args.type ?? DEFAULTS.loadBalancerType,
        ...(args.location ? { location: args.location } : { networkZone: args.networkZone }),
        algorithm: { type: args.algorithm ?? DEFAULTS.loadBalancerAlgorithm },
        labels: { app: "bluegreen" },
      },
      { ...self, protect: args.protect ?? false },
    );
    const lbId = lb.id.apply(Number);
    const lbNetwork = new hcloud.LoadBalancerNetwork(
      `${name}-network`,
      { loadBalancerId: lbId, networkId: args.network.networkId, ip: args.network.ip, enablePublicInterface: true },
      balancerNetworkOptions(this),
    );
    const certificates = this.certificate(name, args.tls);
    for (const l of balancerListeners(args.tls.mode)) {
      const http =
        l.protocol === "tcp"
          ? undefined
          : {
              ...(certificates ? { certificates, redirectHttp: true } : {}),
              stickySessions: args.stickySessions !== undefined,
              ...(args.stickySessions
                ? {
                    cookieName: args.stickySessions.cookieName,
                    ...(args.stickySessions.cookieLifetime
                      ? { cookieLifetime: args.stickySessions.cookieLifetime }
                      : {}),
                  }
                : {}),
            };
      new hcloud.LoadBalancerService(
        `${name}-service-${l.listenPort}`,
        {
          loadBalancerId: lb.id,
          ...l,
          proxyprotocol: false,
          healthCheck: balancerHealthCheck(args.tls.mode, args.health),
          ...(http ? { http } : {}),
        },
        // A service is known by its balancer and port: a changed protocol replaces it, old one first.
        { ...self, deleteBeforeReplace: true },
      );
    }
    for (const s of args.servers) {
      new hcloud.LoadBalancerTarget(
        `${name}-target-${s.name}`,
        { type: "server", loadBalancerId: lbId, serverId: s.serverId, usePrivateIp: true },
        balancerTargetOptions(this, lbNetwork, s.ready),
      );
    }
    this.ipv4 = lb.ipv4;
    this.ipv6 = lb.ipv6;
    this.privateIp = lbNetwork.ip;
    this.loadBalancerId = lb.id;
    this.registerOutputs({ ipv4: this.ipv4, ipv6: this.ipv6, privateIp: this.privateIp });
  }

  /** The certificate the balancer ends HTTPS with, as the service takes its id; undefined when it does not. */
  private certificate(name: string, tls: BalancerTls): pulumi.Output<number>[] | undefined {
    const labels = { app: "bluegreen" };
    if (tls.mode === "managed") {
      const cert = new hcloud.ManagedCertificate(
        `${name}-certificate`,
        { domainNames: [...tls.domains], labels },
        { parent: this },
      );
      return [cert.id.apply(Number)];
    }
    if (tls.mode === "uploaded") {
      const cert = new hcloud.UploadedCertificate(
        `${name}-certificate`,
        { certificate: tls.certificate, privateKey: pulumi.secret(tls.privateKey), labels },
        { parent: this },
      );
      return [cert.id.apply(Number)];
    }
    return undefined;
  }
}
