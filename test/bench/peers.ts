// npm run bench -- --peers [--switches N] [--spacing MS] [--quick] [--only ID,ID] [--out DIR]
//                          [--rate N] [--rounds N] [--baseline DIR]
//
// Issue 10 §3: bluegreen's switch next to the usual ways of doing the same
// with nginx, HAProxy and Caddy, one run, one machine, one table. Every row
// gets the same demo app pair, the same load (wrk, 64 keep-alive
// connections, with test/bench/peers/record.lua recording the timeline in
// 50 ms buckets) and the same number of switches, one row after another.
// Prints a markdown table and writes the series (JSON), the plot's data and an
// SVG (gnuplot, test/bench/peers/plot.gp) to --out (default
// test/bench/results/). Asserts nothing. Rows are in ./peers/rows.ts.
// After every row's switches, with every row still up, the rows' throughput, p99 and
// router CPU at a fixed rate are measured interleaved: round after round, each row in
// turn (the order reversed every other round), so the machine's drift and other
// programs' load fall on every row alike.
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Color, otherColor } from "../../components/host/layout";
import { buildDemoApp, parseWrk, WrkResult } from "../support/sandbox";
import { requireTool, run } from "../support/tools";
import { cpuNs, cpuSeconds, onExit, Row, runCleanups, sleep, waitForColor } from "./peers/row";
import { baselineRows, ROWS } from "./peers/rows";

const CONNECTIONS = 64;
const THREADS = 2;
const BUCKET_US = 50_000;
/** wrk's own default: an answer slower than this counts as a timeout. */
const WRK_TIMEOUT = "2s";
/** Throughput between switches leaves out this much before each switch and after it is done. */
const QUIET_US = 500_000;
const LUA = path.join(__dirname, "peers", "record.lua");
const RATE_LUA = path.join(__dirname, "peers", "rate.lua");
const PLOT = path.join(__dirname, "peers", "plot.gp");

interface Options {
  readonly switches: number;
  readonly spacingMs: number;
  readonly warmupMs: number;
  /** Rounds of the wrk-alone / wrk-with-record.lua comparison (also the p99 runs). */
  readonly checkRounds: number;
  readonly checkSeconds: number;
  /** Interleaved rounds over every row: a flat-out run (req/s, p99) and a fixed-rate run (router CPU). */
  readonly loadRounds: number;
  readonly loadSeconds: number;
  /** The fixed rate, requests per second, and how long each fixed-rate run lasts. */
  readonly rate: number;
  readonly rateSeconds: number;
  readonly only?: string[];
  readonly out: string;
  /** Another checkout whose bluegreen rows run too, first (ids baseline-bluegreen-...). */
  readonly baseline?: string;
}

function options(args: string[]): Options {
  const value = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
  const quick = args.includes("--quick");
  const only = value("--only");
  return {
    switches: Number(value("--switches")) || (quick ? 5 : 40),
    spacingMs: Number(value("--spacing")) || 2000,
    warmupMs: 1500,
    checkRounds: quick ? 1 : 3,
    checkSeconds: quick ? 2 : 3,
    loadRounds: Number(value("--rounds")) || (quick ? 1 : 3),
    loadSeconds: quick ? 3 : 4,
    rate: Number(value("--rate")) || 5000,
    rateSeconds: quick ? 3 : 5,
    only: only ? only.split(",") : undefined,
    out: path.resolve(value("--out") ?? path.join(__dirname, "results")),
    baseline: value("--baseline") ? path.resolve(value("--baseline")!) : undefined,
  };
}

// ---------------------------------------------------------------- clock

// The load's buckets are stamped with gettimeofday(); switches must be on the
// same clock in µs. Node's hrtime is monotonic, Date.now() only whole ms: tie
// them at the edge of a Date.now() tick, once per row (rows last ~90 s).
let offsetUs = 0;
const hrUs = () => Number(process.hrtime.bigint() / 1000n);
function calibrateClock() {
  const start = Date.now();
  let now = start;
  while (now === start) now = Date.now();
  offsetUs = now * 1000 - hrUs();
}
const nowUs = () => hrUs() + offsetUs;

