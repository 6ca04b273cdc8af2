// A bluegreen "host" inside a temp directory on this machine: the real host
// scripts, the real demo app and a real nginx, with every path moved under
// one root and nginx on loopback ports. Slots are plain child processes here
// (no systemd), so only the scripts that do not need systemd run in it.
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  AppLayout,
  appLayout,
  Color,
  COLORS,
  layout,
  renderLayoutSh,
  RouterKind,
  shared,
} from "../../components/host/layout";
import { LinkModeName, renderNginxCommon, renderNginxSite } from "../../components/router/nginx";
import { renderBundle } from "../../components/host/shell";
import { slotListen } from "../../components/app/unitFiles";
import { renderHaproxyMain } from "../../components/router/haproxy";
import { ROUTERS } from "../../components/router/routers";
import { libScriptNames, loadScript } from "../../components/host/shell";
import { ROOT } from "./harness";
import { requireTool, run } from "./tools";

/** Builds the demo app for a version once per machine (reproducible, so a cache is safe). */
/**
 * The values switch.sh needs that these tests do not vary (it has no defaults of its own:
 * components/host/tools.ts): no watch unless a test asks for one.
 */
export const SWITCH_TEST_VALUES = { VERIFY_TIMEOUT: "15", WATCH_SECONDS: "0", ERROR_PERCENT: "5", MIN_ERRORS: "5" };

export function buildDemoApp(version: string): string {
  requireTool("go", "apt-get install -y golang-go");
  const out = path.join(os.tmpdir(), "bluegreen-test-apps", version, "app");
  if (!fs.existsSync(out)) {
    const r = run("bash", [path.join(ROOT, "app", "build.sh"), version, "amd64", out]);
    if (r.status !== 0) throw new Error(`building the demo app failed: ${r.stderr}`);
  }
  return out;
}

