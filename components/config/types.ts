// The shapes loadConfig and configFrom return: the validated config the components consume.

import * as pulumi from "@pulumi/pulumi";
import { Color, RouterKind } from "../host/layout";

export type LinkMode = "socket" | "tcp";
export type HostKind = "hetzner" | "multipass" | "ssh" | "stack";
export type Arch = "amd64" | "arm64";

export type Artifact =
  /** Run buildCommand for this version where pulumi runs (by default: build the demo app in app/). */
  | { readonly kind: "build" }
  /** A local file uploaded over SFTP; sha256 computed here and checked on the host. */
  | { readonly kind: "file"; readonly path: string; readonly sha256: string; readonly bundle: boolean }
  /** Downloaded on the host over https and verified against sha256; the URL travels on stdin (it may hold a token). */
  | {
      readonly kind: "url";
      readonly url: string;
      readonly sha256: string;
      readonly secret: boolean;
      readonly bundle: boolean;
    };

export interface SlotConfig {
  readonly color: Color;
  readonly version: string;
  readonly artifact: Artifact;
  /** tcp mode: the 127.0.0.1 port the slot listens on. */
  readonly port: number;
}

export type HostConfig =
  | {
      readonly kind: "hetzner";
      readonly serverType: string;
      readonly location: string;
      readonly image: string;
      readonly sshAllowedCidrs: readonly string[];
      /** Names or ids of SSH keys already in the Hetzner project; empty: upload sshPublicKey as a new key. */
      readonly sshKeys: readonly string[];
      /** Pulumi `protect` on the server: a replace or destroy fails instead of deleting it. */
      readonly protect: boolean;
    }
  | {
      readonly kind: "multipass";
      readonly name: string;
      readonly cpus: number;
      readonly memory: string;
      readonly disk: string;
      readonly image: string;
    }
  | { readonly kind: "ssh"; readonly address: string }
  /** The host another stack created: its `ip` output, read through a StackReference. */
  | { readonly kind: "stack"; readonly stack: string };

/** One of the hosts an app runs on: its name in bluegreen:hosts ("" for a one-host stack) and the machine. */
export interface NamedHost {
  readonly name: string;
  readonly host: HostConfig;
}

export interface SshConfig {
  readonly user: string;
  readonly port: number;
  /** Unset: the ssh agent's keys ($SSH_AUTH_SOCK, which the provider reads itself). */
  readonly privateKey?: pulumi.Output<string>;
  /** bluegreen:sshPrivateKeyPassword, for a passphrase-protected key. */
  readonly privateKeyPassword?: pulumi.Output<string>;
  /** Where the key came from: config, the file PATH, or the ssh agent. */
  readonly keyFrom: string;
  readonly publicKey?: string;
  readonly hostKey?: string;
}

/** Commands run on the host around a switch, in the slot's own environment (components/scripts/hook.sh). */
export interface HooksConfig {
  /** Before traffic moves, as the target slot (e.g. a migration); a failure aborts the switch. */
  readonly preSwitch: string;
  /** After the switch is confirmed, as the new live slot; a failure warns, or moves traffic back. */
  readonly postSwitch: string;
  readonly postSwitchFailure: "warn" | "rollback";
  readonly timeoutSeconds: number;
}

export interface AppConfig {
  /**
   * How a release starts, run from its directory (appCommand); empty: the single executable
   * `app` with `args`.
   */
  readonly command: string;
  readonly healthPath: string;
  readonly healthTimeoutSeconds: number;
  readonly drainTimeoutSeconds: number;
  readonly args: string;
  readonly env: Readonly<Record<string, string>>;
  /** Secret values; undefined when none are configured. */
  readonly secrets?: pulumi.Output<Record<string, string>>;
  /** The names of the secret values (not secret): hook output is scrubbed of their values. */
  readonly secretNames: readonly string[];
  readonly hooks: HooksConfig;
}

export type TlsMode = "off" | "acme" | "files";
export type AcmeChallenge = "http-01" | "dns-01";

/** HTTPS for the public listener. The certificate's private key is made on the host and stays there (acme). */
export type TlsConfig =
  | { readonly mode: "off" }
  | {
      readonly mode: "acme";
      readonly email: string;
      /** The ACME directory URL. */
      readonly directory: string;
      readonly challenge: AcmeChallenge;
      /** lego's DNS provider code (dns-01), e.g. hetzner or cloudflare. */
      readonly dnsProvider?: string;
      /** The provider's credentials (lego reads them from its environment); travel on stdin into a 0600 file. */
      readonly dnsEnv?: pulumi.Output<Record<string, string>>;
      /** host:port resolvers lego checks DNS-01 propagation with; empty: the system's. */
      readonly dnsResolvers: readonly string[];
      /** false: lego skips its check that the TXT record is visible at the zone's nameservers (--dns.disable-cp). */
      readonly dnsPropagationCheck: boolean;
      /** PEM of a CA the host trusts for a private ACME directory; undefined: the system's CAs. */
      readonly caCertificate?: string;
      readonly hstsMaxAge: number;
    }
  | {
      readonly mode: "files";
      /** PEM chain, leaf first. */
      readonly certificate: string;
      readonly privateKey: pulumi.Output<string>;
      readonly hstsMaxAge: number;
    };

/** What the balancer does with HTTPS: nothing (tls off), pass it through, or end it with a managed or an uploaded certificate. */
export type BalancerTlsMode = "none" | "passthrough" | "managed" | "uploaded";

/**
 * Several Hetzner hosts behind one Hetzner load balancer, on one private network
 * (components/config/balancer.ts reads it; components/host/balancer.ts and network.ts make it).
 */