// ---------------------------------------------------------------- the load

/** What record.lua writes: per-bucket arrays, index b = [origin + b*bucket, +bucket). */
interface Series {
  readonly origin_us: number;
  readonly bucket_us: number;
  readonly threads: number;
  readonly summary: {
    readonly duration_us: number;
    readonly requests: number;
    readonly connect: number;
    readonly read: number;
    readonly write: number;
    readonly timeout: number;
    /** wrk's "Non-2xx or 3xx responses" (it counts status > 399). */
    readonly status: number;
    readonly p99_us: number;
  };
  readonly sent: number[];
  readonly ok: number[];
  readonly non2xx: number[];
  readonly blue: number[];
  readonly green: number[];
  readonly other: number[];
  /** µs from origin of the first / last response of that colour in the bucket. */
  readonly blue_first: (number | null)[];
  readonly blue_last: (number | null)[];
  readonly green_first: (number | null)[];
  readonly green_last: (number | null)[];
}

const firstOf = (s: Series, c: Color) => (c === "blue" ? s.blue_first : s.green_first);
const lastOf = (s: Series, c: Color) => (c === "blue" ? s.blue_last : s.green_last);

/** wrk at the bench's load; `stop()` ends it with SIGINT (wrk still prints its summary and runs done()). */
function startWrk(url: string, extra: string[], env: NodeJS.ProcessEnv, seconds: number) {
  requireTool("wrk");
  const args = [`-t${THREADS}`, `-c${CONNECTIONS}`, `-d${seconds}s`, "--timeout", WRK_TIMEOUT, "--latency"];
  const child = spawn("wrk", [...args, ...extra, url], { env, stdio: ["ignore", "pipe", "pipe"] });
  const off = onExit(() => child.kill("SIGKILL"));
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const done = new Promise<string>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", () => {
      off();
      resolve(out);
    });
  });
  return { done, stop: () => (child.kill("SIGINT"), done) };
}

// ---------------------------------------------------------------- one row

interface SwitchRecord {
  readonly target: Color;
  /** The switch command was started (µs since the epoch). */
  readonly t0Us: number;
  /** It returned. */
  readonly returnedUs: number;
  /** A fresh curl connection got the target colour. */
  readonly doneUs: number;
  /** curl probes it took (each ~5-10 ms here). */
  readonly probes: number;
}

interface RowRun {
  readonly row: Row;
  readonly series: Series;
  readonly stopUs: number;
  readonly switches: SwitchRecord[];
  /** wrk's printed summary of the switch run. */
  readonly wrkText: string;
  /** Runs without switches: wrk alone (throughput, p99) and wrk with record.lua (throughput). */
  readonly plain: WrkResult[];
  readonly lua: WrkResult[];
  readonly diagnosis: string;
  /** One curl probe with no load and no switch, median of 5. */
  readonly probeMs: number;
  /** The interleaved rounds (loadRounds), filled in once every row has switched. */
  readonly load: LoadRound[];
}

/** One row's turn in an interleaved round. */
interface LoadRound {
  /** wrk flat out, no switches. */
  readonly flat: WrkResult;
  /** wrk held to the fixed rate (rate.lua), no switches. */
  readonly fixed: WrkResult;
  /** CPU seconds per 10,000 requests of the fixed-rate run: the router's (all its processes and threads), the app pair's. */
  readonly routerCpu: number;
  readonly appCpu: number;
}

