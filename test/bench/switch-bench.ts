// npm run bench [-- --vm] [-- --switches N]
// Measures the switch on this machine's nginx (socket mode and tcp mode side by
// side) and, with --vm, on the e2e VM. Prints a table; asserts nothing.
// npm run bench -- --peers [--switches N] [--quick]: bluegreen next to nginx,
// HAProxy and Caddy doing the same switch their usual ways (./peers.ts).
// npm run bench -- --keepalive-ab: throughput of the site as rendered against the same
// site with the upstream keep-alive bound it had before (500 ms / 500 ms), alternating,
// and 40 switches per variant under load. [--rounds N] [--seconds S]
// npm run bench -- --gap-ab: the rendered site against variants that each remove one
// difference from the peers bench's "nginx include + reload" row, and that row, alternating.
import * as fs from "fs";
import * as os from "os";
import { runProgram } from "../support/harness";
import { resourcesOf, sftpPut, sshRun, StateEntry, up } from "../e2e/replay";
import { buildLoadgen, ensureImage, Vm } from "../e2e/vm";
import { buildDemoApp, Sandbox, startWrk, WrkResult } from "../support/sandbox";
import { run } from "../support/tools";
import { runPeers } from "./peers";
import { scratchDir, startDemoPair } from "./peers/row";
import { ROWS } from "./peers/rows";

const args = process.argv.slice(2);
const SWITCHES = Number(args[args.indexOf("--switches") + 1]) || 40;
const CONNECTIONS = 64;

interface Row {
  where: string;
  metric: string;
  value: string;
}
const rows: Row[] = [];
const add = (where: string, metric: string, value: string) => {
  rows.push({ where, metric, value });
  console.error(`  ${where} | ${metric} | ${value}`);
};

const median = (xs: number[]) => quantile(xs, 0.5);
function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
}

/** wrk at the bench's load until stopped; an answer slower than 10 s counts as a timeout. */
const loadUntilStopped = (url: string) => startWrk(url, { connections: CONNECTIONS, seconds: 600, timeout: "10s" });

const failed = (w: WrkResult) =>
  `${w.resets + w.non2xx} of ${w.requests} (resets ${w.resets}, non-2xx ${w.non2xx}; slower than 10 s: ${w.timeouts})`;

function timings(outputs: string[]) {
  const total: number[] = [];
  const converged: number[] = [];
  for (const o of outputs) {
    const m = /switched in (\d+) ms, verified (\d+) ms after the link moved/.exec(o);
    if (!m) throw new Error(`switch output without timing: ${o}`);
    total.push(Number(m[1]));
    converged.push(Number(m[2]));
  }
  return { total, converged };
}

/**
 * `n` switches (alternating green/blue, starting from blue live) under the bench's load on
 * the host's public listener, 200 ms apart; the load runs from 1 s before the first to the last.
 */
async function switchSeries(host: Sandbox, n: number) {
  const load = loadUntilStopped(`http://127.0.0.1:${host.opts.httpPort}/`);
  await new Promise((r) => setTimeout(r, 1000));
  const outputs: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = host.switchTo(i % 2 === 0 ? "green" : "blue");
    if (r.status !== 0) throw new Error(r.stderr);
    outputs.push(r.stdout);
    await new Promise((res) => setTimeout(res, 200));
  }
  return { w: await load.stop(), outputs };
}

async function localMode(mode: "socket" | "tcp", base: number) {
  const where = `local nginx, ${mode}`;
  const host = new Sandbox({
    mode,
    httpPort: base,
    previewPort: base + 1,
    checkPort: base + 2,
    ports: { blue: base + 10, green: base + 11 },
  });
  try {
    const cfg = host.configureAndStartNginx();
    if (cfg.status !== 0) throw new Error(cfg.stderr);
    const t0 = Date.now();
    await host.startSlot("blue", "v1");
    add(where, "time to ready (process start to first 2xx /health/ready)", `${Date.now() - t0} ms`);
    await host.startSlot("green", "v2");
    host.switchTo("blue");

    const { w, outputs } = await switchSeries(host, SWITCHES);
    const t = timings(outputs);
    add(
      where,
      `switch time, script start to verified (median / p95 of ${SWITCHES}, under load)`,
      `${median(t.total)} / ${quantile(t.total, 0.95)} ms`,
    );
    add(
      where,
      "verified through nginx, link moved to the target answering (median / p95)",
      `${median(t.converged)} / ${quantile(t.converged, 0.95)} ms`,
    );
    add(where, `failed requests during ${SWITCHES} switches, ${CONNECTIONS} keep-alive conns`, failed(w));
    return host;
  } catch (e) {
    host.stop();
    throw e;
  }
}

