// The Node demo app (app/node, SQLite) in a sandbox's slots, with a stand-in for systemd: a
// `systemctl` on PATH that starts and stops the slots' processes (start, stop, is-active,
// is-failed; daemon-reload, enable and the rest are logged and succeed), so restore.sh and the
// config steps run unchanged. Each slot is `node server.js` with the env its unit would give it,
// against the sandbox's data directory.
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { Color } from "../../components/host/layout";
import { loadScript } from "../../components/host/shell";
import { ROOT } from "./harness";
import { Sandbox } from "./sandbox";
import { requireTool, run } from "./tools";

const APP = path.join(ROOT, "app", "node");

/** The stand-in systemctl: units are `<name>.start` scripts in $root/units, with a pid file each. */
function systemctlStub(units: string, log: string): string {
  return `#!/bin/bash
echo "systemctl $*" >>${log}
cmd=$1; shift
quiet=no
[ "\${1:-}" != -q ] || { quiet=yes; shift; }
case "$cmd" in
  is-active)
    pid=$(cat "${units}/\${1%.service}.pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null && { [ $quiet = yes ] || echo active; exit 0; }
    [ $quiet = yes ] || echo inactive; exit 3 ;;
  is-failed) exit 1 ;;
  stop)
    for u in "$@"; do
      u=\${u%.service}
      pid=$(cat "${units}/$u.pid" 2>/dev/null) || continue
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      rm -f "${units}/$u.pid"
    done ;;
  start | restart)
    for u in "$@"; do
      u=\${u%.service}
      [ -f "${units}/$u.start" ] || continue
      [ "$cmd" = start ] && pid=$(cat "${units}/$u.pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null && continue
      bash "${units}/$u.start"
    done ;;
  show)
    case "$*" in
      *ExecMainStatus*) cat "${units}/hook-status" 2>/dev/null || echo 0 ;;
      *Result*) echo exit-code ;;
      *ActiveState*) echo inactive ;;
      *) echo "" ;;
    esac ;;
esac
exit 0
`;
}

export class NodeSlots {
  readonly bin: string;
  readonly units: string;
  readonly log: string;

  constructor(readonly host: Sandbox) {
    requireTool("node");
    requireTool("sqlite3", "apt-get install -y sqlite3");
    this.bin = host.at("bin");
    this.units = host.at("units");
    this.log = host.at("systemctl.log");
    fs.mkdirSync(this.bin, { recursive: true });
    fs.mkdirSync(this.units, { recursive: true });
    fs.mkdirSync(host.at(host.L.unitDir), { recursive: true });
    fs.writeFileSync(path.join(this.bin, "systemctl"), systemctlStub(this.units, this.log), { mode: 0o755 });
    // run_hook's transient unit: the command in its WorkingDirectory, its output to the FIFO it names.
    fs.writeFileSync(
      path.join(this.bin, "systemd-run"),
      `#!/bin/bash
out=/dev/null dir=.
while [ $# -gt 0 ]; do
  case "$1" in
    StandardOutput=file:*) out=\${1#StandardOutput=file:} ;;
    WorkingDirectory=*) dir=\${1#WorkingDirectory=} ;;
    --setenv=*) export "\${1#--setenv=}" ;;
    --) shift; break ;;
  esac
  shift
done
(cd "$dir" && "$@") >"$out" 2>&1
echo $? >${this.units}/hook-status
exit "$(cat ${this.units}/hook-status)"
`,
      { mode: 0o755 },
    );
    fs.writeFileSync(path.join(this.bin, "journalctl"), "#!/bin/sh\necho '-- no entries (stand-in) --'\n", {
      mode: 0o755,
    });
  }

  /** PATH with the stand-ins first. */
  get path(): string {
    return `${this.bin}:${process.env.PATH}`;
  }

  get dataDir(): string {
    return this.host.at(this.host.L.dataDir);
  }

  /** Migrates app.db in the data directory (migrate.js, as a preSwitch would). */
  migrate(): void {
    const r = run("node", [path.join(APP, "migrate.js")], {
      env: { ...process.env, BLUEGREEN_DATA_DIR: this.dataDir },
    });
    if (r.status !== 0) throw new Error(`migrate.js failed: ${r.stderr}`);
  }