/** Sets the row up and runs its switches; the row stays up (runPeers tears every row down at the end). */
async function runRow(row: Row, o: Options, tmp: string): Promise<RowRun & { url: string }> {
  {
    const { url } = await row.setup();
    await waitForColor(url, "blue");
    // What one probe costs by itself, before any load: the floor of the switch time.
    const probeMs: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = nowUs();
      await waitForColor(url, "blue");
      probeMs.push((nowUs() - t) / 1000);
    }
    log(`  ${row.name}: ${url}, ${o.switches} switches ${o.spacingMs} ms apart`);

    calibrateClock();
    const originUs = nowUs();
    const seriesFile = path.join(tmp, `${row.id}.json`);
    const env = { ...process.env, BG_ORIGIN_US: String(originUs), BG_BUCKET_US: String(BUCKET_US) };
    const load = startWrk(url, ["-s", LUA], { ...env, BG_OUT: seriesFile }, 3600);
    const switches: SwitchRecord[] = [];
    try {
      for (let i = 0; i < o.switches; i++) {
        const target: Color = i % 2 === 0 ? "green" : "blue";
        await sleep((originUs + (o.warmupMs + i * o.spacingMs) * 1000 - nowUs()) / 1000);
        const t0Us = nowUs();
        await row.switchTo(target);
        const returnedUs = nowUs();
        const probes = await waitForColor(url, target);
        switches.push({ target, t0Us, returnedUs, doneUs: nowUs(), probes });
      }
      await sleep((switches[switches.length - 1].t0Us + o.spacingMs * 1000 - nowUs()) / 1000);
    } catch (e) {
      await load.stop();
      throw e;
    }
    const stopUs = nowUs();
    const wrkText = await load.stop();
    if (!fs.existsSync(seriesFile)) throw new Error(`wrk wrote no series:\n${wrkText}`);
    const series = JSON.parse(fs.readFileSync(seriesFile, "utf8")) as Series;

    // The same load with no switches, alternating wrk alone and wrk + record.lua.
    const plain: WrkResult[] = [];
    const lua: WrkResult[] = [];
    const checkEnv = { ...env, BG_OUT: path.join(tmp, `${row.id}-check.json`) };
    for (let r = 0; r < o.checkRounds; r++) {
      const order = r % 2 === 0 ? ["plain", "lua"] : ["lua", "plain"];
      for (const kind of order) {
        const text = await startWrk(url, kind === "lua" ? ["-s", LUA] : [], checkEnv, o.checkSeconds).done;
        (kind === "lua" ? lua : plain).push(parseWrk(text));
      }
    }
    const diagnosis = row.diagnose?.() ?? "";
    return { row, url, series, stopUs, switches, wrkText, plain, lua, diagnosis, probeMs: median(probeMs), load: [] };
  }
}

/**
 * The interleaved rounds: in each, every row in turn (the order reversed every other round)
 * gets a flat-out wrk run and then a run held to o.rate, during which the router's and the
 * apps' CPU time is read from /proc (schedstat: ns, every thread).
 */
async function loadPhase(runs: (RowRun & { url: string })[], o: Options): Promise<void> {
  log(
    `  load: ${o.loadRounds} interleaved rounds over ${runs.length} rows (flat out ${o.loadSeconds} s, ${o.rate} req/s ${o.rateSeconds} s)`,
  );
  const env = { ...process.env, BG_RATE: String(o.rate), BG_THREADS: String(THREADS) };
  for (let round = 0; round < o.loadRounds; round++) {
    for (const r of round % 2 === 0 ? runs : [...runs].reverse()) {
      const flat = parseWrk(await startWrk(r.url, [], env, o.loadSeconds).done);
      const router0 = cpuNs(r.row.routerPids());
      const app0 = cpuNs(r.row.appPids());
      const fixed = parseWrk(await startWrk(r.url, ["-s", RATE_LUA], env, o.rateSeconds).done);
      const per10k = (s: number) => (s / fixed.requests) * 10_000;
      const routerCpu = per10k(cpuSeconds(router0, cpuNs(r.row.routerPids())));
      const appCpu = per10k(cpuSeconds(app0, cpuNs(r.row.appPids())));
      r.load.push({ flat, fixed, routerCpu, appCpu });
      log(
        `  ${r.row.name}: ${int(flat.rps)} req/s, p99 ${flat.p99ms.toFixed(1)} ms; at ${int(fixed.rps)} req/s ` +
          `router ${routerCpu.toFixed(3)} s, apps ${appCpu.toFixed(3)} s CPU per 10k`,
      );
    }
  }
}

