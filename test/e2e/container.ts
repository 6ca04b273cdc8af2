// The e2e hosts as systemd-nspawn containers: the e2e image's tree (vm/build-image.sh writes
// rootfs/ beside disk.img) booted with systemd as PID 1, each on its own veth pair with its own
// address (10.231.N.2, this machine 10.231.N.1), SSH key, host key and name. The container's
// writes go to a tmpfs overlay that exists only in its supervisor's mount namespace
// (./container-host.sh), so the image stays untouched and a run leaves no mount behind.
//
// Cleanup, on every exit path: shutdown() stops a host and waits for its veth to go; a test
// process that exits without it stops its containers in an exit handler; one killed with
// SIGKILL is seen by each supervisor's watchdog, which stops the container within seconds;
// and every boot first removes the hosts of test processes that are gone (cleanStrays).
import { ChildProcess, execFile, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { promisify } from "util";
import { requireTool } from "../support/tools";
import type { Connection, Host } from "./host";
import { sshRun } from "./replay";
import type { Image } from "./vm";

const SUPERVISOR = path.join(__dirname, "container-host.sh");
/** One directory per host, named by its number N (1-254): its keys, logs, PIDs and mount points. */
export const HOSTS_DIR = process.env.BLUEGREEN_CT_DIR ?? "/run/bluegreen-e2e";
const MAX_HOSTS = 254;

export const machineName = (net: number) => `bge2e${net}`;

/** A process's start time (clock ticks since boot): with its PID, names one process for good. */
function startTime(pid: number): string | undefined {
  try {
    // The command may hold spaces and parentheses: the fields after the last ")" are fixed.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** "PID STARTTIME" as written by processTag / container-host.sh: is that very process alive (a zombie is not)? */
function alive(tag: string | undefined): boolean {
  const [pid, start] = (tag ?? "").trim().split(" ");
  return !!pid && /^\d+$/.test(pid) && startTime(Number(pid)) === start && !zombie(Number(pid));
}
function zombie(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return false;
  }
}
const processTag = (pid: number) => `${pid} ${startTime(pid)}`;
const readTag = (file: string) => {
  try {
    return fs.readFileSync(file, "utf8").trim();
  } catch {
    return undefined;
  }
};

const kill = (pid: number) => {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    /* gone meanwhile */
  }
};

/** The systemd-nspawn processes running a host directory's root, with that directory. */
function nspawns(): { pid: number; dir: string }[] {
  const found: { pid: number; dir: string }[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
    } catch {
      continue;
    }
    const root = argv[argv.indexOf("-D") + 1] ?? "";
    if (path.basename(argv[0]) === "systemd-nspawn" && path.dirname(path.dirname(root)) === HOSTS_DIR)
      found.push({ pid: Number(entry), dir: path.dirname(root) });
  }
  return found;
}

