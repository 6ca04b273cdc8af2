// The metrics on the local sandbox, for both routers: the real metrics.sh (printed, and served
// over HTTP the way its socket unit serves it: one process per connection, socat standing in
// for systemd's Accept=yes socket), the real switch.sh, backup.sh and tls-config.sh making what
// they count. The output is parsed by the Prometheus client library's own text parser and
// linted by promlint (what `promtool check metrics` runs), both in test/support/promcheck, and
// every value is held against what the host records: the live link, the slots' records, the
// audit log, the router's own counts (nginx's access log; HAProxy's show stat), the backups'
// manifests and the TLS record. Needs nginx, haproxy, socat, sqlite3, go and openssl.
import * as assert from "assert";
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { renderBackupConf, renderBackupUnits } from "../../components/app/backups";
import { renderMetricsUnits } from "../../components/app/metrics";
import { Color, RouterKind, TEXTFILE_DIR } from "../../components/host/layout";
import { renderBundle } from "../../components/host/shell";
import { selfSignedBundle } from "../support/certs";
import { ROOT } from "../support/harness";
import { installTools, NodeSlots, noAppUser } from "../support/nodeSlots";
import { Sandbox } from "../support/sandbox";
import { requireTool, run } from "../support/tools";

interface Family {
  readonly type: string;
  readonly help: string;
  readonly samples: { readonly labels: Record<string, string>; readonly value: number }[];
}

let promcheckBin: string | undefined;
/** Builds test/support/promcheck once (Go modules from the module proxy, cached). */
function promcheck(text: string): Record<string, Family> {
  requireTool("go", "apt-get install -y golang-go");
  if (!promcheckBin) {
    promcheckBin = path.join(os.tmpdir(), "bluegreen-promcheck");
    const b = run("go", ["build", "-o", promcheckBin, "."], { cwd: path.join(ROOT, "test", "support", "promcheck") });
    if (b.status !== 0) throw new Error(`building promcheck failed: ${b.stderr}`);
  }
  const r = run(promcheckBin, [], { input: text });
  assert.strictEqual(r.stderr, "", `promcheck (parse and promlint):\n${r.stderr}\n${text}`);
  assert.strictEqual(r.status, 0);
  return JSON.parse(r.stdout) as Record<string, Family>;
}

