// Existing stacks keep their resources. A resource whose URN changes is, to the engine, a
// delete of the old one and a create of a new one: the slot steps and the switch would run
// again, and a slot's delete step stops a live slot. test/fixtures/urns/<stack>.json holds
// what the program registered before BlueGreenApp existed (commit e03d6e6): each URN and its
// inputs. The program of today must find every one of those, by URN or by an alias, and
// send the same inputs, apart from the changes listed (and explained) in CHANGED.
import * as assert from "assert";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { hetznerServerOptions } from "../../components/host/host";
import { AliasResolver } from "../support/aliases";
import { plain, Registration, ROOT, Run, runProgram } from "../support/harness";
import { URN_STACKS } from "./urn-stacks";

interface Old {
  readonly urn: string;
  readonly inputs: Record<string, unknown>;
}

/**
 * Inputs that may differ from the fixture, and why. Each is an update of that one command,
 * never a replacement, and none restarts a slot or switches.
 */
const CHANGED: Readonly<Record<string, string>> = {
  "setup-tools.stdin":
    "the host tools' text: it changes whenever a host script does; the update installs the new tools and restarts nothing",
  "host-vm.stdin":
    "local-multipass-launch.sh's text (its header now declares its inputs): the update runs it again where pulumi runs, and for a VM that exists it only checks its size and reads its address",
  "host-ready.stdin":
    "wait-ready.sh's text (its header now declares its inputs): the update runs the readiness check again, which waits for SSH and cloud-init, checks the architecture and changes nothing",
  "router-config.stdin":
    "the router's config text (issue 27: the check listener takes a slot by name for the switch's gate and says which slot answered; nginx mints request ids without OpenSSL and tests the https flag only with tls): the update writes it and reloads the router gracefully, which restarts no slot and moves no traffic",
};

/**
 * Resources a stack gains with the release that pins host keys, and why each is harmless: neither
 * runs anything on the host.
 */
const ADDED: Readonly<Record<string, string>> = {
  "host-ssh-hostkey":
    "local-host-key-scan.sh, where pulumi runs: reads the host's SSH key once (ssh-keyscan) and records it; it runs nothing on the host",
  "host-hostkey-seed": "the seed of a Hetzner server's own host key (RandomBytes, secret), kept in the stack's state",
};

/**
 * The one input every host step gains in that release: `connection.hostKey`, the host's key, so that
 * the command provider refuses any other (pulumi-command v1.2.1 connection.go: ssh.FixedHostKey;
 * without it, InsecureIgnoreHostKey). Any connection change is an update, so each step runs once
 * more on the first `up`: test/e2e/scenarios.ts "5e" shows that run under load (0 failed, no live
 * slot restarted, no router reload).
 */
function onlyHostKeyAdded(before: unknown, now: unknown): boolean {
  if (typeof before !== "object" || typeof now !== "object" || before === null || now === null) return false;
  const { hostKey, ...rest } = now as Record<string, unknown>;
  return typeof hostKey === "string" && !("hostKey" in before) && JSON.stringify(rest) === JSON.stringify(before);
}

/**
 * Inputs the engine leaves out of the diff (the resource's ignoreChanges): it keeps the old value,
 * so they neither update nor replace anything.
 */
const IGNORED: Readonly<Record<string, string>> = {
  "host-server.userData":
    "the server's host key for cloud-init (hetznerServerOptions ignoreChanges): a server made before it keeps running, and its key is recorded on first use",
};

const oldsOf = (stack: string): Old[] =>
  JSON.parse(fs.readFileSync(path.join(ROOT, "test", "fixtures", "urns", `${stack}.json`), "utf8")) as Old[];

function inputsOf(run: Run, r: Registration): Record<string, unknown> {
  const res = run.resources.find((x) => x.type === r.type && x.name === r.name);
  // Asset paths are absolute: the fixture writes the checkout's root as <root>.
  const inputs = JSON.parse(
    JSON.stringify(plain(res?.inputs ?? {}))
      .split(`${ROOT}/`)
      .join("<root>/"),
  ) as Record<string, unknown>;
  if (typeof inputs.stdin === "string" && inputs.stdin.length > 4000)
    inputs.stdin = `sha256:${crypto.createHash("sha256").update(inputs.stdin).digest("hex")}`;
  return inputs;
}