async function throughput(host: Sandbox, directPort: number) {
  const measure = async (url: string) => {
    const w = loadUntilStopped(url);
    await new Promise((r) => setTimeout(r, 8000));
    return w.stop();
  };
  const direct = await measure(`http://127.0.0.1:${directPort}/`);
  const viaNginx = await measure(`http://127.0.0.1:${host.opts.httpPort}/`);
  add(
    "local",
    "throughput direct to the app (tcp), req/s, p99",
    `${direct.rps.toFixed(0)}, ${direct.p99ms.toFixed(2)} ms`,
  );
  add(
    "local",
    `throughput through nginx (${host.opts.mode}), req/s, p99`,
    `${viaNginx.rps.toFixed(0)}, ${viaNginx.p99ms.toFixed(2)} ms`,
  );
  add(
    "local",
    "nginx / direct: throughput ratio, p99 ratio",
    `${(viaNginx.rps / direct.rps).toFixed(2)}, ${(viaNginx.p99ms / direct.p99ms).toFixed(2)}`,
  );
}

async function onVm() {
  const where = "VM (qemu TCG, 2 vCPU)";
  const image = ensureImage((l) => console.error(l));
  const vm = await Vm.boot(image);
  try {
    const config = {
      hostKind: "ssh",
      sshHost: "127.0.0.1",
      sshPort: vm.sshPort,
      sshPrivateKey: image.privateKey,
      sshHostKey: image.hostKey,
      active: "blue",
      blueVersion: "v1",
      greenVersion: "v2",
    };
    let state: StateEntry[] = [];
    const first = await up(state, resourcesOf(await runProgram(config)));
    if (first.error) throw new Error(first.error);
    state = first.state;
    const ready = /ready on \S+ in (\d+) ms/.exec(first.steps.find((s) => s.name === "green-service")!.output)?.[1];
    add(where, "time to ready, deploy to the idle slot (restart to first 2xx)", `${ready} ms`);
    // Socket mode only: the VM's stack is deployed in it, and tcp mode needs a redeploy.
    // Control first: the same switch.sh runs over SSH, aimed at the colour already live,
    // so everything happens but traffic moving. Failures there are the VM's, not the switch's.
    const n = Math.min(SWITCHES, 30);
    // nginx's error log says why a request failed; count what each series added.
    const errorLog = async (since?: number) => {
      const r = await sshRun(
        vm.connection,
        since === undefined
          ? "wc -l < /var/log/nginx/error.log"
          : `tail -n +${since + 1} /var/log/nginx/error.log | sed -E 's/^[0-9/: ]+\\[[a-z]+\\] [0-9#]+: (\\*[0-9]+ )?//; s/, client:.*//' | sort | uniq -c | sort -rn | head -3`,
      );
      return r.stdout.trim();
    };
    const series = async (targetOf: (i: number) => string) => {
      const logStart = Number(await errorLog());
      const load = loadUntilStopped(`http://127.0.0.1:${vm.httpPort}/`);
      await new Promise((r) => setTimeout(r, 1000));
      const outputs: string[] = [];
      for (let i = 0; i < n; i++) {
        const r = await sshRun(
          vm.connection,
          `env TARGET=${targetOf(i)} HEALTH_PATH=/health/ready CHECK_PORT=8082 VERIFY_TIMEOUT=15 WATCH_SECONDS=0 ERROR_PERCENT=5 MIN_ERRORS=5 /usr/local/lib/bluegreen/switch.sh`,
        );
        if (r.code !== 0) throw new Error(r.combined);
        outputs.push(r.stdout);
      }
      const w = await load.stop();
      return { w, t: timings(outputs), errors: (await errorLog(logStart)).replace(/\s*\n\s*/g, "; ") || "none" };
    };
    const control = await series(() => "blue");
    add(
      where,
      `control: ${n} switch.sh runs to the live colour (nothing moves), ${CONNECTIONS} conns`,
      failed(control.w),
    );
    add(where, "control: new nginx error-log lines", control.errors);
    const real = await series((i) => (i % 2 === 0 ? "green" : "blue"));
    add(
      where,
      `socket: switch time (median / p95 of ${n}, under load)`,
      `${median(real.t.total)} / ${quantile(real.t.total, 0.95)} ms`,
    );
    add(
      where,
      "socket: verified through nginx after the link moved (median / p95)",
      `${median(real.t.converged)} / ${quantile(real.t.converged, 0.95)} ms`,
    );
    add(where, `socket: failed requests during ${n} switches, ${CONNECTIONS} conns`, failed(real.w));
    add(where, "socket: new nginx error-log lines", real.errors);

    // The same two series with the load generated inside the guest, so qemu's
    // user-mode network (slirp) is not between client and nginx.
    const loadgen = buildLoadgen();
    await sftpPut(vm.connection, loadgen, "/tmp/loadgen");
    const inGuest = async (targetOf: (i: number) => string) => {
      await sshRun(
        vm.connection,
        "chmod +x /tmp/loadgen; rm -f /tmp/lg.json; (nohup /tmp/loadgen -url http://127.0.0.1/ -c 64 -d 600s > /tmp/lg.json 2>&1 &)",
      );
      await new Promise((r) => setTimeout(r, 1000));
      for (let i = 0; i < n; i++) {
        const r = await sshRun(
          vm.connection,
          `env TARGET=${targetOf(i)} HEALTH_PATH=/health/ready CHECK_PORT=8082 VERIFY_TIMEOUT=15 WATCH_SECONDS=0 ERROR_PERCENT=5 MIN_ERRORS=5 /usr/local/lib/bluegreen/switch.sh`,
        );
        if (r.code !== 0) throw new Error(r.combined);
      }
      const out = await sshRun(
        vm.connection,
        "pkill -TERM -x loadgen; for i in $(seq 50); do grep -q requests /tmp/lg.json && break; sleep 0.2; done; cat /tmp/lg.json",
      );
      const g = JSON.parse(out.stdout);
      const samples = Object.keys(g.samples ?? {}).join(" | ");
      return `${g.resets + g.other + g.non2xx} of ${g.requests} (resets ${g.resets}, other errors ${g.other}, non-2xx ${g.non2xx}; slower than 10 s: ${g.timeouts})${samples ? `; e.g. ${samples}` : ""}`;
    };
    add(where, `in-guest load: control, ${n} switch.sh runs to the live colour`, await inGuest(() => "blue"));
    add(
      where,
      `in-guest load: failed requests during ${n} switches, 64 conns`,
      await inGuest((i) => (i % 2 === 0 ? "green" : "blue")),
    );
  } finally {
    await vm.shutdown();
  }
}

