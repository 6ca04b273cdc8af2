// Off-host copies with the real rclone against a real SFTP server this test starts on 127.0.0.1
// (rclone serve sftp, password auth), through rclone crypt, with the real backup-config.sh,
// backup.sh and restore.sh (systemd stood in for: test/support/nodeSlots.ts). What a user relies on:
// - the remote's credentials and the passphrase reach no command line (ps), no output, no audit
//   line and no file but the 0600 rclone.conf, where rclone's passwords are obscured;
// - what leaves the host is encrypted, names included;
// - the host's disk gone, a backup comes back from the remote and restores the data;
// - a remote that is down is tried again, then reported (audit, status, a backup-failed
//   notification), and a later run sends what was not sent;
// - an S3 remote is rendered as rclone reads it, and a remote that cannot be listed fails the step.
import * as assert from "assert";
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import { renderBackupConf, renderBackupUnits, renderRemoteSettings } from "../../components/app/backups";
import { renderNotifyConf } from "../../components/app/notifications";
import { renderBundle } from "../../components/host/shell";
import { NodeSlots, nodeSandbox, toolAsync as spawnTool } from "../support/nodeSlots";
import { Sandbox } from "../support/sandbox";
import { requireTool, run } from "../support/tools";

const BASE = 19540;
const SFTP_PORT = BASE + 9;
const PASSWORD = "sftp-Pa55-never-shown";
const PASSPHRASE = "crypt-passphrase-never-shown";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every process's command line, sampled every 10 ms until `done` settles. */
async function sampleArgv<T>(done: Promise<T>): Promise<{ result: T; samples: number; lines: Set<string> }> {
  const lines = new Set<string>();
  let samples = 0;
  let finished = false;
  const result = done.finally(() => (finished = true));
  while (!finished) {
    for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
      try {
        lines.add(fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " "));
      } catch {
        /* gone */
      }
    }
    samples++;
    await sleep(10);
  }
  return { result: await result, samples, lines };
}

