"use strict";
// The Node.js twin of the Go demo app (app/main.go): a tiny HTTP server that knows its
// slot colour and version, reports readiness, and drains on SIGTERM so a slot restart
// never cuts an in-flight request. On top of that it shows the two things a blue-green
// app has to get right when both colours run at once against one data directory:
//
//   * /visits: a counter in SQLite ($BLUEGREEN_DATA_DIR/app.db) shared by both colours.
//     The schema belongs to migrations (migrate.js applies migrations/*.sql); this
//     server creates nothing, not even app.db. Until `node migrate.js` has run, /visits
//     and /jobs answer 503 "schema not migrated" while the health endpoints work as
//     usual. Migration 0002 adds visits.last_color (the expand step of expand/contract):
//     the server looks for that column at startup and again, at most once a second,
//     until it appears, so a process started before the migration keeps working and
//     starts recording last_color once the column exists.
//   * a background job that only the live slot runs: every JOB_INTERVAL_MS it
//     reads BLUEGREEN_ACTIVE_FILE and, only if that names this colour, records a row in
//     job_runs. /jobs shows the last 10 rows.
//
// Node.js standard library only (CommonJS, Node >= 18.19). SQLite is reached through
// the sqlite3 command-line shell (Debian's sqlite3 package): one long-lived child per
// process, queries sent one at a time; see class Sqlite below.
//
// Environment (set by the slot's systemd unit; FAULT_DIR and JOB_INTERVAL_MS through appEnv):
//   BLUEGREEN_LISTEN          unix:/path/to.sock or HOST:PORT (default 127.0.0.1:8001)
//   BLUEGREEN_COLOR           slot colour (default blue)
//   BLUEGREEN_VERSION         release version (default dev)
//   BLUEGREEN_DATA_DIR        shared writable data directory (default: working directory)
//   BLUEGREEN_ACTIVE_FILE     file holding the live colour (default /var/lib/bluegreen/active)
//   BLUEGREEN_DRAIN_TIMEOUT   seconds SIGTERM waits for in-flight requests (default 25)
//   FAULT_DIR                 optional demo fault injection: <color>.unready makes
//                             /health/ready 503, <color>.error500 makes / answer 500
//   JOB_INTERVAL_MS           background job period (default 2000)

const fs = require("fs");
const http = require("http");
const path = require("path");
const { spawn } = require("child_process");

const SHUTDOWN_DELAY_MS = 1000; // readiness is 503 this long before the listener closes
const SCHEMA_RECHECK_MS = 1000; // how often a missing column is looked for again
const QUERY_TIMEOUT_MS = 30000; // a query not answered by then restarts the sqlite3 child
const BUSY_TIMEOUT_MS = 5000; // sqlite's busy timeout: both colours write the same file
const NOT_MIGRATED = "schema not migrated: run node migrate.js\n";

const env = process.env;
const listen = env.BLUEGREEN_LISTEN || "127.0.0.1:8001";
const color = env.BLUEGREEN_COLOR || "blue";
const version = env.BLUEGREEN_VERSION || "dev";
const dataDir = env.BLUEGREEN_DATA_DIR || process.cwd();
const activeFile = env.BLUEGREEN_ACTIVE_FILE || "/var/lib/bluegreen/active";
const faultDir = env.FAULT_DIR || "";
const drainTimeoutS = parseNumber(
  "BLUEGREEN_DRAIN_TIMEOUT",
  String(env.BLUEGREEN_DRAIN_TIMEOUT || "").replace(/s$/, ""),
  25,
  0,
);
const jobIntervalMs = parseNumber("JOB_INTERVAL_MS", env.JOB_INTERVAL_MS, 2000, 10);
const dbPath = path.join(dataDir, "app.db");
const started = Date.now();

let draining = false;
let inFlight = 0;

// ---------------------------------------------------------------------------
// Logging: one line per event on stderr, stamped like Go's log package.

