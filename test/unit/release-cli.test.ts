// npm run release / rollback / status / logs against a recording fake `pulumi`
// (test/fixtures/fake-pulumi-recorder), which answers only what the Automation API
// asks of the real CLI: the order of steps, where each failure stops, the
// arguments, the timings and the SSH tunnel's errors. (test/e2e runs them for
// real on a host.)
import * as assert from "assert";
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as ssh2 from "ssh2";
import { parseArgs } from "util";
import { freePort } from "../../components/cli/ports";
import { ROOT } from "../support/harness";
import { requireTool, run } from "../support/tools";

const CLI = path.join(ROOT, "components", "cli", "release.ts");

function stack(config: Record<string, string>, outputs: Record<string, string>, upResults: number[]) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bg-fake-pulumi-"));
  for (const [sub, values] of [
    ["config", config],
    ["outputs", outputs],
  ] as const) {
    fs.mkdirSync(path.join(dir, sub));
    for (const [k, v] of Object.entries(values)) fs.writeFileSync(path.join(dir, sub, k), `${v}\n`);
  }
  fs.writeFileSync(path.join(dir, "up-results"), upResults.map((c) => `${c}\n`).join(""));
  fs.writeFileSync(path.join(dir, "calls"), "");
  // An ssh that answers `bluegreen-status live` with the colour in FAKE_DIR/host-live, and records its argv.
  fs.writeFileSync(path.join(dir, "ssh"), '#!/bin/sh\necho "$*" > "$FAKE_DIR/ssh-args"\ncat "$FAKE_DIR/host-live"\n', {
    mode: 0o755,
  });
  const env = (more: NodeJS.ProcessEnv = {}) => ({
    ...process.env,
    FAKE_DIR: dir,
    BLUEGREEN_PULUMI: path.join(ROOT, "test", "fixtures", "fake-pulumi-recorder"),
    BLUEGREEN_SSH: path.join(dir, "ssh"),
    ...more,
  });
  const cli = (...args: string[]) =>
    run("node", ["-r", "ts-node/register/transpile-only", CLI, ...args], { env: env() });
  const cliWith = (more: NodeJS.ProcessEnv, ...args: string[]) =>
    run("node", ["-r", "ts-node/register/transpile-only", CLI, ...args], { env: env(more) });
  return {
    dir,
    cli,
    cliWith,
    hostServes: (c: string) => fs.writeFileSync(path.join(dir, "host-live"), `${c}\n`),
    sshArgs: () => fs.readFileSync(path.join(dir, "ssh-args"), "utf8").trim(),
    /** The fake's calls, the event server's port as PORT. */
    calls: () =>
      fs
        .readFileSync(path.join(dir, "calls"), "utf8")
        .trim()
        .split("\n")
        .map((l) => l.replace(/tcp:\/\/127\.0\.0\.1:\d+/, "tcp://127.0.0.1:PORT")),
    config: (k: string) => fs.readFileSync(path.join(dir, "config", k), "utf8").trim(),
  };
}

const LIVE_BLUE = { active: "blue", blueVersion: "v1", greenVersion: "v1" };
const STACK = "--stack dev --non-interactive";
const SET = "--stack dev --plaintext --non-interactive --";
/** The `==> ` lines, with figures as N. */
const steps = (out: string) =>
  out
    .split("\n")
    .filter((l) => l.startsWith("==> "))
    .map((l) => l.replace(/\d+\.\d s/g, "N s"));

