// The rows of `npm run bench -- --peers`: bluegreen itself and the usual ways
// of doing the same switch with nginx, HAProxy and Caddy from Debian. Each row
// has its own demo app pair and its own daemon in its own temp dir, on
// loopback ports picked free.
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { Color } from "../../../components/host/layout";
import { Sandbox } from "../../support/sandbox";
import {
  Daemon,
  DemoPair,
  freePorts,
  httpStatus,
  mustRun,
  onExit,
  pidFrom,
  Row,
  scratchDir,
  signalIf,
  spawnDaemon,
  startDemoPair,
  stopPid,
  Upstream,
  waitUntil,
  writeAtomic,
} from "./row";

/**
 * --baseline DIR: bluegreen's three rows again, with the host scripts and router config of the
 * checkout in DIR (another branch, say), so a change is measured against it in the same run.
 * DIR's test/support/sandbox.ts must take the `faults` option and have slotPids().
 */
export const baselineRows = (dir: string): (() => Row)[] => [
  () => bluegreen("nginx", "socket", dir),
  () => bluegreen("nginx", "tcp", dir),
  () => bluegreen("haproxy", "socket", dir),
];

/**
 * The rows, in the table's order. To add one, write a function returning a
 * Row (see ./row.ts: setup leaves blue live, switchTo runs that approach's
 * switch and resolves when its command returns) and put it in this list.
 */
export const ROWS: (() => Row)[] = [
  () => bluegreen("nginx", "socket"),
  () => bluegreen("nginx", "tcp"),
  () => bluegreen("haproxy", "socket"),
  () => nginxIncludeReload(),
  () => haproxyEditReload(),
  () => haproxySeamlessReload(),
  () => caddyAdminApi(),
];

const ROOT_USER = process.getuid?.() === 0;

/** How many lines of a daemon's log match, by pattern, as "N name" parts (only those seen). */
function countLines(file: string, patterns: Record<string, RegExp>): string {
  const lines = fs.existsSync(file) ? fs.readFileSync(file, "utf8").split("\n") : [];
  const parts = Object.entries(patterns)
    .map(([name, re]) => [name, lines.filter((l) => re.test(l)).length] as const)
    .filter(([, n]) => n > 0)
    .map(([name, n]) => `${n} ${name}`);
  return `${path.basename(file)}: ${parts.length ? parts.join(", ") : "nothing notable"}`;
}

// ---------------------------------------------------------------- bluegreen

/**
 * The product: the real host scripts and router config in a Sandbox, as
 * switch-bench.ts runs them; a switch is switch.sh (no watch).
 */