function log(msg) {
  const d = new Date();
  const p = (n) => String(n).padStart(2, "0");
  const stamp = `${d.getFullYear()}/${p(d.getMonth() + 1)}/${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  process.stderr.write(`${stamp} ${msg}\n`);
}

function parseNumber(name, raw, fallback, min) {
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) {
    log(`${name}=${raw} is not a number >= ${min}; using ${fallback}`);
    return fallback;
  }
  return n;
}

// ---------------------------------------------------------------------------
// SQLite through one long-lived `sqlite3 -batch` child.
//
// Queries are queued and written to the child's stdin one at a time. Each is followed
// by two marker lines: `SELECT __bg_err_N__;` fails on purpose, so its error message
// marks the end of query N's stderr, and `SELECT '__bg_end_N__';` marks the end of its
// stdout. Both streams are ordered on their own, so once both markers have arrived
// everything query N printed is in, whatever the interleaving of the two pipes. Any
// other stderr line fails that query (the caller gets sqlite's message) and the next
// query goes on as usual. The marker lines are separate input lines because the shell
// skips the rest of a line after an error.
//
// Output is `-list` with `|` between columns. Every text column is selected through
// hex() and decoded here, so values can hold any character; numbers are checked with a
// regular expression before use. Only single autocommit statements are sent (never
// BEGIN ... COMMIT), so a failed query can never leave a transaction, or a lock, open.
//
// The child runs through `sh -c 'trap "" INT TERM; exec sqlite3 ...'` in its own process
// group: systemd's stop sends SIGTERM to every process of the unit, and the database
// must outlive the drain. The ignored signals carry over exec. It still exits when its
// stdin closes, so it never outlives this process. If it dies anyway, the query it was
// running fails and the next query starts a new one.

class Sqlite {
  constructor(file) {
    this.file = file;
    this.child = null;
    this.queue = [];
    this.current = null;
    this.seq = 0;
    this.closed = false;
    this.restartAt = 0;
    this.restartTimer = null;
  }

  /** Runs SQL (one or more statements ending in ';'); resolves to rows of column strings. */
  query(sql) {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new Error("sqlite: closed"));
      this.queue.push({ sql: sql.trim().endsWith(";") ? sql.trim() : `${sql.trim()};`, resolve, reject });
      this.pump();
    });
  }

  pump() {
    if (this.current || this.queue.length === 0 || this.restartTimer) return;
    if (!this.child) {
      if (!fs.existsSync(this.file)) {
        // Never create app.db: that is migrate.js's job (and its owner and mode with it).
        const err = new Error(`sqlite: ${this.file} does not exist`);
        err.notMigrated = true;
        for (const job of this.queue.splice(0)) job.reject(err);
        return;
      }
      const wait = this.restartAt - Date.now();
      if (wait > 0) {
        this.restartTimer = setTimeout(() => {
          this.restartTimer = null;
          this.pump();
        }, wait);
        return;
      }
      this.start();
    }
    const job = this.queue.shift();
    job.n = ++this.seq;
    job.out = [];
    job.err = [];
    job.gotOut = false;
    job.gotErr = false;
    job.timer = setTimeout(() => this.kill(`query timed out after ${QUERY_TIMEOUT_MS} ms`), QUERY_TIMEOUT_MS);
    this.current = job;
    this.child.stdin.write(`${job.sql}\nSELECT __bg_err_${job.n}__;\nSELECT '__bg_end_${job.n}__';\n`);
  }

  start() {
    const args = ["-batch", "-init", "/dev/null", "-noheader", "-list", "-separator", "|"];
    // synchronous=NORMAL: in WAL mode (migrate.js sets it) a commit no longer waits for an
    // fsync; a power cut may lose the last commits but never corrupts the file. About
    // twice the /visits throughput on a small VM.
    args.push("-cmd", `.timeout ${BUSY_TIMEOUT_MS}`, "-cmd", "PRAGMA synchronous = NORMAL;", this.file);
    const child = spawn("/bin/sh", ["-c", 'trap "" INT TERM; exec sqlite3 "$@"', "sqlite3", ...args], {
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
    });
    const state = { startedAt: Date.now(), tail: [] }; // tail: its last stderr lines, for the exit message
    this.child = child;
    child.stdin.on("error", () => {}); // EPIPE when it died: reported by 'close'
    // Lines from a child already replaced (killed after a timeout) are dropped.
    lines(child.stdout, (line) => this.child === child && this.onStdout(line));
    lines(child.stderr, (line) => this.child === child && this.onStderr(line, state));
    const gone = (why) => {
      if (this.child !== child) return;
      this.child = null;
      const detail = state.tail.length ? `: ${state.tail.join(" ")}` : "";
      const err = new Error(`sqlite: sqlite3 ${why}${detail}`);
      if (!this.closed) log(err.message);
      // A child that died at once (no sqlite3, unreadable file) is not restarted in a loop.
      if (Date.now() - state.startedAt < 1000) this.restartAt = Date.now() + 1000;
      this.finish(err);
      this.pump(); // when nothing was running, for what is queued
    };
    child.on("error", (e) => gone(`could not start (${e.message})`));
    child.on("close", (code, signal) => gone(`exited (${signal || `code ${code}`})`));
  }

  onStdout(line) {
    const job = this.current;
    if (!job) return;
    if (line === `__bg_end_${job.n}__`) {
      job.gotOut = true;
      if (job.gotErr) this.finish();
    } else {
      job.out.push(line);
    }
  }

  onStderr(line, state) {
    const marker = /__bg_err_(\d+)__/.exec(line);
    if (/^\s/.test(line) || (marker && Number(marker[1]) !== this.current?.n)) return; // error context lines
    if (marker) {
      this.current.gotErr = true;
      if (this.current.gotOut) this.finish();
      return;
    }
    state.tail = [...state.tail.slice(-4), line];
    // "Parse error near line 3: no such table: x" -> "no such table: x"
    const msg = line.replace(/^(?:parse |runtime )?error:?\s*/i, "").replace(/^near line \d+:\s*/i, "");
    if (this.current) this.current.err.push(msg);
    else log(`sqlite: ${line}`);
  }

  /** Settles the current query: with its rows, its stderr as an error, or `err`. */
  finish(err) {
    const job = this.current;
    if (!job) return;
    this.current = null;
    clearTimeout(job.timer);
    if (err) job.reject(err);
    else if (job.err.length) job.reject(new Error(`sqlite: ${job.err.join("; ")}`));
    else job.resolve(job.out.map((l) => l.split("|")));
    this.pump();
  }

  kill(why) {
    const child = this.child;
    if (!child) return;
    log(`sqlite: ${why}; restarting sqlite3`);
    this.child = null; // its 'close' is then ignored, and the next query starts a new one
    child.kill("SIGKILL");
    this.finish(new Error(`sqlite: ${why}`));
  }

  /** Fails what is queued, ends the child (EOF on its stdin) and waits for it, 2 s at most. */
  close() {
    this.closed = true;
    clearTimeout(this.restartTimer);
    for (const job of this.queue.splice(0)) job.reject(new Error("sqlite: closed"));
    const child = this.child;
    if (!child) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        child.kill("SIGKILL");
        resolve();
      }, 2000);
      child.once("close", () => {
        clearTimeout(t);
        resolve();
      });
      child.stdin.end();
    });
  }
}

function lines(stream, onLine) {
  let buf = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk) => {
    buf += chunk;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      onLine(buf.slice(0, i).replace(/\r$/, ""));
      buf = buf.slice(i + 1);
    }
  });
}

const sqlQuote = (s) => `'${String(s).replace(/'/g, "''")}'`;
const unhex = (h) => Buffer.from(h || "", "hex").toString("utf8");
function int(s) {
  if (!/^-?\d+$/.test(String(s ?? "").trim())) throw new Error(`sqlite: expected an integer, got ${JSON.stringify(s)}`);
  return Number(String(s).trim());
}