describe("release and rollback commands", function () {
  this.timeout(60_000);

  it("release: deploy to the idle slot, then switch, in that order, with the Automation API's exact calls", () => {
    const s = stack(LIVE_BLUE, LIVE_BLUE, [0, 0]);
    const r = s.cli("release", "v2");
    assert.strictEqual(r.status, 0, r.stderr);
    const S = "--stack dev --non-interactive";
    // localWorkspace.js stackOutputs: masked, then --show-secrets.
    const outputs = [`stack output --json ${S}`, `stack output --json --show-secrets ${S}`];
    // stack.js up: up, then outputs() and info() (stack history, one page of one).
    const up = [
      `up --yes --skip-preview --exec-kind auto.local --event-log tcp://127.0.0.1:PORT ${S}`,
      ...outputs,
      `stack history --json --page-size 1 --page 1 ${S}`,
    ];
    assert.deepStrictEqual(s.calls(), [
      "stack ls --json --non-interactive",
      `stack select ${S}`,
      ...outputs,
      `config get active --json ${S}`,
      `config get greenVersion --json ${S}`,
      `config get greenArtifact --json ${S}`,
      `config get greenSha256 --json ${S}`,
      "config set greenVersion --stack dev --plaintext --non-interactive -- v2",
      ...up,
      "config set active --stack dev --plaintext --non-interactive -- green",
      ...up,
    ]);
    assert.deepStrictEqual(steps(r.stdout), [
      "==> live: blue (v1); deploying v2 to the idle slot, green",
      "==> timing: deploy v2 to green N s (pulumi up): N s before the first step (the program run, with any build); green-service update N s (starts the slot and waits for its health gate: one step, the gate is not timed apart)",
      "==> switching traffic to green (v2)",
      "==> timing: switch to green N s (pulumi up): N s before the first step (the program run, with any build); switch-link update N s (moves traffic and runs the post-switch watch: one step, the watch is not timed apart)",
      "==> released v2: green is live; blue keeps v1 running for npm run rollback",
      "==> live: green (v2) · release took N s (deploy N s, switch+watch N s)",
    ]);
    // The step took the fake's 0.1 s between its events.
    assert.match(r.stdout, /green-service update 0\.[1-9] s/);
    // pulumi's own output is passed through.
    assert.match(r.stdout, /\n {4}~  command:remote:Command green-service updating\n/);
  });

  it("release: sets the artifact and sha256 of the idle slot when given", () => {
    const s = stack(LIVE_BLUE, LIVE_BLUE, [0, 0]);
    assert.strictEqual(
      s.cli("release", "v2", "--artifact", "https://example.com/app", "--sha256", "ab".repeat(32)).status,
      0,
    );
    assert.ok(s.calls().includes(`config set greenArtifact ${SET} https://example.com/app`));
    assert.ok(s.calls().includes(`config set greenSha256 ${SET} ${"ab".repeat(32)}`));
  });

  it("release: a failed deploy stops before the switch, and says how to undo the config", () => {
    const s = stack(LIVE_BLUE, LIVE_BLUE, [1]);
    const r = s.cli("release", "v2");
    assert.strictEqual(r.status, 1);
    assert.ok(!s.calls().includes(`config set active ${SET} green`));
    assert.match(
      r.stderr,
      /==> stopped: deploying v2 to green failed \(its error is above\); blue \(v1\) is still live and untouched\.\nFix it and run this again, or put the config back:\n  pulumi config set greenVersion v1\n$/,
    );
  });

  it("release: the undo advice restores the artifact and sha256 it set too, so following it never meets 'versions are immutable'", () => {
    const s = stack({ ...LIVE_BLUE, greenArtifact: "dist/app-v1" }, LIVE_BLUE, [1]);
    const r = s.cli("release", "v2", "--artifact", "https://example.com/app-v2", "--sha256", "ab".repeat(32));
    assert.strictEqual(r.status, 1);
    assert.match(
      r.stderr,
      /put the config back:\n  pulumi config set greenVersion v1\n  pulumi config set greenArtifact dist\/app-v1\n  pulumi config rm greenSha256\n$/,
    );
  });

  it("release: a switch that failed or was rolled back: config follows the colour the host serves", () => {
    const s = stack(
      { ...LIVE_BLUE, statusCommand: "" },
      { ...LIVE_BLUE, statusCommand: "ssh root@203.0.113.10 /usr/local/sbin/bluegreen-status" },
      [0, 1],
    );
    s.hostServes("blue");
    const r = s.cli("release", "v2");
    assert.strictEqual(r.status, 1);
    assert.strictEqual(s.config("active"), "blue");
    assert.strictEqual(
      s.sshArgs(),
      "-o BatchMode=yes -o ConnectTimeout=15 root@203.0.113.10 /usr/local/sbin/bluegreen-status live",
    );
    assert.deepStrictEqual(s.calls().slice(-4), [
      `up --yes --skip-preview --exec-kind auto.local --event-log tcp://127.0.0.1:PORT ${STACK}`,
      `stack output --json ${STACK}`,
      `stack output --json --show-secrets ${STACK}`,
      `config set active ${SET} blue`,
    ]);
    assert.match(
      r.stderr,
      /==> stopped: switching to green failed \(its error is above\); the host still serves blue and config says active=blue again\.\n$/,
    );
  });

  it("release: a switch that finished on the host while pulumi lost the connection: config stays on the new colour", () => {
    const s = stack(
      LIVE_BLUE,
      { ...LIVE_BLUE, statusCommand: "ssh root@203.0.113.10 /usr/local/sbin/bluegreen-status" },
      [0, 1],
    );
    s.hostServes("green");
    const r = s.cli("release", "v2");
    assert.strictEqual(r.status, 1);
    assert.strictEqual(s.config("active"), "green");
    assert.match(
      r.stderr,
      /==> stopped: switching to green: pulumi up failed \(its error is above\), but the host serves green; config says active=green\. Run pulumi up to finish the switch \(its post-switch watch runs again\)\.\n$/,
    );
  });

  it("release: refuses when config and the last up disagree, before changing anything", () => {
    const s = stack({ ...LIVE_BLUE, active: "green" }, LIVE_BLUE, []);
    const r = s.cli("release", "v2");
    assert.strictEqual(r.status, 1);
    assert.strictEqual(
      r.stderr,
      "==> stopped: config says active=green but the last pulumi up left blue live; run pulumi up (or pulumi config set active blue) first\n",
    );
    assert.deepStrictEqual(s.calls().slice(-1), [`config get active --json ${STACK}`]);
    assert.ok(!s.calls().some((c) => c.startsWith("config set") || c.startsWith("up")));
  });

  it("release: a bad version string is refused before pulumi runs", () => {
    const s = stack(LIVE_BLUE, LIVE_BLUE, []);
    const r = s.cli("release", "v 2");
    assert.strictEqual(
      r.stderr,
      `==> stopped: "v 2" is not a valid version: use 1-64 letters, digits, '.', '_', '+' or '-'\n`,
    );
    assert.deepStrictEqual(s.calls(), [""]);
  });

  it("rollback: switches to the other slot without a version string", () => {
    const s = stack(
      { active: "green", blueVersion: "v1", greenVersion: "v2" },
      { active: "green", blueVersion: "v1", greenVersion: "v2" },
      [0],
    );
    const r = s.cli("rollback");
    assert.strictEqual(r.status, 0, r.stderr);
    assert.deepStrictEqual(steps(r.stdout), [
      "==> rolling back: green -> blue (v1, still running)",
      "==> timing: switch to blue N s (pulumi up): N s before the first step (the program run, with any build); switch-link update N s (moves traffic and runs the post-switch watch: one step, the watch is not timed apart)",
      "==> rolled back: blue (v1) is live",
    ]);
    assert.strictEqual(s.config("active"), "blue");
  });
});

