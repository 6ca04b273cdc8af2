// Every stack config key is read and validated here, and nowhere else.
// Validation is synchronous and runs before any resource is registered, so a
// bad value stops `pulumi preview`/`up` before anything reaches the host.

import * as crypto from "crypto";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { Color, COLORS, RouterKind } from "../host/layout";

export const PROJECT = "bluegreen";

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

/** A release bundle is a gzip'd tar, named .tar.gz or .tgz; anything else is one executable. */
export const BUNDLE_RE = /\.(tar\.gz|tgz)$/i;

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

export interface SshConfig {
  readonly user: string;
  readonly port: number;
  readonly privateKey: pulumi.Output<string>;
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

/** Where Let's Encrypt's directories are; any other RFC 8555 server is given by its https URL. */
export const ACME_DIRECTORIES = {
  letsencrypt: "https://acme-v02.api.letsencrypt.org/directory",
  "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
} as const;

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

/** Watch after a switch: move the link back if the new slot's 5xx count and ratio both reach the limits. */
export interface RollbackConfig {
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
  /** Releases kept on the host per deploy, besides the two in use. */
  readonly keepReleases: number;
  /** 127.0.0.1 port of the check listener: the live slot through nginx, never in maintenance. */
  readonly checkPort: number;
  /** 127.0.0.1 port lego's own HTTP-01 server listens on behind HAProxy (router haproxy, tls acme http-01 only). */
  readonly acmePort: number;
  readonly linkMode: LinkMode;
  /** What routes public traffic to the slots; every app on a host uses the same one. */
  readonly router: RouterKind;
  readonly arch: Arch;
  readonly host: HostConfig;
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
}

/** Defaults, mirrored in Pulumi.yaml (a test keeps the two equal). */
export const DEFAULTS = {
  active: "blue",
  linkMode: "socket",
  router: "nginx",
  hostKind: "multipass",
  sshPort: 22,
  sshAllowedCidrs: ["0.0.0.0/0", "::/0"],
  hetznerServerType: "cx23",
  hetznerLocation: "fsn1",
  hetznerImage: "ubuntu-24.04",
  multipassName: "bluegreen",
  multipassCpus: 1,
  multipassMemory: "1G",
  multipassDisk: "8G",
  multipassImage: "24.04",
  hetznerSshKeys: [],
  hetznerProtect: true,
  blueArtifact: "build",
  greenArtifact: "build",
  appName: "bluegreen",
  bluePort: 0,
  greenPort: 0,
  previewPort: 0,
  checkPort: 0,
  acmePort: 0,
  maintenance: false,
  maintenanceRetryAfter: 120,
  watchSeconds: 30,
  rollbackErrorPercent: 5,
  rollbackMinErrors: 5,
  keepReleases: 5,
  domains: [],
  tls: "off",
  acmeEmail: "",
  acmeDirectory: "letsencrypt",
  acmeChallenge: "http-01",
  acmeDnsProvider: "",
  acmeDnsEnv: {},
  acmeDnsResolvers: [],
  acmeDnsPropagationCheck: true,
  acmeCaCertificate: "",
  hstsMaxAge: 0,
  tlsCertificate: "",
  healthPath: "/health/ready",
  healthTimeout: 60,
  drainTimeout: 25,
  appArgs:
    "--listen ${BLUEGREEN_LISTEN} --color ${BLUEGREEN_COLOR} --version ${BLUEGREEN_VERSION} " +
    "--drain-timeout ${BLUEGREEN_DRAIN_TIMEOUT}s",
  appCommand: "",
  hostPackages: [],
  buildCommand: 'bash app/build.sh "$BLUEGREEN_VERSION" "$BLUEGREEN_ARCH" "$BLUEGREEN_OUT"',
  bundleMaxMegabytes: 1024,
  preSwitch: "",
  postSwitch: "",
  postSwitchFailure: "warn",
  hookTimeout: 600,
} as const;

/** Keys whose default is a string, number or boolean (the list and map keys are read differently). */
type ScalarKey = {
  [K in keyof typeof DEFAULTS]: (typeof DEFAULTS)[K] extends string | number | boolean ? K : never;
}[keyof typeof DEFAULTS];

export const HETZNER_LOCATIONS = ["fsn1", "nbg1", "hel1", "ash", "hil", "sin"] as const;
/** Hetzner's US locations offer no cx (shared Intel) or cax (Arm) server types, only cpx and ccx. */
export const HETZNER_US_LOCATIONS: readonly string[] = ["ash", "hil"];
const HETZNER_NOT_IN_US_RE = /^(cx|cax)[0-9]/;

/** Thrown for bad stack config; lists every problem, each naming its key. */
export class ConfigError extends pulumi.RunError {
  constructor(public readonly problems: string[]) {
    super(`invalid bluegreen stack config:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

const VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;
const SHA256_RE = /^[0-9a-f]{64}$/;
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PUBLIC_KEY_RE = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,3}( [^\n]*)?$/;
const HOSTNAME_RE =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
/** A DNS name nginx and ACME both take: lowercase labels, optionally one leading "*." (a wildcard). */
const DOMAIN_RE = /^(\*\.)?(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/;
const LEGO_PROVIDER_RE = /^[a-z0-9][a-z0-9.-]{0,39}$/;
const RESOLVER_RE = /^[A-Za-z0-9.:[\]-]+:[0-9]{1,5}$/;
const USER_RE = /^[a-z_][a-z0-9_-]{0,31}$/;

const q = (v: unknown) => JSON.stringify(v);
const key = (k: string) => `${PROJECT}:${k}`;

/** Reads raw values; the default reads the stack's config through the Pulumi SDK. */
export interface ConfigSource {
  get(key: string, namespace?: string): string | undefined;
  /** Whether the stack holds this key encrypted (`pulumi config set --secret`). */
  isSecret?(key: string, namespace?: string): boolean;
}

// The engine lists the encrypted keys in PULUMI_CONFIG_SECRET_KEYS; the SDK reads it here (internal, but
// the only synchronous way: Config.getSecret returns an Output, and validation must finish before any resource).
// eslint-disable-next-line @typescript-eslint/no-require-imports -- not in the SDK's typings
const { isConfigSecret } = require("@pulumi/pulumi/runtime/config") as { isConfigSecret: (fullKey: string) => boolean };

const pulumiSource: ConfigSource = {
  get: (k, ns = PROJECT) => new pulumi.Config(ns).get(k),
  isSecret: (k, ns = PROJECT) => isConfigSecret(`${ns}:${k}`),
};

/**
 * Keys that may be set with --secret, and how each stays secret end to end. Every
 * other key lands in plain text somewhere (a command line, the nginx site, a unit
 * file, an output), so a secret value there is refused rather than leaked.
 */
export const SECRET_CAPABLE: Readonly<Record<string, string>> = {
  sshPrivateKey: "always secret: it only reaches the connection",
  appSecrets: "a secret env file on stdin",
  acmeDnsEnv: "the DNS provider's credentials: a 0600 file on the host, sent on stdin",
  tlsPrivateKey: "always secret: a 0640 file on the host, sent on stdin",
  appEnv: "with --secret, the whole env file becomes a secret on stdin",
  blueArtifact: "a URL travels on stdin as a secret, never on a command line",
  greenArtifact: "a URL travels on stdin as a secret, never on a command line",
};

/** JSON.parse, but numbers keep their exact text (12345678901234567890 stays that, not 12345678901234567000). */
export function parseJsonExact(text: string): unknown {
  return JSON.parse(
    text.replace(
      /("(?:[^"\\]|\\.)*")|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g,
      (m, str?: string) => str ?? JSON.stringify(m),
    ),
  ) as unknown;
}

/**
 * Parses and validates the whole stack config. `projectDir` resolves relative
 * artifact paths; `env` supplies HCLOUD_TOKEN as the provider would.
 */
export function loadConfig(
  source: ConfigSource = pulumiSource,
  projectDir: string = process.cwd(),
  processEnv: NodeJS.ProcessEnv = process.env,
): BluegreenConfig {
  const problems: string[] = [];
  const secretKeys = new Set<string>();
  const raw = (k: string) => {
    const v = source.get(k);
    if (v === undefined || v === "") return undefined;
    if (source.isSecret?.(k)) {
      if (!(k in SECRET_CAPABLE)) {
        problems.push(
          `${key(k)} is set with --secret, but its value is written in plain text on the host or in outputs, so it cannot stay secret; ` +
            `set it without --secret, or keep secret values in ${key("appSecrets")} (secret keys: ${Object.keys(SECRET_CAPABLE).join(", ")})`,
        );
      }
      secretKeys.add(k);
    }
    return v;
  };
  /** A value for an error message; a secret one is never shown. */
  const shown = (k: string, v: unknown) => (secretKeys.has(k) ? "a secret value, not shown" : q(v));
  const str = (k: ScalarKey) => raw(k) ?? String(DEFAULTS[k]);
  const oneOf = <T extends string>(k: string, allowed: readonly T[], fallback: T): T => {
    const v = raw(k) ?? fallback;
    if ((allowed as readonly string[]).includes(v)) return v as T;
    problems.push(`${key(k)} must be one of ${allowed.join(", ")} (got ${q(v)})`);
    return fallback;
  };
  const int = (k: ScalarKey, min: number, max: number): number => {
    const v = raw(k) ?? String(DEFAULTS[k]);
    const n = Number(v);
    if (!/^-?\d+$/.test(v.trim()) || n < min || n > max) {
      problems.push(`${key(k)} must be a whole number from ${min} to ${max} (got ${q(v)})`);
      return Number(DEFAULTS[k]);
    }
    return n;
  };
  const bool = (k: ScalarKey): boolean => {
    const v = raw(k) ?? String(DEFAULTS[k]);
    if (v !== "true" && v !== "false") problems.push(`${key(k)} must be true or false (got ${q(v)})`);
    return v === "true";
  };
  const matches = (k: string, v: string, re: RegExp, what: string) => {
    if (!re.test(v)) problems.push(`${key(k)} must be ${what} (got ${q(v)})`);
    return v;
  };
  /** A NAME: value map; `secret` keeps values out of error messages. */
  const object = (k: string): Record<string, string> => {
    const v = raw(k);
    if (v === undefined) return {};
    const secret = secretKeys.has(k) || k === "appSecrets" || k === "acmeDnsEnv";
    let parsed: unknown;
    try {
      parsed = parseJsonExact(v);
    } catch {
      parsed = undefined;
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      problems.push(
        `${key(k)} must be a map of NAME: value (set entries with: pulumi config set --path '${k}.NAME' value)`,
      );
      return {};
    }
    const out: Record<string, string> = {};
    for (const [name, value] of Object.entries(parsed)) {
      if (!ENV_NAME_RE.test(name) || name.startsWith("BLUEGREEN_")) {
        problems.push(
          `${key(k)}.${name}: names must match [A-Za-z_][A-Za-z0-9_]* and not start with BLUEGREEN_ (reserved)`,
        );
      } else if ((k === "appEnv" || k === "appSecrets") && name.startsWith("LD_")) {
        // The loader reads its LD_* variables before the app's first instruction: LD_PRELOAD or
        // LD_AUDIT load any library into the slot's process, LD_LIBRARY_PATH swaps its libraries.
        problems.push(
          `${key(k)}.${name}: LD_* variables steer the dynamic loader of the slot's process and are refused; remove it: pulumi config rm --path ${k}.${name}`,
        );
      } else if (typeof value !== "string" && typeof value !== "boolean") {
        problems.push(`${key(k)}.${name} must be a string (got ${secret ? "a secret of another type" : q(value)})`);
      } else if (/[\n\r\0]/.test(String(value))) {
        problems.push(`${key(k)}.${name} must be a single line (systemd env files cannot hold newlines)`);
      } else {
        out[name] = String(value);
      }
    }
    return out;
  };

  const active = oneOf<Color>("active", COLORS, "blue");
  const appName = matches(
    "appName",
    str("appName"),
    /^(?!apps$)[a-z]([a-z0-9-]{0,20}[a-z0-9])?$/,
    'a name of lowercase letters, digits and - (at most 22: its Unix user is bluegreen-NAME; not "apps"), e.g. shop',
  );
  const linkMode = oneOf<LinkMode>("linkMode", ["socket", "tcp"], "socket");
  const router = oneOf<RouterKind>("router", ["nginx", "haproxy"], "nginx");
  const problemsBeforeHost = problems.length;
  const hostKind = oneOf<HostKind>("hostKind", ["hetzner", "multipass", "ssh", "stack"], "multipass");
  // An unknown kind is one problem; checking the fallback kind's keys would invent more.
  const hostKindKnown = problems.length === problemsBeforeHost;

  const host: HostConfig = hostKindKnown ? readHost(hostKind) : { kind: "ssh", address: "" };
  const sshPort = int("sshPort", 1, 65535);

  const defaultUser = hostKind === "multipass" ? "ubuntu" : "root";
  const sshUser = matches("sshUser", raw("sshUser") ?? defaultUser, USER_RE, "a Unix user name");

  const privateKeyText = raw("sshPrivateKey");
  if (privateKeyText === undefined) {
    problems.push(
      `${key("sshPrivateKey")} is required: cat ~/.ssh/id_ed25519 | pulumi config set --secret sshPrivateKey --`,
    );
  } else if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(privateKeyText)) {
    problems.push(`${key("sshPrivateKey")} must be a PEM/OpenSSH private key (the file's text, not its path)`);
  }
  const publicKey = raw("sshPublicKey");
  if (publicKey !== undefined) matches("sshPublicKey", publicKey.trim(), PUBLIC_KEY_RE, "an OpenSSH public key line");
  else if (hostKindKnown && hostKind !== "ssh" && hostKind !== "stack") {
    if (host.kind !== "hetzner") {
      problems.push(
        `${key("sshPublicKey")} is required when ${key("hostKind")} is ${q(hostKind)}: pulumi config set sshPublicKey "$(cat ~/.ssh/id_ed25519.pub)"`,
      );
    } else if (host.sshKeys.length === 0) {
      problems.push(
        `${key("sshPublicKey")} is required when ${key("hostKind")} is "hetzner" and ${key("hetznerSshKeys")} is empty: ` +
          `pulumi config set sshPublicKey "$(cat ~/.ssh/id_ed25519.pub)", or name keys already in the Hetzner project: pulumi config set --path 'hetznerSshKeys[0]' my-laptop`,
      );
    }
  }
  const hostKey = raw("sshHostKey");
  if (hostKey !== undefined)
    matches(
      "sshHostKey",
      hostKey.trim(),
      PUBLIC_KEY_RE,
      "a host public key line (ssh-keyscan output without the host name)",
    );

  const archDefault: Arch = host.kind === "hetzner" && host.serverType.startsWith("cax") ? "arm64" : "amd64";
  const arch = oneOf<Arch>("hostArch", ["amd64", "arm64"], archDefault);

  const ports = {
    blue: port("bluePort", "blue"),
    green: port("greenPort", "green"),
    preview: port("previewPort", "preview"),
    check: port("checkPort", "check"),
  };
  if (ports.blue === ports.green) {
    problems.push(
      `${key("bluePort")} and ${key("greenPort")} must differ: both slots cannot listen on port ${ports.blue}`,
    );
  }
  for (const [a, b] of [
    ["blue", "preview"],
    ["green", "preview"],
    ["blue", "check"],
    ["green", "check"],
    ["preview", "check"],
  ] as const) {
    if (ports[a] === ports[b])
      problems.push(`${key(`${a}Port`)} and ${key(`${b}Port`)} must differ (both are ${ports[a]})`);
  }

  const slots = {} as Record<Color, SlotConfig>;
  for (const color of COLORS) {
    slots[color] = { color, version: readVersion(color), artifact: readArtifact(color), port: ports[color] };
  }

  const healthPath = matches(
    "healthPath",
    str("healthPath"),
    /^\/[A-Za-z0-9._~/-]*$/,
    "an absolute URL path such as /health/ready",
  );
  const args = str("appArgs");
  const argsProblem = unitArgsProblem(args);
  if (argsProblem) problems.push(`${key("appArgs")} ${argsProblem} (got ${q(args)})`);
  const command = readAppCommand();
  const envRaw = object("appEnv");
  const secretsRaw = object("appSecrets");
  if (command && linkMode === "tcp" && ("PORT" in envRaw || "PORT" in secretsRaw))
    problems.push(
      `${key("appEnv")}.PORT is set by bluegreen with ${key("appCommand")} in tcp mode (each slot's own port); remove it: pulumi config rm --path appEnv.PORT`,
    );
  for (const name of Object.keys(secretsRaw)) {
    if (name in envRaw)
      problems.push(`${key("appSecrets")}.${name} is also set in ${key("appEnv")}; keep each name in one of them`);
  }
  // appEnv set with --secret joins the secrets: the whole env file is then a secret.
  const envSecret = secretKeys.has("appEnv");
  const allSecrets = envSecret ? { ...envRaw, ...secretsRaw } : secretsRaw;
  // systemd puts ${NAME} into the process's argv, which every user on the host can read in ps.
  for (const [k, text] of [
    ["appCommand", command],
    ["appArgs", args],
  ] as const) {
    for (const name of Object.keys(allSecrets)) {
      if (new RegExp(`\\$\\{?${name}(?![A-Za-z0-9_])`).test(text))
        problems.push(
          `${key(k)} passes the secret ${name} on the command line, where ps shows it to every user on the host; let the app read ${name} from its environment`,
        );
    }
  }
  const app: AppConfig = {
    command,
    healthPath,
    healthTimeoutSeconds: int("healthTimeout", 5, 900),
    drainTimeoutSeconds: int("drainTimeout", 1, 600),
    args,
    env: envSecret ? {} : envRaw,
    secrets: Object.keys(allSecrets).length ? pulumi.secret(allSecrets) : undefined,
    secretNames: Object.keys(allSecrets).sort(),
    hooks: readHooks(),
  };
  const hostPackages = readHostPackages();
  const buildCommand = readBuildCommand();
  const bundleMaxMegabytes = int("bundleMaxMegabytes", 1, 65536);

  if (raw("serverName") !== undefined) {
    problems.push(
      `${key("serverName")} was replaced by ${key("domains")}, a list that also names the HTTPS certificate's domains: ` +
        `pulumi config rm serverName && pulumi config set --path 'domains[0]' example.com`,
    );
  }
  const domains = readDomains();
  const tls = readTls(domains);
  // HAProxy cannot serve a directory: lego answers HTTP-01 itself on this loopback port,
  // behind the app's HAProxy route. Only then is the port claimed, and checked.
  const acmePort = port("acmePort", "acme");
  if (router === "haproxy" && tls.mode === "acme" && tls.challenge === "http-01") {
    for (const other of ["blue", "green", "preview", "check"] as const) {
      if (ports[other] === acmePort)
        problems.push(`${key(`${other}Port`)} and ${key("acmePort")} must differ (both are ${acmePort})`);
    }
  }
  const maintenance = bool("maintenance");
  const maintenanceRetryAfter = int("maintenanceRetryAfter", 1, 86400);
  const keepReleases = int("keepReleases", 2, 1000);
  const rollback: RollbackConfig = {
    watchSeconds: int("watchSeconds", 0, 3600),
    errorPercent: int("rollbackErrorPercent", 1, 100),
    minErrors: int("rollbackMinErrors", 1, 1_000_000),
  };

  if (problems.length) throw new ConfigError(problems);
  return {
    active,
    maintenance,
    maintenanceRetryAfter,
    rollback,
    keepReleases,
    checkPort: ports.check,
    acmePort,
    linkMode,
    router,
    arch,
    host,
    ssh: {
      user: sshUser,
      port: sshPort,
      privateKey: pulumi.secret(privateKeyText!),
      publicKey: publicKey?.trim(),
      hostKey: hostKey?.trim(),
    },
    slots,
    app,
    previewPort: ports.preview,
    appName,
    domains,
    tls,
    hostPackages,
    buildCommand,
    bundleMaxMegabytes,
  };

  function readHost(kind: HostKind): HostConfig {
    switch (kind) {
      case "hetzner": {
        if (!source.get("token", "hcloud") && !processEnv.HCLOUD_TOKEN) {
          problems.push(
            `hcloud:token is required when ${key("hostKind")} is "hetzner": pulumi config set --secret hcloud:token <token> (or export HCLOUD_TOKEN)`,
          );
        }
        const serverType = matches(
          "hetznerServerType",
          str("hetznerServerType"),
          /^[a-z]+[0-9]+$/,
          "a Hetzner server type such as cx23 or cax11",
        );
        const location = oneOf("hetznerLocation", HETZNER_LOCATIONS, "fsn1");
        if (HETZNER_US_LOCATIONS.includes(location) && HETZNER_NOT_IN_US_RE.test(serverType)) {
          problems.push(
            `${key("hetznerServerType")} ${q(serverType)} is not offered in ${key("hetznerLocation")} ${q(location)}: ` +
              `in ${HETZNER_US_LOCATIONS.join(" and ")} choose a cpx or ccx server type, or keep ${q(serverType)} and set hetznerLocation to fsn1, nbg1 or hel1`,
          );
        }
        return {
          kind,
          serverType,
          location,
          image: matches(
            "hetznerImage",
            str("hetznerImage"),
            /^[a-z0-9.-]+$/,
            "a Hetzner image name such as ubuntu-24.04",
          ),
          sshAllowedCidrs: readCidrs(),
          sshKeys: readHetznerSshKeys(),
          protect: bool("hetznerProtect"),
        };
      }
      case "multipass":
        return {
          kind,
          name: matches(
            "multipassName",
            str("multipassName"),
            /^[a-z][a-z0-9-]{0,39}$/,
            "a VM name of lowercase letters, digits and -",
          ),
          cpus: int("multipassCpus", 1, 64),
          memory: matches("multipassMemory", str("multipassMemory"), /^[1-9][0-9]*[KMG]$/, "a size such as 1G or 512M"),
          disk: matches("multipassDisk", str("multipassDisk"), /^[1-9][0-9]*[KMG]$/, "a size such as 8G"),
          image: matches("multipassImage", str("multipassImage"), /^[a-z0-9.:-]+$/, "a multipass image such as 24.04"),
        };
      case "stack": {
        const stack = raw("hostStack");
        if (stack === undefined) {
          problems.push(
            `${key("hostStack")} is required when ${key("hostKind")} is "stack": the stack that created the host, e.g. pulumi config set hostStack organization/bluegreen/prod`,
          );
        } else
          matches(
            "hostStack",
            stack,
            /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+){0,2}$/,
            "a stack name: NAME, PROJECT/NAME or ORG/PROJECT/NAME",
          );
        return { kind, stack: stack ?? "" };
      }
      case "ssh": {
        const address = raw("sshHost");
        if (address === undefined) {
          problems.push(`${key("sshHost")} is required when ${key("hostKind")} is "ssh"`);
        } else if (!HOSTNAME_RE.test(address) && !isIp(address)) {
          problems.push(`${key("sshHost")} must be a host name or IP address (got ${q(address)})`);
        }
        return { kind, address: address ?? "" };
      }
    }
  }

  /** Whether a key holds something other than its default (the engine fills defaults in). */
  function setToNonDefault(k: string): boolean {
    const v = raw(k);
    if (v === undefined) return false;
    if (!(k in DEFAULTS)) return true;
    const d: unknown = DEFAULTS[k as keyof typeof DEFAULTS];
    if (typeof d === "string" || typeof d === "number" || typeof d === "boolean") return v !== String(d);
    try {
      return JSON.stringify(JSON.parse(v)) !== JSON.stringify(d);
    } catch {
      return true;
    }
  }

  /** A loopback port; 0 picks the app's automatic one (autoPorts). */
  function port(k: ScalarKey, which: keyof ReturnType<typeof autoPorts>): number {
    const n = int(k, 0, 65535);
    if (n === 0) return autoPorts(appName)[which];
    if (n < 1024) problems.push(`${key(k)} must be 0 (automatic) or from 1024 to 65535 (got ${n})`);
    return n;
  }

  /** A config list as parsed JSON entries; undefined (with a problem) when it is not a list. */
  function list(k: string, what: string): unknown[] | undefined {
    const v = raw(k);
    if (v === undefined) return [];
    let parsed: unknown;
    try {
      parsed = JSON.parse(v) as unknown;
    } catch {
      parsed = undefined;
    }
    if (Array.isArray(parsed)) return parsed as unknown[];
    problems.push(`${key(k)} must be a list of ${what}`);
    return undefined;
  }

  function readDomains(): string[] {
    const entries = list("domains", "domain names, e.g. pulumi config set --path 'domains[0]' example.com") ?? [];
    const out: string[] = [];
    for (const entry of entries) {
      if (typeof entry !== "string" || !DOMAIN_RE.test(entry)) {
        problems.push(
          `${key("domains")} entry ${q(entry)} is not a domain name: lowercase letters, digits, - and dots, with at least one dot, optionally starting with "*." for a wildcard`,
        );
      } else if (out.includes(entry)) {
        problems.push(`${key("domains")} lists ${q(entry)} twice`);
      } else out.push(entry);
    }
    return out;
  }

  function readTls(domains: readonly string[]): TlsConfig {
    const mode = oneOf<TlsMode>("tls", ["off", "acme", "files"], "off");
    const hstsMaxAge = int("hstsMaxAge", 0, 63072000);
    const tlsKeys = [
      "acmeEmail",
      "acmeDirectory",
      "acmeChallenge",
      "acmeDnsProvider",
      "acmeDnsEnv",
      "acmeDnsResolvers",
      "acmeDnsPropagationCheck",
      "acmeCaCertificate",
      "tlsCertificate",
      "tlsPrivateKey",
      "hstsMaxAge",
    ];
    const misplaced = (allowed: string[]) => tlsKeys.filter((k) => !allowed.includes(k) && setToNonDefault(k));
    const unused = (keys: string[]) => {
      for (const k of keys) problems.push(`${key(k)} is set but ${key("tls")} is ${q(mode)}; it would be ignored`);
    };
    if (mode === "off") {
      unused(misplaced([]));
      return { mode };
    }
    if (domains.length === 0) {
      problems.push(
        `${key("domains")} is required when ${key("tls")} is ${q(mode)}: the certificate must name them, e.g. pulumi config set --path 'domains[0]' example.com`,
      );
    }
    if (mode === "files") {
      unused(misplaced(["tlsCertificate", "tlsPrivateKey", "hstsMaxAge"]));
      return { mode, ...readCertificateFiles(domains), hstsMaxAge };
    }
    unused(misplaced(tlsKeys.filter((k) => k.startsWith("acme") || k === "hstsMaxAge")));
    const email = raw("acmeEmail");
    if (email === undefined) {
      problems.push(
        `${key("acmeEmail")} is required when ${key("tls")} is "acme": the ACME account's contact, e.g. pulumi config set acmeEmail you@example.com`,
      );
    } else matches("acmeEmail", email, /^[^\s@"'`$\\]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$/, "an email address");
    const dirValue = str("acmeDirectory");
    let directory: string = dirValue;
    if (dirValue in ACME_DIRECTORIES) directory = ACME_DIRECTORIES[dirValue as keyof typeof ACME_DIRECTORIES];
    else if (!/^https:\/\/[A-Za-z0-9.-]+(:[0-9]{1,5})?(\/[A-Za-z0-9._~/-]*)?$/.test(dirValue)) {
      problems.push(
        `${key("acmeDirectory")} must be one of ${Object.keys(ACME_DIRECTORIES).join(", ")} or the https:// URL of an RFC 8555 directory (got ${q(dirValue)})`,
      );
    }
    const challenge = oneOf<AcmeChallenge>("acmeChallenge", ["http-01", "dns-01"], "http-01");
    const wildcards = domains.filter((d) => d.startsWith("*."));
    if (challenge === "http-01" && wildcards.length) {
      problems.push(
        `${key("domains")} ${wildcards.map(q).join(", ")} needs ${key("acmeChallenge")} "dns-01": ACME issues wildcard certificates over DNS-01 only`,
      );
    }
    const providerValue = raw("acmeDnsProvider");
    let dnsProvider: string | undefined;
    if (challenge === "dns-01") {
      if (providerValue === undefined) {
        problems.push(
          `${key("acmeDnsProvider")} is required when ${key("acmeChallenge")} is "dns-01": a lego DNS provider code such as hetzner or cloudflare (lego dnshelp lists them)`,
        );
      } else
        dnsProvider = matches(
          "acmeDnsProvider",
          providerValue,
          LEGO_PROVIDER_RE,
          "a lego DNS provider code such as hetzner",
        );
    } else {
      for (const k of ["acmeDnsProvider", "acmeDnsEnv", "acmeDnsResolvers", "acmeDnsPropagationCheck"]) {
        if (setToNonDefault(k))
          problems.push(`${key(k)} applies only when ${key("acmeChallenge")} is "dns-01" (it is ${q(challenge)})`);
      }
    }
    const dnsEnvRaw = object("acmeDnsEnv");
    if (Object.keys(dnsEnvRaw).length && !secretKeys.has("acmeDnsEnv"))
      problems.push(
        `${key("acmeDnsEnv")} must be set with --secret, or the DNS provider's credentials sit in Pulumi.<stack>.yaml in plain text: pulumi config set --secret --path 'acmeDnsEnv.NAME' value`,
      );
    const dnsResolvers: string[] = [];
    for (const entry of list("acmeDnsResolvers", "host:port resolvers, e.g. 1.1.1.1:53") ?? []) {
      if (typeof entry === "string" && RESOLVER_RE.test(entry)) dnsResolvers.push(entry);
      else problems.push(`${key("acmeDnsResolvers")} entry ${q(entry)} is not a host:port resolver such as 1.1.1.1:53`);
    }
    const caCertificate = raw("acmeCaCertificate");
    if (caCertificate !== undefined) pemCertificates("acmeCaCertificate", caCertificate);
    return {
      mode,
      email: email ?? "",
      directory,
      challenge,
      dnsProvider,
      dnsEnv: Object.keys(dnsEnvRaw).length ? pulumi.secret(dnsEnvRaw) : undefined,
      dnsResolvers,
      dnsPropagationCheck: bool("acmeDnsPropagationCheck"),
      caCertificate: caCertificate === undefined ? undefined : caCertificate.trim() + "\n",
      hstsMaxAge,
    };
  }

  /** Parses PEM certificates, with a problem naming the key when there are none or one is unreadable. */
  function pemCertificates(k: string, text: string): crypto.X509Certificate[] {
    const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    if (blocks.length === 0) {
      problems.push(
        `${key(k)} must hold PEM certificates (-----BEGIN CERTIFICATE-----), the file's text, not its path`,
      );
      return [];
    }
    try {
      return blocks.map((b) => new crypto.X509Certificate(b));
    } catch (e) {
      problems.push(`${key(k)} holds a certificate that cannot be read: ${(e as Error).message}`);
      return [];
    }
  }

  /** tls "files": the chain and key are checked here, before anything reaches the host. */
  function readCertificateFiles(domains: readonly string[]): {
    certificate: string;
    privateKey: pulumi.Output<string>;
  } {
    const certText = raw("tlsCertificate");
    const keyText = raw("tlsPrivateKey");
    if (certText === undefined)
      problems.push(
        `${key("tlsCertificate")} is required when ${key("tls")} is "files": pulumi config set tlsCertificate -- < fullchain.pem`,
      );
    if (keyText === undefined)
      problems.push(
        `${key("tlsPrivateKey")} is required when ${key("tls")} is "files": pulumi config set --secret tlsPrivateKey -- < privkey.pem`,
      );
    else if (!secretKeys.has("tlsPrivateKey"))
      problems.push(
        `${key("tlsPrivateKey")} must be set with --secret, or it sits in Pulumi.<stack>.yaml in plain text: pulumi config set --secret tlsPrivateKey -- < privkey.pem`,
      );
    const certs = certText === undefined ? [] : pemCertificates("tlsCertificate", certText);
    if (certs.length && keyText !== undefined) {
      const leaf = certs[0];
      let privateKey: crypto.KeyObject | undefined;
      try {
        privateKey = crypto.createPrivateKey(keyText);
      } catch {
        problems.push(`${key("tlsPrivateKey")} is not a PEM private key (the value is secret and not shown)`);
      }
      if (privateKey && !leaf.checkPrivateKey(privateKey))
        problems.push(
          `${key("tlsPrivateKey")} does not belong to ${key("tlsCertificate")}'s first certificate (${leaf.subject.replace(/\n/g, ", ")}); the leaf must come first`,
        );
      const notAfter = new Date(leaf.validTo);
      if (notAfter.getTime() < Date.now())
        problems.push(`${key("tlsCertificate")} expired on ${notAfter.toISOString().slice(0, 10)}`);
      const uncovered = domains.filter((d) => !certificateCovers(leaf, d));
      if (uncovered.length)
        problems.push(
          `${key("tlsCertificate")} does not cover ${uncovered.map(q).join(", ")} of ${key("domains")} (it names ${leaf.subjectAltName ?? "no subjectAltName"})`,
        );
    }
    return {
      certificate: certText === undefined ? "" : certs.length ? certText.trim() + "\n" : "",
      privateKey: pulumi.secret(keyText === undefined ? "" : keyText.trim() + "\n"),
    };
  }

  /** Names or ids of SSH keys already uploaded to the Hetzner project (fingerprints are unique there). */
  function readHetznerSshKeys(): string[] {
    const entries = list(
      "hetznerSshKeys",
      "names or ids of SSH keys in the Hetzner project, e.g. pulumi config set --path 'hetznerSshKeys[0]' my-laptop",
    );
    if (entries === undefined) return [];
    const out: string[] = [];
    for (const entry of entries) {
      const value = typeof entry === "number" && Number.isSafeInteger(entry) && entry > 0 ? String(entry) : entry;
      // eslint-disable-next-line no-control-regex -- refusing control characters is the point
      if (typeof value !== "string" || !/^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$/.test(value)) {
        problems.push(
          `${key("hetznerSshKeys")} entry ${q(entry)} is not an SSH key name or id (hcloud ssh-key list shows both)`,
        );
      } else {
        out.push(value);
      }
    }
    return out;
  }

  function readCidrs(): string[] {
    const v = raw("sshAllowedCidrs");
    if (v === undefined) return [...DEFAULTS.sshAllowedCidrs];
    let list: unknown;
    try {
      list = JSON.parse(v);
    } catch {
      list = undefined;
    }
    if (!Array.isArray(list) || list.length === 0 || !list.every((c) => typeof c === "string")) {
      problems.push(
        `${key("sshAllowedCidrs")} must be a non-empty list of CIDRs, e.g. pulumi config set --path 'sshAllowedCidrs[0]' 203.0.113.7/32`,
      );
      return [...DEFAULTS.sshAllowedCidrs];
    }
    for (const c of list) {
      if (!isCidr(c))
        problems.push(`${key("sshAllowedCidrs")} entry ${q(c)} is not a CIDR such as 203.0.113.7/32 or 2001:db8::/32`);
    }
    return list;
  }

  /** appCommand: checked as a systemd command line, and required by a bundle. */
  function readAppCommand(): string {
    const v = raw("appCommand")?.trim() ?? "";
    const bundles = COLORS.filter((c) => {
      const a = slots[c].artifact;
      return a.kind !== "build" && a.bundle;
    });
    if (v === "") {
      for (const c of bundles)
        problems.push(
          `${key("appCommand")} is required when ${key(`${c}Artifact`)} is a .tar.gz bundle: how a release starts, run from its directory, e.g. pulumi config set appCommand "node server.js"`,
        );
      return "";
    }
    const problem = appCommandProblem(v);
    if (problem) problems.push(`${key("appCommand")} ${problem} (got ${q(v)})`);
    if (setToNonDefault("appArgs"))
      problems.push(
        `${key("appArgs")} applies only to the single executable; with ${key("appCommand")} put the arguments in the command: pulumi config rm appArgs`,
      );
    return v;
  }

  function readHooks(): HooksConfig {
    const hook = (k: "preSwitch" | "postSwitch") => {
      const v = raw(k)?.trim() ?? "";
      // eslint-disable-next-line no-control-regex -- refusing control characters is the point
      if (/[\x00-\x08\x0b-\x1f\x7f]/.test(v))
        problems.push(`${key(k)} must be shell text without control characters other than newline and tab`);
      return v;
    };
    const preSwitch = hook("preSwitch");
    const postSwitch = hook("postSwitch");
    const postSwitchFailure = oneOf("postSwitchFailure", ["warn", "rollback"], "warn");
    if (!postSwitch && setToNonDefault("postSwitchFailure"))
      problems.push(`${key("postSwitchFailure")} is set but ${key("postSwitch")} is empty; it would be ignored`);
    return { preSwitch, postSwitch, postSwitchFailure, timeoutSeconds: int("hookTimeout", 5, 3600) };
  }

  function readHostPackages(): string[] {
    const out: string[] = [];
    for (const entry of list(
      "hostPackages",
      "Debian/Ubuntu package names, e.g. pulumi config set --path 'hostPackages[0]' nodejs",
    ) ?? []) {
      if (typeof entry !== "string" || !APT_PACKAGE_RE.test(entry)) {
        problems.push(
          `${key("hostPackages")} entry ${q(entry)} is not a package name: lowercase letters, digits, + - and ., starting with a letter or digit and not ending in - (apt install NAME), optionally NAME=VERSION`,
        );
      } else if (out.includes(entry)) {
        problems.push(`${key("hostPackages")} lists ${q(entry)} twice`);
      } else out.push(entry);
    }
    return out;
  }

  function readBuildCommand(): string {
    const v = str("buildCommand").trim();
    const builds = COLORS.some((c) => slots[c].artifact.kind === "build");
    if (!builds && setToNonDefault("buildCommand"))
      problems.push(
        `${key("buildCommand")} is set but neither ${key("blueArtifact")} nor ${key("greenArtifact")} is "build"; it would be ignored`,
      );
    // eslint-disable-next-line no-control-regex -- refusing control characters is the point
    if (v === "" || /[\x00-\x08\x0a-\x1f\x7f]/.test(v))
      problems.push(`${key("buildCommand")} must be one line of shell (got ${q(v)})`);
    return v;
  }

  function readVersion(color: Color): string {
    const k = `${color}Version`;
    const v = raw(k);
    if (v === undefined) {
      problems.push(`${key(k)} is required: pulumi config set ${k} v1`);
      return "";
    }
    return matches(k, v, VERSION_RE, "1-64 letters, digits, '.', '_', '+' or '-', starting with a letter or digit");
  }

  function readArtifact(color: Color): Artifact {
    const k = `${color}Artifact` as const;
    const shaKey = `${color}Sha256`;
    const value = str(k);
    const sha = raw(shaKey)?.toLowerCase();
    if (sha !== undefined && !SHA256_RE.test(sha)) {
      problems.push(`${key(shaKey)} must be 64 hexadecimal characters (got ${q(raw(shaKey))})`);
    }
    if (value === "build") {
      if (sha !== undefined)
        problems.push(`${key(shaKey)} applies only to file or https artifacts; ${key(k)} is "build"`);
      return { kind: "build" };
    }
    if (/^[a-z]+:\/\//i.test(value)) {
      if (!/^https:\/\/[^\s'"`$\\]+$/.test(value)) {
        problems.push(`${key(k)} must be "build", a local file path, or an https:// URL (got ${shown(k, value)})`);
      } else if (sha === undefined) {
        problems.push(`${key(shaKey)} is required when ${key(k)} is a URL: the host verifies the download against it`);
      }
      const bundle = BUNDLE_RE.test(new URL(value).pathname);
      return { kind: "url", url: value, sha256: sha ?? "", secret: secretKeys.has(k), bundle };
    }
    const file = path.resolve(projectDir, value);
    if (!fs.existsSync(file) || !fs.statSync(file).isFile()) {
      problems.push(
        `${key(k)}: file ${shown(k, value)} does not exist (relative paths start at the project directory)`,
      );
      return { kind: "file", path: file, sha256: "", bundle: false };
    }
    const actual = sha256File(file);
    if (sha !== undefined && SHA256_RE.test(sha) && sha !== actual) {
      problems.push(`${key(shaKey)} is ${sha} but ${q(value)} has sha256 ${actual}`);
    }
    const bundle = BUNDLE_RE.test(file);
    if (bundle !== isGzip(file))
      problems.push(
        bundle
          ? `${key(k)}: ${q(value)} is named like a bundle but is not gzip data; make it with: tar -czf NAME.tar.gz -C DIR .`
          : `${key(k)}: ${q(value)} is gzip data; name a bundle .tar.gz or .tgz (or ship the executable itself)`,
      );
    return { kind: "file", path: file, sha256: actual, bundle };
  }
}

/** Debian policy's package names (apt install NAME), optionally pinned NAME=VERSION. */
// Not ending in "-": apt reads "nginx-" as "remove nginx".
const APT_PACKAGE_RE = /^[a-z0-9][a-z0-9+.-]*[a-z0-9+](=[A-Za-z0-9.+~:-]+)?$/;

/** Whether a file starts with gzip's magic bytes. */
export function isGzip(file: string): boolean {
  const fd = fs.openSync(file, "r");
  try {
    const b = Buffer.alloc(2);
    return fs.readSync(fd, b, 0, 2, 0) === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Why appCommand cannot be a slot's ExecStart, or undefined. Besides appArgs' rules: the
 * program is a plain word (a name systemd finds on its PATH, an absolute path, or a path
 * inside the release, e.g. .venv/bin/gunicorn), never one of systemd's prefixes ("+" would
 * run it as root, outside the sandbox), a variable or a path out of the release.
 */
export function appCommandProblem(cmd: string): string | undefined {
  const program = cmd.split(/\s+/)[0];
  if (!/^[A-Za-z0-9_./][A-Za-z0-9_./+-]*$/.test(program) || program.split("/").includes(".."))
    return `must start with the program to run: a name found on the host's PATH (node), an absolute path, or a path inside the release (bin/server); not ${JSON.stringify(program)}`;
  return unitArgsProblem(cmd);
}

/**
 * Why a value cannot follow the binary on a systemd ExecStart line, or undefined.
 * systemd reads "\\" as an escape (a trailing one joins the next line), "%" as a
 * specifier, a lone ";" as the start of a second command, and needs quotes to pair
 * (systemd.service(5), "Command lines"). ${VAR} from the env file stays allowed.
 */
export function unitArgsProblem(args: string): string | undefined {
  // eslint-disable-next-line no-control-regex -- refusing control characters is the point
  if (/[\x00-\x1f\x7f]/.test(args)) return "must be a single line without control characters";
  if (args.includes("\\")) return 'must not contain "\\" (systemd reads it as an escape)';
  if (args.includes("%"))
    return 'must not contain "%" (systemd expands it as a specifier; pass such values through appEnv and ${NAME})';
  if (/(^|\s);(\s|$)/.test(args)) return 'must not contain a lone ";" (systemd starts a second command there)';
  const inWord = /(?:[^\s]\$([A-Za-z_][A-Za-z0-9_]*)|\$([A-Za-z_][A-Za-z0-9_]*)[^\sA-Za-z0-9_])/.exec(args);
  if (inWord) {
    const name = inWord[1] ?? inWord[2];
    return `has $${name} inside a word, which systemd leaves as it is; write \${${name}}`;
  }
  let quote: string | undefined;
  for (const ch of args) {
    if (quote) {
      if (ch === quote) quote = undefined;
    } else if (ch === '"' || ch === "'") quote = ch;
  }
  if (quote) return `has an unclosed ${quote} quote`;
  return undefined;
}

export function sha256File(file: string): string {
  return crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

/**
 * The loopback ports an app gets when its port keys are 0: the historical ones for the
 * app named bluegreen, otherwise five consecutive ports from its name's hash in
 * 20001-29995 (the fifth, acme, only for HTTP-01 through HAProxy). Two names can still meet (1 in 1000); the host refuses the second app's
 * ports before anything changes, naming the key to set.
 */
export function autoPorts(app: string): { preview: number; check: number; blue: number; green: number; acme: number } {
  if (app === "bluegreen") return { preview: 8081, check: 8082, blue: 8001, green: 8002, acme: 8083 };
  let h = 0x811c9dc5;
  for (const ch of app) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  const base = 20000 + (h % 1000) * 10;
  return { preview: base + 1, check: base + 2, blue: base + 3, green: base + 4, acme: base + 5 };
}

/** The site's public URL when it has a domain (a wildcard as www.), else undefined (use the host's address). */
export function publicUrl(cfg: Pick<BluegreenConfig, "domains" | "tls">): string | undefined {
  const name = cfg.domains.find((d) => !d.startsWith("*.")) ?? cfg.domains[0]?.replace(/^\*\./, "www.");
  return name && `${cfg.tls.mode === "off" ? "http" : "https"}://${name}/`;
}

/** Whether a certificate's subjectAltName DNS names cover a domain (one wildcard label at the left). */
export function certificateCovers(cert: crypto.X509Certificate, domain: string): boolean {
  const names = (cert.subjectAltName ?? "")
    .split(", ")
    .filter((n) => n.startsWith("DNS:"))
    .map((n) => n.slice(4).toLowerCase());
  if (names.includes(domain)) return true;
  if (domain.startsWith("*.")) return false;
  const parent = domain.slice(domain.indexOf(".") + 1);
  return names.includes(`*.${parent}`);
}

function isIp(v: string): boolean {
  return net.isIP(v) !== 0;
}

function isCidr(v: string): boolean {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(v);
  if (!m) return false;
  const family = net.isIP(m[1]);
  const bits = Number(m[2]);
  return (family === 4 && bits <= 32) || (family === 6 && bits <= 128);
}
