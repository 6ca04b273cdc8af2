// Several hosts (bluegreen:hosts) under mocks: what each host gets, the one step that switches
// them all, the exact diff of each change, growing from one host to three, and the errors.
import * as assert from "assert";
import { coordinatorScript, fleetBounds } from "../../components/app/fleetSwitch";
import { DEFAULTS } from "../../components/config/keys";
import {
  BASE_CONFIG,
  changedResources,
  find,
  isSecret,
  MOCK_HOST_KEY,
  plain,
  Run,
  runProgram,
} from "../support/harness";
import { AliasResolver } from "../support/aliases";

const THREE = {
  ...BASE_CONFIG,
  sshHost: undefined,
  hosts: { web1: "203.0.113.11", web2: "203.0.113.12", web3: "203.0.113.13" },
};
const names = (r: Run, type: string) => r.resources.filter((x) => x.type === type).map((x) => x.name);

describe("several hosts (bluegreen:hosts)", () => {
  let three: Run;
  before(async () => {
    three = await runProgram(THREE);
  });

  it("each host gets the app's steps under its own name, and one step switches them all", () => {
    const remote = names(three, "command:remote:Command");
    for (const h of ["web1", "web2", "web3"]) {
      assert.deepStrictEqual(
        remote.filter((n) => n.startsWith(`${h}-`) || n.startsWith(`host-${h}-`)).sort(),
        [
          `host-${h}-ready`,
          `${h}-blue-service`,
          `${h}-drain-state`,
          `${h}-green-service`,
          `${h}-maintenance-mode`,
          `${h}-releases-prune`,
          `${h}-router-config`,
          `${h}-router-install`,
          `${h}-setup-tools`,
          `${h}-tls-config`,
        ].sort(),
      );
    }
    assert.ok(!remote.includes("switch-link"), "no one-host switch");
    assert.deepStrictEqual(names(three, "command:local:Command"), [
      "host-web1-ssh-hostkey",
      "host-web2-ssh-hostkey",
      "host-web3-ssh-hostkey",
      "switch-hosts",
    ]);
    assert.strictEqual(plain(find(three, "web2-router-config").inputs).connection.host, "203.0.113.12");
    assert.deepStrictEqual(three.outputs.hosts, {
      web1: { ip: "203.0.113.11", hostKey: MOCK_HOST_KEY },
      web2: { ip: "203.0.113.12", hostKey: MOCK_HOST_KEY },
      web3: { ip: "203.0.113.13", hostKey: MOCK_HOST_KEY },
    });
  });

  it("switch-hosts: the colour in its command, every host's switch.sh in HOSTS, the key a secret in its environment", () => {
    const sw = find(three, "switch-hosts").inputs;
    const b = fleetBounds(
      { verifySeconds: 15, watchSeconds: 30, errorPercent: 5, minErrors: 5 },
      { preSwitch: "", postSwitch: "", postSwitchFailure: "warn", timeoutSeconds: 600 },
    );
    assert.strictEqual(
      plain(sw).create,
      `env TARGET=blue ERROR_PERCENT=5 MIN_ERRORS=5 PREPARE_SECONDS=${b.prepare} PHASE_SECONDS=${b.phase} node -`,
    );
    assert.strictEqual(plain(sw).stdin, coordinatorScript());
    const hosts = JSON.parse(plain(sw).environment.HOSTS);
    assert.deepStrictEqual(
      hosts.map((h: Record<string, unknown>) => [h.name, h.address, h.port, h.user, h.hostKey]),
      [
        ["web1", "203.0.113.11", 22, "root", MOCK_HOST_KEY],
        ["web2", "203.0.113.12", 22, "root", MOCK_HOST_KEY],
        ["web3", "203.0.113.13", 22, "root", MOCK_HOST_KEY],
      ],
    );
    assert.strictEqual(
      hosts[0].command,
      `env TARGET=blue HEALTH_PATH=/health/ready CHECK_PORT=8082 VERIFY_TIMEOUT=15 WATCH_SECONDS=30 ERROR_PERCENT=5 MIN_ERRORS=5 COORDINATED=yes PHASE_TIMEOUT=${b.hostWait} SWITCH_ID=%SWITCH_ID% /usr/local/lib/bluegreen/switch.sh`,
    );
    const env = sw.environment as Record<string, unknown>;
    assert.ok(isSecret(env) || isSecret(env.SSH_PRIVATE_KEY), "the login key is a secret");
    assert.ok(!JSON.stringify(plain(sw).create).includes("PRIVATE KEY"));
  });

  it("exact diffs: active is the switch alone; a version is that slot on every host; a drain is that host's drain alone", async () => {
    assert.deepStrictEqual(changedResources(three, await runProgram({ ...THREE, active: "green" })), ["switch-hosts"]);
    // The same file as v1 (BASE_CONFIG's artifact): nothing to upload again.
    assert.deepStrictEqual(changedResources(three, await runProgram({ ...THREE, greenVersion: "v2" })), [
      "web1-green-service",
      "web1-releases-prune",
      "web2-green-service",
      "web2-releases-prune",
      "web3-green-service",
      "web3-releases-prune",
    ]);
    const drained = await runProgram({ ...THREE, drainedHosts: ["web2"] });
    assert.deepStrictEqual(changedResources(three, drained), ["web2-drain-state"]);
    assert.match(
      plain(find(drained, "web2-drain-state").inputs).create,
      /^env STATE=on CHECK_PORT=8082 EJECT_SECONDS=18 QUIET_SECONDS=8 WAIT_SECONDS=86 /,
    );
  });

  it("the router of each host answers the balancer's health path; a one-host site has none", async () => {
    assert.match(plain(find(three, "web1-router-config").inputs).stdin, /\n {4}location = \/\.bluegreen\/health \{\n/);
    const one = await runProgram(BASE_CONFIG);
    assert.ok(!plain(find(one, "router-config").inputs).stdin.includes("/.bluegreen/health"));
  });

  it("one host to three: the first host keeps every resource the one-host stack had, found by alias", async () => {
    const one = await runProgram({ ...BASE_CONFIG, sshHost: "203.0.113.11" });
    const grown = await runProgram(THREE);
    const resolver = new AliasResolver(new Set(one.registrations.map((r) => r.urn)));
    const takenOver = new Map<string, string>();
    for (const r of grown.registrations) {
      const old = resolver.resolve(r);
      if (old) takenOver.set(old, r.name);
    }
    const lost = one.registrations.filter((r) => !takenOver.has(r.urn)).map((r) => r.name);
    // Only the one-host switch goes (it has no delete step): switch-hosts takes over from it.
    assert.deepStrictEqual(lost, ["switch", "switch-link"]);
    assert.strictEqual(
      takenOver.get(one.registrations.find((r) => r.name === "blue-service")!.urn),
      "web1-blue-service",
    );
    assert.strictEqual(takenOver.get(one.registrations.find((r) => r.name === "host-ready")!.urn), "host-web1-ready");
  });

  it("bad hosts config: the exact error, before anything reaches a host", async () => {
    const rejects = (config: Record<string, unknown>, message: string) =>
      assert.rejects(runProgram({ ...THREE, ...config }), {
        message: `invalid bluegreen stack config:\n  - ${message}`,
      });
    await rejects(
      { hosts: { Web1: "203.0.113.11" } },
      'bluegreen:hosts: "Web1" is not a host name: a-z, 0-9 and - (not first or last), at most 16',
    );
    await rejects(
      { hosts: { web1: "not an address!" } },
      'bluegreen:hosts.web1 must be the host\'s name or IP address (got "not an address!")',
    );
    await rejects(
      { sshHost: "203.0.113.10" },
      "bluegreen:sshHost and bluegreen:hosts are both set: with several hosts, give every address in hosts and remove sshHost (pulumi config rm sshHost)",
    );
    await rejects(
      { drainedHosts: ["web9"] },
      'bluegreen:drainedHosts entry "web9" is not a host in bluegreen:hosts (web1, web2, web3)',
    );
    await rejects(
      { postSwitch: "true", postSwitchFailure: "rollback" },
      'bluegreen:postSwitchFailure "rollback" is not possible with several hosts: a postSwitch hook runs on each host after every host confirmed, and one host moving back alone would serve another colour than the rest. Use warn (the default): pulumi config set postSwitchFailure warn',
    );
    await rejects(
      { drainedHosts: ["web1", "web2", "web3"] },
      "bluegreen:drainedHosts names every host: at least one must stay in the load balancer to serve the app",
    );
  });

  it("the key table's defaults: no hosts, nothing drained", () => {
    assert.deepStrictEqual(DEFAULTS.hosts, {});
    assert.deepStrictEqual(DEFAULTS.drainedHosts, []);
  });
});
