// Runs the Pulumi program under mocks and records every resource it registers.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { checkStackConfig, loadProject, programValue, StackConfig } from "./engine";

// Internal to the SDK, but the only way to know every registration has been sent.
// eslint-disable-next-line @typescript-eslint/no-require-imports -- not in the SDK's typings
const { waitForRPCs } = require("@pulumi/pulumi/runtime/settings") as { waitForRPCs: () => Promise<void> };

export const ROOT = path.resolve(__dirname, "..", "..");
const SECRET_SIG = "4dabf18193072939515e22adb298388d";

export interface Registered {
  readonly type: string;
  readonly name: string;
  /** Inputs as the engine receives them: secrets wrapped in the SDK's secret envelope. */
  readonly inputs: Record<string, unknown>;
}

/** An alias as the program sent it: a URN, or a spec the engine completes (test/program/urns.test.ts). */
export interface AliasSent {
  readonly urn?: string;
  readonly name?: string;
  readonly type?: string;
  readonly parentUrn?: string;
  readonly noParent?: boolean;
}

/** A registration as the monitor saw it: the URN it gave, the parent's URN and the aliases sent. */
export interface Registration {
  readonly urn: string;
  readonly type: string;
  readonly name: string;
  readonly parent: string;
  readonly aliases: readonly AliasSent[];
}

export interface Run {
  readonly resources: Registered[];
  /** Every registration, components too, in the order the monitor received them. */
  readonly registrations: Registration[];
  readonly outputs: Record<string, unknown>;
  /** Output names whose values are secret. */
  readonly secretOutputs: string[];
}

/** A fake private key: validation only checks its shape; mocks never connect. */
export const FAKE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAfakekeyfortests\n-----END OPENSSH PRIVATE KEY-----\n";
export const FAKE_PUB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTestsOnly test@bluegreen";

/** A valid stack on an existing SSH host; tests override what they exercise. */
export const BASE_CONFIG: Record<string, unknown> = {
  hostKind: "ssh",
  sshHost: "203.0.113.10",
  sshPrivateKey: FAKE_KEY,
  blueVersion: "v1",
  greenVersion: "v1",
  blueArtifact: "test/fixtures/app-v1",
  greenArtifact: "test/fixtures/app-v1",
};
const SECRET_KEYS = ["bluegreen:sshPrivateKey", "bluegreen:appSecrets", "hcloud:token"];

export const MULTIPASS_INFO = (name: string) =>
  JSON.stringify({ errors: [], info: { [name]: { ipv4: ["10.12.0.5"], state: "Running" } } });
/** The host key the mocked VM (after its info JSON) and the mocked first-use scan report. */
export const MOCK_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMockHostKeyOfTheHost";
/** The hostKey output of the stack a `hostKind: stack` app attaches to. */
export const STACK_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyTheOtherStackKnows";

export function mockState(type: string, name: string, inputs: Record<string, unknown>): Record<string, unknown> {
  switch (type) {
    case "hcloud:index/server:Server":
      return { ...inputs, ipv4Address: "198.51.100.7", ipv6Address: "2001:db8::7" };
    case "pulumi:pulumi:StackReference":
      // The stack that created the host (hostKind stack) exports its address as `ip`.
      return { ...inputs, outputs: { ip: "203.0.113.20", hostKey: STACK_HOST_KEY }, secretOutputNames: [] };
    case "random:index/randomId:RandomId":
      return { ...inputs, hex: "a1b2c3" };
    case "random:index/randomBytes:RandomBytes":
      return { ...inputs, base64: Buffer.alloc(Number(inputs.length), 7).toString("base64") };
    case "command:local:Command":
      // host-ssh-hostkey: the key line host-key-scan.sh prints (as the pinned key, if it is given one).
      if (name.endsWith("-ssh-hostkey")) {
        const pinned = /PINNED='([^']*)'/.exec(String(plain(inputs.create)))?.[1];
        return { ...inputs, stdout: `${pinned ?? MOCK_HOST_KEY}\n`, stderr: "" };
      }
      return { ...inputs, stdout: `${MULTIPASS_INFO("bluegreen")}\n${MOCK_HOST_KEY}\n`, stderr: "" };
    case "command:remote:Command":
      return { ...inputs, stdout: "", stderr: "" };
    default:
      return inputs;
  }
}

/** A FileAsset's path arrives as a Promise; replace it with the resolved path. */
async function resolveAssetPaths(inputs: Record<string, unknown>): Promise<void> {
  for (const [k, v] of Object.entries(inputs)) {
    if (typeof v === "object" && v !== null && (v as { __pulumiAsset?: boolean }).__pulumiAsset) {
      inputs[k] = { asset: "file", path: await (v as { path: Promise<string> }).path };
    }
  }
}

