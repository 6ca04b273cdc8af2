// A stand-in for the Pulumi engine and the command provider, which cannot be
// installed here. It takes the resources the program registers under mocks and
// runs them the way `pulumi up` would: steps from the diff against the last
// run's state, in registration order, over real SSH and SFTP.
//
// Rules (from pulumi-command v1.2.1 and the engine, ../shared/reference/pulumi.md):
// - new resource: create. remote/local Command runs `create`; CopyToRemote copies.
// - inputs unchanged: nothing runs.
// - inputs changed, triggers unchanged: update. Command runs `update`, or `create`
//   when `update` is unset; CopyToRemote copies only if the asset or remotePath changed.
// - triggers changed: replace. The new resource's create runs in place; the old
//   one's `delete` runs after every other step, unless deleteBeforeReplace.
// - resource gone: its `delete` runs, after every other step, in reverse order.
// - a failed step stops the run; a failed create is not recorded and a failed
//   update keeps the old inputs, so the next run tries again.
// - `environment` goes out as SSH env requests; a variable sshd refuses fails the
//   step before the command runs. Update and delete runs also get
//   PULUMI_COMMAND_STDOUT/STDERR unless addPreviousOutputInEnv is false; a refusal
//   of those only warns.
import { spawn } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { Client, ConnectConfig } from "ssh2";
import { plain, Run } from "../support/harness";

export const REPLAYED_TYPES = ["command:remote:Command", "command:remote:CopyToRemote", "command:local:Command"];

export interface ReplayResource {
  readonly type: string;
  readonly name: string;
  readonly inputs: Record<string, any>;
  /** A resource option mocks cannot see; set by hand where a program uses it. */
  readonly deleteBeforeReplace?: boolean;
}

export interface StateEntry extends ReplayResource {
  readonly outputs: { readonly stdout: string; readonly stderr: string };
}

export type Action = "create" | "update" | "replace" | "delete";

export interface PlannedStep {
  readonly action: Action;
  /** The resource as it should be (the old one, for delete). */
  readonly resource: ReplayResource;
  /** The resource as it was, for update and replace. */
  readonly old?: StateEntry;
}

export interface StepResult {
  readonly name: string;
  readonly action: Action;
  readonly ok: boolean;
  readonly output: string;
  readonly ms: number;
}

export interface UpResult {
  readonly state: StateEntry[];
  readonly steps: StepResult[];
  /** The failed step's error, as `pulumi up` would print it. */
  readonly error?: string;
}

/** The replayable resources of a mocked program run, with plain inputs and asset hashes. */
export function resourcesOf(run: Run): ReplayResource[] {
  return run.resources
    .filter((r) => REPLAYED_TYPES.includes(r.type))
    .map((r) => {
      const inputs = plain(r.inputs);
      if (inputs.source?.asset === "file") {
        inputs.source = {
          ...inputs.source,
          sha256: crypto.createHash("sha256").update(fs.readFileSync(inputs.source.path)).digest("hex"),
        };
      }
      return { type: r.type, name: r.name, inputs };
    });
}

const keyOf = (r: ReplayResource) => `${r.type}::${r.name}`;
const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/**
 * The stdout a host key scan hands the resources that use it (runProgram's localStdout). The
 * engine runs a local command before its dependents read its stdout; mocks cannot, so a new or
 * changed scan runs here, and again as its own step (a read-only scan). An unchanged one keeps
 * what the state recorded, as the engine's does.
 */
export function localStdoutFrom(state: readonly StateEntry[]) {
  return async (name: string, inputs: Record<string, unknown>): Promise<string | undefined> => {
    // Only the commands whose stdout other resources take (the host key scans): any other, the
    // switch-hosts coordinator above all, must run once, as its own step.
    if (!name.endsWith("-ssh-hostkey")) return undefined;
    const now = plain(inputs);
    const old = state.find((e) => e.type === "command:local:Command" && e.name === name);
    if (old && same(old.inputs, now)) return old.outputs.stdout;
    if (typeof now.create !== "string") return undefined;
    const r = await localExec(now.create, now.stdin, now.environment ?? {}, now.dir);
    return r.code === 0 ? r.stdout : undefined;
  };
}

/** The steps `pulumi up` would take from `state` to `next`. Pure. */
export function plan(state: readonly StateEntry[], next: readonly ReplayResource[]): PlannedStep[] {
  const before = new Map(state.map((e) => [keyOf(e), e]));
  const steps: PlannedStep[] = [];
  const deferredDeletes: PlannedStep[] = [];
  for (const r of next) {
    const old = before.get(keyOf(r));
    if (!old) steps.push({ action: "create", resource: r });
    else if (same(old.inputs, r.inputs)) continue;
    else if (!same(old.inputs.triggers, r.inputs.triggers)) {
      if (r.deleteBeforeReplace) steps.push({ action: "delete", resource: old }, { action: "create", resource: r });
      else {
        steps.push({ action: "replace", resource: r, old });
        deferredDeletes.push({ action: "delete", resource: old });
      }
    } else steps.push({ action: "update", resource: r, old });
  }
  const nextKeys = new Set(next.map(keyOf));
  const gone = state.filter((e) => !nextKeys.has(keyOf(e))).reverse();
  return [...steps, ...deferredDeletes.reverse(), ...gone.map((resource) => ({ action: "delete" as const, resource }))];
}

interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly combined: string;
}

class StepError extends Error {}

/** Runs the plan against real hosts and returns the new state. Stops at the first failure. */
export async function up(
  state: readonly StateEntry[],
  next: readonly ReplayResource[],
  log: (line: string) => void = () => undefined,
): Promise<UpResult> {
  const current = new Map(state.map((e) => [keyOf(e), e]));
  const steps: StepResult[] = [];
  for (const step of plan(state, next)) {
    const started = Date.now();
    const name = step.resource.name;
    log(`${step.action} ${name}`);
    try {
      const result = await runStep(step);
      const output = result?.combined ?? "";
      steps.push({ name, action: step.action, ok: true, output, ms: Date.now() - started });
      if (step.action === "delete") {
        // A deferred delete of a replaced resource must not drop its replacement.
        const now = current.get(keyOf(step.resource));
        if (now && same(now.inputs, step.resource.inputs)) current.delete(keyOf(step.resource));
      } else {
        const kept =
          step.action === "update" && result === undefined ? current.get(keyOf(step.resource))!.outputs : undefined;
        current.set(keyOf(step.resource), {
          ...step.resource,
          outputs: kept ?? { stdout: trimNewline(result?.stdout ?? ""), stderr: trimNewline(result?.stderr ?? "") },
        });
      }
    } catch (e) {
      const error = e instanceof StepError ? e.message : String(e);
      steps.push({ name, action: step.action, ok: false, output: error, ms: Date.now() - started });
      return { state: order([...current.values()], next), steps, error: `${name}: ${error}` };
    }
  }
  return { state: order([...current.values()], next), steps };
}

/** State in the program's registration order (leftovers last), so deletes run in reverse. */
function order(entries: StateEntry[], next: readonly ReplayResource[]): StateEntry[] {
  const rank = new Map(next.map((r, i) => [keyOf(r), i]));
  return entries.sort((a, b) => (rank.get(keyOf(a)) ?? 1e9) - (rank.get(keyOf(b)) ?? 1e9));
}

const trimNewline = (s: string) => s.replace(/\n$/, "");

/** Runs one step; undefined means nothing needed to run (a CopyToRemote whose files did not change). */
async function runStep(step: PlannedStep): Promise<ExecResult | undefined> {
  const r = step.resource;
  const i = r.inputs;
  if (r.type === "command:remote:CopyToRemote") {
    if (step.action === "delete") return undefined; // CopyToRemote has no delete: files stay.
    if (
      step.action === "update" &&
      same(step.old!.inputs.source, i.source) &&
      step.old!.inputs.remotePath === i.remotePath
    )
      return undefined;
    await sftpPut(i.connection, i.source.path, i.remotePath);
    return { code: 0, stdout: "", stderr: "", combined: "" };
  }
  const cmd: string | undefined =
    step.action === "delete" ? i.delete : step.action === "update" ? (i.update ?? i.create) : i.create;
  if (cmd === undefined) return { code: 0, stdout: "", stderr: "", combined: "" };
  const env: Record<string, string> = { ...(i.environment ?? {}) };
  const optionalEnv: Record<string, string> = {};
  const previous = step.action === "delete" ? (step.resource as StateEntry).outputs : step.old?.outputs;
  if (previous && i.addPreviousOutputInEnv !== false) {
    optionalEnv.PULUMI_COMMAND_STDOUT = previous.stdout;
    optionalEnv.PULUMI_COMMAND_STDERR = previous.stderr;
  }
  const result =
    r.type === "command:local:Command"
      ? await localExec(cmd, i.stdin, { ...env, ...optionalEnv }, i.dir)
      : await remoteExec(i.connection, cmd, i.stdin, env, optionalEnv);
  if (result.code !== 0) {
    const status =
      r.type === "command:local:Command" ? `exit status ${result.code}` : `Process exited with status ${result.code}`;
    throw new StepError(`${status}: running ${JSON.stringify(cmd)}:\n${result.combined}`);
  }
  return result;
}

interface Connection {
  host: string;
  port?: number;
  user?: string;
  privateKey?: string;
  hostKey?: string;
  dialErrorLimit?: number;
  perDialTimeout?: number;
}

