// Pulumi.yaml and the stack config as the real Pulumi engine sees them, before
// the program runs (mocks never do these checks). test/support/engine.ts mirrors the
// engine; the last block shows it gives the engine's exact messages.
import * as assert from "assert";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import {
  checkStackConfig,
  loadProject,
  loadStackConfig,
  missingKeysMessage,
  Project,
  StackConfig,
  validateProjectSchema,
} from "../support/engine";
import { BASE_CONFIG, FAKE_KEY, ROOT, runProgram } from "../support/harness";

const PROJECT_FILE = path.join(ROOT, "Pulumi.yaml");
const SCHEMA_FILE = path.join(ROOT, "test", "fixtures", "pulumi-project.schema.json");
const SCHEMA_NOTE = path.join(ROOT, "test", "fixtures", "pulumi-project.schema.README.md");

// test/fixtures/Pulumi.before-issue-7.yaml is Pulumi.yaml at commit 7cc2f8adfda56e78234ac42c2fb0ef4e4009165b,
// the last before issue 7: optional keys without defaults.
// The quick start no longer copies the SSH key into config (an agent or ~/.ssh/id_ed25519 does),
// so the old file, which required both keys, misses them too.
const OLD_PROJECT_MESSAGE =
  "Stack 'dev' is missing configuration values 'blueSha256', 'greenSha256', 'hostArch', 'sshHost', 'sshHostKey', 'sshPrivateKey', 'sshPublicKey' and 'sshUser'";

function project(text = fs.readFileSync(PROJECT_FILE, "utf8")): Project {
  const loaded = loadProject(text);
  assert.deepStrictEqual(loaded.errors, []);
  return loaded.project!;
}

