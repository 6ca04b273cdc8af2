import * as crypto from "crypto";
import * as command from "@pulumi/command";
import * as hcloud from "@pulumi/hcloud";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { Arch, HostConfig, SshConfig } from "../config/config";
import { renderCloudInit } from "./installer";
import { loadScript, shellQuote } from "./shell";
import { stdinScript } from "./tools";

type Connection = command.types.input.remote.ConnectionArgs;

export interface HostArgs {
  /** Which machine to use: a new Hetzner server, a local multipass VM, or an existing SSH host. */
  readonly host: HostConfig;
  /** How to log in; the private key stays secret. */
  readonly ssh: SshConfig;
  /** CPU architecture the artifacts are built for; checked on the host before anything else runs. */
  readonly arch: Arch;
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
}

/** Hetzner firewall: SSH (on sshPort) from the allowed CIDRs, HTTP and HTTPS from anywhere, nothing else. */
export function firewallRules(sshAllowedCidrs: readonly string[], sshPort: number): hcloud.types.input.FirewallRule[] {
  const anywhere = ["0.0.0.0/0", "::/0"];
  return [
    { direction: "in", protocol: "tcp", port: String(sshPort), sourceIps: [...sshAllowedCidrs], description: "ssh" },
    { direction: "in", protocol: "tcp", port: "80", sourceIps: anywhere, description: "http" },
    { direction: "in", protocol: "tcp", port: "443", sourceIps: anywhere, description: "https" },
  ];
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
    // rotate the login key on the host itself (see docs/hosts.md).
    ignoreChanges: ["sshKeys"],
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

/** The VM's first IPv4 address from `multipass info NAME --format json`. */
export function parseMultipassIp(infoJson: string, name: string): string {
  const parsed = JSON.parse(infoJson) as { info?: Record<string, { ipv4?: unknown[] } | undefined> } | null;
  const ip = parsed?.info?.[name]?.ipv4?.[0];
  if (typeof ip !== "string") throw new Error(`multipass reports no IPv4 address for ${name}: ${infoJson}`);
  return ip;
}

/**
 * A machine bluegreen can reach over SSH. Every kind ends the same way: a
 * connection, and a `ready` command (SSH up, cloud-init done, architecture
 * checked) that every later step depends on.
 */
export class Host extends pulumi.ComponentResource implements HostConnection {
  public readonly connection: pulumi.Output<Connection>;
  public readonly ip: pulumi.Output<string>;
  /** Non-root users run host steps through `sudo -n`. */
  public readonly sudo: boolean;
  public readonly ready: command.remote.Command;
  public readonly arch: Arch;
  public readonly login: { readonly user: string; readonly port: number };

  constructor(name: string, args: HostArgs, opts?: pulumi.ComponentResourceOptions) {
    super("bluegreen:index:Host", name, {}, opts);
    const self = { parent: this };
    const { host, ssh } = args;
    this.arch = args.arch;
    this.login = { user: ssh.user, port: ssh.port };

    let ip: pulumi.Output<string>;
    let machine: pulumi.Resource | undefined;
    switch (host.kind) {
      case "hetzner": {
        const suffix = new random.RandomId(`${name}-suffix`, { byteLength: 3 }, self);
        // Fingerprints are unique per Hetzner project: a key that is already there
        // (uploaded in the console, or by another stack) is named, not uploaded again.
        const uploadKey = (publicKey: string) =>
          new hcloud.SshKey(
            `${name}-key`,
            { name: suffix.hex.apply((hex) => hetznerKeyName(hex, publicKey)), publicKey },
            self,
          ).id;
        const sshKeys: pulumi.Input<string>[] = host.sshKeys.length ? [...host.sshKeys] : [uploadKey(ssh.publicKey!)];
        const firewall = new hcloud.Firewall(
          `${name}-firewall`,
          { name: pulumi.interpolate`bluegreen-${suffix.hex}`, rules: firewallRules(host.sshAllowedCidrs, ssh.port) },
          self,
        );
        const server = new hcloud.Server(
          `${name}-server`,
          {
            name: pulumi.interpolate`bluegreen-${suffix.hex}`,
            serverType: host.serverType,
            image: host.image,
            location: host.location,
            sshKeys,
            firewallIds: [firewall.id.apply(Number)],
            publicNets: [{ ipv4Enabled: true, ipv6Enabled: true }],
            labels: { app: "bluegreen" },
          },
          { ...self, ...hetznerServerOptions(host.protect) },
        );
        ip = server.ipv4Address;
        machine = server;
        break;
      }
      case "multipass": {
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
        ip = vm.stdout.apply((out) => parseMultipassIp(out, host.name));
        machine = vm;
        break;
      }
      case "ssh":
        ip = pulumi.output(host.address);
        break;
      case "stack":
        // Another app's stack made the host (hetzner or multipass); this app attaches to it.
        ip = new pulumi.StackReference(`${name}-stack`, { name: host.stack }, self).requireOutput(
          "ip",
        ) as pulumi.Output<string>;
        break;
    }
    this.ip = ip;
    this.sudo = ssh.user !== "root";
    this.connection = pulumi.output({
      host: ip,
      port: ssh.port,
      user: ssh.user,
      ...(ssh.privateKey ? { privateKey: ssh.privateKey } : {}),
      ...(ssh.privateKeyPassword ? { privateKeyPassword: ssh.privateKeyPassword } : {}),
      ...(ssh.hostKey ? { hostKey: ssh.hostKey } : {}),
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
      { ...self, dependsOn: machine ? [machine] : [], customTimeouts: { create: "15m", update: "15m" } },
    );

    this.registerOutputs({ ip: this.ip });
  }
}
