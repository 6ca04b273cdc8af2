// Several Hetzner servers behind a Hetzner load balancer, under Pulumi mocks: a small program of
// its own builds HetznerNetwork, Hetzner Hosts on it and HetznerBalancer, and every hcloud
// resource's inputs are held exactly. Mocks do not see resource options; a transformation on the
// program's root does (the SDK applies a parent's transformations to all its children), so the
// targets' ordering (dependsOn) and the attachments' replacement order are checked there, on the
// options the SDK sends. Then the balancer's config keys, and the exact errors of bad input.
import * as assert from "assert";
import * as crypto from "crypto";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import {
  ConfigError,
  ConfigSource,
  DEFAULTS,
  HostConfig,
  loadConfig,
  SshConfig,
  TlsConfig,
} from "../../components/config";
import { readBalancer } from "../../components/config/balancer";
import { Reader } from "../../components/config/reader";
import { balancerArgsProblem, BalancerTls, HetznerBalancer, HetznerBalancerArgs } from "../../components/host/balancer";
import { firewallRules, Host } from "../../components/host/host";
import { HetznerNetwork, networkPlan, networkZoneOf } from "../../components/host/network";
import {
  BASE_CONFIG,
  changedResources,
  FAKE_KEY,
  FAKE_PUB,
  isSecret,
  mockState,
  plain,
  ROOT,
  runProgram,
} from "../support/harness";

// eslint-disable-next-line @typescript-eslint/no-require-imports -- as in harness.ts: every registration sent
const { waitForRPCs } = require("@pulumi/pulumi/runtime/settings") as { waitForRPCs: () => Promise<void> };

interface Sent {
  readonly type: string;
  readonly name: string;
  readonly inputs: Record<string, unknown>;
}

interface Built {
  readonly sent: Sent[];
  /** Each resource's options as the SDK received them. */
  readonly options: Map<string, pulumi.CustomResourceOptions>;
  /** The resource objects by name, to compare with what options name. */
  readonly objects: Map<string, pulumi.Resource>;
  readonly outputs: Record<string, unknown>;
}

/** A resource's mocked id: a number (as hcloud's are) that follows from its name, the same in every run. */
const idOf = (name: string) =>
  (parseInt(crypto.createHash("sha256").update(name).digest("hex").slice(0, 7), 16) % 900000) + 100000;

const valueOf = <T>(o: pulumi.Output<T>) => new Promise<T>((resolve) => o.apply((v) => resolve(v)));

/** Runs `program` under mocks, as children of one root whose transformation records every option. */
async function build(program: (root: pulumi.Resource) => Record<string, pulumi.Output<unknown>>): Promise<Built> {
  const sent: Sent[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource: (a) => {
        sent.push({ type: a.type, name: a.name, inputs: a.inputs });
        const state = mockState(a.type, a.name, a.inputs);
        const addresses =
          a.type === "hcloud:index/loadBalancer:LoadBalancer" ? { ipv4: "203.0.113.80", ipv6: "2001:db8::80" } : {};
        return { id: a.custom ? String(idOf(a.name)) : undefined, state: { ...state, ...addresses } };
      },
      call: (a) => {
        throw new Error(`unexpected invoke ${a.token}`);
      },
    },
    "bluegreen",
    "dev",
    false,
  );
  const options = new Map<string, pulumi.CustomResourceOptions>();
  const objects = new Map<string, pulumi.Resource>();
  const record: pulumi.ResourceTransformation = (a) => {
    options.set(a.name, a.opts);
    objects.set(a.name, a.resource);
    return undefined;
  };
  const root = new pulumi.ComponentResource("test:index:Root", "root", {}, { transformations: [record] });
  // The host-key scan runs ssh-keyscan: the tests' own, which answers for documentation addresses at once.
  const before = process.env.PATH;
  process.env.PATH = `${path.join(ROOT, "test", "fixtures", "bin")}${path.delimiter}${before}`;
  try {
    const outputs: Record<string, unknown> = {};
    for (const [k, o] of Object.entries(program(root))) outputs[k] = await valueOf(o);
    await waitForRPCs();
    return { sent, options, objects, outputs };
  } finally {
    process.env.PATH = before;
  }
}

