import * as crypto from "crypto";
import * as command from "@pulumi/command";
import * as hcloud from "@pulumi/hcloud";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { Arch, HostConfig, SshConfig } from "../config/config";
import { hostKeyFromSeed, hostKeyLine, verifyHostKey } from "./hostKeys";
import { renderCloudInit, renderHostKeyUserData } from "./installer";
import { loadScript, shellQuote } from "./shell";
import { stdinScript } from "./tools";

type Connection = command.types.input.remote.ConnectionArgs;
type HetznerHost = Extract<HostConfig, { kind: "hetzner" }>;
type MultipassHost = Extract<HostConfig, { kind: "multipass" }>;

export interface HostArgs {
  /** Which machine to use: a new Hetzner server, a local multipass VM, or an existing SSH host. */
  readonly host: HostConfig;
  /** How to log in; the private key stays secret. */
  readonly ssh: SshConfig;
  /** CPU architecture the artifacts are built for; checked on the host before anything else runs. */
  readonly arch: Arch;
  /**
   * hostKind hetzner only: attach the server to this private network at this fixed address
   * (several hosts behind a balancer, components/host/network.ts). Unset: no attachment, and
   * every input of the server stays as it was.
   */
  readonly network?: HostNetwork;
  /**
   * hostKind hetzner: whether the firewall opens 80 and 443 to the world (default true). false
   * behind a balancer, which reaches the server over the private network (firewallRules).
   */
  readonly publicHttp?: boolean;
  /**
   * hostKind hetzner: SSH keys already in the project to put on the server, instead of uploading
   * sshPublicKey (Hetzner refuses a second key with the same fingerprint: several servers of one
   * stack share the first one's upload, Host.sshKeyIds).
   */
  readonly sshKeyIds?: readonly pulumi.Input<string>[];
}

/** Where a Hetzner server joins a private network. */
export interface HostNetwork {
  /** The network's id (HetznerNetwork.networkId, which waits for its subnet). */
  readonly networkId: pulumi.Input<number>;
  /** The server's fixed private address in the subnet (HetznerNetwork.hostIp). */
  readonly ip: string;
}

/**
 * What an app needs of the machine it runs on. A `Host` is one; so is any object with these
 * fields, e.g. for a machine another program made.
 */
export interface HostConnection {
  /** How every host step logs in (the private key stays secret). */
  readonly connection: pulumi.Input<Connection>;
  /** The address the public reaches, and the one an artifact upload follows (a new address uploads again). */
  readonly ip: pulumi.Input<string>;
  /** Run host steps through `sudo -n` (a non-root SSH user). */
  readonly sudo: boolean;
  /** CPU architecture the artifacts are built for. */
  readonly arch: Arch;
  /** The step after which the host answers; an app's first step waits for it. */
  readonly ready?: pulumi.Resource;
  /** The login, for the ssh commands an app exports. */
  readonly login: { readonly user: string; readonly port: number };
  /** The host's SSH key that every step pins (`type base64`); exported for the release CLI and attached stacks. */
  readonly hostKey?: pulumi.Input<string>;
}

/**
 * Hetzner firewall: SSH (on sshPort) from the allowed CIDRs, HTTP and HTTPS from anywhere
 * (publicHttp, the default), nothing else. Behind a load balancer (publicHttp false) only SSH is
 * open: the balancer reaches the server over the private network, which Cloud Firewalls do not
 * filter. Hetzner's firewall FAQ, "Can Firewalls secure traffic to my private Hetzner Cloud
 * Networks?" (docs.hetzner.com/cloud/firewalls/faq): no, they apply to the public interfaces
 * only ("We might later add the ability to secure private Cloud Networks", as quoted in
 * vitobotta/hetzner-k3s discussion #779). The Hetzner docs were read only through search
 * excerpts and a real network was not available here: see docs/hosts.md.
 */
export function firewallRules(
  sshAllowedCidrs: readonly string[],
  sshPort: number,
  publicHttp = true,
): hcloud.types.input.FirewallRule[] {
  const anywhere = ["0.0.0.0/0", "::/0"];
  const ssh: hcloud.types.input.FirewallRule = {
    direction: "in",
    protocol: "tcp",
    port: String(sshPort),
    sourceIps: [...sshAllowedCidrs],
    description: "ssh",
  };
  if (!publicHttp) return [ssh];
  return [
    ssh,
    { direction: "in", protocol: "tcp", port: "80", sourceIps: anywhere, description: "http" },
    { direction: "in", protocol: "tcp", port: "443", sourceIps: anywhere, description: "https" },
  ];
}

/**
 * Resource options of a server's network attachment (exported for tests: mocks do not see
 * options). A server joins a network once, and server_id, network_id and ip are RequiresReplace
 * (terraform-provider-hcloud internal/server/resource_network.go): a new address must detach
 * the old attachment before the new one can attach.
 */