describe("command line arguments (util.parseArgs)", function () {
  this.timeout(60_000);
  const cli = (...args: string[]) =>
    run("node", ["-r", "ts-node/register/transpile-only", CLI, ...args], {
      env: { ...process.env, BLUEGREEN_PULUMI: "/nonexistent/pulumi" },
    });
  const USAGE = {
    release: "usage: npm run release -- <version> [--artifact PATH|URL] [--sha256 HEX] [--smoke CMD] [--stack NAME]",
    rollback: "usage: npm run rollback [-- --stack NAME]",
    status: "usage: npm run status [-- --json] [--stack NAME]",
    logs: "usage: npm run logs [-- blue|green|live|idle] [-f|--follow] [-n LINES] [--stack NAME]",
    restore: "usage: npm run restore -- <id>|latest [--remote] [--stack NAME] | --list [--remote]",
  };

  it("every command's --help (and -h) prints its usage and options on stdout, exit 0, before pulumi runs", () => {
    for (const [name, usage] of Object.entries(USAGE)) {
      for (const flag of ["--help", "-h"]) {
        const r = cli(name, flag);
        assert.strictEqual(r.status, 0, `${name} ${flag}: ${r.stderr}`);
        assert.ok(r.stdout.startsWith(`${usage}\n\n`), r.stdout);
        assert.match(r.stdout, /--stack NAME +the stack \(default: the selected one\)\n/);
        assert.strictEqual(r.stderr, "");
      }
    }
  });

  it("no arguments: the usage on stderr, exit 2", () => {
    const r = cli("release");
    assert.strictEqual(r.status, 2);
    assert.strictEqual(r.stderr, `${USAGE.release}\n(npm run release -- --help for more)\n`);
    const none = cli();
    assert.strictEqual(none.status, 2);
    assert.match(none.stderr, /^usage: ts-node components\/cli\/release\.ts <command>/);
    assert.ok(Object.values(USAGE).every((u) => none.stderr.includes(u.replace("usage: ", "  "))));
  });

  it("an unknown option or a missing value: parseArgs' own message, naming it, and the usage; exit 2", () => {
    const expected = (args: string[]) => {
      try {
        parseArgs({ args, options: { stack: { type: "string" } }, allowPositionals: true, strict: true });
      } catch (e) {
        return (e as Error).message;
      }
      return assert.fail("parseArgs accepted it");
    };
    const r = cli("release", "v2", "--frobnicate");
    assert.strictEqual(r.status, 2);
    assert.strictEqual(
      r.stderr,
      `error: ${expected(["--frobnicate"])}\n${USAGE.release}\n(npm run release -- --help for more)\n`,
    );
    assert.match(r.stderr, /^error: Unknown option '--frobnicate'/);
    const m = cli("rollback", "--stack");
    assert.strictEqual(m.status, 2);
    assert.strictEqual(
      m.stderr,
      `error: ${expected(["--stack"])}\n${USAGE.rollback}\n(npm run rollback -- --help for more)\n`,
    );
  });

  it("a stray argument, a slot that is not one, a bad -n, an unknown command: exit 2 with the usage", () => {
    for (const [args, message] of [
      [["release", "v2", "v3"], "unexpected argument 'v3'"],
      [["status", "extra"], "unexpected argument 'extra'"],
      [["logs", "purple"], "'purple' is not a slot: use blue, green, live or idle"],
      [["logs", "-n", "ten"], "-n takes a number of lines, not 'ten'"],
      [["restore"], "which backup? an id from --list, or latest"],
      [["restore", "../x"], "'../x' is not a backup id (like 20261207T120000Z-snapshot) or latest"],
      [["restore", "latest", "--list"], "--list takes no backup id"],
    ] as const) {
      const r = cli(...args);
      assert.strictEqual(r.status, 2, args.join(" "));
      assert.ok(r.stderr.startsWith(`error: ${message}\n${USAGE[args[0]]}\n`), r.stderr);
    }
    for (const name of ["deploy", "constructor"]) {
      const u = cli(name);
      assert.strictEqual(u.status, 2, name);
      assert.match(u.stderr, new RegExp(`^error: unknown command '${name}'\nusage: `));
    }
  });

  it("a pulumi CLI that cannot run: says so and how to fix it, exit 1", () => {
    const r = cli("rollback");
    assert.strictEqual(r.status, 1);
    assert.match(
      r.stderr,
      /^==> stopped: could not run the pulumi CLI \(\/nonexistent\/pulumi\): .*; install it \(https:\/\/www\.pulumi\.com\/docs\/install\/\) or set BLUEGREEN_PULUMI to its path\n$/,
    );
  });
});

