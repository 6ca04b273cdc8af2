// bluegreen-status --json (status.sh) on a local sandbox host with a real nginx: one
// JSON object with what the text report says, every value escaped (hosts have no jq).
// `npm run status -- --json` passes it on (the last test runs the CLI against it, with the
// recording fake pulumi and an "ssh" that runs the host tool in the sandbox). Ports
// 18900-18904 are this file's own.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ROOT } from "../support/harness";
import { onPorts, Sandbox } from "../support/sandbox";
import { run } from "../support/tools";

describe("status --json (local sandbox)", function () {
  this.timeout(120_000);
  let host: Sandbox;
  before(async () => {
    host = new Sandbox(onPorts("nginx", 18900));
    const cfg = host.configureAndStart();
    assert.strictEqual(cfg.status, 0, cfg.stderr);
    await host.startSlot("blue", "v1");
    await host.startSlot("green", "v2");
    const first = host.switchTo("blue");
    assert.strictEqual(first.status, 0, first.stderr);
  });
  after(() => host?.stop());

  const status = (vars: Record<string, string> = {}) => {
    const r = host.tool("status.sh", vars, undefined, ["--json"]);
    assert.strictEqual(r.status, 0, r.stderr);
    assert.strictEqual(r.stderr, "");
    assert.ok(r.stdout.endsWith("}\n") && r.stdout.split("\n").length === 2, `one line: ${r.stdout}`);
    return JSON.parse(r.stdout);
  };

  it("one object: live and recorded colour, each slot's version, unit, readiness and listener, maintenance, audit tail", () => {
    const s = status({ LINES: "3" });
    assert.deepStrictEqual(Object.keys(s), [
      "live",
      "recorded",
      "interruptedSwitch",
      "maintenance",
      "slots",
      "tls",
      "backups",
      "releases",
      "logs",
      "audit",
    ]);
    // No backupDatabases on this host: no backups record.
    assert.strictEqual(s.backups, null);
    assert.strictEqual(s.live, "blue");
    assert.strictEqual(s.recorded, "blue");
    assert.strictEqual(s.interruptedSwitch, null);
    assert.deepStrictEqual(s.maintenance, { on: false, since: null });
    for (const [c, v] of [
      ["blue", "v1"],
      ["green", "v2"],
    ]) {
      const slot = s.slots[c];
      assert.deepStrictEqual(Object.keys(slot), ["version", "unit", "ready", "pid", "listen", "pending"], c);
      assert.strictEqual(slot.version, v, c);
      assert.strictEqual(slot.ready, true, c);
      assert.match(slot.listen, new RegExp(`^unix:\\S+/${c}/app\\.sock$`), c);
      assert.strictEqual(slot.pending, null, c);
      assert.ok(slot.pid === null || Number.isInteger(slot.pid), c);
    }
    assert.strictEqual(s.tls, null);
    assert.ok(Array.isArray(s.releases));
    assert.strictEqual(s.logs, "journalctl -u bluegreen@blue -u bluegreen@green -f");
    assert.strictEqual(s.audit.file, host.at("/var/log/bluegreen/audit.log"));
    assert.ok(s.audit.lines.length >= 1 && s.audit.lines.length <= 3, s.audit.lines.join("\n"));
    assert.match(s.audit.lines[s.audit.lines.length - 1], /Z switch (from=\S+ )?to=blue .*result=ok/);
  });

  it("agrees with the text report on the live colour and versions", () => {
    const text = host.tool("status.sh", {}).stdout;
    const s = status();
    assert.match(text, new RegExp(`^live: +${s.live} \\(recorded ${s.recorded}\\)\\n`));
    assert.match(text, new RegExp(`\\nblue: +${s.slots.blue.version} `));
    assert.match(text, new RegExp(`\\ngreen: +${s.slots.green.version} `));
  });

  it("escapes what it did not write: quotes, backslashes and control characters in an audit line and the maintenance note", () => {
    const nasty = 'a "quoted" \\ back\\slash\ttab \u0001ctl \u001b[31m é';
    fs.appendFileSync(host.at("/var/log/bluegreen/audit.log"), `${nasty}\n`);
    fs.writeFileSync(host.at("/var/lib/bluegreen/maintenance"), `2026-01-01T00:00:00Z "by" ops\\\n`);
    try {
      const s = status({ LINES: "1" });
      assert.deepStrictEqual(s.audit.lines, [nasty]);
      assert.deepStrictEqual(s.maintenance, { on: true, since: '2026-01-01T00:00:00Z "by" ops\\' });
    } finally {
      fs.rmSync(host.at("/var/lib/bluegreen/maintenance"));
    }
  });

  it("an interrupted switch is named with its from and to", () => {
    const L = host.lib('printf %s "$BG_SWITCH_INTENT"');
    assert.strictEqual(L.status, 0, L.stderr);
    const file = L.stdout;
    fs.writeFileSync(file, "from=blue\nto=green\nmoved_ms=1\nwatch_base=1\n");
    try {
      assert.deepStrictEqual(status().interruptedSwitch, { from: "blue", to: "green" });
    } finally {
      fs.rmSync(file);
    }
  });

  it("npm run status -- --json: the CLI passes the host's object on, beside the stack's view", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bg-status-cli-"));
    const outputs = {
      active: "blue",
      blueVersion: "v1",
      greenVersion: "v2",
      url: "http://127.0.0.1:18900/",
      statusCommand: "ssh root@127.0.0.1 /usr/local/sbin/bluegreen-status",
    };
    for (const [sub, values] of [
      ["config", { active: "blue", blueVersion: "v1", greenVersion: "v3" }],
      ["outputs", outputs],
    ] as const) {
      fs.mkdirSync(path.join(dir, sub));
      for (const [k, v] of Object.entries(values)) fs.writeFileSync(path.join(dir, sub, k), `${v}\n`);
    }
    fs.writeFileSync(path.join(dir, "calls"), "");
    // "ssh" into the sandbox: drop the options and the login, run the installed tool there.
    fs.writeFileSync(
      path.join(dir, "ssh"),
      `#!/bin/sh\nwhile [ "$1" = -o ]; do shift 2; done\nshift\n[ "$1" = /usr/local/sbin/bluegreen-status ] || exit 2\nshift\nexec "${host.at("/usr/local/lib/bluegreen/status.sh")}" "$@"\n`,
      { mode: 0o755 },
    );
    const r = run(
      "node",
      ["-r", "ts-node/register/transpile-only", path.join(ROOT, "components", "cli", "release.ts"), "status", "--json"],
      {
        env: {
          PATH: process.env.PATH,
          FAKE_DIR: dir,
          BLUEGREEN_PULUMI: path.join(ROOT, "test", "fixtures", "fake-pulumi-recorder"),
          BLUEGREEN_SSH: path.join(dir, "ssh"),
        },
      },
    );
    assert.strictEqual(r.status, 0, r.stderr);
    if (process.env.BLUEGREEN_SHOW_STATUS) console.log(r.stdout);
    const j = JSON.parse(r.stdout);
    assert.deepStrictEqual(j.deployed, { active: "blue", blueVersion: "v1", greenVersion: "v2" });
    assert.deepStrictEqual(j.staged, [{ key: "greenVersion", config: "v3", deployed: "v2" }]);
    assert.strictEqual(j.hostError, null);
    assert.strictEqual(j.host.live, "blue");
    assert.strictEqual(j.host.slots.green.version, "v2");
    assert.strictEqual(j.host.slots.green.ready, true);
  });
});
