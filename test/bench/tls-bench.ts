// ts-node test/bench/tls-bench.ts [--renewals N] [--rounds R] [--round-seconds S] [--show-config]
// HTTPS on this machine's nginx: how a renewed certificate takes effect (reload
// vs a variable certificate path behind an atomically renamed symlink), what a
// handshake costs with the variable path, and whether sessions, no-SNI clients
// and file permissions still work with it. Prints tables; asserts nothing.
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { performance } from "perf_hooks";
import * as tls from "tls";
import { parseWrk, WrkResult } from "../support/sandbox";
import { requireTool, run } from "../support/tools";

const args = process.argv.slice(2);
const flag = (name: string, dflt: number) =>
  args.includes(name) ? Number(args[args.indexOf(name) + 1]) || dflt : dflt;
const RENEWALS = flag("--renewals", 20);
const ROUNDS = flag("--rounds", 3);
const ROUND_SECONDS = flag("--round-seconds", 6);
const CONNECTIONS = 64;
const SNI = "bluegreen.test";
const BASE_PORT = 18600;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => quantile(xs, 0.5);
function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] : NaN;
}

const children = new Set<ChildProcess>();
const nginxes: Nginx[] = [];
let root = "";

// Workers run as the distribution's nginx user when we are root, as on the VPS:
// with a variable path the worker, not the root master, opens the pem file.
const asRoot = process.getuid?.() === 0;
const workerUser = asRoot ? (run("id", ["-u", "www-data"]).status === 0 ? "www-data" : "nobody") : undefined;
const workerGid = workerUser ? Number(run("id", ["-g", workerUser]).stdout.trim()) : undefined;

/** A throwaway CA; each issue() is a fresh key and a leaf with a known serial. */
class Pki {
  private serial = 0x5eed0000;
  readonly caPem: string;
  constructor(readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true });
    const r = run("openssl", [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "7"],
      ...["-subj", "/CN=bluegreen bench CA", "-keyout", `${dir}/ca.key`, "-out", `${dir}/ca.pem`],
    ]);
    if (r.status !== 0) throw new Error(`CA: ${r.stderr}`);
    fs.writeFileSync(`${dir}/ext.cnf`, `subjectAltName=DNS:${SNI},IP:127.0.0.1\n`);
    this.caPem = fs.readFileSync(`${dir}/ca.pem`, "utf8");
  }

  /**
   * Writes fullchain.pem + key.pem (the reload layout) and cert.pem, the chain
   * followed by the key (the no-reload layout), into `out`. Returns the serial as openssl prints it.
   */
  issue(out: string, key: "ec" | "rsa" = "ec"): string {
    fs.mkdirSync(out, { recursive: true });
    const serial = (++this.serial).toString(16).toUpperCase();
    const newkey = key === "ec" ? ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] : ["-newkey", "rsa:2048"];
    const req = run("openssl", [
      ...["req", "-new", ...newkey, "-nodes", "-subj", `/CN=${SNI}`],
      ...["-keyout", `${out}/key.pem`, "-out", `${out}/csr.pem`],
    ]);
    const sign = run("openssl", [
      ...["x509", "-req", "-in", `${out}/csr.pem`, "-CA", `${this.dir}/ca.pem`, "-CAkey", `${this.dir}/ca.key`],
      ...["-set_serial", `0x${serial}`, "-days", "7", "-extfile", `${this.dir}/ext.cnf`, "-out", `${out}/leaf.pem`],
    ]);
    if (req.status !== 0 || sign.status !== 0) throw new Error(`issue: ${req.stderr}${sign.stderr}`);
    const chain = fs.readFileSync(`${out}/leaf.pem`, "utf8") + this.caPem;
    fs.writeFileSync(`${out}/fullchain.pem`, chain, { mode: 0o644 });
    fs.writeFileSync(`${out}/cert.pem`, chain + fs.readFileSync(`${out}/key.pem`, "utf8"), { mode: 0o640 });
    // The split key is read by the root master only; the combined file by the workers.
    fs.chmodSync(`${out}/key.pem`, 0o600);
    if (workerGid !== undefined) fs.chownSync(`${out}/cert.pem`, 0, workerGid);
    fs.rmSync(`${out}/csr.pem`);
    fs.rmSync(`${out}/leaf.pem`);
    return serial;
  }
}