  /** Writes the slot's "unit" (its start script) and records it as deploy-slot.sh would, then starts it. */
  async start(color: Color, version: string): Promise<void> {
    const L = this.host.L;
    const listen = `unix:${this.host.at(L.slotSocket(color))}`;
    const unit = `${L.ns}@${color}`;
    const env = {
      BLUEGREEN_LISTEN: listen,
      BLUEGREEN_COLOR: color,
      BLUEGREEN_VERSION: version,
      BLUEGREEN_DATA_DIR: this.dataDir,
      BLUEGREEN_ACTIVE_FILE: this.host.at(`${L.stateDir}/active`),
      BLUEGREEN_DRAIN_TIMEOUT: "5",
      JOB_INTERVAL_MS: "200",
      PATH: process.env.PATH ?? "",
    };
    const exports = Object.entries(env)
      .map(([k, v]) => `${k}='${v}'`)
      .join(" ");
    fs.writeFileSync(
      path.join(this.units, `${unit}.start`),
      // As systemd starts a unit: no file descriptor of the caller's (a lock's) is inherited.
      `#!/bin/bash\nfor fd in /proc/$$/fd/*; do n=\${fd##*/}; [ "$n" -le 2 ] || eval "exec $n>&-"; done 2>/dev/null\ncd ${APP}\n${exports} setsid node server.js </dev/null >>${this.units}/${unit}.log 2>&1 &\necho $! >${this.units}/${unit}.pid\n`,
    );
    const slotDir = this.host.at(`${L.stateDir}/slots/${color}`);
    fs.mkdirSync(slotDir, { recursive: true });
    fs.writeFileSync(path.join(slotDir, "listen"), `${listen}\n`);
    fs.rmSync(path.join(slotDir, "tcp"), { force: true });
    fs.writeFileSync(
      path.join(slotDir, "deployed"),
      `version=${version}\nlisten=${listen}\nhealth_path=/health/ready\nhealth_timeout=30\n`,
    );
    const r = run(path.join(this.bin, "systemctl"), ["start", unit]);
    if (r.status !== 0) throw new Error(r.stderr);
    await this.ready(color);
  }

  async ready(color: Color): Promise<void> {
    for (let i = 0; i < 200; i++) {
      if (this.host.curlSlot(color, "/health/ready").status === 0) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`node slot ${color} did not become ready: ${this.slotLog(color)}`);
  }

  slotLog(color: Color): string {
    const f = path.join(this.units, `${this.host.L.ns}@${color}.log`);
    return fs.existsSync(f) ? fs.readFileSync(f, "utf8").slice(-2000) : "(no log)";
  }

  pid(color: Color): number | undefined {
    const f = path.join(this.units, `${this.host.L.ns}@${color}.pid`);
    return fs.existsSync(f) ? Number(fs.readFileSync(f, "utf8").trim()) : undefined;
  }

  /** Stops every slot process (the sandbox's own stop() does not know them). */
  stop(): void {
    for (const c of ["blue", "green"] as const) {
      const pid = this.pid(c);
      if (pid)
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          /* gone */
        }
    }
  }

  /** An installed host tool, run with the stand-ins on PATH. */
  tool(name: string, vars: Record<string, string> = {}, args: string[] = [], stdin = "") {
    return run(this.host.at(`${this.host.L.toolsDir}/${name}`), args, {
      env: { PATH: this.path, ...vars },
      input: stdin,
    });
  }
}

/** Installs more host scripts into a sandbox's tools folder (the Sandbox installs only the switch's). */
export function installTools(host: Sandbox, names: readonly string[]): void {
  for (const name of names) fs.writeFileSync(host.at(`${host.L.toolsDir}/${name}`), loadScript(name), { mode: 0o755 });
}

/** Makes the sandbox's app user one that does not exist, so copies run as the test's own user. */
export function noAppUser(host: Sandbox): void {
  fs.appendFileSync(host.at(`${host.L.toolsDir}/layout.sh`), "BG_APP_USER=bg-sandbox-no-such-user\n");
}

/**
 * An installed host tool of a sandbox's app, run without blocking the event loop (so that a
 * load, a receiver or another tool in this process really overlaps it). PATH: the stand-ins first.
 */
export function toolAsync(
  slots: NodeSlots,
  name: string,
  o: { args?: string[]; vars?: Record<string, string>; stdin?: string } = {},
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(slots.host.at(`${slots.host.L.toolsDir}/${name}`), o.args ?? [], {
      env: { PATH: slots.path, ...o.vars },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(o.stdin ?? "");
  });
}

/**
 * A sandbox on five ports from `base` with the Node demo migrated and running in both slots,
 * blue live, `tools` installed, and copies made as the test's own user (no app user here).
 */
export async function nodeSandbox(
  base: number,
  tools: readonly string[],
): Promise<{ host: Sandbox; slots: NodeSlots }> {
  const host = new Sandbox({
    mode: "socket",
    httpPort: base,
    previewPort: base + 1,
    checkPort: base + 2,
    ports: { blue: base + 3, green: base + 4 },
  });
  const cfg = host.configureAndStart();
  if (cfg.status !== 0) throw new Error(cfg.stderr);
  installTools(host, tools);
  noAppUser(host);
  const slots = new NodeSlots(host);
  slots.migrate();
  await slots.start("blue", "v1");
  await slots.start("green", "v1");
  const sw = host.switchTo("blue");
  if (sw.status !== 0) throw new Error(sw.stderr);
  return { host, slots };
}