function bluegreen(router: "nginx" | "haproxy", mode: "socket" | "tcp", baseline?: string): Row {
  // --baseline DIR: the same row with another checkout's Sandbox, which brings that checkout's
  // host scripts and router config (its test/support/sandbox.ts finds them from its own path).
  const SandboxOf: typeof Sandbox = baseline
    ? // eslint-disable-next-line @typescript-eslint/no-require-imports
      (require(path.resolve(baseline, "test", "support", "sandbox")) as { Sandbox: typeof Sandbox }).Sandbox
    : Sandbox;
  const tag = baseline ? ` [baseline ${baseline}]` : "";
  let host: Sandbox | undefined;
  let off: () => void = () => undefined;
  let checkPort = 0;
  const run = (color: Color) => {
    const r = host!.switchTo(color, { WATCH_SECONDS: "0" });
    if (r.status !== 0) throw new Error(`switch.sh to ${color}: ${r.stderr}${r.stdout}`);
  };
  return {
    id: (baseline ? "baseline-" : "") + (router === "nginx" ? `bluegreen-${mode}` : `bluegreen-haproxy-${mode}`),
    name: (router === "nginx" ? `bluegreen nginx ${mode}` : "bluegreen haproxy runtime API") + tag,
    upstream:
      mode === "socket" ? "unix sockets (linkMode socket)" : "loopback tcp (linkMode tcp: for apps that take a port)",
    switchCommand:
      "`env TARGET=<colour> HEALTH_PATH=/health/ready CHECK_PORT=<check> WATCH_SECONDS=0 switch.sh` " +
      (router === "nginx"
        ? "(the installed host script: readiness gate, lock, intent, one rename(2), verify through nginx's check listener, record; no reload)"
        : "(the same script: readiness gate, lock, intent, the map file renamed and `set map` on the root-only admin socket, verify through HAProxy's check listener, record; no reload)"),
    notes:
      router === "nginx"
        ? "the Sandbox of test/support/sandbox.ts: the site router-config.sh writes, nginx 2 workers; " +
          "slots are the demo app as child processes, started as the other rows start it (no --fault-dir)"
        : "the Sandbox of test/support/sandbox.ts with router haproxy: the config router-config.sh writes (HAProxy 2.6, master-worker, " +
          "default threads), live/idle as a map read per request; slots are the demo app as child processes, " +
          "started as the other rows start it (no --fault-dir)",
    async setup() {
      const [httpPort, previewPort, check, blue, green] = await freePorts(5);
      checkPort = check;
      // The demo app as every other row runs it (no --fault-dir, which stats a file per request).
      host = new SandboxOf({ router, mode, httpPort, previewPort, checkPort, ports: { blue, green }, faults: false });
      const h = host;
      if (typeof h.slotPids !== "function")
        throw new Error(`${baseline}: its Sandbox has no slotPids() (nor, likely, the faults option) for the bench`);
      off = onExit(() => h.stop());
      const cfg = host.configureAndStart();
      if (cfg.status !== 0) throw new Error(`router-config.sh: ${cfg.stderr}`);
      await host.startSlot("blue", "v1");
      await host.startSlot("green", "v2");
      run("blue");
      return { url: `http://127.0.0.1:${httpPort}/` };
    },
    switchTo(color) {
      run(color);
      return Promise.resolve();
    },
    routerPids: () => pidFrom(host!.at(router === "nginx" ? "nginx.pid" : "haproxy.pid")),
    appPids: () => host!.slotPids(),
    diagnose: () =>
      router === "nginx"
        ? countLines(host!.at("log/error.log"), NGINX_LOG)
        : "haproxy runs as a daemon here, its log unread",
    teardown() {
      host?.stop();
      off();
      return Promise.resolve();
    },
  };
}

// ---------------------------------------------------------------- nginx include + reload

const NGINX_LOG = { "[error]": /\[error\]/, "[crit]/[alert]": /\[(crit|alert|emerg)\]/ };

const nginxServer = (u: Upstream) => (u.kind === "unix" ? `unix:${u.path}` : `127.0.0.1:${u.port}`);

/**
 * The seed's way: the upstream lives in an included file; a switch rewrites
 * it (one rename), checks the config and reloads nginx.
 */
function nginxIncludeReload(): Row {
  let scratch: ReturnType<typeof scratchDir> | undefined;
  let apps: DemoPair | undefined;
  let nginx: Daemon | undefined;
  let conf = "";
  let prefix = "";
  const upstreamFile = () => path.join(prefix, "upstream.conf");
  const writeUpstream = (color: Color) =>
    writeAtomic(
      upstreamFile(),
      ["upstream app {", `    server ${nginxServer(apps![color])};`, "    keepalive 32;", "}", ""].join("\n"),
    );
  return {
    id: "nginx-reload",
    name: "nginx include + `nginx -s reload` (the seed's way)",
    upstream: "unix sockets",
    switchCommand:
      "rewrite `$DIR/upstream.conf` (`upstream app { server unix:$DIR/<colour>.sock; keepalive 32; }`, one rename), " +
      "`nginx -t -q -p $DIR/ -c $DIR/nginx.conf && nginx -p $DIR/ -c $DIR/nginx.conf -s reload`",
    notes:
      'same nginx binary, its own prefix and conf: 2 workers, `proxy_http_version 1.1`, `Connection ""`, ' +
      "access log on (as bluegreen's site). `-s reload` only signals the master: new workers start, old ones finish " +
      "their in-flight requests and close their keep-alive connections",
    async setup() {
      scratch = scratchDir("nginx");
      prefix = scratch.dir;
      apps = await startDemoPair(prefix, "unix");
      const [port] = await freePorts(1);
      writeUpstream("blue");
      conf = path.join(prefix, "nginx.conf");
      fs.mkdirSync(path.join(prefix, "temp"));
      const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map(
        (t) => `    ${t}_temp_path ${prefix}/temp/${t};`,
      );
      fs.writeFileSync(
        conf,
        [
          // The demo app's socket is 0660 root: workers run as root here, as in the Sandbox.
          ...(ROOT_USER ? ["user root;"] : []),
          "worker_processes 2;",
          `pid ${prefix}/nginx.pid;`,
          `error_log ${prefix}/error.log;`,
          "events { worker_connections 4096; }",
          "http {",
          ...temp,
          `    access_log ${prefix}/access.log;`,
          `    include ${upstreamFile()};`,
          "    server {",
          `        listen 127.0.0.1:${port};`,
          "        location / {",
          "            proxy_pass http://app;",
          "            proxy_http_version 1.1;",
          '            proxy_set_header Connection "";',
          "            proxy_set_header Host $host;",
          "        }",
          "    }",
          "}",
          "",
        ].join("\n"),
      );
      nginx = spawnDaemon("nginx", ["-p", `${prefix}/`, "-c", conf, "-g", "daemon off;"], `${prefix}/stderr.log`, {
        ownSession: true,
      });
      await waitUntil(async () => (await httpStatus({ port })) === 200, "nginx");
      return { url: `http://127.0.0.1:${port}/` };
    },
    async switchTo(color) {
      writeUpstream(color);
      await mustRun("nginx", ["-t", "-q", "-p", `${prefix}/`, "-c", conf]);
      await mustRun("nginx", ["-p", `${prefix}/`, "-c", conf, "-s", "reload"]);
    },
    routerPids: () => (nginx ? [nginx.pid] : []),
    appPids: () => apps?.pids() ?? [],
    diagnose: () => countLines(path.join(prefix, "error.log"), NGINX_LOG),
    async teardown() {
      await nginx?.stop("SIGQUIT");
      apps?.stop();
      scratch?.remove();
    },
  };
}

