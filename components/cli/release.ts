// One-command release and rollback, driving the Pulumi CLI the way a person would.
//
//   npm run release -- <version> [--artifact PATH|URL] [--sha256 HEX] [--smoke CMD] [--stack NAME]
//   npm run rollback [-- --stack NAME]
//
// release: deploy <version> to the idle slot (pulumi up; the health gate must
// pass), run the optional smoke command against the preview listener, then
// switch to it (pulumi up; the post-switch watch must pass). It stops at the
// first failure with the old slot still serving and says what to do next.
// rollback: switch to the other slot, whose version is still running.
import { spawn, spawnSync } from "child_process";
import { freePort, waitForPort } from "./ports";

type Color = "blue" | "green";
const other = (c: Color): Color => (c === "blue" ? "green" : "blue");
const VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;

class Stop extends Error {}

const say = (line: string) => console.log(`==> ${line}`);

function pulumi(args: string[], opts: { capture?: boolean } = {}): string {
  const r = spawnSync(process.env.BLUEGREEN_PULUMI ?? "pulumi", args, {
    encoding: "utf8",
    stdio: opts.capture ? ["ignore", "pipe", "pipe"] : "inherit",
  });
  if (r.error) throw new Stop(`could not run pulumi: ${r.error.message} (run npm ci first)`);
  if (r.status !== 0) throw new PulumiFailed(args, r.stderr ?? "");
  return (r.stdout ?? "").trim();
}

class PulumiFailed extends Error {
  constructor(
    readonly args: string[],
    readonly stderr: string,
  ) {
    super(`pulumi ${args.join(" ")} failed${stderr ? `: ${stderr.trim()}` : ""}`);
  }
}

interface Options {
  readonly stack?: string;
  readonly artifact?: string;
  readonly sha256?: string;
  readonly smoke?: string;
}

function stackArgs(o: Options): string[] {
  return o.stack ? ["--stack", o.stack] : [];
}

/** The colour the last successful `pulumi up` made live, checked against config. */
function liveColor(o: Options): Color {
  const deployed = pulumi(["stack", "output", "active", ...stackArgs(o)], { capture: true });
  const configured = pulumi(["config", "get", "active", ...stackArgs(o)], { capture: true });
  if (deployed !== "blue" && deployed !== "green")
    throw new Stop(`the stack has no deployed active colour (got "${deployed}"); run pulumi up first`);
  if (configured !== deployed) {
    throw new Stop(
      `config says active=${configured} but the last pulumi up left ${deployed} live; run pulumi up (or pulumi config set active ${deployed}) first`,
    );
  }
  return deployed;
}

function up(o: Options): void {
  pulumi(["up", "--yes", "--skip-preview", ...stackArgs(o)]);
}

/** Runs the smoke command with BLUEGREEN_PREVIEW_URL pointing at the idle slot through an SSH tunnel. */
async function smoke(o: Options, command: string): Promise<void> {
  const tunnel = pulumi(["stack", "output", "previewTunnelCommand", ...stackArgs(o)], { capture: true });
  const m = /-L (\d+):127\.0\.0\.1:(\d+) (.+)$/.exec(tunnel);
  if (!m) throw new Stop(`unexpected previewTunnelCommand output: ${tunnel}`);
  const localPort = await freePort();
  const ssh = (process.env.BLUEGREEN_SSH ?? "ssh").split(" ");
  const before = tunnel.slice(0, tunnel.indexOf(" -N")).split(" ").slice(1);
  const child = spawn(
    ssh[0],
    [...ssh.slice(1), ...before, "-N", "-o", "ExitOnForwardFailure=yes", "-L", `${localPort}:127.0.0.1:${m[2]}`, m[3]],
    {
      stdio: "ignore",
    },
  );
  try {
    if (!(await waitForPort(localPort, 30)))
      throw new Stop(`could not open the SSH tunnel to the preview listener (${tunnel})`);
    const url = `http://127.0.0.1:${localPort}/`;
    say(`smoke test against the preview listener (${url}): ${command}`);
    const r = spawnSync("sh", ["-c", command], {
      stdio: "inherit",
      env: { ...process.env, BLUEGREEN_PREVIEW_URL: url },
    });
    if (r.status !== 0) throw new Stop(`the smoke test failed (exit ${r.status})`);
  } finally {
    child.kill();
  }
}

