// The private network several Hetzner servers and their load balancer share: one hcloud.Network,
// one cloud subnet in the servers' network zone, and a fixed private address for each server
// and for the balancer, so that targets and health checks are addressed deterministically.

import * as hcloud from "@pulumi/hcloud";
import * as pulumi from "@pulumi/pulumi";
import { DEFAULTS } from "../config/keys";

/**
 * Hetzner's network zone of each location (docs.hetzner.com/cloud/networks/faq, "Can Networks
 * span multiple locations?"): a network and all its subnets lie in one zone, and so must every
 * server and load balancer attached to it.
 */
export const NETWORK_ZONES: Readonly<Record<string, string>> = {
  fsn1: "eu-central",
  nbg1: "eu-central",
  hel1: "eu-central",
  ash: "us-east",
  hil: "us-west",
  sin: "ap-southeast",
};

/** Why these locations cannot share one network, or undefined when they can (one zone, all known). */
export function networkZoneProblem(locations: readonly string[]): string | undefined {
  if (locations.length === 0) return "no location given";
  const unknown = locations.filter((l) => !(l in NETWORK_ZONES));
  if (unknown.length) return `unknown Hetzner location ${unknown.map((l) => JSON.stringify(l)).join(", ")}`;
  const zones = [...new Set(locations.map((l) => NETWORK_ZONES[l]))];
  if (zones.length === 1) return undefined;
  const inZone = (z: string, of: readonly string[]) => [...new Set(of.filter((l) => NETWORK_ZONES[l] === z))];
  return (
    `the hosts' locations lie in ${zones.length} network zones (${zones.map((z) => `${z}: ${inZone(z, locations).join(", ")}`).join("; ")}), ` +
    `and a Hetzner network and its load balancer span one zone: put every host in ${zones
      .map((z) => inZone(z, Object.keys(NETWORK_ZONES)).join("/"))
      .join(" or in ")}`
  );
}

/** The one network zone of these locations; throws naming them when they span several. */
export function networkZoneOf(locations: readonly string[]): string {
  const problem = networkZoneProblem(locations);
  if (problem) throw new Error(`bluegreen: ${problem}`);
  return NETWORK_ZONES[locations[0]];
}

const PRIVATE_RANGES: readonly { base: number; bits: number; text: string }[] = [
  { base: ip4("10.0.0.0"), bits: 8, text: "10.0.0.0/8" },
  { base: ip4("172.16.0.0"), bits: 12, text: "172.16.0.0/12" },
  { base: ip4("192.168.0.0"), bits: 16, text: "192.168.0.0/16" },
];

function ip4(text: string): number {
  const parts = text.split(".").map(Number);
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}

function ip4Text(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

const mask = (bits: number) => (bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0);

/** The address plan of a network range: its cloud subnet, the balancer's address and each host's. */
export interface NetworkPlan {
  /** The network's range, e.g. 10.0.0.0/16. */
  readonly ipRange: string;
  /** The one cloud subnet: the range's second /24 (the first holds the network's gateway, its first address). */
  readonly subnet: string;
  /** The balancer's private address: the subnet's .2. */
  readonly balancerIp: string;
  /** Host `index`'s private address: the subnet's .(10 + index), for index 0 to 244. */
  hostIp(index: number): string;
}

/** Why a range cannot be a bluegreen network, or undefined. */
export function ipRangeProblem(ipRange: string): string | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(ipRange);
  const octets = m ? m.slice(1, 5).map(Number) : [];
  if (!m || octets.some((o) => o > 255)) return "must be an IPv4 range such as 10.0.0.0/16";
  const base = ip4(octets.join("."));
  const bits = Number(m[5]);
  if (bits < 8 || bits > 23) return "must be a /8 to /23 range (its second /24 is the servers' subnet)";
  if ((base & mask(bits)) >>> 0 !== base)
    return `must start at its range's first address (${ip4Text((base & mask(bits)) >>> 0)}/${bits})`;
  if (!PRIVATE_RANGES.some((p) => bits >= p.bits && (base & mask(p.bits)) >>> 0 === p.base))
    return `must lie in a private range: ${PRIVATE_RANGES.map((p) => p.text).join(", ")}`;
  return undefined;
}

/** The address plan of a range; throws when the range cannot be one (ipRangeProblem). */
export function networkPlan(ipRange: string): NetworkPlan {
  const problem = ipRangeProblem(ipRange);
  if (problem) throw new Error(`bluegreen: network range ${JSON.stringify(ipRange)} ${problem}`);
  const subnet = ip4(ipRange.split("/")[0]) + 256;
  return {
    ipRange,
    subnet: `${ip4Text(subnet)}/24`,
    balancerIp: ip4Text(subnet + 2),
    hostIp: (index: number) => {
      if (!Number.isInteger(index) || index < 0 || index > 244)
        throw new Error(`bluegreen: host index ${index} has no private address (0 to 244)`);
      return ip4Text(subnet + 10 + index);
    },
  };
}

export interface HetznerNetworkArgs {
  /** Where the servers and the balancer that join the network are: all in one network zone. */
  readonly locations: readonly string[];
  /** The network's private range; default networkIpRange's (10.0.0.0/16). */
  readonly ipRange?: string;
}

/**
 * A private network for several Hetzner servers and their load balancer. The balancer reaches
 * each server at its fixed address (`hostIp`), and Cloud Firewalls do not filter this network
 * (see firewallRules in ./host.ts), so the servers need not open 80 and 443 to the world.
 */
export class HetznerNetwork extends pulumi.ComponentResource {
  /**
   * The network's id, as the subnet reports it: whatever attaches to the network with it waits
   * until the subnet exists, which an attachment at a fixed address needs.
   */
  public readonly networkId: pulumi.Output<number>;
  public readonly subnetId: pulumi.Output<string>;
  public readonly zone: string;
  public readonly plan: NetworkPlan;

  constructor(name: string, args: HetznerNetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super("bluegreen:index:HetznerNetwork", name, {}, opts);
    this.zone = networkZoneOf(args.locations);
    this.plan = networkPlan(args.ipRange ?? DEFAULTS.networkIpRange);
    const network = new hcloud.Network(
      `${name}-network`,
      { ipRange: this.plan.ipRange, labels: { app: "bluegreen" } },
      { parent: this },
    );
    const subnet = new hcloud.NetworkSubnet(
      `${name}-subnet`,
      { networkId: network.id.apply(Number), type: "cloud", networkZone: this.zone, ipRange: this.plan.subnet },
      { parent: this },
    );
    this.networkId = subnet.networkId;
    this.subnetId = subnet.id;
    this.registerOutputs({ networkId: this.networkId, subnetId: this.subnetId });
  }

  /** Host `index`'s fixed private address. Keep a host's index for its life: a new address re-attaches it. */
  hostIp(index: number): string {
    return this.plan.hostIp(index);
  }
}