// ---------------------------------------------------------------- HAProxy

const HAPROXY_LOG = { "[ALERT]": /\[ALERT\]/, "abnormal worker exits": /exited with code [1-9]|exited on signal/ };

const haproxyServer = (u: Upstream) => (u.kind === "unix" ? u.path : `127.0.0.1:${u.port}`);

/** Debian's defaults section (timeouts, http mode), a frontend, and one backend per colour. */
function haproxyConfig(global: string[], port: number, apps: DemoPair, live: Color): string {
  return [
    "global",
    ...global.map((l) => `    ${l}`),
    "",
    "defaults",
    "    mode http",
    "    timeout connect 5s",
    "    timeout client 50s",
    "    timeout server 50s",
    "",
    "frontend public",
    `    bind 127.0.0.1:${port}`,
    `    default_backend ${live}`,
    "",
    ...(["blue", "green"] as const).flatMap((c) => [`backend ${c}`, `    server ${c} ${haproxyServer(apps[c])}`, ""]),
  ].join("\n");
}

/** The switch's edit: the default_backend line now names `color`. */
function editDefaultBackend(cfg: string, color: Color) {
  const text = fs.readFileSync(cfg, "utf8");
  writeAtomic(cfg, text.replace(/^(\s*default_backend )\w+$/m, `$1${color}`));
}

/**
 * The classic way (Debian's init script): edit default_backend, check, then
 * start a new daemon that tells the old one to finish (-sf); no master, no fd
 * transfer, so the new process binds its own listener.
 */