// ---------------------------------------------------------------- statistics

function quantile(xs: number[], q: number): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] : NaN;
}
const median = (xs: number[]) => quantile(xs, 0.5);
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/**
 * Per switch, ms from the first response of the new colour to the last
 * response of the old one, among the load's responses from the switch's start
 * until the next switch (0 if the old colour's last answer came first). Exact
 * to the µs: record.lua keeps each colour's first and last response per bucket.
 */
function mixedWindows(r: RowRun): number[] {
  const s = r.series;
  const w = s.bucket_us;
  return r.switches.map((sw, i) => {
    const endUs = i + 1 < r.switches.length ? r.switches[i + 1].t0Us : r.stopUs;
    const from = Math.floor((sw.t0Us - s.origin_us) / w);
    const to = Math.min(Math.floor((endUs - s.origin_us) / w) - 1, s.sent.length - 1);
    const first = firstOf(s, sw.target);
    const last = lastOf(s, otherColor(sw.target));
    let firstNew = Infinity;
    let lastOld = -Infinity;
    for (let b = from; b <= to; b++) {
      const f = first[b];
      const l = last[b];
      if (f !== null && f !== undefined && f < firstNew) firstNew = f;
      if (l !== null && l !== undefined && l > lastOld) lastOld = l;
    }
    if (firstNew === Infinity) return NaN;
    return Math.max(0, lastOld - firstNew) / 1000;
  });
}

/** 2xx responses per second in the buckets at least QUIET_US away from every switch and from the load's start and end. */
function quietThroughput(r: RowRun): number {
  const s = r.series;
  const w = s.bucket_us;
  let responses = 0;
  let buckets = 0;
  for (let b = 0; b < s.ok.length; b++) {
    const start = s.origin_us + b * w;
    const end = start + w;
    if (start < s.origin_us + QUIET_US || end > r.stopUs - QUIET_US) continue;
    if (r.switches.some((sw) => end > sw.t0Us - QUIET_US && start < sw.doneUs + QUIET_US)) continue;
    responses += s.ok[b];
    buckets++;
  }
  return buckets ? responses / ((buckets * w) / 1e6) : NaN;
}

interface RowStats {
  readonly resets: number;
  readonly connect: number;
  readonly read: number;
  readonly write: number;
  readonly timeouts: number;
  readonly non2xx: number;
  readonly failed: number;
  readonly requests: number;
  readonly switchMs: number[];
  readonly returnedMs: number[];
  readonly probes: number[];
  readonly mixedMs: number[];
  /** 2xx per second between switches (the switch run). */
  readonly betweenRps: number;
  /** Medians of the interleaved rounds: flat-out req/s and p99; router and app CPU s per 10k at the fixed rate, its achieved rate and p99. */
  readonly rps: number;
  readonly p99ms: number;
  readonly routerCpu: number;
  readonly appCpu: number;
  readonly rateRps: number;
  readonly rateP99ms: number;
  readonly plainRps: number;
  readonly luaRps: number;
  /** Median over rounds of (wrk + record.lua) / (wrk alone) - 1, each pair run back to back. */
  readonly luaCost: number;
  /** Requests lost by the end of the switch run, by the timeline (lostSoFar). */
  readonly lostByTimeline: number;
}