describe("off-host copies: rclone crypt to a real SFTP server on 127.0.0.1 (local sandbox)", function () {
  this.timeout(600_000);
  let host: Sandbox;
  let slots: NodeSlots;
  let sftp: ChildProcess | undefined;
  let store: string;
  const audit = () => fs.readFileSync(host.at(host.L.auditLog), "utf8");
  const conf = () => host.at(`${host.L.backupConfDir}/rclone.conf`);
  const count = () => {
    const r = host.curlSlot("blue", "/visits");
    assert.strictEqual(r.status, 0, r.stderr);
    return Number(/^visits (\d+)/.exec(r.stdout)![1]);
  };

  async function startSftp(): Promise<void> {
    // The credentials reach the server through its environment (RCLONE_USER, RCLONE_PASS), not its argv.
    sftp = spawn("rclone", ["serve", "sftp", store, "--addr", `127.0.0.1:${SFTP_PORT}`, "--config", "/dev/null"], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, RCLONE_USER: "backup", RCLONE_PASS: PASSWORD },
      stdio: "ignore",
    });
    for (let i = 0; i < 100; i++) {
      if (run("bash", ["-c", `exec 3<>/dev/tcp/127.0.0.1/${SFTP_PORT}`]).status === 0) return;
      await sleep(100);
    }
    throw new Error("rclone serve sftp did not listen");
  }
  function stopSftp(): void {
    sftp?.kill("SIGTERM");
    sftp = undefined;
  }

  const step = (remote: Record<string, string>, path = "backups") =>
    slots.tool(
      "backup-config.sh",
      { STATE: "on" },
      [],
      renderBundle({
        conf: renderBackupConf({
          databases: ["app.db"],
          keepHourly: 24,
          keepDaily: 7,
          keepSnapshots: 10,
          remote: {
            type: remote.type as "s3" | "sftp",
            path,
            settings: undefined as never,
            passphrase: undefined as never,
          },
        }),
        ...renderBackupUnits(host.L),
        remote: renderRemoteSettings(remote),
        passphrase: PASSPHRASE,
      }),
    );

  before(async () => {
    requireTool("rclone", "apt-get install -y rclone");
    store = fs.mkdtempSync("/tmp/bg-sftp-");
    await startSftp();
    ({ host, slots } = await nodeSandbox(BASE, ["backup-config.sh", "backup.sh", "restore.sh"]));
  });
  after(() => {
    stopSftp();
    slots?.stop();
    host?.stop();
    if (store) fs.rmSync(store, { recursive: true, force: true });
  });

  const SFTP = { type: "sftp", host: "127.0.0.1", port: String(SFTP_PORT), user: "backup", pass: PASSWORD };

  it("the step writes a 0600 rclone.conf whose passwords are obscured, and checks the remote through the encryption", () => {
    const r = step(SFTP);
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stdout, /; off-host: sftp, encrypted \(rclone crypt\), reachable \(0 backups there\);/);
    assert.strictEqual(fs.statSync(conf()).mode & 0o777, 0o600);
    const text = fs.readFileSync(conf(), "utf8");
    assert.match(
      text,
      /\n\[bluegreen-remote\]\nhost = 127\.0\.0\.1\npass = [A-Za-z0-9_-]{20,}\nport = \d+\ntype = sftp\nuser = backup\n(shell_type = unix\n)?\n\[bluegreen-crypt\]\ntype = crypt\nremote = bluegreen-remote:backups\nfilename_encryption = standard\ndirectory_name_encryption = true\npassword = [A-Za-z0-9_-]{20,}\n\n?$/,
    );
    // (rclone itself adds shell_type to an sftp remote once it has connected, and keeps the file's mode.)
    assert.ok(!text.includes(PASSWORD) && !text.includes(PASSPHRASE), "rclone.conf holds them obscured only");
    // rclone reveals what it obscured: the values are the ones given.
    const pass = /\npass = (\S+)/.exec(text)![1];
    assert.strictEqual(
      run("rclone", ["reveal", "--", pass]).stdout.trim(),
      PASSWORD,
      "(an obscured value may start with -)",
    );
  });

  it("a backup run sends an encrypted copy; no credential is in any command line (sampled), output, audit line or other file", async () => {
    for (let i = 0; i < 20; i++) assert.strictEqual(host.curlSlot("blue", "/visits").status, 0);
    const { result: r, samples, lines } = await sampleArgv(spawnTool(slots, "backup.sh", { args: ["run"] }));
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      /^backup (\S+-hourly): app\.db \(\d+ bytes\), integrity ok, in \d+ ms\noff-host copies: 1 sent to sftp \(encrypted\), remote retention applied\n$/,
    );
    const id = /^backup (\S+):/.exec(r.stdout)![1];
    const rcloneRuns = [...lines].filter((l) => /^(timeout \S+ \S+ )?rclone /.test(l));
    console.log(`      ${samples} samples of every command line while it ran, ${rcloneRuns.length} of them rclone's`);
    assert.ok(rcloneRuns.length > 0, "the sampling saw rclone run");
    for (const l of lines) assert.ok(!l.includes(PASSWORD) && !l.includes(PASSPHRASE), `argv: ${l}`);
    assert.match(audit(), new RegExp(`Z backup-offsite id=${id} tries=1 result=ok by=\\w+\\n`));
    const texts = [r.stdout, r.stderr, audit()];
    for (const f of [
      host.L.backupConfDir + "/backup.conf",
      `${host.L.stateDir}/backup.status`,
      `${host.L.unitDir}/bluegreen-backup.service`,
    ])
      texts.push(fs.readFileSync(host.at(f), "utf8"));
    for (const t of texts) assert.ok(!t.includes(PASSWORD) && !t.includes(PASSPHRASE));
    // On the server: encrypted names and contents; nothing there reads as SQLite or names the backup.
    const files = run("find", [store, "-type", "f"]).stdout.trim().split("\n");
    assert.ok(files.length >= 3, files.join("\n"));
    for (const f of files) {
      assert.ok(!fs.readFileSync(f).includes("SQLite format 3"), `${f} is not encrypted`);
      assert.ok(!f.includes(id) && !f.includes("manifest") && !f.includes("app.db"), `${f}: a name in plain text`);
    }
    const list = slots.tool("backup.sh", {}, ["list", "--remote"]);
    assert.strictEqual(list.stdout, `${id}\n`);
  });

  it("the host's backups gone, restore --remote latest fetches, checks and puts the data back", async () => {
    const backed = count() - 1;
    for (let i = 0; i < 10; i++) host.curlSlot("blue", "/visits");
    fs.rmSync(host.at(host.L.backupDir), { recursive: true });
    const r = await spawnTool(slots, "restore.sh", { args: ["--remote", "latest"] });
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stdout, /^restored \S+-hourly \(app\.db\) from remote: /);
    assert.strictEqual(count(), backed + 1);
    assert.ok(
      !fs.readdirSync(host.at(host.L.backupDir)).some((d) => d.startsWith(".fetch-")),
      "the fetched copy is removed",
    );
  });

  it("a remote that is down: each copy tried 3 times, then audited, recorded and notified as backup-failed; a later run sends it", async () => {
    // Notifications on (their step is tested in notify-local.test.ts): the event must be queued.
    fs.mkdirSync(host.at(`${host.L.notifyDir}/queue`), { recursive: true });
    fs.mkdirSync(host.at(host.L.notifyConfDir), { recursive: true });
    fs.writeFileSync(
      host.at(`${host.L.notifyConfDir}/notify.conf`),
      renderNotifyConf({ kinds: [], email: ["ops@example.com"], events: ["backup-failed"], diskFreePercent: 10 }),
    );
    stopSftp();
    await sleep(300);
    const r = await spawnTool(slots, "backup.sh", {
      args: ["run"],
      vars: { BG_BACKUP_TRIES: "3", BG_BACKUP_BACKOFF: "1" },
    });
    assert.strictEqual(r.status, 1, r.stdout);
    const id = /^backup (\S+):/.exec(r.stdout)![1];
    assert.match(
      r.stderr,
      new RegExp(
        `off-host copy of ${id}: try 1 of 3 failed: .+\\noff-host copy of ${id}: try 2 of 3 failed: .+\\noff-host copy of ${id}: try 3 of 3 failed: .+\\n`,
      ),
    );
    // The pre-restore copy of the test before is unsent too: each backup is tried on its own, the
    // newest id first, so within one second "pre-restore" may go before "hourly".
    assert.match(r.stderr, /off-host copies: 0 sent, 2 failed \(a later run sends them\)\n$/);
    assert.match(
      audit(),
      new RegExp(
        `Z backup id=${id} kind=hourly bytes=\\d+ result=ok by=\\w+\\n(.*backup-offsite .*\\n)?.*backup-offsite id=${id} tries=3 why=rclone_copy_to_the_remote_failed_3_times:\\S* result=failed by=\\w+\\n`,
      ),
    );
    assert.match(
      fs.readFileSync(host.at(`${host.L.stateDir}/backup.status`), "utf8"),
      /\noffsite_last_result=failed\n/,
    );
    const queued = fs
      .readdirSync(host.at(`${host.L.notifyDir}/queue`))
      .map((f) => fs.readFileSync(host.at(`${host.L.notifyDir}/queue/${f}`), "utf8"));
    assert.strictEqual(queued.length, 2, "one for each backup not sent");
    const event = new RegExp(
      `^event=backup-failed\\nresult=failed\\nat=\\S+\\nmessage=bluegreen: backup-offsite ${id} failed: rclone_copy_to_the_remote_failed_3_times`,
    );
    assert.ok(
      queued.some((q) => event.test(q)),
      queued.join("\n"),
    );
    assert.ok(!queued.join("").includes(PASSWORD) && !r.stderr.includes(PASSWORD));
    await startSftp();
    const again = slots.tool("backup.sh", {}, ["upload"]);
    assert.strictEqual(again.status, 0, again.stderr);
    assert.match(again.stdout, /^off-host copies: 2 sent to sftp/);
    assert.strictEqual(fs.statSync(conf()).mode & 0o777, 0o600, "rclone kept the config root-only");
    assert.ok(slots.tool("backup.sh", {}, ["list", "--remote"]).stdout.includes(id));
  });

  it("an S3 remote is rendered as rclone reads it; one that cannot be listed fails the step, its secret not shown", () => {
    const S3 = {
      type: "s3",
      provider: "Other",
      endpoint: `http://127.0.0.1:${BASE + 8}`,
      access_key_id: "AKIDTEST",
      secret_access_key: "s3-secret-never-shown",
    };
    const r = step(S3, "bucket/shop");
    assert.strictEqual(r.status, 1, r.stdout);
    assert.match(
      r.stderr,
      /^bluegreen: error: the off-host remote \(s3\) could not be listed, so no copy could reach it; rclone said:\n  .+\nCheck bluegreen:backupRemote and bluegreen:backupRemotePath, then run pulumi up again\.\n$/s,
    );
    assert.ok(!r.stderr.includes("s3-secret-never-shown") && !r.stdout.includes("s3-secret-never-shown"));
    const text = fs.readFileSync(conf(), "utf8");
    assert.match(
      text,
      /\n\[bluegreen-remote\]\naccess_key_id = AKIDTEST\nendpoint = http:\/\/127\.0\.0\.1:\d+\nprovider = Other\nsecret_access_key = s3-secret-never-shown\ntype = s3\n\n\[bluegreen-crypt\]\ntype = crypt\nremote = bluegreen-remote:bucket\/shop\n/,
    );
    assert.strictEqual(
      run("rclone", ["--config", conf(), "listremotes"]).stdout,
      "bluegreen-crypt:\nbluegreen-remote:\n",
    );
  });
});
