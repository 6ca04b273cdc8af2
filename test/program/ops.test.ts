// Backups, notifications and metrics under mocks: each is one step that exists only when it is
// configured (an app without them keeps exactly the resources and inputs it had:
// test/program/urns.test.ts), each key changes exactly the step it belongs to, the switch's
// command never changes, credentials and webhook URLs reach the host only on a secret stdin,
// and bad input gets its exact message.
import * as assert from "assert";
import { BASE_CONFIG, changedResources, find, isSecret, plain, Run, runProgram } from "../support/harness";

const REMOTE = {
  type: "s3",
  provider: "Other",
  endpoint: "https://fsn1.your-objectstorage.com",
  access_key_id: "AKIDEXAMPLE",
  secret_access_key: "s3cr3t-key-value",
};
const PASSPHRASE = "correct horse battery staple";
const SLACK = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX";
const secretsOf = [
  "bluegreen:backupRemote",
  "bluegreen:backupPassphrase",
  "bluegreen:notifySlack",
  "bluegreen:notifyWebhook",
];

const text = (run: Run, name: string, field = "create") => plain(find(run, name).inputs)[field] as string;

/** Every command line (create, update, delete) of every resource, and the outputs. */
function everythingPlain(run: Run): string {
  const commands = run.resources.flatMap((r) =>
    ["create", "update", "delete"].map((f) => String(plain(r.inputs)[f] ?? "")),
  );
  return [...commands, JSON.stringify(run.outputs)].join("\n");
}

async function rejects(config: Record<string, unknown>, secretKeys: string[], ...problems: string[]) {
  await assert.rejects(runProgram({ ...BASE_CONFIG, ...config }, { secretKeys }), {
    message: `invalid bluegreen stack config:\n${problems.map((p) => `  - ${p}`).join("\n")}`,
  });
}