const SSH: SshConfig = {
  user: "root",
  port: 22,
  keyFrom: "config",
  publicKey: FAKE_PUB,
  privateKey: pulumi.secret(FAKE_KEY),
};

/**
 * A Hetzner host that names a key already in the project: several hosts that each uploaded the
 * same public key would collide on its fingerprint (uniqueness_error, docs/hosts.md).
 */
function hetzner(location: string): Extract<HostConfig, { kind: "hetzner" }> {
  return {
    kind: "hetzner",
    serverType: "cx23",
    location,
    image: "ubuntu-24.04",
    sshAllowedCidrs: ["203.0.113.7/32"],
    sshKeys: ["my-laptop"],
    protect: true,
  };
}

const HEALTH = { path: "/healthz", interval: 5, timeout: 3, retries: 3, statusCodes: ["2??"] };
/** The health check HEALTH makes: plain HTTP on 80, or HTTPS on 443 (passthrough). */
const expectedCheck = (port: 80 | 443, domain?: string) => ({
  protocol: "http",
  port,
  interval: 5,
  timeout: 3,
  retries: 3,
  http: { path: "/healthz", ...(domain ? { domain } : {}), statusCodes: ["2??"], tls: port === 443 },
});
const LABELS = { app: "bluegreen" };

interface Options {
  readonly names?: readonly string[];
  readonly locations?: readonly string[];
  readonly tls?: BalancerTls;
  readonly balancer?: Partial<HetznerBalancerArgs>;
}

/** A network, one Hetzner host per name on it (host i at the plan's address i), and a balancer in front. */
function severalHosts(o: Options = {}): Promise<Built> {
  const names = o.names ?? ["web-1", "web-2", "web-3"];
  const locations = o.locations ?? names.map((_, i) => ["fsn1", "nbg1", "hel1"][i % 3]);
  return build((root) => {
    const net = new HetznerNetwork("net", { locations }, { parent: root });
    const hosts = names.map(
      (n, i) =>
        new Host(
          n,
          {
            host: hetzner(locations[i]),
            ssh: SSH,
            arch: "amd64",
            network: { networkId: net.networkId, ip: net.hostIp(i) },
            publicHttp: false,
          },
          { parent: root },
        ),
    );
    const lb = new HetznerBalancer(
      "lb",
      {
        servers: hosts.map((h, i) => ({
          name: names[i],
          serverId: h.serverId!,
          privateIp: h.privateIp!,
          ready: [h.ready],
        })),
        location: locations[0],
        health: HEALTH,
        tls: o.tls ?? { mode: "none" },
        network: { networkId: net.networkId, ip: net.plan.balancerIp },
        ...o.balancer,
      },
      { parent: root },
    );
    return { ipv4: lb.ipv4, ipv6: lb.ipv6, privateIp: lb.privateIp };
  });
}

/** One Hetzner host as today's stacks make it: no network, the firewall open to the world on 80 and 443. */
function oneHost(): Promise<Built> {
  return build((root) => {
    const h = new Host("web-1", { host: hetzner("fsn1"), ssh: SSH, arch: "amd64" }, { parent: root });
    return { ip: h.ip };
  });
}

function sentOf(b: Built, name: string): Sent {
  const r = b.sent.find((x) => x.name === name);
  if (!r) throw new Error(`no resource ${name}; have ${b.sent.map((x) => x.name).join(", ")}`);
  return r;
}
const inputs = (b: Built, name: string) => plain(sentOf(b, name).inputs);
/** The hcloud resources a run made, as "Type name", sorted. */
const hcloudResources = (b: Built) =>
  b.sent
    .filter((x) => x.type.startsWith("hcloud:"))
    .map((x) => `${x.type.split(":").pop()} ${x.name}`)
    .sort();