/** Points `link` at `target` the way a renewal would: ln -sfn target tmp && mv -Tf tmp link (one rename(2)). */
function swapLink(link: string, target: string) {
  const tmp = `${link}.tmp`;
  fs.rmSync(tmp, { force: true });
  fs.symlinkSync(target, tmp);
  fs.renameSync(tmp, link);
}

/** One nginx master with its own prefix, config, logs and pid under `dir`. */
class Nginx {
  readonly conf: string;
  constructor(
    readonly dir: string,
    servers: string,
    httpExtra = "",
  ) {
    fs.mkdirSync(`${dir}/logs`, { recursive: true });
    fs.mkdirSync(`${dir}/temp`, { recursive: true });
    this.conf = `${dir}/nginx.conf`;
    const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `${t}_temp_path ${dir}/temp/${t};`);
    fs.writeFileSync(
      this.conf,
      [
        ...(workerUser ? [`user ${workerUser};`] : []),
        "worker_processes 2;",
        `pid ${dir}/nginx.pid;`,
        `error_log ${dir}/logs/error.log warn;`,
        "events { worker_connections 4096; }",
        "http {",
        `  ${temp.join(" ")}`,
        "  access_log off;",
        "  # nginx 1.22 leaves TLSv1.3 out of the default ssl_protocols (added in 1.23.4).",
        "  ssl_protocols TLSv1.2 TLSv1.3;",
        "  keepalive_timeout 300s;",
        "  keepalive_requests 1000000;",
        httpExtra,
        servers,
        "}",
        "",
      ].join("\n"),
    );
  }

  private nginx(...extra: string[]) {
    return run("nginx", ["-q", "-p", `${this.dir}/`, "-c", this.conf, ...extra]);
  }

  start() {
    const r = this.nginx();
    if (r.status !== 0) throw new Error(`nginx did not start: ${r.stderr}`);
    nginxes.push(this);
  }

  reload() {
    const r = this.nginx("-s", "reload");
    if (r.status !== 0) throw new Error(`nginx -s reload: ${r.stderr}`);
  }

  async stop() {
    const pid = Number(fs.readFileSync(`${this.dir}/nginx.pid`, "utf8").trim());
    this.nginx("-s", "stop");
    for (let i = 0; i < 50 && alive(pid); i++) await sleep(100);
    if (alive(pid)) {
      for (const w of run("pgrep", ["-P", String(pid)])
        .stdout.split(/\s+/)
        .filter(Boolean)) {
        process.kill(Number(w), "SIGKILL");
      }
      process.kill(pid, "SIGKILL");
    }
  }

  logLines(name: string): string[] {
    const f = `${this.dir}/logs/${name}`;
    return fs.existsSync(f) ? fs.readFileSync(f, "utf8").split("\n").filter(Boolean) : [];
  }

  /** [error] and worse lines of the error log from line `from` on, with timestamps and pids cut off. */
  errors(from = 0): string[] {
    return this.logLines("error.log")
      .slice(from)
      .filter((l) => /\[(error|crit|alert|emerg)\]/.test(l))
      .map((l) =>
        l
          .replace(/^[\d/: ]+\[(\w+)\] [\d#]+: (\*\d+ )?/, "[$1] ")
          .replace(/"[^"]*"/g, '"…"')
          .replace(/error:[0-9A-F]{8}:|\(SSL: |\) while SSL handshaking.*|, client:.*/g, ""),
      );
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function startWrk(url: string, opts: string[]): { done: Promise<WrkResult>; stop(): Promise<WrkResult> } {
  const child = spawn("wrk", [...opts, "--timeout", "10s", "--latency", url]);
  children.add(child);
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const done = new Promise<WrkResult>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", () => {
      children.delete(child);
      resolve(parseWrk(out));
    });
  });
  return { done, stop: () => (child.kill("SIGINT"), done) };
}

