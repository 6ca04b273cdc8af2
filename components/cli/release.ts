// One-command release and rollback, driving the stack through the Automation API
// (./pulumi.ts). The entry point of every command (`npm run release|rollback|status|logs`,
// see ./main.ts for the arguments).
//
// release: deploy <version> to the idle slot (pulumi up; the health gate must
// pass), run the optional smoke command against the preview listener, then
// switch to it (pulumi up; the post-switch watch must pass). It stops at the
// first failure with the old slot still serving and says what to do next, and
// says where the time went.
// rollback: switch to the other slot, whose version is still running.
import { spawnSync } from "child_process";
import { Stack } from "@pulumi/pulumi/automation";
import { configGet, configSet, openStack, outputs, stringOutput, up, UpRun } from "./pulumi";
import { say, secs, Stop } from "./say";
import { openTunnel, parseStatusCommand, sshCapture, trustStackHostKey } from "./ssh";
import { describeUp } from "./timing";

export type Color = "blue" | "green";
export const other = (c: Color): Color => (c === "blue" ? "green" : "blue");
const VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;
const KEYS = ["Version", "Artifact", "Sha256"] as const;

export interface Options {
  readonly stack?: string;
  readonly artifact?: string;
  readonly sha256?: string;
  readonly smoke?: string;
}

interface Live {
  readonly stack: Stack;
  readonly live: Color;
  readonly out: Record<string, unknown>;
}

/** The colour the last successful `pulumi up` made live, checked against config. */
async function liveColor(o: Options): Promise<Live> {
  const stack = await openStack(o.stack);
  const out = await outputs(stack);
  trustStackHostKey(out);
  const deployed = stringOutput(out, "active", stack.name);
  const configured = await configGet(stack, "active");
  if (deployed !== "blue" && deployed !== "green")
    throw new Stop(`the stack has no deployed active colour (got "${deployed}"); run pulumi up first`);
  if (configured !== deployed) {
    throw new Stop(
      `config says active=${configured ?? "(unset)"} but the last pulumi up left ${deployed} live; run pulumi up (or pulumi config set active ${deployed}) first`,
    );
  }
  return { stack, live: deployed, out };
}

/** Runs the smoke command with BLUEGREEN_PREVIEW_URL pointing at the idle slot through an SSH tunnel. */
async function smoke(tunnelCommand: string, command: string): Promise<void> {
  const tunnel = await openTunnel(tunnelCommand);
  try {
    say(`smoke test against the preview listener (${tunnel.url}): ${command}`);
    const r = spawnSync("sh", ["-c", command], {
      stdio: "inherit",
      env: { ...process.env, BLUEGREEN_PREVIEW_URL: tunnel.url },
    });
    if (r.status !== 0) throw new Stop(`the smoke test failed (exit ${r.status})`);
  } finally {
    tunnel.close();
  }
}