const db = new Sqlite(dbPath);

// ---------------------------------------------------------------------------
// Which tables and columns exist, read until everything this version can use is there;
// a query failing on a missing table or column reads it again.

const schema = { checkedAt: 0, visits: false, jobRuns: false, lastColor: false, pending: null, logged: "" };

function getSchema() {
  // Not migrated at all: look on every request (cheap, and short-lived). Migrated but
  // without last_color: look again at most once a second, not on every /visits.
  const complete = schema.visits && schema.jobRuns && schema.lastColor;
  const fresh = schema.visits && Date.now() - schema.checkedAt < SCHEMA_RECHECK_MS;
  if (schema.checkedAt && (complete || fresh)) {
    return Promise.resolve(schema);
  }
  if (!schema.pending) {
    schema.pending = readSchema().finally(() => {
      schema.pending = null;
    });
  }
  return schema.pending;
}

async function readSchema() {
  let rows = [];
  try {
    rows = await db.query(
      "SELECT 'table', name FROM sqlite_master WHERE type = 'table' AND name IN ('visits', 'job_runs'); " +
        "SELECT 'column', name FROM pragma_table_info('visits') WHERE name = 'last_color';",
    );
  } catch (e) {
    if (!e.notMigrated) throw e;
  }
  const has = (kind, name) => rows.some((r) => r[0] === kind && r[1] === name);
  const next = {
    visits: has("table", "visits"),
    jobRuns: has("table", "job_runs"),
    lastColor: has("column", "last_color"),
  };
  const what = !next.visits
    ? "not migrated (no visits table); /visits answers 503 until migrate.js runs"
    : next.lastColor
      ? "visits.last_color present; /visits records the last colour"
      : `visits.last_color absent; /visits counts only (looking again every ${SCHEMA_RECHECK_MS} ms)`;
  if (what !== schema.logged) log(`schema: ${what}`);
  schema.logged = what;
  Object.assign(schema, next, { checkedAt: Date.now() });
  return schema;
}