async function main() {
  buildDemoApp("v1");
  buildDemoApp("v2");
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  const nginxVersion = run("nginx", ["-v"]).stderr.trim();
  console.error(`bench: ${SWITCHES} switches per mode, ${CONNECTIONS} connections`);
  if (args.includes("--keepalive-ab")) await keepaliveAb();
  else if (args.includes("--gap-ab")) await gapAb();
  else if (!args.includes("--vm-only")) await local();
  if (args.includes("--vm") || args.includes("--vm-only")) await onVm();
  printTable(cpu, nginxVersion);
}

async function local() {
  const socketHost = await localMode("socket", 18400);
  const tcpHost = await localMode("tcp", 18500);
  try {
    await throughput(socketHost, 18510);
    await throughput(tcpHost, 18510);
  } finally {
    socketHost.stop();
    tcpHost.stop();
  }
}

/** Runs `body` for every variant `rounds` times, the order reversed every other round. */
async function alternate(names: string[], rounds: number, body: (name: string) => Promise<void>) {
  for (let round = 0; round < rounds; round++) {
    for (const name of round % 2 === 0 ? names : [...names].reverse()) await body(name);
  }
}

const AB_ROUNDS = Number(args[args.indexOf("--rounds") + 1]) || 5;
const AB_SECONDS = Number(args[args.indexOf("--seconds") + 1]) || 5;