describe("existing stacks keep their resources (URNs of the program before BlueGreenApp)", () => {
  for (const stack of Object.keys(URN_STACKS)) {
    it(`${stack}: every old resource is found, by URN or alias, with the same inputs; nothing is created`, async () => {
      const olds = oldsOf(stack);
      const run = await runProgram(URN_STACKS[stack]);
      const resolver = new AliasResolver(new Set(olds.map((o) => o.urn)));
      const created: string[] = [];
      const changed: string[] = [];
      const takenOver = new Set<string>();
      const viaAlias: string[] = [];
      const pinned: string[] = [];
      for (const r of run.registrations) {
        const old = resolver.resolve(r);
        // The component that now holds the app is a new resource; it has no inputs and runs nothing.
        if (!old) {
          if (r.type !== "bluegreen:index:BlueGreenApp" && !ADDED[r.name]) created.push(r.urn);
          continue;
        }
        takenOver.add(old);
        if (old !== r.urn) viaAlias.push(r.name);
        const before = olds.find((o) => o.urn === old)!.inputs;
        const now = inputsOf(run, r);
        for (const k of new Set([...Object.keys(before), ...Object.keys(now)])) {
          if (JSON.stringify(before[k]) === JSON.stringify(now[k]) || CHANGED[`${r.name}.${k}`]) continue;
          if (IGNORED[`${r.name}.${k}`] && hetznerServerOptions(true).ignoreChanges?.includes(k)) continue;
          if (k === "connection" && onlyHostKeyAdded(before[k], now[k])) pinned.push(r.name);
          else changed.push(`${r.name}.${k}`);
        }
      }
      // Every remote step, and only those, now pins the host's key.
      assert.deepStrictEqual(
        pinned,
        run.resources.filter((x) => x.type.startsWith("command:remote:")).map((x) => x.name),
        "steps whose connection gained hostKey",
      );
      assert.deepStrictEqual(created, [], "resources the old stack does not have");
      assert.deepStrictEqual(
        olds.map((o) => o.urn).filter((u) => !takenOver.has(u)),
        [],
        "old resources nothing takes over (the engine would delete them)",
      );
      assert.deepStrictEqual(changed, [], "inputs that changed");
      assert.strictEqual(run.registrations.filter((r) => r.type === "bluegreen:index:BlueGreenApp").length, 1);
      // Under BlueGreenApp every app resource has a new URN; the grandchildren (blue-service) are found
      // only by the alias the engine derives from their parent's (the harness gives engine URNs).
      assert.ok(viaAlias.includes("blue") && viaAlias.includes("blue-service") && viaAlias.includes("switch-link"));
      assert.ok(!viaAlias.includes("host") && !viaAlias.includes("host-ready"), "the Host did not move");
    });
  }

  it("the resolver follows the engine: an alias to the root finds the old URN, and children follow their parent", () => {
    const old = new Set([
      "urn:pulumi:dev::bluegreen::bluegreen:index:Slot::blue",
      "urn:pulumi:dev::bluegreen::bluegreen:index:Slot$command:remote:Command::blue-service",
    ]);
    const r = new AliasResolver(old);
    const app = "urn:pulumi:dev::bluegreen::bluegreen:index:BlueGreenApp::shop";
    const slot = `urn:pulumi:dev::bluegreen::bluegreen:index:BlueGreenApp$bluegreen:index:Slot::shop-blue`;
    const reg = (urn: string, type: string, name: string, parent: string, aliases: Registration["aliases"] = []) => ({
      urn,
      type,
      name,
      parent,
      aliases,
    });
    assert.strictEqual(r.resolve(reg(app, "bluegreen:index:BlueGreenApp", "shop", "")), undefined);
    // A renamed child: its alias names the old name and no parent.
    const slotReg = reg(slot, "bluegreen:index:Slot", "shop-blue", app, [{ name: "blue", noParent: true }]);
    assert.strictEqual(r.resolve(slotReg), "urn:pulumi:dev::bluegreen::bluegreen:index:Slot::blue");
    // Its child has no alias of its own: the engine derives one from the parent's (name prefix swapped).
    const service = `urn:pulumi:dev::bluegreen::bluegreen:index:BlueGreenApp$bluegreen:index:Slot$command:remote:Command::shop-blue-service`;
    assert.strictEqual(
      r.resolve(reg(service, "command:remote:Command", "shop-blue-service", slot)),
      "urn:pulumi:dev::bluegreen::bluegreen:index:Slot$command:remote:Command::blue-service",
    );
    // Two resources may not take over one old resource.
    const twice = new AliasResolver(old);
    twice.resolve(slotReg);
    assert.throws(() => twice.resolve({ ...slotReg, urn: slot + "2" }), /both claim/);
  });
});