const missingSchema = (e) => /no such (table|column)/.test(e.message);

// ---------------------------------------------------------------------------
// The job only the live slot runs.

let jobTimer = null;
let jobState = ""; // last logged state, so a failing job logs once, not every tick

async function isLive() {
  try {
    return (await fs.promises.readFile(activeFile, "utf8")).trim() === color;
  } catch {
    return false;
  }
}

function jobLog(state, msg) {
  if (state !== jobState) log(msg);
  jobState = state;
}

async function runJob() {
  jobTimer = null;
  if (draining) return;
  try {
    if (await isLive()) {
      await db.query(
        `INSERT INTO job_runs(color, version, at) VALUES (${sqlQuote(color)}, ${sqlQuote(version)}, ${sqlQuote(new Date().toISOString())}); ` +
          "DELETE FROM job_runs WHERE id <= (SELECT max(id) FROM job_runs) - 100;",
      );
      jobLog("live", `job: ${color} is live; recording a job run every ${jobIntervalMs} ms`);
    } else {
      jobLog("idle", `job: ${color} is not live; the job does not run here`);
    }
  } catch (e) {
    jobLog(`error ${e.message}`, `job: ${e.notMigrated ? NOT_MIGRATED.trim() : e.message}`);
  }
  if (!draining) jobTimer = setTimeout(runJob, jobIntervalMs);
}

// ---------------------------------------------------------------------------
// HTTP.

function send(res, status, body, type = "text/plain; charset=utf-8") {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.statusCode = status;
  res.setHeader("Content-Type", type);
  if (status >= 400) res.setHeader("X-Content-Type-Options", "nosniff");
  res.setHeader("Content-Length", Buffer.byteLength(body));
  res.end(body);
}

function fault(kind) {
  return faultDir !== "" && fs.existsSync(path.join(faultDir, `${color}.${kind}`));
}

async function visits(res) {
  for (let attempt = 0; ; attempt++) {
    const s = await getSchema();
    if (!s.visits) return send(res, 503, NOT_MIGRATED);
    const sql = s.lastColor
      ? `UPDATE visits SET count = count + 1, last_color = ${sqlQuote(color)} WHERE id = 1 RETURNING count, hex(last_color);`
      : "UPDATE visits SET count = count + 1 WHERE id = 1 RETURNING count;";
    let rows;
    try {
      rows = await db.query(sql);
    } catch (e) {
      // The schema changed under us (a migration, or a contract step): look again, retry once.
      if (attempt === 0 && (e.notMigrated || missingSchema(e))) {
        schema.checkedAt = 0;
        continue;
      }
      throw e;
    }
    if (rows.length !== 1) throw new Error(`visits: expected one row, got ${rows.length}`);
    const n = int(rows[0][0]);
    return send(res, 200, s.lastColor ? `visits ${n} last_color ${unhex(rows[0][1])}\n` : `visits ${n}\n`);
  }
}

async function jobs(res) {
  const s = await getSchema();
  if (!s.jobRuns) return send(res, 503, NOT_MIGRATED);
  const rows = await db.query("SELECT id, hex(color), hex(version), hex(at) FROM job_runs ORDER BY id DESC LIMIT 10;");
  const list = rows.map((r) => ({ id: int(r[0]), color: unhex(r[1]), version: unhex(r[2]), at: unhex(r[3]) }));
  return send(res, 200, JSON.stringify(list) + "\n", "application/json");
}

async function status(res) {
  // Keys in Go's order (encoding/json sorts map keys), plus the runtime.
  const body = {
    color,
    draining,
    live: await isLive(),
    pid: process.pid,
    runtime: "node",
    uptime_s: Math.floor((Date.now() - started) / 1000),
    version,
  };
  send(res, 200, JSON.stringify(body) + "\n", "application/json");
}