/** The children of a process, by /proc (the container's PID 1 is nspawn's child). */
function childrenOf(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Kills a host's container (its PID 1, which takes its namespaces and veth with it) if it still
 * runs: the one its supervisor recorded, and whatever an nspawn on its root still runs.
 */
function killLeader(dir: string): void {
  const tag = readTag(path.join(dir, "leader"));
  if (alive(tag)) kill(Number(tag!.split(" ")[0]));
  for (const n of nspawns()) if (n.dir === dir) childrenOf(n.pid).forEach(kill);
}

/** Removes a host directory atomically first (renamed away), so no new claim can be caught in it. */
function removeHostDir(dir: string): void {
  const gone = path.join(HOSTS_DIR, `.gone-${path.basename(dir)}-${process.pid}-${Date.now()}`);
  try {
    fs.renameSync(dir, gone);
  } catch {
    return;
  }
  fs.rmSync(gone, { recursive: true, force: true });
}

/**
 * Stops the containers of test processes that are gone (killed with SIGKILL before their
 * watchdog ran, or the machine's PIDs reused) and removes their directories. Live hosts of
 * other test processes, e.g. the other router suite, are left alone.
 */
export function cleanStrays(): string[] {
  const removed: string[] = [];
  if (!fs.existsSync(HOSTS_DIR)) return removed;
  for (const entry of fs.readdirSync(HOSTS_DIR)) {
    const dir = path.join(HOSTS_DIR, entry);
    if (entry.startsWith(".")) {
      // A claim or removal interrupted half-way, over a minute ago.
      if (Date.now() - fs.statSync(dir).mtimeMs > 60_000) fs.rmSync(dir, { recursive: true, force: true });
      continue;
    }
    if (alive(readTag(path.join(dir, "owner")))) continue;
    killLeader(dir);
    const supervisor = readTag(path.join(dir, "supervisor"));
    if (alive(supervisor)) kill(Number(supervisor!.split(" ")[0]));
    removeHostDir(dir);
    removed.push(entry);
  }
  // An nspawn whose host directory is gone (removed while its container still ran).
  for (const n of nspawns()) {
    if (fs.existsSync(n.dir)) continue;
    childrenOf(n.pid).forEach(kill);
    removed.push(path.basename(n.dir));
  }
  return removed;
}

/** Takes the first free host number: its directory appears at once, with its owner in it (rename is atomic). */
function claim(): { net: number; dir: string } {
  fs.mkdirSync(HOSTS_DIR, { recursive: true });
  for (let net = 1; net <= MAX_HOSTS; net++) {
    const dir = path.join(HOSTS_DIR, String(net));
    if (fs.existsSync(dir)) continue;
    // Someone else's container by that name (not ours to touch): skip its number.
    if (spawnSync("ip", ["link", "show", `ve-${machineName(net)}`], { stdio: "ignore" }).status === 0) continue;
    const tmp = fs.mkdtempSync(path.join(HOSTS_DIR, ".claim-"));
    fs.writeFileSync(path.join(tmp, "owner"), `${processTag(process.pid)}\n`);
    try {
      fs.renameSync(tmp, dir);
      return { net, dir };
    } catch {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  throw new Error(`no free e2e host number in ${HOSTS_DIR} (all ${MAX_HOSTS} taken)`);
}

const mine = new Set<string>();
let exitHandler = false;
function stopMineOnExit(): void {
  if (exitHandler) return;
  exitHandler = true;
  // Synchronous, as an exit handler must be: the containers go with their PID 1 (their
  // supervisors end when nspawn does), and their directories with them.
  process.once("exit", () => {
    for (const dir of mine) {
      killLeader(dir);
      removeHostDir(dir);
    }
  });
}

const run = promisify(execFile);

export class Container implements Host {
  readonly rig = "nspawn";
  private exited: Promise<number | null>;
  private exitCode: number | null | undefined;

  private constructor(
    readonly net: number,
    private readonly dir: string,
    readonly connection: Connection,
    private readonly supervisor: ChildProcess,
  ) {
    this.exited = new Promise((resolve) =>
      supervisor.once("exit", (code) => {
        this.exitCode = code;
        resolve(code);
      }),
    );
  }

  get name(): string {
    return `container ${machineName(this.net)}`;
  }
  get machine(): string {
    return machineName(this.net);
  }
  /** This machine's side of the veth pair. */
  get link(): string {
    return `ve-${this.machine}`;
  }
  get address(): string {
    return `10.231.${this.net}.2`;
  }
  get httpAddress(): string {
    return `${this.address}:80`;
  }

  /** One host. */
  static async boot(image: Image): Promise<Container> {
    return (await Container.bootMany(image, 1))[0];
  }

  /** N hosts at once, each on its own veth with its own address and keys; all booted, or none left running. */
  static async bootMany(image: Image, count: number): Promise<Container[]> {
    for (const t of ["systemd-nspawn", "unshare", "ip", "ssh-keygen"])
      requireTool(t, "apt-get install -y systemd-container iproute2 openssh-client util-linux");
    const rootfs = path.join(image.dir, "rootfs");
    if (!fs.existsSync(path.join(rootfs, "etc", "os-release")))
      throw new Error(`the e2e image in ${image.dir} has no rootfs/ tree (an image built before the container rig?)`);
    cleanStrays();
    stopMineOnExit();
    const claims = Array.from({ length: count }, () => claim());
    const booted = await Promise.allSettled(claims.map((c) => Container.start(rootfs, c.net, c.dir)));
    const failed = booted.find((b): b is PromiseRejectedResult => b.status === "rejected");
    if (failed) {
      await Promise.all(booted.map((b) => (b.status === "fulfilled" ? b.value.shutdown() : Promise.resolve())));
      for (const c of claims) removeHostDir(c.dir);
      throw failed.reason;
    }
    return booted.map((b) => (b as PromiseFulfilledResult<Container>).value);
  }

  private static async start(rootfs: string, net: number, dir: string): Promise<Container> {
    mine.add(dir);
    const name = machineName(net);
    const keys = path.join(dir, "keys");
    fs.mkdirSync(keys);
    // This host's own client key and host keys (all three types sshd offers).
    await Promise.all(
      [
        ["id_ed25519", "ed25519"],
        ["ssh_host_ed25519_key", "ed25519"],
        ["ssh_host_ecdsa_key", "ecdsa"],
        ["ssh_host_rsa_key", "rsa"],
      ].map(([file, type]) => run("ssh-keygen", ["-q", "-t", type, "-N", "", "-C", name, "-f", path.join(keys, file)])),
    );
    const log = fs.openSync(path.join(dir, "supervisor.log"), "a");
    const supervisor = spawn(
      "unshare",
      ["--mount", "--propagation", "private", "bash", SUPERVISOR, dir, rootfs, name, String(net), String(process.pid)],
      // Its own process group: a Ctrl-C meant for mocha does not cut it off before its cleanup.
      { stdio: ["ignore", log, log], detached: true },
    );
    fs.closeSync(log);
    supervisor.unref();
    fs.writeFileSync(path.join(dir, "supervisor"), `${processTag(supervisor.pid!)}\n`);
    const connection: Connection = {
      host: `10.231.${net}.2`,
      port: 22,
      user: "root",
      privateKey: fs.readFileSync(path.join(keys, "id_ed25519"), "utf8"),
      hostKey: fs
        .readFileSync(path.join(keys, "ssh_host_ed25519_key.pub"), "utf8")
        .trim()
        .split(/\s+/)
        .slice(0, 2)
        .join(" "),
    };
    const host = new Container(net, dir, connection, supervisor);
    try {
      await host.waitForSsh(60);
    } catch (e) {
      await host.shutdown();
      throw e;
    }
    return host;
  }

  private boots(): number {
    return Number(readTag(path.join(this.dir, "boots")) ?? 0);
  }

  /** Until SSH answers and systemd says the boot is over, with no failed unit. */
  private async waitForSsh(seconds: number): Promise<void> {
    const deadline = Date.now() + seconds * 1000;
    let last = "";
    while (Date.now() < deadline) {
      if (this.exitCode !== undefined)
        throw new Error(`${this.name} stopped (${this.exitCode}) before SSH answered:\n${this.consoleTail()}`);
      try {
        const r = await sshRun(
          { ...this.connection, dialErrorLimit: 1, perDialTimeout: 5 },
          "systemctl is-system-running --wait; systemctl --failed --no-legend --plain",
        );
        last = r.combined.trim();
        if (r.code === 0 && last === "running") return;
        if (!/^(initializing|starting)$/m.test(last))
          throw new Error(`${this.name} booted with failed units (systemctl is-system-running, --failed):\n${last}`);
      } catch (e) {
        if (e instanceof Error && e.message.includes("failed units")) throw e;
        /* not up yet */
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`${this.name} did not answer SSH within ${seconds}s (${last}):\n${this.consoleTail()}`);
  }

  consoleTail(): string {
    const tail = (f: string) => {
      try {
        return fs.readFileSync(path.join(this.dir, f), "utf8").split("\n").slice(-20).join("\n");
      } catch {
        return `(no ${f})`;
      }
    };
    return `${tail("console.log")}\n${tail("supervisor.log")}`;
  }

  async sh(cmd: string): Promise<string> {
    const r = await sshRun({ ...this.connection, dialErrorLimit: 3 }, cmd);
    if (r.code !== 0) throw new Error(`on ${this.name}, \`${cmd}\` exited ${r.code}:\n${r.combined}`);
    return r.stdout;
  }

  /**
   * systemd's own reboot: the container's PID 1 exits with 133, and its supervisor boots it again
   * on the same overlay (the disk survives, /run and /tmp do not), with the same address and keys.
   */
  async reboot(): Promise<void> {
    const before = this.boots();
    await sshRun({ ...this.connection, dialErrorLimit: 1 }, "systemctl reboot").catch(() => undefined);
    const deadline = Date.now() + 60_000;
    while (this.boots() === before) {
      if (this.exitCode !== undefined || Date.now() > deadline)
        throw new Error(`${this.name} did not boot again after the reboot:\n${this.consoleTail()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await this.waitForSsh(60);
  }

  /** Kills the container's PID 1, waits for its supervisor to end and its veth to go, and removes its directory. */
  async shutdown(): Promise<void> {
    killLeader(this.dir);
    if (this.exitCode === undefined) {
      const timer = setTimeout(() => {
        try {
          process.kill(this.supervisor.pid!, "SIGKILL");
        } catch {
          /* gone */
        }
      }, 10_000);
      await this.exited;
      clearTimeout(timer);
      killLeader(this.dir);
    }
    for (let i = 0; i < 100; i++) {
      if (spawnSync("ip", ["link", "show", this.link], { stdio: "ignore" }).status !== 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    removeHostDir(this.dir);
    mine.delete(this.dir);
  }
}