function haproxyEditReload(): Row {
  let scratch: ReturnType<typeof scratchDir> | undefined;
  let apps: DemoPair | undefined;
  let dir = "";
  const pids = new Set<number>();
  let off: () => void = () => undefined;
  const cfg = () => path.join(dir, "haproxy.cfg");
  const pidFile = () => path.join(dir, "haproxy.pid");
  const log = () => path.join(dir, "haproxy.log");
  const readPids = () => {
    for (const p of fs.readFileSync(pidFile(), "utf8").split(/\s+/).filter(Boolean)) pids.add(Number(p));
  };
  return {
    id: "haproxy-reload",
    name: "HAProxy `default_backend` edit + reload (the seed's way)",
    upstream: "unix sockets",
    switchCommand:
      "edit `default_backend <colour>` in `$DIR/haproxy.cfg` (one rename), `haproxy -c -q -f $DIR/haproxy.cfg`, " +
      "`sh -c 'haproxy -f $DIR/haproxy.cfg -p $DIR/haproxy.pid -D -sf $(cat $DIR/haproxy.pid)'`",
    notes:
      "not master-worker, no stats socket: each reload is a new daemon that binds the port itself (SO_REUSEPORT) " +
      "and then sends SIGUSR1 to the old one, which unbinds, closes its idle connections and ends the busy ones " +
      "after their current response",
    async setup() {
      scratch = scratchDir("haproxy-reload");
      dir = scratch.dir;
      apps = await startDemoPair(dir, "unix");
      const [port] = await freePorts(1);
      fs.writeFileSync(cfg(), haproxyConfig([], port, apps, "blue"));
      off = onExit(() => {
        for (const p of pids) signalIf(p, "haproxy", "SIGTERM");
      });
      await mustRun("haproxy", ["-f", cfg(), "-p", pidFile(), "-D"], { daemonizes: { log: log() } });
      readPids();
      await waitUntil(async () => (await httpStatus({ port })) === 200, "haproxy");
      return { url: `http://127.0.0.1:${port}/` };
    },
    async switchTo(color) {
      editDefaultBackend(cfg(), color);
      await mustRun("haproxy", ["-c", "-q", "-f", cfg()]);
      await mustRun("sh", ["-c", 'haproxy -f "$1" -p "$2" -D -sf $(cat "$2")', "sh", cfg(), pidFile()], {
        daemonizes: { log: log() },
      });
      readPids();
    },
    // The one serving now; those before it are finishing their last connections, if any.
    routerPids: () => pidFrom(pidFile()),
    appPids: () => apps?.pids() ?? [],
    diagnose: () => `${countLines(log(), HAPROXY_LOG)}; ${pids.size} haproxy processes started`,
    async teardown() {
      // Old processes still finishing connections are in the set too.
      await Promise.all([...pids].map((p) => stopPid(p, "haproxy")));
      off();
      apps?.stop();
      scratch?.remove();
    },
  };
}

/** Sends one command to a HAProxy CLI socket and returns what it answers until it closes the connection. */
function haproxyCli(socket: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = "";
    const c = net.connect(socket, () => c.end(`${command}\n`));
    c.on("data", (d: Buffer) => (out += d.toString()));
    c.on("error", reject);
    c.on("close", () => resolve(out));
  });
}

/**
 * HAProxy 2.6's seamless reload, as its management guide describes it:
 * master-worker mode with a master CLI; `reload` on that CLI (the same as
 * SIGUSR2 to the master, which Debian's unit sends) re-executes the master,
 * which passes the listening sockets to the new worker over its socketpair
 * (`-x sockpair@`), so the port is never unbound.
 */
function haproxySeamlessReload(): Row {
  let scratch: ReturnType<typeof scratchDir> | undefined;
  let apps: DemoPair | undefined;
  let master: Daemon | undefined;
  let dir = "";
  const cfg = () => path.join(dir, "haproxy.cfg");
  const masterSock = () => path.join(dir, "master.sock");
  return {
    id: "haproxy-seamless",
    name: "HAProxy seamless reload",
    upstream: "unix sockets",
    switchCommand:
      "edit `default_backend <colour>` in `$DIR/haproxy.cfg` (one rename), `haproxy -c -q -f $DIR/haproxy.cfg`, " +
      "`reload` on the master CLI (`echo reload | socat $DIR/master.sock -`); the command returns when the master " +
      "closes the CLI connection",
    notes:
      "`haproxy -W -f $DIR/haproxy.cfg -p $DIR/haproxy.pid -S $DIR/master.sock` in the foreground (as Debian's unit, " +
      "`-Ws`, without systemd); `stats socket $DIR/admin.sock level admin expose-fd listeners` is configured too " +
      "(needed for `-x` outside master-worker mode; in it the master uses its socketpair). The old worker soft-stops " +
      "as in the classic reload",
    async setup() {
      scratch = scratchDir("haproxy-seamless");
      dir = scratch.dir;
      apps = await startDemoPair(dir, "unix");
      const [port] = await freePorts(1);
      const global = [`stats socket ${dir}/admin.sock mode 600 level admin expose-fd listeners`];
      fs.writeFileSync(cfg(), haproxyConfig(global, port, apps, "blue"));
      master = spawnDaemon(
        "haproxy",
        ["-W", "-f", cfg(), "-p", path.join(dir, "haproxy.pid"), "-S", masterSock()],
        path.join(dir, "haproxy.log"),
        { ownSession: true },
      );
      await waitUntil(async () => (await httpStatus({ port })) === 200, "haproxy");
      return { url: `http://127.0.0.1:${port}/` };
    },
    async switchTo(color) {
      editDefaultBackend(cfg(), color);
      await mustRun("haproxy", ["-c", "-q", "-f", cfg()]);
      await haproxyCli(masterSock(), "reload");
    },
    routerPids: () => (master ? [master.pid] : []),
    appPids: () => apps?.pids() ?? [],
    diagnose: () => countLines(path.join(dir, "haproxy.log"), HAPROXY_LOG),
    async teardown() {
      // The master stops its workers, old ones included.
      await master?.stop();
      apps?.stop();
      scratch?.remove();
    },
  };
}

