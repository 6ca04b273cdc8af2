// The one table of bluegreen:* config keys. Everything else is derived from it: the defaults
// (DEFAULTS), the keys that may be secret (SECRET_CAPABLE), the typed values of the library
// entry (ConfigValues), Pulumi.yaml's config block and docs/configuration.md (npm run
// config:gen, components/config/generate.ts), and the refusal of keys it does not know.
// Scalar rules (allowed values, ranges, patterns) are checked from the row itself
// (components/config/reader.ts); what a row's `checkedBy` names checks the rest.

import { COLORS } from "../host/layout";

export const PROJECT = "bluegreen";

/** How Pulumi.yaml types a key (the engine checks stack values against it before the program runs). */
export type KeyType = "string" | "integer" | "boolean" | "array" | "object";

/** The sections of docs/configuration.md, in its order. */
export const AREAS = {
  host: "The host",
  ssh: "SSH",
  app: "The app",
  hooks: "Switch hooks",
  tls: "Domains and HTTPS",
  ports: "Loopback ports",
  switch: "Router, switch and rollback",
  releases: "Releases",
  balancer: "Several hosts: load balancer and private network",
  backups: "Backups and restore",
  notify: "Notifications",
  metrics: "Metrics",
} as const;
export type Area = keyof typeof AREAS;

export interface KeyRow {
  readonly type: KeyType;
  readonly area: Area;
  /** Absent only on keys every stack must set (`required`) and on undeclared ones. */
  readonly default?: string | number | boolean | readonly string[] | Readonly<Record<string, never>>;
  /** Every stack sets it; Pulumi.yaml declares it without a default, so the engine asks for it. */
  readonly required?: true;
  /**
   * Whether the key may be set with --secret, and how it stays secret end to end: "always"
   * (its values are secret wherever they go), "may" (with --secret it travels as a secret).
   * Every other key lands in plain text somewhere, so a secret value there is refused.
   */
  readonly secret?: { readonly kind: "always" | "may"; readonly why: string };
  /** A string key: the values it takes (loadConfig's "must be one of"). */
  readonly values?: readonly string[];
  /** An integer key: the range it takes. */
  readonly min?: number;
  readonly max?: number;
  /** A string key: its form, and the words its error uses ("must be WHAT"). */
  readonly pattern?: { readonly re: RegExp; readonly what: string };
  /** The area module that checks what the row's own rule cannot (components/config/NAME.ts). */
  readonly checkedBy: string;
  readonly description: string;
  /** Why Pulumi.yaml does not declare it (an optional secret, a retired key); it still is a key. */
  readonly undeclared?: string;
}

const PORT = { type: "integer", area: "ports", default: 0, min: 0, max: 65535, checkedBy: "ports" } as const;

/** What notifications tell (bluegreen:notifyEvents), in the order docs list them. */
export const NOTIFY_EVENTS = [
  "switch",
  "rollback",
  "staged-failed",
  "hook-failed",
  "backup-failed",
  "backup-missed",
  "restore",
  "tls-failed",
  "tls-expiring",
  "disk-low",
  "drift",
] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];
const SIZE = /^[1-9][0-9]*[KMG]$/;

/** Said by every key that only several hosts use. */
const SEVERAL_HOSTS = "Several Hetzner hosts only; with one host it is checked and does nothing.";
const ANY_BALANCER = "Several hosts only (any balancer); with one host it is checked and does nothing.";

const OPTIONAL_SECRET =
  'The engine cannot declare an optional secret: with `secret: true` and no default the key is required, and a default is filled in as plaintext, which fails "must be encrypted as it\'s secret" on every stack that does not set it.';