export async function release(version: string, o: Options): Promise<void> {
  const started = Date.now();
  if (!VERSION_RE.test(version))
    throw new Stop(`"${version}" is not a valid version: use 1-64 letters, digits, '.', '_', '+' or '-'`);
  const { stack, live, out } = await liveColor(o);
  const idle = other(live);
  const liveVersion = stringOutput(out, `${live}Version`, stack.name);
  const before: Partial<Record<(typeof KEYS)[number], string>> = {};
  for (const k of KEYS) before[k] = await configGet(stack, `${idle}${k}`);
  say(`live: ${live} (${liveVersion}); deploying ${version} to the idle slot, ${idle}`);

  await configSet(stack, `${idle}Version`, version);
  if (o.artifact) await configSet(stack, `${idle}Artifact`, o.artifact);
  if (o.sha256) await configSet(stack, `${idle}Sha256`, o.sha256);
  const deploy = await up(stack);
  say(`timing: ${describeUp(`deploy ${version} to ${idle}`, deploy)}`);
  if (!deploy.ok) {
    // Put back every key this run set, or the next deploy of the old version meets other bytes.
    const restore = KEYS.filter((k) => k === "Version" || (k === "Artifact" ? o.artifact : o.sha256) !== undefined).map(
      (k) =>
        before[k] === undefined
          ? `pulumi config rm ${idle}${k}`
          : `pulumi config set ${idle}${k} ${shellWord(before[k])}`,
    );
    throw new Stop(
      `deploying ${version} to ${idle} failed (its error is above); ${live} (${liveVersion}) is still live and untouched.\n` +
        `Fix it and run this again, or put the config back:\n  ${restore.join("\n  ")}`,
    );
  }

  const smokeCommand = o.smoke ?? process.env.BLUEGREEN_SMOKE;
  let smokeMs: number | undefined;
  if (smokeCommand) {
    const t = Date.now();
    try {
      await smoke(stringOutput(deploy.outputs ?? {}, "previewTunnelCommand", stack.name), smokeCommand);
    } catch (e) {
      // A message that ends in ssh's own lines gets the rest on a line of its own.
      if (e instanceof Stop)
        throw new Stop(
          `${e.message}${e.message.includes("\n") ? "\n" : "; "}${live} (${liveVersion}) is still live. ${idle} runs ${version} on the preview listener for a closer look.`,
        );
      throw e;
    }
    smokeMs = Date.now() - t;
    say(`timing: smoke test passed in ${secs(smokeMs)} (tunnel included)`);
  }

  say(`switching traffic to ${idle} (${version})`);
  const sw = await switchOrRestore(stack, idle, `switching to ${idle}`);
  say(`released ${version}: ${idle} is live; ${live} keeps ${liveVersion} running for npm run rollback`);
  const parts = [`deploy ${secs(deploy.ms)}`, ...(smokeMs === undefined ? [] : [`smoke ${secs(smokeMs)}`])];
  say(
    `live: ${idle} (${version}) · release took ${secs(Date.now() - started)} (${[...parts, `switch+watch ${secs(sw.ms)}`].join(", ")})`,
  );
}

const shellWord = (v: string) => (/^[A-Za-z0-9_/.:@%+=,-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`);

/**
 * The colour the host's live link serves, read over SSH with the stack's
 * statusCommand (`bluegreen-status live`): after a failed or cut-off switch,
 * the host, not the engine's record, says where traffic is.
 */
async function hostLiveColor(stack: Stack): Promise<Color | undefined> {
  const out = await outputs(stack);
  trustStackHostKey(out);
  const status = out.statusCommand;
  if (typeof status !== "string") return undefined;
  const t = parseStatusCommand(status);
  const r = sshCapture(t, [t.statusPath, "live"]);
  if (r.status !== 0 && r.stderr) process.stderr.write(r.stderr);
  const color = r.stdout?.trim();
  return color === "blue" || color === "green" ? color : undefined;
}

/**
 * Sets active=target and runs pulumi up. If that fails (refused, rolled back by
 * the watch, or cut off), config is set to the colour the host really serves,
 * so the next `pulumi up` finishes or undoes an interrupted move.
 */
async function switchOrRestore(stack: Stack, target: Color, what: string): Promise<UpRun> {
  await configSet(stack, "active", target);
  const run = await up(stack);
  say(`timing: ${describeUp(`switch to ${target}`, run)}`);
  if (run.ok) return run;
  const serving = await hostLiveColor(stack);
  if (serving === undefined) {
    throw new Stop(
      `${what} failed (its error is above), and the host could not be asked which slot it serves; config still says active=${target}.\n` +
        `Check with: npm run status, then set active to the colour it shows live and run pulumi up.`,
    );
  }
  await configSet(stack, "active", serving);
  if (serving === target) {
    throw new Stop(
      `${what}: pulumi up failed (its error is above), but the host serves ${target}; config says active=${target}. ` +
        `Run pulumi up to finish the switch (its post-switch watch runs again).`,
    );
  }
  throw new Stop(
    `${what} failed (its error is above); the host still serves ${serving} and config says active=${serving} again.`,
  );
}

export async function rollback(o: Options): Promise<void> {
  const { stack, live, out } = await liveColor(o);
  const target = other(live);
  const targetVersion = stringOutput(out, `${target}Version`, stack.name);
  say(`rolling back: ${live} -> ${target} (${targetVersion}, still running)`);
  await switchOrRestore(stack, target, `rolling back to ${target}`);
  say(`rolled back: ${target} (${targetVersion}) is live`);
}

if (require.main === module) {
  // Exit once the command is done: nothing it started (a tunnel, a gRPC server) may hold the process.
  void import("./main").then((m) => m.run(process.argv.slice(2)).then(() => process.exit()));
}