interface Tally {
  requests: number;
  connect: number;
  read: number;
  write: number;
  timeout: number;
  non2xx: number;
}
const zero = (): Tally => ({ requests: 0, connect: 0, read: 0, write: 0, timeout: 0, non2xx: 0 });
function tally(t: Tally, w: WrkResult): Tally {
  const s = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(w.raw)?.slice(1).map(Number);
  return {
    requests: t.requests + w.requests,
    connect: t.connect + (s?.[0] ?? 0),
    read: t.read + (s?.[1] ?? 0),
    write: t.write + (s?.[2] ?? 0),
    timeout: t.timeout + (s?.[3] ?? 0),
    non2xx: t.non2xx + w.non2xx,
  };
}
const failedOf = (t: Tally) => t.connect + t.read + t.write + t.timeout + t.non2xx;
const failedText = (t: Tally) =>
  `${failedOf(t)} (connect ${t.connect}, read ${t.read}, write ${t.write}, timeout ${t.timeout}, non-2xx ${t.non2xx})`;

/** The serial a fresh TLS connection is served, via node's TLS client (cheap enough to poll under load). */
function servedSerial(ca: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: "127.0.0.1", port, servername: SNI, ca }, () => {
      const serial = s.getPeerCertificate().serialNumber.toUpperCase();
      s.destroy();
      resolve(serial);
    });
    s.setTimeout(3000, () => s.destroy(new Error("handshake timeout")));
    s.on("error", reject);
  });
}

/** The serial openssl s_client is served (no SNI when `sni` is null), or "handshake failed: ...". */
function sClientSerial(port: number, sni: string | null = SNI): string {
  const name = sni === null ? "-noservername" : `-servername ${sni}`;
  const r = run("bash", [
    "-c",
    `openssl s_client -connect 127.0.0.1:${port} ${name} </dev/null 2>${root}/sclient.err | openssl x509 -noout -serial 2>/dev/null; grep -o 'alert [a-z ]*' ${root}/sclient.err | head -1`,
  ]);
  const serial = /serial=(\w+)/.exec(r.stdout)?.[1];
  return serial ?? `handshake failed (${r.stdout.trim() || "no certificate"})`;
}

/** Resumption as openssl s_client sees it: a first connection saves the session, a second offers it. */
function sessionFile(port: number, file: string, proto: "-tls1_2" | "-tls1_3") {
  // The GET makes s_client wait for the answer, by which time a TLS 1.3 ticket has arrived.
  run("bash", [
    "-c",
    `printf 'GET / HTTP/1.1\\r\\nHost: ${SNI}\\r\\nConnection: close\\r\\n\\r\\n' | openssl s_client -quiet ${proto} -connect 127.0.0.1:${port} -servername ${SNI} -sess_out ${file} >/dev/null 2>&1`,
  ]);
}
function resumeWith(port: number, file: string, proto: "-tls1_2" | "-tls1_3"): string {
  const r = run("bash", [
    "-c",
    `printf 'GET / HTTP/1.1\\r\\nHost: ${SNI}\\r\\nConnection: close\\r\\n\\r\\n' | openssl s_client ${proto} -connect 127.0.0.1:${port} -servername ${SNI} -sess_in ${file} 2>&1`,
  ]);
  return /^Reused, (\S+)/m.test(r.stdout)
    ? `resumed (${/^Reused, (\S+?),/m.exec(r.stdout)?.[1]})`
    : /^New, (\S+?),/m.test(r.stdout)
      ? `full handshake (${/^New, (\S+?),/m.exec(r.stdout)?.[1]})`
      : `failed: ${r.stdout.split("\n").slice(-3).join(" ").trim()}`;
}

/** A keep-alive HTTPS connection opened before the renewals, asked again after them. */
class KeepAliveProbe {
  private buf = "";
  private closed = false;
  private constructor(
    private readonly sock: tls.TLSSocket,
    readonly serial: string,
  ) {
    sock.on("data", (d: Buffer) => (this.buf += d.toString()));
    sock.on("close", () => (this.closed = true));
    sock.on("error", () => (this.closed = true));
  }

  static open(ca: string, port: number): Promise<KeepAliveProbe> {
    return new Promise((resolve, reject) => {
      const s = tls.connect({ host: "127.0.0.1", port, servername: SNI, ca }, () =>
        resolve(new KeepAliveProbe(s, s.getPeerCertificate().serialNumber.toUpperCase())),
      );
      s.on("error", reject);
    });
  }