/** One wrk run of the A/B benches: the bench's load for AB_SECONDS. */
const abRun = (url: string) => startWrk(url, { connections: CONNECTIONS, seconds: AB_SECONDS, timeout: "10s" }).done;

/** A socket-mode Sandbox on ports from `base`, blue v1 and green v2 running, blue live; and its site's text. */
async function abHost(base: number) {
  const host = new Sandbox({
    mode: "socket",
    httpPort: base,
    previewPort: base + 1,
    checkPort: base + 2,
    ports: { blue: base + 10, green: base + 11 },
  });
  const cfg = host.configureAndStartNginx();
  if (cfg.status !== 0) throw new Error(cfg.stderr);
  await host.startSlot("blue", "v1");
  await host.startSlot("green", "v2");
  host.switchTo("blue");
  const sitePath = host.at("/etc/nginx/bluegreen/bluegreen.conf");
  const rendered = fs.readFileSync(sitePath, "utf8");
  /** Makes nginx serve `text` as the site (a reload), then lets the old workers go. */
  const apply = async (text: string) => {
    fs.writeFileSync(sitePath, text);
    const r = host.lib("router_test && router_reload");
    if (r.status !== 0) throw new Error(r.stderr);
    await new Promise((res) => setTimeout(res, 1000));
  };
  return { host, rendered, apply };
}

/** CPU time (clock ticks) used so far by the processes whose command line names one of `dirs`, and their children. */
function cpuTicks(dirs: string[]): number {
  const pids = new Set<string>();
  for (const d of dirs) for (const p of run("pgrep", ["-f", d]).stdout.split(/\s+/).filter(Boolean)) pids.add(p);
  for (const p of [...pids]) {
    const kids = fs.existsSync(`/proc/${p}/task/${p}/children`)
      ? fs.readFileSync(`/proc/${p}/task/${p}/children`, "utf8")
      : "";
    for (const k of kids.split(/\s+/).filter(Boolean)) pids.add(k);
  }
  let ticks = 0;
  for (const p of pids) {
    try {
      const f = fs.readFileSync(`/proc/${p}/stat`, "utf8").split(") ")[1].split(" ");
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      /* gone */
    }
  }
  return ticks;
}

/** The directory of the nginx listening on loopback `port` (from its master's -c). */
function nginxDirOn(port: number): string {
  const pids = [...run("ss", ["-Hltnp", `sport = :${port}`]).stdout.matchAll(/pid=(\d+)/g)].map((m) => m[1]);
  for (const pid of pids) {
    const dir = /-c (\S+)\/nginx\.conf/.exec(fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " "))?.[1];
    if (dir) return dir;
  }
  throw new Error(`no nginx with a -c found on port ${port}`);
}

/** A wrk run (abRun) and the CPU the servers in `dirs` used per request during it (µs). */
async function abRunCpu(url: string, dirs: string[]) {
  const t0 = cpuTicks(dirs);
  const w = await abRun(url);
  const us = ((cpuTicks(dirs) - t0) * 1e6) / 100 / w.requests;
  return { ...w, cpuUs: us };
}

/** Median req/s (and % against `ref`), median p99 and failed requests of a variant's runs. */
function abSummary(ws: WrkResult[], ref: number) {
  const rps = median(ws.map((w) => w.rps));
  const failed = ws.reduce((n, w) => n + w.resets + w.non2xx, 0);
  const all = ws.map((w) => w.rps.toFixed(0)).join(" ");
  return `${rps.toFixed(0)} req/s (${(((rps - ref) / ref) * 100).toFixed(1)} %), p99 ${median(ws.map((w) => w.p99ms)).toFixed(2)} ms; ${failed} failed; median of ${ws.length} x ${AB_SECONDS} s [${all}]`;
}

