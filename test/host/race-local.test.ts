// Races every host operation against a switch, on one real router serving two apps (local
// sandbox): an admin's reload, another app's config change (a reload), another app's switch,
// maintenance, certificate renewal and deploy, this app's maintenance and prune. After each round, what the router
// serves must be what each app's host records, and no switch may fail because of another
// app. The watch is off (WATCH_SECONDS=0) to keep the rounds short; the watch's own reads
// under reloads are in switch-local.test.ts. Needs nginx, haproxy, socat, curl and go.
import * as assert from "assert";
import { spawn } from "child_process";
import * as fs from "fs";
import { Color } from "../../components/host/layout";
import * as http from "http";
import { renderBackupConf } from "../../components/app/backups";
import { renderNotifyConf } from "../../components/app/notifications";
import { selfSignedBundle } from "../support/certs";
import { installTools, noAppUser } from "../support/nodeSlots";
import { Sandbox, SWITCH_TEST_VALUES, ToolResult } from "../support/sandbox";
import { run } from "../support/tools";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ROUNDS = Number(process.env.BLUEGREEN_RACE_ROUNDS ?? 128);

/** Runs a command without blocking the event loop (so that two host steps really overlap). */
function spawnAsync(cmd: string, args: string[], stdin = ""): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { PATH: process.env.PATH } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

/** An installed tool of a sandbox's app, with env values as the command line passes them. */
function toolAsync(
  host: Sandbox,
  name: string,
  vars: Record<string, string>,
  stdin = "",
  args: string[] = [],
): Promise<ToolResult> {
  const words = Object.entries(vars).map(([k, v]) => `${k}=${v}`);
  return spawnAsync("env", [...words, host.at(`${host.L.toolsDir}/${name}`), ...args], stdin);
}

/** Shell code with an app's lib.sh sourced. */
function shAsync(host: Sandbox, code: string): Promise<ToolResult> {
  const lib = host.at(`${host.L.toolsDir}/lib.sh`);
  return spawnAsync("bash", ["--norc", "-c", `set -euo pipefail; . ${lib}; ${code}`]);
}

function switchAsync(host: Sandbox, target: Color): Promise<ToolResult> {
  return toolAsync(host, "switch.sh", {
    ...SWITCH_TEST_VALUES,
    TARGET: target,
    HEALTH_PATH: "/health/ready",
    CHECK_PORT: String(host.opts.checkPort),
    WATCH_SECONDS: "0",
  });
}

const recorded = (host: Sandbox) => fs.readFileSync(host.at(`${host.L.stateDir}/active`), "utf8").trim();

/** The colour the public listener serves an app (while port 80 redirects it to https: on :443). */
function served(host: Sandbox): string {
  const https = host.opts.tls?.httpsPort;
  if (!https || !fs.existsSync(host.at(host.L.httpsFlag))) return host.servedColor();
  const name = host.opts.domains![0];
  const r = run("curl", [
    "-sSk",
    "-o",
    "/dev/null",
    "-D",
    "-",
    "--max-time",
    "2",
    "--resolve",
    `${name}:${https}:127.0.0.1`,
    `https://${name}:${https}/`,
  ]);
  return /x-bluegreen-color: *(\w+)/i.exec(r.stdout)?.[1] ?? `none (${r.stdout.split("\r\n")[0] || r.stderr.trim()})`;
}

/** Waits up to 3 s until the public listener serves what the app records; the last answer otherwise. */
async function settled(host: Sandbox): Promise<string | undefined> {
  let now = "";
  for (let waited = 0; waited <= 3000; waited += 50) {
    now = served(host);
    if (now === recorded(host)) return undefined;
    await sleep(50);
  }
  return `${host.L.app} serves ${now}, records ${recorded(host)}`;
}

