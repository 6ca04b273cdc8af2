// The e2e test VM: a Debian 12 image built by build-image.sh (cached by the
// recipe's hash), booted under qemu with user-mode networking restricted to
// this machine: only SSH and HTTP are forwarded, to 127.0.0.1.
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { freePort } from "../../components/cli/ports";
import { requireTool } from "../support/tools";
import type { Connection, Host } from "./host";
import { sftpPut, sshRun } from "./replay";

const RECIPE = path.join(__dirname, "vm", "build-image.sh");
export const CACHE_ROOT = process.env.BLUEGREEN_VM_CACHE ?? "/var/cache/bluegreen-e2e";

export interface Image {
  readonly dir: string;
  readonly privateKey: string;
  /** The image's SSH host key, pinned by the tests (sshHostKey). */
  readonly hostKey: string;
}

/** The cached image for the current recipe, built first if missing (about 2 minutes). */
export function ensureImage(log: (l: string) => void = console.log): Image {
  const hash = crypto.createHash("sha256").update(fs.readFileSync(RECIPE)).digest("hex").slice(0, 16);
  const dir = path.join(CACHE_ROOT, hash);
  if (!fs.existsSync(path.join(dir, "disk.img"))) {
    for (const t of ["debootstrap", "mkfs.ext4", "ssh-keygen", "flock"]) requireTool(t);
    log(`building the VM image into ${dir} (cached for later runs)`);
    fs.mkdirSync(CACHE_ROOT, { recursive: true });
    // Under a lock: both router suites start at once, and the second one waits for the first's image.
    const r = spawnSync(
      "flock",
      [
        path.join(CACHE_ROOT, ".build.lock"),
        "bash",
        "-c",
        'test -f "$1/disk.img" || { rm -rf "$1.building" && bash "$2" "$1.building" && mv "$1.building" "$1"; }',
        "build-image",
        dir,
        RECIPE,
      ],
      { encoding: "utf8" },
    );
    if (r.status !== 0) throw new Error(`building the VM image failed:\n${r.stdout}\n${r.stderr}`);
  }
  return {
    dir,
    privateKey: fs.readFileSync(path.join(dir, "id_ed25519"), "utf8"),
    hostKey: fs.readFileSync(path.join(dir, "host_key.pub"), "utf8").trim().split(/\s+/).slice(0, 2).join(" "),
  };
}

/**
 * A test process that died hard (an uncaught error in a library) may leave its
 * VM running; a VM's work dir holds qemu's pidfile and its test process's PID, so
 * stop the VMs whose test process is gone. Another suite's live VM is left alone:
 * the two router suites may run at once.
 */