/**
 * The site as rendered (upstream keep-alive with nginx's defaults: keepalive_time 1h,
 * keepalive_timeout 60s) against the old bound (500 ms / 500 ms) and none, on one nginx,
 * alternating so the machine's drift falls on every variant alike. Each turn of a variant:
 * its site applied (a reload), an AB_SECONDS wrk run, then SWITCHES / rounds switches under load.
 */
async function keepaliveAb() {
  const { host, rendered, apply } = await abHost(18600);
  try {
    if (!rendered.includes("    keepalive 32;\n")) throw new Error("the rendered site has no upstream keepalive line");
    const variants: Record<string, string> = {
      "as rendered (keepalive 32; nginx defaults: keepalive_time 1h, keepalive_timeout 60s)": rendered,
      "the old bound (keepalive 32; keepalive_time 500ms; keepalive_timeout 500ms)": rendered.replaceAll(
        "    keepalive 32;\n",
        "    keepalive 32;\n    keepalive_time 500ms;\n    keepalive_timeout 500ms;\n",
      ),
      "no upstream keep-alive (keepalive line removed)": rendered.replaceAll("    keepalive 32;\n", ""),
    };
    const perRound = Math.max(2, 2 * Math.round(SWITCHES / AB_ROUNDS / 2));
    const runs: Record<string, WrkResult[]> = {};
    const series: Record<string, { w: WrkResult[]; outputs: string[] }> = {};
    await alternate(Object.keys(variants), AB_ROUNDS, async (name) => {
      await apply(variants[name]);
      (runs[name] ??= []).push(await abRun(`http://127.0.0.1:${host.opts.httpPort}/`));
      const s = await switchSeries(host, perRound);
      (series[name] ??= { w: [], outputs: [] }).w.push(s.w);
      series[name].outputs.push(...s.outputs);
      console.error(`  ${name}: ${runs[name].at(-1)!.rps.toFixed(0)} req/s`);
    });
    const ref = median(runs[Object.keys(variants)[0]].map((w) => w.rps));
    for (const name of Object.keys(variants)) {
      const where = name.replace(/ \(.*/, "");
      add(where, `${name}: throughput, no switches`, abSummary(runs[name], ref));
      const t = timings(series[name].outputs);
      const n = t.total.length;
      add(
        where,
        `switch time, script start to verified (median / p95 of ${n}, under load)`,
        `${median(t.total)} / ${quantile(t.total, 0.95)} ms`,
      );
      add(
        where,
        "verified through nginx after the link moved (median / p95)",
        `${median(t.converged)} / ${quantile(t.converged, 0.95)} ms`,
      );
      const ws = series[name].w;
      const sum = (f: (w: WrkResult) => number) => ws.reduce((a, w) => a + f(w), 0);
      add(
        where,
        `failed requests during ${n} switches, ${CONNECTIONS} keep-alive conns`,
        `${sum((w) => w.resets + w.non2xx)} of ${sum((w) => w.requests)} (resets ${sum((w) => w.resets)}, non-2xx ${sum((w) => w.non2xx)}; slower than 10 s: ${sum((w) => w.timeouts)})`,
      );
    }
  } finally {
    host.stop();
  }
}

/**
 * Why the peers bench's "bluegreen nginx socket" row serves fewer req/s than its
 * "nginx include + reload" row with no switches: the rendered site against text edits of
 * it that each take away one difference, and the include row itself (rows.ts), alternating.
 */
async function gapAb() {
  const { host, rendered, apply } = await abHost(18650);
  const include = ROWS.map((r) => r()).find((r) => r.id === "nginx-reload")!;
  const scratch = scratchDir("gap-ab");
  try {
    const includeUrl = (await include.setup()).url;
    const pair = await startDemoPair(scratch.dir, "unix");
    const noFileTests = (t: string) => t.replace(/^( {4}| {8})if \(-f [^\n]*\{\n[^\n]*\n\1\}\n/gm, "");
    const staticPass = (t: string) =>
      noFileTests(t).replaceAll(
        "proxy_pass http://bluegreen_${bluegreen_slot}_${bluegreen_mode};",
        "proxy_pass http://bluegreen_blue_socket;",
      );
    const combinedLog = (t: string) => t.replace(/access_log (\S+) bluegreen;/g, "access_log $1;");
    const twoHeaders = (t: string) =>
      t
        .replace(/^ {8}proxy_set_header (Upgrade|X-[\w-]+) .*\n/gm, "")
        .replace(/^ {8}add_header X-Request-Id .*\n/gm, "");
    const noFaultDir = (t: string) =>
      t.replace(
        /server unix:\S+\/(blue|green)\/app\.sock;/g,
        (_, c: "blue" | "green") => `server unix:${(pair[c] as { path: string }).path};`,
      );
    const variants: Record<string, string | undefined> = {
      "as rendered": rendered,
      "no file tests (the 4 if (-f) blocks removed; proxy_pass still by variables)": noFileTests(rendered),
      "no file tests, static proxy_pass http://bluegreen_blue_socket": staticPass(rendered),
      "access log in nginx's combined format": combinedLog(rendered),
      "access log buffered (buffer=64k flush=250ms)": rendered.replace(
        /access_log (\S+) bluegreen;/g,
        "access_log $1 bluegreen buffer=64k flush=250ms;",
      ),
      "access log off": rendered.replace(/access_log (\S+) bluegreen;/g, "access_log off;"),
      "proxy headers as the include row (Connection, Host; no X-*, no add_header)": twoHeaders(rendered),
      "slots started without --fault-dir (as the peers rows start them)": noFaultDir(rendered),
      "all five: static proxy_pass, combined log, 2 headers, no --fault-dir": noFaultDir(
        twoHeaders(combinedLog(staticPass(rendered))),
      ),
      "the peers bench's nginx include row (rows.ts: its own nginx and app pair)": undefined,
    };
    for (const [name, text] of Object.entries(variants)) {
      if (text !== undefined && text === rendered && name !== "as rendered")
        throw new Error(`${name}: no edit applied`);
    }
    const runs: Record<string, (WrkResult & { cpuUs: number })[]> = {};
    const includeDir = nginxDirOn(Number(new URL(includeUrl).port));
    await alternate(Object.keys(variants), AB_ROUNDS, async (name) => {
      const text = variants[name];
      if (text !== undefined) await apply(text);
      const url = text === undefined ? includeUrl : `http://127.0.0.1:${host.opts.httpPort}/`;
      (runs[name] ??= []).push(await abRunCpu(url, text === undefined ? [includeDir] : [host.root, scratch.dir]));
      console.error(
        `  ${name}: ${runs[name].at(-1)!.rps.toFixed(0)} req/s, ${runs[name].at(-1)!.cpuUs.toFixed(1)} µs CPU/req`,
      );
    });
    const ref = median(runs["as rendered"].map((w) => w.rps));
    const refCpu = median(runs["as rendered"].map((w) => w.cpuUs));
    for (const name of Object.keys(variants)) {
      const cpu = median(runs[name].map((w) => w.cpuUs));
      add(
        "local nginx, socket, no switches",
        name,
        `${abSummary(runs[name], ref)}; CPU (nginx + apps) ${cpu.toFixed(1)} µs/req (${(((cpu - refCpu) / refCpu) * 100).toFixed(1)} %)`,
      );
    }
    pair.stop();
  } finally {
    host.stop();
    await include.teardown();
    scratch.remove();
  }
}

function printTable(cpu: string, nginxVersion: string) {
  const w = [Math.max(...rows.map((r) => r.where.length), 5), Math.max(...rows.map((r) => r.metric.length), 6)];
  console.log(
    `\nMachine: ${os.cpus().length} x ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${nginxVersion}, ${new Date().toISOString().slice(0, 10)}\n`,
  );
  console.log(`| ${"where".padEnd(w[0])} | ${"metric".padEnd(w[1])} | value |`);
  console.log(`|${"-".repeat(w[0] + 2)}|${"-".repeat(w[1] + 2)}|-------|`);
  for (const r of rows) console.log(`| ${r.where.padEnd(w[0])} | ${r.metric.padEnd(w[1])} | ${r.value} |`);
}

(args.includes("--peers") ? runPeers(args) : main()).catch((e) => {
  console.error(e);
  process.exit(1);
});
