// deploy-slot.sh on the local sandbox: real demo-app slots, the real host scripts, and
// stand-ins only for systemd (systemctl, systemd-analyze, journalctl: the slots here are
// child processes, not units; each call is logged so the test sees no restart happened).
// What a user relies on: a slot the step does not restart (already running this way, or
// live with a change staged) still has to pass the readiness gate a switch or rollback to
// it will ask, on the current healthPath within the current healthTimeout; a failure names
// the path and the answer, a live slot keeps serving, and the deployed record says which
// healthPath the slot last passed on.
import * as assert from "assert";
import { spawn } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { Color, layout } from "../../components/host/layout";
import { renderBundle } from "../../components/host/shell";
import { loadScript } from "../../components/host/shell";
import { buildDemoApp, Sandbox } from "../support/sandbox";
import { run } from "../support/tools";

describe("deploy-slot.sh gates every slot it leaves running on the current healthPath (local sandbox)", function () {
  this.timeout(120_000);
  let host: Sandbox;
  let bin: string;
  let app: string;
  let sha: string;
  const calls = () => fs.readFileSync(path.join(host.root, "systemctl.log"), { encoding: "utf8", flag: "a+" });
  const record = (color: Color) => fs.readFileSync(host.at(`${layout.stateDir}/slots/${color}/deployed`), "utf8");
  const fault = (color: Color) => host.at(`faults/${color}.unready`);
  const pending = (color: Color) => host.at(`${layout.envDir}/${color}.pending`);
  const listen = (color: Color) => fs.readFileSync(host.at(`${layout.stateDir}/slots/${color}/listen`), "utf8").trim();

  /** deploy-slot.sh as the slot step runs it for v1, with systemd stood in for. */
  function deploy(color: Color, healthPath: string, env = 'LOG_LEVEL="info"\n', timeout = 5) {
    return run(host.at(`${layout.toolsDir}/deploy-slot.sh`), [], {
      env: {
        PATH: `${bin}:${process.env.PATH}`,
        SLOT: color,
        VERSION: "v1",
        SHA256: sha,
        LISTEN: listen(color),
        HEALTH_PATH: healthPath,
        HEALTH_TIMEOUT: String(timeout),
        SOURCE_FILE: app,
      },
      input: renderBundle({ unit: "[Service]\nExecStart=/bin/true\n", env }),
    });
  }

  before(async () => {
    host = new Sandbox({
      mode: "socket",
      httpPort: 19101,
      previewPort: 19102,
      checkPort: 19103,
      ports: { blue: 19104, green: 19105 },
    });
    fs.writeFileSync(host.at(`${layout.toolsDir}/deploy-slot.sh`), loadScript("deploy-slot.sh"), { mode: 0o755 });
    fs.mkdirSync(host.at(layout.unitDir), { recursive: true });
    bin = host.at("bin");
    fs.mkdirSync(bin);
    const log = path.join(host.root, "systemctl.log");
    const stub = (name: string, body: string) =>
      fs.writeFileSync(path.join(bin, name), `#!/bin/sh\necho "${name} $*" >>${log}\n${body}\n`, { mode: 0o755 });
    stub("systemctl", 'case "$1" in is-active) exit 0 ;; is-failed) exit 1 ;; show) echo 4242 ;; esac\nexit 0');
    stub("systemd-analyze", "exit 0");
    stub("journalctl", "echo '-- no entries (stand-in) --'");
    app = buildDemoApp("v1");
    sha = crypto.createHash("sha256").update(fs.readFileSync(app)).digest("hex");
    await host.startSlot("blue", "v1");
    await host.startSlot("green", "v1");
    // Both slots deployed (idle, no live link yet) on /healthz, which the demo app always answers.
    for (const c of ["blue", "green"] as const) {
      const r = deploy(c, "/healthz");
      assert.strictEqual(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^slot ${c}: v1 ready on `));
    }
    const live = host.lib("set_live green");
    assert.strictEqual(live.status, 0, live.stderr);
  });
  after(() => host?.stop());
  afterEach(() => {
    for (const c of ["blue", "green"] as const) fs.rmSync(fault(c), { force: true });
  });

  it("idle slot already running this way: a healthPath it answers 503 on fails the step, with the path and the answer; nothing restarts", () => {
    const before = calls();
    fs.writeFileSync(fault("blue"), "");
    const t0 = Date.now();
    const r = deploy("blue", "/health/ready");
    assert.ok(Date.now() - t0 >= 4000, "the gate waits healthTimeout (whole seconds) before it fails");
    assert.strictEqual(r.status, 1);
    assert.strictEqual(r.stdout, "");
    assert.strictEqual(
      r.stderr,
      "bluegreen: error: slot blue (v1) does not pass the readiness gate: GET /health/ready on it got HTTP 503 for 5 s, not 2xx (bluegreen:healthPath, bluegreen:healthTimeout), so a switch or rollback to it would be refused. It was not restarted and gets no public traffic: the live slot is untouched; nothing was changed.\n" +
        "Set healthPath back to one v1 answers 2xx on (it passed on /healthz): pulumi config set healthPath /healthz && pulumi up\n" +
        "Or deploy a release that serves /health/ready to blue: pulumi config set blueVersion VERSION && pulumi up\n" +
        "Last journal lines of bluegreen@blue:\n" +
        "    -- no entries (stand-in) --\n",
    );
    assert.doesNotMatch(calls().slice(before.length), /restart|daemon-reload/);
    assert.match(
      record("blue"),
      /^health_path=\/healthz\nhealth_timeout=5\n/m,
      "the record keeps the path it passed on",
    );
    assert.match(
      fs.readFileSync(host.at(layout.auditLog), "utf8"),
      /deploy slot=blue version=v1 health_path=\/health\/ready result=failed/,
    );
  });

  it("idle slot already running this way: the gate waits up to the current healthTimeout, then records the new path", () => {
    fs.writeFileSync(fault("blue"), "");
    // The slot becomes ready 1.5 s into the step: within healthTimeout 8, so the step passes.
    spawn("sh", ["-c", `sleep 1.5; rm -f ${fault("blue")}`], { stdio: "ignore" });
    const t0 = Date.now();
    const r = deploy("blue", "/health/ready", undefined, 8);
    assert.strictEqual(r.status, 0, r.stderr);
    assert.ok(Date.now() - t0 >= 1500, "it waited for the slot");
    assert.strictEqual(r.stdout, "slot blue: already runs v1 this way; not restarted (pid 4242)\n");
    assert.match(record("blue"), /^health_path=\/health\/ready\nhealth_timeout=8\n/m);
  });

  it("live slot already running this way: fails on the new healthPath, keeps serving, says traffic stays on it", () => {
    const before = calls();
    fs.writeFileSync(fault("green"), "");
    const r = deploy("green", "/health/ready");
    assert.strictEqual(r.status, 1);
    assert.strictEqual(
      r.stderr,
      "bluegreen: error: slot green is live and does not pass the readiness gate: GET /health/ready on it got HTTP 503 for 5 s, not 2xx (bluegreen:healthPath, bluegreen:healthTimeout). It was not restarted and traffic stays on green (v1), as before; nothing was changed. But once traffic moves off it, a switch back to it (a rollback) would be refused.\n" +
        "Set healthPath back to one v1 answers 2xx on (it passed on /healthz): pulumi config set healthPath /healthz && pulumi up\n" +
        "Or keep that healthPath until a release that serves /health/ready is live (deploy it to the idle slot, switch to it), then set /health/ready.\n" +
        "Last journal lines of bluegreen@green:\n" +
        "    -- no entries (stand-in) --\n",
    );
    assert.doesNotMatch(calls().slice(before.length), /restart|stop|daemon-reload/);
    assert.strictEqual(host.curlSlot("green", "/healthz").stdout, "ok\n", "the live slot still serves");
    assert.match(record("green"), /^health_path=\/healthz$/m);
  });

  it("live slot with a change to stage: fails on the new healthPath and stages nothing; once it passes, stages and records the path", () => {
    const changed = 'LOG_LEVEL="debug"\n';
    fs.writeFileSync(fault("green"), "");
    const before = calls();
    const r = deploy("green", "/health/ready", changed);
    assert.strictEqual(r.status, 1);
    assert.match(
      r.stderr,
      /^bluegreen: error: slot green is live and does not pass the readiness gate: GET \/health\/ready on it got HTTP 503 for 5 s, not 2xx .* traffic stays on green \(v1\), as before; nothing was changed\./,
    );
    assert.ok(!fs.existsSync(pending("green")), "nothing is staged");
    assert.doesNotMatch(calls().slice(before.length), /restart|stop|daemon-reload/);
    const envBefore = /^env=.*$/m.exec(record("green"))?.[0];

    fs.rmSync(fault("green"));
    const ok = deploy("green", "/health/ready", changed);
    assert.strictEqual(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /^slot green: PENDING\. It is live/);
    assert.ok(fs.existsSync(pending("green")), "the change is staged");
    const rec = record("green");
    assert.match(rec, /^health_path=\/health\/ready\nhealth_timeout=5\n$/m, "the record names the path it passed on");
    assert.strictEqual(/^env=.*$/m.exec(rec)?.[0], envBefore, "the process (and its env) is the one that ran before");
  });

  it("a slot that does not answer at all: the step names curl's error", () => {
    const r = deploy("blue", "/health/ready", undefined, 5);
    assert.strictEqual(r.status, 0, r.stderr);
    const sock = listen("blue").replace(/^unix:/, "");
    fs.renameSync(sock, `${sock}.away`);
    try {
      const down = deploy("blue", "/health/ready");
      assert.strictEqual(down.status, 1);
      assert.match(
        down.stderr,
        /^bluegreen: error: slot blue \(v1\) does not pass the readiness gate: GET \/health\/ready on it got no answer \(Failed to connect to blue port 80 after \d+ ms: Couldn't connect to server; curl exit 7\) for 5 s, not 2xx .*\nIt passed on \/health\/ready when last deployed: see why it does not now \(its journal below\), then run pulumi up again\.\nLast journal lines of bluegreen@blue:\n/,
      );
    } finally {
      fs.renameSync(`${sock}.away`, sock);
    }
  });
});