  async request(): Promise<"200" | "closed" | "no answer"> {
    if (this.closed) return "closed";
    this.buf = "";
    this.sock.write(`GET / HTTP/1.1\r\nHost: ${SNI}\r\n\r\n`);
    for (let i = 0; i < 100; i++) {
      if (/^HTTP\/1\.1 200[^]*\r\n\r\nok\n/.test(this.buf)) return "200";
      if (this.closed) return "closed";
      await sleep(20);
    }
    return "no answer";
  }

  close() {
    this.sock.destroy();
  }
}

// ---------------------------------------------------------------- A: renewal under keep-alive load

interface RenewalHost {
  readonly name: string;
  readonly port: number;
  readonly nginx: Nginx;
  /** Installs the next pre-issued certificate; returns its serial. */
  renew(): string;
  current: string;
}

function renewalHosts(pki: Pki) {
  const firstRequest = [
    "  map $connection_requests $bg_first_request { 1 1; default 0; }",
    "  log_format bg_conn '$connection';",
  ].join("\n");
  const site = (port: number, dir: string, certLines: string) =>
    [
      "  server {",
      `    listen 127.0.0.1:${port} ssl;`,
      `    server_name ${SNI};`,
      certLines,
      "    ssl_session_cache shared:bg_tls:10m;",
      "    # one line per connection that served a request: how many connections wrk had to (re)open",
      `    access_log ${dir}/logs/new-connections.log bg_conn if=$bg_first_request;`,
      '    location / { return 200 "ok\\n"; }',
      "  }",
    ].join("\n");

  // Approach 1: static paths, renewal = replace both files, then nginx -s reload.
  const rDir = `${root}/reload`;
  const rTls = `${rDir}/tls`;
  const staged: string[] = [];
  // + 2: the session checks renew once more per TLS version.
  for (let i = 0; i <= RENEWALS + 2; i++) staged.push(`${rDir}/staged/${i}`);
  const rSerials = staged.map((d) => pki.issue(d));
  fs.mkdirSync(rTls, { recursive: true });
  const install = (i: number) => {
    for (const f of ["fullchain.pem", "key.pem"]) {
      fs.copyFileSync(`${staged[i]}/${f}`, `${rTls}/${f}.tmp`);
      fs.renameSync(`${rTls}/${f}.tmp`, `${rTls}/${f}`);
    }
  };
  install(0);
  const reloadNginx = new Nginx(
    rDir,
    site(
      BASE_PORT + 1,
      rDir,
      [`    ssl_certificate ${rTls}/fullchain.pem;`, `    ssl_certificate_key ${rTls}/key.pem;`].join("\n"),
    ),
    firstRequest,
  );
  let rNext = 1;
  const reload: RenewalHost = {
    name: "TLS renewal: reload",
    port: BASE_PORT + 1,
    nginx: reloadNginx,
    current: rSerials[0],
    renew() {
      const i = rNext++;
      install(i);
      reloadNginx.reload();
      return (this.current = rSerials[i]);
    },
  };

  // Approach 2: one pem (chain + key) behind tls/current, a symlink renamed per renewal; no reload.
  const vDir = `${root}/no-reload`;
  const vTls = `${vDir}/tls`;
  const vSerials: string[] = [];
  for (let i = 0; i <= RENEWALS + 2; i++) vSerials.push(pki.issue(`${vTls}/${i}`));
  swapLink(`${vTls}/current`, "0");
  const varNginx = new Nginx(
    vDir,
    site(BASE_PORT + 2, vDir, ["    ssl_certificate $bg_cert;", "    ssl_certificate_key $bg_cert;"].join("\n")),
    [firstRequest, `  map $ssl_server_name $bg_cert { default ${vTls}/current/cert.pem; }`].join("\n"),
  );
  let vNext = 1;
  const noReload: RenewalHost = {
    name: "TLS renewal: no-reload (variable path)",
    port: BASE_PORT + 2,
    nginx: varNginx,
    current: vSerials[0],
    renew() {
      const i = vNext++;
      swapLink(`${vTls}/current`, String(i));
      return (this.current = vSerials[i]);
    },
  };
  return [reload, noReload];
}