function stats(r: RowRun): RowStats {
  const w = r.series.summary;
  const non2xx = sum(r.series.non2xx);
  const resets = w.connect + w.read + w.write;
  return {
    resets,
    connect: w.connect,
    read: w.read,
    write: w.write,
    timeouts: w.timeout,
    non2xx,
    failed: resets + w.timeout + non2xx,
    requests: w.requests,
    switchMs: r.switches.map((s) => (s.doneUs - s.t0Us) / 1000),
    returnedMs: r.switches.map((s) => (s.returnedUs - s.t0Us) / 1000),
    probes: r.switches.map((s) => s.probes),
    mixedMs: mixedWindows(r),
    betweenRps: quietThroughput(r),
    rps: median(r.load.map((x) => x.flat.rps)),
    p99ms: median(r.load.map((x) => x.flat.p99ms)),
    routerCpu: median(r.load.map((x) => x.routerCpu)),
    appCpu: median(r.load.map((x) => x.appCpu)),
    rateRps: median(r.load.map((x) => x.fixed.rps)),
    rateP99ms: median(r.load.map((x) => x.fixed.p99ms)),
    plainRps: median(r.plain.map((x) => x.rps)),
    luaRps: median(r.lua.map((x) => x.rps)),
    luaCost: median(r.plain.map((p, i) => r.lua[i].rps / p.rps - 1)),
    lostByTimeline: lostSoFar(r.series).at(-1) ?? 0,
  };
}

// ---------------------------------------------------------------- output

const log = (line: string) => console.error(line);
const ms = (x: number) => (Number.isNaN(x) ? "n/a" : x < 10 ? x.toFixed(1) : x.toFixed(0));
const int = (x: number) => Math.round(x).toLocaleString("en-US");

let startLoad = os.loadavg();

function machine(command: string): string[] {
  const pkgs = run("dpkg-query", [
    "-W",
    "-f",
    "${Package} ${Version}\\n",
    "nginx",
    "haproxy",
    "caddy",
    "wrk",
    "gnuplot-nox",
  ]);
  const load = (l: number[]) => l.map((x) => x.toFixed(1)).join(" ");
  return [
    `Machine: \`nproc\` ${run("nproc", []).stdout.trim()}, ${os.cpus()[0]?.model ?? "unknown CPU"}, ` +
      `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${os.release()}, ${new Date().toISOString()}; ` +
      `load average ${load(startLoad)} at the start, ${load(os.loadavg())} at the end (1, 5, 15 min)`,
    `Command: \`${command}\``,
    `Packages (Debian): ${pkgs.stdout.trim().split("\n").join(", ")}`,
  ];
}

function table(results: (RowRun | { row: Row; error: string })[], o: Options): string[] {
  const lines = [
    "| row | failed requests per switch (resets, non-2xx, timeouts) | switch time, median / p95 | mixed-version window, median / p95 | " +
      `throughput, no switches | p99 latency | router CPU per 10k requests at ${int(o.rate)} req/s |`,
    "|---|---|---|---|---|---|---|",
  ];
  for (const r of results) {
    if ("error" in r) {
      lines.push(`| ${r.row.name} | failed: ${r.error.split("\n")[0].replace(/\|/g, "\\|")} | | | | | |`);
      continue;
    }
    const s = stats(r);
    const n = r.switches.length;
    lines.push(
      `| ${r.row.name} | ${(s.failed / n).toFixed(2)} (${int(s.failed)} in ${n}: resets ${int(s.resets)}, ` +
        `non-2xx ${int(s.non2xx)}, timeouts ${int(s.timeouts)}; requests never answered: ${int(s.lostByTimeline)}) ` +
        `| ${ms(median(s.switchMs))} / ${ms(quantile(s.switchMs, 0.95))} ms ` +
        `| ${ms(median(s.mixedMs))} / ${ms(quantile(s.mixedMs, 0.95))} ms ` +
        `| ${int(s.rps)} req/s | ${s.p99ms.toFixed(1)} ms | ${s.routerCpu.toFixed(3)} s |`,
    );
  }
  return lines;
}

