import * as assert from "assert";
import { ChildProcessByStdio, spawn, spawnSync, SpawnSyncReturns } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { Readable, Writable } from "stream";

// The Node.js demo app (app/node): packed by its build.sh, unpacked, migrated and run
// as real processes, two colours at once against one data directory, as on a host.
// Needs node and Debian's sqlite3 shell; fails (does not skip) without them.

const APP_SRC = path.resolve(__dirname, "..", "..", "app", "node");
const NOT_MIGRATED = "schema not migrated: run node migrate.js\n";
const JOB_MS = 200;

type Target = { socketPath: string } | { port: number };
interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One GET on a new connection (agent: false), over a unix socket or to 127.0.0.1:port. */
function get(target: Target, urlPath: string): Promise<Reply> {
  const where = "socketPath" in target ? { socketPath: target.socketPath } : { host: "127.0.0.1", port: target.port };
  return new Promise((resolve, reject) => {
    const req = http.request({ ...where, path: urlPath, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("error", reject);
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns a value other than undefined; a throw ends the wait at once. */
async function eventually<T>(what: string, probe: () => Promise<T | undefined>, ms = 10000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      s.close(() => (addr && typeof addr === "object" ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

/** The environment without any BLUEGREEN_* of the caller's, plus `vars`. */
function cleanEnv(vars: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("BLUEGREEN_")) env[k] = v;
  return { ...env, ...vars };
}

function sqlite(db: string, sql: string): string {
  const r = spawnSync("sqlite3", ["-batch", "-bail", "-cmd", ".timeout 5000", db, sql], { encoding: "utf8" });
  assert.strictEqual(r.status, 0, `sqlite3 ${sql}: ${r.stderr}`);
  return r.stdout;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The direct children of a process (the app's sqlite3 shell), from /proc. */
function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, "utf8");
      // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running server.js. */
class App {
  readonly child: ChildProcessByStdio<null, null, Readable>;
  readonly exit: Promise<Exit>;
  readonly target: Target;
  stderr = "";
  private spawnError: Error | undefined;

  constructor(
    appDir: string,
    readonly color: string,
    readonly version: string,
    listen: { socketPath: string } | { port: number },
    vars: Record<string, string>,
  ) {
    this.target = listen;
    const addr = "socketPath" in listen ? `unix:${listen.socketPath}` : `127.0.0.1:${listen.port}`;
    const env = cleanEnv({
      BLUEGREEN_LISTEN: addr,
      BLUEGREEN_COLOR: color,
      BLUEGREEN_VERSION: version,
      BLUEGREEN_DRAIN_TIMEOUT: "10",
      JOB_INTERVAL_MS: String(JOB_MS),
      ...vars,
    });
    this.child = spawn("node", ["server.js"], { cwd: appDir, env, stdio: ["ignore", "ignore", "pipe"] });
    this.child.on("error", (e) => (this.spawnError = e));
    this.child.stderr.setEncoding("utf8");
    this.child.stderr.on("data", (chunk: string) => (this.stderr += chunk));
    this.exit = new Promise((resolve) => this.child.once("close", (code, signal) => resolve({ code, signal })));
  }

  get pid(): number {
    assert.ok(this.child.pid, `${this.color} has no pid`);
    return this.child.pid;
  }

  async listening(): Promise<this> {
    await eventually(`${this.color} to listen`, () => {
      if (this.spawnError) throw this.spawnError;
      if (this.child.exitCode !== null) throw new Error(`${this.color} exited ${this.child.exitCode}: ${this.stderr}`);
      return Promise.resolve(/ listening on /.test(this.stderr) ? true : undefined);
    });
    return this;
  }

  get(urlPath: string): Promise<Reply> {
    return get(this.target, urlPath);
  }

  running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
}

describe("node demo app (app/node): build, migrations, shared SQLite, live-only job, drain", function () {
  this.timeout(120000);
  let tmp: string;
  let appDir: string;
  let archive: string;
  let apps: App[] = [];
  const others: ChildProcessByStdio<Writable, Readable, null>[] = [];

  const dataDir = () => fs.mkdtempSync(path.join(tmp, "data-"));
  const migrate = (data: string, migrationsDir?: string): SpawnSyncReturns<string> =>
    spawnSync("node", ["migrate.js"], {
      cwd: appDir,
      encoding: "utf8",
      env: cleanEnv({
        BLUEGREEN_DATA_DIR: data,
        ...(migrationsDir ? { BLUEGREEN_MIGRATIONS_DIR: migrationsDir } : {}),
      }),
    });
  /** migrate.js as a child process, so HTTP clients in this process keep running meanwhile. */
  const migrateAsync = (data: string): Promise<{ code: number | null; stdout: string; stderr: string }> =>
    new Promise((resolve, reject) => {
      const c = spawn("node", ["migrate.js"], { cwd: appDir, env: cleanEnv({ BLUEGREEN_DATA_DIR: data }) });
      let stdout = "";
      let stderr = "";
      c.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
      c.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
      c.on("error", reject);
      c.on("close", (code) => resolve({ code, stdout, stderr }));
    });
  const start = async (
    color: string,
    version: string,
    listen: { socketPath: string } | { port: number },
    data: string,
    activeFile: string,
    vars: Record<string, string> = {},
  ): Promise<App> => {
    const app = new App(appDir, color, version, listen, {
      BLUEGREEN_DATA_DIR: data,
      BLUEGREEN_ACTIVE_FILE: activeFile,
      ...vars,
    });
    apps.push(app);
    return app.listening();
  };
  const sock = (name: string) => ({ socketPath: path.join(tmp, `${name}.sock`) });
  const tcp = async () => ({ port: await freePort() });
  const activeFile = (color: string) => {
    const f = path.join(fs.mkdtempSync(path.join(tmp, "state-")), "active");
    fs.writeFileSync(f, `${color}\n`);
    return f;
  };
  const build = (out: string) =>
    spawnSync("bash", [path.join(APP_SRC, "build.sh"), "v1", "amd64", out], { encoding: "utf8" });

  before(() => {
    const node = spawnSync("node", ["--version"], { encoding: "utf8" });
    assert.strictEqual(node.status, 0, `node must be on PATH: ${node.error?.message ?? node.stderr}`);
    const sq = spawnSync("sqlite3", ["--version"], { encoding: "utf8" });
    assert.strictEqual(
      sq.status,
      0,
      `the sqlite3 shell must be installed (apt-get install sqlite3): ${sq.error?.message ?? sq.stderr}`,
    );
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bg-node-"));
    archive = path.join(tmp, "out", "app.tar.gz");
    const r = build(archive);
    assert.strictEqual(r.status, 0, r.stderr);
    appDir = path.join(tmp, "app");
    fs.mkdirSync(appDir);
    const x = spawnSync("tar", ["-xzf", archive, "-C", appDir], { encoding: "utf8" });
    assert.strictEqual(x.status, 0, x.stderr);
  });

  afterEach(async () => {
    for (const c of others) c.kill("SIGKILL");
    others.length = 0;
    // SIGTERM, so each app ends its sqlite3 child itself (an orphan would be left to init);
    // SIGKILL if that takes more than 5 s.
    await Promise.all(
      apps.map(async (a) => {
        if (!a.running()) return;
        a.child.kill("SIGTERM");
        const t = setTimeout(() => a.child.kill("SIGKILL"), 5000);
        await a.exit;
        clearTimeout(t);
      }),
    );
    apps = [];
  });

  after(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("build.sh is reproducible and packs exactly the app's files at the archive root", () => {
    const again = path.join(tmp, "out2", "nested", "app.tar.gz");
    const r = build(again);
    assert.strictEqual(r.status, 0, r.stderr);
    assert.ok(fs.readFileSync(archive).equals(fs.readFileSync(again)), "two builds differ");
    const list = spawnSync("tar", ["-tzf", archive], { encoding: "utf8" });
    assert.strictEqual(list.status, 0, list.stderr);
    assert.deepStrictEqual(list.stdout.split("\n").filter(Boolean).sort(), [
      "migrate.js",
      "migrations/",
      "migrations/0001_visits.sql",
      "migrations/0002_last_color.sql",
      "package.json",
      "server.js",
    ]);
    assert.deepStrictEqual(
      fs.readdirSync(path.dirname(again)),
      ["app.tar.gz"],
      "no temporary file is left beside the output",
    );
  });

  it("migrate.js applies every migration once, in order, and a second run applies nothing", () => {
    const data = dataDir();
    const first = migrate(data);
    assert.strictEqual(first.stderr, "");
    assert.strictEqual(first.status, 0);
    assert.strictEqual(
      first.stdout,
      "migrate: applied 0001_visits.sql\nmigrate: applied 0002_last_color.sql\nmigrate: schema up to date (2 migrations)\n",
    );
    const second = migrate(data);
    assert.strictEqual(second.status, 0, second.stderr);
    assert.strictEqual(second.stdout, "migrate: schema up to date (2 migrations)\n");
    const db = path.join(data, "app.db");
    assert.strictEqual(
      sqlite(db, "SELECT name FROM schema_migrations ORDER BY name;"),
      "0001_visits.sql\n0002_last_color.sql\n",
    );
    assert.strictEqual(sqlite(db, "SELECT id, count, last_color IS NULL FROM visits;"), "1|0|1\n");
    assert.strictEqual(sqlite(db, "PRAGMA journal_mode;"), "wal\n");
  });

  it("two colours share one counter; migration 0002 lands under load and both start recording last_color", async () => {
    const data = dataDir();
    const db = path.join(data, "app.db");
    const active = activeFile("blue");
    const blue = await start("blue", "v1", sock("blue"), data, active);
    const green = await start("green", "v2", await tcp(), data, active);

    // Not migrated yet: health works, /visits says so, and no database was created.
    for (const app of [blue, green]) {
      for (const [p, body] of [
        ["/healthz", "ok\n"],
        ["/health/live", "ok\n"],
        ["/health/ready", "ready\n"],
        ["/", `${app.color} ${app.version}\n`],
        ["/no/such/page", `${app.color} ${app.version}\n`],
      ]) {
        const r = await app.get(p);
        assert.deepStrictEqual([r.status, r.body], [200, body], `${app.color} ${p}`);
        assert.strictEqual(r.headers["x-bluegreen-color"], app.color);
        assert.strictEqual(r.headers["x-bluegreen-version"], app.version);
      }
      const v = await app.get("/visits");
      assert.deepStrictEqual([v.status, v.body], [503, NOT_MIGRATED]);
      assert.strictEqual(v.headers["x-bluegreen-color"], app.color);
    }
    assert.ok(!fs.existsSync(db), "server.js created app.db");
    const sockMode = fs.statSync(sock("blue").socketPath).mode;
    assert.ok((sockMode & 0o170000) === 0o140000, "blue listens on a unix socket");
    assert.strictEqual(sockMode & 0o777, 0o660);

    // Expand step 1: only 0001.
    const only1 = fs.mkdtempSync(path.join(tmp, "m1-"));
    fs.copyFileSync(path.join(appDir, "migrations", "0001_visits.sql"), path.join(only1, "0001_visits.sql"));
    const m1 = migrate(data, only1);
    assert.strictEqual(m1.status, 0, m1.stderr);
    assert.strictEqual(m1.stdout, "migrate: applied 0001_visits.sql\nmigrate: schema up to date (1 migration)\n");

    // A process that found no schema looks again on the next request.
    assert.deepStrictEqual(await blue.get("/visits").then((r) => [r.status, r.body]), [200, "visits 1\n"]);
    assert.deepStrictEqual(await green.get("/visits").then((r) => [r.status, r.body]), [200, "visits 2\n"]);
    assert.deepStrictEqual(await blue.get("/visits").then((r) => [r.status, r.body]), [200, "visits 3\n"]);

    for (const app of [blue, green]) {
      const r = await app.get("/status");
      assert.strictEqual(r.status, 200);
      assert.match(String(r.headers["content-type"]), /^application\/json/);
      assert.strictEqual(r.headers["x-bluegreen-color"], app.color);
      const s = JSON.parse(r.body) as Record<string, unknown>;
      assert.strictEqual(typeof s.uptime_s, "number");
      delete s.uptime_s;
      assert.deepStrictEqual(s, {
        color: app.color,
        version: app.version,
        live: app.color === "blue",
        draining: false,
        pid: app.pid,
        runtime: "node",
      });
    }

    // Load on both colours while 0002 is applied; every request must succeed.
    let stop = false;
    const replies: { color: string; r: Reply }[] = [];
    const client = async (app: App) => {
      while (!stop) replies.push({ color: app.color, r: await app.get("/visits") });
    };
    const clients = [blue, green, blue, green].map((a) => client(a));
    await sleep(300);
    const m2 = await migrateAsync(data);
    assert.strictEqual(m2.code, 0, m2.stderr);
    assert.strictEqual(m2.stdout, "migrate: applied 0002_last_color.sql\nmigrate: schema up to date (2 migrations)\n");
    // Both processes were started before the column existed; each must pick it up.
    await eventually("both colours to record last_color", () =>
      Promise.resolve(
        ["blue", "green"].every((c) => replies.some((x) => x.color === c && / last_color /.test(x.r.body)))
          ? true
          : undefined,
      ),
    );
    await sleep(200);
    stop = true;
    await Promise.all(clients);

    const bad = replies.filter((x) => x.r.status !== 200);
    assert.deepStrictEqual(bad, [], "a /visits request failed during the migration");
    const counts = replies.map(({ color, r }) => {
      const m = /^visits (\d+)(?: last_color (\w+))?\n$/.exec(r.body);
      assert.ok(m, `unexpected body ${JSON.stringify(r.body)}`);
      if (m[2] !== undefined) assert.strictEqual(m[2], color, "last_color is the answering colour");
      return Number(m[1]);
    });
    assert.ok(counts.length > 20, `only ${counts.length} requests under load`);
    assert.strictEqual(new Set(counts).size, counts.length, "a count was handed out twice");
    assert.strictEqual(Math.min(...counts), 4);
    assert.strictEqual(Math.max(...counts), 3 + counts.length, "an increment was lost");
    assert.match(
      sqlite(db, "SELECT count, last_color FROM visits;"),
      new RegExp(`^${3 + counts.length}\\|(blue|green)\\n$`),
    );
    const after = await green.get("/visits");
    assert.deepStrictEqual([after.status, after.body], [200, `visits ${4 + counts.length} last_color green\n`]);
  });

  it("only the live colour runs the job; flipping the active file moves it", async () => {
    const data = dataDir();
    const db = path.join(data, "app.db");
    assert.strictEqual(migrate(data).status, 0);
    const active = activeFile("blue");
    const blue = await start("blue", "v1", sock("job-blue"), data, active);
    const green = await start("green", "v2", await tcp(), data, active);

    const jobs = async (app: App) => {
      const r = await app.get("/jobs");
      assert.strictEqual(r.status, 200, r.body);
      assert.match(String(r.headers["content-type"]), /^application\/json/);
      assert.strictEqual(r.headers["x-bluegreen-color"], app.color);
      const list = JSON.parse(r.body) as { id: number; color: string; version: string; at: string }[];
      assert.ok(list.length <= 10, `${list.length} rows`);
      for (let i = 1; i < list.length; i++) assert.ok(list[i - 1].id > list[i].id, "newest first");
      for (const j of list) assert.ok(!Number.isNaN(Date.parse(j.at)), j.at);
      return list;
    };

    await sleep(2 * JOB_MS + 100);
    const first = await eventually("blue's job runs", async () => {
      const l = await jobs(green);
      return l.length >= 2 ? l : undefined;
    });
    assert.deepStrictEqual(
      [...new Set(first.map((j) => `${j.color} ${j.version}`))],
      ["blue v1"],
      "only the live colour runs the job",
    );
    assert.strictEqual(JSON.parse((await green.get("/status")).body).live, false);

    fs.writeFileSync(active, "green\n");
    await eventually("green's job runs", async () => ((await jobs(blue))[0]?.color === "green" ? true : undefined));
    await sleep(4 * JOB_MS);
    const later = await jobs(blue);
    assert.deepStrictEqual(
      later.slice(0, 3).map((j) => `${j.color} ${j.version}`),
      ["green v2", "green v2", "green v2"],
    );
    assert.ok(
      later.some((j) => j.color === "blue"),
      "blue's rows are still there, older",
    );
    assert.strictEqual(JSON.parse((await blue.get("/status")).body).live, false);

    // The job keeps only the last 100 rows.
    sqlite(
      db,
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 150) " +
        "INSERT INTO job_runs (color, version, at) SELECT 'x', 'x', 'x' FROM n;",
    );
    await eventually("the job to trim job_runs", () =>
      Promise.resolve(sqlite(db, "SELECT count(*) FROM job_runs;") === "100\n" ? true : undefined),
    );
  });

  it("a failing migration exits 1 with sqlite's message and leaves the database as it was", () => {
    const data = dataDir();
    const db = path.join(data, "app.db");
    const dir = fs.mkdtempSync(path.join(tmp, "mbad-"));
    for (const f of fs.readdirSync(path.join(appDir, "migrations"))) {
      fs.copyFileSync(path.join(appDir, "migrations", f), path.join(dir, f));
    }
    // The first statement succeeds; the transaction must take it back.
    fs.writeFileSync(
      path.join(dir, "0003_bad.sql"),
      "CREATE TABLE partial (x INTEGER);\nALTER TABLE nope ADD COLUMN x TEXT;\n",
    );
    for (const run of [1, 2]) {
      const r = migrate(data, dir);
      assert.strictEqual(r.status, 1, `run ${run}: ${r.stdout}${r.stderr}`);
      assert.strictEqual(
        r.stdout,
        run === 1 ? "migrate: applied 0001_visits.sql\nmigrate: applied 0002_last_color.sql\n" : "",
      );
      assert.ok(r.stderr.startsWith("migrate: 0003_bad.sql failed: "), r.stderr);
      assert.match(r.stderr, /no such table: nope/);
      assert.match(r.stderr, /near line 2\b/, "sqlite's line number is the file's");
      assert.strictEqual(
        sqlite(db, "SELECT name FROM schema_migrations ORDER BY name;"),
        "0001_visits.sql\n0002_last_color.sql\n",
      );
      assert.strictEqual(sqlite(db, "SELECT count(*) FROM sqlite_master WHERE name = 'partial';"), "0\n");
    }
  });

  it("SIGTERM: readiness goes 503 at once, in-flight requests complete, the database outlives the signal, exit 0", async () => {
    const data = dataDir();
    assert.strictEqual(migrate(data).status, 0);
    const blue = await start("blue", "v1", sock("drain"), data, activeFile("green"));
    assert.strictEqual((await blue.get("/visits")).body, "visits 1 last_color blue\n");
    const [sqlitePid] = childPids(blue.pid);
    assert.ok(sqlitePid, "the app keeps a sqlite3 child");

    const slow = blue.get("/slow?ms=1500");
    const slower = blue.get("/slow?ms=3000");
    await sleep(300);
    const t0 = Date.now();
    // systemd's stop signals every process of the unit, the sqlite3 child included.
    process.kill(sqlitePid, "SIGTERM");
    blue.child.kill("SIGTERM");
    // The signal is handled asynchronously: once the app has logged it, readiness must be 503.
    await eventually("the SIGTERM log line", () =>
      Promise.resolve(blue.stderr.includes("SIGTERM: readiness is 503") ? true : undefined),
    );
    const ready = await blue.get("/health/ready");
    assert.deepStrictEqual([ready.status, ready.body], [503, "draining\n"]);
    assert.strictEqual(ready.headers["x-bluegreen-color"], "blue");
    const live = await blue.get("/health/live");
    assert.deepStrictEqual([live.status, live.body], [200, "ok\n"]);
    const status = JSON.parse((await blue.get("/status")).body) as { draining: boolean };
    assert.strictEqual(status.draining, true);
    const visit = await blue.get("/visits");
    assert.deepStrictEqual([visit.status, visit.body], [200, "visits 2 last_color blue\n"]);
    assert.ok(isAlive(sqlitePid), "the sqlite3 child died of SIGTERM");
    assert.ok(Date.now() - t0 < 900, "the checks above ran in the shutdown delay");

    await sleep(t0 + 1500 - Date.now());
    await assert.rejects(blue.get("/healthz"), "the listener is closed after the shutdown delay");
    const r1 = await slow;
    assert.deepStrictEqual([r1.status, r1.body], [200, "blue v1 slept 1500ms\n"]);
    const r2 = await slower;
    assert.deepStrictEqual([r2.status, r2.body], [200, "blue v1 slept 3000ms\n"]);
    assert.deepStrictEqual(await blue.exit, { code: 0, signal: null }, blue.stderr);
    assert.match(blue.stderr, /SIGTERM: readiness is 503; draining 2 in-flight request\(s\) after 1s, up to 10s\n/);
    assert.match(blue.stderr, /drained, exiting\n$/);
    assert.ok(!isAlive(sqlitePid), "the sqlite3 child outlived the app");
    assert.ok(!fs.existsSync(sock("drain").socketPath), "the socket file is removed");
  });

  it("a failed query (locked database) answers 500 with sqlite's message; the next ones work, also after sqlite3 dies", async () => {
    const data = dataDir();
    const db = path.join(data, "app.db");
    assert.strictEqual(migrate(data).status, 0);
    const blue = await start("blue", "v1", sock("err"), data, activeFile("green"));
    assert.strictEqual((await blue.get("/visits")).body, "visits 1 last_color blue\n");

    // Another writer holds the lock past the app's 5 s busy timeout.
    const locker = spawn("sqlite3", ["-batch", db], { stdio: ["pipe", "pipe", "ignore"] });
    others.push(locker);
    let out = "";
    locker.stdout.on("data", (b: Buffer) => (out += b.toString()));
    locker.stdin.write("BEGIN IMMEDIATE;\nSELECT 'locked';\n");
    await eventually("the lock", () => Promise.resolve(out.includes("locked") ? true : undefined));
    const [locked, health] = await Promise.all([blue.get("/visits"), sleep(100).then(() => blue.get("/healthz"))]);
    assert.strictEqual(health.status, 200, "health does not wait for the database");
    assert.strictEqual(locked.status, 500);
    assert.match(locked.body, /database is locked/);
    locker.stdin.end();

    const next = await blue.get("/visits");
    assert.deepStrictEqual([next.status, next.body], [200, "visits 2 last_color blue\n"]);

    const [first] = childPids(blue.pid);
    process.kill(first, "SIGKILL");
    await eventually("sqlite3 to be gone", () =>
      Promise.resolve(childPids(blue.pid).includes(first) ? undefined : true),
    );
    const again = await blue.get("/visits");
    assert.deepStrictEqual([again.status, again.body], [200, "visits 3 last_color blue\n"]);
    const [second] = childPids(blue.pid);
    assert.ok(second && second !== first, "a new sqlite3 child was started");
  });
});