export function serverNetworkOptions(parent: pulumi.Resource): pulumi.CustomResourceOptions {
  return { parent, deleteBeforeReplace: true };
}

/**
 * Name of the uploaded Hetzner SSH key. Names are unique per project and a new
 * public key replaces the key (public_key is RequiresReplace), new one first:
 * a name that follows the key keeps the two from colliding.
 */
export function hetznerKeyName(suffixHex: string, publicKey: string): string {
  return `bluegreen-${suffixHex}-${crypto.createHash("sha256").update(publicKey).digest("hex").slice(0, 8)}`;
}

/**
 * Resource options of the Hetzner server (exported for tests: mocks do not see options).
 * terraform-provider-hcloud marks image, location, user_data and ssh_keys ForceNew, so
 * any change to them would replace the server and lose everything on it.
 */
export function hetznerServerOptions(protect: boolean): pulumi.CustomResourceOptions {
  return {
    // Hetzner puts SSH keys on a server only when it is created. Ignoring later changes
    // keeps a key rotation (or a new hetznerSshKeys list) from replacing the server:
    // rotate the login key on the host itself (see docs/hosts.md). The same for the user
    // data (the host key): a server made before it had any keeps running, not replaced.
    ignoreChanges: ["sshKeys", "userData"],
    // Server names are unique per project: a replacement must delete the old server
    // before the new one takes its name.
    deleteBeforeReplace: true,
    // On by default (hetznerProtect): a replacement (hetznerImage, hetznerLocation) or a
    // destroy then fails loudly instead of deleting the server and its data directory.
    protect,
  };
}

/**
 * Resource options of the multipass VM command. The VM's name appears in `delete`
 * only, so a new multipassName is a replacement whose delete purges the old VM;
 * the old one goes first, so a replacement can never purge a VM it just reused.
 */
export function multipassVmOptions(): pulumi.CustomResourceOptions {
  return { replaceOnChanges: ["delete"], deleteBeforeReplace: true };
}

/** The VM's first IPv4 address from `multipass info NAME --format json`, and its host key from the line after it. */
export function parseMultipassOutput(out: string, name: string): { ip: string; hostKey: string } {
  const text = out.trimEnd();
  const cut = text.lastIndexOf("\n");
  const infoJson = cut < 0 ? text : text.slice(0, cut);
  const parsed = JSON.parse(infoJson) as { info?: Record<string, { ipv4?: unknown[] } | undefined> } | null;
  const ip = parsed?.info?.[name]?.ipv4?.[0];
  if (typeof ip !== "string") throw new Error(`multipass reports no IPv4 address for ${name}: ${infoJson}`);
  return { ip, hostKey: hostKeyLine(cut < 0 ? "" : text.slice(cut + 1), `the SSH host key of multipass VM ${name}`) };
}

/** A machine as its kind makes it: where it answers, the resource steps wait for, and its host key. */
interface Machine {
  readonly ip: pulumi.Output<string>;
  readonly resource?: pulumi.Resource;
  /** A Hetzner server's attachment to a private network, which `ready` waits for too. */
  readonly attachment?: hcloud.ServerNetwork;
  /** A Hetzner server's id, as a balancer target takes it. */
  readonly serverId?: pulumi.Output<number>;
  /** The SSH keys a Hetzner server was given (its sshKeys input). */
  readonly sshKeyIds?: readonly pulumi.Input<string>[];
  /** known: the program has the host's key; scan: read it from the host, as this key if one is pinned (else first use). */
  readonly hostKey: { readonly known: pulumi.Output<string> } | { readonly pinned: pulumi.Output<string> };
}

type Self = { parent: pulumi.Resource };

