// The e2e stand-in CLI (fake-bin/pulumi -> fake-pulumi.ts) against the real
// Automation API, through components/cli/pulumi.ts: it answers every call the
// CLI makes in the shape the API parses (config get --json, stack output --json,
// up with engine events over gRPC, stack history), and refuses anything else.
// No host is needed: the up here has no steps to replay.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { EngineEvent } from "@pulumi/pulumi/automation";
import { configGet, configSet, openStack, outputs, stringOutput, up } from "../../components/cli/pulumi";
import { BASE_CONFIG, ROOT, runProgram } from "../support/harness";
import { run } from "../support/tools";
import { resourcesOf } from "./replay";

const FAKE = path.join(ROOT, "test", "e2e", "fake-bin", "pulumi");

describe("the e2e stand-in pulumi CLI", function () {
  this.timeout(180_000);
  let stateFile: string;
  const saved = { ...process.env };

  beforeEach(() => {
    stateFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "bg-fake-state-")), "stack.json");
    fs.writeFileSync(stateFile, JSON.stringify({ config: { ...BASE_CONFIG }, state: [], outputs: {} }));
    process.env.BLUEGREEN_PULUMI = FAKE;
    process.env.FAKE_PULUMI_STATE = stateFile;
  });
  afterEach(() => {
    process.env = { ...saved };
  });

  it("refuses a call the Automation API does not make, exit 2", () => {
    const env = { ...process.env, PULUMI_AUTOMATION_API: "true" };
    for (const args of [
      ["up", "--yes", "--skip-preview"],
      ["config", "get", "active"],
      ["stack", "output", "active", "--stack", "dev", "--non-interactive"],
    ]) {
      const r = run(FAKE, args, { env });
      assert.strictEqual(r.status, 2, args.join(" "));
      assert.match(r.stderr, /^fake pulumi: unsupported: /);
    }
    const bare = run(FAKE, ["stack", "ls", "--json", "--non-interactive"], {
      env: { ...env, PULUMI_AUTOMATION_API: "" },
    });
    assert.strictEqual(bare.status, 2);
    assert.match(bare.stderr, /without PULUMI_AUTOMATION_API=true/);
  });

  it("config and outputs through the Automation API; a stack never deployed says to run pulumi up", async () => {
    const stack = await openStack(undefined);
    assert.strictEqual(stack.name, "dev");
    assert.strictEqual(await configGet(stack, "blueVersion"), "v1");
    assert.strictEqual(await configGet(stack, "nosuchkey"), undefined);
    await configSet(stack, "greenVersion", "v2 with spaces");
    assert.strictEqual(await configGet(stack, "greenVersion"), "v2 with spaces");
    const out = await outputs(stack);
    assert.deepStrictEqual(out, {});
    assert.throws(
      () => stringOutput(out, "active", stack.name),
      /stack dev has never been deployed \(it has no outputs\): run pulumi up first/,
    );
  });

  it("up streams engine events over gRPC and leaves outputs and history the API reads back", async () => {
    // A state that already matches the program: the replay has nothing to run, so no host is needed.
    const program = await runProgram(BASE_CONFIG);
    const state = resourcesOf(program).map((r) => ({ ...r, outputs: { stdout: "", stderr: "" } }));
    fs.writeFileSync(stateFile, JSON.stringify({ config: { ...BASE_CONFIG }, state, outputs: {} }));
    const stack = await openStack("dev");
    const r = await up(stack);
    assert.ok(r.ok);
    const kinds = r.events.map(({ event }) => Object.keys(event).find((k) => k.endsWith("Event")) as keyof EngineEvent);
    assert.deepStrictEqual(kinds, ["preludeEvent", "summaryEvent", "cancelEvent"]);
    assert.deepStrictEqual(
      r.events.map((e) => e.event.sequence),
      [0, 1, 2],
    );
    assert.strictEqual(r.outputs?.active, "blue");
    assert.strictEqual((await outputs(stack)).blueVersion, "v1");
    // As stack.js up calls it with showSecrets: false (the fake refuses --show-secrets here: the CLI never asks).
    const info = await stack.info(false);
    assert.strictEqual(info?.result, "succeeded");
    assert.ok(info?.startTime instanceof Date && !isNaN(info.startTime.getTime()));
    // A secret output is masked without --show-secrets, as the API expects to tell which are secret.
    const all = await stack.outputs();
    for (const name of program.secretOutputs) assert.strictEqual(all[name]?.secret, true, name);
  });
});
