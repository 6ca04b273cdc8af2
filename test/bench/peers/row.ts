// What a row of `npm run bench -- --peers` is, and the helpers rows share:
// child processes that are always cleaned up, the demo app pair, free ports,
// commands run without blocking, and the fresh-connection colour probe.
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { freePort } from "../../../components/cli/ports";
import { Color } from "../../../components/host/layout";
import { buildDemoApp } from "../../support/sandbox";

/**
 * One way of doing a blue-green switch. setup() starts the proxy and its two
 * demo app instances (blue v1, green v2) and leaves blue live; switchTo() is
 * what that approach's users run to move traffic, and resolves when that
 * command has returned (the harness then probes with a fresh connection);
 * teardown() stops everything setup() started. Everything a row starts must
 * also be registered with onExit(), so that a failure or ctrl-c cleans it up.
 */
export interface Row {
  /** Short name for --only. */
  readonly id: string;
  /** As printed in the table. */
  readonly name: string;
  /** How blue and green are reached: "unix sockets" or "loopback tcp", and why. */
  readonly upstream: string;
  /** What a switch runs, exactly (paths abbreviated as $DIR). */
  readonly switchCommand: string;
  /** Anything else a reader needs to judge the row. */
  readonly notes?: string;
  setup(): Promise<{ url: string }>;
  switchTo(color: Color): Promise<void>;
  /**
   * The router's processes now (each with its children and threads, counted by cpuSeconds):
   * its master, or its one process. Read before and after a run, so a process that
   * started or ended meanwhile counts for what it used while both saw it.
   */
  routerPids(): number[];
  /** The demo app pair's processes. */
  appPids(): number[];
  /** Called before teardown: what the daemon's own logs say about the run, in a few words. */
  diagnose?(): string;
  teardown(): Promise<void>;
}

// ---------------------------------------------------------------- cleanup

const cleanups = new Set<() => void>();

/**
 * Registers a synchronous cleanup, run on exit, on SIGINT/SIGTERM and by
 * runCleanups(). Returns the function that unregisters it (call that after a
 * clean teardown).
 */
