// Every stack config key is read and validated here, and nowhere else.
// Validation is synchronous and runs before any resource is registered, so a
// bad value stops `pulumi preview`/`up` before anything reaches the host.

import * as crypto from "crypto";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { Color, COLORS } from "./layout";

export const PROJECT = "bluegreen";

export type LinkMode = "socket" | "tcp";
export type HostKind = "hetzner" | "multipass" | "ssh";
export type Arch = "amd64" | "arm64";

export type Artifact =
  /** Build the demo app in app/ for this version (needs Go where pulumi runs). */
  | { readonly kind: "build" }
  /** A local file uploaded over SFTP; sha256 computed here and checked on the host. */
  | { readonly kind: "file"; readonly path: string; readonly sha256: string }
  /** Downloaded on the host over https and verified against sha256; the URL travels on stdin (it may hold a token). */
  | { readonly kind: "url"; readonly url: string; readonly sha256: string; readonly secret: boolean };

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
  | { readonly kind: "ssh"; readonly address: string };

export interface SshConfig {
  readonly user: string;
  readonly port: number;
  readonly privateKey: pulumi.Output<string>;
  readonly publicKey?: string;
  readonly hostKey?: string;
}

export interface AppConfig {
  readonly healthPath: string;
  readonly healthTimeoutSeconds: number;
  readonly drainTimeoutSeconds: number;
  readonly args: string;
  readonly env: Readonly<Record<string, string>>;
  /** Secret values; undefined when none are configured. */
  readonly secrets?: pulumi.Output<Record<string, string>>;
}

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
  readonly linkMode: LinkMode;
  readonly arch: Arch;
  readonly host: HostConfig;
  readonly ssh: SshConfig;
  readonly slots: Readonly<Record<Color, SlotConfig>>;
  readonly app: AppConfig;
  readonly previewPort: number;
  readonly serverName: string;
}

/** Defaults, mirrored in Pulumi.yaml (a test keeps the two equal). */
export const DEFAULTS = {
  active: "blue",
  linkMode: "socket",
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
  bluePort: 8001,
  greenPort: 8002,
  previewPort: 8081,
  checkPort: 8082,
  maintenance: false,
  maintenanceRetryAfter: 120,
  watchSeconds: 30,
  rollbackErrorPercent: 5,
  rollbackMinErrors: 5,
  keepReleases: 5,
  serverName: "_",
  healthPath: "/health/ready",
  healthTimeout: 60,
  drainTimeout: 25,
  appArgs:
    "--listen ${BLUEGREEN_LISTEN} --color ${BLUEGREEN_COLOR} --version ${BLUEGREEN_VERSION} " +
    "--drain-timeout ${BLUEGREEN_DRAIN_TIMEOUT}s",
} as const;

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
const SERVER_NAME_RE = /^[A-Za-z0-9*_.-]+( [A-Za-z0-9*_.-]+)*$/;
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
  const str = (k: keyof typeof DEFAULTS) => raw(k) ?? String(DEFAULTS[k]);
  const oneOf = <T extends string>(k: string, allowed: readonly T[], fallback: T): T => {
    const v = raw(k) ?? fallback;
    if ((allowed as readonly string[]).includes(v)) return v as T;
    problems.push(`${key(k)} must be one of ${allowed.join(", ")} (got ${q(v)})`);
    return fallback;
  };
  const int = (k: keyof typeof DEFAULTS, min: number, max: number): number => {
    const v = raw(k) ?? String(DEFAULTS[k]);
    const n = Number(v);
    if (!/^-?\d+$/.test(v.trim()) || n < min || n > max) {
      problems.push(`${key(k)} must be a whole number from ${min} to ${max} (got ${q(v)})`);
      return Number(DEFAULTS[k]);
    }
    return n;
  };
  const bool = (k: keyof typeof DEFAULTS): boolean => {
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
    const secret = secretKeys.has(k) || k === "appSecrets";
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
  const linkMode = oneOf<LinkMode>("linkMode", ["socket", "tcp"], "socket");
  const problemsBeforeHost = problems.length;
  const hostKind = oneOf<HostKind>("hostKind", ["hetzner", "multipass", "ssh"], "multipass");
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
  else if (hostKindKnown && hostKind !== "ssh") {
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
    blue: int("bluePort", 1024, 65535),
    green: int("greenPort", 1024, 65535),
    preview: int("previewPort", 1024, 65535),
    check: int("checkPort", 1024, 65535),
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
  const envRaw = object("appEnv");
  const secretsRaw = object("appSecrets");
  for (const name of Object.keys(secretsRaw)) {
    if (name in envRaw)
      problems.push(`${key("appSecrets")}.${name} is also set in ${key("appEnv")}; keep each name in one of them`);
  }
  // appEnv set with --secret joins the secrets: the whole env file is then a secret.
  const envSecret = secretKeys.has("appEnv");
  const allSecrets = envSecret ? { ...envRaw, ...secretsRaw } : secretsRaw;
  const app: AppConfig = {
    healthPath,
    healthTimeoutSeconds: int("healthTimeout", 5, 900),
    drainTimeoutSeconds: int("drainTimeout", 1, 600),
    args,
    env: envSecret ? {} : envRaw,
    secrets: Object.keys(allSecrets).length ? pulumi.secret(allSecrets) : undefined,
  };

  const serverName = matches(
    "serverName",
    str("serverName"),
    SERVER_NAME_RE,
    "nginx server names separated by spaces, or _",
  );
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
    linkMode,
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
    serverName,
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

  /** Names or ids of SSH keys already uploaded to the Hetzner project (fingerprints are unique there). */
  function readHetznerSshKeys(): string[] {
    const v = raw("hetznerSshKeys");
    if (v === undefined) return [];
    let list: unknown;
    try {
      list = JSON.parse(v) as unknown;
    } catch {
      list = undefined;
    }
    if (!Array.isArray(list)) {
      problems.push(
        `${key("hetznerSshKeys")} must be a list of names or ids of SSH keys in the Hetzner project, e.g. pulumi config set --path 'hetznerSshKeys[0]' my-laptop`,
      );
      return [];
    }
    const out: string[] = [];
    for (const entry of list as unknown[]) {
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
      return { kind: "url", url: value, sha256: sha ?? "", secret: secretKeys.has(k) };
    }
    const file = path.resolve(projectDir, value);
    if (!fs.existsSync(file) || !fs.statSync(file).isFile()) {
      problems.push(
        `${key(k)}: file ${shown(k, value)} does not exist (relative paths start at the project directory)`,
      );
      return { kind: "file", path: file, sha256: "" };
    }
    const actual = sha256File(file);
    if (sha !== undefined && SHA256_RE.test(sha) && sha !== actual) {
      problems.push(`${key(shaKey)} is ${sha} but ${q(value)} has sha256 ${actual}`);
    }
    return { kind: "file", path: file, sha256: actual };
  }
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