describe("a stack never deployed", function () {
  this.timeout(60_000);
  it("release, rollback, status and logs say to run pulumi up first", () => {
    const s = stack(LIVE_BLUE, {}, []);
    for (const args of [["release", "v2"], ["rollback"], ["status"], ["logs"]]) {
      const r = s.cli(...args);
      assert.strictEqual(r.status, 1, args.join(" "));
      assert.strictEqual(
        r.stderr,
        "==> stopped: stack dev has never been deployed (it has no outputs): run pulumi up first\n",
      );
    }
    assert.ok(!s.calls().some((c) => c.startsWith("config set") || c.startsWith("up")));
  });
});

describe("the SSH tunnel to the preview listener", function () {
  this.timeout(60_000);
  const tunnelStack = (port?: number) =>
    stack(
      LIVE_BLUE,
      {
        ...LIVE_BLUE,
        previewTunnelCommand: `ssh${port ? ` -p ${port}` : ""} -N -L 8081:127.0.0.1:8081 root@127.0.0.1`,
      },
      [0],
    );
  /** The CLI, asynchronously: an SSH server in this process must keep answering meanwhile. */
  const cliAsync = (s: ReturnType<typeof stack>, ssh: string, ...args: string[]) =>
    new Promise<{ status: number | null; stderr: string; ms: number }>((resolve) => {
      const started = Date.now();
      const child = spawn("node", ["-r", "ts-node/register/transpile-only", CLI, ...args], {
        env: {
          ...process.env,
          FAKE_DIR: s.dir,
          BLUEGREEN_PULUMI: path.join(ROOT, "test", "fixtures", "fake-pulumi-recorder"),
          BLUEGREEN_SSH: ssh,
        },
      });
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.on("close", (status) => resolve({ status, stderr, ms: Date.now() - started }));
    });
  /** Time of the run spent after the deploy: from its timing line to the exit. */
  const STOP_AFTER = (verbatim: string) =>
    new RegExp(
      `==> stopped: the SSH tunnel to the preview listener failed \\(ssh( -p \\d+)? -N -L 8081:127\\.0\\.0\\.1:8081 root@127\\.0\\.0\\.1; \\S+ exited with 255\\):\\n(.*\\n)*${verbatim}\\nblue \\(v1\\) is still live\\. green runs v2 on the preview listener for a closer look\\.\\n$`,
    );

  it("ssh's own error, verbatim, at once (an ssh that fails at once, e.g. a host key it refuses)", async () => {
    const s = tunnelStack();
    const fake = path.join(s.dir, "failing-ssh");
    fs.writeFileSync(
      fake,
      '#!/bin/sh\necho "$*" > "$FAKE_DIR/tunnel-args"\necho "Host key verification failed." >&2\nexit 255\n',
      {
        mode: 0o755,
      },
    );
    const r = await cliAsync(s, fake, "release", "v2", "--smoke", "true");
    assert.strictEqual(r.status, 1, r.stderr);
    assert.match(r.stderr, STOP_AFTER("Host key verification failed\\."));
    assert.ok(r.ms < 15_000, `took ${r.ms} ms`);
    // Never prompts; asks ssh to fail rather than run without the forward.
    assert.match(
      fs.readFileSync(path.join(s.dir, "tunnel-args"), "utf8"),
      /^-o BatchMode=yes -o ConnectTimeout=15 -N -o ExitOnForwardFailure=yes -L \d+:127\.0\.0\.1:8081 root@127\.0\.0\.1\n$/,
    );
  });

  it("the real ssh to a closed port: its 'Connection refused', within seconds", async () => {
    requireTool("ssh");
    const closed = await freePort();
    const s = tunnelStack(closed);
    const r = await cliAsync(s, "ssh -o UserKnownHostsFile=/dev/null", "release", "v2", "--smoke", "true");
    assert.strictEqual(r.status, 1, r.stderr);
    assert.match(r.stderr, STOP_AFTER(`ssh: connect to host 127\\.0\\.0\\.1 port ${closed}: Connection refused`));
    assert.ok(r.ms < 15_000, `took ${r.ms} ms`);
  });

  it("the real ssh to a server whose host key is unknown: refuses without prompting, in its own words", async () => {
    requireTool("ssh");
    const key = ssh2.utils.generateKeyPairSync("ed25519");
    const server = new ssh2.Server({ hostKeys: [key.private] }, (client) => {
      client.on("authentication", (ctx) => ctx.reject());
      client.on("error", () => undefined);
    });
    const port = await new Promise<number>((resolve) =>
      server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port)),
    );
    try {
      const s = tunnelStack(port);
      const knownHosts = path.join(s.dir, "known_hosts");
      fs.writeFileSync(knownHosts, "");
      const r = await cliAsync(
        s,
        `ssh -o UserKnownHostsFile=${knownHosts} -o GlobalKnownHostsFile=/dev/null`,
        "release",
        "v2",
        "--smoke",
        "true",
      );
      assert.strictEqual(r.status, 1, r.stderr);
      assert.match(r.stderr, STOP_AFTER("Host key verification failed\\."));
      assert.ok(r.ms < 15_000, `took ${r.ms} ms`);
    } finally {
      server.close();
    }
  });
});