function killStrayVms(): void {
  for (const entry of fs.readdirSync(os.tmpdir())) {
    if (!entry.startsWith("bg-vm-")) continue;
    const dir = path.join(os.tmpdir(), entry);
    try {
      const owner = Number(fs.readFileSync(path.join(dir, "owner.pid"), "utf8").trim());
      if (owner !== process.pid && fs.existsSync(`/proc/${owner}`)) continue;
    } catch {
      /* no owner recorded: an older run's */
    }
    try {
      const pid = Number(fs.readFileSync(path.join(dir, "qemu.pid"), "utf8").trim());
      if (fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(dir)) process.kill(pid, "SIGKILL");
    } catch {
      /* no pidfile or no such process: nothing to stop */
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export class Vm implements Host {
  readonly rig = "qemu";
  readonly name = "VM";

  private constructor(
    readonly image: Image,
    readonly sshPort: number,
    readonly httpPort: number,
    private readonly workDir: string,
    private qemu: ChildProcess,
  ) {}

  static async boot(image: Image): Promise<Vm> {
    requireTool("qemu-system-x86_64", "apt-get install -y qemu-system-x86");
    killStrayVms();
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "bg-vm-"));
    fs.writeFileSync(path.join(workDir, "owner.pid"), `${process.pid}\n`);
    const disk = path.join(workDir, "disk.img");
    const cp = spawnSync("cp", ["--sparse=always", path.join(image.dir, "disk.img"), disk]);
    if (cp.status !== 0) throw new Error(`copying the VM disk failed: ${cp.stderr.toString()}`);
    const vm = new Vm(image, await freePort(), await freePort(), workDir, undefined as unknown as ChildProcess);
    vm.qemu = vm.startQemu(disk);
    await vm.waitForSsh(240);
    return vm;
  }

  private startQemu(disk: string): ChildProcess {
    const console = fs.openSync(path.join(this.workDir, "console.log"), "a");
    // KVM exists on these machines but hangs; TCG is slower and reliable.
    const child = spawn(
      "qemu-system-x86_64",
      [
        "-pidfile",
        path.join(this.workDir, "qemu.pid"),
        "-accel",
        "tcg",
        "-m",
        "1024",
        "-smp",
        "2",
        "-nographic",
        "-kernel",
        path.join(this.image.dir, "vmlinuz"),
        "-initrd",
        path.join(this.image.dir, "initrd"),
        "-append",
        "console=ttyS0 root=/dev/vda rw net.ifnames=0",
        "-drive",
        `file=${disk},format=raw,if=virtio`,
        "-netdev",
        `user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:${this.sshPort}-:22,hostfwd=tcp:127.0.0.1:${this.httpPort}-:80`,
        "-device",
        "virtio-net-pci,netdev=n0",
      ],
      { stdio: ["ignore", console, console] },
    );
    // Never leave a VM behind, even if the test process dies.
    process.once("exit", () => child.kill("SIGKILL"));
    return child;
  }

  get httpAddress(): string {
    return `127.0.0.1:${this.httpPort}`;
  }

  get connection(): Connection {
    return {
      host: "127.0.0.1",
      port: this.sshPort,
      user: "root",
      privateKey: this.image.privateKey,
      hostKey: this.image.hostKey,
    };
  }

  /** Runs a command on the VM as root; throws with its output when it fails. */
  async sh(cmd: string): Promise<string> {
    const r = await sshRun({ ...this.connection, dialErrorLimit: 3 }, cmd);
    if (r.code !== 0) throw new Error(`on the VM, \`${cmd}\` exited ${r.code}:\n${r.combined}`);
    return r.stdout;
  }

  private async waitForSsh(seconds: number): Promise<void> {
    const deadline = Date.now() + seconds * 1000;
    while (Date.now() < deadline) {
      if (this.qemu.exitCode !== null) throw new Error(`qemu exited (${this.qemu.exitCode}):\n${this.consoleTail()}`);
      try {
        const r = await sshRun(
          { ...this.connection, dialErrorLimit: 1, perDialTimeout: 5 },
          "systemctl is-system-running --wait || true",
        );
        if (r.code === 0) return;
      } catch {
        /* not up yet */
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
    throw new Error(`the VM did not answer SSH within ${seconds}s:\n${this.consoleTail()}`);
  }

  consoleTail(): string {
    try {
      return fs.readFileSync(path.join(this.workDir, "console.log"), "utf8").split("\n").slice(-30).join("\n");
    } catch {
      return "(no console output)";
    }
  }

  /** Reboots the guest and waits until SSH answers again. */
  async reboot(): Promise<void> {
    await sshRun({ ...this.connection, dialErrorLimit: 1 }, "systemctl reboot").catch(() => undefined);
    await new Promise((r) => setTimeout(r, 5000));
    await this.waitForSsh(240);
  }

  /** Stops qemu by its own PID and removes the working disk. */
  async shutdown(): Promise<void> {
    if (this.qemu.exitCode === null && this.qemu.pid) {
      const exited = new Promise((r) => this.qemu.once("exit", r));
      this.qemu.kill("SIGTERM");
      const timer = setTimeout(() => this.qemu.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(this.workDir, { recursive: true, force: true });
  }
}

/** The in-guest load generator (test/bench/loadgen), built for the VM: load that qemu's user-mode network does not carry. */
export function buildLoadgen(): string {
  requireTool("go", "apt-get install -y golang-go");
  // Per process: the two router suites may build it at once.
  const out = path.join(os.tmpdir(), `bluegreen-loadgen-${process.pid}`);
  const r = spawnSync("go", ["build", "-o", out, "."], {
    cwd: path.join(__dirname, "..", "bench", "loadgen"),
    env: { ...process.env, CGO_ENABLED: "0", GOOS: "linux", GOARCH: "amd64" },
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`building loadgen failed: ${r.stderr}`);
  return out;
}

export interface GuestLoad {
  readonly requests: number;
  readonly failed: number;
  /** GETs Go's client resent after the server closed their kept-alive connection (wrk would count an error). */
  readonly retried: number;
  /** The slowest request's time to its whole response (the guest is saturated: 4-7 s in CI runs under TCG). */
  readonly slowestMs: number;
  /** The load generator's JSON, and when anything failed, the router's own log of those responses. */
  readonly raw: string;
}

/**
 * One in-guest load generator per target (test/bench/loadgen, 64 keep-alive connections unless set,
 * bounded to 600 s) for the whole of `during`: over a minute or more, qemu's user-mode port
 * forward itself drops a few requests even when nothing switches (README, Benchmark),
 * which would hide what a switch does. It runs at nice 10: the guest has the CPU of one
 * emulated machine, and the step under test (a deploy, a reload, a switch) goes first,
 * while the load takes the rest. Its 64 connections stay open and busy throughout.
 *
 * Each connection sends its next request as soon as the last one is answered, so the emulated
 * guest is saturated and a request waits 1-3 s on average; on a busy host a few have waited
 * over 10 s (CI, scenario 18). A request counts as failed after 30 s: a reset, an error
 * status or no answer at all is a failure, a slow answer within 30 s is not.
 * `routerLog(since)`, when given, is a guest command printing the router's log of error
 * responses since that guest time (s): run only when a request failed, its lines are appended
 * to `raw`, so a failure says which status the router gave and why.
 */
export async function guestLoads(
  vm: Host,
  targets: readonly { url: string; host?: string; connections?: number }[],
  during: () => Promise<void>,
  routerLog?: (sinceEpochSeconds: number) => string,
): Promise<GuestLoad[]> {
  const inVm = (cmd: string) => vm.sh(cmd).then((s) => s.trim());
  const since = Number(await inVm("date +%s"));
  // In /root, not /tmp: a reboot empties /tmp.
  if ((await inVm("test -x /root/loadgen && echo yes || echo no")) !== "yes")
    await sftpPut(vm.connection, buildLoadgen(), "/root/loadgen");
  const start = targets.map(
    (t, i) =>
      `rm -f /tmp/lg${i}.json; (nohup nice -n 10 /root/loadgen -k -url ${t.url}${t.host ? ` -host ${t.host}` : ""} -c ${t.connections ?? 64} -timeout 30s -d 600s > /tmp/lg${i}.json 2>&1 &)`,
  );
  await inVm(`chmod +x /root/loadgen; ${start.join("; ")}`);
  await new Promise((r) => setTimeout(r, 1000));
  const raws: string[] = [];
  try {
    await during();
    await new Promise((r) => setTimeout(r, 1000));
  } finally {
    // Stopped whatever happened, so a failed scenario leaves no load behind for the next one.
    await inVm("pkill -TERM -x loadgen || true");
    for (let i = 0; i < targets.length; i++)
      raws.push(
        await inVm(
          `for i in $(seq 50); do grep -q requests /tmp/lg${i}.json && break; sleep 0.2; done; cat /tmp/lg${i}.json`,
        ),
      );
  }
  const loads = raws.map((raw) => {
    const g = JSON.parse(raw) as {
      requests: number;
      resets: number;
      other: number;
      non2xx: number;
      timeouts: number;
      retried: number;
      slowestMs: number;
    };
    const failed = g.resets + g.other + g.non2xx + g.timeouts;
    return { requests: g.requests, failed, retried: g.retried, slowestMs: g.slowestMs, raw };
  });
  if (!routerLog || loads.every((l) => l.failed === 0)) return loads;
  const log = await vm.sh(`{ ${routerLog(since - 2)}; } 2>&1 | tail -n 30`).catch((e: Error) => e.message);
  return loads.map((l) => ({
    ...l,
    raw: `${l.raw}\nthe router's log of error responses since the load began:\n${log}`,
  }));
}
