// The stack, through Pulumi's Automation API (@pulumi/pulumi/automation), which runs
// the `pulumi` CLI for every call. What each call runs (read in
// node_modules/@pulumi/pulumi/automation, SDK 3.248; the stand-ins in
// test/fixtures/fake-pulumi-recorder and test/e2e/fake-pulumi.ts answer exactly these
// and refuse anything else):
//
//   PulumiCommand.get({ root })    cmd.js PulumiCommand.get: `<root>/bin/pulumi version`
//   workspace.stack()              localWorkspace.js stack/listStacks: `stack ls --json`
//   Stack.select(name, ws)         localWorkspace.js selectStack: `stack select --stack NAME`
//   stack.getConfig(key)           localWorkspace.js getConfig: `config get KEY --json --stack NAME`
//                                  (stdout {"value": "...", "secret": false}; a missing key exits 1)
//   stack.setConfig(key, {value})  localWorkspace.js setConfig:
//                                  `config set KEY --stack NAME --plaintext --non-interactive -- VALUE`
//   stack.removeConfig(key)        localWorkspace.js removeConfig: `config rm KEY --stack NAME`
//   stack.outputs()                localWorkspace.js stackOutputs: `stack output --json --stack NAME`,
//                                  then the same with --show-secrets ({} for a stack never deployed)
//   stack.up({ onOutput, onEvent }) stack.js up: `up --yes --skip-preview --exec-kind auto.local
//                                  --event-log tcp://127.0.0.1:PORT --stack NAME` (a CLI newer than
//                                  3.205.0 streams engine events to that gRPC server, stack.js
//                                  setupEventLog/EventsServer), then outputs() and info():
//                                  `stack history --json --page-size 1 --page 1 --stack NAME`
//
// cmd.js PulumiCommand.run appends --non-interactive to every call but `version` and sets
// PULUMI_AUTOMATION_API=true. BLUEGREEN_PULUMI names the `pulumi` executable to use
// instead of the one on PATH (the tests' stand-ins); PulumiCommand.get takes a root
// with bin/pulumi: an installation's own, or a private one that links to it.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { CommandError, EngineEvent, LocalWorkspace, PulumiCommand, Stack } from "@pulumi/pulumi/automation";
import { Stop } from "./say";

async function pulumiCommand(): Promise<PulumiCommand> {
  const exe = process.env.BLUEGREEN_PULUMI;
  try {
    if (!exe) return await PulumiCommand.get();
    // An installation's own root (<root>/bin/pulumi) keeps its bundled plugins beside it.
    const abs = path.resolve(exe);
    if (path.basename(abs) === "pulumi" && path.basename(path.dirname(abs)) === "bin")
      return await PulumiCommand.get({ root: path.dirname(path.dirname(abs)) });
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "bluegreen-pulumi-"));
    fs.mkdirSync(path.join(root, "bin"));
    fs.symlinkSync(abs, path.join(root, "bin", "pulumi"));
    process.once("exit", () => fs.rmSync(root, { recursive: true, force: true }));
    return await PulumiCommand.get({ root });
  } catch (e) {
    throw new Stop(
      `could not run the pulumi CLI (${exe ?? "pulumi on PATH"}): ${firstLine(e)}; install it (https://www.pulumi.com/docs/install/) or set BLUEGREEN_PULUMI to its path`,
    );
  }
}

/** The stack --stack names, or the selected one; the CLI runs in the current directory (the project). */
export async function openStack(name: string | undefined): Promise<Stack> {
  const ws = await LocalWorkspace.create({ workDir: process.cwd(), pulumiCommand: await pulumiCommand() });
  const stackName = name ?? (await ws.stack())?.name;
  if (!stackName) throw new Stop("no stack is selected: pass --stack NAME or run pulumi stack select NAME");
  try {
    return await Stack.select(stackName, ws);
  } catch (e) {
    throw new Stop(`could not select stack ${stackName}: ${cliError(e)}`);
  }
}

/** A config value, or undefined when the key is not set. */
export async function configGet(stack: Stack, key: string): Promise<string | undefined> {
  try {
    return (await stack.getConfig(key)).value;
  } catch (e) {
    if (e instanceof CommandError && /not found/.test(cliError(e))) return undefined;
    throw e;
  }
}

export const configSet = (stack: Stack, key: string, value: string) => stack.setConfig(key, { value });

/** The stack's outputs as plain values; {} for a stack never deployed. */
export async function outputs(stack: Stack): Promise<Record<string, unknown>> {
  const all = await stack.outputs();
  return Object.fromEntries(Object.entries(all).map(([k, v]) => [k, v.value as unknown]));
}

/** A string output, or a Stop that says what to do when the stack lacks it. */
export function stringOutput(out: Record<string, unknown>, key: string, stackName: string): string {
  const v = out[key];
  if (typeof v === "string") return v;
  if (Object.keys(out).length === 0)
    throw new Stop(`stack ${stackName} has never been deployed (it has no outputs): run pulumi up first`);
  throw new Stop(`stack ${stackName} has no output ${key}: run pulumi up (with this version of bluegreen) first`);
}

export interface UpRun {
  readonly ok: boolean;
  readonly ms: number;
  /** Engine events as they arrived, with the time (Date.now()) each came in. */
  readonly events: readonly { readonly at: number; readonly event: EngineEvent }[];
  readonly startedAt: number;
  /** The outputs up read back (stack.js up calls outputs()), when it succeeded. */
  readonly outputs?: Record<string, unknown>;
}

/** pulumi up, its output streamed to ours; a failure is returned, not thrown (its error is printed). */
export async function up(stack: Stack): Promise<UpRun> {
  const events: { at: number; event: EngineEvent }[] = [];
  const startedAt = Date.now();
  try {
    const r = await stack.up({
      showSecrets: false,
      onOutput: (s) => process.stdout.write(s),
      onError: (s) => process.stderr.write(s),
      onEvent: (event) => events.push({ at: Date.now(), event }),
    });
    const outs = Object.fromEntries(Object.entries(r.outputs).map(([k, v]) => [k, v.value as unknown]));
    return { ok: true, ms: upMs(events, startedAt), events, startedAt, outputs: outs };
  } catch (e) {
    if (!(e instanceof CommandError)) throw e;
    return { ok: false, ms: upMs(events, startedAt), events, startedAt };
  }
}

/**
 * How long the `pulumi up` run took: to its last engine event (the cancelEvent that
 * ends the stream), not counting the outputs and history stack.js up reads after it.
 */
function upMs(events: readonly { at: number }[], startedAt: number): number {
  return (events.length ? events[events.length - 1].at : Date.now()) - startedAt;
}

/** The CLI's own words from a failed call (its stderr), else the error's first line. */
export function cliError(e: unknown): string {
  const stderr = (e as { commandResult?: { stderr?: string } }).commandResult?.stderr ?? "";
  // cmd.js exec wraps execa's error, whose message starts with "Command failed with exit code N: <argv>".
  const own = stderr.replace(/^Command failed with exit code \d+: .*\n?/, "").trim();
  return own || firstLine(e);
}

const firstLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split("\n")[0];