function notes(results: (RowRun | { row: Row; error: string })[], o: Options): string[] {
  const done = results.filter((r): r is RowRun => !("error" in r));
  const out = [
    "",
    `- **Load:** wrk ${THREADS} threads, ${CONNECTIONS} keep-alive connections, \`--timeout ${WRK_TIMEOUT}\`, ` +
      `for the whole row; ${o.switches} switches, one every ${o.spacingMs} ms from ${o.warmupMs} ms in, alternating green/blue. ` +
      "Rows run one after another on the same machine.",
    "- **Failed requests per switch:** all of the row's failures over the number of switches. Resets are wrk's " +
      "connect + read + write errors: wrk counts one whenever a connection is refused, reset or closed without " +
      "`Connection: close`, whether or not a request was on it. Non-2xx are responses outside 200-299, timeouts " +
      `answers slower than ${WRK_TIMEOUT}. *Requests never answered*: requests wrk sent that got no answer (a reset ` +
      "with a request on the connection, or a hang), from record.lua's timeline: sent - answered is one per busy " +
      "connection (at most 64, wrk never pipelines) plus every such request, so the running maximum of " +
      "sent - answered - 64 is a lower bound, exact whenever every connection is busy.",
    "- **Switch time:** from starting the row's switch command until the command has returned *and* a fresh curl " +
      "connection to the public address answers with the new colour (`X-Bluegreen-Color`); curl is run back to " +
      "back after the command returns, so the figure includes one curl start (a few ms).",
    "- **Mixed-version window:** per switch, from the first response of the new colour to the last response of " +
      "the old colour among the load's responses (0 if the old colour's last came first), from the switch's start " +
      "to the next switch; timestamps are wrk's wall clock at each response, µs (record.lua keeps each colour's " +
      "first and last per 50 ms bucket).",
    `- **Throughput, p99 latency, router CPU:** once every row has switched, with every row up, ${o.loadRounds} ` +
      "interleaved rounds, each row in turn (the order reversed every other round, so the machine's drift and other " +
      `programs' load fall on every row alike): wrk alone flat out for ${o.loadSeconds} s (throughput: its req/s; ` +
      `its p99), then wrk held to ${int(o.rate)} req/s for ${o.rateSeconds} s (test/bench/peers/rate.lua), during ` +
      "which the CPU time of every thread of the router's processes (master and workers, or its one process) is " +
      "read from /proc (schedstat), per 10,000 requests answered. Medians of the rounds. Every row's router runs " +
      "in a session of its own (as a daemon or a systemd service does; Linux shares CPU between sessions' " +
      "autogroups), the apps and wrk in the bench's. *Between switches* (in the notes below): 2xx per second in " +
      `the switch run's 50 ms buckets at least ${QUIET_US / 1000} ms before each switch's start and after it was done.`,
    "- **Plot** (`peers.svg`): per row, 2xx responses per second (100 ms bins), and in each bin the requests " +
      "never answered (red) and non-2xx responses (orange); a dashed line where each switch starts.",
    "",
  ];
  for (const r of done) {
    const s = stats(r);
    out.push(
      `- **${r.row.name}.** Upstream: ${r.row.upstream}. Switch: ${r.row.switchCommand}.` +
        (r.row.notes ? ` ${r.row.notes}.` : "") +
        ` Command alone returned in ${ms(median(s.returnedMs))} / ${ms(quantile(s.returnedMs, 0.95))} ms (median / p95); ` +
        `curl probes per switch: median ${median(s.probes)}, max ${Math.max(...s.probes)} ` +
        `(one probe alone, no load: ${ms(r.probeMs)} ms). ` +
        `Between switches ${int(s.betweenRps)} req/s; at the fixed rate: ${int(s.rateRps)} req/s achieved, p99 ` +
        `${s.rateP99ms.toFixed(1)} ms, the app pair's CPU ${s.appCpu.toFixed(3)} s per 10k requests. ` +
        `${int(s.requests)} requests; resets: connect ${s.connect}, read ${s.read}, write ${s.write}; ` +
        `wrk's own non-2xx count ${r.series.summary.status}. ${r.diagnosis}.`,
    );
  }
  out.push(
    "",
    `record.lua's cost: the same row with no switches, ${o.checkRounds} pairs of ${o.checkSeconds} s runs back to back ` +
      "(wrk alone, then with the script; the order alternates), medians:",
    "",
    "| row | wrk alone, req/s | wrk + record.lua, req/s | difference (median of the pairs) |",
    "|---|---|---|---|",
  );
  for (const r of done) {
    const s = stats(r);
    out.push(`| ${r.row.name} | ${int(s.plainRps)} | ${int(s.luaRps)} | ${(s.luaCost * 100).toFixed(1)} % |`);
  }
  const pairs = done.flatMap((r) => r.plain.map((p, i) => r.lua[i].rps / p.rps - 1));
  out.push(
    `| all rows, ${pairs.length} pairs | | | ${(median(pairs) * 100).toFixed(1)} % ` +
      `(quartiles ${(quantile(pairs, 0.25) * 100).toFixed(1)} / ${(quantile(pairs, 0.75) * 100).toFixed(1)} %) |`,
  );
  return out;
}

