// Notifications on the local sandbox: the real notify-config.sh, notify-drain.sh and check.sh, the
// real switch.sh and its audit lines as the events' source, a real nginx, and receivers this test
// runs on 127.0.0.1 (a JSON webhook, Slack, Discord and ntfy endpoints, a stand-in sendmail).
// What a user relies on:
// - every event reaches every target with the fields it promises, and each delivery is audited;
// - a target that fails is tried again with a bound, then given up on (and kept), and said so;
// - a target that hangs never slows a switch: the switch only queues a file;
// - a webhook URL (a credential) is in no command line, output or audit line.
import * as assert from "assert";
import { spawn } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { renderNotifyConf, renderNotifyUnits } from "../../components/app/notifications";
import { NOTIFY_EVENTS } from "../../components/config/keys";
import { renderBundle } from "../../components/host/shell";
import { installTools, NodeSlots } from "../support/nodeSlots";
import { Sandbox, ToolResult } from "../support/sandbox";
import { run } from "../support/tools";

const BASE = 19560;
const RECEIVER = BASE + 8;
const HANG = BASE + 7;
const CLOSED = BASE + 6;
const TOKEN = "Tq7-secret-path-token";

interface Received {
  readonly kind: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

describe("notifications: every event to a JSON webhook, Slack, Discord, ntfy and mail, never in a switch's way (local sandbox)", function () {
  this.timeout(600_000);
  let host: Sandbox;
  let slots: NodeSlots;
  let receiver: http.Server;
  let hang: net.Server;
  const hung: net.Socket[] = [];
  const received: Received[] = [];
  let failFirst = 0;
  const audit = () => fs.readFileSync(host.at(host.L.auditLog), "utf8");
  const url = (kind: string, port = RECEIVER) => `http://127.0.0.1:${port}/${kind}/${TOKEN}`;

  function configure(
    urls: Record<string, string>,
    email: string[] = [],
    events: readonly string[] = NOTIFY_EVENTS,
  ): ToolResult {
    const n = { kinds: Object.keys(urls) as never[], email, events, diskFreePercent: 10 };
    return slots.tool(
      "notify-config.sh",
      { STATE: "on" },
      [],
      renderBundle({
        conf: renderNotifyConf(n),
        urls: Object.entries(urls)
          .map(([k, v]) => `${k}=${v}\n`)
          .join(""),
        ...renderNotifyUnits(host.L),
      }),
    );
  }
  /** A tool, run without blocking the event loop: the receivers live in this process. */
  function toolAsync(name: string, vars: Record<string, string> = {}): Promise<ToolResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(host.at(`${host.L.toolsDir}/${name}`), [], { env: { PATH: slots.path, ...vars } });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      child.on("error", reject);
      child.on("close", (status) => resolve({ status, stdout, stderr }));
      child.stdin.end();
    });
  }
  const drain = (vars: Record<string, string> = {}) => toolAsync("notify-drain.sh", vars);
  const switchTo = (target: string, extra: Record<string, string> = {}) =>
    toolAsync("switch.sh", {
      TARGET: target,
      HEALTH_PATH: "/health/ready",
      CHECK_PORT: String(BASE + 2),
      VERIFY_TIMEOUT: "15",
      WATCH_SECONDS: "0",
      ERROR_PERCENT: "5",
      MIN_ERRORS: "5",
      ...extra,
    });
  const lib = (code: string) => {
    const r = host.lib(code);
    assert.strictEqual(r.status, 0, r.stderr);
  };

  before(async () => {
    receiver = http.createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        const kind = (req.url ?? "").split("/")[1];
        if (kind === "flaky" && failFirst-- > 0) {
          res.statusCode = 500;
          res.end("try again");
          return;
        }
        received.push({ kind, headers: req.headers, body });
        res.end("ok");
      });
    });
    await new Promise<void>((r) => receiver.listen(RECEIVER, "127.0.0.1", r));
    // Accepts, reads, never answers.
    hang = net.createServer((s) => {
      hung.push(s);
      s.on("error", () => {});
    });
    await new Promise<void>((r) => hang.listen(HANG, "127.0.0.1", r));
    host = new Sandbox({
      mode: "socket",
      httpPort: BASE,
      previewPort: BASE + 1,
      checkPort: BASE + 2,
      ports: { blue: BASE + 3, green: BASE + 4 },
    });
    assert.strictEqual(host.configureAndStart().status, 0);
    installTools(host, ["notify-config.sh", "notify-drain.sh", "check.sh"]);
    slots = new NodeSlots(host);
    fs.writeFileSync(
      path.join(slots.bin, "sendmail"),
      `#!/bin/sh\n{ echo "sendmail $*"; cat; echo "."; } >>${host.at("mail.log")}\n`,
      { mode: 0o755 },
    );
    await host.startSlot("blue", "v1");
    await host.startSlot("green", "v2");
    assert.strictEqual(host.switchTo("blue").status, 0);
  });
  after(async () => {
    for (const s of hung) s.destroy();
    await new Promise((r) => hang?.close(r));
    await new Promise((r) => receiver?.close(r));
    host?.stop();
  });

  it("the step installs root-only curl configs with the URLs, the drain's .path unit and the check timer", () => {
    const r = configure({ webhook: url("webhook"), slack: url("slack"), discord: url("discord"), ntfy: url("ntfy") }, [
      "ops@example.com",
    ]);
    assert.strictEqual(r.status, 0, r.stderr);
    assert.strictEqual(
      r.stdout,
      `notifications: webhook slack discord ntfy email for ${NOTIFY_EVENTS.length} kinds of event; delivered by bluegreen-notify.service, never by the step that made the event\n`,
    );
    const curl = host.at(`${host.L.notifyConfDir}/slack.curl`);
    assert.strictEqual(fs.statSync(curl).mode & 0o777, 0o600);
    assert.strictEqual(fs.readFileSync(curl, "utf8").split("\n")[1], `url = "${url("slack")}"`);
    assert.match(
      fs.readFileSync(slots.log, "utf8"),
      /systemctl enable -q --now bluegreen-notify\.path bluegreen-check\.timer\n/,
    );
    assert.ok(!audit().includes(TOKEN) && !r.stdout.includes(TOKEN) && !r.stderr.includes(TOKEN));
  });

  it("each event reaches each target with its fields, and each delivery is an audit line", async () => {
    // switch (the real switch.sh), then a rollback by its watch: green answers 500 to the public.
    const sw = await switchTo("green");
    assert.strictEqual(sw.status, 0, sw.stderr);
    fs.writeFileSync(path.join(host.faultDir, "blue.error500"), "");
    const loader = spawn("bash", [
      "-c",
      `while :; do curl -s -o /dev/null http://127.0.0.1:${BASE}/; sleep 0.02; done`,
    ]);
    const rb = await switchTo("blue", { WATCH_SECONDS: "3", ERROR_PERCENT: "5", MIN_ERRORS: "3" });
    loader.kill("SIGKILL");
    fs.rmSync(path.join(host.faultDir, "blue.error500"));
    assert.strictEqual(rb.status, 1, rb.stdout);
    assert.match(rb.stderr, /switch to blue rolled back/);
    // The lines the other steps write (hooks.sh, switch.sh's catch_up, tls-renew.sh, backup.sh, restore.sh), as they write them.
    lib('audit hook "name=preSwitch slot=green version=v2 exit=3" failed');
    lib('audit deploy "slot=green version=v2 staged=applied" failed');
    lib('audit tls-renew "domains=example.com" failed');
    lib('audit backup "kind=hourly why=sqlite_could_not_copy_app.db" failed');
    lib(
      'audit restore "id=20261201T000000Z-hourly source=local pre_restore=20261201T010000Z-pre-restore databases=app.db ms=900" ok',
    );
    // What only the periodic checks see: an expiring certificate, a backup missed, a live link that
    // disagrees with the record, a full disk (a 1 MiB tmpfs on the data directory, 98% used).
    const data = host.at(host.L.dataDir);
    assert.strictEqual(run("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", data]).status, 0);
    try {
      run("dd", ["if=/dev/zero", `of=${data}/fill`, "bs=1k", "count=1000"]);
      const soon = new Date(Date.now() + 5 * 86400_000).toISOString().replace(/\.\d+Z$/, "Z");
      fs.mkdirSync(host.at(host.L.tlsDir), { recursive: true });
      fs.writeFileSync(host.at(`${host.L.tlsDir}/status`), `mode=files\nnot_after=${soon}\nnames=example.com\n`);
      fs.mkdirSync(host.at(host.L.backupConfDir), { recursive: true });
      fs.writeFileSync(
        host.at(`${host.L.backupConfDir}/backup.conf`),
        `databases=app.db\nconfigured_at=${Math.floor(Date.now() / 1000) - 3 * 3600}\n`,
      );
      // The rollback above left green live: the record says blue, as a hand-made move would leave it.
      fs.writeFileSync(host.at(`${host.L.stateDir}/active`), "blue\n");
      const check = slots.tool("check.sh");
      assert.strictEqual(check.status, 0, check.stderr);
      assert.match(check.stdout, /^backup-missed: no backup has succeeded for over 2 hours \(last: never; /m);
      assert.match(check.stdout, /^tls-expiring: the certificate for example\.com expires in [45] days /m);
      assert.match(check.stdout, /^disk-low: \S+ 0 MiB free \(\d%, under 10%\);$/m);
      assert.match(
        check.stdout,
        /^drift: the live link serves green but bluegreen recorded blue \(moved by hand\?\)(; |$)/m,
      );
      // A second check tells nothing new: each condition once a day while it lasts.
      const queued = fs.readdirSync(host.at(`${host.L.notifyDir}/queue`)).length;
      assert.strictEqual(slots.tool("check.sh").status, 0);
      assert.strictEqual(fs.readdirSync(host.at(`${host.L.notifyDir}/queue`)).length, queued);
    } finally {
      run("umount", [data]);
      fs.writeFileSync(host.at(`${host.L.stateDir}/active`), "green\n");
      fs.rmSync(host.at(host.L.backupConfDir), { recursive: true });
      fs.rmSync(host.at(`${host.L.tlsDir}/status`));
    }
    const d = await drain();
    assert.strictEqual(d.status, 0, d.stderr);
    assert.deepStrictEqual(fs.readdirSync(host.at(`${host.L.notifyDir}/queue`)), []);
    const events = received.filter((r) => r.kind === "webhook").map((r) => JSON.parse(r.body) as Record<string, any>);
    assert.deepStrictEqual(events.map((e) => e.event).sort(), [...NOTIFY_EVENTS].sort(), "one of each event");
    const rollback = events.find((e) => e.event === "rollback")!;
    assert.deepStrictEqual(Object.keys(rollback), ["event", "result", "app", "host", "at", "message", "fields"]);
    assert.strictEqual(rollback.result, "rolled-back");
    assert.strictEqual(rollback.app, "bluegreen");
    assert.strictEqual(rollback.host, os.hostname());
    assert.match(rollback.at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.strictEqual(rollback.message, "bluegreen: automatic rollback from blue to green: rolled-back");
    assert.deepStrictEqual(Object.keys(rollback.fields), ["from", "to", "errors", "responses"]);
    const done = events.find((e) => e.event === "switch")!;
    assert.match(done.message, /^bluegreen: green is live \(was blue\), version v2, switched in \d+ ms$/);
    assert.deepStrictEqual(done.fields, { from: "blue", to: "green", version: "v2" });
    const slack = received.filter((r) => r.kind === "slack").map((r) => JSON.parse(r.body) as { text: string });
    assert.strictEqual(slack.length, NOTIFY_EVENTS.length);
    assert.ok(
      slack.some((s) =>
        s.text.startsWith(
          `*[bluegreen] bluegreen on ${os.hostname()}: rollback (rolled-back)*\nbluegreen: automatic rollback from blue to green`,
        ),
      ),
    );
    const discord = received.filter((r) => r.kind === "discord").map((r) => JSON.parse(r.body) as { content: string });
    assert.ok(
      discord.some((s) =>
        s.content.startsWith(
          `**[bluegreen] bluegreen on ${os.hostname()}: hook-failed (failed)**\nbluegreen: preSwitch failed on slot green (exit 3)`,
        ),
      ),
    );
    const ntfy = received.filter((r) => r.kind === "ntfy");
    const staged = ntfy.find((r) => String(r.headers.title).includes("staged-failed"))!;
    assert.strictEqual(staged.headers.priority, "high");
    assert.strictEqual(staged.headers.tags, "bluegreen,staged-failed");
    assert.match(staged.body, /^bluegreen: slot green \(now idle\) did not come up with the settings staged for it/);
    assert.strictEqual(
      ntfy.find((r) => String(r.headers.title).includes(": switch (ok)"))!.headers.priority,
      undefined,
    );
    const mail = fs.readFileSync(host.at("mail.log"), "utf8");
    assert.strictEqual((mail.match(/^sendmail -t -oi$/gm) ?? []).length, NOTIFY_EVENTS.length);
    assert.match(
      mail,
      new RegExp(
        `^To: ops@example\\.com\\nSubject: \\[bluegreen\\] bluegreen on ${os.hostname()}: disk-low \\(low\\)\\n`,
        "m",
      ),
    );
    for (const t of ["webhook", "slack", "discord", "ntfy", "email"])
      assert.strictEqual(
        (audit().match(new RegExp(`Z notify event=\\S+ target=${t} try=1 id=\\S+ result=ok `, "g")) ?? []).length,
        NOTIFY_EVENTS.length,
        t,
      );
    assert.ok(!audit().includes(TOKEN));
    console.log(
      `      ${events.length} events x 5 targets delivered: ${received.length} HTTP requests and ${NOTIFY_EVENTS.length} mails`,
    );
  });

  it("a failing target is tried again with a bound: a 500 then ok is delivered at try 2; a refused one is given up after 3 tries and kept", async () => {
    assert.strictEqual(configure({ webhook: url("flaky"), slack: url("slack", CLOSED) }).status, 0);
    failFirst = 1;
    const before = received.length;
    lib('audit hook "name=postSwitch slot=blue version=v1 exit=1" failed');
    const started = Date.now();
    const d = await drain({ BG_NOTIFY_TRIES: "3", BG_NOTIFY_BACKOFF: "1 1" });
    const took = Date.now() - started;
    assert.strictEqual(d.status, 0, d.stderr);
    assert.strictEqual(received.length, before + 1);
    assert.match(
      audit(),
      /Z notify event=hook-failed target=webhook try=1 id=(\S+) why=HTTP_500,_curl_exit_0:_ result=failed by=\w+\n(.*\n)*.*Z notify event=hook-failed target=webhook try=2 id=\1 result=ok /,
    );
    assert.match(
      audit(),
      /Z notify event=hook-failed target=slack try=1 id=(\S+) why=\S*curl_exit_7\S* result=failed .*\n(.*\n)*.*target=slack try=2 id=\1 \S+ result=failed .*\n(.*\n)*.*target=slack try=3 id=\1 \S+ result=gave-up /,
    );
    assert.match(
      d.stderr,
      /^notification \S+ \(hook-failed\) to slack given up after 3 tries: HTTP 000, curl exit 7: /,
    );
    assert.strictEqual(fs.readdirSync(host.at(`${host.L.notifyDir}/failed`)).length, 1, "the event is kept");
    assert.ok(took < 10_000, `bounded: ${took} ms`);
    console.log(`      flaky delivered at try 2; refused given up after 3 tries, in ${took} ms`);
  });

  it("a target that hangs does not slow a switch (40 switches, alternately with and without notifications), and its URL is in no command line", async () => {
    assert.strictEqual(configure({ webhook: url("webhook", HANG), slack: url("slack", HANG) }).status, 0);
    const conf = host.at(`${host.L.notifyConfDir}/notify.conf`);
    // The drain runs beside the switches, as its .path unit starts it: each try waits 10 s for the hung target.
    // The drain as its .path unit runs it: started whenever the queue is not empty. Each try
    // waits 10 s for the hung target.
    const drainer = spawn(
      "bash",
      [
        "-c",
        `while :; do if compgen -G '${host.at(`${host.L.notifyDir}/queue`)}/*' >/dev/null; then ${host.at(`${host.L.toolsDir}/notify-drain.sh`)}; fi; sleep 0.1; done`,
      ],
      { env: { PATH: slots.path, BG_NOTIFY_TRIES: "2", BG_NOTIFY_BACKOFF: "1" }, detached: true },
    );
    let drainErr = "";
    drainer.stderr.on("data", (d) => (drainErr += d));
    const argv = new Set<string>();
    const sample = () => {
      for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p)))
        try {
          argv.add(fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " "));
        } catch {
          /* gone */
        }
    };
    const without: number[] = [];
    const with_: number[] = [];
    for (let i = 0; i < 40; i++) {
      // Side by side: every other switch without notifications (no notify.conf: nothing is queued).
      // Each switch really moves traffic (green, blue, green, ...); with and without in pairs, so each has both directions.
      const on = Math.floor(i / 2) % 2 === 0;
      if (on && !fs.existsSync(conf)) fs.renameSync(`${conf}.off`, conf);
      if (!on && fs.existsSync(conf)) fs.renameSync(conf, `${conf}.off`);
      const t = Date.now();
      const r = await switchTo(i % 2 === 0 ? "blue" : "green");
      (on ? with_ : without).push(Date.now() - t);
      assert.strictEqual(r.status, 0, r.stderr);
      sample();
    }
    if (!fs.existsSync(conf)) fs.renameSync(`${conf}.off`, conf);
    without.sort((a, b) => a - b);
    with_.sort((a, b) => a - b);
    const median = (a: number[]) => a[Math.floor(a.length / 2)];
    console.log(
      `      switch time, median (max) of 20 each: ${median(without)} (${without[19]}) ms without notifications, ${median(with_)} (${with_[19]}) ms with a hanging target and the drain stuck on it; ${hung.length} connections held by the hanging target`,
    );
    assert.ok(hung.length > 0, `the drain reached the hanging target meanwhile: ${drainErr}`);
    assert.ok(median(with_) < median(without) * 1.5 + 50, "a hanging target does not slow a switch");
    assert.ok(
      [...argv].some((l) => l.startsWith("curl ")),
      "curl was running when sampled",
    );
    for (const l of argv) assert.ok(!l.includes(TOKEN), l);
    process.kill(-drainer.pid!, "SIGKILL");
    await new Promise((r) => drainer.on("close", r));
    assert.ok(!audit().includes(TOKEN));
    // Every switch above queued its event: the switches wrote files, the drain sends them.
    // Every switch with notifications queued its event; the drain, stuck on the hung target, has sent none.
    assert.ok(fs.readdirSync(host.at(`${host.L.notifyDir}/queue`)).length >= 18);
  });
});