/** Splits a shell command line into words (quotes kept out; enough for the README's commands). */
function words(line: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  for (let m; (m = re.exec(line));) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

interface QuickStart {
  readonly stack: string;
  /** What its `pulumi config set` lines store, namespaced. Shell-computed values get a stand-in text. */
  readonly config: StackConfig;
}

/** The ```sh block under "## Quick start" in README.md, as a user runs it. */
function quickStart(): QuickStart {
  const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
  const section = /^## Quick start\n([\s\S]*?)(?=^## )/m.exec(readme)?.[1];
  assert.ok(section, "README.md has a '## Quick start' section");
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(block, "the Quick start has a ```sh block");
  let stack: string | undefined;
  const config: StackConfig = {};
  for (const line of block.replace(/\\\n/g, " ").split("\n")) {
    if (/^\s*(#|$)/.test(line)) continue;
    const pipe = line.lastIndexOf("|", line.indexOf("pulumi "));
    const cmd = words(line.slice(pipe + 1));
    const at = cmd.indexOf("pulumi");
    if (at < 0) continue;
    const [verb, sub, ...rest] = cmd.slice(at + 1);
    if (verb === "stack" && (sub === "init" || sub === "select")) {
      stack = rest.find((w) => !w.startsWith("-"));
    } else if (verb === "config" && sub === "set") {
      const flags = new Set<string>();
      const args: string[] = [];
      let endOfFlags = false;
      for (const w of rest) {
        if (endOfFlags || !w.startsWith("-")) args.push(w);
        else if (w === "--") endOfFlags = true;
        else flags.add(w);
      }
      assert.ok(!flags.has("--path"), `quick start: --path is not handled here: ${line}`);
      const [key, value] = args;
      assert.ok(key, `quick start: no key in: ${line}`);
      // Without a value, `pulumi config set` reads it from stdin (pkg/cmd/pulumi/config/config.go, configSetCmd.Run).
      const text =
        value === undefined
          ? pipe >= 0
            ? `<stdin of: ${line.slice(0, pipe).trim()}>`
            : undefined
          : value.includes("$(")
            ? `<${value}>`
            : value;
      assert.ok(text !== undefined, `quick start: no value and nothing piped in: ${line}`);
      config[key.includes(":") ? key : `bluegreen:${key}`] = { value: text, secure: flags.has("--secret") };
    }
  }
  assert.ok(stack, "the Quick start selects or creates a stack");
  return { stack, config };
}

const shippedStacks = () =>
  fs
    .readdirSync(ROOT)
    .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
    .filter((s): s is string => s !== undefined)
    .sort();

const stackFile = (name: string, proj: Project) =>
  loadStackConfig(fs.readFileSync(path.join(ROOT, `Pulumi.${name}.yaml`), "utf8"), proj.name);

describe("Pulumi.yaml as the Pulumi engine (v3.248) loads it", () => {
  it("passes Pulumi's own project schema", () => {
    assert.deepStrictEqual(validateProjectSchema(YAML.parse(fs.readFileSync(PROJECT_FILE, "utf8"))), []);
  });

  it("loads (LoadProjectBytes, Project.Validate)", () => {
    assert.deepStrictEqual(loadProject(fs.readFileSync(PROJECT_FILE, "utf8")).errors, []);
  });

  it("the vendored schema is the file its README names", () => {
    const note = fs.readFileSync(SCHEMA_NOTE, "utf8");
    const blob = /Git blob: `([0-9a-f]{40})`/.exec(note)?.[1];
    const bytes = fs.readFileSync(SCHEMA_FILE);
    const id = crypto.createHash("sha1").update(`blob ${bytes.length}\0`).update(bytes).digest("hex");
    assert.strictEqual(id, blob);
  });
});

describe("shipped stacks, set up as the README's Quick start says, pass the engine's config checks", () => {
  const stacks = shippedStacks();

  it("there is a shipped stack, and the Quick start sets up one of them", () => {
    assert.ok(
      stacks.includes(quickStart().stack),
      `Quick start stack ${quickStart().stack}; shipped: ${stacks.join(", ")}`,
    );
  });

  for (const name of stacks) {
    it(`Pulumi.${name}.yaml plus the Quick start's config set lines`, () => {
      const proj = project();
      const qs = quickStart();
      const { errors } = checkStackConfig(name, proj, { ...stackFile(name, proj), ...qs.config });
      assert.deepStrictEqual(errors, []);
    });
  }

  it("a freshly created stack that follows the Quick start gets every other key from a default", () => {
    const proj = project();
    const { merged } = checkStackConfig("dev", proj, { ...stackFile("dev", proj), ...quickStart().config });
    const unset = Object.keys(proj.config).filter((k) => !((k.includes(":") ? k : `bluegreen:${k}`) in merged));
    assert.deepStrictEqual(unset, []);
  });
});

describe("mocked program runs check the config as the engine does", () => {
  it("a config without a required key fails with the engine's message", async () => {
    await assert.rejects(runProgram({ ...BASE_CONFIG, blueVersion: undefined }), {
      message: "validating stack config: Stack 'dev' is missing configuration value 'blueVersion'",
    });
  });

  it("a value of the wrong type fails with the engine's message", async () => {
    await assert.rejects(runProgram({ ...BASE_CONFIG, bluePort: "80a" }), {
      message: "validating stack config: Stack 'dev' with configuration key 'bluePort' must be of type 'integer'",
    });
  });

  it("skipConfigValidation lets components/config/config.ts report it instead", async () => {
    await assert.rejects(
      runProgram({ ...BASE_CONFIG, blueVersion: undefined }, { skipConfigValidation: true }),
      /bluegreen:blueVersion is required/,
    );
  });
});

describe("test/support/engine.ts gives the engine's own messages", () => {
  const proj = (config: Record<string, unknown>) =>
    project(YAML.stringify({ name: "test", runtime: "nodejs", config }));
  const plain = (value: unknown) => ({ value, secure: false });
  const secure = (value: unknown) => ({ value, secure: true });

  it(`the Pulumi.yaml before the fix, with Pulumi.dev.yaml and the Quick start: ${OLD_PROJECT_MESSAGE}`, () => {
    // Vendored, so that a shallow clone runs this too.
    const old = fs.readFileSync(path.join(ROOT, "test", "fixtures", "Pulumi.before-issue-7.yaml"), "utf8");
    const p = project(old);
    const { errors } = checkStackConfig("dev", p, { ...stackFile("dev", p), ...quickStart().config });
    assert.deepStrictEqual(errors, [OLD_PROJECT_MESSAGE]);
  });

  it("today's Pulumi.yaml without its empty defaults: every such key the stack does not set is missing", () => {
    const text = fs.readFileSync(PROJECT_FILE, "utf8");
    const stripped = text.replace(/^ {4}default: ""\n/gm, "");
    const p = project(stripped);
    const stack = { ...stackFile("dev", p), ...quickStart().config };
    const emptied = Object.keys(project(text).config).filter(
      (k) => project(text).config[k].default === "" && !(`bluegreen:${k}` in stack),
    );
    assert.ok(emptied.length > 1);
    assert.deepStrictEqual(checkStackConfig("dev", p, stack).errors, [missingKeysMessage(emptied, "dev")]);
  });

  // sdk/go/common/workspace/project_test.go:1079, 1113, 1149
  it("one, two and three missing keys", () => {
    const array = { type: "array", items: { type: "string" } };
    assert.deepStrictEqual(checkStackConfig("dev", proj({ values: array }), {}).errors, [
      "Stack 'dev' is missing configuration value 'values'",
    ]);
    assert.deepStrictEqual(checkStackConfig("dev", proj({ values: array, another: { type: "string" } }), {}).errors, [
      "Stack 'dev' is missing configuration values 'another' and 'values'",
    ]);
    assert.deepStrictEqual(
      checkStackConfig("dev", proj({ world: { type: "string" }, hello: { type: "integer" }, values: array }), {})
        .errors,
      ["Stack 'dev' is missing configuration values 'hello', 'values' and 'world'"],
    );
  });

  it("only keys of the project's namespace can be missing", () => {
    assert.deepStrictEqual(
      checkStackConfig("dev", proj({ "aws:region": { value: "eu-central-1" }, a: { type: "string", default: "" } }), {})
        .errors,
      [],
    );
  });

  it("a secret key set without --secret; a secret key with a default that the stack does not set", () => {
    const p = proj({
      key: { type: "string", secret: true },
      withDefault: { type: "string", secret: true, default: "" },
    });
    assert.deepStrictEqual(
      checkStackConfig("prod", p, { "test:key": plain(FAKE_KEY), "test:withDefault": secure("x") }).errors,
      ["Stack 'prod' with configuration key 'key' must be encrypted as it's secret"],
    );
    assert.deepStrictEqual(checkStackConfig("prod", p, { "test:key": secure(FAKE_KEY) }).errors, [
      "Stack 'prod' with configuration key 'withDefault' must be encrypted as it's secret",
    ]);
    // An object with one secure leaf is secure (config/object.go Secure).
    const stack = loadStackConfig(
      "config:\n  test:key:\n    a: plain\n    b: {secure: v1:abc}\n  withDefault: {secure: v1:def}\n",
      "test",
    );
    assert.deepStrictEqual(
      checkStackConfig(
        "prod",
        proj({ key: { type: "object", secret: true }, withDefault: { type: "string", secret: true } }),
        stack,
      ).errors,
      [],
    );
  });

  it("values of the wrong type: integer, boolean, array<string>, object", () => {
    const p = proj({
      n: { type: "integer", default: 1 },
      b: { type: "boolean", default: false },
      list: { type: "array", items: { type: "string" }, default: ["x"] },
      map: { type: "object", default: {} },
    });
    const check = (stack: StackConfig) => checkStackConfig("dev", p, stack).errors;
    assert.deepStrictEqual(check({}), []);
    // As Pulumi.dev.yaml would hold them, and as `pulumi config set` stores them (text).
    assert.deepStrictEqual(
      check(loadStackConfig("config:\n  test:n: 20\n  test:b: true\n  test:list: [a]\n  test:map: {A: b}\n", "test")),
      [],
    );
    assert.deepStrictEqual(check({ "test:n": plain("+20"), "test:b": plain("false") }), []);
    assert.deepStrictEqual(
      check({
        "test:n": plain("hello"),
        "test:b": plain("yes"),
        "test:list": plain("someValue"),
        "test:map": plain('{"A":"b"}'),
      }),
      [
        "Stack 'dev' with configuration key 'b' must be of type 'boolean'",
        "Stack 'dev' with configuration key 'list' must be of type 'array<string>'",
        "Stack 'dev' with configuration key 'map' must be of type 'object'",
        "Stack 'dev' with configuration key 'n' must be of type 'integer'",
      ],
    );
    assert.deepStrictEqual(check({ "test:n": plain(""), "test:list": plain([1]) }), [
      "Stack 'dev' with configuration key 'list' must be of type 'array<string>'",
      "Stack 'dev' with configuration key 'n' must be of type 'integer'",
    ]);
  });

  it("defaults are type-checked when the project loads: no empty-string default for an integer", () => {
    const load = (config: Record<string, unknown>) =>
      loadProject(YAML.stringify({ name: "test", runtime: "nodejs", config })).errors;
    assert.deepStrictEqual(load({ port: { type: "integer", default: "" } }), [
      "could not unmarshal 'Pulumi.yaml': The default value specified for configuration key 'port' is not of the expected type 'integer'",
    ]);
    assert.deepStrictEqual(load({ cidrs: { type: "array", items: { type: "string" }, default: [1] } }), [
      "could not unmarshal 'Pulumi.yaml': The default value specified for configuration key 'cidrs' is not of the expected type 'array<string>'",
    ]);
    assert.deepStrictEqual(load({ cidrs: { type: "array" } }), [
      "could not unmarshal 'Pulumi.yaml': The configuration key 'cidrs' declares an array but does not specify the underlying type via the 'items' attribute",
    ]);
    assert.deepStrictEqual(load({ "aws:region": { type: "string", value: "x" } }), [
      "could not unmarshal 'Pulumi.yaml': Configuration key 'aws:region' is not namespaced by the project and should not define a type",
    ]);
    assert.deepStrictEqual(
      load({ env: { type: "object", default: {} }, off: { type: "boolean", default: "false" } }),
      [],
    );
  });

  it("the schema refuses attributes and types it does not know", () => {
    const errors = (config: Record<string, unknown>) =>
      validateProjectSchema({ name: "test", runtime: "nodejs", config });
    assert.notDeepStrictEqual(errors({ a: { type: "string", required: true } }), []);
    assert.notDeepStrictEqual(errors({ a: { type: "number" } }), []);
    assert.notDeepStrictEqual(errors({ a: { type: "array", items: { type: "array" } } }), []);
    assert.deepStrictEqual(
      errors({ a: { type: "array", items: { type: "array", items: { type: "string" } } }, b: "short", c: 3 }),
      [],
    );
  });

  it("a bare value under config: is a default (RewriteShorthandConfigValues)", () => {
    const p = proj({ size: "t3.micro", "aws:region": "us-west-2" });
    assert.deepStrictEqual(p.config, { size: { default: "t3.micro" }, "aws:region": { value: "us-west-2" } });
    assert.deepStrictEqual(checkStackConfig("dev", p, {}).merged, {
      "test:size": plain("t3.micro"),
      "aws:region": plain("us-west-2"),
    });
  });
});