/** One row per key; the order is Pulumi.yaml's, and each area's order in docs/configuration.md. */
export const KEYS = {
  hostKind: {
    type: "string",
    area: "host",
    default: "multipass",
    values: ["hetzner", "multipass", "ssh", "stack"],
    checkedBy: "host",
    description:
      "hetzner (a new Hetzner Cloud server), multipass (a local VM), ssh (an existing host) or stack (the host another stack created)",
  },
  hostArch: {
    type: "string",
    area: "host",
    default: "",
    values: ["amd64", "arm64"],
    checkedBy: "host",
    description:
      "amd64 or arm64; empty: for multipass this machine's architecture (multipass runs VMs of its own), arm64 for Hetzner cax server types, else amd64",
  },
  sshHost: {
    type: "string",
    area: "host",
    default: "",
    checkedBy: "host",
    description: "hostKind ssh: the existing host's name or IP address",
  },
  hostStack: {
    type: "string",
    area: "host",
    default: "",
    pattern: {
      re: /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+){0,2}$/,
      what: "a stack name: NAME, PROJECT/NAME or ORG/PROJECT/NAME",
    },
    checkedBy: "host",
    description:
      "hostKind stack: the stack that created the host (NAME, PROJECT/NAME or ORG/PROJECT/NAME); its ip output is read through a StackReference",
  },
  hosts: {
    type: "object",
    area: "host",
    default: {},
    checkedBy: "hosts",
    description:
      "Several hosts that serve the app together, NAME: WHERE (names of a-z, 0-9 and -, at most 16): hostKind ssh: each host's address; hetzner: each server's location (empty: hetznerLocation); multipass: empty. Every switch moves all of them or none. Empty: one host, from the kind's own keys; the first host listed keeps a one-host stack's resources",
  },
  drainedHosts: {
    type: "array",
    area: "host",
    default: [],
    checkedBy: "hosts",
    description:
      "Names of hosts (in hosts) to take out of the load balancer: the router fails the balancer's health check on purpose, and nothing else runs on the host until its public requests have stopped",
  },
  hetznerServerType: {
    type: "string",
    area: "host",
    default: "cx23",
    pattern: { re: /^[a-z]+[0-9]+$/, what: "a Hetzner server type such as cx23 or cax11" },
    checkedBy: "host",
    description:
      "hostKind hetzner: the server type (cx23 x86, cax11 Arm); the US locations offer only cpx and ccx types",
  },
  hetznerLocation: {
    type: "string",
    area: "host",
    default: "fsn1",
    values: ["fsn1", "nbg1", "hel1", "ash", "hil", "sin"],
    checkedBy: "host",
    description: "hostKind hetzner: the location (fsn1, nbg1, hel1, ash, hil, sin)",
  },
  hetznerImage: {
    type: "string",
    area: "host",
    default: "ubuntu-24.04",
    pattern: { re: /^[a-z0-9.-]+$/, what: "a Hetzner image name such as ubuntu-24.04" },
    checkedBy: "host",
    description: "hostKind hetzner: the server's image",
  },
  hetznerSshKeys: {
    type: "array",
    area: "host",
    default: [],
    checkedBy: "host",
    description:
      "hostKind hetzner: names or ids of SSH keys already in the Hetzner project, put on a new server; empty: upload sshPublicKey as a new key",
  },
  hetznerProtect: {
    type: "boolean",
    area: "host",
    default: true,
    checkedBy: "host",
    description:
      "hostKind hetzner: protect the server, so that a change that would replace it, or a destroy, fails instead of deleting it and its data",
  },
  sshAllowedCidrs: {
    type: "array",
    area: "host",
    default: ["0.0.0.0/0", "::/0"],
    checkedBy: "host",
    description: "hostKind hetzner: the firewall's sources allowed to reach SSH (a non-empty list of CIDRs)",
  },
  multipassName: {
    type: "string",
    area: "host",
    default: "bluegreen",
    pattern: { re: /^[a-z][a-z0-9-]{0,39}$/, what: "a VM name of lowercase letters, digits and -" },
    checkedBy: "host",
    description: "hostKind multipass: the VM's name",
  },
  multipassCpus: {
    type: "integer",
    area: "host",
    default: 1,
    min: 1,
    max: 64,
    checkedBy: "host",
    description: "hostKind multipass: the VM's CPUs",
  },
  multipassMemory: {
    type: "string",
    area: "host",
    default: "1G",
    pattern: { re: SIZE, what: "a size such as 1G or 512M" },
    checkedBy: "host",
    description: "hostKind multipass: the VM's memory, e.g. 1G or 512M",
  },
  multipassDisk: {
    type: "string",
    area: "host",
    default: "8G",
    pattern: { re: SIZE, what: "a size such as 8G" },
    checkedBy: "host",
    description: "hostKind multipass: the VM's disk, e.g. 8G",
  },
  multipassImage: {
    type: "string",
    area: "host",
    default: "24.04",
    pattern: { re: /^[a-z0-9.:-]+$/, what: "a multipass image such as 24.04" },
    checkedBy: "host",
    description: "hostKind multipass: the VM's image",
  },
  sshUser: {
    type: "string",
    area: "ssh",
    default: "",
    pattern: { re: /^[a-z_][a-z0-9_-]{0,31}$/, what: "a Unix user name" },
    checkedBy: "ssh",
    description:
      "The SSH user; empty: root (hetzner, ssh, stack) or ubuntu (multipass). A user other than root needs passwordless sudo",
  },
  sshPort: {
    type: "integer",
    area: "ssh",
    default: 22,
    min: 1,
    max: 65535,
    checkedBy: "ssh",
    description: "The host's SSH port",
  },
  sshPrivateKey: {
    type: "string",
    area: "ssh",
    default: "",
    secret: { kind: "always", why: "it only reaches the SSH connection" },
    checkedBy: "ssh",
    description:
      "The SSH private key's text (not its path), for a machine with no agent and no key file (CI): pulumi config set --secret sshPrivateKey -- < ~/.ssh/id_ed25519. Unset: the ssh agent's keys ($SSH_AUTH_SOCK), else sshKeyFile",
  },
  sshKeyFile: {
    type: "string",
    area: "ssh",
    default: "",
    checkedBy: "ssh",
    description:
      "The private key file read when sshPrivateKey is unset and no ssh agent holds a key; empty: ~/.ssh/id_ed25519 (its .pub is the sshPublicKey a new host gets)",
  },
  sshPrivateKeyPassword: {
    type: "string",
    area: "ssh",
    default: "",
    secret: { kind: "always", why: "it only reaches the SSH connection" },
    checkedBy: "ssh",
    description: "The passphrase of a passphrase-protected sshPrivateKey or sshKeyFile (set with --secret)",
  },
  sshPublicKey: {
    type: "string",
    area: "ssh",
    default: "",
    checkedBy: "ssh",
    description:
      "The OpenSSH public key line installed on a new host; required for multipass, and for hetzner unless hetznerSshKeys names keys",
  },
  sshHostKey: {
    type: "string",
    area: "ssh",
    default: "",
    checkedBy: "ssh",
    description:
      "The host's SSH key line (ssh-keyscan output without the host name) that every step pins; empty: the key the program gave a Hetzner server, the one read inside a multipass VM, or else the first one the host shows (recorded in the stack's state)",
  },
  appName: {
    type: "string",
    area: "app",
    default: "bluegreen",
    pattern: {
      re: /^(?!apps$)[a-z]([a-z0-9-]{0,20}[a-z0-9])?$/,
      what: 'a name of lowercase letters, digits and - (at most 22: its Unix user is bluegreen-NAME; not "apps"), e.g. shop',
    },
    checkedBy: "load",
    description:
      "The app's name on the host; several apps (one stack each) can share a host. bluegreen keeps the layout of hosts set up before apps had names",
  },
  appCommand: {
    type: "string",
    area: "app",
    default: "",
    checkedBy: "app",
    description:
      "How a release starts, run from its directory, e.g. node server.js; required for a .tar.gz bundle. Empty: the single executable with appArgs. Write ${NAME}, not $NAME, inside a word",
  },
  appArgs: {
    type: "string",
    area: "app",
    default:
      "--listen ${BLUEGREEN_LISTEN} --color ${BLUEGREEN_COLOR} --version ${BLUEGREEN_VERSION} " +
      "--drain-timeout ${BLUEGREEN_DRAIN_TIMEOUT}s",
    checkedBy: "app",
    description:
      "The single executable's arguments (not with appCommand); systemd expands ${BLUEGREEN_*} and ${NAME} from the slot's env file",
  },
  appSecrets: {
    type: "object",
    area: "app",
    secret: { kind: "always", why: "a secret env file, sent on stdin" },
    checkedBy: "app",
    description:
      "Secret environment of both slots, NAME: value, with appEnv's rules and no name in both: pulumi config set --secret --path 'appSecrets.DB_PASSWORD' ...; hook output is scrubbed of the values",
    undeclared: OPTIONAL_SECRET,
  },
  appEnv: {
    type: "object",
    area: "app",
    default: {},
    secret: { kind: "may", why: "with --secret, the whole env file becomes a secret on stdin" },
    checkedBy: "app",
    description:
      "Environment of both slots, NAME: value: pulumi config set --path 'appEnv.LOG_LEVEL' info. No BLUEGREEN_* (reserved) or LD_* names, and no PORT with appCommand in tcp mode (bluegreen sets it)",
  },
  healthPath: {
    type: "string",
    area: "app",
    default: "/health/ready",
    pattern: { re: /^\/[A-Za-z0-9._~/-]*$/, what: "an absolute URL path such as /health/ready" },
    checkedBy: "app",
    description: "The readiness path every slot must answer 2xx on before it may take traffic",
  },
  healthTimeout: {
    type: "integer",
    area: "app",
    default: 60,
    min: 5,
    max: 900,
    checkedBy: "app",
    description: "Seconds a deployed slot has to become ready",
  },
  drainTimeout: {
    type: "integer",
    area: "app",
    default: 25,
    min: 1,
    max: 600,
    checkedBy: "app",
    description: "Seconds a stopping slot may spend finishing in-flight requests",
  },
  hostPackages: {
    type: "array",
    area: "app",
    default: [],
    checkedBy: "app",
    description:
      "apt packages the app needs on the host (nodejs, php-cli, python3-venv), optionally NAME=VERSION, installed before any slot starts; never upgraded or removed: pulumi config set --path 'hostPackages[0]' nodejs",
  },
  preSwitch: {
    type: "string",
    area: "hooks",
    default: "",
    checkedBy: "hooks",
    description:
      "Shell run on the host as the target slot (its user, env, release directory, data directory) before traffic moves, e.g. node migrate.js; a failure leaves traffic where it is",
  },
  postSwitch: {
    type: "string",
    area: "hooks",
    default: "",
    checkedBy: "hooks",
    description: "Shell run on the host as the new live slot after the switch is confirmed, e.g. a notification",
  },
  postSwitchFailure: {
    type: "string",
    area: "hooks",
    default: "warn",
    values: ["warn", "rollback"],
    checkedBy: "hooks",
    description: "What a failed postSwitch does: warn (traffic stays) or rollback (traffic moves back)",
  },
  hookTimeout: {
    type: "integer",
    area: "hooks",
    default: 600,
    min: 5,
    max: 3600,
    checkedBy: "hooks",
    description: "Seconds a preSwitch or postSwitch may run before it is stopped (a failure)",
  },
  domains: {
    type: "array",
    area: "tls",
    default: [],
    checkedBy: "tls",
    description:
      "Domain names the site answers to and the certificate covers (a wildcard as *.example.com): pulumi config set --path 'domains[0]' example.com. Empty: any name, HTTP only",
  },
  tls: {
    type: "string",
    area: "tls",
    default: "off",
    values: ["off", "acme", "files"],
    checkedBy: "tls",
    description:
      "HTTPS, with either router: off, acme (certificates issued and renewed on the host by lego) or files (your certificate: tlsCertificate plus the secret tlsPrivateKey)",
  },
  acmeEmail: {
    type: "string",
    area: "tls",
    default: "",
    checkedBy: "tls",
    description: "tls acme: the ACME account's contact email (required)",
  },
  acmeDirectory: {
    type: "string",
    area: "tls",
    default: "letsencrypt",
    checkedBy: "tls",
    description: "tls acme: letsencrypt, letsencrypt-staging, or the https:// URL of any RFC 8555 directory",
  },
  acmeChallenge: {
    type: "string",
    area: "tls",
    default: "http-01",
    values: ["http-01", "dns-01"],
    checkedBy: "tls",
    description:
      "tls acme: http-01 (answered on port 80 through the router, no downtime) or dns-01 (needed for wildcards; set acmeDnsProvider)",
  },
  acmeDnsProvider: {
    type: "string",
    area: "tls",
    default: "",
    pattern: { re: /^[a-z0-9][a-z0-9.-]{0,39}$/, what: "a lego DNS provider code such as hetzner" },
    checkedBy: "tls",
    description: "dns-01: lego's DNS provider code, e.g. hetzner or cloudflare (lego dnshelp lists them)",
  },
  acmeDnsEnv: {
    type: "object",
    area: "tls",
    default: {},
    secret: { kind: "always", why: "the DNS provider's credentials: a 0600 file on the host, sent on stdin" },
    checkedBy: "tls",
    description:
      "dns-01: the provider's credentials as lego reads them, set with --secret: pulumi config set --secret --path 'acmeDnsEnv.HETZNER_API_KEY' ...",
  },
  acmeDnsResolvers: {
    type: "array",
    area: "tls",
    default: [],
    checkedBy: "tls",
    description: "dns-01: host:port resolvers lego checks propagation with, e.g. 1.1.1.1:53; empty: the host's",
  },
  acmeDnsPropagationCheck: {
    type: "boolean",
    area: "tls",
    default: true,
    checkedBy: "tls",
    description:
      "dns-01: false skips lego's check that the TXT record is visible at the zone's nameservers (split-horizon DNS)",
  },
  acmeCaCertificate: {
    type: "string",
    area: "tls",
    default: "",
    checkedBy: "tls",
    description:
      "tls acme: PEM of the CA that signs a private ACME directory's https certificate; empty: the host's CAs",
  },
  tlsCertificate: {
    type: "string",
    area: "tls",
    default: "",
    checkedBy: "tls",
    description:
      "tls files: the PEM chain, leaf first, covering every domain: pulumi config set tlsCertificate -- < fullchain.pem",
  },
  tlsPrivateKey: {
    type: "string",
    area: "tls",
    secret: { kind: "always", why: "a 0640 file on the host, sent on stdin" },
    checkedBy: "tls",
    description:
      "tls files: the certificate's private key, set with --secret: pulumi config set --secret tlsPrivateKey -- < privkey.pem",
    undeclared: OPTIONAL_SECRET,
  },
  hstsMaxAge: {
    type: "integer",
    area: "tls",
    default: 0,
    min: 0,
    max: 63072000,
    checkedBy: "tls",
    description: "With tls on: Strict-Transport-Security max-age in seconds (e.g. 31536000); 0 sends no HSTS header",
  },
  serverName: {
    type: "string",
    area: "tls",
    checkedBy: "tls",
    description: "Retired: replaced by domains. A stack that still sets it is refused with the command that moves it",
    undeclared: "It is retired and read only to say what replaced it.",
  },
  bluePort: {
    ...PORT,
    description:
      "linkMode tcp only: the 127.0.0.1 port blue listens on; 0: automatic (8001 for the app bluegreen, else from the app's name)",
  },
  greenPort: {
    ...PORT,
    description:
      "linkMode tcp only: the 127.0.0.1 port green listens on; 0: automatic (8002, else from the app's name)",
  },
  previewPort: {
    ...PORT,
    description:
      "The 127.0.0.1 port of the preview listener, which always reaches the idle slot; 0: automatic (8081, else from the app's name)",
  },
  checkPort: {
    ...PORT,
    description:
      "The 127.0.0.1 port of the check listener (the live slot through the router, never in maintenance), which the switch verifies through; 0: automatic (8082, else from the app's name)",
  },
  acmePort: {
    ...PORT,
    description:
      "router haproxy with tls acme and http-01 only: the 127.0.0.1 port lego answers HTTP-01 challenges on, behind HAProxy; 0: automatic (8083, else from the app's name)",
  },
  active: {
    type: "string",
    area: "switch",
    default: "blue",
    values: COLORS,
    checkedBy: "load",
    description: "The slot that receives live traffic: blue or green. Changing it is the switch",
  },
  linkMode: {
    type: "string",
    area: "switch",
    default: "socket",
    values: ["socket", "tcp"],
    checkedBy: "load",
    description:
      "How the slots listen: socket (a unix socket) or tcp (a 127.0.0.1 port, bluePort and greenPort, for apps that only take a port). Either way the switch is one rename of the live link, which the router reads per request: no reload",
  },
  router: {
    type: "string",
    area: "switch",
    default: "nginx",
    values: ["nginx", "haproxy"],
    checkedBy: "load",
    description:
      "What routes public traffic to the slots, HTTP and HTTPS: nginx (it reads the live link per request) or haproxy (a map set through its runtime API). Every app on a host uses the same one",
  },
  verifyTimeout: {
    type: "integer",
    area: "switch",
    default: 15,
    min: 1,
    max: 120,
    checkedBy: "switch",
    description:
      "Seconds the switch waits for the router to serve the target slot on the check listener, right after the switch and again after the watch; if it does not, the live link is put back",
  },
  watchSeconds: {
    type: "integer",
    area: "switch",
    default: 30,
    min: 0,
    max: 3600,
    checkedBy: "switch",
    description:
      "After a switch, watch the new slot's 5xx for this long and move traffic back on a breach; 0 turns it off",
  },
  rollbackErrorPercent: {
    type: "integer",
    area: "switch",
    default: 5,
    min: 1,
    max: 100,
    checkedBy: "switch",
    description: "The share of the new slot's responses (percent) that may be 5xx during the watch",
  },
  rollbackMinErrors: {
    type: "integer",
    area: "switch",
    default: 5,
    min: 1,
    max: 1_000_000,
    checkedBy: "switch",
    description:
      "The watch rolls back only once at least this many 5xx were seen (so one error in three requests does not)",
  },
  maintenance: {
    type: "boolean",
    area: "switch",
    default: false,
    checkedBy: "switch",
    description: "Serve a 503 maintenance page with Retry-After instead of the live slot; both slots keep running",
  },
  maintenanceRetryAfter: {
    type: "integer",
    area: "switch",
    default: 120,
    min: 1,
    max: 86400,
    checkedBy: "switch",
    description: "Seconds in the maintenance page's Retry-After header",
  },
  blueVersion: {
    type: "string",
    area: "releases",
    required: true,
    checkedBy: "releases",
    description:
      "The version of the release the blue slot runs: 1-64 letters, digits, . _ + -, starting with a letter or digit",
  },
  greenVersion: {
    type: "string",
    area: "releases",
    required: true,
    checkedBy: "releases",
    description: "The version of the release the green slot runs (as blueVersion)",
  },
  blueArtifact: {
    type: "string",
    area: "releases",
    default: "build",
    secret: { kind: "may", why: "a URL travels on stdin as a secret, never on a command line" },
    checkedBy: "releases",
    description:
      "build (buildCommand builds blueVersion), a local file path (an executable, or a .tar.gz/.tgz bundle), or an https:// URL (needs blueSha256)",
  },
  greenArtifact: {
    type: "string",
    area: "releases",
    default: "build",
    secret: { kind: "may", why: "a URL travels on stdin as a secret, never on a command line" },
    checkedBy: "releases",
    description: "As blueArtifact, for green: build, a local file path, or an https:// URL (needs greenSha256)",
  },
  blueSha256: {
    type: "string",
    area: "releases",
    default: "",
    checkedBy: "releases",
    description: "sha256 of blue's artifact: required for a URL, checked for a file, refused for build",
  },
  greenSha256: {
    type: "string",
    area: "releases",
    default: "",
    checkedBy: "releases",
    description: "sha256 of green's artifact: required for a URL, checked for a file, refused for build",
  },
  buildCommand: {
    type: "string",
    area: "releases",
    default: 'bash app/build.sh "$BLUEGREEN_VERSION" "$BLUEGREEN_ARCH" "$BLUEGREEN_OUT"',
    checkedBy: "releases",
    description:
      'For an artifact "build": one line of shell run with bash in the project directory; writes the executable or .tar.gz bundle for $BLUEGREEN_VERSION ($BLUEGREEN_ARCH) to $BLUEGREEN_OUT. Must be reproducible',
  },
  bundleMaxMegabytes: {
    type: "integer",
    area: "releases",
    default: 1024,
    min: 1,
    max: 65536,
    checkedBy: "load",
    description: "A .tar.gz bundle may unpack to at most this many MiB on the host",
  },
  keepReleases: {
    type: "integer",
    area: "releases",
    default: 5,
    min: 2,
    max: 1000,
    checkedBy: "load",
    description:
      "How many of the newest releases stay on the host; a release a slot runs, is configured for or has staged stays too, however old",
  },
  loadBalancerType: {
    type: "string",
    area: "balancer",
    default: "lb11",
    pattern: { re: /^lb[0-9]{2}$/, what: "a Hetzner load balancer type such as lb11, lb21 or lb31" },
    checkedBy: "balancer",
    description: `The Hetzner load balancer's type (lb11 is the smallest). ${SEVERAL_HOSTS}`,
  },
  loadBalancerAlgorithm: {
    type: "string",
    area: "balancer",
    default: "round_robin",
    values: ["round_robin", "least_connections"],
    checkedBy: "balancer",
    description: `How the balancer spreads requests over the hosts (Hetzner has no weights). ${SEVERAL_HOSTS}`,
  },
  loadBalancerHealthInterval: {
    type: "integer",
    area: "balancer",
    default: 5,
    min: 3,
    max: 60,
    checkedBy: "balancer",
    description: `Seconds between the balancer's health checks of each host, which ask ${"/.bluegreen/health"} (the host's live slot's healthPath, or 503 while drained). With hostKind ssh, your own balancer's: drainedHosts waits by it. ${ANY_BALANCER}`,
  },
  loadBalancerHealthTimeout: {
    type: "integer",
    area: "balancer",
    default: 3,
    min: 1,
    max: 59,
    checkedBy: "balancer",
    description: `Seconds one health check may take; less than loadBalancerHealthInterval. With hostKind ssh, your own balancer's. ${ANY_BALANCER}`,
  },
  loadBalancerHealthRetries: {
    type: "integer",
    area: "balancer",
    default: 3,
    min: 1,
    max: 5,
    checkedBy: "balancer",
    description: `Failed checks in a row before the balancer stops sending a host requests, and passed checks before it sends them again. With hostKind ssh, your own balancer's. ${ANY_BALANCER}`,
  },
  loadBalancerTls: {
    type: "string",
    area: "balancer",
    default: "host",
    values: ["host", "balancer"],
    checkedBy: "balancer",
    description: `With tls on, where HTTPS ends: host (the balancer passes TLS through; each host has the certificate, so tls acme needs acmeChallenge dns-01) or balancer (a Hetzner certificate on the balancer: managed for tls acme, whose domains must be in Hetzner DNS, or uploaded for tls files). ${SEVERAL_HOSTS}`,
  },
  loadBalancerStickyCookie: {
    type: "string",
    area: "balancer",
    default: "",
    pattern: { re: /^[A-Za-z0-9_-]{1,64}$/, what: "a cookie name of 1 to 64 letters, digits, _ and -" },
    checkedBy: "balancer",
    description: `Sticky sessions: the name of the cookie the balancer sets to send a client back to the same host; empty: none. Needs the balancer to see HTTP (tls off, or loadBalancerTls balancer). ${SEVERAL_HOSTS}`,
  },
  networkIpRange: {
    type: "string",
    area: "balancer",
    default: "10.0.0.0/16",
    checkedBy: "balancer",
    description: `The private network of the hosts and the balancer: a /8 to /23 range in 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16; its second /24 is the subnet (each host at an address from its name, the balancer at .2). Set it before the first pulumi up with several hosts: a new range replaces the network, and every host leaves the balancer until it has joined the new one. ${SEVERAL_HOSTS}`,
  },
  backupDatabases: {
    type: "array",
    area: "backups",
    default: [],
    checkedBy: "data",
    description:
      "SQLite database files under the app's data directory to back up, e.g. app.db (pulumi config set --path 'backupDatabases[0]' app.db): copied hourly while the app writes (VACUUM INTO), each copy checked with PRAGMA integrity_check, and snapshotted right before every preSwitch hook. Empty: no backups",
  },
  backupKeepHourly: {
    type: "integer",
    area: "backups",
    default: 24,
    min: 1,
    max: 1000,
    checkedBy: "data",
    description: "How many of the newest hourly backups to keep, on the host and off it",
  },
  backupKeepDaily: {
    type: "integer",
    area: "backups",
    default: 7,
    min: 0,
    max: 1000,
    checkedBy: "data",
    description: "How many days keep their first backup of the day (UTC), on the host and off it",
  },
  backupKeepSnapshots: {
    type: "integer",
    area: "backups",
    default: 10,
    min: 1,
    max: 1000,
    checkedBy: "data",
    description:
      "How many of the newest pre-migration snapshots (taken before each preSwitch) and pre-restore copies to keep",
  },
  backupRemote: {
    type: "object",
    area: "backups",
    default: {},
    secret: { kind: "always", why: "the remote's credentials: a 0600 rclone config on the host, sent on stdin" },
    checkedBy: "data",
    description:
      "Off-host copies with rclone: the remote's settings as rclone names them, set with --secret: type s3 (any S3-compatible store: provider, endpoint, access_key_id, secret_access_key, region) or sftp (host, user, port, key_pem or pass), e.g. pulumi config set --secret --path 'backupRemote.type' s3. Empty: copies stay on the host",
  },
  backupRemotePath: {
    type: "string",
    area: "backups",
    default: "",
    pattern: {
      re: /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/,
      what: "a bucket or directory path such as my-bucket/backups",
    },
    checkedBy: "data",
    description:
      "With backupRemote: the bucket and folder (s3) or directory (sftp) the encrypted copies go to; each app writes under its own name there",
  },
  backupPassphrase: {
    type: "string",
    area: "backups",
    secret: {
      kind: "always",
      why: "it encrypts the off-host copies (rclone crypt); a 0600 file on the host, sent on stdin",
    },
    checkedBy: "data",
    description:
      "With backupRemote: the passphrase copies are encrypted with (rclone crypt: contents and names) before they leave the host, set with --secret. Keep it outside the stack too: without it no copy can be read",
    undeclared: OPTIONAL_SECRET,
  },
  notifyWebhook: {
    type: "string",
    area: "notify",
    secret: { kind: "always", why: "the URL is the credential: a 0600 curl config on the host, sent on stdin" },
    checkedBy: "notify",
    description:
      "An https:// URL that gets each event as a JSON POST (event, app, host, message, time, fields), set with --secret",
    undeclared: OPTIONAL_SECRET,
  },
  notifySlack: {
    type: "string",
    area: "notify",
    secret: { kind: "always", why: "the URL is the credential: a 0600 curl config on the host, sent on stdin" },
    checkedBy: "notify",
    description: "A Slack (or Slack-compatible: Mattermost, Rocket.Chat) incoming webhook URL, set with --secret",
    undeclared: OPTIONAL_SECRET,
  },
  notifyDiscord: {
    type: "string",
    area: "notify",
    secret: { kind: "always", why: "the URL is the credential: a 0600 curl config on the host, sent on stdin" },
    checkedBy: "notify",
    description: "A Discord webhook URL, set with --secret",
    undeclared: OPTIONAL_SECRET,
  },
  notifyNtfy: {
    type: "string",
    area: "notify",
    secret: { kind: "always", why: "the topic URL is the credential: a 0600 curl config on the host, sent on stdin" },
    checkedBy: "notify",
    description:
      "An ntfy topic URL (https://ntfy.sh/TOPIC, or your server's; https://user:password@host/TOPIC for a protected one), set with --secret",
    undeclared: OPTIONAL_SECRET,
  },
  notifyEmail: {
    type: "array",
    area: "notify",
    default: [],
    checkedBy: "notify",
    description:
      "Addresses that get each event by mail through the host's sendmail (postfix, msmtp-mta, ...; notifications say so when the host has none)",
  },
  notifyEvents: {
    type: "array",
    area: "notify",
    default: [...NOTIFY_EVENTS],
    checkedBy: "notify",
    description:
      "Which events are sent: switch, rollback (automatic), staged-failed (a staged change failed on the old slot), hook-failed, backup-failed, backup-missed, restore, tls-failed (a renewal), tls-expiring (under 14 days), disk-low, drift (the host disagrees with what bluegreen recorded)",
  },
  notifyDiskFreePercent: {
    type: "integer",
    area: "notify",
    default: 10,
    min: 1,
    max: 50,
    checkedBy: "notify",
    description: "disk-low is sent when the data directory's or the state's filesystem has less than this share free",
  },
  metrics: {
    type: "boolean",
    area: "metrics",
    default: false,
    checkedBy: "metrics",
    description:
      "Prometheus metrics of the app (live colour, versions, switches, rollbacks, requests and 5xx per slot, backups, certificate expiry, staged changes) on a loopback port, and in node_exporter's textfile directory when the host has one",
  },
  metricsPort: {
    type: "integer",
    area: "metrics",
    default: 0,
    min: 0,
    max: 65535,
    checkedBy: "metrics",
    description:
      "With metrics: the 127.0.0.1 port that serves /metrics; 0: automatic (9464 for the app bluegreen, else the app's sixth automatic port)",
  },
} as const satisfies Record<string, KeyRow>;