function hetznerMachine(
  name: string,
  host: HetznerHost,
  ssh: SshConfig,
  self: Self,
  placement: Pick<HostArgs, "network" | "publicHttp" | "sshKeyIds">,
): Machine {
  const suffix = new random.RandomId(`${name}-suffix`, { byteLength: 3 }, self);
  // Fingerprints are unique per Hetzner project: a key that is already there
  // (uploaded in the console, or by another stack) is named, not uploaded again.
  const uploadKey = (publicKey: string) =>
    new hcloud.SshKey(
      `${name}-key`,
      { name: suffix.hex.apply((hex) => hetznerKeyName(hex, publicKey)), publicKey },
      self,
    ).id;
  const sshKeys: pulumi.Input<string>[] = placement.sshKeyIds
    ? [...placement.sshKeyIds]
    : host.sshKeys.length
      ? [...host.sshKeys]
      : [uploadKey(ssh.publicKey!)];
  const firewall = new hcloud.Firewall(
    `${name}-firewall`,
    {
      name: pulumi.interpolate`bluegreen-${suffix.hex}`,
      rules: firewallRules(host.sshAllowedCidrs, ssh.port, placement.publicHttp ?? true),
    },
    self,
  );
  // The server's host key, made here from a secret seed and given to cloud-init.
  const seed = new random.RandomBytes(`${name}-hostkey-seed`, { length: 32 }, self);
  const hostKeyPair = seed.base64.apply((b) => hostKeyFromSeed(Buffer.from(b, "base64")));
  const server = new hcloud.Server(
    `${name}-server`,
    {
      name: pulumi.interpolate`bluegreen-${suffix.hex}`,
      serverType: host.serverType,
      image: host.image,
      location: host.location,
      sshKeys,
      userData: pulumi.secret(hostKeyPair.apply(renderHostKeyUserData)),
      firewallIds: [firewall.id.apply(Number)],
      publicNets: [{ ipv4Enabled: true, ipv6Enabled: true }],
      labels: { app: "bluegreen" },
    },
    { ...self, ...hetznerServerOptions(host.protect) },
  );
  // The provider keeps a hash of the user data (terraform-provider-hcloud StateFunc
  // userDataHashSum). A server made before bluegreen gave servers their keys has none
  // (userData is ignored, never a replacement): its key is recorded on first use.
  // Neither the public key nor whether the server has user data is a secret: unsecret, so the
  // scan's command stays readable in a preview.
  const pinned = pulumi.unsecret(
    pulumi
      .all([server.userData, hostKeyPair.apply((p) => p.publicKey)])
      .apply(([userData, publicKey]) => (userData ? publicKey : "")),
  );
  // A separate ServerNetwork, not the server's own `networks` input. Neither replaces the server
  // (terraform-provider-hcloud internal/server/resource.go: `network` is not ForceNew, and
  // resourceServerUpdate attaches it in place), but `networks` is one more input of the server,
  // an update of it on every stack that gains a network, and it has needed a workaround for a
  // diff that never settles (pulumi-hcloud provider/resources.go, terraform-provider-hcloud#650).
  // This resource leaves the server's inputs as they are.
  const serverId = server.id.apply(Number);
  const attachment =
    placement.network &&
    new hcloud.ServerNetwork(
      `${name}-network`,
      { serverId, networkId: placement.network.networkId, ip: placement.network.ip },
      serverNetworkOptions(self.parent),
    );
  return { ip: server.ipv4Address, resource: server, attachment, serverId, sshKeyIds: sshKeys, hostKey: { pinned } };
}

function multipassMachine(name: string, host: MultipassHost, ssh: SshConfig, self: Self): Machine {
  const vm = new command.local.Command(
    `${name}-vm`,
    {
      create: stdinScript(
        "local-multipass-launch.sh",
        {
          NAME: host.name,
          CPUS: host.cpus,
          MEMORY: host.memory,
          DISK: host.disk,
          IMAGE: host.image,
          CLOUD_INIT: renderCloudInit(ssh.publicKey!),
        },
        false,
      ),
      stdin: loadScript("local-multipass-launch.sh"),
      // Keep this text as it is: a change to it replaces the VM (multipassVmOptions).
      delete: `multipass delete --purge ${shellQuote(host.name)}`,
      logging: "stderr",
      addPreviousOutputInEnv: false,
    },
    { ...self, ...multipassVmOptions() },
  );
  const out = vm.stdout.apply((o) => parseMultipassOutput(o, host.name));
  return { ip: out.ip, resource: vm, hostKey: { known: out.hostKey } };
}

/**
 * The host's key read once, where pulumi runs (local-host-key-scan.sh): the pinned key, once the
 * host shows it, or else whatever it shows first. The state keeps it; a new address reads again.
 */
function scanHostKey(
  name: string,
  m: Machine & { hostKey: { pinned: pulumi.Output<string> } },
  port: number,
  self: Self,
) {
  const scan = new command.local.Command(
    `${name}-ssh-hostkey`,
    {
      create: pulumi
        .all([m.ip, m.hostKey.pinned])
        .apply(([ip, pinned]) =>
          stdinScript(
            "local-host-key-scan.sh",
            { HOST: ip, PORT: port, WAIT_SECONDS: HOST_BOOT_SECONDS, PINNED: pinned || undefined },
            false,
          ),
        ),
      stdin: loadScript("local-host-key-scan.sh"),
      logging: "stderr",
      addPreviousOutputInEnv: false,
    },
    { ...self, dependsOn: m.resource ? [m.resource] : [] },
  );
  // stdout is always set once the command ran; only a test's mocks may leave it out: then no key.
  return scan.stdout.apply((o) => (o === undefined ? "" : hostKeyLine(o, `${name}-ssh-hostkey's output`)));
}