/** Connects like the provider: retries every error up to dialErrorLimit, waiting 100 ms x1.5 up to 5 s. */
async function connect(c: Connection): Promise<Client> {
  const limit = c.dialErrorLimit ?? 10;
  let wait = 100;
  for (let attempt = 1; ; attempt++) {
    try {
      return await new Promise<Client>((resolve, reject) => {
        const client = new Client();
        const config: ConnectConfig = {
          host: c.host,
          port: c.port ?? 22,
          username: c.user ?? "root",
          privateKey: c.privateKey,
          readyTimeout: (c.perDialTimeout ?? 15) * 1000,
        };
        if (c.hostKey) {
          const want = c.hostKey.trim().split(/\s+/)[1];
          config.hostVerifier = (key: Buffer) => key.toString("base64") === want;
        }
        client.once("ready", () => resolve(client));
        // ssh2 may emit several errors for one failure; later ones (after
        // ready) surface as a closed stream in execOn.
        client.on("error", (e) => {
          client.end();
          reject(e);
        });
        client.connect(config);
      });
    } catch (e) {
      if (limit >= 0 && attempt >= limit)
        throw new StepError(
          `ssh: could not connect to ${c.host}:${c.port ?? 22} after ${attempt} attempts: ${String(e)}`,
        );
      await new Promise((r) => setTimeout(r, wait));
      wait = Math.min(wait * 1.5, 5000);
    }
  }
}

function execOn(
  client: Client,
  cmd: string,
  stdin: string | undefined,
  env: Record<string, string>,
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    client.exec(cmd, { env }, (err, stream) => {
      if (err) return reject(err);
      let stdout = "";
      let stderr = "";
      let combined = "";
      stream.on("data", (d: Buffer) => {
        stdout += d.toString();
        combined += d.toString();
      });
      stream.stderr.on("data", (d: Buffer) => {
        stderr += d.toString();
        combined += d.toString();
      });
      stream.on("close", (code: number | null) => resolve({ code: code ?? 255, stdout, stderr, combined }));
      stream.end(stdin ?? "");
    });
  });
}

async function remoteExec(
  c: Connection,
  cmd: string,
  stdin: string | undefined,
  env: Record<string, string>,
  optionalEnv: Record<string, string>,
): Promise<ExecResult> {
  const client = await connect(c);
  try {
    const wanted = { ...env, ...optionalEnv };
    let accepted = wanted;
    if (Object.keys(wanted).length) {
      // ssh2 sends env requests without asking for a reply, so ask the server
      // what it kept: a variable missing from `env` was refused (AcceptEnv).
      const probe = await execOn(client, "env", "", wanted);
      const kept = new Set(probe.stdout.split("\n").map((l) => l.split("=")[0]));
      const refused = Object.keys(wanted).filter((k) => !kept.has(k));
      const fatal = refused.filter((k) => k in env);
      if (fatal.length) {
        throw new StepError(
          `could not set environment variable ${JSON.stringify(fatal[0])}: sshd refused it (add it to AcceptEnv in sshd_config)`,
        );
      }
      accepted = Object.fromEntries(Object.entries(wanted).filter(([k]) => !refused.includes(k)));
    }
    return await execOn(client, cmd, stdin, accepted);
  } finally {
    client.end();
  }
}

export async function sftpPut(c: Connection, localPath: string, remotePath: string): Promise<void> {
  const client = await connect(c);
  try {
    await new Promise<void>((resolve, reject) => {
      client.sftp((err, sftp) => {
        if (err) return reject(err);
        const dirs: string[] = [];
        for (let d = path.posix.dirname(remotePath); d !== "/" && d !== "."; d = path.posix.dirname(d)) dirs.unshift(d);
        const mkdirs = (k: number): void => {
          if (k === dirs.length) {
            sftp.fastPut(localPath, remotePath, (e) => (e ? reject(e) : resolve()));
            return;
          }
          sftp.mkdir(dirs[k], () => mkdirs(k + 1)); // exists already: fine
        };
        mkdirs(0);
      });
    });
  } finally {
    client.end();
  }
}

function localExec(
  cmd: string,
  stdin: string | undefined,
  env: Record<string, string>,
  dir?: string,
): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = spawn("/bin/sh", ["-c", cmd], { cwd: dir, env: { ...process.env, ...env } });
    let stdout = "";
    let stderr = "";
    let combined = "";
    child.stdout.on("data", (d) => {
      stdout += d;
      combined += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
      combined += d;
    });
    child.on("close", (code) => resolve({ code: code ?? 255, stdout, stderr, combined }));
    child.stdin.end(stdin ?? "");
  });
}

/** Runs a one-off command on a host (for test assertions, not a program step). */
export async function sshRun(c: Connection, cmd: string, stdin?: string): Promise<ExecResult> {
  const client = await connect(c);
  try {
    return await execOn(client, cmd, stdin, {});
  } finally {
    client.end();
  }
}