/** The resources an option's dependsOn names, by name. */
function dependsOnNames(b: Built, name: string): string[] {
  const deps = b.options.get(name)?.dependsOn;
  const list = (Array.isArray(deps) ? deps : deps ? [deps] : []) as pulumi.Resource[];
  return list.map((d) => [...b.objects].find(([, r]) => r === d)?.[0] ?? "(not one of this program's)").sort();
}

describe("several Hetzner hosts behind a load balancer, under mocks", () => {
  let none: Built;
  before(async () => {
    none = await severalHosts();
  });

  describe("the private network", () => {
    it("one network and one cloud subnet in the hosts' network zone, at the plan's ranges", () => {
      assert.deepStrictEqual(inputs(none, "net-network"), { ipRange: "10.0.0.0/16", labels: LABELS });
      assert.deepStrictEqual(inputs(none, "net-subnet"), {
        networkId: idOf("net-network"),
        type: "cloud",
        networkZone: "eu-central",
        ipRange: "10.0.1.0/24",
      });
    });

    it("each server joins by its own ServerNetwork at a fixed address; a new address detaches the old first", () => {
      ["web-1", "web-2", "web-3"].forEach((n, i) => {
        assert.deepStrictEqual(inputs(none, `${n}-network`), {
          serverId: idOf(`${n}-server`),
          // The subnet's network id: the attachment waits for the subnet its address lies in.
          networkId: idOf("net-network"),
          ip: `10.0.1.${10 + i}`,
        });
        assert.strictEqual(none.options.get(`${n}-network`)?.deleteBeforeReplace, true, n);
        // A host is ready (and may become a target) only once it is attached.
        assert.deepStrictEqual(dependsOnNames(none, `${n}-ready`), [`${n}-network`, `${n}-server`]);
      });
    });

    it("the server's own inputs are those of a host without a network: joining never touches the server", async () => {
      const alone = await oneHost();
      assert.deepStrictEqual(inputs(none, "web-1-server"), inputs(alone, "web-1-server"));
      assert.ok(!alone.sent.some((x) => x.type === "hcloud:index/serverNetwork:ServerNetwork"));
      assert.deepStrictEqual(dependsOnNames(alone, "web-1-ready"), ["web-1-server"]);
      // The firewall: without a balancer SSH, 80 and 443 from anywhere, as before.
      assert.deepStrictEqual(inputs(alone, "web-1-firewall").rules, [
        { direction: "in", protocol: "tcp", port: "22", sourceIps: ["203.0.113.7/32"], description: "ssh" },
        { direction: "in", protocol: "tcp", port: "80", sourceIps: ["0.0.0.0/0", "::/0"], description: "http" },
        { direction: "in", protocol: "tcp", port: "443", sourceIps: ["0.0.0.0/0", "::/0"], description: "https" },
      ]);
    });

    it("behind the balancer the firewall opens only SSH: Cloud Firewalls do not filter the private network", () => {
      // The balancer reaches 80 and 443 over the private network, which Hetzner's Cloud Firewalls
      // leave alone (they apply to public interfaces: components/host/host.ts firewallRules).
      // So no rule for the balancer's address, and nothing public on 80 or 443.
      for (const n of ["web-1", "web-2", "web-3"])
        assert.deepStrictEqual(inputs(none, `${n}-firewall`).rules, [
          { direction: "in", protocol: "tcp", port: "22", sourceIps: ["203.0.113.7/32"], description: "ssh" },
        ]);
      assert.deepStrictEqual(firewallRules(["203.0.113.7/32"], 22), firewallRules(["203.0.113.7/32"], 22, true));
    });
  });

  describe("the balancer, TLS off", () => {
    it("makes exactly: the network and subnet, per host a firewall, server and attachment, and the balancer's four kinds", () => {
      assert.deepStrictEqual(hcloudResources(none), [
        "Firewall web-1-firewall",
        "Firewall web-2-firewall",
        "Firewall web-3-firewall",
        "LoadBalancer lb-lb",
        "LoadBalancerNetwork lb-network",
        "LoadBalancerService lb-service-80",
        "LoadBalancerTarget lb-target-web-1",
        "LoadBalancerTarget lb-target-web-2",
        "LoadBalancerTarget lb-target-web-3",
        "Network net-network",
        "NetworkSubnet net-subnet",
        "Server web-1-server",
        "Server web-2-server",
        "Server web-3-server",
        "ServerNetwork web-1-network",
        "ServerNetwork web-2-network",
        "ServerNetwork web-3-network",
      ]);
    });

    it("the balancer, in the first host's location, round robin, lb11; on the network at its own address", () => {
      assert.deepStrictEqual(inputs(none, "lb-lb"), {
        loadBalancerType: "lb11",
        location: "fsn1",
        algorithm: { type: "round_robin" },
        labels: LABELS,
      });
      assert.deepStrictEqual(inputs(none, "lb-network"), {
        loadBalancerId: idOf("lb-lb"),
        networkId: idOf("net-network"),
        ip: "10.0.1.2",
        enablePublicInterface: true,
      });
      assert.strictEqual(none.options.get("lb-network")?.deleteBeforeReplace, true);
      assert.strictEqual(none.options.get("lb-lb")?.protect, false);
      assert.deepStrictEqual(none.outputs, { ipv4: "203.0.113.80", ipv6: "2001:db8::80", privateIp: "10.0.1.2" });
    });

    it("one HTTP service 80 to 80, no proxy protocol, sticky sessions off said outright, the health check on 80", () => {
      assert.deepStrictEqual(inputs(none, "lb-service-80"), {
        loadBalancerId: String(idOf("lb-lb")),
        protocol: "http",
        listenPort: 80,
        destinationPort: 80,
        proxyprotocol: false,
        healthCheck: expectedCheck(80),
        http: { stickySessions: false },
      });
    });

    it("one server target per host over its private address, each after the balancer's network and the host's ready step", () => {
      for (const n of ["web-1", "web-2", "web-3"]) {
        assert.deepStrictEqual(inputs(none, `lb-target-${n}`), {
          type: "server",
          loadBalancerId: idOf("lb-lb"),
          serverId: idOf(`${n}-server`),
          usePrivateIp: true,
        });
        assert.deepStrictEqual(dependsOnNames(none, `lb-target-${n}`), ["lb-network", `${n}-ready`]);
      }
      // Never a label selector: its new servers could take requests before their first check.
      assert.ok(!none.sent.some((x) => x.type.endsWith("LoadBalancerTarget") && "labelSelector" in x.inputs));
    });
  });

  describe("the balancer's TLS modes", () => {
    it("passthrough: TCP 443 to 443 and TCP 80 to 80, both checked over HTTPS on 443, no certificate", async () => {
      const b = await severalHosts({
        tls: { mode: "passthrough" },
        balancer: { health: { ...HEALTH, domain: "example.com" } },
      });
      const check = expectedCheck(443, "example.com");
      const lbId = String(idOf("lb-lb"));
      assert.deepStrictEqual(inputs(b, "lb-service-443"), {
        loadBalancerId: lbId,
        protocol: "tcp",
        listenPort: 443,
        destinationPort: 443,
        proxyprotocol: false,
        healthCheck: check,
      });
      assert.deepStrictEqual(inputs(b, "lb-service-80"), {
        loadBalancerId: lbId,
        protocol: "tcp",
        listenPort: 80,
        destinationPort: 80,
        proxyprotocol: false,
        healthCheck: check,
      });
      assert.ok(!b.sent.some((x) => x.type.includes("Certificate")));
    });

    it("managed: a Hetzner managed certificate for the domains; HTTPS 443 to the hosts' HTTP 80, 80 redirected", async () => {
      const b = await severalHosts({ tls: { mode: "managed", domains: ["example.com", "www.example.com"] } });
      assert.deepStrictEqual(inputs(b, "lb-certificate"), {
        domainNames: ["example.com", "www.example.com"],
        labels: LABELS,
      });
      assert.strictEqual(sentOf(b, "lb-certificate").type, "hcloud:index/managedCertificate:ManagedCertificate");
      assert.deepStrictEqual(inputs(b, "lb-service-443"), {
        loadBalancerId: String(idOf("lb-lb")),
        protocol: "https",
        listenPort: 443,
        destinationPort: 80,
        proxyprotocol: false,
        healthCheck: expectedCheck(80),
        http: { certificates: [idOf("lb-certificate")], redirectHttp: true, stickySessions: false },
      });
      // The redirect is the balancer's own port 80: no second service may listen there.
      assert.ok(!b.sent.some((x) => x.name === "lb-service-80"));
    });

    it("uploaded: your certificate, its private key secret, as the managed one otherwise", async () => {
      const b = await severalHosts({
        tls: {
          mode: "uploaded",
          certificate: "-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n",
          privateKey: "PRIVATE",
        },
      });
      const cert = sentOf(b, "lb-certificate");
      assert.strictEqual(cert.type, "hcloud:index/uploadedCertificate:UploadedCertificate");
      assert.ok(isSecret(cert.inputs.privateKey), "the private key is sent as a secret");
      assert.deepStrictEqual(plain(cert.inputs), {
        certificate: "-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n",
        privateKey: "PRIVATE",
        labels: LABELS,
      });
      assert.deepStrictEqual(inputs(b, "lb-service-443").http, {
        certificates: [idOf("lb-certificate")],
        redirectHttp: true,
        stickySessions: false,
      });
    });

    it("sticky sessions by cookie, least connections, another type, a network zone instead of a location", async () => {
      const b = await severalHosts({
        balancer: {
          stickySessions: { cookieName: "BGSTICKY", cookieLifetime: 600 },
          algorithm: "least_connections",
          type: "lb21",
          location: undefined,
          networkZone: "eu-central",
          protect: true,
        },
      });
      assert.strictEqual(b.options.get("lb-lb")?.protect, true);
      assert.deepStrictEqual(inputs(b, "lb-lb"), {
        loadBalancerType: "lb21",
        networkZone: "eu-central",
        algorithm: { type: "least_connections" },
        labels: LABELS,
      });
      assert.deepStrictEqual(inputs(b, "lb-service-80").http, {
        stickySessions: true,
        cookieName: "BGSTICKY",
        cookieLifetime: 600,
      });
    });
  });

  describe("exact errors", () => {
    it("hosts spread over network zones are refused, naming the locations and the zones' locations", () => {
      assert.throws(() => networkZoneOf(["fsn1", "ash", "nbg1"]), {
        message:
          "bluegreen: the hosts' locations lie in 2 network zones (eu-central: fsn1, nbg1; us-east: ash), and a Hetzner network and its load balancer span one zone: put every host in fsn1/nbg1/hel1 or in ash",
      });
      assert.throws(() => networkZoneOf(["fra1"]), { message: 'bluegreen: unknown Hetzner location "fra1"' });
      assert.deepStrictEqual(
        ["fsn1", "nbg1", "hel1", "ash", "hil", "sin"].map((l) => networkZoneOf([l])),
        ["eu-central", "eu-central", "eu-central", "us-east", "us-west", "ap-southeast"],
      );
    });

    it("network ranges: private, aligned, /8 to /23; the plan's addresses", () => {
      const refused: Record<string, string> = {
        "10.0.0.0": "must be an IPv4 range such as 10.0.0.0/16",
        "10.0.300.0/16": "must be an IPv4 range such as 10.0.0.0/16",
        "10.0.0.0/24": "must be a /8 to /23 range (its second /24 is the servers' subnet)",
        "10.0.0.1/16": "must start at its range's first address (10.0.0.0/16)",
        "8.8.0.0/16": "must lie in a private range: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16",
        "172.0.0.0/8": "must lie in a private range: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16",
      };
      for (const [range, why] of Object.entries(refused))
        assert.throws(() => networkPlan(range), {
          message: `bluegreen: network range ${JSON.stringify(range)} ${why}`,
        });
      const p = networkPlan("172.20.0.0/16");
      assert.deepStrictEqual(
        [p.subnet, p.balancerIp, p.hostIp(0), p.hostIp(244)],
        ["172.20.1.0/24", "172.20.1.2", "172.20.1.10", "172.20.1.254"],
      );
      assert.throws(() => p.hostIp(245), { message: "bluegreen: host index 245 has no private address (0 to 244)" });
    });

    it("the balancer's args", () => {
      const ok: HetznerBalancerArgs = {
        servers: [
          { name: "a", serverId: 1, privateIp: "10.0.1.10" },
          { name: "b", serverId: 2, privateIp: "10.0.1.11" },
        ],
        location: "fsn1",
        health: HEALTH,
        tls: { mode: "none" },
        network: { networkId: 1, ip: "10.0.1.2" },
      };
      assert.strictEqual(balancerArgsProblem(ok), undefined);
      const cases: [Partial<HetznerBalancerArgs>, string][] = [
        [{ servers: [] }, "a balancer needs at least one server"],
        [{ servers: [ok.servers[0], { ...ok.servers[1], name: "a" }] }, "server names must be unique (got a, a)"],
        [
          { network: { networkId: 1, ip: "10.0.1.10" } },
          "private addresses must be unique (servers 10.0.1.10, 10.0.1.11, balancer 10.0.1.10)",
        ],
        [{ networkZone: "eu-central" }, "give the balancer a location or a networkZone, one of the two"],
        [{ location: undefined }, "give the balancer a location or a networkZone, one of the two"],
        [{ health: { ...HEALTH, timeout: 5 } }, "the health check's timeout must be less than its interval"],
        [{ health: { ...HEALTH, retries: 6 } }, "the health check's retries must be 1 to 5"],
        [{ health: { ...HEALTH, statusCodes: [] } }, "the health check needs status codes that pass"],
        [{ tls: { mode: "managed", domains: [] } }, "a managed certificate needs domains"],
        [
          { tls: { mode: "passthrough" }, stickySessions: { cookieName: "X" } },
          "sticky sessions need the balancer to see HTTP, and passthrough keeps it encrypted",
        ],
      ];
      for (const [change, problem] of cases) assert.strictEqual(balancerArgsProblem({ ...ok, ...change }), problem);
    });

    it("the component refuses them before it makes anything", async () => {
      await assert.rejects(
        severalHosts({ tls: { mode: "passthrough" }, balancer: { stickySessions: { cookieName: "X" } } }),
        {
          message:
            "bluegreen: balancer lb: sticky sessions need the balancer to see HTTP, and passthrough keeps it encrypted",
        },
      );
      await assert.rejects(severalHosts({ locations: ["fsn1", "hil"], names: ["a", "b"] }), {
        message:
          "bluegreen: the hosts' locations lie in 2 network zones (eu-central: fsn1; us-west: hil), and a Hetzner network and its load balancer span one zone: put every host in fsn1/nbg1/hel1 or in hil",
      });
    });
  });
});