describe("backups, notifications and metrics under mocks", function () {
  this.timeout(120_000);
  let base: Run;
  before(async () => {
    base = await runProgram({ ...BASE_CONFIG });
  });

  it("an app without them has none of their resources", () => {
    for (const name of ["backups-config", "notify-config", "metrics-config"])
      assert.ok(!base.resources.some((r) => r.name === name), name);
  });

  describe("each key changes exactly its own step (and the tools' text, which carries no key)", () => {
    const cases: [string, Record<string, unknown>, Record<string, unknown>, string[]][] = [
      [
        "backupDatabases: one new step (and its component)",
        {},
        { backupDatabases: ["app.db"] },
        ["backups", "backups-config"],
      ],
      [
        "backupKeepHourly",
        { backupDatabases: ["app.db"] },
        { backupDatabases: ["app.db"], backupKeepHourly: 48 },
        ["backups-config"],
      ],
      [
        "backupKeepDaily",
        { backupDatabases: ["app.db"] },
        { backupDatabases: ["app.db"], backupKeepDaily: 30 },
        ["backups-config"],
      ],
      [
        "backupKeepSnapshots",
        { backupDatabases: ["app.db"] },
        { backupDatabases: ["app.db"], backupKeepSnapshots: 3 },
        ["backups-config"],
      ],
      [
        "a second database",
        { backupDatabases: ["app.db"] },
        { backupDatabases: ["app.db", "jobs/queue.db"] },
        ["backups-config"],
      ],
      [
        "backupRemote, backupRemotePath and backupPassphrase",
        { backupDatabases: ["app.db"] },
        {
          backupDatabases: ["app.db"],
          backupRemote: REMOTE,
          backupRemotePath: "bucket/shop",
          backupPassphrase: PASSPHRASE,
        },
        ["backups-config"],
      ],
      ["notifySlack: one new step (and its component)", {}, { notifySlack: SLACK }, ["notify", "notify-config"]],
      [
        "notifyEmail",
        { notifySlack: SLACK },
        { notifySlack: SLACK, notifyEmail: ["ops@example.com"] },
        ["notify-config"],
      ],
      [
        "notifyEvents",
        { notifySlack: SLACK },
        { notifySlack: SLACK, notifyEvents: ["rollback", "backup-failed"] },
        ["notify-config"],
      ],
      [
        "notifyDiskFreePercent",
        { notifySlack: SLACK },
        { notifySlack: SLACK, notifyDiskFreePercent: 20 },
        ["notify-config"],
      ],
      ["metrics: one new step (and its component)", {}, { metrics: true }, ["metrics", "metrics-config"]],
      ["metricsPort", { metrics: true }, { metrics: true, metricsPort: 9400 }, ["metrics-config"]],
    ];
    for (const [what, from, to, expected] of cases) {
      it(`${what}: ${expected.join(", ")}`, async () => {
        const a = await runProgram({ ...BASE_CONFIG, ...from }, { secretKeys: secretsOf });
        const b = await runProgram({ ...BASE_CONFIG, ...to }, { secretKeys: secretsOf });
        assert.deepStrictEqual(changedResources(a, b), expected);
        assert.strictEqual(text(b, "switch-link"), text(base, "switch-link"), "the switch's command is the same");
      });
    }
  });

  it("backups: the step's commands, its plain stdin without a remote, and the switch waits for it", async () => {
    const run = await runProgram({ ...BASE_CONFIG, backupDatabases: ["app.db", "jobs/queue.db"] });
    const step = plain(find(run, "backups-config").inputs);
    assert.strictEqual(step.create, "env STATE=on /usr/local/lib/bluegreen/backup-config.sh");
    assert.strictEqual(step.delete, "env STATE=off /usr/local/lib/bluegreen/backup-config.sh");
    assert.ok(!isSecret(find(run, "backups-config").inputs.stdin));
    assert.strictEqual(
      step.stdin.split("#bluegreen-section timer")[0].split("#bluegreen-section service")[0],
      "#bluegreen-section conf\n# Managed by bluegreen (Pulumi). Local edits are overwritten on the next `pulumi up`.\n" +
        "databases=app.db jobs/queue.db\nkeep_hourly=24\nkeep_daily=7\nkeep_snapshots=10\n",
    );
    assert.match(step.stdin, /\nExecStart=\/usr\/local\/lib\/bluegreen\/backup\.sh run\n/);
    assert.match(step.stdin, /\nOnCalendar=hourly\nRandomizedDelaySec=300\nPersistent=true\n/);
    const order = run.resources.map((r) => r.name);
    assert.ok(order.indexOf("backups-config") < order.indexOf("switch-link"));
  });

  it("backups with a remote: the credentials and the passphrase only in the secret stdin, never in a command or an output", async () => {
    const run = await runProgram(
      {
        ...BASE_CONFIG,
        backupDatabases: ["app.db"],
        backupRemote: REMOTE,
        backupRemotePath: "bucket/shop",
        backupPassphrase: PASSPHRASE,
      },
      { secretKeys: secretsOf },
    );
    const stdin = find(run, "backups-config").inputs.stdin;
    assert.ok(isSecret(stdin));
    const sent = plain(stdin) as string;
    assert.match(sent, /\nremote_kind=s3\nremote_path=bucket\/shop\n/);
    assert.match(
      sent,
      /\n#bluegreen-section remote\naccess_key_id=AKIDEXAMPLE\nendpoint=https:\/\/fsn1\.your-objectstorage\.com\nprovider=Other\nsecret_access_key=s3cr3t-key-value\ntype=s3\n#bluegreen-section passphrase\ncorrect horse battery staple\n$/,
    );
    for (const secret of ["s3cr3t-key-value", "AKIDEXAMPLE", PASSPHRASE])
      assert.ok(!everythingPlain(run).includes(secret), secret);
    assert.deepStrictEqual(run.secretOutputs, []);
  });

  it("notifications: the URLs only in the secret stdin; the conf names the targets, the events and the threshold", async () => {
    const run = await runProgram(
      { ...BASE_CONFIG, notifySlack: SLACK, notifyEmail: ["ops@example.com"], notifyEvents: ["rollback", "disk-low"] },
      { secretKeys: secretsOf },
    );
    const step = find(run, "notify-config").inputs;
    assert.strictEqual(plain(step).create, "env STATE=on /usr/local/lib/bluegreen/notify-config.sh");
    assert.strictEqual(plain(step).delete, "env STATE=off /usr/local/lib/bluegreen/notify-config.sh");
    assert.ok(isSecret(step.stdin));
    const sent = plain(step.stdin) as string;
    assert.match(
      sent,
      /^#bluegreen-section conf\n# Managed[^\n]*\ntargets=slack email\nemail=ops@example\.com\nevents=rollback disk-low\ndisk_free_percent=10\n#bluegreen-section urls\nslack=https:\/\/hooks\.slack\.com\/services\/T000\/B000\/XXXXsecretXXXX\n/,
    );
    assert.match(sent, /\nDirectoryNotEmpty=\/var\/lib\/bluegreen\/notify\/queue\nUnit=bluegreen-notify\.service\n/);
    assert.ok(!everythingPlain(run).includes("XXXXsecretXXXX"));
  });

  it("notifications by mail only: no URL, a plain stdin", async () => {
    const run = await runProgram({ ...BASE_CONFIG, notifyEmail: ["ops@example.com"] });
    assert.ok(!isSecret(find(run, "notify-config").inputs.stdin));
    assert.doesNotMatch(plain(find(run, "notify-config").inputs).stdin, /#bluegreen-section urls/);
  });

  it("metrics: the port on the command line and in the socket unit; automatic ports per app", async () => {
    const run = await runProgram({ ...BASE_CONFIG, metrics: true });
    const step = plain(find(run, "metrics-config").inputs);
    assert.strictEqual(step.create, "env STATE=on PORT=8084 /usr/local/lib/bluegreen/metrics-config.sh");
    assert.strictEqual(step.delete, "env STATE=off /usr/local/lib/bluegreen/metrics-config.sh");
    assert.match(step.stdin, /\nListenStream=127\.0\.0\.1:8084\nAccept=yes\n/);
    const shop = await runProgram({ ...BASE_CONFIG, appName: "shop", metrics: true });
    const auto = /PORT=(\d+) /.exec(text(shop, "metrics-config"))![1];
    const preview = /PORTS='(\d+) /.exec(text(shop, "router-config"))![1];
    assert.strictEqual(Number(auto), Number(preview) + 5, "the sixth of the app's automatic ports");
  });

  describe("bad input: the exact error, before anything reaches a host", () => {
    it("backupDatabases entries", async () => {
      await rejects(
        { backupDatabases: ["/etc/passwd", "../x.db", "app.db-wal", "app.db", "app.db"] },
        [],
        'bluegreen:backupDatabases entry "/etc/passwd" is not a database file under the data directory: a relative path of letters, digits, . _ - and /, no part starting with "." and not a -wal, -shm or -journal file, e.g. app.db',
        'bluegreen:backupDatabases entry "../x.db" is not a database file under the data directory: a relative path of letters, digits, . _ - and /, no part starting with "." and not a -wal, -shm or -journal file, e.g. app.db',
        'bluegreen:backupDatabases entry "app.db-wal" is not a database file under the data directory: a relative path of letters, digits, . _ - and /, no part starting with "." and not a -wal, -shm or -journal file, e.g. app.db',
        'bluegreen:backupDatabases lists "app.db" twice',
      );
    });

    it("backup keys without backupDatabases would be ignored", async () => {
      await rejects(
        { backupKeepHourly: 12, backupRemotePath: "bucket/x" },
        [],
        "bluegreen:backupKeepHourly is set but bluegreen:backupDatabases is empty, so nothing is backed up; it would be ignored",
        "bluegreen:backupRemotePath is set but bluegreen:backupDatabases is empty, so nothing is backed up; it would be ignored",
      );
    });

    it("a remote: --secret, its type and what the type needs, a path and a passphrase", async () => {
      await rejects(
        { backupDatabases: ["app.db"], backupRemote: { type: "ftp", Bad: "x" } },
        ["bluegreen:backupRemote"],
        'bluegreen:backupRemote.type must be s3 (any S3-compatible store: AWS, Hetzner Object Storage, R2, B2, MinIO) or sftp (got "ftp")',
        "bluegreen:backupRemote.Bad is not an rclone option name (lowercase letters, digits and _)",
        "bluegreen:backupRemotePath is required with bluegreen:backupRemote: the bucket and folder (s3) or directory (sftp), e.g. pulumi config set backupRemotePath my-bucket/backups",
        'bluegreen:backupPassphrase is required with bluegreen:backupRemote: copies are encrypted before they leave the host: pulumi config set --secret backupPassphrase "$(openssl rand -base64 24)"',
      );
      await rejects(
        {
          backupDatabases: ["app.db"],
          backupRemote: { type: "sftp", host: "backup.example.com" },
          backupRemotePath: "/abs",
          backupPassphrase: "short",
        },
        [],
        "bluegreen:backupRemote must be set with --secret, or the remote's credentials sit in Pulumi.<stack>.yaml in plain text: pulumi config set --secret --path 'backupRemote.NAME' value",
        "bluegreen:backupRemote of type sftp needs bluegreen:backupRemote.user",
        "bluegreen:backupRemote of type sftp needs bluegreen:backupRemote.key_pem or bluegreen:backupRemote.pass or bluegreen:backupRemote.key_file",
        'bluegreen:backupRemotePath must be a bucket or directory path such as my-bucket/backups (got "/abs")',
        "bluegreen:backupPassphrase must be set with --secret, or it sits in Pulumi.<stack>.yaml in plain text: pulumi config set --secret backupPassphrase ...",
      );
      await rejects(
        {
          backupDatabases: ["app.db"],
          backupRemote: { type: "s3", access_key_id: "a", secret_access_key: "b" },
          backupRemotePath: "b",
          backupPassphrase: "short",
        },
        ["bluegreen:backupRemote", "bluegreen:backupPassphrase"],
        "bluegreen:backupRemote of type s3 needs bluegreen:backupRemote.endpoint or bluegreen:backupRemote.region",
        "bluegreen:backupPassphrase must be one line of at least 12 characters (the value is secret and not shown)",
      );
    });

    it("notification targets: --secret, a URL; mail addresses and events", async () => {
      await rejects(
        { notifySlack: "hooks.slack.com/x", notifyEmail: ["ops"], notifyEvents: ["switch", "reboot"] },
        [],
        "bluegreen:notifySlack must be set with --secret: a webhook URL is its own credential, and would sit in Pulumi.<stack>.yaml in plain text: pulumi config set --secret notifySlack https://...",
        "bluegreen:notifySlack must be an http:// or https:// URL without spaces, quotes or backslashes (the value is secret and not shown)",
        'bluegreen:notifyEmail entry "ops" is not an email address',
        'bluegreen:notifyEvents entry "reboot" is not an event; the events are switch, rollback, staged-failed, hook-failed, backup-failed, backup-missed, restore, tls-failed, tls-expiring, disk-low, drift',
      );
      await rejects(
        { notifyEvents: ["rollback"] },
        [],
        "bluegreen:notifyEvents is set but no notification target is (bluegreen:notifyWebhook, bluegreen:notifySlack, bluegreen:notifyDiscord, bluegreen:notifyNtfy, bluegreen:notifyEmail); it would be ignored",
      );
    });

    it("metrics: the port", async () => {
      await rejects(
        { metricsPort: 9400 },
        [],
        "bluegreen:metricsPort is set but bluegreen:metrics is false; it would be ignored",
      );
      await rejects(
        { metrics: true, metricsPort: 80 },
        [],
        "bluegreen:metricsPort must be 0 (automatic) or from 1024 to 65535 (got 80)",
      );
      await rejects(
        { metrics: true, metricsPort: 8082 },
        [],
        "bluegreen:checkPort and bluegreen:metricsPort must differ (both are 8082)",
      );
    });
  });
});