export interface BalancerConfig {
  /** Whether a balancer is made: several hosts, every one a Hetzner server. */
  readonly enabled: boolean;
  /** The load balancer type, e.g. lb11. */
  readonly type: string;
  readonly algorithm: "round_robin" | "least_connections";
  /** The HTTP health check of each host's live slot: seconds between checks, seconds per check, failures (and passes) in a row. */
  readonly health: { readonly interval: number; readonly timeout: number; readonly retries: number };
  /** Where HTTPS ends with tls on (loadBalancerTls). */
  readonly tlsAt: "host" | "balancer";
  /** What the balancer does with HTTPS, from tls and loadBalancerTls. */
  readonly tlsMode: BalancerTlsMode;
  /** The sticky-session cookie's name; undefined: no sticky sessions. */
  readonly stickyCookie?: string;
  /** The private network: its range, its one subnet and the balancer's address in it (a host's: networkPlan(ipRange).hostIp). */
  readonly network: { readonly ipRange: string; readonly subnet: string; readonly balancerIp: string };
  /** The Hetzner network zone of the hosts' locations; undefined without Hetzner hosts. */
  readonly networkZone?: string;
}

/** Watch after a switch: move the link back if the new slot's 5xx count and ratio both reach the limits. */
export interface RollbackConfig {
  /** How long the switch waits for the router to serve the target on the check listener before it puts the link back. */
  readonly verifySeconds: number;
  /** 0 turns the watch off. */
  readonly watchSeconds: number;
  readonly errorPercent: number;
  readonly minErrors: number;
}

export interface BluegreenConfig {
  readonly active: Color;
  /** Serve a 503 maintenance page (Retry-After) instead of the live slot; both slots keep running. */
  readonly maintenance: boolean;
  readonly maintenanceRetryAfter: number;
  readonly rollback: RollbackConfig;
  /** The newest releases kept on the host per deploy; those in use or staged stay too. */
  readonly keepReleases: number;
  /** 127.0.0.1 port of the check listener: the live slot through the router, never in maintenance. */
  readonly checkPort: number;
  /** 127.0.0.1 port lego's own HTTP-01 server listens on behind HAProxy (router haproxy, tls acme http-01 only). */
  readonly acmePort: number;
  readonly linkMode: LinkMode;
  /** What routes public traffic to the slots; every app on a host uses the same one. */
  readonly router: RouterKind;
  readonly arch: Arch;
  /** The first host (the only one, unless bluegreen:hosts names several). */
  readonly host: HostConfig;
  /** Every host the app runs on, in order: one unnamed, or those bluegreen:hosts names. */
  readonly hosts: readonly NamedHost[];
  /** Names of hosts taken out of the load balancer (bluegreen:drainedHosts). */
  readonly drainedHosts: readonly string[];
  readonly ssh: SshConfig;
  readonly slots: Readonly<Record<Color, SlotConfig>>;
  readonly app: AppConfig;
  readonly previewPort: number;
  /** The app's name on the host (its namespace, components/host/layout.ts). */
  readonly appName: string;
  /** Names the public listener answers to and the certificate covers; empty: any name, plain HTTP only. */
  readonly domains: readonly string[];
  readonly tls: TlsConfig;
  /** Debian/Ubuntu packages the app needs on the host, installed before any slot starts. */
  readonly hostPackages: readonly string[];
  /** Run where pulumi runs for a "build" artifact, with BLUEGREEN_VERSION, BLUEGREEN_ARCH and BLUEGREEN_OUT. */
  readonly buildCommand: string;
  /** A bundle unpacked on the host may hold at most this many MiB. */
  readonly bundleMaxMegabytes: number;
  /** The load balancer and private network of several Hetzner hosts (enabled false with one host). */
  readonly balancer: BalancerConfig;
  /** Backups, notifications and metrics; each absent unless configured. */
  readonly ops: OpsConfig;
}

/** bluegreen:backupRemote: where rclone sends the encrypted off-host copies. */
export interface BackupRemoteConfig {
  /** rclone's backend: s3 (any S3-compatible store) or sftp. */
  readonly type: "s3" | "sftp";
  /** The backend's settings as rclone names them (credentials included): secret. */
  readonly settings: pulumi.Output<Record<string, string>>;
  /** The bucket and folder, or directory, on the remote. */
  readonly path: string;
  /** rclone crypt's passphrase: secret. */
  readonly passphrase: pulumi.Output<string>;
}

/** Scheduled SQLite backups of the app's data directory, snapshots before preSwitch, and restore. */
export interface BackupsConfig {
  /** Database files, relative to the data directory. */
  readonly databases: readonly string[];
  readonly keepHourly: number;
  readonly keepDaily: number;
  readonly keepSnapshots: number;
  readonly remote?: BackupRemoteConfig;
}

/** Where events go, and which. */
export interface NotifyConfig {
  /** The webhook targets configured (their URLs are in `urls`, secret). */
  readonly kinds: readonly ("webhook" | "slack" | "discord" | "ntfy")[];
  /** Each target's URL: secret; undefined when only mail is configured. */
  readonly urls?: pulumi.Output<Record<string, string>>;
  readonly email: readonly string[];
  readonly events: readonly string[];
  readonly diskFreePercent: number;
}

/** Prometheus metrics on a loopback port (and node_exporter's textfile directory, if any). */
export interface MetricsConfig {
  readonly port: number;
}

/** The data-and-signals settings: each is undefined when it is not configured (no resources then). */
export interface OpsConfig {
  readonly backups?: BackupsConfig;
  readonly notify?: NotifyConfig;
  readonly metrics?: MetricsConfig;
}