export function onExit(fn: () => void): () => void {
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

export function runCleanups(): void {
  for (const fn of [...cleanups].reverse()) {
    try {
      fn();
    } catch {
      /* best effort: the next one still runs */
    }
  }
  cleanups.clear();
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Signals a pid we started, if it is still the program we started (pids are reused). */
export function signalIf(pid: number, comm: string, signal: NodeJS.Signals): void {
  let name = "";
  try {
    name = fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return;
  }
  if (name !== comm) return;
  try {
    process.kill(pid, signal);
  } catch {
    /* gone meanwhile */
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

/** Sends `signal`, waits up to `ms` for the process to go, then SIGKILLs it. */
export async function stopPid(pid: number, comm: string, signal: NodeJS.Signals = "SIGTERM", ms = 5000) {
  signalIf(pid, comm, signal);
  for (const end = Date.now() + ms; Date.now() < end && alive(pid);) await sleep(50);
  signalIf(pid, comm, "SIGKILL");
}

/** A fresh directory under the system temp dir, removed on exit. */
export function scratchDir(name: string): { dir: string; remove(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `bg-peer-${name}-`));
  fs.chmodSync(dir, 0o755);
  const remove = () => fs.rmSync(dir, { recursive: true, force: true });
  const off = onExit(remove);
  return {
    dir,
    remove: () => {
      remove();
      off();
    },
  };
}

export interface Daemon {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Sends `signal` (default SIGTERM), waits for the exit (SIGKILL after 5 s), unregisters the exit hook. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts a long-running child in the foreground, its output appended to
 * `log`. On exit/ctrl-c it gets `exitSignal` (SIGTERM lets a master stop its
 * own workers; SIGKILL would orphan them).
 */
export function spawnDaemon(
  cmd: string,
  args: string[],
  log: string,
  o: { env?: NodeJS.ProcessEnv; exitSignal?: NodeJS.Signals; ownSession?: boolean } = {},
): Daemon {
  const fd = fs.openSync(log, "a");
  // ownSession: setsid, as a daemon or a systemd service runs. Linux's scheduler autogroups
  // share the CPU by session: a router left in the bench's session (with wrk and the apps)
  // would get a different share of the two cores than one in its own (bluegreen's routers
  // daemonize), so every row's router runs in its own.
  const child = spawn(cmd, args, { stdio: ["ignore", fd, fd], env: o.env ?? process.env, detached: o.ownSession });
  fs.closeSync(fd);
  if (child.pid === undefined) throw new Error(`${cmd} did not start (see ${log})`);
  const pid = child.pid;
  const comm = path.basename(cmd).slice(0, 15);
  let exited = false;
  child.on("exit", () => (exited = true));
  child.on("error", () => (exited = true));
  const off = onExit(() => {
    if (!exited) signalIf(pid, comm, o.exitSignal ?? "SIGTERM");
  });
  return {
    child,
    pid,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (!exited) await stopPid(pid, comm, signal);
      off();
    },
  };
}

export interface CmdResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a command without blocking the event loop. With `daemonizes`, its
 * output goes to `log` (a daemon keeps the inherited descriptors open, so
 * waiting for pipes to close would wait for the daemon) and the result is
 * the exit of the command itself.
 */
export function runCmd(
  cmd: string,
  args: string[],
  o: { env?: NodeJS.ProcessEnv; input?: string; daemonizes?: { log: string } } = {},
): Promise<CmdResult> {
  return new Promise((resolve) => {
    if (o.daemonizes) {
      const log = o.daemonizes.log;
      const fd = fs.openSync(log, "a");
      const before = fs.statSync(log).size;
      const child = spawn(cmd, args, { stdio: ["ignore", fd, fd], env: o.env ?? process.env });
      fs.closeSync(fd);
      const done = (status: number | null) => {
        const text = fs.readFileSync(log, "utf8").slice(before);
        resolve({ status, stdout: "", stderr: text });
      };
      child.on("error", () => done(127));
      child.on("exit", (code) => done(code));
      return;
    }
    const stdin = o.input === undefined ? "ignore" : "pipe";
    const child = spawn(cmd, args, { stdio: [stdin, "pipe", "pipe"], env: o.env ?? process.env });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", (e) => resolve({ status: 127, stdout, stderr: stderr + e.message }));
    child.on("close", (code) => resolve({ status: code, stdout, stderr }));
    if (child.stdin) {
      // A command that exits without reading its input must not crash the bench (EPIPE).
      child.stdin.on("error", () => undefined);
      child.stdin.end(o.input);
    }
  });
}

/** Throws with the command's output unless it exited 0. */
export async function mustRun(cmd: string, args: string[], o: Parameters<typeof runCmd>[2] = {}): Promise<CmdResult> {
  const r = await runCmd(cmd, args, o);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}: ${r.stderr}${r.stdout}`);
  return r;
}

/** Writes `text` to `file` with one rename(2), as a careful operator would. */
export function writeAtomic(file: string, text: string): void {
  fs.writeFileSync(`${file}.tmp`, text);
  fs.renameSync(`${file}.tmp`, file);
}

/** `n` distinct loopback ports that were free a moment ago. */
export async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/** Polls `check` every 50 ms until it is true; throws `what` after `ms`. */
export async function waitUntil(check: () => Promise<boolean> | boolean, what: string, ms = 10000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end;) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/** Status of GET `urlPath` on a fresh connection to a loopback port or unix socket, or 0 if none. */
export function httpStatus(target: { port: number } | { socketPath: string }, urlPath = "/"): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ ...target, host: "127.0.0.1", path: urlPath, agent: false, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(0));
  });
}

// ---------------------------------------------------------------- the demo app pair

/** Where one colour of the pair listens. */
export type Upstream = { kind: "unix"; path: string } | { kind: "tcp"; port: number };

export interface DemoPair {
  readonly blue: Upstream;
  readonly green: Upstream;
  /** The two app processes. */
  pids(): number[];
  stop(): void;
}

/**
 * Starts the demo app twice, blue v1 and green v2 (the same binaries the
 * Sandbox runs), each on a unix socket in `dir` or on a free loopback port,
 * and waits until both answer /health/ready.
 */
export async function startDemoPair(dir: string, kind: "unix" | "tcp"): Promise<DemoPair> {
  const ports = kind === "tcp" ? await freePorts(2) : [];
  const pair: Record<Color, Upstream> = {
    blue: kind === "unix" ? { kind, path: path.join(dir, "blue.sock") } : { kind, port: ports[0] },
    green: kind === "unix" ? { kind, path: path.join(dir, "green.sock") } : { kind, port: ports[1] },
  };
  const daemons: Daemon[] = [];
  const versions: Record<Color, string> = { blue: "v1", green: "v2" };
  for (const color of ["blue", "green"] as const) {
    const u = pair[color];
    const listen = u.kind === "unix" ? `unix:${u.path}` : `127.0.0.1:${u.port}`;
    const args = ["--listen", listen, "--color", color, "--version", versions[color]];
    args.push("--active-file", path.join(dir, "active"));
    daemons.push(
      spawnDaemon(buildDemoApp(versions[color]), args, path.join(dir, `${color}.log`), { exitSignal: "SIGKILL" }),
    );
    const target = u.kind === "unix" ? { socketPath: u.path } : { port: u.port };
    await waitUntil(async () => (await httpStatus(target, "/health/ready")) === 200, `the ${color} demo app`);
  }
  return {
    ...pair,
    pids: () => daemons.map((d) => d.pid),
    stop: () => {
      for (const d of daemons) void d.stop("SIGKILL");
    },
  };
}

// ---------------------------------------------------------------- CPU

/** The processes and every descendant (from /proc/<pid>/task/<tid>/children). */
export function processTree(pids: number[]): number[] {
  const seen = new Set<number>();
  const walk = (pid: number) => {
    if (seen.has(pid)) return;
    seen.add(pid);
    let tasks: string[] = [];
    try {
      tasks = fs.readdirSync(`/proc/${pid}/task`);
    } catch {
      return;
    }
    for (const t of tasks) {
      let kids = "";
      try {
        kids = fs.readFileSync(`/proc/${pid}/task/${t}/children`, "utf8");
      } catch {
        /* gone */
      }
      for (const k of kids.split(/\s+/).filter(Boolean)) walk(Number(k));
    }
  };
  pids.forEach(walk);
  return [...seen];
}

/** Nanoseconds on CPU so far of every thread of these processes and their descendants (schedstat), by pid:tid. */
export function cpuNs(pids: number[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const pid of processTree(pids)) {
    let tasks: string[] = [];
    try {
      tasks = fs.readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      try {
        m.set(`${pid}:${t}`, Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, "utf8").split(" ")[0]));
      } catch {
        /* gone meanwhile */
      }
    }
  }
  return m;
}

/** CPU seconds between two cpuNs readings: each thread seen in both, and a new one from 0. */
export function cpuSeconds(before: Map<string, number>, after: Map<string, number>): number {
  let ns = 0;
  for (const [k, v] of after) ns += v - (before.get(k) ?? 0);
  return ns / 1e9;
}

/** The PID a pid file names, or nothing. */
export function pidFrom(file: string): number[] {
  const pid = Number(fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim().split(/\s+/)[0] : NaN);
  return pid > 0 ? [pid] : [];
}

// ---------------------------------------------------------------- the probe

/** The X-Bluegreen-Color a fresh curl connection to `url` gets, or "none (why)". */
export async function probeColor(url: string): Promise<string> {
  const r = await runCmd("curl", ["-sS", "-o", "/dev/null", "-D", "-", "--max-time", "2", url]);
  return /x-bluegreen-color: *(\w+)/i.exec(r.stdout)?.[1] ?? `none (${r.stdout.split("\r\n")[0] || r.stderr.trim()})`;
}

/** Probes until `color` answers; returns how many probes that took. */
export async function waitForColor(url: string, color: Color, ms = 10000): Promise<number> {
  let last = "";
  let n = 0;
  for (const end = Date.now() + ms; Date.now() < end;) {
    n++;
    last = await probeColor(url);
    if (last === color) return n;
  }
  throw new Error(`${url} did not serve ${color} within ${ms} ms (last probe: ${last})`);
}