interface RenewalResult {
  renewals: number;
  tally: Tally;
  reopened: number;
  visibleMs: number[];
  probes: string[];
  errors: string[];
}

/** `count` renewals under wrk keep-alive load, each followed by polling until a new connection sees it. */
async function renewalRun(h: RenewalHost, count: number, ca: string, acc: RenewalResult) {
  const errStart = h.nginx.logLines("error.log").length;
  const connStart = h.nginx.logLines("new-connections.log").length;
  const probe = await KeepAliveProbe.open(ca, h.port);
  const first = await probe.request();
  const load = startWrk(`https://127.0.0.1:${h.port}/`, ["-t4", `-c${CONNECTIONS}`, "-d600s"]);
  await sleep(1000);
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const serial = h.renew();
    let seen = "";
    while (performance.now() - t0 < 5000) {
      seen = await servedSerial(ca, h.port).catch(() => "");
      if (seen === serial) break;
      await sleep(10);
    }
    acc.visibleMs.push(seen === serial ? performance.now() - t0 : Infinity);
    await sleep(600);
  }
  await sleep(500);
  const w = await load.stop();
  const after = await probe.request();
  probe.close();
  acc.renewals += count;
  acc.tally = tally(acc.tally, w);
  // Lines beyond wrk's own connections and the probe's.
  acc.reopened += h.nginx.logLines("new-connections.log").length - connStart - CONNECTIONS - 1;
  acc.probes.push(
    first !== "200"
      ? `probe failed before renewals (${first})`
      : after === "200"
        ? `still open after ${count} renewals, old cert ${probe.serial}`
        : `${after} (was on ${probe.serial})`,
  );
  acc.errors.push(...h.nginx.errors(errStart));
}

// ---------------------------------------------------------------- B: handshake cost

interface HsVariant {
  name: string;
  port: number;
  log: string;
  resumed: boolean;
  rps: number[];
  hsMs: number[];
  tally: Tally;
  resumedShare: string;
}

/** Sequential handshakes from node while wrk runs: connect + TLS handshake time as a client waits for it. */
async function sampleHandshakes(ca: string, v: HsVariant, untilMs: number) {
  let session: Buffer | undefined;
  while (performance.now() < untilMs) {
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      const s = tls.connect({ host: "127.0.0.1", port: v.port, servername: SNI, ca, session }, () => {
        v.hsMs.push(performance.now() - t0);
        if (!v.resumed) return (s.destroy(), resolve());
        // A TLS 1.3 ticket arrives after the handshake; keep it for the next connection.
        const t = setTimeout(() => (s.destroy(), resolve()), 50);
        s.once("session", (b: Buffer) => ((session = b), clearTimeout(t), s.destroy(), resolve()));
      });
      s.setTimeout(5000, () => (s.destroy(), resolve()));
      s.on("error", () => resolve());
    });
  }
}

