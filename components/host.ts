import * as command from "@pulumi/command";
import * as hcloud from "@pulumi/hcloud";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { Arch, HostConfig, SshConfig } from "./config";
import { renderCloudInit } from "./render";
import { loadScript, shellQuote, stdinScriptCommand } from "./shell";

type Connection = command.types.input.remote.ConnectionArgs;

export interface HostArgs {
    /** Which machine to use: a new Hetzner server, a local multipass VM, or an existing SSH host. */
    readonly host: HostConfig;
    /** How to log in; the private key stays secret. */
    readonly ssh: SshConfig;
    /** CPU architecture the artifacts are built for; checked on the host before anything else runs. */
    readonly arch: Arch;
}

/** Hetzner firewall: SSH from the allowed CIDRs, HTTP and HTTPS from anywhere, nothing else. */
export function firewallRules(sshAllowedCidrs: readonly string[]): hcloud.types.input.FirewallRule[] {
    const anywhere = ["0.0.0.0/0", "::/0"];
    return [
        { direction: "in", protocol: "tcp", port: "22", sourceIps: [...sshAllowedCidrs], description: "ssh" },
        { direction: "in", protocol: "tcp", port: "80", sourceIps: anywhere, description: "http" },
        { direction: "in", protocol: "tcp", port: "443", sourceIps: anywhere, description: "https" },
    ];
}

/** The VM's first IPv4 address from `multipass info NAME --format json`. */
export function parseMultipassIp(infoJson: string, name: string): string {
    const info = JSON.parse(infoJson)?.info?.[name];
    const ip = info?.ipv4?.[0];
    if (typeof ip !== "string") throw new Error(`multipass reports no IPv4 address for ${name}: ${infoJson}`);
    return ip;
}

/**
 * A machine bluegreen can reach over SSH. Every kind ends the same way: a
 * connection, and a `ready` command (SSH up, cloud-init done, architecture
 * checked) that every later step depends on.
 */
export class Host extends pulumi.ComponentResource {
    public readonly connection: pulumi.Output<Connection>;
    public readonly ip: pulumi.Output<string>;
    /** Non-root users run host steps through `sudo -n`. */
    public readonly sudo: boolean;
    public readonly ready: command.remote.Command;

    constructor(name: string, args: HostArgs, opts?: pulumi.ComponentResourceOptions) {
        super("bluegreen:index:Host", name, {}, opts);
        const self = { parent: this };
        const { host, ssh } = args;

        let ip: pulumi.Output<string>;
        let machine: pulumi.Resource | undefined;
        switch (host.kind) {
            case "hetzner": {
                const suffix = new random.RandomId(`${name}-suffix`, { byteLength: 3 }, self);
                const key = new hcloud.SshKey(`${name}-key`, { name: pulumi.interpolate`bluegreen-${suffix.hex}`, publicKey: ssh.publicKey! }, self);
                const firewall = new hcloud.Firewall(
                    `${name}-firewall`,
                    { name: pulumi.interpolate`bluegreen-${suffix.hex}`, rules: firewallRules(host.sshAllowedCidrs) },
                    self,
                );
                const server = new hcloud.Server(
                    `${name}-server`,
                    {
                        name: pulumi.interpolate`bluegreen-${suffix.hex}`,
                        serverType: host.serverType,
                        image: host.image,
                        location: host.location,
                        sshKeys: [key.id],
                        firewallIds: [firewall.id.apply(Number)],
                        publicNets: [{ ipv4Enabled: true, ipv6Enabled: true }],
                        labels: { app: "bluegreen" },
                    },
                    self,
                );
                ip = server.ipv4Address;
                machine = server;
                break;
            }
            case "multipass": {
                const vm = new command.local.Command(
                    `${name}-vm`,
                    {
                        create: stdinScriptCommand(
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
                        delete: `multipass delete --purge ${shellQuote(host.name)}`,
                        logging: "stderr",
                    },
                    self,
                );
                ip = vm.stdout.apply((out) => parseMultipassIp(out, host.name));
                machine = vm;
                break;
            }
            case "ssh":
                ip = pulumi.output(host.address);
                break;
        }
        this.ip = ip;
        this.sudo = ssh.user !== "root";
        this.connection = pulumi.output({
            host: ip,
            port: ssh.port,
            user: ssh.user,
            privateKey: ssh.privateKey,
            ...(ssh.hostKey ? { hostKey: ssh.hostKey } : {}),
            dialErrorLimit: 30,
            perDialTimeout: 15,
        });

        // A new server takes a minute or two to answer SSH: retry for about 12 minutes.
        this.ready = new command.remote.Command(
            `${name}-ready`,
            {
                connection: this.connection.apply((c) => ({ ...c, dialErrorLimit: 150 })),
                create: stdinScriptCommand({ EXPECTED_ARCH: args.arch }, this.sudo),
                stdin: loadScript("wait-ready.sh"),
            },
            { ...self, dependsOn: machine ? [machine] : [], customTimeouts: { create: "15m", update: "15m" } },
        );

        this.registerOutputs({ ip: this.ip });
    }
}