/** How long a new server may take to answer SSH (the ready step's dial limit is about as long). */
const HOST_BOOT_SECONDS = 720;

/**
 * A machine bluegreen can reach over SSH. Every kind ends the same way: a
 * connection that pins the host's key, and a `ready` command (SSH up, cloud-init
 * done, architecture checked) that every later step depends on.
 */
export class Host extends pulumi.ComponentResource implements HostConnection {
  public readonly connection: pulumi.Output<Connection>;
  public readonly ip: pulumi.Output<string>;
  /** The host's SSH key (`type base64`) every step pins. */
  public readonly hostKey: pulumi.Output<string>;
  /** Non-root users run host steps through `sudo -n`. */
  public readonly sudo: boolean;
  public readonly ready: command.remote.Command;
  public readonly arch: Arch;
  public readonly login: { readonly user: string; readonly port: number };
  /** The server's fixed private address, when it joined a network (HostArgs.network). */
  public readonly privateIp?: string;
  /** A Hetzner server's id (a balancer target's serverId); undefined for other kinds. */
  public readonly serverId?: pulumi.Output<number>;
  /** The SSH keys a Hetzner server was given: another server of the same stack takes them (HostArgs.sshKeyIds). */
  public readonly sshKeyIds?: readonly pulumi.Input<string>[];

  constructor(name: string, args: HostArgs, opts?: pulumi.ComponentResourceOptions) {
    super("bluegreen:index:Host", name, {}, opts);
    const self = { parent: this };
    const { host, ssh } = args;
    this.arch = args.arch;
    this.login = { user: ssh.user, port: ssh.port };

    if (args.network && host.kind !== "hetzner")
      throw new Error(`bluegreen: host ${name} is ${host.kind}; only a Hetzner server joins a private network`);
    this.privateIp = args.network?.ip;
    let m: Machine;
    switch (host.kind) {
      case "hetzner":
        m = hetznerMachine(name, host, ssh, self, args);
        break;
      case "multipass":
        m = multipassMachine(name, host, ssh, self);
        break;
      case "ssh":
        m = { ip: pulumi.output(host.address), hostKey: { pinned: pulumi.output("") } };
        break;
      case "stack": {
        // Another app's stack made the host (hetzner or multipass); this app attaches to it,
        // pinning the key that stack knows (a stack from before host keys has none: first use).
        const other = new pulumi.StackReference(`${name}-stack`, { name: host.stack }, self);
        m = {
          ip: other.requireOutput("ip") as pulumi.Output<string>,
          hostKey: { pinned: other.getOutput("hostKey").apply((k) => (typeof k === "string" ? k : "")) },
        };
        break;
      }
    }
    this.ip = m.ip;
    this.serverId = m.serverId;
    this.sshKeyIds = m.sshKeyIds;
    this.sudo = ssh.user !== "root";
    const known = ssh.hostKey
      ? pulumi.output(ssh.hostKey)
      : "known" in m.hostKey
        ? m.hostKey.known
        : scanHostKey(name, { ...m, hostKey: m.hostKey }, ssh.port, self);
    // Every `up` asks the host for its key first: a changed key stops the run with what to do,
    // before any step (the provider alone would say only "ssh: host key mismatch").
    this.hostKey = pulumi.all([m.ip, known]).apply(async ([ip, key]) => {
      if (key && !pulumi.runtime.isDryRun()) await verifyHostKey(ip, ssh.port, key);
      return key;
    });
    this.connection = pulumi.output({
      host: m.ip,
      port: ssh.port,
      user: ssh.user,
      ...(ssh.privateKey ? { privateKey: ssh.privateKey } : {}),
      ...(ssh.privateKeyPassword ? { privateKeyPassword: ssh.privateKeyPassword } : {}),
      hostKey: this.hostKey.apply((k) => k || undefined),
      dialErrorLimit: 30,
      perDialTimeout: 15,
    });

    // A new server takes a minute or two to answer SSH: retry for about 12 minutes.
    this.ready = new command.remote.Command(
      `${name}-ready`,
      {
        connection: this.connection.apply((c) => ({ ...c, dialErrorLimit: 150 })),
        create: stdinScript("wait-ready.sh", { EXPECTED_ARCH: args.arch }, this.sudo),
        stdin: loadScript("wait-ready.sh"),
        addPreviousOutputInEnv: false,
      },
      {
        ...self,
        dependsOn: [m.resource, m.attachment].filter((r): r is pulumi.Resource => r !== undefined),
        customTimeouts: { create: "15m", update: "15m" },
      },
    );

    this.registerOutputs({ ip: this.ip, hostKey: this.hostKey });
  }
}