/** Moves the host paths of a rendered nginx site under `root`, with the public listener on loopback:httpPort (and :443 on httpsPort). */
export function relocateSite(
  site: string,
  root: string,
  httpPort: number,
  httpsPort = 0,
  L: AppLayout = layout,
): string {
  return site
    .replace(/listen 443 ssl http2;/g, `listen 127.0.0.1:${httpsPort} ssl http2;`)
    .replace(/ {4}listen \[::\]:443 ssl http2;\n/g, "")
    .replace(/listen 80;/g, `listen 127.0.0.1:${httpPort};`)
    .replace(/ {4}listen \[::\]:80;\n/g, "")
    .replace(new RegExp(`${L.runDir}/`, "g"), `${root}${L.runDir}/`)
    .replace(new RegExp(`${L.stateDir}/`, "g"), `${root}${L.stateDir}/`)
    .replace(/\/var\/log\/nginx\//g, `${root}/var/log/nginx/`)
    .replace(/\/etc\/nginx\/bluegreen\//g, `${root}/etc/nginx/bluegreen/`)
    .replace("listen 80 default_server;", `listen 127.0.0.1:${httpPort} default_server;`)
    .replace("    listen [::]:80 default_server;\n", "");
}

/**
 * Moves the host paths of rendered HAProxy files under `root`, the public listener to
 * loopback:httpPort (and :443 to httpsPort), and drops the user and group switch (the sandbox runs as root).
 */
export function relocateHaproxy(
  text: string,
  root: string,
  httpPort: number,
  httpsPort = 0,
  L: AppLayout = layout,
): string {
  return text
    .replace(new RegExp(`${shared.haproxyDir}/`, "g"), `${root}${shared.haproxyDir}/`)
    .replace("    bind :443 ssl", `    bind 127.0.0.1:${httpsPort} ssl`)
    .replace(/^#bluegreen-https {4}bind \[::\]:443 .*\n/m, "")
    .replace(new RegExp(`${L.runDir}/`, "g"), `${root}${L.runDir}/`)
    .replace(new RegExp(`${L.stateDir}/`, "g"), `${root}${L.stateDir}/`)
    .replace(shared.haproxyAdminSocket, `${root}${shared.haproxyAdminSocket}`)
    .replace("    bind :80\n", `    bind 127.0.0.1:${httpPort}\n`)
    .replace("    bind [::]:80 v6only\n", "")
    .replace(/^ {4}(user|group|log stdout) .*\n/gm, "");
}

/** The X-Bluegreen-Color of a fresh request to a loopback port (for a site's name), or "none (why)". */
function colorAt(port: number, host?: string): string {
  const name = host ? ["-H", `Host: ${host}`] : [];
  const r = run("curl", ["-sS", "-o", "/dev/null", "-D", "-", "--max-time", "2", ...name, `http://127.0.0.1:${port}/`]);
  return /x-bluegreen-color: *(\w+)/i.exec(r.stdout)?.[1] ?? `none (${r.stdout.split("\r\n")[0] || r.stderr.trim()})`;
}

/** The TCP ports something listens on now (any address), from /proc/net/tcp and tcp6. */
export function listeningPorts(): Set<number> {
  const ports = new Set<number>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
    for (const line of text.split("\n").slice(1)) {
      // "  0: 0100007F:4A38 00000000:0000 0A ...": local address:port in hex, state 0A is LISTEN.
      const m = /^\s*\d+:\s+[0-9A-F]+:([0-9A-F]{4})\s+\S+\s+0A\b/.exec(line);
      if (m) ports.add(parseInt(m[1], 16));
    }
  }
  return ports;
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export interface SandboxOptions {
  /** How slots listen unless startSlot says otherwise. */
  readonly mode: LinkModeName;
  readonly httpPort: number;
  readonly previewPort: number;
  /** nginx's loopback check listener, which the switch verifies through. */
  readonly checkPort: number;
  readonly ports?: { readonly blue: number; readonly green: number };
  /** The router in front of the slots (default nginx). */
  readonly router?: RouterKind;
  /** The app's domains (default none: the catch-all). */
  readonly domains?: readonly string[];
  /** HTTPS: the router's :443 listener on loopback:httpsPort (tls-config.sh checks it there). */
  readonly tls?: { readonly hstsMaxAge: number; readonly httpsPort: number };
  /** HAProxy, HTTP-01: the loopback port of lego's own server. */
  readonly acmePort?: number;
  /** The app's name (default bluegreen: the default layout). */
  readonly app?: string;
  /** Another app on the same host: this sandbox shares its root and its running router. */
  readonly host?: Sandbox;
  /**
   * false: start the slots without --fault-dir (the demo app then stats no fault file per
   * request), as the benchmarks' other rows run it. Default true: tests inject faults.
   */
  readonly faults?: boolean;
  /** One of several hosts: the router answers a load balancer's health path (BALANCER_HEALTH_PATH). */
  readonly balancer?: { readonly healthPath: string };
}

/** The options of a sandbox on five consecutive loopback ports from `port`: public, preview, check, blue, green. */
export function onPorts(router: RouterKind, port: number): SandboxOptions {
  return {
    router,
    mode: "socket",
    httpPort: port,
    previewPort: port + 1,
    checkPort: port + 2,
    ports: { blue: port + 3, green: port + 4 },
  };
}

export interface ToolResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export class Sandbox {
  readonly root: string;
  readonly faultDir: string;
  private readonly slots = new Map<Color, ChildProcess>();
  private readonly nginxConf: string;

  readonly router: RouterKind;
  /** This app's paths on the host. */
  readonly L: AppLayout;

  constructor(readonly opts: SandboxOptions) {
    this.router = opts.router ?? "nginx";
    if (this.router === "nginx") requireTool("nginx");
    else {
      requireTool("haproxy", "apt-get install -y haproxy");
      requireTool("socat", "apt-get install -y socat");
    }
    requireTool("curl");
    requireTool("flock", "apt-get install -y util-linux");
    // A port someone else holds (a sandbox leaked by an interrupted run, say) would make the
    // tests below fail far from the cause, or pass against the wrong server: refuse it here.
    const listening = listeningPorts();
    const taken = Object.entries(this.portsByName()).filter(([, p]) => listening.has(p));
    if (taken.length > 0) {
      throw new Error(
        `sandbox: port ${taken.map(([k, p]) => `${p} (${k})`).join(", ")} already in use on this machine, ` +
          `a sandbox left running by an interrupted test run? See who holds it: ss -ltnp 'sport = :${taken[0][1]}'`,
      );
    }
    this.L = appLayout(opts.app);
    const layout = this.L;
    this.root = opts.host?.root ?? fs.mkdtempSync(path.join(os.tmpdir(), "bg-host-"));
    fs.chmodSync(this.root, 0o755);
    this.faultDir = path.join(this.root, opts.app ? `faults-${opts.app}` : "faults");
    this.nginxConf = path.join(this.root, "nginx.conf");
    const at = (p: string) => path.join(this.root, p);
    for (const d of [
      layout.toolsDir,
      `${layout.stateDir}/slots`,
      "/etc/nginx/conf.d",
      "/etc/nginx/bluegreen",
      "/var/log/nginx",
      "log",
      path.basename(this.faultDir),
      layout.dataDir,
      layout.releasesDir,
      shared.haproxyRoutesDir,
      "/run/haproxy",
    ]) {
      fs.mkdirSync(at(d), { recursive: true });
    }
    for (const c of COLORS) fs.mkdirSync(at(`${layout.runDir}/${c}`), { recursive: true });
    const nginx = `nginx -q -c ${this.nginxConf}`;
    fs.writeFileSync(
      at(`${layout.toolsDir}/layout.sh`),
      renderLayoutSh(layout, {
        root: this.root,
        router: this.router,
        nginxTest: `nginx -t -q -c ${this.nginxConf}`,
        nginxReload: `${nginx} -s reload`,
        // Master-worker, as Debian's unit runs it: USR2 to the master is systemctl reload.
        haproxyReload: `kill -USR2 "$(cat ${this.root}/haproxy.pid)"`,
      }),
    );
    // tls_served_serial's port; a test may point it elsewhere.
    fs.appendFileSync(
      at(`${layout.toolsDir}/layout.sh`),
      `BG_HTTPS_PORT=\${BG_HTTPS_PORT:-${opts.tls?.httpsPort ?? 443}}\n`,
    );
    for (const name of [
      "tls-config.sh",
      "tls-renew.sh",
      ...libScriptNames(),
      "router-nginx.sh",
      "router-haproxy.sh",
      "switch.sh",
      "watch.sh",
      "phases.sh",
      "drain.sh",
      "router-config.sh",
      "maintenance.sh",
      "status.sh",
      "prune.sh",
    ]) {
      fs.writeFileSync(at(`${layout.toolsDir}/${name}`), loadScript(name), { mode: 0o755 });
    }
    // Workers run as root here: the sockets are 0660 and owned by root, as the slots are.
    if (!opts.host)
      fs.writeFileSync(
        this.nginxConf,
        [
          "user root;",
          "worker_processes 2;",
          `pid ${this.root}/nginx.pid;`,
          `error_log ${this.root}/log/error.log;`,
          "events { worker_connections 4096; }",
          `http { include ${this.root}${shared.nginxCommon}; }`,
          "",
        ].join("\n"),
      );
  }

  private get ports() {
    return this.opts.ports ?? { blue: 18201, green: 18202 };
  }

  /** Every loopback TCP port this sandbox may listen on, by the option that names it. */
  private portsByName(): Record<string, number> {
    const o = this.opts;
    const all: Record<string, number | undefined> = {
      // The router's public listeners belong to the host's first app.
      httpPort: o.host ? undefined : o.httpPort,
      previewPort: o.previewPort,
      checkPort: o.checkPort,
      "ports.blue": this.ports.blue,
      "ports.green": this.ports.green,
      "tls.httpsPort": o.host ? undefined : o.tls?.httpsPort,
      acmePort: o.acmePort,
    };
    return Object.fromEntries(Object.entries(all).filter((e): e is [string, number] => e[1] !== undefined));
  }

  /** Where the router's :443 listener is on loopback: the host's first app's. */
  private get httpsPort(): number | undefined {
    return this.opts.tls?.httpsPort ?? this.opts.host?.opts.tls?.httpsPort;
  }

  /** The site as the program renders it, relocated under the sandbox. */
  site(ports = this.ports, previewPort = this.opts.previewPort): string {
    return relocateSite(
      renderNginxSite({
        layout: this.L,
        domains: this.opts.domains ?? [],
        tls: this.opts.tls && { hstsMaxAge: this.opts.tls.hstsMaxAge },
        previewPort,
        checkPort: this.opts.checkPort,
        maintenanceRetryAfter: 120,
        ports,
        balancer: this.opts.balancer,
      }),
      this.root,
      this.opts.httpPort,
      this.httpsPort,
      this.L,
    );
  }

  /** Starts the router on a minimal config, then writes the app's through router-config.sh. */
  configureAndStart(): ToolResult {
    // Another app on a running host: its router is already there.
    if (this.opts.host) return this.routerConfig();
    if (this.router === "nginx") return this.configureAndStartNginx();
    fs.writeFileSync(
      this.at(shared.haproxyMain),
      relocateHaproxy(renderHaproxyMain(), this.root, this.opts.httpPort, this.opts.tls?.httpsPort),
    );
    const start = run("haproxy", [
      "-D",
      "-W",
      "-S",
      this.at(shared.haproxyMasterSocket),
      "-p",
      `${this.root}/haproxy.pid`,
      "-f",
      this.at(shared.haproxyMain),
      "-f",
      this.at(shared.haproxyDir),
    ]);
    if (start.status !== 0) throw new Error(`haproxy did not start: ${start.stderr}`);
    return this.routerConfig();
  }

  /** Writes the site through router-config.sh, then starts nginx. */
  configureAndStartNginx(): ToolResult {
    // router-config.sh ends with a reload, which needs a running master: start one on an empty config first.
    fs.writeFileSync(path.join(this.root, shared.nginxCommon), "");
    const start = run("nginx", ["-q", "-c", this.nginxConf]);
    if (start.status !== 0) throw new Error(`nginx did not start: ${start.stderr}`);
    return this.routerConfig();
  }

  /** router-config.sh as the Router component runs it, for this sandbox's app. */
  routerConfig(
    ports = this.ports,
    env: { OWNER?: string; DOMAINS?: string } = {},
    previewPort = this.opts.previewPort,
  ): ToolResult {
    const { vars, stdin } = this.routerConfigInput(ports, env, previewPort);
    return this.tool("router-config.sh", vars, stdin);
  }

  /** router-config.sh's env values and stdin, as the Router component sends them. */
  routerConfigInput(
    ports = this.ports,
    env: { OWNER?: string; DOMAINS?: string } = {},
    previewPort = this.opts.previewPort,
  ): { vars: Record<string, string>; stdin: string } {
    const o = { ...this.opts, previewPort };
    return {
      vars: {
        OWNER: env.OWNER ?? `organization/bluegreen/sandbox${this.opts.app ? `-${this.opts.app}` : ""}`,
        DOMAINS: env.DOMAINS ?? (this.opts.domains ?? []).join(" "),
        PORTS: [o.previewPort, o.checkPort, ports.blue, ports.green, this.router === "haproxy" ? o.acmePort : undefined]
          .filter((p) => p !== undefined)
          .join(" "),
        BLUE_PORT: String(ports.blue),
        GREEN_PORT: String(ports.green),
      },
      stdin:
        this.router === "nginx"
          ? renderBundle({
              common: relocateSite(renderNginxCommon(), this.root, o.httpPort, this.httpsPort, this.L),
              site: this.site(ports, previewPort),
            })
          : renderBundle(
              Object.fromEntries(
                Object.entries(
                  ROUTERS.haproxy.sections({
                    layout: this.L,
                    domains: o.domains ?? [],
                    tls: o.tls && { hstsMaxAge: o.tls.hstsMaxAge },
                    acmePort: o.acmePort,
                    previewPort,
                    checkPort: o.checkPort,
                    maintenanceRetryAfter: 120,
                    ports,
                    balancer: o.balancer,
                  }),
                ).map(([k, v]) => [k, relocateHaproxy(v, this.root, o.httpPort, this.httpsPort, this.L)]),
              ),
            ),
    };
  }

  /** Starts a slot as deploy-slot.sh would leave it: the app listening, its listen address and tcp flag recorded. */
  async startSlot(color: Color, version: string, mode: LinkModeName = this.opts.mode): Promise<void> {
    this.slots.get(color)?.kill("SIGKILL");
    const listen = slotListen(this.L, mode, color, this.ports[color]).replace(
      this.L.runDir,
      `${this.root}${this.L.runDir}`,
    );
    const args = [
      "--listen",
      listen,
      "--color",
      color,
      "--version",
      version,
      "--active-file",
      path.join(this.root, this.L.stateDir, "active"),
      ...(this.opts.faults === false ? [] : ["--fault-dir", this.faultDir]),
    ];
    const child = spawn(buildDemoApp(version), args, { stdio: ["ignore", "ignore", "pipe"] });
    this.slots.set(color, child);
    const slotDir = path.join(this.root, this.L.stateDir, "slots", color);
    fs.mkdirSync(slotDir, { recursive: true });
    fs.writeFileSync(path.join(slotDir, "listen"), `${listen}\n`);
    if (mode === "tcp") fs.writeFileSync(path.join(slotDir, "tcp"), "");
    else fs.rmSync(path.join(slotDir, "tcp"), { force: true });
    fs.writeFileSync(path.join(slotDir, "deployed"), `version=${version}\nlisten=${listen}\n`);
    // As slot_apply ends: the router learns how the slot listens now (HAProxy's map; nginx reads the flag).
    const sync = this.lib("router_sync");
    if (sync.status !== 0) throw new Error(`router_sync failed: ${sync.stderr}`);
    for (let i = 0; i < 100; i++) {
      if (this.curlSlot(color, "/health/ready").status === 0) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`slot ${color} did not start`);
  }

  /** The PIDs of the slots' processes. */
  slotPids(): number[] {
    return [...this.slots.values()].map((c) => c.pid).filter((p): p is number => p !== undefined);
  }

  curlSlot(color: Color, urlPath: string): ToolResult {
    const listen = fs.readFileSync(path.join(this.root, this.L.stateDir, "slots", color, "listen"), "utf8").trim();
    const target = listen.startsWith("unix:")
      ? ["--unix-socket", listen.slice(5), `http://slot${urlPath}`]
      : [`http://${listen}${urlPath}`];
    return run("curl", ["-fsS", "--max-time", "2", ...target]);
  }

  /** Runs an installed host tool with env values (as the command line would pass them) and optional stdin. */
  tool(name: string, vars: Record<string, string>, stdin?: string, args: string[] = []): ToolResult {
    return run(path.join(this.root, this.L.toolsDir, name), args, {
      env: { PATH: process.env.PATH, ...vars },
      input: stdin ?? "",
    });
  }

  /** Runs shell code with the host scripts' lib.sh sourced (for its functions). */
  lib(code: string): ToolResult {
    return run(
      "bash",
      ["--norc", "-c", `set -euo pipefail; . ${path.join(this.root, this.L.toolsDir, "lib.sh")}; ${code}`],
      { env: { PATH: process.env.PATH } },
    );
  }

  switchTo(color: Color, extra: Record<string, string> = {}): ToolResult {
    return this.tool("switch.sh", {
      TARGET: color,
      HEALTH_PATH: "/health/ready",
      CHECK_PORT: String(this.opts.checkPort),
      ...SWITCH_TEST_VALUES,
      ...extra,
    });
  }

  /** The colour the public listener serves now, from the app's response header. */
  servedColor(): string {
    return colorAt(this.opts.httpPort, this.opts.domains?.[0]);
  }

  /** The colour the preview listener (the idle slot) serves now. */
  previewColor(): string {
    return colorAt(this.opts.previewPort);
  }

  /** Where the live link points, without the sandbox root (e.g. /var/lib/bluegreen/colors/blue). */
  liveLink(): string {
    return fs.readlinkSync(path.join(this.root, this.L.stateDir, "live")).replace(this.root, "");
  }

  at(p: string): string {
    return path.join(this.root, p);
  }

  stop(): void {
    for (const child of this.slots.values()) child.kill("SIGKILL");
    // Another app's sandbox: the host's first app stops the router and removes the root.
    if (this.opts.host) return;
    // By the master's PID, not `nginx -s stop`: that parses the config first, and a test may
    // have left it unloadable (a missing include), which left nginx running on our ports.
    const pidFile = this.router === "nginx" ? "nginx.pid" : "haproxy.pid";
    const pid = Number(fs.readFileSync(path.join(this.root, pidFile), { encoding: "utf8", flag: "a+" }).trim());
    if (pid > 0) {
      try {
        process.kill(pid, "SIGTERM");
      } catch {
        /* already gone */
      }
    }
    fs.rmSync(this.root, { recursive: true, force: true });
    // Signals are asynchronous: wait until the router and slots have let go of their ports,
    // so that the next sandbox on the same ports does not find them taken.
    const mine = Object.values(this.portsByName());
    for (let waited = 0; mine.some((p) => listeningPorts().has(p)); waited += 50) {
      if (waited >= 10_000) throw new Error(`sandbox: ports ${mine.join(" ")} still in use 10 s after stop`);
      sleepMs(50);
    }
  }
}

export interface WrkResult {
  readonly requests: number;
  /** connect + read + write errors + timeouts, as wrk counts them. */
  readonly socketErrors: number;
  /** Of those, connections reset or refused (connect/read/write), not slow answers. */
  readonly resets: number;
  /** Answers slower than wrk's --timeout. */
  readonly timeouts: number;
  readonly non2xx: number;
  readonly rps: number;
  readonly p99ms: number;
  readonly raw: string;
}

export interface WrkOptions {
  readonly connections: number;
  readonly seconds: number;
  /** wrk's per-request timeout (default 2s); a slower answer counts as a timeout. */
  readonly timeout?: string;
  /** Request headers, e.g. "Host: example.com". */
  readonly headers?: readonly string[];
}

/**
 * Starts wrk (keep-alive connections) against a loopback URL. `done` resolves
 * with its parsed summary; `stop()` ends it early (on SIGINT wrk still prints it).
 */
export function startWrk(url: string, o: WrkOptions): { done: Promise<WrkResult>; stop(): Promise<WrkResult> } {
  requireTool("wrk");
  const timeout = o.timeout ? ["--timeout", o.timeout] : [];
  const headers = (o.headers ?? []).flatMap((h) => ["-H", h]);
  const child = spawn("wrk", [
    "-t2",
    `-c${o.connections}`,
    `-d${o.seconds}s`,
    ...timeout,
    ...headers,
    "--latency",
    url,
  ]);
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const done = new Promise<WrkResult>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", () => resolve(parseWrk(out)));
  });
  return { done, stop: () => (child.kill("SIGINT"), done) };
}

/** Runs wrk for `seconds` and returns its summary. */
export function wrk(url: string, seconds: number, connections: number): Promise<WrkResult> {
  return startWrk(url, { seconds, connections }).done;
}

export function parseWrk(out: string): WrkResult {
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const p99 = /\n\s+99%\s+([\d.]+)(us|ms|s)\b/.exec(out);
  const scale = { us: 0.001, ms: 1, s: 1000 } as const;
  return {
    requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN),
    socketErrors: sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
    resets: sock ? Number(sock[1]) + Number(sock[2]) + Number(sock[3]) : 0,
    timeouts: sock ? Number(sock[4]) : 0,
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
    p99ms: p99 ? Number(p99[1]) * scale[p99[2] as keyof typeof scale] : NaN,
    raw: out,
  };
}