export function isSecret(v: unknown): boolean {
  return typeof v === "object" && v !== null && SECRET_SIG in v;
}

/** Inputs with secret envelopes removed, for comparisons. */
export function plain(v: unknown): any {
  if (isSecret(v)) return plain((v as { value: unknown }).value);
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v === "object" && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

async function outputValue(o: pulumi.Output<unknown>): Promise<{ value: unknown; secret: boolean }> {
  // An apply that throws (the host's key has changed, say) rejects the output's inner promise, an
  // SDK internal: without it the run would wait forever, where `pulumi up` fails.
  const inner = (o as unknown as { promise: () => Promise<unknown> }).promise();
  const value = await new Promise((resolve, reject) => {
    o.apply((v) => resolve(v));
    inner.catch(reject);
  });
  return { value, secret: await pulumi.isSecret(o) };
}

/**
 * What `pulumi up` does with the stack config before the program runs
 * (test/support/engine.ts): check it against Pulumi.yaml's schema, failing with the
 * engine's message, and fill in the defaults the program then receives.
 */
function engineConfig(
  config: Record<string, unknown>,
  skipConfigValidation: boolean,
  secretKeys: readonly string[],
): Record<string, string> {
  const loaded = loadProject(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8"));
  if (!loaded.project) throw new Error(loaded.errors.join("\n"));
  const stack: StackConfig = {};
  for (const [k, v] of Object.entries(config)) {
    const key = k.includes(":") ? k : `bluegreen:${k}`;
    if (v !== undefined) stack[key] = { value: v, secure: secretKeys.includes(key) };
  }
  const { errors, merged } = checkStackConfig("dev", loaded.project, stack);
  if (errors.length && !skipConfigValidation) throw new Error(`validating stack config: ${errors[0]}`);
  return Object.fromEntries(Object.entries(merged).map(([k, v]) => [k, programValue(v)]));
}

export interface RunOptions {
  /**
   * Skip the engine's config check (defaults are still filled in), like the
   * CLI's --skip-config-validation. Only for tests of components/config/config.ts's
   * own messages on config the engine would already refuse.
   */
  readonly skipConfigValidation?: boolean;
  /** The stack's name (default dev): an app's owner on a shared host is organization/project/stack. */
  readonly stack?: string;
  /** Further keys the stack holds encrypted (`pulumi config set --secret`), besides the usual secret ones. */
  readonly secretKeys?: readonly string[];
  /**
   * PATH while the program runs. By default test/fixtures/bin (a multipass that is never run) comes
   * first, so the pre-flight check finds the tools a multipass stack needs.
   */
  readonly path?: string;
  /** HOME while the program runs (where it looks for ~/.ssh/id_ed25519); default: an empty folder. */
  readonly home?: string;
  /** Run as `pulumi preview` does (isDryRun); default: as `pulumi up`. */
  readonly preview?: boolean;
  /** SSH_AUTH_SOCK while the program runs; default: unset. */
  readonly sshAuthSock?: string;
  /**
   * The stdout a local command gives the resources that use it, as the engine would: the e2e
   * replay runs it (or keeps what its state recorded); undefined: the mock's own.
   */
  readonly localStdout?: (name: string, inputs: Record<string, unknown>) => Promise<string | undefined>;
}

const EMPTY_HOME = fs.mkdtempSync(path.join(os.tmpdir(), "bg-home-"));

/** What the last runProgram registered, also when the program threw (what the engine would have been sent). */
export let lastRegistrations: readonly Registration[] = [];

/** Loads index.ts afresh with this config (keys without a namespace are bluegreen:). */
export async function runProgram(config: Record<string, unknown>, opts: RunOptions = {}): Promise<Run> {
  const secretKeys = [...SECRET_KEYS, ...(opts.secretKeys ?? [])];
  const all = engineConfig(config, opts.skipConfigValidation ?? false, secretKeys);
  const resources: Registered[] = [];
  const pendingAssets: Promise<void>[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource: async (a) => {
        resources.push({ type: a.type, name: a.name, inputs: a.inputs });
        pendingAssets.push(resolveAssetPaths(a.inputs));
        // hcloud ids are numbers in disguise; the server takes the firewall's as one.
        const id = a.type === "hcloud:index/firewall:Firewall" ? "4242" : `${a.name}-id`;
        const local = a.type === "command:local:Command" ? await opts.localStdout?.(a.name, a.inputs) : undefined;
        const state = mockState(a.type, a.name, a.inputs);
        return { id: a.custom ? id : undefined, state: local === undefined ? state : { ...state, stdout: local } };
      },
      call: (a) => {
        throw new Error(`unexpected invoke ${a.token}`);
      },
    },
    "bluegreen",
    opts.stack ?? "dev",
    opts.preview ?? false,
    "organization",
  );
  const registrations = recordRegistrations();
  lastRegistrations = registrations;
  pulumi.runtime.setAllConfig(
    all,
    secretKeys.filter((k) => k in all),
  );
  for (const k of Object.keys(require.cache)) {
    if (
      k.startsWith(ROOT) &&
      !k.includes(`${path.sep}node_modules${path.sep}`) &&
      !k.includes(`${path.sep}test${path.sep}`)
    )
      delete require.cache[k];
  }
  // The program reads PATH (pre-flight), HOME and SSH_AUTH_SOCK (the SSH key when the config has none):
  // a test's own, never this machine's.
  const before = { PATH: process.env.PATH, HOME: process.env.HOME, SSH_AUTH_SOCK: process.env.SSH_AUTH_SOCK };
  process.env.PATH = opts.path ?? `${path.join(ROOT, "test", "fixtures", "bin")}${path.delimiter}${before.PATH}`;
  process.env.HOME = opts.home ?? EMPTY_HOME;
  if (opts.sshAuthSock) process.env.SSH_AUTH_SOCK = opts.sshAuthSock;
  else delete process.env.SSH_AUTH_SOCK;
  // Until every output is read: applies run after the program's module has loaded, and one of them
  // asks the host for its SSH key (ssh-keyscan, found on this PATH).
  const outputs: Record<string, unknown> = {};
  const secretOutputs: string[] = [];
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- re-run the program fresh each time
    const program = require(path.join(ROOT, "index")) as Record<string, unknown>;
    for (const [name, value] of Object.entries(program)) {
      if (pulumi.Output.isInstance(value)) {
        const r = await outputValue(value);
        outputs[name] = r.value;
        if (r.secret) secretOutputs.push(name);
      } else if (value !== undefined) outputs[name] = value; // the engine registers no undefined output
    }
    await waitForRPCs();
    await Promise.all(pendingAssets);
  } finally {
    for (const [k, v] of Object.entries(before)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  return { resources, registrations, outputs, secretOutputs };
}

// The SDK's mock monitor (runtime/mocks.js newUrn) names a child by its parent's last type only
// (Parent$Child), where the engine chains every ancestor's type (App$Slot$Command:
// deployment.go, resource.CreateURN). This wraps its registerResource to keep the engine's URN,
// the parent's and the aliases sent, as the engine would receive them.
function recordRegistrations(): Registration[] {
  const out: Registration[] = [];
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the SDK's internal settings, as above
  const settings = require("@pulumi/pulumi/runtime/settings") as { getMonitor: () => any };
  const monitor = settings.getMonitor();
  const register = monitor.registerResource.bind(monitor);
  const real = new Map<string, string>();
  const engineUrn = (parent: string, type: string, name: string) =>
    parent
      ? `${parent.slice(0, parent.lastIndexOf("::"))}$${type}::${name}`
      : `urn:pulumi:${pulumi.getStack()}::${pulumi.getProject()}::${type}::${name}`;
  monitor.registerResource = (req: any, callback: any) => {
    const parent = req.getParent() ? (real.get(req.getParent()) ?? req.getParent()) : "";
    const aliases: AliasSent[] = req.getAliasesList().map((a: any) => {
      const spec = a.getSpec();
      if (!spec) return { urn: a.getUrn() };
      return {
        ...(spec.getName() ? { name: spec.getName() } : {}),
        ...(spec.getType() ? { type: spec.getType() } : {}),
        ...(spec.getParenturn() ? { parentUrn: real.get(spec.getParenturn()) ?? spec.getParenturn() } : {}),
        ...(spec.getNoparent() ? { noParent: true } : {}),
      };
    });
    const urn = engineUrn(parent, req.getType(), req.getName());
    real.set(monitor.newUrn(req.getParent(), req.getType(), req.getName()) as string, urn);
    out.push({ urn, type: req.getType() as string, name: req.getName() as string, parent, aliases });
    return register(req, callback);
  };
  return out;
}

export const resourceKey = (r: Registered) => `${r.type}::${r.name}`;

export function find(run: Run, name: string): Registered {
  const r = run.resources.find((x) => x.name === name);
  if (!r) throw new Error(`no resource named ${name}; have: ${run.resources.map((x) => x.name).join(", ")}`);
  return r;
}

/** Names of custom resources whose inputs differ between two runs (added or removed count too). */
export function changedResources(a: Run, b: Run): string[] {
  const index = (run: Run) => new Map(run.resources.map((r) => [resourceKey(r), JSON.stringify(plain(r.inputs))]));
  const ia = index(a);
  const ib = index(b);
  const keys = new Set([...ia.keys(), ...ib.keys()]);
  return [...keys]
    .filter((k) => ia.get(k) !== ib.get(k))
    .map((k) => k.split("::")[1])
    .sort();
}
