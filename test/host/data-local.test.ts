// Backups and restore on the local sandbox: the real host scripts (backup-config.sh, backup.sh,
// restore.sh, switch.sh with its preSwitch snapshot), the Node demo app writing SQLite in both
// slots behind a real nginx, and stand-ins only for systemd (test/support/nodeSlots.ts).
// What a user relies on:
// - under write load, a backup loses no write and delays none, and every backup is restorable
//   to exactly the data of its point in time;
// - restore puts a backup back with maintenance on and both writers stopped (the public sees the
//   maintenance page, never a 502), refuses another app's backup and a corrupt one before
//   anything changes, and keeps the data it replaces;
// - a bad migration, a rollback, then a restore of the snapshot taken before the migration:
//   the old version serves the old data.
import * as assert from "assert";
import * as fs from "fs";
import * as http from "http";
import * as path from "path";
import { renderBackupConf, renderBackupUnits } from "../../components/app/backups";
import { renderBundle } from "../../components/host/shell";
import { NodeSlots, nodeSandbox, toolAsync as spawnTool } from "../support/nodeSlots";
import { Sandbox, SWITCH_TEST_VALUES } from "../support/sandbox";
import { run } from "../support/tools";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const BASE = 19500;

/** One GET through the public listener, on a keep-alive agent. */
function get(
  agent: http.Agent,
  port: number,
  urlPath: string,
): Promise<{ status: number; body: string; color: string }> {
  return new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path: urlPath, agent, timeout: 10_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body, color: String(res.headers["x-bluegreen-color"] ?? "") }),
      );
      res.on("error", () => resolve({ status: 0, body, color: "" }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (e) => resolve({ status: 0, body: e.message, color: "" }));
  });
}

/** The visit count a database file (a backup's copy) holds. */
function countIn(file: string): number {
  const r = run("sqlite3", ["-readonly", `file:${file}?immutable=1`, "SELECT count FROM visits WHERE id = 1;"]);
  assert.strictEqual(r.status, 0, r.stderr);
  return Number(r.stdout.trim());
}

interface Write {
  readonly sent: number;
  readonly acked: number;
  readonly status: number;
  readonly count: number;
}