function slow(req, res, query) {
  // Like Go's strconv.Atoi: not a number is 0; out of range is the one-minute maximum.
  const raw = query.get("ms") || "";
  let ms = /^[+-]?\d+$/.test(raw) ? Number(raw) : 0;
  if (ms < 0 || ms > 60000) ms = 60000;
  const t = setTimeout(() => send(res, 200, `${color} ${version} slept ${ms}ms\n`), ms);
  res.once("close", () => clearTimeout(t));
}

function handle(req, res) {
  inFlight++;
  res.once("close", () => inFlight--);
  res.setHeader("X-Bluegreen-Color", color);
  res.setHeader("X-Bluegreen-Version", version);
  if (draining) res.setHeader("Connection", "close"); // no new keep-alive while going away
  const url = req.url || "/";
  const q = url.indexOf("?");
  const pathname = q < 0 ? url : url.slice(0, q);
  const query = new URLSearchParams(q < 0 ? "" : url.slice(q + 1));
  const fail = (e) => {
    log(`${req.method} ${pathname}: ${e.message}`);
    send(res, 500, `${e.message}\n`);
  };
  switch (pathname) {
    case "/healthz":
    case "/health/live":
      return send(res, 200, "ok\n");
    case "/health/ready":
      if (draining) return send(res, 503, "draining\n");
      if (fault("unready")) return send(res, 503, "not ready (fault injected)\n");
      return send(res, 200, "ready\n");
    case "/status":
      return void status(res).catch(fail);
    case "/slow":
      return slow(req, res, query);
    case "/visits":
      return void visits(res).catch(fail);
    case "/jobs":
      return void jobs(res).catch(fail);
    default:
      // Every other path is "/", as with Go's ServeMux.
      if (fault("error500")) return send(res, 500, `${color} ${version} failing (fault injected)\n`);
      return send(res, 200, `${color} ${version}\n`);
  }
}

const server = http.createServer(handle);
// Longer than nginx's upstream keepalive_timeout (60 s), so nginx closes idle connections
// first and never sends a request on one this side is closing. headersTimeout stays above
// keepAliveTimeout, the long-standing Node advice for servers behind a proxy.
server.keepAliveTimeout = 75000;
server.headersTimeout = 76000;

async function shutdown(sig) {
  if (draining) return;
  draining = true;
  clearTimeout(jobTimer);
  log(
    `${sig}: readiness is 503; draining ${inFlight} in-flight request(s) after ${SHUTDOWN_DELAY_MS / 1000}s, up to ${drainTimeoutS}s`,
  );
  await new Promise((r) => setTimeout(r, SHUTDOWN_DELAY_MS));
  const closed = new Promise((r) => server.close(() => r(true)));
  server.closeIdleConnections();
  log(`listener closed; waiting for ${inFlight} in-flight request(s)`);
  // Connections that finish their request go idle: close them as they do.
  const sweep = setInterval(() => server.closeIdleConnections(), 100);
  let timer;
  const timedOut = new Promise((r) => (timer = setTimeout(() => r(false), drainTimeoutS * 1000)));
  const drained = await Promise.race([closed, timedOut]);
  clearInterval(sweep);
  clearTimeout(timer);
  if (!drained) {
    log(`drain incomplete: ${inFlight} request(s) still in flight after ${drainTimeoutS}s; closing them`);
    server.closeAllConnections();
  }
  await db.close();
  log(drained ? "drained, exiting" : "exiting");
  process.exit(0);
}

function start() {
  server.on("error", (e) => {
    log(`listen ${listen}: ${e.message}`);
    process.exit(1);
  });
  const ready = () => {
    log(`${color} ${version} listening on ${listen}`);
    runJob();
  };
  if (listen.startsWith("unix:")) {
    const sock = listen.slice("unix:".length);
    try {
      fs.unlinkSync(sock); // a stale socket from a previous run
    } catch (e) {
      if (e.code !== "ENOENT") {
        log(`listen ${listen}: ${e.message}`);
        process.exit(1);
      }
    }
    server.listen(sock, () => {
      // Group-writable, so the web server (in the app's group) can connect.
      fs.chmodSync(sock, 0o660);
      ready();
    });
  } else {
    const i = listen.lastIndexOf(":");
    const host = listen.slice(0, i).replace(/^\[(.*)\]$/, "$1");
    const port = Number(listen.slice(i + 1));
    if (i < 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
      log(`listen ${listen}: want unix:PATH or HOST:PORT`);
      process.exit(1);
    }
    server.listen({ host: host || undefined, port }, ready);
  }
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
  getSchema().catch((e) => log(`schema: ${e.message}`));
}

start();
