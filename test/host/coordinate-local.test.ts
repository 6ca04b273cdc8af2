// The all-or-nothing switch across hosts: local-coordinate.js driving switch.sh (COORDINATED=yes)
// on three sandbox hosts, each with its own real nginx and demo slots, through an ssh that runs
// the command in the sandbox (as sshd would run it on the host: the session's stdin and stdout).
// What serves on each host is checked against what each host records, under load.
import * as assert from "assert";
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { tool } from "../../components/host/tools";
import { appLayout } from "../../components/host/layout";
import { SCRIPTS_DIR } from "../../components/host/shell";
import { onPorts, Sandbox, wrk } from "../support/sandbox";
import { requireTool } from "../support/tools";

const NAMES = ["web1", "web2", "web3"] as const;
const BASE = 19300;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The coordinator's ssh for sandboxes: runs the command in the named host's sandbox root. */
const FAKE_SSH = `#!/usr/bin/env bash
# Fake ssh: DEST is root@NAME; $FAKE_SSH_DIR/NAME.root holds the sandbox root. NAME.refuse: the
# host does not answer. NAME.on-commit: a script run when the word commit passes to the host.
set -euo pipefail
echo "$*" >>"$FAKE_SSH_DIR/argv"
while [ $# -gt 0 ]; do case "$1" in --) shift; break ;; -o | -p | -i) shift 2 ;; *) shift ;; esac; done
dest=$1 && shift
name=\${dest#*@} cmd=$*
if [ -e "$FAKE_SSH_DIR/$name.refuse" ]; then
  echo "ssh: connect to host $name port 22: Connection refused" >&2
  exit 255
fi
root=$(cat "$FAKE_SSH_DIR/$name.root")
cmd=\${cmd//\\/usr\\/local\\/lib\\//$root/usr/local/lib/}
if [ ! -e "$FAKE_SSH_DIR/$name.on-commit" ]; then exec bash -c "$cmd"; fi
exec 3> >(exec bash -c "$cmd")
pid=$!
# As ssh does, the session ends when the command does, whatever stdin still holds.
(
  while IFS= read -r line; do
    if [ "$line" = commit ]; then bash "$FAKE_SSH_DIR/$name.on-commit"; fi
    printf '%s\\n' "$line" >&3
  done
) <&0 &
loop=$!
exec 3>&-
rc=0
wait "$pid" || rc=$?
kill "$loop" 2>/dev/null || true
exit "$rc"
`;