/** A ConfigSource over a plain map (keys without a namespace are bluegreen:). */
function source(config: Record<string, unknown>): ConfigSource {
  const values = new Map<string, string>();
  for (const [k, v] of Object.entries(config))
    if (v !== undefined)
      values.set(k.includes(":") ? k : `bluegreen:${k}`, typeof v === "string" ? v : JSON.stringify(v));
  return { get: (k, ns = "bluegreen") => values.get(`${ns}:${k}`), keys: () => [...values.keys()] };
}

const problemsOf = (config: Record<string, unknown>): string[] => {
  try {
    loadConfig(source({ ...BASE_CONFIG, ...config }), ROOT, {});
    return [];
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems;
  }
};

const ACME: TlsConfig = {
  mode: "acme",
  email: "ops@example.com",
  directory: "https://acme-v02.api.letsencrypt.org/directory",
  challenge: "http-01",
  dnsResolvers: [],
  dnsPropagationCheck: true,
  hstsMaxAge: 0,
};
const FILES: TlsConfig = { mode: "files", certificate: "PEM", privateKey: pulumi.secret("KEY"), hstsMaxAge: 0 };

/** readBalancer for several hosts, as the lead's loadConfig will call it: its config and problems. */
function several(config: Record<string, unknown>, hosts: readonly HostConfig[], tls: TlsConfig) {
  const r = new Reader(source(config), ROOT, {});
  const balancer = readBalancer(r, { hosts, tls });
  return { balancer, problems: r.problems };
}