for (const router of ["nginx", "haproxy"] as const) {
  const base = router === "nginx" ? 19020 : 19060;
  describe(`a switch raced against every other host operation, two apps on one real ${router} (local sandbox)`, function () {
    this.timeout(600_000);
    let a: Sandbox;
    let b: Sandbox;
    let shopPreview = base + 5;
    let receiver: http.Server;
    let delivered = 0;

    before(async () => {
      // The shop (the host's first app) serves HTTPS, so its certificate can be renewed during the race.
      b = new Sandbox({
        router,
        mode: "socket",
        app: "shop",
        domains: ["shop.test"],
        tls: { hstsMaxAge: 0, httpsPort: base + 10 },
        httpPort: base,
        previewPort: shopPreview,
        checkPort: base + 7,
        ports: { blue: base + 8, green: base + 9 },
      });
      const cfgB = b.configureAndStart();
      assert.strictEqual(cfgB.status, 0, cfgB.stderr);
      a = new Sandbox({
        router,
        mode: "socket",
        host: b,
        httpPort: base,
        previewPort: base + 1,
        checkPort: base + 2,
        ports: { blue: base + 3, green: base + 4 },
      });
      const cfg = a.configureAndStart();
      assert.strictEqual(cfg.status, 0, cfg.stderr);
      for (const app of [a, b]) {
        await app.startSlot("blue", "v1");
        await app.startSlot("green", "v2");
        const first = app.switchTo("blue", { WATCH_SECONDS: "0" });
        assert.strictEqual(first.status, 0, first.stderr);
      }
      assert.strictEqual(served(a), "blue");
      assert.strictEqual(served(b), "blue");
      // App A's data: a SQLite file backed up (backup.conf as its step writes it), notifications to a
      // webhook receiver here, and its metrics.
      installTools(a, ["backup.sh", "restore.sh", "notify-drain.sh", "metrics.sh"]);
      noAppUser(a);
      assert.strictEqual(
        run("sqlite3", [
          a.at(`${a.L.dataDir}/app.db`),
          "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);",
        ]).status,
        0,
      );
      fs.mkdirSync(a.at(a.L.backupConfDir), { recursive: true });
      fs.writeFileSync(
        a.at(`${a.L.backupConfDir}/backup.conf`),
        renderBackupConf({ databases: ["app.db"], keepHourly: 24, keepDaily: 7, keepSnapshots: 1000 }),
      );
      receiver = http.createServer((req, res) => req.resume().on("end", () => (delivered++, res.end("ok"))));
      await new Promise<void>((r) => receiver.listen(base + 11, "127.0.0.1", r));
      fs.mkdirSync(a.at(`${a.L.notifyDir}/queue`), { recursive: true });
      fs.mkdirSync(a.at(a.L.notifyConfDir), { recursive: true });
      fs.writeFileSync(
        a.at(`${a.L.notifyConfDir}/notify.conf`),
        renderNotifyConf({ kinds: ["webhook"], email: [], events: ["switch"], diskFreePercent: 10 }),
      );
      fs.writeFileSync(a.at(`${a.L.notifyConfDir}/webhook.curl`), `url = "http://127.0.0.1:${base + 11}/hook"\n`);
      fs.mkdirSync(a.at(a.L.metricsDir), { recursive: true });
      const first = await toolAsync(a, "backup.sh", {}, "", ["now"]);
      assert.strictEqual(first.status, 0, first.stderr);
      // The first certificate (with HAProxy, a reload that adds the :443 listener); each round's renewal replaces it.
      const cert = await renew();
      assert.strictEqual(cert.status, 0, cert.stderr);
      assert.strictEqual(served(b), "blue");
    });
    after(() => {
      receiver?.close();
      a?.stop();
      b?.stop();
    });

    /** A renewal of the shop's certificate as tls-config.sh installs one: a new self-signed certificate for its name. */
    function renew(): Promise<ToolResult> {
      return toolAsync(b, "tls-config.sh", { MODE: "files", DOMAINS: "shop.test" }, selfSignedBundle("shop.test"));
    }

    /** The operations a switch of app A races against, each as it runs on a host. */
    const ops: Record<string, () => Promise<unknown>> = {
      // As `systemctl reload`: SIGUSR2 to HAProxy's master, `nginx -s reload`.
      "an admin's reload": async () => {
        if (router === "haproxy") process.kill(Number(fs.readFileSync(a.at("/haproxy.pid"), "utf8").trim()), "SIGUSR2");
        else assert.strictEqual((await shAsync(a, "nginx_reload")).status, 0);
      },
      "another app's config change (a reload)": async () => {
        shopPreview = shopPreview === base + 5 ? base + 6 : base + 5;
        const { vars, stdin } = b.routerConfigInput(undefined, {}, shopPreview);
        const r = await toolAsync(b, "router-config.sh", vars, stdin);
        assert.strictEqual(r.status, 0, r.stderr);
        assert.match(r.stdout, /config updated and reloaded/);
      },
      "another app's switch": async () => {
        const r = await switchAsync(b, recorded(b) === "blue" ? "green" : "blue");
        assert.strictEqual(r.status, 0, r.stderr);
      },
      "another app's maintenance on and off": async () => {
        for (const STATE of ["on", "off"]) {
          const r = await toolAsync(b, "maintenance.sh", { STATE }, "<p>back soon</p>");
          assert.strictEqual(r.status, 0, r.stderr);
        }
      },
      "another app's certificate renewal": async () => {
        const r = await renew();
        assert.strictEqual(r.status, 0, r.stderr);
        assert.match(r.stdout, router === "nginx" ? /nginx was not reloaded/ : /haproxy was not reloaded/);
      },
      "another app's deploy of its idle slot": async () => {
        const idle = recorded(b) === "blue" ? "green" : "blue";
        await b.startSlot(idle, idle === "blue" ? "v1" : "v2");
      },
      "this app's maintenance on and off": async () => {
        for (const STATE of ["on", "off"]) {
          const r = await toolAsync(a, "maintenance.sh", { STATE }, "<p>back soon</p>");
          assert.strictEqual(r.status, 0, r.stderr);
        }
      },
      "this app's prune": async () => {
        const r = await toolAsync(a, "prune.sh", { KEEP: "2", PROTECT: "v1,v2" });
        assert.strictEqual(r.status, 0, r.stderr);
      },
      "this app's backup": async () => {
        const r = await toolAsync(a, "backup.sh", {}, "", ["now"]);
        assert.strictEqual(r.status, 0, r.stderr);
      },
      "this app's restore of its latest backup (maintenance on and off)": async () => {
        const r = await toolAsync(a, "restore.sh", {}, "", ["latest"]);
        assert.strictEqual(r.status, 0, r.stderr);
      },
      "this app's notification drain": async () => {
        const r = await toolAsync(a, "notify-drain.sh", {});
        assert.strictEqual(r.status, 0, r.stderr);
      },
      "this app's metrics read": async () => {
        const r = await toolAsync(a, "metrics.sh", {});
        assert.strictEqual(r.status, 0, r.stderr);
        assert.match(r.stdout, /^bluegreen_live\{app="bluegreen",color="(blue|green)"\} 1$/m);
      },
    };

    it(`${ROUNDS} rounds, each a switch of one app with another operation 0-250 ms before or 0-60 ms after it starts: what serves is what is recorded, and no switch fails`, async () => {
      const names = Object.keys(ops);
      const mismatches: string[] = [];
      const failed: string[] = [];
      const perOp: Record<string, number> = {};
      for (let i = 0; i < ROUNDS; i++) {
        const name = names[i % names.length];
        perOp[name] = (perOp[name] ?? 0) + 1;
        const target: Color = recorded(a) === "blue" ? "green" : "blue";
        // Half the rounds start the operation first (up to 250 ms ahead), half the switch (up to 60 ms ahead).
        const opFirst = i % 2 === 0;
        const lead = Math.floor(Math.random() * (opFirst ? 250 : 60));
        let sw: Promise<ToolResult>;
        let op: Promise<unknown>;
        if (opFirst) {
          op = ops[name]();
          await sleep(lead);
          sw = switchAsync(a, target);
        } else {
          sw = switchAsync(a, target);
          await sleep(lead);
          op = ops[name]();
        }
        const [r] = await Promise.all([sw, op]);
        if (r.status !== 0)
          failed.push(`round ${i} (${name}, ${opFirst ? "op" : "switch"} first by ${lead} ms): ${r.stderr.trim()}`);
        else if (recorded(a) !== target) failed.push(`round ${i}: exit 0 but records ${recorded(a)}, not ${target}`);
        for (const app of [a, b]) {
          const m = await settled(app);
          if (m) mismatches.push(`round ${i} (${name}, ${opFirst ? "op" : "switch"} first by ${lead} ms): ${m}`);
        }
      }
      console.log(
        `      ${router}: ${ROUNDS} rounds (${Object.entries(perOp)
          .map(([k, v]) => `${v} ${k}`)
          .join(", ")}): ${mismatches.length} mismatches, ${failed.length} failed switches`,
      );
      assert.deepStrictEqual(mismatches, []);
      assert.deepStrictEqual(failed, []);
      // No backup is corrupt: each matches its checksums and passes PRAGMA integrity_check.
      const ids = fs.readdirSync(a.at(a.L.backupDir)).filter((d) => !d.startsWith("."));
      for (const id of ids) {
        const dir = a.at(`${a.L.backupDir}/${id}`);
        assert.strictEqual(run("sha256sum", ["--quiet", "-c", "sha256sums"], { cwd: dir }).status, 0, id);
        assert.strictEqual(
          run("sqlite3", ["-readonly", `file:${dir}/db/app.db?immutable=1`, "PRAGMA integrity_check;"]).stdout,
          "ok\n",
          id,
        );
      }
      assert.ok(delivered > 0, "the drain delivered the switches' notifications");
      console.log(
        `      ${router}: ${ids.length} backups (restores' pre-restore copies included), all sound; ${delivered} notifications delivered`,
      );
    });
  });
}