describe("backups and restore of the Node demo's SQLite under write load (local sandbox, real nginx)", function () {
  this.timeout(600_000);
  let host: Sandbox;
  let slots: NodeSlots;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const audit = () => fs.readFileSync(host.at(host.L.auditLog), "utf8");
  const backupDir = (id: string) => host.at(`${host.L.backupDir}/${id}`);
  const visits = async () => {
    const r = await get(agent, BASE, "/visits");
    assert.strictEqual(r.status, 200, r.body);
    return Number(/^visits (\d+)/.exec(r.body)![1]);
  };

  before(async () => {
    ({ host, slots } = await nodeSandbox(BASE, ["backup-config.sh", "backup.sh", "restore.sh"]));
    // The backups step as the program sends it (components/app/backups.ts).
    const conf = { databases: ["app.db"], keepHourly: 24, keepDaily: 7, keepSnapshots: 10 };
    const step = slots.tool(
      "backup-config.sh",
      { STATE: "on" },
      [],
      renderBundle({ conf: renderBackupConf(conf), ...renderBackupUnits(host.L) }),
    );
    assert.strictEqual(step.status, 0, step.stderr);
    assert.match(
      step.stdout,
      /^backups: app\.db hourly \(keep 24 hourly, 7 daily, 10 snapshots\), and a snapshot before every preSwitch; off-host: none/,
    );
    assert.match(fs.readFileSync(slots.log, "utf8"), /systemctl enable -q --now bluegreen-backup\.timer/);
  });
  after(() => {
    agent.destroy();
    slots?.stop();
    host?.stop();
  });

  const backups: { id: string; started: number; ended: number }[] = [];
  let writes: Write[] = [];

  it("under write load (8 writers through nginx, 8 s) 6 backups lose no write and fail none: every acknowledged count is there once, the database holds the last", async () => {
    const before = await visits();
    let stop = false;
    const writers = Array.from({ length: 8 }, async () => {
      while (!stop) {
        const sent = Date.now();
        const r = await get(agent, BASE, "/visits");
        const m = /^visits (\d+)/.exec(r.body);
        writes.push({ sent, acked: Date.now(), status: r.status, count: m ? Number(m[1]) : -1 });
      }
    });
    for (let i = 0; i < 6; i++) {
      await sleep(1000);
      const started = Date.now();
      const r = await spawnTool(slots, "backup.sh", { args: ["now"] });
      const ended = Date.now();
      assert.strictEqual(r.status, 0, r.stderr);
      backups.push({ id: /^backup (\S+):/.exec(r.stdout)![1], started, ended });
    }
    await sleep(1000);
    stop = true;
    await Promise.all(writers);
    writes = writes.filter((w) => w.count !== -1 || w.status !== 200);
    const failed = writes.filter((w) => w.status !== 200);
    const counts = writes.map((w) => w.count).sort((a, b) => a - b);
    const expected = Array.from({ length: counts.length }, (_, i) => before + 1 + i);
    const after = await visits();
    console.log(
      `      ${writes.length} writes in ${((writes[writes.length - 1].acked - writes[0].sent) / 1000).toFixed(1)} s, ${failed.length} failed, ${expected.length - new Set(counts).size} lost or doubled; ${backups.length} backups (${backups.map((b) => `${b.ended - b.started} ms`).join(", ")})`,
    );
    assert.deepStrictEqual(failed, [], "no write failed during the backups");
    assert.deepStrictEqual(counts, expected, "every count from the first to the last, once");
    assert.strictEqual(after, before + writes.length + 1, "the database holds every write (and this read's)");
  });

  it("every backup passed its integrity check, was taken as it was at its point in time, and is restorable", () => {
    for (const b of backups) {
      const manifest = fs.readFileSync(path.join(backupDir(b.id), "manifest"), "utf8");
      assert.match(manifest, /^app=bluegreen\nns=bluegreen\nid=\S+-manual(-\d+)?\nkind=manual\n/);
      assert.match(manifest, /\nintegrity=ok\n/);
      assert.match(manifest, /\njournal\.app\.db=wal\n/);
      const copy = path.join(backupDir(b.id), "db", "app.db");
      const c = countIn(copy);
      // At least every write acknowledged before the backup started; at most those sent before it ended.
      const low = writes.filter((w) => w.acked < b.started).length;
      const high = writes.filter((w) => w.sent <= b.ended).length;
      const base = Math.min(...writes.map((w) => w.count)) - 1;
      assert.ok(c >= base + low && c <= base + high, `${b.id}: count ${c}, expected ${base + low}..${base + high}`);
      const sums = run("sha256sum", ["-c", "sha256sums"], { cwd: backupDir(b.id) });
      assert.strictEqual(sums.status, 0, sums.stdout + sums.stderr);
      assert.strictEqual(
        run("sqlite3", ["-readonly", `file:${copy}?immutable=1`, "PRAGMA integrity_check;"]).stdout,
        "ok\n",
      );
    }
    assert.strictEqual(
      (audit().match(/ backup id=\S+ kind=manual bytes=\d+ result=ok /g) ?? []).length,
      backups.length,
    );
    // bluegreen-status shows them.
    const text = host.tool("status.sh", {}).stdout;
    assert.match(
      text,
      new RegExp(
        `\\nbackups: +${backups.length} kept, newest ${backups[backups.length - 1].id}; last run ok; off-host none \\(\\S+-backup list\\)\\n`,
      ),
    );
    const json = JSON.parse(host.tool("status.sh", {}, undefined, ["--json"]).stdout) as {
      backups: Record<string, unknown>;
    };
    assert.deepStrictEqual(
      { ...json.backups, lastOk: typeof json.backups.lastOk },
      {
        kept: backups.length,
        newest: backups[backups.length - 1].id,
        lastResult: "ok",
        lastOk: "string",
        lastError: null,
        offsite: null,
      },
    );
  });

  it("restore: maintenance on, both writers stopped, the backup's data back, the slots started again; the public never sees a 502", async () => {
    const target = backups[2];
    const want = countIn(path.join(backupDir(target.id), "db", "app.db"));
    const pids = [slots.pid("blue"), slots.pid("green")];
    let polling = true;
    const seen = new Map<number, number>();
    const poller = (async () => {
      while (polling) {
        const r = await get(agent, BASE, "/");
        seen.set(r.status, (seen.get(r.status) ?? 0) + 1);
        if (r.status === 503) assert.match(r.body, /maintenance/i);
        await sleep(20);
      }
    })();
    const started = Date.now();
    const r = await spawnTool(slots, "restore.sh", { args: [target.id] });
    const took = Date.now() - started;
    await sleep(300);
    polling = false;
    await poller;
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      new RegExp(
        `^restored ${target.id} \\(app\\.db\\) from local: checked in \\d+ ms; slots stopped in \\d+ ms \\(their drain\\), down \\d+ ms`,
      ),
    );
    console.log(
      `      restore of ${target.id} took ${took} ms (${r.stdout.split("\n")[0]}); public answers meanwhile: ${JSON.stringify(Object.fromEntries(seen))}`,
    );
    assert.deepStrictEqual(
      [...seen.keys()].filter((s) => s !== 200 && s !== 503),
      [],
      "only the app's answers and the maintenance page",
    );
    assert.ok(seen.get(503), "maintenance was on while the slots were down");
    assert.strictEqual(await visits(), want + 1, "the next write follows the backup's data");
    assert.ok(!fs.existsSync(host.at(host.L.maintenanceFlag)), "maintenance is off again");
    const now = [slots.pid("blue"), slots.pid("green")];
    assert.ok(now[0] && now[1] && now[0] !== pids[0] && now[1] !== pids[1], "both slots were restarted");
    const pre = new RegExp(
      `Z restore id=${target.id} source=local pre_restore=(\\S+-pre-restore) databases=app\\.db ms=\\d+ result=ok by=\\w+\\n`,
    ).exec(audit());
    assert.ok(pre, audit().slice(-800));
    assert.ok(fs.existsSync(path.join(backupDir(pre[1]), "db", "app.db")), "the data it replaced is kept");
    assert.match(fs.readFileSync(slots.log, "utf8"), /systemctl stop bluegreen@blue bluegreen@green\n/);
  });

  it("restore refuses another app's backup, one that fails its checksums and one that fails PRAGMA integrity_check, before anything changes", async () => {
    const source = backupDir(backups[4].id);
    const copy = (id: string) => {
      fs.cpSync(source, backupDir(id), { recursive: true });
      const manifest = path.join(backupDir(id), "manifest");
      fs.writeFileSync(manifest, fs.readFileSync(manifest, "utf8").replace(/^id=.*$/m, `id=${id}`));
      return backupDir(id);
    };
    const other = copy("20200101T000000Z-manual");
    fs.writeFileSync(
      path.join(other, "manifest"),
      fs.readFileSync(path.join(other, "manifest"), "utf8").replace("app=bluegreen", "app=shop"),
    );
    const tampered = copy("20200101T000001Z-manual");
    fs.appendFileSync(path.join(tampered, "db", "app.db"), "x");
    const corrupt = copy("20200101T000002Z-manual");
    // A page of garbage in the middle of the file, and checksums made to match it: only sqlite can tell.
    const db = path.join(corrupt, "db", "app.db");
    const bytes = fs.readFileSync(db);
    bytes.fill(0x41, 4096, Math.min(bytes.length, 8192));
    fs.writeFileSync(db, bytes);
    fs.writeFileSync(path.join(corrupt, "sha256sums"), run("sha256sum", ["db/app.db"], { cwd: corrupt }).stdout);
    const pids = [slots.pid("blue"), slots.pid("green")];
    const count = await visits();
    const cases: [string, RegExp][] = [
      [
        "20200101T000000Z-manual",
        /^bluegreen: error: backup 20200101T000000Z-manual belongs to the app 'shop', not to 'bluegreen'; restoring another app's data here is refused\. Nothing was changed: the slots and the data are as they were\.\n$/,
      ],
      [
        "20200101T000001Z-manual",
        /^bluegreen: error: backup 20200101T000001Z-manual does not match its checksums: .*db\/app\.db: FAILED.*Nothing was changed/,
      ],
      [
        "20200101T000002Z-manual",
        /^bluegreen: error: backup 20200101T000002Z-manual: app\.db fails PRAGMA integrity_check: .+\. Nothing was changed/,
      ],
    ];
    for (const [id, message] of cases) {
      const r = await spawnTool(slots, "restore.sh", { args: [id] });
      assert.strictEqual(r.status, 1, r.stdout);
      assert.match(r.stderr, message);
      assert.match(audit(), new RegExp(`Z restore id=${id} source=local result=refused by=\\w+\\n`));
    }
    assert.deepStrictEqual([slots.pid("blue"), slots.pid("green")], pids, "no slot was stopped");
    assert.strictEqual(await visits(), count + 1, "the data is untouched");
    for (const id of ["20200101T000000Z-manual", "20200101T000001Z-manual", "20200101T000002Z-manual"])
      fs.rmSync(backupDir(id), { recursive: true });
  });

  it("the host commands say what they do with --help, and refuse what they do not know", () => {
    const help = slots.tool("restore.sh", {}, ["--help"]);
    assert.strictEqual(help.status, 0);
    assert.match(help.stdout, /^usage: restore\.sh \[--remote\] ID\|latest\nPuts backup ID /);
    const none = slots.tool("restore.sh", {}, ["20200101T000000Z-nope"]);
    assert.strictEqual(none.status, 1);
    assert.match(
      none.stderr,
      /^bluegreen: error: no such backup on this host: '20200101T000000Z-nope' \(bluegreen-backup list shows them/,
    );
    assert.match(
      slots.tool("backup.sh", {}, ["--help"]).stdout,
      /^usage: backup\.sh \[run\|now\|upload\|list \[--remote\]\]\n  list /,
    );
    assert.strictEqual(slots.tool("backup.sh", {}, ["frobnicate"]).status, 1);
  });

  it("the retention keeps the newest hourly ones, the first of each of the newest days, and the newest snapshots", () => {
    const ids = [
      "20261201T010000Z-hourly",
      "20261201T020000Z-hourly",
      "20261202T000500Z-hourly",
      "20261202T010000Z-hourly",
      "20261203T000000Z-hourly",
      "20261203T010000Z-hourly",
      "20261203T020000Z-hourly",
      "20261202T030000Z-snapshot",
      "20261203T030000Z-snapshot",
      "20261203T040000Z-pre-restore",
    ];
    const r = host.lib(
      `BG_BACKUP_CONF=$(mktemp); printf 'keep_hourly=2\\nkeep_daily=2\\nkeep_snapshots=2\\n' >"$BG_BACKUP_CONF"; printf '%s\\n' ${ids.join(" ")} | backup_retain | sort`,
    );
    assert.strictEqual(r.status, 0, r.stderr);
    // Kept: hourly 03T02, 03T01 (newest 2); daily: 03T00 and 02T0005 (first of the 2 newest days);
    // snapshots: 03T04 pre-restore and 03T03 (newest 2).
    assert.deepStrictEqual(r.stdout.trim().split("\n"), [
      "20261201T010000Z-hourly",
      "20261201T020000Z-hourly",
      "20261202T010000Z-hourly",
      "20261202T030000Z-snapshot",
    ]);
  });

  it("a bad migration, a rollback, then a restore of the snapshot taken before it: the old version serves the old data", async () => {
    // green gets v2, whose migration (run by preSwitch) breaks the data: every visit forgotten.
    const release = host.at(`${host.L.stateDir}/slots/green/current`);
    fs.cpSync(path.resolve(__dirname, "..", "..", "app", "node"), release, { recursive: true });
    fs.writeFileSync(
      path.join(release, "migrations", "0003_bad.sql"),
      "UPDATE visits SET count = 0;\nDELETE FROM job_runs;\n",
    );
    fs.writeFileSync(host.at(`${host.L.unitDir}/${host.L.ns}@green.service`), "[Service]\nExecStart=/bin/true\n");
    fs.mkdirSync(host.at(host.L.envDir), { recursive: true });
    fs.writeFileSync(host.at(`${host.L.envDir}/green.env`), 'BLUEGREEN_COLOR="green"\n');
    await slots.start("green", "v2");
    const good = await visits();
    const hook = `BLUEGREEN_DATA_DIR=${slots.dataDir} node migrate.js`;
    const sw = slots.tool(
      "switch.sh",
      {
        TARGET: "green",
        HEALTH_PATH: "/health/ready",
        CHECK_PORT: String(BASE + 2),
        ...SWITCH_TEST_VALUES,
        HOOKS: "yes",
        HOOK_TIMEOUT: "60",
      },
      [],
      renderBundle({ preSwitch: hook }),
    );
    assert.strictEqual(sw.status, 0, sw.stderr);
    const snap = /(?:^|\n)snapshot: (\S+-snapshot) taken before preSwitch \(restore: \S+-restore \1\)\n/.exec(
      sw.stdout,
    )?.[1];
    assert.ok(snap, sw.stdout);
    assert.match(sw.stdout, /preSwitch\| migrate: applied 0003_bad\.sql/);
    assert.match(audit(), new RegExp(`Z switch from=blue to=green version=v2 snapshot=${snap} result=ok by=\\w+\\n`));
    const broken = await get(agent, BASE, "/visits");
    assert.strictEqual(broken.color, "green");
    assert.match(broken.body, /^visits 1 /, "the migration broke the data");
    // Rollback: blue (v1) again; preSwitch is skipped on a rollback, so the data stays broken.
    const back = host.switchTo("blue");
    assert.strictEqual(back.status, 0, back.stderr);
    assert.match((await get(agent, BASE, "/visits")).body, /^visits 2\b/, "v1 serves, on the broken data");
    // Restore the snapshot taken right before the migration.
    const r = await spawnTool(slots, "restore.sh", { args: [snap] });
    assert.strictEqual(r.status, 0, r.stderr);
    const after = await get(agent, BASE, "/visits");
    assert.strictEqual(after.color, "blue");
    assert.match(after.body, new RegExp(`^visits ${good + 1} `), "v1 serves the data as it was before the migration");
    const migrations = run("sqlite3", [
      path.join(slots.dataDir, "app.db"),
      "SELECT name FROM schema_migrations ORDER BY name;",
    ]);
    assert.strictEqual(
      migrations.stdout,
      "0001_visits.sql\n0002_last_color.sql\n",
      "the bad migration is undone with the data",
    );
  });
});