// ---------------------------------------------------------------- Caddy

const caddyDial = (u: Upstream) => (u.kind === "unix" ? `unix/${u.path}` : `127.0.0.1:${u.port}`);

/**
 * Caddy 2 run from a JSON config; the switch PATCHes the upstream's dial
 * address through the admin API, by the @id the config gives the upstream.
 */
function caddyAdminApi(): Row {
  let scratch: ReturnType<typeof scratchDir> | undefined;
  let apps: DemoPair | undefined;
  let caddy: Daemon | undefined;
  let admin = 0;
  return {
    id: "caddy",
    name: "Caddy 2, config changed through the admin API",
    upstream: "unix sockets",
    switchCommand:
      "`curl -fsS -X PATCH -H 'Content-Type: application/json' -d '\"unix/$DIR/<colour>.sock\"' " +
      "http://127.0.0.1:<admin>/id/live_upstream/dial`",
    notes:
      "`caddy run --config $DIR/caddy.json`: one server on 127.0.0.1, `reverse_proxy` with one upstream " +
      '(`"@id": "live_upstream"`), automatic HTTPS off, config persistence off. Caddy 2.6 applies any change to ' +
      "the config, however small, by provisioning and starting the whole new config and then stopping the old " +
      "one: listeners are shared across the swap, the old server is shut down gracefully (Go's " +
      "`http.Server.Shutdown`: idle keep-alive connections closed at once, busy ones after their response), and the " +
      "new reverse proxy starts with an empty upstream connection pool. The PATCH returns once the old server's " +
      "shutdown has begun",
    async setup() {
      scratch = scratchDir("caddy");
      const dir = scratch.dir;
      apps = await startDemoPair(dir, "unix");
      const [port, adminPort] = await freePorts(2);
      admin = adminPort;
      const config = {
        admin: { listen: `127.0.0.1:${admin}`, config: { persist: false } },
        apps: {
          http: {
            servers: {
              public: {
                listen: [`127.0.0.1:${port}`],
                automatic_https: { disable: true },
                routes: [
                  {
                    handle: [
                      { handler: "reverse_proxy", upstreams: [{ "@id": "live_upstream", dial: caddyDial(apps.blue) }] },
                    ],
                  },
                ],
              },
            },
          },
        },
      };
      fs.writeFileSync(path.join(dir, "caddy.json"), JSON.stringify(config, null, 2));
      // Caddy keeps its data (and would autosave) under HOME / XDG dirs: keep them in the row's dir.
      const env = { ...process.env, HOME: dir, XDG_DATA_HOME: `${dir}/data`, XDG_CONFIG_HOME: `${dir}/config` };
      caddy = spawnDaemon("caddy", ["run", "--config", path.join(dir, "caddy.json")], path.join(dir, "caddy.log"), {
        env,
        ownSession: true,
      });
      await waitUntil(async () => (await httpStatus({ port })) === 200, "caddy");
      return { url: `http://127.0.0.1:${port}/` };
    },
    async switchTo(color) {
      await mustRun("curl", [
        ...["-fsS", "-X", "PATCH", "-H", "Content-Type: application/json"],
        ...["-d", JSON.stringify(caddyDial(apps![color])), `http://127.0.0.1:${admin}/id/live_upstream/dial`],
      ]);
    },
    routerPids: () => (caddy ? [caddy.pid] : []),
    appPids: () => apps?.pids() ?? [],
    diagnose: () =>
      countLines(path.join(scratch!.dir, "caddy.log"), {
        '"http: Accept error"': /Accept error/,
        '"error" level lines': /"level":"error"/,
      }),
    async teardown() {
      await caddy?.stop();
      apps?.stop();
      scratch?.remove();
    },
  };
}