export type Key = keyof typeof KEYS;
type Row<K extends Key> = (typeof KEYS)[K];

/** The keys whose row is of this shape, e.g. KeysWhere<{ type: "integer" }>. */
export type KeysWhere<C> = { [K in Key]: Row<K> extends C ? K : never }[Key];

/** The table as plain rows, for code that walks it. */
export const ROWS: readonly (readonly [Key, KeyRow])[] = Object.entries(KEYS) as [Key, KeyRow][];

export function isKey(k: string): k is Key {
  return Object.prototype.hasOwnProperty.call(KEYS, k);
}

/** A key's row, as a plain row. */
export const row = (k: Key): KeyRow => KEYS[k];

/** Keys with a default (every key but the required and the undeclared ones). */
export type DefaultKey = { [K in Key]: Row<K> extends { default: unknown } ? K : never }[Key];

/** Defaults, as the table has them (Pulumi.yaml declares the same: npm run config:gen). */
export const DEFAULTS = Object.fromEntries(
  ROWS.filter(([, r]) => r.default !== undefined).map(([k, r]) => [k, r.default]),
) as {
  readonly [K in DefaultKey]: Row<K>["default"];
};

/**
 * Keys that may be set with --secret, and how each stays secret end to end: the always-secret
 * ones first, then those that may be. Every other key lands in plain text somewhere (a command
 * line, the router's config, a unit file, an output), so a secret value there is refused rather than leaked.
 */