describe("the balancer's config keys", () => {
  it("one host: the defaults, checked and unused (no balancer)", () => {
    assert.deepStrictEqual(loadConfig(source(BASE_CONFIG), ROOT, {}).balancer, {
      enabled: false,
      type: "lb11",
      algorithm: "round_robin",
      health: { interval: 5, timeout: 3, retries: 3 },
      tlsAt: "host",
      tlsMode: "none",
      stickyCookie: undefined,
      network: { ipRange: "10.0.0.0/16", subnet: "10.0.1.0/24", balancerIp: "10.0.1.2" },
      networkZone: undefined,
    });
    const defaults = Object.fromEntries(
      Object.entries(DEFAULTS).filter(([k]) => k.startsWith("loadBalancer") || k === "networkIpRange"),
    );
    assert.deepStrictEqual(defaults, {
      loadBalancerType: "lb11",
      loadBalancerAlgorithm: "round_robin",
      loadBalancerHealthInterval: 5,
      loadBalancerHealthTimeout: 3,
      loadBalancerHealthRetries: 3,
      loadBalancerTls: "host",
      loadBalancerStickyCookie: "",
      networkIpRange: "10.0.0.0/16",
    });
  });

  it("one host: a balancer key changes no resource of today's stack", async () => {
    const before = await runProgram(BASE_CONFIG);
    const after = await runProgram({
      ...BASE_CONFIG,
      loadBalancerType: "lb21",
      loadBalancerHealthInterval: 10,
      loadBalancerTls: "balancer",
      loadBalancerStickyCookie: "BG",
      networkIpRange: "172.20.0.0/16",
    });
    assert.deepStrictEqual(changedResources(before, after), []);
  });

  it("each key's own rule, with one host too, each naming the key and what it allows", () => {
    assert.deepStrictEqual(
      problemsOf({
        loadBalancerType: "big",
        loadBalancerAlgorithm: "random",
        loadBalancerHealthInterval: 2,
        loadBalancerHealthTimeout: 0,
        loadBalancerHealthRetries: 6,
        loadBalancerTls: "edge",
        loadBalancerStickyCookie: "bad cookie",
        networkIpRange: "8.8.0.0/16",
      }),
      [
        'bluegreen:loadBalancerHealthInterval must be a whole number from 3 to 60 (got "2")',
        'bluegreen:loadBalancerHealthTimeout must be a whole number from 1 to 59 (got "0")',
        'bluegreen:loadBalancerTls must be one of host, balancer (got "edge")',
        'bluegreen:loadBalancerStickyCookie must be a cookie name of 1 to 64 letters, digits, _ and - (got "bad cookie")',
        'bluegreen:loadBalancerType must be a Hetzner load balancer type such as lb11, lb21 or lb31 (got "big")',
        'bluegreen:loadBalancerAlgorithm must be one of round_robin, least_connections (got "random")',
        'bluegreen:loadBalancerHealthRetries must be a whole number from 1 to 5 (got "6")',
        'bluegreen:networkIpRange must lie in a private range: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 (got "8.8.0.0/16")',
      ],
    );
    assert.deepStrictEqual(problemsOf({ loadBalancerHealthInterval: 5, loadBalancerHealthTimeout: 5 }), [
      "bluegreen:loadBalancerHealthTimeout (5) must be less than bluegreen:loadBalancerHealthInterval (5): a check must end before the next one starts",
    ]);
    assert.deepStrictEqual(problemsOf({ networkIpRange: "10.0.0.0/24" }), [
      `bluegreen:networkIpRange must be a /8 to /23 range (its second /24 is the servers' subnet) (got "10.0.0.0/24")`,
    ]);
  });

  describe("several Hetzner hosts", () => {
    const two = [hetzner("fsn1"), hetzner("nbg1")];

    it("tls acme over HTTP-01 with TLS on the hosts is refused: the challenge can land on any host", () => {
      assert.deepStrictEqual(several({}, two, ACME).problems, [
        'bluegreen:acmeChallenge "http-01" cannot work with 2 hosts behind the balancer: the CA\'s request can land on any host, not the one that asked; ' +
          "use acmeChallenge dns-01 (each host gets the certificate), or loadBalancerTls balancer (a Hetzner managed certificate; the domains must be in Hetzner DNS)",
      ]);
      // One host: HTTP-01 works as it does today.
      assert.deepStrictEqual(several({}, [two[0]], ACME).problems, []);
    });

    it("where TLS ends decides the balancer's mode", () => {
      const mode = (config: Record<string, unknown>, tls: TlsConfig) => {
        const { balancer, problems } = several(config, two, tls);
        assert.deepStrictEqual(problems, []);
        return [balancer.enabled, balancer.tlsMode, balancer.networkZone];
      };
      assert.deepStrictEqual(mode({}, { mode: "off" }), [true, "none", "eu-central"]);
      assert.deepStrictEqual(mode({}, { ...ACME, challenge: "dns-01", dnsProvider: "hetzner" }), [
        true,
        "passthrough",
        "eu-central",
      ]);
      assert.deepStrictEqual(mode({ loadBalancerTls: "balancer" }, ACME), [true, "managed", "eu-central"]);
      assert.deepStrictEqual(mode({ loadBalancerTls: "balancer" }, FILES), [true, "uploaded", "eu-central"]);
      assert.deepStrictEqual(mode({}, FILES), [true, "passthrough", "eu-central"]);
    });

    it("keys that would do nothing are refused: TLS at the balancer with tls off, a cookie through passthrough", () => {
      assert.deepStrictEqual(several({ loadBalancerTls: "balancer" }, two, { mode: "off" }).problems, [
        'bluegreen:loadBalancerTls is "balancer" but bluegreen:tls is "off"; it would be ignored',
      ]);
      assert.deepStrictEqual(several({ loadBalancerStickyCookie: "BG" }, two, FILES).problems, [
        'bluegreen:loadBalancerStickyCookie needs the balancer to see HTTP, but with bluegreen:loadBalancerTls "host" it passes TLS through unread: ' +
          "set loadBalancerTls balancer, or remove the cookie: pulumi config rm loadBalancerStickyCookie",
      ]);
      assert.deepStrictEqual(
        several({ loadBalancerStickyCookie: "BG", loadBalancerTls: "balancer" }, two, FILES).problems,
        [],
      );
      assert.strictEqual(several({ loadBalancerStickyCookie: "BG" }, two, { mode: "off" }).balancer.stickyCookie, "BG");
    });

    it("hosts in two network zones are refused, naming the locations", () => {
      assert.deepStrictEqual(several({}, [hetzner("fsn1"), hetzner("ash")], { mode: "off" }).problems, [
        "bluegreen:hetznerLocation: the hosts' locations lie in 2 network zones (eu-central: fsn1; us-east: ash), and a Hetzner network and its load balancer span one zone: put every host in fsn1/nbg1/hel1 or in ash",
      ]);
    });

    it("hosts that are not all Hetzner servers get no balancer, and a balancer key set for them is refused", () => {
      const ssh: HostConfig = { kind: "ssh", address: "203.0.113.10" };
      const { balancer, problems } = several({}, [ssh, ssh], { mode: "off" });
      assert.deepStrictEqual([balancer.enabled, balancer.networkZone, problems], [false, undefined, []]);
      assert.deepStrictEqual(several({ loadBalancerType: "lb21" }, [hetzner("fsn1"), ssh], { mode: "off" }).problems, [
        "bluegreen:loadBalancerType is set, but a Hetzner load balancer fronts Hetzner servers only and not every host is one; it would be ignored",
      ]);
    });
  });
});
