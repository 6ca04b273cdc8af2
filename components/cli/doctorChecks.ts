// The checks of `npm run doctor`: what this machine needs before the first `pulumi up` of a
// stack, read from the stack's file (Pulumi.<stack>.yaml) and the environment, without running
// Pulumi's engine. Each failed check says what to install or set.
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { onPath } from "../app/preflight";
import { chooseSshKey } from "../host/sshKeys";

export interface Check {
  readonly ok: boolean;
  /** What was checked, and what was found. */
  readonly what: string;
  /** For a failed check: what to do. */
  readonly fix?: string;
}

/** A command's result, as the checks see it; tests give their own. */
export type Runner = (cmd: string, args: string[]) => { status: number | null; stdout: string; stderr: string };

export interface DoctorContext {
  /** The project directory (where Pulumi.yaml is). */
  readonly root: string;
  readonly stack: string;
  readonly env: NodeJS.ProcessEnv;
  readonly run: Runner;
  /** This machine's CPU architecture, as Node names it (x64, arm64). */
  readonly arch: string;
  readonly nodeVersion: string;
}

type StackValue = string | number | boolean | { secure: string } | unknown[] | Record<string, unknown>;

const pass = (what: string): Check => ({ ok: true, what });
const fail = (what: string, fix: string): Check => ({ ok: false, what, fix });
const firstLine = (s: string) => s.trim().split("\n").pop() ?? "";

/** The stack's file: Pulumi.<name>.yaml, by the stack's own name (org/project/name gives name). */
const stackFile = (ctx: DoctorContext) => path.join(ctx.root, `Pulumi.${ctx.stack.split("/").pop()}.yaml`);

function readStack(ctx: DoctorContext): Record<string, StackValue> | undefined {
  const file = stackFile(ctx);
  if (!fs.existsSync(file)) return undefined;
  const doc = (YAML.parse(fs.readFileSync(file, "utf8")) ?? {}) as { config?: Record<string, StackValue> };
  return doc.config ?? {};
}

function nodeCheck(ctx: DoctorContext): Check {
  const major = Number(ctx.nodeVersion.replace(/^v/, "").split(".")[0]);
  return major >= 20
    ? pass(`node ${ctx.nodeVersion}`)
    : fail(`node ${ctx.nodeVersion} is older than 20`, "install Node.js 20 or newer (https://nodejs.org)");
}

function pulumiCheck(ctx: DoctorContext): Check {
  const local = path.join(ctx.root, "node_modules", ".bin", "pulumi");
  const cli = fs.existsSync(local) ? local : onPath("pulumi", ctx.env);
  if (!cli) return fail("no pulumi CLI (node_modules/.bin/pulumi or on PATH)", "run npm ci in the project");
  const r = ctx.run(cli, ["version"]);
  return r.status === 0
    ? pass(`pulumi ${r.stdout.trim()}`)
    : fail(
        `pulumi version failed: ${firstLine(r.stderr || r.stdout) || `exit ${r.status}`}`,
        "the npm package downloads the CLI on first use: let it reach get.pulumi.com, or install the CLI (https://www.pulumi.com/docs/install/)",
      );
}

function backendChecks(ctx: DoctorContext, stack: Record<string, StackValue>): Check[] {
  const project = YAML.parse(fs.readFileSync(path.join(ctx.root, "Pulumi.yaml"), "utf8")) as {
    backend?: { url?: string };
  };
  const url = ctx.env.PULUMI_BACKEND_URL || project.backend?.url || "https://api.pulumi.com";
  const out: Check[] = [pass(`backend ${url}${ctx.env.PULUMI_BACKEND_URL ? " (PULUMI_BACKEND_URL)" : ""}`)];
  const stackText = fs.readFileSync(stackFile(ctx), "utf8");
  // The CLI's choice (pkg/cmd/pulumi/stack/secrets.go): a passphrase when the stack file says
  // passphrase (or nothing, or default) and has a salt; with no salt yet, the backend's default,
  // which is a passphrase on every self-managed backend (file, s3, gs, azblob).
  const provider = /^secretsprovider:\s*(\S+)/m.exec(stackText)?.[1];
  const byPassphrase = !provider || provider === "passphrase" || provider === "default";
  const diy = /^(file|s3|gs|azblob):\/\//.test(url);
  const passphrase = byPassphrase && (/^encryptionsalt:/m.test(stackText) || diy);
  if (!passphrase) return out;
  const file = ctx.env.PULUMI_CONFIG_PASSPHRASE_FILE;
  if (ctx.env.PULUMI_CONFIG_PASSPHRASE !== undefined)
    out.push(pass("secrets passphrase: PULUMI_CONFIG_PASSPHRASE is set"));
  else if (file && fs.existsSync(file)) out.push(pass(`secrets passphrase: PULUMI_CONFIG_PASSPHRASE_FILE (${file})`));
  else
    out.push(
      fail(
        file ? `PULUMI_CONFIG_PASSPHRASE_FILE names ${file}, which does not exist` : "no secrets passphrase",
        `the stack's secrets are encrypted with a passphrase: export PULUMI_CONFIG_PASSPHRASE='…' (or PULUMI_CONFIG_PASSPHRASE_FILE)${Object.values(stack).some((v) => typeof v === "object" && v !== null && "secure" in v) ? "; it must be the one the stack's secrets were set with" : ""}`,
      ),
    );
  return out;
}