describe("the switch across three hosts (local-coordinate.js, local sandboxes)", function () {
  this.timeout(300_000);
  const hosts: Sandbox[] = [];
  let dir: string;
  const L = appLayout();

  before(async () => {
    requireTool("node");
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "bg-coord-"));
    fs.writeFileSync(path.join(dir, "ssh"), FAKE_SSH, { mode: 0o755 });
    for (const [i, name] of NAMES.entries()) {
      const h = new Sandbox(onPorts("nginx", BASE + 10 * i));
      hosts.push(h);
      const cfg = h.configureAndStart();
      assert.strictEqual(cfg.status, 0, cfg.stderr);
      await h.startSlot("blue", "v1");
      await h.startSlot("green", "v2");
      const first = h.switchTo("blue");
      assert.strictEqual(first.status, 0, first.stderr);
      fs.writeFileSync(path.join(dir, `${name}.root`), h.root);
    }
  });
  after(() => {
    for (const h of hosts) h.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  afterEach(() => {
    for (const f of fs.readdirSync(dir)) if (/\.(refuse|on-commit)$/.test(f)) fs.rmSync(path.join(dir, f));
    for (const h of hosts) for (const c of ["blue", "green"]) fs.rmSync(`${h.faultDir}/${c}.error500`, { force: true });
  });

  /** Starts the coordinator as the program's switch-hosts step runs it: node -, its text on stdin. */
  function coordinate(
    target: "blue" | "green",
    o: { watch?: number; min?: number; hostMin?: number; verify?: number } = {},
  ) {
    const hostsJson = NAMES.map((name, i) => ({
      name,
      address: name,
      port: 22,
      user: "root",
      hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyOf" + name,
      command: tool(
        L,
        "switch.sh",
        {
          TARGET: target,
          HEALTH_PATH: "/health/ready",
          CHECK_PORT: BASE + 10 * i + 2,
          VERIFY_TIMEOUT: o.verify ?? 5,
          WATCH_SECONDS: o.watch ?? 0,
          ERROR_PERCENT: 5,
          MIN_ERRORS: o.hostMin ?? o.min ?? 5,
          COORDINATED: "yes",
          PHASE_TIMEOUT: 60,
          SWITCH_ID: "%SWITCH_ID%",
        },
        false,
      ),
    }));
    const child = spawn("node", ["-"], {
      env: {
        PATH: process.env.PATH,
        FAKE_SSH_DIR: dir,
        SSH_PROGRAM: path.join(dir, "ssh"),
        TARGET: target,
        HOSTS: JSON.stringify(hostsJson),
        ERROR_PERCENT: "5",
        MIN_ERRORS: String(o.min ?? 5),
        PREPARE_SECONDS: "60",
        PHASE_SECONDS: "60",
        SSH_PRIVATE_KEY: "-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n-----END OPENSSH PRIVATE KEY-----\n",
      },
    });
    child.stdin.end(fs.readFileSync(path.join(SCRIPTS_DIR, "switch", "local-coordinate.js"), "utf8"));
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const done = new Promise<{ code: number | null; out: string; err: string }>((resolve) =>
      child.on("close", (code) => resolve({ code, out, err })),
    );
    return { child: child as ChildProcess, done };
  }

  const served = () => hosts.map((h) => h.servedColor());
  const recorded = () => hosts.map((h) => fs.readFileSync(h.at("/var/lib/bluegreen/active"), "utf8").trim());
  const intents = () => hosts.filter((h) => fs.existsSync(h.at("/var/lib/bluegreen/switch.intent"))).length;
  const auditTail = (h: Sandbox) =>
    fs.readFileSync(h.at("/var/log/bluegreen/audit.log"), "utf8").trim().split("\n").pop()!;
  /** wrk on every host's public port while `during` runs. */
  async function underLoad(during: () => Promise<void>, seconds = 6) {
    const loads = hosts.map((h) => wrk(`http://127.0.0.1:${h.opts.httpPort}/`, seconds, 16));
    await sleep(1000);
    await during();
    const results = await Promise.all(loads);
    for (const w of results) {
      assert.ok(w.requests > 500, w.raw);
      assert.strictEqual(w.socketErrors, 0, w.raw);
    }
    return results;
  }

  it("every host switches, with one switch id in every host's audit line, under load with 0 failed", async () => {
    let r: Awaited<ReturnType<typeof coordinate>["done"]> | undefined;
    const loads = await underLoad(async () => {
      r = await coordinate("green").done;
    });
    assert.strictEqual(r!.code, 0, r!.err + r!.out);
    for (const w of loads) assert.strictEqual(w.non2xx, 0, w.raw);
    assert.deepStrictEqual(served(), ["green", "green", "green"]);
    assert.deepStrictEqual(recorded(), ["green", "green", "green"]);
    const id = /^switch (\S+): green on 3 hosts \(web1, web2, web3\)$/m.exec(r!.out)?.[1];
    assert.ok(id, r!.out);
    for (const h of hosts)
      assert.match(
        auditTail(h),
        new RegExp(
          ` switch from=blue to=green version=v2 switch_id=${id} watch=no-traffic|switch from=blue to=green version=v2 switch_id=${id} result=ok`,
        ),
      );
    assert.match(
      r!.out,
      /^committed on every host: moved within \d+ ms of each other \(host clocks\), all verified \d+ ms after the word was sent$/m,
    );
    assert.match(
      r!.out,
      new RegExp(
        `^live: green on every host \\(3\\); switch ${id}; mixed-version window \\d+ ms; watched 0 of 0 responses 5xx across hosts; [0-9.]+ s in all$`,
        "m",
      ),
    );
    // The hosts' keys are pinned, and the key file is passed, never its text.
    const argv = fs.readFileSync(path.join(dir, "argv"), "utf8");
    assert.match(argv, /-o StrictHostKeyChecking=yes/);
    assert.match(argv, /-i \S+\/key -o IdentitiesOnly=yes/);
    assert.ok(!argv.includes("fake\n") && !argv.includes("PRIVATE KEY"), "no key text on argv");
  });

  it("a host that does not answer: nothing moves anywhere, and the error names it", async () => {
    fs.writeFileSync(path.join(dir, "web3.refuse"), "");
    const r = await coordinate("blue").done;
    assert.strictEqual(r.code, 1, r.out);
    assert.match(
      r.err,
      /^bluegreen: error: the switch to blue stopped at prepare: host web3 failed:\nssh: connect to host web3 port 22: Connection refused\nNothing moved on any host: traffic stays where it was\.\n/,
    );
    assert.deepStrictEqual(served(), ["green", "green", "green"]);
    assert.deepStrictEqual(recorded(), ["green", "green", "green"]);
    assert.strictEqual(intents(), 0);
    for (const h of hosts.slice(0, 2))
      assert.match(auditTail(h), / switch from=green to=blue version=v1 switch_id=\S+ result=aborted /);
  });

  it("a commit that fails on host 2 puts every host back, under load with 0 failed", async () => {
    // web2's green stops answering its readiness right as the word commit reaches it: its
    // verify through nginx fails after the move, after web1 and web3 have moved.
    fs.writeFileSync(path.join(dir, "web2.on-commit"), `touch ${hosts[1].faultDir}/blue.unready\n`);
    let r: Awaited<ReturnType<typeof coordinate>["done"]> | undefined;
    const loads = await underLoad(async () => {
      r = await coordinate("blue", { verify: 2 }).done;
    });
    fs.rmSync(`${hosts[1].faultDir}/blue.unready`, { force: true });
    assert.strictEqual(r!.code, 1, r!.out);
    assert.match(
      r!.err,
      /stopped at commit: host web2 failed:\n.*nginx did not serve blue within 2s after the switch/s,
    );
    for (const w of loads) assert.strictEqual(w.non2xx, 0, w.raw);
    assert.deepStrictEqual(served(), ["green", "green", "green"]);
    assert.deepStrictEqual(recorded(), ["green", "green", "green"]);
    assert.strictEqual(intents(), 0);
  });

  it("a 5xx breach on one host alone during the watch moves every host back", async () => {
    fs.writeFileSync(`${hosts[2].faultDir}/blue.error500`, "");
    let r: Awaited<ReturnType<typeof coordinate>["done"]> | undefined;
    await underLoad(async () => {
      r = await coordinate("blue", { watch: 3 }).done;
    });
    assert.strictEqual(r!.code, 1, r!.out);
    assert.match(
      r!.err,
      /stopped at the watch: host web3 failed:\n.*switch to blue rolled back: \d+ of \d+ responses since the switch were 5xx/s,
    );
    assert.deepStrictEqual(served(), ["green", "green", "green"]);
    assert.deepStrictEqual(recorded(), ["green", "green", "green"]);
    for (const h of hosts.slice(0, 2)) assert.match(auditTail(h), / rollback from=blue to=green .*result=rolled-back /);
  });

  it("errors summed across hosts breach the limit, though no host alone does: every host goes back", async () => {
    // Every host sees 5xx on the target, but each host's own limit (its command's MIN_ERRORS) is
    // set out of reach, so only the coordinator's sum over the hosts (MIN_ERRORS 5) can breach.
    for (const h of hosts) fs.writeFileSync(`${h.faultDir}/blue.error500`, "");
    let r: Awaited<ReturnType<typeof coordinate>["done"]> | undefined;
    await underLoad(async () => {
      r = await coordinate("blue", { watch: 4, min: 5, hostMin: 100000 }).done;
    });
    assert.strictEqual(r!.code, 1, r!.out);
    assert.match(
      r!.err,
      /stopped at the watch: the hosts together failed:\n\d+ of \d+ responses were 5xx across 3 hosts \(limit: 5% and at least 5\)/,
    );
    for (const h of hosts) assert.match(auditTail(h), / rollback from=blue to=green .*result=rolled-back /);
    assert.deepStrictEqual(served(), ["green", "green", "green"]);
  });

  it("the coordinator killed (kill -9) after every host moved: every host puts traffic back; the next run switches all", async () => {
    const c = coordinate("blue", { watch: 20 });
    for (let i = 0; i < 200 && served().some((s) => s !== "blue"); i++) await sleep(50);
    assert.deepStrictEqual(served(), ["blue", "blue", "blue"], "every host moved");
    c.child.kill("SIGKILL");
    await c.done;
    for (let i = 0; i < 100 && (intents() > 0 || served().some((s) => s !== "green")); i++) await sleep(100);
    assert.deepStrictEqual(served(), ["green", "green", "green"]);
    assert.deepStrictEqual(recorded(), ["green", "green", "green"]);
    assert.strictEqual(intents(), 0);
    const again = await coordinate("blue").done;
    assert.strictEqual(again.code, 0, again.err);
    assert.deepStrictEqual(served(), ["blue", "blue", "blue"]);
    assert.deepStrictEqual(recorded(), ["blue", "blue", "blue"]);
  });

  it("hosts already on the target answer as such, and the switch is a success that moved nothing", async () => {
    const r = await coordinate("blue").done;
    assert.strictEqual(r.code, 0, r.err);
    assert.match(
      r.out,
      /^prepared on every host in [0-9.]+ s: web1 already there, web2 already there, web3 already there$/m,
    );
    assert.match(r.out, /mixed-version window 0 ms/);
  });
});