function handshakeHost(pki: Pki) {
  const dir = `${root}/handshake`;
  const ec = pki.issue(`${dir}/ec/1`, "ec");
  pki.issue(`${dir}/ec/2`, "ec"); // the second key, for the rename storm
  pki.issue(`${dir}/rsa/1`, "rsa");
  swapLink(`${dir}/ec/current`, "1");
  swapLink(`${dir}/rsa/current`, "1");
  pki.issue(`${dir}/sni/${SNI}`, "ec");
  const variants: HsVariant[] = [];
  const servers: string[] = [];
  const full = "ssl_session_cache off; ssl_session_tickets off;";
  const resumable = "ssl_session_cache shared:bg_hs:10m;";
  const add = (name: string, certLines: string, session: string, log = true) => {
    const port = BASE_PORT + 11 + servers.length;
    const slug = name.replace(/[^a-z0-9]+/gi, "-");
    servers.push(
      [
        "  server {",
        `    listen 127.0.0.1:${port} ssl;`,
        `    server_name ${SNI};`,
        `    ${certLines}`,
        `    ${session}`,
        log ? `    access_log ${dir}/logs/${slug}.log bg_reused buffer=64k flush=1s;` : "",
        '    location / { return 200 "ok\\n"; }',
        "  }",
      ].join("\n"),
    );
    if (log)
      variants.push({
        name,
        port,
        log: `${slug}.log`,
        resumed: session === resumable,
        rps: [],
        hsMs: [],
        tally: zero(),
        resumedShare: "–",
      });
    return port;
  };
  const stat = (k: string) => `ssl_certificate ${dir}/${k}/1/fullchain.pem; ssl_certificate_key ${dir}/${k}/1/key.pem;`;
  const dyn = (k: string) => `ssl_certificate $bg_cert_${k}; ssl_certificate_key $bg_cert_${k};`;
  add("handshake: static cert (ECDSA P-256, full)", stat("ec"), full);
  const varEcFull = add("handshake: variable path (ECDSA P-256, full)", dyn("ec"), full);
  add("handshake: static cert (RSA-2048, full)", stat("rsa"), full);
  add("handshake: variable path (RSA-2048, full)", dyn("rsa"), full);
  add("handshake: static cert (ECDSA P-256, resumed by wrk)", stat("ec"), resumable);
  const varEcResumed = add("handshake: variable path (ECDSA P-256, resumed by wrk)", dyn("ec"), resumable);
  const cacheOnly = add("variable path, cache only", dyn("ec"), `${resumable} ssl_session_tickets off;`, false);
  const sniPath = add(
    "path from $ssl_server_name",
    `ssl_certificate ${dir}/sni/$ssl_server_name/cert.pem; ssl_certificate_key ${dir}/sni/$ssl_server_name/cert.pem;`,
    full,
    false,
  );
  const nginx = new Nginx(
    dir,
    servers.join("\n"),
    [
      "  log_format bg_reused '$ssl_session_reused';",
      `  map $ssl_server_name $bg_cert_ec { default ${dir}/ec/current/cert.pem; }`,
      `  map $ssl_server_name $bg_cert_rsa { default ${dir}/rsa/current/cert.pem; }`,
    ].join("\n"),
  );
  return { nginx, dir, variants, ports: { varEcFull, varEcResumed, cacheOnly, sniPath }, ecSerial: ec };
}

// ---------------------------------------------------------------- main