describe("status and logs", function () {
  this.timeout(60_000);
  const STATUS = "ssh root@203.0.113.10 /usr/local/sbin/bluegreen-status";
  /** A stack and an ssh that logs each call and answers as the host's tools would. */
  const hostStack = (statusCommand = STATUS, config: Record<string, string> = LIVE_BLUE) => {
    const s = stack(config, { ...LIVE_BLUE, statusCommand, url: "http://203.0.113.10/" }, []);
    fs.writeFileSync(
      path.join(s.dir, "ssh"),
      `#!/bin/sh
echo "$*" >> "$FAKE_DIR/ssh-log"
case "$*" in
  *journalctl*) echo "Dec 04 05:00:00 host app[1]: a journal line" ;;
  *-restore\\ *) echo "restored (stand-in)" ;;
  *-backup\\ list*) echo "20261207T120000Z-snapshot  snapshot" ;;
  *-status\\ live) cat "$FAKE_DIR/host-live" ;;
  *-status\\ --json) echo '{"live": "blue", "slots": {"blue": {"version": "v1"}}}' ;;
  *-status) printf 'live:        blue (recorded blue)\\nmaintenance: off\\n' ;;
  *) echo "fake ssh: unexpected $*" >&2; exit 2 ;;
esac
`,
      { mode: 0o755 },
    );
    s.hostServes("blue");
    return { ...s, sshLog: () => fs.readFileSync(path.join(s.dir, "ssh-log"), "utf8").trim().split("\n") };
  };
  const BATCH = "-o BatchMode=yes -o ConnectTimeout=15";

  it("status --json: the stack's deployed view, config not yet deployed, and the host's own object", () => {
    const s = hostStack(STATUS, { ...LIVE_BLUE, greenVersion: "v3" });
    const r = s.cli("status", "--json");
    assert.strictEqual(r.status, 0, r.stderr);
    assert.deepStrictEqual(JSON.parse(r.stdout), {
      stack: "dev",
      url: "http://203.0.113.10/",
      deployed: { active: "blue", blueVersion: "v1", greenVersion: "v1" },
      staged: [{ key: "greenVersion", config: "v3", deployed: "v1" }],
      host: { live: "blue", slots: { blue: { version: "v1" } } },
      hostError: null,
    });
    assert.deepStrictEqual(s.sshLog(), [`${BATCH} root@203.0.113.10 /usr/local/sbin/bluegreen-status --json`]);
    // Read-only: nothing set, nothing deployed.
    assert.ok(!s.calls().some((c) => c.startsWith("config set") || c.startsWith("up")));
  });

  it("status: the same in lines, then the host's text report", () => {
    const s = hostStack(STATUS, { ...LIVE_BLUE, greenVersion: "v3" });
    const r = s.cli("status");
    assert.strictEqual(r.status, 0, r.stderr);
    assert.strictEqual(
      r.stdout,
      "==> stack dev: live blue (v1); blue v1, green v1; http://203.0.113.10/\n" +
        "==> staged: greenVersion=v3 (the last pulumi up has v1); pulumi up applies it\n" +
        "==> host (/usr/local/sbin/bluegreen-status on root@203.0.113.10):\n" +
        "live:        blue (recorded blue)\nmaintenance: off\n",
    );
  });

  it("the host's key the stack pinned (its hostKey output) is the only one ssh trusts, on the port sshCommand names", () => {
    const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPinnedByTheStack";
    const s = stack(
      LIVE_BLUE,
      {
        ...LIVE_BLUE,
        statusCommand: "ssh -p 2222 root@203.0.113.10 /usr/local/sbin/bluegreen-status",
        sshCommand: "ssh -p 2222 root@203.0.113.10",
        hostKey: key,
        url: "http://203.0.113.10/",
      },
      [],
    );
    // This ssh shows the known_hosts file it was given (the CLI removes it when it exits).
    fs.writeFileSync(
      path.join(s.dir, "ssh"),
      '#!/bin/sh\necho "$*" >> "$FAKE_DIR/ssh-log"\nfor a in "$@"; do case "$a" in UserKnownHostsFile=*) cat "${a#*=}" >> "$FAKE_DIR/known";; esac; done\necho "live:        blue"\n',
      { mode: 0o755 },
    );
    const r = s.cli("status");
    assert.strictEqual(r.status, 0, r.stderr);
    const argv = fs.readFileSync(path.join(s.dir, "ssh-log"), "utf8").trim();
    assert.match(
      argv,
      /^-o BatchMode=yes -o ConnectTimeout=15 -o UserKnownHostsFile=\S+\/known_hosts -o GlobalKnownHostsFile=\/dev\/null -o StrictHostKeyChecking=yes -p 2222 root@203\.0\.113\.10 \/usr\/local\/sbin\/bluegreen-status$/,
    );
    assert.strictEqual(fs.readFileSync(path.join(s.dir, "known"), "utf8"), `[203.0.113.10]:2222 ${key}\n`);
    const file = /UserKnownHostsFile=(\S+)/.exec(argv)![1];
    assert.ok(!fs.existsSync(file), "the file goes when the CLI exits");
  });

  it("status: a host that does not answer is reported in ssh's own words, exit 1", () => {
    const closedPortStatus = "ssh -p 1 root@127.0.0.1 /usr/local/sbin/bluegreen-status";
    const s = stack(LIVE_BLUE, { ...LIVE_BLUE, statusCommand: closedPortStatus }, []);
    const r = s.cliWith({ BLUEGREEN_SSH: "ssh -o UserKnownHostsFile=/dev/null" }, "status", "--json");
    assert.strictEqual(r.status, 1);
    const j = JSON.parse(r.stdout);
    assert.strictEqual(j.host, null);
    assert.strictEqual(j.hostError, "ssh: connect to host 127.0.0.1 port 1: Connection refused");
  });

  it("logs: both slots' journal by default; -f and -n pass on", () => {
    const s = hostStack();
    const r = s.cli("logs", "-n", "50", "--follow");
    assert.strictEqual(r.status, 0, r.stderr);
    assert.strictEqual(r.stdout, "Dec 04 05:00:00 host app[1]: a journal line\n");
    assert.deepStrictEqual(s.sshLog(), [
      `${BATCH} root@203.0.113.10 journalctl --no-pager -u bluegreen@blue -u bluegreen@green -n 50 -f`,
    ]);
  });

  it("restore: the host's own command over SSH, with the app's namespace, sudo and --remote; --list lists", () => {
    const s = hostStack("ssh -p 2222 deploy@203.0.113.10 sudo -n /usr/local/sbin/bluegreen-shop-status");
    const r = s.cli("restore", "20261207T120000Z-snapshot");
    assert.strictEqual(r.status, 0, r.stderr);
    assert.strictEqual(r.stdout, "restored (stand-in)\n");
    assert.strictEqual(s.cli("restore", "latest", "--remote").status, 0);
    const list = s.cli("restore", "--list", "--remote");
    assert.strictEqual(list.stdout, "20261207T120000Z-snapshot  snapshot\n");
    const at = `${BATCH} -p 2222 deploy@203.0.113.10 sudo -n`;
    assert.deepStrictEqual(s.sshLog(), [
      `${at} /usr/local/sbin/bluegreen-shop-restore 20261207T120000Z-snapshot`,
      `${at} /usr/local/sbin/bluegreen-shop-restore --remote latest`,
      `${at} /usr/local/sbin/bluegreen-shop-backup list --remote`,
    ]);
    assert.ok(!s.calls().some((c) => c.startsWith("config set") || c.startsWith("up")));
  });

  it("logs live / idle: the host says which is live; an app's namespace, port and sudo come from statusCommand", () => {
    const s = hostStack("ssh -p 2222 deploy@203.0.113.10 sudo -n /usr/local/sbin/bluegreen-shop-status");
    s.hostServes("green");
    assert.strictEqual(s.cli("logs", "live").status, 0);
    assert.strictEqual(s.cli("logs", "idle", "-f").status, 0);
    assert.strictEqual(s.cli("logs", "blue").status, 0);
    const at = `${BATCH} -p 2222 deploy@203.0.113.10 sudo -n`;
    assert.deepStrictEqual(s.sshLog(), [
      `${at} /usr/local/sbin/bluegreen-shop-status live`,
      `${at} journalctl --no-pager -u bluegreen-shop@green`,
      `${at} /usr/local/sbin/bluegreen-shop-status live`,
      `${at} journalctl --no-pager -u bluegreen-shop@blue -f`,
      `${at} journalctl --no-pager -u bluegreen-shop@blue`,
    ]);
  });
});