const get = (stack: Record<string, StackValue>, key: string) => stack[key.includes(":") ? key : `bluegreen:${key}`];
/** A key's value as text (an encrypted one as "(secret)"), or the default when unset. */
function text(stack: Record<string, StackValue>, key: string, dflt = ""): string {
  const v = get(stack, key);
  if (v === undefined) return dflt;
  return typeof v === "object" ? (v !== null && "secure" in v ? "(secret)" : JSON.stringify(v)) : String(v);
}
const isSet = (v: StackValue | undefined) => v !== undefined && v !== "";

function hostChecks(ctx: DoctorContext, stack: Record<string, StackValue>): Check[] {
  const kind = text(stack, "hostKind", "multipass");
  switch (kind) {
    case "multipass": {
      const mp = onPath("multipass", ctx.env);
      const out = [
        mp
          ? pass(`multipass at ${mp}`)
          : fail(
              "hostKind multipass, but multipass is not on PATH",
              "install it (https://canonical.com/multipass/install; Ubuntu: sudo snap install multipass), or set hostKind to ssh or hetzner",
            ),
      ];
      const local = ctx.arch === "arm64" ? "arm64" : "amd64";
      const hostArch = text(stack, "hostArch", "amd64");
      if (hostArch !== local)
        out.push(
          fail(
            `hostArch is ${hostArch}, but multipass runs VMs of this machine's architecture (${local})`,
            `pulumi config set hostArch ${local}`,
          ),
        );
      return out;
    }
    case "hetzner":
      return [
        isSet(get(stack, "hcloud:token")) || ctx.env.HCLOUD_TOKEN
          ? pass(`Hetzner token (${ctx.env.HCLOUD_TOKEN ? "HCLOUD_TOKEN" : "hcloud:token"})`)
          : fail(
              "hostKind hetzner, but no Hetzner API token",
              "pulumi config set --secret hcloud:token <token> (or export HCLOUD_TOKEN)",
            ),
      ];
    case "ssh":
      return [
        isSet(get(stack, "sshHost"))
          ? pass(`ssh host ${text(stack, "sshHost")}`)
          : fail("hostKind ssh, but no sshHost", "pulumi config set sshHost <address>"),
      ];
    default:
      return [pass(`hostKind ${kind}`)];
  }
}

function buildCheck(ctx: DoctorContext, stack: Record<string, StackValue>): Check[] {
  const builds = ["blue", "green"].filter((c) => text(stack, `${c}Artifact`, "build") === "build");
  if (!builds.length || isSet(get(stack, "buildCommand"))) return [];
  const go = onPath("go", ctx.env);
  if (!go)
    return [
      fail(
        `${builds.map((c) => `${c}Artifact`).join(" and ")} build the demo app with Go, and go is not on PATH`,
        "install Go (https://go.dev/doc/install; Debian/Ubuntu: sudo apt install golang-go), or point the artifacts at a file or URL",
      ),
    ];
  const v = ctx.run(go, ["version"]);
  return [pass(`${v.stdout.trim() || "go"} (builds ${builds.join(" and ")}; the same Go gives the same bytes)`)];
}

function sshChecks(ctx: DoctorContext, stack: Record<string, StackValue>): Check[] {
  const key = get(stack, "sshPrivateKey");
  if (key !== undefined && typeof key === "object" && key !== null && "secure" in key)
    return [pass("ssh key: sshPrivateKey is in the stack's config, encrypted")];
  if (isSet(key)) return [fail("sshPrivateKey is in the stack's config in plain text", "set it again with --secret")];
  // What the program will do (components/host/sshKeys.ts): an agent's key, else the key file.
  const { choice, problems } = chooseSshKey({
    password: isSet(get(stack, "sshPrivateKeyPassword")) ? "(set)" : undefined,
    keyFile: text(stack, "sshKeyFile") || undefined,
    env: ctx.env,
  });
  if (!choice) return [fail("no SSH key the program can use", problems[0])];
  return [
    pass(
      choice.via === "agent"
        ? `ssh key: the ssh agent's (${choice.publicKey?.split(" ").slice(0, 3).join(" ")})`
        : `ssh key: ${choice.via === "file" ? choice.file : "config"}`,
    ),
  ];
}

/** Every check, in the order a new user meets them. */
export function diagnose(ctx: DoctorContext): Check[] {
  const checks = [nodeCheck(ctx), pulumiCheck(ctx)];
  const stack = readStack(ctx);
  if (!stack)
    return [
      ...checks,
      fail(`no ${path.basename(stackFile(ctx))}`, `npx pulumi stack init ${ctx.stack} (or pass --stack NAME)`),
    ];
  return [
    ...checks,
    ...backendChecks(ctx, stack),
    ...hostChecks(ctx, stack),
    ...buildCheck(ctx, stack),
    ...sshChecks(ctx, stack),
  ];
}