export async function release(version: string, o: Options): Promise<void> {
  if (!VERSION_RE.test(version))
    throw new Stop(`"${version}" is not a valid version: use 1-64 letters, digits, '.', '_', '+' or '-'`);
  const live = liveColor(o);
  const idle = other(live);
  const liveVersion = pulumi(["stack", "output", `${live}Version`, ...stackArgs(o)], { capture: true });
  const before = Object.fromEntries(
    ["Version", "Artifact", "Sha256"].map((k) => [k, configGet(o, `${idle}${k}`)]),
  ) as Record<"Version" | "Artifact" | "Sha256", string | undefined>;
  say(`live: ${live} (${liveVersion}); deploying ${version} to the idle slot, ${idle}`);

  pulumi(["config", "set", `${idle}Version`, version, ...stackArgs(o)]);
  if (o.artifact) pulumi(["config", "set", `${idle}Artifact`, o.artifact, ...stackArgs(o)]);
  if (o.sha256) pulumi(["config", "set", `${idle}Sha256`, o.sha256, ...stackArgs(o)]);
  try {
    up(o);
  } catch (e) {
    if (!(e instanceof PulumiFailed)) throw e;
    // Put back every key this run set, or the next deploy of the old version meets other bytes.
    const restore = (["Version", "Artifact", "Sha256"] as const)
      .filter((k) => k === "Version" || (k === "Artifact" ? o.artifact : o.sha256) !== undefined)
      .map((k) =>
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
  if (smokeCommand) {
    try {
      await smoke(o, smokeCommand);
    } catch (e) {
      if (e instanceof Stop)
        throw new Stop(
          `${e.message}; ${live} (${liveVersion}) is still live. ${idle} runs ${version} on the preview listener for a closer look.`,
        );
      throw e;
    }
  }

  say(`switching traffic to ${idle} (${version})`);
  switchOrRestore(o, idle, live, `switching to ${idle}`);
  say(`released ${version}: ${idle} is live; ${live} keeps ${liveVersion} running for npm run rollback`);
}

/** A config value, or undefined when the key is not set. */
function configGet(o: Options, key: string): string | undefined {
  try {
    return pulumi(["config", "get", key, ...stackArgs(o)], { capture: true });
  } catch (e) {
    if (e instanceof PulumiFailed) return undefined;
    throw e;
  }
}

const shellWord = (v: string) => (/^[A-Za-z0-9_/.:@%+=,-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`);

/**
 * The colour the host's live link serves, read over SSH with the stack's
 * statusCommand (`bluegreen-status live`): after a failed or cut-off switch,
 * the host, not the engine's record, says where traffic is.
 */
function hostLiveColor(o: Options): Color | undefined {
  const status = pulumi(["stack", "output", "statusCommand", ...stackArgs(o)], { capture: true });
  const words = status.split(" ");
  const ssh = (process.env.BLUEGREEN_SSH ?? "ssh").split(" ");
  const r = spawnSync(ssh[0], [...ssh.slice(1), ...words.slice(1), "live"], { encoding: "utf8", timeout: 60_000 });
  const color = r.stdout?.trim();
  return color === "blue" || color === "green" ? color : undefined;
}

/**
 * Sets active=target and runs pulumi up. If that fails (refused, rolled back by
 * the watch, or cut off), config is set to the colour the host really serves,
 * so the next `pulumi up` finishes or undoes an interrupted move.
 */
function switchOrRestore(o: Options, target: Color, live: Color, what: string): void {
  pulumi(["config", "set", "active", target, ...stackArgs(o)]);
  try {
    up(o);
  } catch (e) {
    if (!(e instanceof PulumiFailed)) throw e;
    const serving = hostLiveColor(o);
    if (serving === undefined) {
      throw new Stop(
        `${what} failed (its error is above), and the host could not be asked which slot it serves; config still says active=${target}.\n` +
          `Check with: $(pulumi stack output statusCommand), then set active to the colour it shows live and run pulumi up.`,
      );
    }
    pulumi(["config", "set", "active", serving, ...stackArgs(o)]);
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
}

export function rollback(o: Options): void {
  const live = liveColor(o);
  const target = other(live);
  const targetVersion = pulumi(["stack", "output", `${target}Version`, ...stackArgs(o)], { capture: true });
  say(`rolling back: ${live} -> ${target} (${targetVersion}, still running)`);
  switchOrRestore(o, target, live, `rolling back to ${target}`);
  say(`rolled back: ${target} (${targetVersion}) is live`);
}

function parse(argv: string[]): { positional: string[]; options: Options } {
  const positional: string[] = [];
  const options: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const m = /^--(stack|artifact|sha256|smoke)$/.exec(argv[i]);
    if (m) {
      if (argv[i + 1] === undefined) throw new Stop(`${argv[i]} needs a value`);
      options[m[1]] = argv[++i];
    } else if (argv[i].startsWith("--")) throw new Stop(`unknown option ${argv[i]}`);
    else positional.push(argv[i]);
  }
  return { positional, options };
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const { positional, options } = parse(rest);
  if (command === "release") {
    if (positional.length !== 1)
      throw new Stop(
        "usage: npm run release -- <version> [--artifact PATH|URL] [--sha256 HEX] [--smoke CMD] [--stack NAME]",
      );
    await release(positional[0], options);
  } else if (command === "rollback") {
    if (positional.length) throw new Stop("usage: npm run rollback [-- --stack NAME]");
    rollback(options);
  } else throw new Stop(`unknown command ${command}`);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(e instanceof Stop || e instanceof PulumiFailed ? `==> stopped: ${e.message}` : e);
    process.exit(1);
  });
}
