// The key table (components/config/keys.ts) is the only list of bluegreen:* keys: a key it does
// not know is refused, every default passes its own rules, and the code reads no other key.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import {
  ConfigError,
  ConfigSource,
  defaultArch,
  HostConfig,
  DEFAULTS,
  isKey,
  KEYS,
  loadConfig,
  ROWS,
  SECRET_CAPABLE,
  unknownKeyProblem,
} from "../../components/config";
import { Reader } from "../../components/config/reader";
import { BASE_CONFIG, FAKE_PUB, find, plain, ROOT, runProgram } from "../support/harness";

/** A ConfigSource over a plain map (keys without a namespace are bluegreen:) that lists its keys and records reads. */
function source(config: Record<string, unknown>, reads?: Set<string>): ConfigSource {
  const values = new Map<string, string>();
  for (const [k, v] of Object.entries(config)) {
    if (v !== undefined)
      values.set(k.includes(":") ? k : `bluegreen:${k}`, typeof v === "string" ? v : JSON.stringify(v));
  }
  return {
    get: (k, ns = "bluegreen") => {
      if (ns === "bluegreen") reads?.add(k);
      return values.get(`${ns}:${k}`);
    },
    keys: () => [...values.keys()],
  };
}

/** A value with its Outputs (secrets) left out, for comparisons. */
function withoutOutputs(v: unknown): unknown {
  if (pulumi.Output.isInstance(v)) return "<output>";
  if (Array.isArray(v)) return v.map(withoutOutputs);
  if (typeof v === "object" && v !== null)
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, withoutOutputs(x)]));
  return v;
}

const message = (...problems: string[]) =>
  `invalid bluegreen stack config:\n${problems.map((p) => `  - ${p}`).join("\n")}`;

function rejects(config: Record<string, unknown>, ...problems: string[]) {
  assert.throws(
    () => loadConfig(source(config), ROOT, {}),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.strictEqual(e.message, message(...problems));
      return true;
    },
  );
}

/** Every host kind with what it needs, so that between them they read every key. */
const HOSTS: Record<string, Record<string, unknown>> = {
  ssh: BASE_CONFIG,
  multipass: { ...BASE_CONFIG, hostKind: "multipass", sshHost: undefined, sshPublicKey: FAKE_PUB },
  hetzner: { ...BASE_CONFIG, hostKind: "hetzner", sshHost: undefined, sshPublicKey: FAKE_PUB, "hcloud:token": "t" },
  stack: { ...BASE_CONFIG, hostKind: "stack", sshHost: undefined, hostStack: "organization/bluegreen/prod" },
};

describe("unknown keys are refused", () => {
  it("a typo names the key it is near", () => {
    rejects(
      { ...BASE_CONFIG, greenVerison: "v2" },
      "bluegreen:greenVerison is not a bluegreen key; did you mean greenVersion?",
    );
    rejects({ ...BASE_CONFIG, BluePort: 9000 }, "bluegreen:BluePort is not a bluegreen key; did you mean bluePort?");
    rejects({ ...BASE_CONFIG, hostArc: "arm64" }, "bluegreen:hostArc is not a bluegreen key; did you mean hostArch?");
  });

  it("a key near none says where the keys are listed", () => {
    rejects(
      { ...BASE_CONFIG, frobnicate: "yes" },
      "bluegreen:frobnicate is not a bluegreen key; the keys are listed in docs/configuration.md",
    );
  });

  it("comes first, with every other problem after it; other namespaces are not ours", () => {
    rejects(
      { ...BASE_CONFIG, greenVersion: undefined, greenVerison: "v2", "aws:region": "eu-central-1" },
      "bluegreen:greenVerison is not a bluegreen key; did you mean greenVersion?",
      "bluegreen:greenVersion is required: pulumi config set greenVersion v1",
    );
  });

  it("a retired key is a key: it gets its own message, not the unknown one", () => {
    rejects(
      { ...BASE_CONFIG, serverName: "example.com" },
      "bluegreen:serverName was replaced by bluegreen:domains, a list that also names the HTTPS certificate's domains: pulumi config rm serverName && pulumi config set --path 'domains[0]' example.com",
    );
  });

  it("the stack's config, as runtime.allConfig() lists it under the engine", async () => {
    await assert.rejects(runProgram({ ...BASE_CONFIG, greenVerison: "v2" }), {
      message: message("bluegreen:greenVerison is not a bluegreen key; did you mean greenVersion?"),
    });
    await assert.rejects(runProgram({ ...BASE_CONFIG, frobnicate: "yes" }), {
      message: message("bluegreen:frobnicate is not a bluegreen key; the keys are listed in docs/configuration.md"),
    });
  });

  it("a source that cannot list its keys is read as before", () => {
    const values = source(BASE_CONFIG);
    assert.strictEqual(loadConfig({ get: (k, ns) => values.get(k, ns) }, ROOT, {}).active, "blue");
  });

  it("unknownKeyProblem, as the library entry shares it", () => {
    assert.strictEqual(
      unknownKeyProblem("watchSecond"),
      "bluegreen:watchSecond is not a bluegreen key; did you mean watchSeconds?",
    );
  });
});

