// configFrom: the library entry validates a plain object exactly as loadConfig validates a
// stack's config (components/config/load.ts), with the same messages naming bluegreen:KEY.
import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, configFrom, ConfigValues, Key, KEYS, loadConfig } from "../../components/config";
import { FAKE_KEY, FAKE_PUB, ROOT } from "../support/harness";

/** ConfigValues has exactly the table's keys (but serverName, retired), the versions required. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameKeys: Same<keyof ConfigValues, Exclude<Key, "serverName">> = true;
type RequiredKeys = {
  [K in keyof ConfigValues]-?: object extends Pick<ConfigValues, K> ? never : K;
}[keyof ConfigValues];
const required: Same<RequiredKeys, "blueVersion" | "greenVersion"> = true;
/** Typed as the table types them: allowed values as a union, numbers, booleans, lists and maps. */
const typed: [
  Same<ConfigValues["active"], "blue" | "green" | undefined>,
  Same<ConfigValues["bluePort"], number | undefined>,
  Same<ConfigValues["maintenance"], boolean | undefined>,
  Same<ConfigValues["domains"], readonly string[] | undefined>,
  Same<ConfigValues["appEnv"], Readonly<Record<string, string>> | undefined>,
  Same<ConfigValues["hostKind"], "hetzner" | "multipass" | "ssh" | "stack" | undefined>,
] = [true, true, true, true, true, true];

const GOOD: ConfigValues = {
  blueVersion: "v1",
  greenVersion: "v2",
  hostKind: "ssh",
  sshHost: "203.0.113.10",
  sshPrivateKey: FAKE_KEY,
  blueArtifact: "test/fixtures/app-v1",
  greenArtifact: "test/fixtures/app-v2",
  active: "green",
  linkMode: "tcp",
  bluePort: 9001,
  greenPort: 9002,
  maintenance: true,
  watchSeconds: 0,
  appEnv: { LOG_LEVEL: "info" },
  domains: ["example.com", "www.example.com"],
  hostPackages: ["nodejs"],
};

/** The same values as a stack holds them: text, lists and maps as JSON. */
function asStack(values: Record<string, unknown>) {
  const text = new Map(Object.entries(values).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
  return loadConfig({ get: (k, ns = "bluegreen") => (ns === "bluegreen" ? text.get(k) : undefined) }, ROOT, {});
}

function withoutOutputs(v: unknown): unknown {
  if (pulumi.Output.isInstance(v)) return "<output>";
  if (Array.isArray(v)) return v.map(withoutOutputs);
  if (typeof v === "object" && v !== null)
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, withoutOutputs(x)]));
  return v;
}

function rejects(run: () => unknown, ...problems: string[]) {
  assert.throws(run, (e: unknown) => {
    assert.ok(e instanceof ConfigError, String(e));
    assert.strictEqual(e.message, `invalid bluegreen stack config:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    return true;
  });
}

describe("configFrom: a plain object, validated as the stack's config is", () => {
  it("the types of ConfigValues follow the table", () => {
    assert.deepStrictEqual([sameKeys, required, typed], [true, true, [true, true, true, true, true, true]]);
  });

  it("a good object gives the config loadConfig gives for the same values", () => {
    const cfg = configFrom(GOOD, { projectDir: ROOT });
    assert.deepStrictEqual(
      [cfg.active, cfg.linkMode, cfg.slots.blue.port, cfg.slots.green.port, cfg.maintenance, cfg.rollback.watchSeconds],
      ["green", "tcp", 9001, 9002, true, 0],
    );
    assert.deepStrictEqual(
      [cfg.domains, cfg.app.env, cfg.hostPackages],
      [GOOD.domains, GOOD.appEnv, GOOD.hostPackages],
    );
    assert.deepStrictEqual([cfg.slots.blue.version, cfg.slots.green.version], ["v1", "v2"]);
    assert.strictEqual(cfg.rollback.verifySeconds, KEYS.verifyTimeout.default);
    assert.deepStrictEqual(withoutOutputs(cfg), withoutOutputs(asStack(GOOD)));
  });

  it("a bad object: the same exact messages, each naming bluegreen:KEY, unknown keys with a suggestion", () => {
    const bad = {
      ...GOOD,
      active: "purple",
      bluePort: 80,
      maintenance: "yes",
      greenVerison: "v3",
      appEnv: { BLUEGREEN_COLOR: "x" },
    } as unknown as ConfigValues;
    rejects(
      () => configFrom(bad, { projectDir: ROOT }),
      "bluegreen:greenVerison is not a bluegreen key; did you mean greenVersion?",
      'bluegreen:active must be one of blue, green (got "purple")',
      "bluegreen:bluePort must be 0 (automatic) or from 1024 to 65535 (got 80)",
      "bluegreen:appEnv.BLUEGREEN_COLOR: names must match [A-Za-z_][A-Za-z0-9_]* and not start with BLUEGREEN_ (reserved)",
      'bluegreen:maintenance must be true or false (got "yes")',
    );
  });

  it("a missing required key, and a relative artifact resolved from projectDir", () => {
    const { blueVersion, ...noBlue } = GOOD;
    assert.strictEqual(blueVersion, "v1");
    rejects(
      () => configFrom(noBlue as ConfigValues, { projectDir: ROOT }),
      "bluegreen:blueVersion is required: pulumi config set blueVersion v1",
    );
    rejects(
      () => configFrom(GOOD, { projectDir: "/nonexistent" }),
      'bluegreen:blueArtifact: file "test/fixtures/app-v1" does not exist (relative paths start at the project directory)',
      'bluegreen:greenArtifact: file "test/fixtures/app-v2" does not exist (relative paths start at the project directory)',
    );
  });

  it("env gives the Hetzner token; without it the error is the stack's", () => {
    const hetzner: ConfigValues = { ...GOOD, hostKind: "hetzner", sshHost: undefined, sshPublicKey: FAKE_PUB };
    rejects(
      () => configFrom(hetzner, { projectDir: ROOT }),
      'hcloud:token is required when bluegreen:hostKind is "hetzner": pulumi config set --secret hcloud:token <token> (or export HCLOUD_TOKEN)',
    );
    assert.strictEqual(configFrom(hetzner, { projectDir: ROOT, env: { HCLOUD_TOKEN: "t" } }).host.kind, "hetzner");
  });

  it("secrets names the keys held as secrets: a secret a key cannot keep is refused as with --secret", () => {
    rejects(
      () => configFrom({ ...GOOD, healthPath: "/ready" }, { projectDir: ROOT, secrets: ["healthPath"] }),
      "bluegreen:healthPath is set with --secret, but its value is written in plain text on the host or in outputs, so it cannot stay secret; " +
        "set it without --secret, or keep secret values in bluegreen:appSecrets (secret keys: sshPrivateKey, sshPrivateKeyPassword, appSecrets, acmeDnsEnv, tlsPrivateKey, backupRemote, backupPassphrase, notifyWebhook, notifySlack, notifyDiscord, notifyNtfy, appEnv, blueArtifact, greenArtifact)",
    );
    const cfg = configFrom({ ...GOOD, appEnv: { TOKEN: "t" } }, { projectDir: ROOT, secrets: ["appEnv"] });
    assert.deepStrictEqual([cfg.app.env, cfg.app.secretNames], [{}, ["TOKEN"]]);
  });

  it("undefined values are unset", () => {
    assert.strictEqual(configFrom({ ...GOOD, active: undefined }, { projectDir: ROOT }).active, "blue");
  });
});
