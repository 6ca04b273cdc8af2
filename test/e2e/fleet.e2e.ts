// One app on three hosts (bluegreen:hosts) behind a stand-in load balancer: three nspawn
// containers from the e2e image, and a real HAProxy on this machine set up as the Hetzner
// balancer behaves (test/support/balancer.ts: round robin, an HTTP check of /.bluegreen/health
// with interval, timeout and retries, 503 with no healthy target). The program runs under mocks
// and its steps are replayed over real SSH, the coordinated switch (switch-hosts) included: it
// runs local-coordinate.js here, with ssh to every host. What serves on each host is checked
// against what each host records, under load through the balancer.
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { StandInBalancer } from "../support/balancer";
import { runProgram } from "../support/harness";
import { startWrk, WrkResult } from "../support/sandbox";
import { run } from "../support/tools";
import { Container } from "./container";
import { localStdoutFrom, resourcesOf, StateEntry, up, UpResult } from "./replay";
import { ensureImage } from "./vm";

const NAMES = ["web1", "web2", "web3"] as const;
const FAULTS = "/var/lib/bluegreen/data/faults";
const LB_PORT = 18990;
const HEALTH = { interval: 3, timeout: 1, retries: 2 };
// The issue's figure: 20 switches of every host under load through the balancer.
const SWITCHES = 20;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