describe("the key table", () => {
  it("every default passes its own row's rule, as the reader checks it", () => {
    for (const [k, r] of ROWS) {
      if (r.default === undefined) {
        assert.ok(r.required || r.undeclared, `${k}: no default, so it is required or undeclared`);
        continue;
      }
      // "" is unset: the value is then computed (hostArch, sshUser) or the key is optional.
      if (r.default === "" || typeof r.default === "object") continue;
      const reader = new Reader(source({ [k]: r.default }), ROOT, {});
      const read = reader as unknown as Record<string, (k: string) => unknown>;
      const rules = [
        r.values && "oneOf",
        r.type === "integer" && "int",
        r.type === "boolean" && "bool",
        r.pattern && "checked",
      ];
      for (const rule of rules.filter((x): x is string => typeof x === "string")) read[rule].call(reader, k);
      assert.deepStrictEqual(reader.problems, [], k);
    }
  });

  it("every default passes the area modules: each host kind with every key set to its default, as the engine fills them in", () => {
    for (const [kind, config] of Object.entries(HOSTS)) {
      const filled = { ...DEFAULTS, ...config } as Record<string, unknown>;
      assert.deepStrictEqual(
        withoutOutputs(loadConfig(source(filled), ROOT, {})),
        withoutOutputs(loadConfig(source(config), ROOT, {})),
        `${kind}: a default set explicitly is the default`,
      );
    }
  });

  it("the code reads every key of the table and no other", () => {
    const reads = new Set<string>();
    for (const config of Object.values(HOSTS)) loadConfig(source(config, reads), ROOT, {});
    assert.deepStrictEqual(
      [...reads].filter((k) => !isKey(k)),
      [],
    );
    assert.deepStrictEqual(
      Object.keys(KEYS).filter((k) => !reads.has(k)),
      [],
    );
  });

  it("no bluegreen: key named in the code is missing from the table", () => {
    const files = (dir: string): string[] =>
      fs
        .readdirSync(dir, { withFileTypes: true })
        .flatMap((e) =>
          e.isDirectory() ? files(path.join(dir, e.name)) : e.name.endsWith(".ts") ? [path.join(dir, e.name)] : [],
        );
    const named = new Set<string>();
    for (const file of [path.join(ROOT, "index.ts"), ...files(path.join(ROOT, "components"))]) {
      const text = fs.readFileSync(file, "utf8");
      for (const m of text.matchAll(/\bbluegreen:([a-z][A-Za-z0-9]*)\b(?!:)/g)) named.add(m[1]);
      for (const m of text.matchAll(/\bkey\("([A-Za-z0-9]+)"\)/g)) named.add(m[1]);
      for (const m of text.matchAll(
        /\br\.(?:raw|str|oneOf|int|bool|checked|map|list|setToNonDefault)\("([A-Za-z0-9]+)"/g,
      ))
        named.add(m[1]);
    }
    assert.ok(named.size > 40, `found ${named.size} keys`);
    assert.deepStrictEqual(
      [...named].filter((k) => !isKey(k)),
      [],
    );
  });

  it("each row names the area module that checks it, which reads it", () => {
    for (const [k, r] of ROWS) {
      const file = path.join(ROOT, "components", "config", `${r.checkedBy}.ts`);
      assert.ok(fs.existsSync(file), `${k}: ${r.checkedBy}.ts`);
      const text = fs.readFileSync(file, "utf8");
      // A slot's or a listener's key is read as `${color}Version`, `${which}Port`.
      const suffix = /^(?:blue|green|preview|check|acme)([A-Z]\w*)$/.exec(k)?.[1];
      assert.ok(
        text.includes(`"${k}"`) || (suffix && text.includes(`}${suffix}\``)),
        `${k} is read in ${r.checkedBy}.ts`,
      );
    }
  });

  it("the keys that may be secret, always-secret ones first, as the --secret refusal lists them", () => {
    assert.deepStrictEqual(Object.keys(SECRET_CAPABLE), [
      "sshPrivateKey",
      "sshPrivateKeyPassword",
      "appSecrets",
      "acmeDnsEnv",
      "tlsPrivateKey",
      "backupRemote",
      "backupPassphrase",
      "notifyWebhook",
      "notifySlack",
      "notifyDiscord",
      "notifyNtfy",
      "appEnv",
      "blueArtifact",
      "greenArtifact",
    ]);
  });
});

describe("verifyTimeout, the switch's own default", () => {
  const verify = async (config: Record<string, unknown>) =>
    /VERIFY_TIMEOUT=(\d+) /.exec(String(plain(find(await runProgram(config), "switch-link").inputs).create))?.[1];

  it("the switch step waits the table's default, or the key's value, for the router to serve the target", async () => {
    assert.strictEqual(await verify(BASE_CONFIG), String(KEYS.verifyTimeout.default));
    assert.strictEqual(await verify({ ...BASE_CONFIG, verifyTimeout: 40 }), "40");
  });

  it("out of range is refused", () => {
    rejects(
      { ...BASE_CONFIG, verifyTimeout: 0 },
      'bluegreen:verifyTimeout must be a whole number from 1 to 120 (got "0")',
    );
  });
});

describe("hostArch's default", () => {
  it("multipass: this machine's architecture; Hetzner cax: arm64; else amd64", () => {
    const mp = { kind: "multipass" } as HostConfig;
    assert.deepStrictEqual(
      [defaultArch(mp, "arm64"), defaultArch(mp, "x64"), defaultArch({ kind: "ssh" } as HostConfig, "arm64")],
      ["arm64", "amd64", "amd64"],
    );
    const hz = (serverType: string) => ({ kind: "hetzner", serverType }) as HostConfig;
    assert.deepStrictEqual([defaultArch(hz("cax11"), "x64"), defaultArch(hz("cx23"), "arm64")], ["arm64", "amd64"]);
  });
});