async function main() {
  for (const t of ["nginx", "wrk", "openssl", "curl"]) requireTool(t);
  root = fs.mkdtempSync(path.join(os.tmpdir(), "bg-tls-bench-"));
  fs.chmodSync(root, 0o755); // the workers (www-data) open files below it
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  const nginxVersion = run("nginx", ["-v"]).stderr.trim();
  const opensslVersion = run("openssl", ["version"]).stdout.trim();
  const pki = new Pki(`${root}/ca`);
  const t0 = Date.now();
  const hosts = renewalHosts(pki);
  const hs = handshakeHost(pki);
  console.error(`bench: certificates issued in ${Date.now() - t0} ms under ${root}`);
  if (args.includes("--show-config")) {
    for (const n of [hosts[0].nginx, hosts[1].nginx, hs.nginx])
      console.log(`# ${n.conf}\n${fs.readFileSync(n.conf, "utf8")}`);
    return;
  }
  for (const h of hosts) h.nginx.start();
  hs.nginx.start();
  await sleep(300);

  // A: interleaved halves, reload / no-reload / reload / no-reload.
  const results = hosts.map((): RenewalResult => ({
    renewals: 0,
    tally: zero(),
    reopened: 0,
    visibleMs: [],
    probes: [],
    errors: [],
  }));
  const halves = [Math.ceil(RENEWALS / 2), Math.floor(RENEWALS / 2)].filter((n) => n > 0);
  for (const n of halves) {
    for (const [i, h] of hosts.entries()) {
      console.error(`  ${h.name}: ${n} renewals under ${CONNECTIONS} keep-alive connections`);
      await renewalRun(h, n, pki.caPem, results[i]);
    }
  }
  const atEnd = hosts.map((h) => {
    const s = sClientSerial(h.port);
    return s === h.current ? `yes (${s})` : `NO: ${s}, expected ${h.current}`;
  });

  // B: rounds of every variant, rotated each round; wrk opens a new connection per request.
  for (let r = 0; r < ROUNDS; r++) {
    const order = hs.variants.map((_, i) => hs.variants[(i + r) % hs.variants.length]);
    for (const v of order) {
      console.error(`  round ${r + 1}/${ROUNDS}: ${v.name}`);
      const load = startWrk(`https://127.0.0.1:${v.port}/`, [
        "-t2",
        "-c32",
        `-d${ROUND_SECONDS}s`,
        "-H",
        "Connection: close",
      ]);
      const sampler = sampleHandshakes(pki.caPem, v, performance.now() + ROUND_SECONDS * 1000 - 200);
      const w = await load.done;
      await sampler;
      v.rps.push(w.rps);
      v.tally = tally(v.tally, w);
    }
  }
  await sleep(1500); // access logs flush every second
  for (const v of hs.variants) {
    const lines = hs.nginx.logLines(v.log);
    v.resumedShare = lines.length
      ? `${((100 * lines.filter((l) => l === "r").length) / lines.length).toFixed(1)} %`
      : "–";
  }

  // C: sessions, SNI, permissions, and a rename storm against the variable path.
  const checks: [string, string][] = [];
  const check = (what: string, result: string) => {
    checks.push([what, result]);
    console.error(`  ${what}: ${result}`);
  };
  const [reloadHost, varHost] = hosts;
  check("no-reload host, client sends no SNI (s_client -noservername)", sClientSerial(varHost.port, null));
  check(
    "no-reload host, SNI of another name (s_client -servername other.test)",
    sClientSerial(varHost.port, "other.test"),
  );
  check("path built from $ssl_server_name, no SNI", sClientSerial(hs.ports.sniPath, null));
  check(`path built from $ssl_server_name, SNI ${SNI}`, sClientSerial(hs.ports.sniPath));
  const sess = `${root}/session`;
  sessionFile(hs.ports.varEcResumed, sess, "-tls1_3");
  check(
    "variable path, TLS 1.3 ticket (shared cache + tickets on)",
    resumeWith(hs.ports.varEcResumed, sess, "-tls1_3"),
  );
  sessionFile(hs.ports.varEcResumed, sess, "-tls1_2");
  check(
    "variable path, TLS 1.2 ticket (shared cache + tickets on)",
    resumeWith(hs.ports.varEcResumed, sess, "-tls1_2"),
  );
  sessionFile(hs.ports.cacheOnly, sess, "-tls1_2");
  check(
    "variable path, TLS 1.2 session id (shared cache, tickets off)",
    resumeWith(hs.ports.cacheOnly, sess, "-tls1_2"),
  );
  sessionFile(hs.ports.cacheOnly, sess, "-tls1_3");
  check("variable path, TLS 1.3 (shared cache, tickets off)", resumeWith(hs.ports.cacheOnly, sess, "-tls1_3"));
  for (const h of [reloadHost, varHost]) {
    for (const proto of ["-tls1_3", "-tls1_2"] as const) {
      sessionFile(h.port, sess, proto);
      const serial = h.renew();
      for (let i = 0; i < 100 && (await servedSerial(pki.caPem, h.port).catch(() => "")) !== serial; i++)
        await sleep(20);
      check(`${h.name}: session from before a renewal, ${proto.slice(1)}`, resumeWith(h.port, sess, proto));
    }
  }
  if (workerUser) {
    const f = fs.realpathSync(`${hs.dir}/ec/current/cert.pem`);
    const errStart = hs.nginx.logLines("error.log").length;
    fs.chownSync(f, 0, 0);
    fs.chmodSync(f, 0o600);
    const served = sClientSerial(hs.ports.varEcFull);
    fs.chownSync(f, 0, workerGid!);
    fs.chmodSync(f, 0o640);
    check(
      `variable path, pem 0600 root:root, workers run as ${workerUser}`,
      `${served}; ${hs.nginx.errors(errStart)[0] ?? "no error logged"}`,
    );
  } else {
    check("variable path, pem unreadable by the workers", "not run (needs root to start workers as another user)");
  }
  // Rename storm: nginx opens the same path twice per handshake (certificate, then key); a
  // rename between the two would pair one release's certificate with the other's key.
  {
    const errStart = hs.nginx.logLines("error.log").length;
    const load = startWrk(`https://127.0.0.1:${hs.ports.varEcFull}/`, [
      "-t2",
      "-c32",
      "-d3s",
      "-H",
      "Connection: close",
    ]);
    await sleep(200);
    let renames = 0;
    const end = performance.now() + 2600;
    while (performance.now() < end) swapLink(`${hs.dir}/ec/current`, String((renames++ % 2) + 1));
    swapLink(`${hs.dir}/ec/current`, "1");
    const w = tally(zero(), await load.done);
    const errs = hs.nginx.errors(errStart);
    const kinds = [...new Set(errs)];
    check(
      `rename storm: link swapped between two keys ${renames} times during ${w.requests} full handshakes`,
      `failed ${failedText(w)}; ${errs.length} error-log lines${kinds.length ? `: ${kinds.join(" | ")}` : ""}`,
    );
  }

  // ---------------------------------------------------------------- tables
  const rows: string[][] = [];
  for (const [i, h] of hosts.entries()) {
    const r = results[i];
    const vis = r.visibleMs.filter(Number.isFinite);
    rows.push([
      h.name,
      String(r.renewals),
      String(r.tally.requests),
      failedText(r.tally),
      (failedOf(r.tally) / r.renewals).toFixed(1),
      String(r.reopened),
      `${median(vis).toFixed(0)} / ${Math.max(...vis).toFixed(0)} ms${vis.length < r.visibleMs.length ? ` (${r.visibleMs.length - vis.length} never)` : ""}`,
      atEnd[i],
      r.probes.join("; "),
      `${r.errors.length}${r.errors.length ? `: ${[...new Set(r.errors)].slice(0, 2).join(" | ")}` : ""}`,
      "–",
      "–",
      "–",
    ]);
  }
  for (const v of hs.variants) {
    rows.push([
      v.name,
      "–",
      String(v.tally.requests),
      failedText(v.tally),
      "–",
      "–",
      "–",
      "–",
      "–",
      "–",
      `${median(v.rps).toFixed(0)} (${v.rps.map((x) => x.toFixed(0)).join(", ")})`,
      `${median(v.hsMs).toFixed(1)} / ${quantile(v.hsMs, 0.99).toFixed(1)} ms (n=${v.hsMs.length})`,
      v.resumedShare,
    ]);
  }
  const header = [
    "variant",
    "renewals",
    "requests",
    "failed (wrk socket errors + non-2xx)",
    "failed / renewal",
    "connections wrk reopened",
    "new cert on a new connection after renewal (median / max)",
    "new cert served at end (s_client serial)",
    "keep-alive connection opened before the renewals",
    "nginx [error]+ lines",
    `handshakes/s, wrk Connection: close (median of ${ROUNDS})`,
    "handshake time p50 / p99 (sequential client during load)",
    "wrk handshakes resumed",
  ];
  console.log(
    `\nMachine: ${os.cpus().length} x ${cpu}, load ${os.loadavg()[0].toFixed(1)}, ${nginxVersion}, ${opensslVersion}, workers as ${workerUser ?? "the caller"}, ${new Date().toISOString().slice(0, 10)}`,
  );
  console.log(
    `Renewal: wrk -t4 -c${CONNECTIONS} keep-alive, ${RENEWALS} renewals per approach in two interleaved halves, ~0.6 s apart. Handshake: wrk -t2 -c32 -H "Connection: close", ${ROUNDS} rotated rounds of ${ROUND_SECONDS} s; wrk latency excludes the handshake, so handshake time is from a separate node client.\n`,
  );
  printTable(header, rows);
  console.log("");
  printTable(["check", "result"], checks);
}

function printTable(header: string[], rows: string[][]) {
  console.log(`| ${header.join(" | ")} |`);
  console.log(`|${header.map(() => "---").join("|")}|`);
  for (const r of rows) console.log(`| ${r.map((c) => c.replace(/\|/g, "\\|")).join(" | ")} |`);
}

async function cleanup() {
  for (const c of children) c.kill("SIGKILL");
  for (const n of nginxes) await n.stop().catch(() => undefined);
  if (root) fs.rmSync(root, { recursive: true, force: true });
}

process.on("SIGINT", () => void cleanup().then(() => process.exit(130)));
main()
  .then(cleanup)
  .catch(async (e) => {
    console.error(e);
    await cleanup();
    process.exit(1);
  });