describe("e2e: one app on three hosts behind a stand-in balancer (nspawn containers, replayed program)", function () {
  this.timeout(30 * 60_000);
  let hosts: Container[] = [];
  let lb: StandInBalancer;
  let state: StateEntry[] = [];
  let config: Record<string, unknown>;
  const report: string[] = [];
  const note = (l: string) => (report.push(l), console.log(`      ${l}`));

  before(async () => {
    const image = ensureImage();
    const started = Date.now();
    hosts = await Container.bootMany(image, 3);
    note(`3 containers booted in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    // One login key for the stack (each container starts with its own): web1's, authorized on all.
    const keyFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "bg-fleet-")), "key");
    fs.writeFileSync(keyFile, hosts[0].connection.privateKey, { mode: 0o600 });
    const pub = run("ssh-keygen", ["-y", "-f", keyFile]).stdout.trim();
    for (const h of hosts.slice(1)) await h.sh(`echo '${pub}' >>/root/.ssh/authorized_keys`);
    config = {
      hostKind: "ssh",
      hosts: Object.fromEntries(NAMES.map((n, i) => [n, hosts[i].connection.host])),
      sshPrivateKey: hosts[0].connection.privateKey,
      router: "nginx",
      active: "blue",
      blueVersion: "v1",
      greenVersion: "v1",
      watchSeconds: "2",
      loadBalancerHealthInterval: HEALTH.interval,
      loadBalancerHealthTimeout: HEALTH.timeout,
      loadBalancerHealthRetries: HEALTH.retries,
      appArgs:
        "--listen ${BLUEGREEN_LISTEN} --color ${BLUEGREEN_COLOR} --version ${BLUEGREEN_VERSION} --drain-timeout ${BLUEGREEN_DRAIN_TIMEOUT}s --fault-dir ${BLUEGREEN_DATA_DIR}/faults",
    };
    lb = new StandInBalancer({
      listen: `127.0.0.1:${LB_PORT}`,
      targets: hosts.map((h, i) => ({ name: NAMES[i], address: h.httpAddress })),
      health: HEALTH,
    });
    lb.start();
  });
  after(async () => {
    lb?.stop();
    await Promise.all(hosts.map((h) => h.shutdown()));
    if (report.length) console.log(`\n    e2e figures (three hosts):\n${report.map((l) => `      ${l}`).join("\n")}\n`);
  });

  /** `pulumi config set ...` then `pulumi up`, replayed. */
  async function deploy(changes: Record<string, unknown>): Promise<UpResult> {
    config = { ...config, ...changes };
    const program = await runProgram(config, { localStdout: localStdoutFrom(state) });
    const result = await up(state, resourcesOf(program));
    state = result.state;
    return result;
  }
  const stepsOf = (r: UpResult) => r.steps.map((s) => `${s.action} ${s.name}${s.ok ? "" : " (failed)"}`);
  const output = (r: UpResult, name: string) => r.steps.find((s) => s.name === name)?.output ?? "";
  const on = (i: number, cmd: string) => hosts[i].sh(cmd).then((s) => s.trim());
  /** What each host serves now (its own public port) and what each records. */
  const served = () =>
    hosts.map((h) => run("curl", ["-sS", "--max-time", "5", `http://${h.httpAddress}/`]).stdout.trim());
  const recorded = () => Promise.all(hosts.map((_, i) => on(i, "cat /var/lib/bluegreen/active")));
  const intents = () =>
    Promise.all(hosts.map((_, i) => on(i, "test -e /var/lib/bluegreen/switch.intent && echo left || echo none")));
  async function consistent(color: string, version: string) {
    assert.deepStrictEqual(
      served(),
      NAMES.map(() => `${color} ${version}`),
      "what each host serves",
    );
    assert.deepStrictEqual(
      await recorded(),
      NAMES.map(() => color),
      "what each host records",
    );
    assert.deepStrictEqual(await intents(), ["none", "none", "none"], "no switch left halfway");
  }
  /** wrk through the balancer, 64 keep-alive connections, around `during`. */
  async function underLoad(during: () => Promise<void>): Promise<WrkResult> {
    const load = startWrk(`http://127.0.0.1:${LB_PORT}/`, { connections: 64, seconds: 3600, timeout: "15s" });
    try {
      await new Promise((r) => setTimeout(r, 1500));
      await during();
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      await load.stop();
    }
    return load.done;
  }
  const failed = (w: WrkResult) => w.socketErrors + w.non2xx;

  it("up: every host serves blue v1, and the balancer sends to all three", async () => {
    const r = await deploy({});
    assert.strictEqual(r.error, undefined, r.error);
    assert.ok(stepsOf(r).includes("create switch-hosts"));
    assert.match(
      output(r, "switch-hosts"),
      /\nlive: blue on every host \(3\); switch \S+; mixed-version window \d+ ms;/,
    );
    await lb.waitFor({ web1: "UP", web2: "UP", web3: "UP" }, 30);
    await consistent("blue", "v1");
  });

  it("v2 to green: the idle slot on every host, in one up; the public stays on blue", async () => {
    const r = await deploy({ greenVersion: "v2" });
    assert.strictEqual(r.error, undefined, r.error);
    assert.deepStrictEqual(
      stepsOf(r)
        .filter((s) => s.includes("green-service"))
        .sort(),
      NAMES.map((n) => `update ${n}-green-service`),
    );
    await consistent("blue", "v1");
  });

  it(`${SWITCHES} switches under load through the balancer: 0 failed, every host on the same colour after each`, async () => {
    const windows: number[] = [];
    const verified: number[] = [];
    let colour = "blue";
    const load = await underLoad(async () => {
      for (let i = 0; i < SWITCHES; i++) {
        colour = colour === "blue" ? "green" : "blue";
        const r = await deploy({ active: colour });
        assert.strictEqual(r.error, undefined, r.error);
        assert.deepStrictEqual(stepsOf(r), ["update switch-hosts"]);
        const out = output(r, "switch-hosts");
        windows.push(Number(/mixed-version window (\d+) ms/.exec(out)![1]));
        for (const m of out.matchAll(/verified (\d+) ms after the link moved/g)) verified.push(Number(m[1]));
        assert.deepStrictEqual(
          await recorded(),
          NAMES.map(() => colour),
        );
      }
    });
    assert.strictEqual(failed(load), 0, load.raw);
    await consistent("blue", "v1");
    note(
      `${SWITCHES} switches of 3 hosts under 64 keep-alive conns through the balancer: ${load.requests} requests, 0 failed; ` +
        `mixed-version window across hosts (first host's move to the last's) median ${median(windows)} ms, max ${Math.max(...windows)} ms; ` +
        `one host, its link moved to verified through nginx: median ${median(verified)} ms, max ${Math.max(...verified)} ms`,
    );
  });

  it("a commit failing on host 2: every host put back, 0 failed", async () => {
    // web2's switch is stopped (SIGTERM) right after its link moved to green, after the word commit:
    // it puts its own link back, and the coordinator calls web1 and web3 back.
    await on(
      1,
      "setsid nohup sh -c 'for i in $(seq 1 1500); do [ \"$(readlink /var/lib/bluegreen/live)\" = /var/lib/bluegreen/colors/green ] && break; sleep 0.02; done; pkill -TERM -f bluegreen/switch.sh' >/dev/null 2>&1 &",
    );
    let r: UpResult | undefined;
    const load = await underLoad(async () => {
      r = await deploy({ active: "green" });
    });
    assert.deepStrictEqual(stepsOf(r!), ["update switch-hosts (failed)"]);
    assert.match(
      r!.error!,
      /stopped at (commit|the watch): host web2 failed:\n.*the switch to green stopped before it was confirmed \(exit 143\); traffic was put back on blue/s,
    );
    assert.strictEqual(failed(load), 0, load.raw);
    await consistent("blue", "v1");
    note(`a commit failing on host 2 under load: ${load.requests} requests, 0 failed; every host back on blue`);
  });

  it("host 3 unreachable during prepare: nothing changes anywhere, and the error names it", async () => {
    // sshd on web3 stops (its sessions stay: KillMode=process) and starts again 15 s later.
    await on(
      2,
      "setsid nohup sh -c 'sleep 15; systemctl start ssh.service' >/dev/null 2>&1 & systemctl stop ssh.service",
    );
    const r = await deploy({ active: "green" });
    assert.deepStrictEqual(stepsOf(r), ["update switch-hosts (failed)"]);
    assert.match(
      r.error!,
      /stopped at prepare: host web3 failed:\nssh: connect to host \S+ port 22: Connection refused\nNothing moved on any host/,
    );
    for (let i = 0; i < 100 && run("ssh-keyscan", ["-T", "1", hosts[2].connection.host]).status !== 0; i++)
      await new Promise((res) => setTimeout(res, 500));
    await consistent("blue", "v1");
    // web1 and web2 had prepared: each says it was called back, under the switch's one id.
    for (const i of [0, 1])
      assert.match(
        await on(i, "tail -n 1 /var/log/bluegreen/audit.log"),
        / switch from=blue to=green version=v2 switch_id=\S+ result=aborted /,
        NAMES[i],
      );
  });

  it("a 5xx breach on one host during the watch moves every host back", async () => {
    await on(2, `mkdir -p ${FAULTS} && touch ${FAULTS}/green.error500`);
    let r: UpResult | undefined;
    const load = await underLoad(async () => {
      r = await deploy({ active: "green", watchSeconds: "4" });
    });
    await on(2, `rm -f ${FAULTS}/green.error500`);
    assert.deepStrictEqual(stepsOf(r!), ["update switch-hosts (failed)"]);
    assert.match(
      r!.error!,
      /stopped at the watch: host web3 failed:\n.*switch to green rolled back: \d+ of \d+ responses since the switch were 5xx/s,
    );
    await consistent("blue", "v1");
    // The 5xx web3's green answered before the breach are the only failures.
    assert.strictEqual(load.socketErrors, 0, load.raw);
    note(
      `a 5xx breach on host 3 alone: every host back on blue; ${load.non2xx} of ${load.requests} requests got web3's injected 500 before it`,
    );
  });

  it("kill -9 of the coordinator after every host moved: every host back by itself; the next up switches all", async () => {
    const killed = deploy({ active: "green", watchSeconds: "20" });
    for (let i = 0; i < 300 && served().some((s) => !s.startsWith("green")); i++)
      await new Promise((res) => setTimeout(res, 100));
    assert.deepStrictEqual(
      served(),
      NAMES.map(() => "green v2"),
      "every host moved",
    );
    spawnSync("pkill", ["-KILL", "-f", "^node -$"]);
    const r = await killed;
    assert.deepStrictEqual(stepsOf(r), ["update switch-hosts (failed)"]);
    for (let i = 0; i < 100 && (await intents()).some((x) => x !== "none"); i++)
      await new Promise((res) => setTimeout(res, 100));
    await consistent("blue", "v1");
    const again = await deploy({ watchSeconds: "2" });
    assert.strictEqual(again.error, undefined, again.error);
    await consistent("green", "v2");
    const back = await deploy({ active: "blue" });
    assert.strictEqual(back.error, undefined, back.error);
  });

  it("drain host 3 under load, remove it, add it back: 0 failed, and it serves the live colour before it takes traffic", async () => {
    const load = await underLoad(async () => {
      const d = await deploy({ drainedHosts: ["web3"] });
      assert.strictEqual(d.error, undefined, d.error);
      assert.deepStrictEqual(stepsOf(d), ["update web3-drain-state"]);
      assert.match(
        output(d, "web3-drain-state"),
        /^drained: the balancer's health check gets 503, and no public request came for 4 s/,
      );
      assert.strictEqual(lb.states().web3, "DOWN");
      // Removed while drained: its steps' deletes stop its slots; the balancer sends it nothing.
      const { web3: _gone, ...two } = config.hosts as Record<string, string>;
      const removed = await deploy({ hosts: two, drainedHosts: [] });
      assert.strictEqual(removed.error, undefined, removed.error);
      assert.ok(stepsOf(removed).includes("delete web3-blue-service"), stepsOf(removed).join("\n"));
      // Added back: deployed, switched to the live colour by switch-hosts, then taken back by the balancer.
      const added = await deploy({ hosts: { ...two, web3: hosts[2].connection.host } });
      assert.strictEqual(added.error, undefined, added.error);
      assert.match(output(added, "switch-hosts"), /web3 ready to move/);
      await lb.waitFor({ web3: "UP" }, 30);
    });
    assert.strictEqual(failed(load), 0, load.raw);
    await consistent("blue", "v1");
    note(`drain, remove and add back host 3 under load through the balancer: ${load.requests} requests, 0 failed`);
  });
});