export const SECRET_CAPABLE: Readonly<Record<string, string>> = Object.fromEntries(
  (["always", "may"] as const).flatMap((kind) =>
    ROWS.filter(([, r]) => r.secret?.kind === kind).map(([k, r]) => [k, `${kind} secret: ${r.secret!.why}`]),
  ),
);

type Values<R> = R extends { values: readonly (infer V)[] } ? V : never;
type ValueOf<R> = R extends { values: readonly string[] }
  ? Values<R>
  : R extends { type: "integer" }
    ? number
    : R extends { type: "boolean" }
      ? boolean
      : R extends { type: "array" }
        ? readonly string[]
        : R extends { type: "object" }
          ? Readonly<Record<string, string>>
          : string;
type RequiredKey = { [K in Key]: Row<K> extends { required: true } ? K : never }[Key];
/** serverName is retired: configFrom refuses it with what replaced it, and the type does not offer it. */
type OptionalKey = Exclude<Key, RequiredKey | "serverName">;

/**
 * The config as a plain object, for configFrom: the table's keys, typed as Pulumi.yaml types them
 * (a key with allowed values as their union). Numbers, booleans, lists and maps are given as such.
 */
export type ConfigValues = { readonly [K in RequiredKey]: ValueOf<Row<K>> } & {
  readonly [K in OptionalKey]?: ValueOf<Row<K>>;
};

/** The type of a key's value in the table: its allowed values as a union, a number, a boolean, a list or a map. */
export type ValueOfKey<K extends Key> = ValueOf<Row<K>>;
