// End-to-end with router: haproxy, on its own VM: the program's commands replayed against
// Debian 12's HAProxy 2.6, installed by bluegreen from the image's local apt repository.
// In order, each scenario builds on the last. (The nginx suite is scenarios.e2e.ts; the
// router-neutral parts of the switch run against both routers in test/switch-local.test.ts.)
import * as assert from "assert";
import { runProgram } from "../harness";
import { resourcesOf, StateEntry, up, UpResult } from "./replay";
import { ensureImage, guestLoads, Image, Vm } from "./vm";

const report: string[] = [];
const note = (line: string) => {
  report.push(line);
  console.log(`      ${line}`);
};

describe("e2e on a real VM with HAProxy (replayed program)", function () {
  this.timeout(20 * 60_000);
  let image: Image;
  let vm: Vm;
  let state: StateEntry[] = [];
  let config: Record<string, unknown>;
  const inVm = (cmd: string) => vm.sh(cmd).then((s) => s.trim());

  async function deploy(changes: Record<string, unknown>): Promise<UpResult> {
    config = { ...config, ...changes };
    const result = await up(state, resourcesOf(await runProgram(config)));
    state = result.state;
    return result;
  }
  const stepsOf = (r: UpResult) => r.steps.map((s) => `${s.action} ${s.name}${s.ok ? "" : " (failed)"}`);
  const output = (r: UpResult, name: string) => r.steps.find((s) => s.name === name)?.output ?? "";
  const answer = (host = "") =>
    inVm(`curl -sS --max-time 10 ${host ? `-H 'Host: ${host}' ` : ""}http://127.0.0.1/ 2>&1 | head -c 200`);
  /** HAProxy's workers: the master's children. The same PIDs mean no reload. */
  const workers = () => inVm("pgrep -P $(systemctl show -p MainPID --value haproxy) | sort | tr '\\n' ' '");
  const pid = (c: string) => inVm(`systemctl show -p MainPID --value bluegreen@${c}`);
  const FAULTS = "/var/lib/bluegreen/data/faults";

  before(async () => {
    image = ensureImage();
    vm = await Vm.boot(image);
    // A host as cloud images come: no nginx on port 80 (the image has one for the nginx suite).
    await inVm("systemctl disable --now nginx");
    config = {
      hostKind: "ssh",
      sshHost: "127.0.0.1",
      sshPort: vm.sshPort,
      sshPrivateKey: image.privateKey,
      sshHostKey: image.hostKey,
      router: "haproxy",
      active: "blue",
      blueVersion: "v1",
      greenVersion: "v2",
      watchSeconds: "3",
      appArgs:
        "--listen ${BLUEGREEN_LISTEN} --color ${BLUEGREEN_COLOR} --version ${BLUEGREEN_VERSION} --drain-timeout ${BLUEGREEN_DRAIN_TIMEOUT}s --fault-dir ${BLUEGREEN_DATA_DIR}/faults",
    };
  });

  after(async () => {
    await vm?.shutdown();
    if (report.length) console.log(`\n    HAProxy e2e figures:\n${report.map((l) => `      ${l}`).join("\n")}\n`);
  });

  it("H1. fresh host: bluegreen installs HAProxy with apt, serves blue; the admin socket is root's; only sshd and haproxy on TCP", async () => {
    const r = await deploy({});
    assert.strictEqual(r.error, undefined, r.error);
    assert.match(output(r, "router-install"), /^haproxy 2\.6\.\S+ installed and running/m);
    assert.strictEqual(await answer(), "blue v1");
    assert.strictEqual(await inVm("stat -c '%a %U' /run/haproxy/admin.sock"), "600 root");
    assert.strictEqual(
      await inVm("cat /var/lib/bluegreen/haproxy.map"),
      "live bluegreen_blue_socket\nidle bluegreen_green_socket\nmaintenance off",
    );
    const tcp = await inVm("ss -ltnpH | awk '{print $4, $6}' | sort");
    for (const line of tcp.split("\n"))
      assert.match(line, /users:\(\("(sshd|haproxy)"/, `unexpected TCP listener: ${line}`);
    assert.strictEqual(await inVm("curl -sS http://127.0.0.1:8081/"), "green v2", "preview: the idle slot");
  });

  it("H2. switches under 64 in-guest keep-alive connections: 0 failed, and HAProxy never reloads", async () => {
    const before = await workers();
    let switched: UpResult | undefined;
    let back: UpResult | undefined;
    const [load] = await guestLoads(vm, [{ url: "http://127.0.0.1/" }], async () => {
      switched = await deploy({ active: "green" });
      back = await deploy({ active: "blue" });
    });
    assert.strictEqual(switched!.error, undefined, switched!.error);
    assert.strictEqual(back!.error, undefined, back!.error);
    assert.deepStrictEqual(stepsOf(switched!), ["update switch-link"]);
    assert.match(
      output(switched!, "switch-link"),
      /verified \d+ ms after the link moved through haproxy: X-Bluegreen-Color: green/,
    );
    note(
      `two switches through HAProxy's runtime API under load: ${load.requests} requests, ${load.failed} failed, ${load.retried} resent; ${/switched in (\d+) ms/.exec(output(switched!, "switch-link"))?.[1]} ms`,
    );
    assert.strictEqual(load.failed, 0, load.raw);
    assert.strictEqual(load.retried, 0, load.raw);
    assert.strictEqual(await workers(), before, "the same HAProxy workers throughout");
    assert.strictEqual(await answer(), "blue v1");
  });

  it("H3. a config change reloads the master-worker under load: the listeners pass on, 0 failed", async () => {
    const before = await workers();
    let r: UpResult | undefined;
    const [load] = await guestLoads(vm, [{ url: "http://127.0.0.1/" }], async () => {
      r = await deploy({ maintenanceRetryAfter: "300" });
    });
    assert.strictEqual(r!.error, undefined, r!.error);
    assert.deepStrictEqual(stepsOf(r!), ["update router-config"]);
    assert.notStrictEqual(await workers(), before, "reloaded: new workers");
    note(
      `HAProxy seamless reload (a config change) under 64 keep-alive conns: ${load.requests} requests, ${load.failed} failed, ${load.retried} resent by the client`,
    );
    assert.strictEqual(load.failed, 0, load.raw);
  });

  it("H4. maintenance: 503 with Retry-After from the map, no reload; check and preview still reach the slots", async () => {
    const before = await workers();
    const on = await deploy({ maintenance: true });
    assert.deepStrictEqual(stepsOf(on), ["update maintenance-mode"]);
    assert.match(
      await inVm("curl -sS -D - -o /dev/null http://127.0.0.1/"),
      /^HTTP\/1\.1 503 [\s\S]*\r\nretry-after: 300\r\n/i,
    );
    assert.strictEqual(await inVm("curl -sS http://127.0.0.1:8082/"), "blue v1");
    assert.strictEqual(await inVm("curl -sS http://127.0.0.1:8081/"), "green v2");
    const off = await deploy({ maintenance: false });
    assert.deepStrictEqual(stepsOf(off), ["update maintenance-mode"]);
    assert.strictEqual(await answer(), "blue v1");
    assert.strictEqual(await workers(), before);
  });

  it("H5. a slot that serves 500s after the switch is taken out by the watch (HAProxy's counters)", async () => {
    await inVm(`install -d -o bluegreen ${FAULTS} && touch ${FAULTS}/green.error500`);
    try {
      let s: UpResult | undefined;
      const [load] = await guestLoads(vm, [{ url: "http://127.0.0.1/" }], async () => {
        s = await deploy({ active: "green", watchSeconds: "10" });
      });
      assert.match(
        s!.error ?? "",
        /switch to green rolled back: \d+ of \d+ responses since the switch were 5xx, \d+ ms after it \(limit: 5% and at least 5\)\. Traffic is back on blue \(v1\)\./,
      );
      assert.strictEqual(await answer(), "blue v1");
      note(`watch rollback through HAProxy's counters: ${load.failed} of ${load.requests} requests were green's 500s`);
    } finally {
      await inVm(`rm -f ${FAULTS}/green.error500`);
    }
    const back = await deploy({ active: "blue", watchSeconds: "3" });
    assert.strictEqual(back.error, undefined, back.error);
  });

  it("H6. reboot: HAProxy reads the map file, so the same slot is served; the next up runs nothing", async () => {
    const sw = await deploy({ active: "green" });
    assert.strictEqual(sw.error, undefined, sw.error);
    await vm.reboot();
    for (let i = 0; i < 60 && (await answer()) !== "green v2"; i++) await new Promise((r) => setTimeout(r, 1000));
    assert.strictEqual(await answer(), "green v2");
    assert.deepStrictEqual(stepsOf(await deploy({})), []);
    assert.ok((await pid("blue")) !== "0");
  });

  it("H7. a second app on the same HAProxy, routed by Host; adding it reloads under load with 0 failed", async () => {
    let shopState: StateEntry[] = [];
    const shop = { ...config, appName: "shop", domains: ["shop.example.test"], active: "blue" };
    let r: UpResult | undefined;
    const [load] = await guestLoads(vm, [{ url: "http://127.0.0.1/" }], async () => {
      r = await up(shopState, resourcesOf(await runProgram(shop, { stack: "shop" })));
    });
    assert.strictEqual(r!.error, undefined, r!.error);
    shopState = r!.state;
    note(
      `second app added on HAProxy (one reload) under load on the first: ${load.requests} requests, ${load.failed} failed, ${load.retried} resent`,
    );
    assert.strictEqual(load.failed, 0, load.raw);
    assert.strictEqual(await answer("shop.example.test"), "blue v1");
    assert.strictEqual(await answer(), "green v2", "the first app is the catch-all");
    const gone = await up(shopState, []);
    assert.strictEqual(gone.error, undefined, gone.error);
    assert.strictEqual(await answer("shop.example.test"), "green v2");
    assert.strictEqual(await inVm("ls /etc/haproxy/bluegreen/routes | tr '\\n' ' '"), "bluegreen.route head");
  });
});