const value = (m: Record<string, Family>, name: string, labels: Record<string, string> = {}): number => {
  const f = m[name] ?? assert.fail(`no metric ${name}`);
  const s = f.samples.find((x) => Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return (s ?? assert.fail(`no ${name} with ${JSON.stringify(labels)}`)).value;
};

for (const router of ["nginx", "haproxy"] as RouterKind[]) {
  const BASE = router === "nginx" ? 19580 : 19600;
  describe(`metrics through a real ${router}: parsed by Prometheus's own parser, linted, equal to what the host records (local sandbox)`, function () {
    this.timeout(600_000);
    let host: Sandbox;
    let slots: NodeSlots;
    let socket: ChildProcess | undefined;
    const PORT = BASE + 9;
    const audit = () => fs.readFileSync(host.at(host.L.auditLog), "utf8");
    const sent: Record<Color, number> = { blue: 0, green: 0 };
    const errors: Record<Color, number> = { blue: 0, green: 0 };

    /** n public requests; each counted by the colour that answered. */
    function requests(n: number): void {
      for (let i = 0; i < n; i++) {
        const r = run("curl", [
          "-s",
          "-o",
          "/dev/null",
          "-D",
          "-",
          "-H",
          "Host: metrics.test",
          `http://127.0.0.1:${BASE}/`,
        ]);
        const color = /x-bluegreen-color: *(\w+)/i.exec(r.stdout)?.[1] as Color;
        assert.ok(color, r.stdout);
        sent[color]++;
        if (/^HTTP\/1\.1 5/.test(r.stdout)) errors[color]++;
      }
    }
    const metrics = () => {
      const r = slots.tool("metrics.sh");
      assert.strictEqual(r.status, 0, r.stderr);
      return r.stdout;
    };

    before(async () => {
      requireTool("socat", "apt-get install -y socat");
      host = new Sandbox({
        router,
        mode: "socket",
        domains: ["metrics.test"],
        tls: { hstsMaxAge: 0, httpsPort: BASE + 8 },
        httpPort: BASE,
        previewPort: BASE + 1,
        checkPort: BASE + 2,
        ports: { blue: BASE + 3, green: BASE + 4 },
      });
      assert.strictEqual(host.configureAndStart().status, 0);
      installTools(host, ["metrics.sh", "metrics-config.sh", "backup-config.sh", "backup.sh"]);
      noAppUser(host);
      slots = new NodeSlots(host);
      // The endpoint as its socket unit serves it: one metrics.sh per connection.
      socket = spawn(
        "socat",
        [`TCP-LISTEN:${PORT},bind=127.0.0.1,reuseaddr,fork`, `EXEC:${host.at(`${host.L.toolsDir}/metrics.sh`)} serve`],
        {
          env: { PATH: slots.path },
          stdio: "ignore",
        },
      );
      await new Promise((r) => setTimeout(r, 300));
      const step = slots.tool(
        "metrics-config.sh",
        { STATE: "on", PORT: String(PORT) },
        [],
        renderBundle(renderMetricsUnits(host.L, PORT)),
      );
      assert.strictEqual(step.status, 0, step.stderr);
      assert.match(
        step.stdout,
        new RegExp(
          `^metrics: http://127\\.0\\.0\\.1:${PORT}/metrics \\(\\d+ samples now\\), no node_exporter textfile directory`,
        ),
      );
      await host.startSlot("blue", "v1");
      await host.startSlot("green", "v2");
      // Not every request reaches the slots over plain HTTP once https is on (a redirect): no certificate flag here.
      for (const c of ["blue", "green", "blue"] as Color[]) {
        const r = host.switchTo(c);
        assert.strictEqual(r.status, 0, r.stderr);
        requests(15);
      }
    });
    after(() => {
      socket?.kill("SIGTERM");
      host?.stop();
    });

    it("the live colour, the versions, readiness, maintenance and a staged change are what the records say", () => {
      fs.mkdirSync(host.at(`${host.L.envDir}/green.pending`), { recursive: true });
      fs.writeFileSync(host.at(`${host.L.envDir}/green.pending/record`), "version=v2\n");
      const m = promcheck(metrics());
      fs.rmSync(host.at(`${host.L.envDir}/green.pending`), { recursive: true });
      const recorded = fs.readFileSync(host.at(`${host.L.stateDir}/active`), "utf8").trim();
      assert.strictEqual(recorded, "blue");
      assert.strictEqual(value(m, "bluegreen_live", { app: "bluegreen", color: "blue" }), 1);
      assert.strictEqual(value(m, "bluegreen_live", { color: "green" }), 0);
      assert.strictEqual(value(m, "bluegreen_slot_info", { color: "blue", version: "v1" }), 1);
      assert.strictEqual(value(m, "bluegreen_slot_info", { color: "green", version: "v2" }), 1);
      assert.strictEqual(value(m, "bluegreen_slot_ready", { color: "green" }), 1);
      assert.strictEqual(value(m, "bluegreen_maintenance"), 0);
      assert.strictEqual(value(m, "bluegreen_slot_staged", { color: "green" }), 1);
      assert.strictEqual(value(m, "bluegreen_slot_staged", { color: "blue" }), 0);
      assert.deepStrictEqual(
        Object.entries(m)
          .map(([k, f]) => [k, f.type])
          .filter(([k]) => k.endsWith("_total"))
          .map(([, t]) => t),
        Object.keys(m)
          .filter((k) => k.endsWith("_total"))
          .map(() => "COUNTER"),
      );
    });

    it("switches, their durations and rollbacks are the audit log's; requests and 5xx per slot are the router's own counts", () => {
      fs.writeFileSync(path.join(host.faultDir, "blue.error500"), "");
      requests(5);
      fs.rmSync(path.join(host.faultDir, "blue.error500"));
      const m = promcheck(metrics());
      const ok = (audit().match(/ switch from=\S+ to=\S+ version=\S+ result=ok /g) ?? []).length;
      assert.strictEqual(value(m, "bluegreen_switches_total", { result: "ok" }), ok);
      assert.strictEqual(value(m, "bluegreen_switches_total", { result: "failed" }), 0);
      const duration = m.bluegreen_switch_duration_seconds.samples[0];
      assert.strictEqual(Number(duration.labels.__count__), ok, "every switch's duration");
      assert.ok(duration.value > 0 && duration.value < ok * 5, `${duration.value} s in all`);
      assert.strictEqual(value(m, "bluegreen_rollbacks_total"), 0);
      assert.deepStrictEqual(sent, { blue: 35, green: 15 });
      assert.deepStrictEqual(errors, { blue: 5, green: 0 });
      let routerCounts: Record<Color, [number, number]>;
      if (router === "nginx") {
        // nginx's own record: its access log, each line naming the slot's socket.
        const log = fs.readFileSync(host.at(host.L.accessLog), "utf8").trim().split("\n");
        const of = (c: Color) => log.filter((l) => l.includes(`/${c}/app.sock"`));
        routerCounts = {
          blue: [of("blue").length, of("blue").filter((l) => / 5\d\d /.test(l)).length],
          green: [of("green").length, of("green").filter((l) => / 5\d\d /.test(l)).length],
        };
        assert.deepStrictEqual(
          routerCounts,
          { blue: [35, 5], green: [15, 0] },
          "what the test sent is what nginx logged",
        );
      } else {
        // HAProxy's own counters (one worker: no reload since the start), from its runtime API.
        const stat = host.lib(`printf 'show stat\\n' | socat - UNIX-CONNECT:$BG_HAPROXY_ADMIN`).stdout.split("\n");
        const cols = stat[0].replace(/^# /, "").split(",");
        const row = (c: Color) => stat.find((l) => l.startsWith(`bluegreen_${c}_socket,BACKEND,`))!.split(",");
        const counts = (c: Color): [number, number] => [
          Number(row(c)[cols.indexOf("req_tot")]),
          Number(row(c)[cols.indexOf("hrsp_5xx")]),
        ];
        routerCounts = { blue: counts("blue"), green: counts("green") };
        // HAProxy counts the switches' own checks through the check listener too (a few per switch).
        assert.ok(routerCounts.blue[0] >= 35 && routerCounts.blue[1] === 5, JSON.stringify(routerCounts));
      }
      for (const c of ["blue", "green"] as Color[]) {
        assert.strictEqual(value(m, "bluegreen_slot_requests_total", { color: c }), routerCounts[c][0], c);
        assert.strictEqual(value(m, "bluegreen_slot_responses_5xx_total", { color: c }), routerCounts[c][1], c);
      }
    });

    if (router === "haproxy")
      it("the counters keep counting across a reload (each worker counts from 0; a gone one's counts are kept)", async () => {
        const before = promcheck(metrics());
        const pid = Number(fs.readFileSync(host.at("haproxy.pid"), "utf8").trim());
        const reload = host.lib(`haproxy_reload_settled`);
        assert.strictEqual(reload.status, 0, reload.stderr);
        requests(7);
        await new Promise((r) => setTimeout(r, 1500));
        const after = promcheck(metrics());
        assert.ok(pid > 0);
        assert.strictEqual(
          value(after, "bluegreen_slot_requests_total", { color: "blue" }),
          value(before, "bluegreen_slot_requests_total", { color: "blue" }) + 7,
        );
      });

    it("backups and the certificate: age, size and expiry as the manifests and the TLS record say", () => {
      const db = host.at(`${host.L.dataDir}/app.db`);
      assert.strictEqual(
        run("sqlite3", [db, "CREATE TABLE t(x); INSERT INTO t VALUES (randomblob(10000));"]).status,
        0,
      );
      const conf = renderBackupConf({ databases: ["app.db"], keepHourly: 24, keepDaily: 7, keepSnapshots: 10 });
      assert.strictEqual(
        slots.tool("backup-config.sh", { STATE: "on" }, [], renderBundle({ conf, ...renderBackupUnits(host.L) }))
          .status,
        0,
      );
      const b = slots.tool("backup.sh", {}, ["now"]);
      assert.strictEqual(b.status, 0, b.stderr);
      const id = /^backup (\S+):/.exec(b.stdout)![1];
      const manifest = fs.readFileSync(host.at(`${host.L.backupDir}/${id}/manifest`), "utf8");
      // The certificate, installed as the tls step installs one.
      const tls = host.tool(
        "tls-config.sh",
        { MODE: "files", DOMAINS: "metrics.test" },
        selfSignedBundle("metrics.test"),
      );
      assert.strictEqual(tls.status, 0, tls.stderr);
      const m = promcheck(metrics());
      assert.strictEqual(
        value(m, "bluegreen_backups"),
        fs.readdirSync(host.at(host.L.backupDir)).filter((d) => !d.startsWith(".")).length,
      );
      assert.strictEqual(
        value(m, "bluegreen_backup_size_bytes", { database: "app.db" }),
        fs.statSync(host.at(`${host.L.backupDir}/${id}/db/app.db`)).size,
      );
      assert.strictEqual(
        value(m, "bluegreen_backup_size_bytes", { database: "app.db" }),
        Number(/\nbytes\.app\.db=(\d+)\n/.exec(manifest)![1]),
      );
      assert.strictEqual(
        value(m, "bluegreen_backup_last_success_timestamp_seconds"),
        Date.parse(/\ncreated=(\S+)\n/.exec(manifest)![1]) / 1000,
      );
      assert.ok(value(m, "bluegreen_backup_age_seconds") <= 5);
      assert.strictEqual(value(m, "bluegreen_backup_failures_total"), 0);
      const notAfter = /\nnot_after=(\S+)/.exec(fs.readFileSync(host.at(`${host.L.tlsDir}/status`), "utf8"))![1];
      assert.strictEqual(value(m, "bluegreen_tls_certificate_expiry_timestamp_seconds"), Date.parse(notAfter) / 1000);
      assert.strictEqual(value(m, "bluegreen_tls_renewal_failed"), 0);
    });

    it("served over HTTP as the socket unit serves it: text/plain version 0.0.4, the same families", () => {
      const r = run("curl", ["-sS", "-D", "-", `http://127.0.0.1:${PORT}/metrics`]);
      assert.strictEqual(r.status, 0, r.stderr);
      const [head, body] = r.stdout.split("\r\n\r\n");
      assert.match(
        head,
        /^HTTP\/1\.0 200 OK\r\nContent-Type: text\/plain; version=0\.0\.4; charset=utf-8\r\nContent-Length: \d+\r\n/,
      );
      assert.strictEqual(Number(/Content-Length: (\d+)/.exec(head)![1]), Buffer.byteLength(body));
      assert.deepStrictEqual(Object.keys(promcheck(body)).sort(), Object.keys(promcheck(metrics())).sort());
      assert.match(run("curl", ["-s", "-D", "-", `http://127.0.0.1:${PORT}/other`]).stdout, /^HTTP\/1\.0 404 /);
      // node_exporter's textfile directory, when the host has one: the same families, in <ns>.prom.
      fs.mkdirSync(host.at(TEXTFILE_DIR), { recursive: true });
      const t = slots.tool("metrics.sh", {}, ["textfile"]);
      assert.strictEqual(t.status, 0, t.stderr);
      const file = host.at(`${TEXTFILE_DIR}/${host.L.ns}.prom`);
      assert.deepStrictEqual(
        Object.keys(promcheck(fs.readFileSync(file, "utf8"))).sort(),
        Object.keys(promcheck(body)).sort(),
      );
      assert.deepStrictEqual(
        fs.readdirSync(host.at(TEXTFILE_DIR)),
        [`${host.L.ns}.prom`],
        "written whole, then renamed",
      );
    });
  });
}