/**
 * Requests lost by the end of each bucket, from the timeline alone: sent -
 * answered is one per busy connection (at most CONNECTIONS, as wrk never
 * pipelines) plus every request that never got an answer, so the running
 * maximum of (sent - answered - CONNECTIONS) is a lower bound on the lost
 * requests so far, exact whenever every connection is busy (almost always
 * under this load). wrk's reset count says the same in total (table notes).
 */
function lostSoFar(s: Series): number[] {
  let outstanding = 0;
  let lost = 0;
  return s.sent.map((sent, b) => {
    outstanding += sent - s.ok[b] - s.non2xx[b];
    lost = Math.max(lost, outstanding - CONNECTIONS);
    return lost;
  });
}

/** The plot's data: 100 ms bins per row, and a gnuplot file per panel (title, ranges, one arrow per switch). */
function writePlot(results: RowRun[], o: Options, dir: string, svg: string): void {
  requireTool("gnuplot", "apt-get install -y gnuplot-nox");
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const BIN = 2; // buckets per bin: 100 ms
  let yMax = 0;
  let errMax = 0;
  const panels = results.map((r) => {
    const s = r.series;
    const lost = lostSoFar(s);
    const rows: string[] = [];
    const binS = (BIN * s.bucket_us) / 1e6;
    // Full bins only, from the second (the first holds every connection's first request).
    for (let b = BIN; b + BIN <= s.sent.length; b += BIN) {
      const at = (k: number[]) => sum(k.slice(b, b + BIN));
      const ok = at(s.ok);
      const bad = at(s.non2xx);
      const newlyLost = lost[b + BIN - 1] - lost[b - 1];
      yMax = Math.max(yMax, ok / binS);
      errMax = Math.max(errMax, newlyLost, bad);
      const t = ((b * s.bucket_us) / 1e6 + binS / 2).toFixed(2);
      rows.push([t, Math.round(ok / binS), newlyLost, bad, at(s.sent) - ok - bad].join("\t"));
    }
    return { r, rows, endS: (r.stopUs - s.origin_us) / 1e6 };
  });
  panels.forEach(({ r, rows, endS }, i) => {
    const s = stats(r);
    fs.writeFileSync(
      path.join(dir, `${i + 1}.tsv`),
      `# t_s\tok_per_s\tlost\tnon2xx\tsent_minus_answered\n${rows.join("\n")}\n`,
    );
    const title =
      `${r.row.name}: ${(s.failed / r.switches.length).toFixed(2)} failed per switch, ` +
      `switch ${ms(median(s.switchMs))} ms, mixed ${ms(median(s.mixedMs))} ms (medians)`;
    const at = (sw: SwitchRecord) => ((sw.t0Us - r.series.origin_us) / 1e6).toFixed(3);
    fs.writeFileSync(
      path.join(dir, `${i + 1}.gp`),
      [
        `set title ${JSON.stringify(title.replace(/`/g, ""))}`,
        `set xrange [0:${endS.toFixed(1)}]`,
        `set yrange [0:${Math.ceil((yMax * 1.05) / 5000) * 5000}]`,
        `set y2range [0:${Math.max(10, Math.ceil((errMax * 1.1) / 10) * 10)}]`,
        ...r.switches.map(
          (sw) =>
            `set arrow from first ${at(sw)}, graph 0 to first ${at(sw)}, graph 1 nohead lc rgb "#b0b0b0" dt 2 lw 0.6`,
        ),
        "",
      ].join("\n"),
    );
  });
  const g = run("gnuplot", ["-c", PLOT, dir, String(results.length), svg]);
  if (g.status !== 0) throw new Error(`gnuplot: ${g.stderr}`);
  if (g.stderr.trim()) log(`gnuplot: ${g.stderr.trim()}`);
}

// ---------------------------------------------------------------- main

export async function runPeers(args: string[]): Promise<void> {
  startLoad = os.loadavg();
  const o = options(args);
  for (const t of ["wrk", "nginx", "haproxy", "caddy", "curl", "gnuplot"]) {
    requireTool(t, `apt-get install -y ${t === "gnuplot" ? "gnuplot-nox" : t}`);
  }
  const stop = (signal: string) => {
    log(`\n${signal}: stopping every process this bench started`);
    runCleanups();
    process.exit(130);
  };
  process.once("SIGINT", () => stop("SIGINT"));
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("exit", runCleanups);

  buildDemoApp("v1");
  buildDemoApp("v2");
  fs.mkdirSync(o.out, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bg-peers-wrk-"));
  onExit(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const command = `npm run bench -- ${args.join(" ")}`;
  const rows = [...(o.baseline ? baselineRows(o.baseline) : []), ...ROWS]
    .map((make) => make())
    .filter((r) => !o.only || o.only.includes(r.id));
  log(`peers: ${rows.length} rows: ${rows.map((r) => r.id).join(", ")}`);
  const results: (RowRun | { row: Row; error: string })[] = [];
  const up: (RowRun & { url: string })[] = [];
  try {
    for (const row of rows) {
      try {
        const r = await runRow(row, o, tmp);
        results.push(r);
        up.push(r);
      } catch (e) {
        const error = e instanceof Error ? e.message : String(e);
        log(`  ${row.name}: FAILED: ${error}`);
        results.push({ row, error });
        await row.teardown().catch(() => undefined);
      }
    }
    await loadPhase(up, o);
  } finally {
    for (const r of up) await r.row.teardown().catch(() => undefined);
  }

  const done = results.filter((r): r is RowRun => !("error" in r));
  const host = machine(command);
  const text = [...host, "", ...table(results, o), ...notes(results, o)].join("\n");
  const svg = path.join(o.out, "peers.svg");
  fs.writeFileSync(path.join(o.out, "peers-table.md"), `${text}\n`);
  fs.writeFileSync(
    path.join(o.out, "peers-series.json"),
    JSON.stringify({
      command,
      machine: host,
      options: o,
      rows: done.map((r) => ({
        id: r.row.id,
        name: r.row.name,
        upstream: r.row.upstream,
        switchCommand: r.row.switchCommand,
        switches: r.switches,
        stopUs: r.stopUs,
        stats: stats(r),
        diagnosis: r.diagnosis,
        series: r.series,
      })),
    }),
  );
  if (done.length) writePlot(done, o, path.join(o.out, "peers-plot"), svg);
  console.log(`\n${text}\n`);
  log(`wrote ${svg}, ${path.join(o.out, "peers-series.json")}, ${path.join(o.out, "peers-table.md")}`);
  runCleanups();
}
