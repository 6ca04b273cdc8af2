import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { autoPorts, ConfigError, DEFAULTS, KEYS, loadConfig, row } from "../../components/config/config";
import { BASE_CONFIG, FAKE_PUB, ROOT } from "../support/harness";

/** Runs loadConfig over a plain map (keys without a namespace are bluegreen:). */
function load(config: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) {
  const values = new Map<string, string>();
  for (const [k, v] of Object.entries(config)) {
    if (v !== undefined)
      values.set(k.includes(":") ? k : `bluegreen:${k}`, typeof v === "string" ? v : JSON.stringify(v));
  }
  return loadConfig({ get: (k, ns = "bluegreen") => values.get(`${ns}:${k}`) }, ROOT, env);
}

/** The exact message for config that has exactly these problems. */
const message = (...problems: string[]) =>
  `invalid bluegreen stack config:\n${problems.map((p) => `  - ${p}`).join("\n")}`;

function rejects(config: Record<string, unknown>, ...problems: string[]) {
  assert.throws(
    () => load(config),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.strictEqual(e.message, message(...problems));
      return true;
    },
  );
}

describe("config validation", () => {
  it("accepts the base config and applies the defaults", () => {
    const cfg = load(BASE_CONFIG);
    assert.strictEqual(cfg.active, "blue");
    assert.strictEqual(cfg.linkMode, "socket");
    assert.strictEqual(cfg.ssh.user, "root");
    assert.strictEqual(cfg.previewPort, 8081);
    assert.deepStrictEqual([cfg.slots.blue.port, cfg.slots.green.port], [8001, 8002]);
    assert.strictEqual(cfg.app.healthPath, "/health/ready");
  });

  it("active outside blue/green", () => {
    rejects({ ...BASE_CONFIG, active: "purple" }, 'bluegreen:active must be one of blue, green (got "purple")');
  });

  it("unknown host kind", () => {
    rejects(
      { ...BASE_CONFIG, hostKind: "aws" },
      'bluegreen:hostKind must be one of hetzner, multipass, ssh, stack (got "aws")',
    );
  });

  it("unknown link mode", () => {
    rejects({ ...BASE_CONFIG, linkMode: "udp" }, 'bluegreen:linkMode must be one of socket, tcp (got "udp")');
  });

  it("hetzner without a token", () => {
    rejects(
      { ...BASE_CONFIG, hostKind: "hetzner", sshPublicKey: FAKE_PUB },
      'hcloud:token is required when bluegreen:hostKind is "hetzner": pulumi config set --secret hcloud:token <token> (or export HCLOUD_TOKEN)',
    );
    assert.strictEqual(
      load({ ...BASE_CONFIG, hostKind: "hetzner", sshPublicKey: FAKE_PUB }, { HCLOUD_TOKEN: "x" }).host.kind,
      "hetzner",
    );
  });

  it("hetzner: unknown location and a bad CIDR", () => {
    rejects(
      {
        ...BASE_CONFIG,
        hostKind: "hetzner",
        sshPublicKey: FAKE_PUB,
        "hcloud:token": "t",
        hetznerLocation: "mars1",
        sshAllowedCidrs: ["10.0.0.1"],
      },
      'bluegreen:hetznerLocation must be one of fsn1, nbg1, hel1, ash, hil, sin (got "mars1")',
      'bluegreen:sshAllowedCidrs entry "10.0.0.1" is not a CIDR such as 203.0.113.7/32 or 2001:db8::/32',
    );
  });

  it("bad port", () => {
    rejects(
      { ...BASE_CONFIG, bluePort: "80" },
      "bluegreen:bluePort must be 0 (automatic) or from 1024 to 65535 (got 80)",
    );
    rejects(
      { ...BASE_CONFIG, bluePort: "70000" },
      'bluegreen:bluePort must be a whole number from 0 to 65535 (got "70000")',
    );
    rejects({ ...BASE_CONFIG, sshPort: "ssh" }, 'bluegreen:sshPort must be a whole number from 1 to 65535 (got "ssh")');
  });

  it("both slots on one port", () => {
    rejects(
      { ...BASE_CONFIG, bluePort: 9000, greenPort: 9000 },
      "bluegreen:bluePort and bluegreen:greenPort must differ: both slots cannot listen on port 9000",
    );
  });

  it("a slot on the preview port", () => {
    rejects(
      { ...BASE_CONFIG, greenPort: 8081 },
      "bluegreen:greenPort and bluegreen:previewPort must differ (both are 8081)",
    );
  });

  it("artifact missing", () => {
    rejects(
      { ...BASE_CONFIG, greenArtifact: "dist/nope" },
      'bluegreen:greenArtifact: file "dist/nope" does not exist (relative paths start at the project directory)',
    );
  });

  it("bad sha256", () => {
    rejects(
      { ...BASE_CONFIG, blueArtifact: "https://example.com/app", blueSha256: "xyz" },
      'bluegreen:blueSha256 must be 64 hexadecimal characters (got "xyz")',
    );
  });

  it("sha256 that does not match the local file", () => {
    const wrong = "0".repeat(64);
    rejects(
      { ...BASE_CONFIG, blueSha256: wrong },
      `bluegreen:blueSha256 is ${wrong} but "test/fixtures/app-v1" has sha256 636292753d9b22f93785a4bdb30b1629477d14e46f9a1a2afe8e7c1f959c868c`,
    );
  });

  it("URL artifact without sha256, and a plain-http URL", () => {
    rejects(
      { ...BASE_CONFIG, greenArtifact: "https://example.com/app" },
      "bluegreen:greenSha256 is required when bluegreen:greenArtifact is a URL: the host verifies the download against it",
    );
    rejects(
      { ...BASE_CONFIG, greenArtifact: "http://example.com/app", greenSha256: "a".repeat(64) },
      'bluegreen:greenArtifact must be "build", a local file path, or an https:// URL (got "http://example.com/app")',
    );
  });

  it("bad version string", () => {
    rejects(
      { ...BASE_CONFIG, greenVersion: "v 2;rm" },
      "bluegreen:greenVersion must be 1-64 letters, digits, '.', '_', '+' or '-', starting with a letter or digit (got \"v 2;rm\")",
    );
  });

  it("missing version", () => {
    rejects(
      { ...BASE_CONFIG, blueVersion: undefined },
      "bluegreen:blueVersion is required: pulumi config set blueVersion v1",
    );
  });

  it("no key in config, no agent and no key file; and a path given instead of the key", () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "bg-nokey-"));
    assert.throws(() => load({ ...BASE_CONFIG, sshPrivateKey: undefined }, { HOME: home }), {
      message: message(
        `no SSH key: bluegreen:sshPrivateKey is unset, no ssh agent runs (SSH_AUTH_SOCK is unset), and ${home}/.ssh/id_ed25519 does not exist. Add your key to an agent (ssh-add), make one (ssh-keygen -t ed25519), or set bluegreen:sshKeyFile`,
      ),
    });
    rejects(
      { ...BASE_CONFIG, sshPrivateKey: "~/.ssh/id_ed25519" },
      "bluegreen:sshPrivateKey must be a PEM/OpenSSH private key (the file's text, not its path)",
    );
  });

  it("a new host needs a public key", () => {
    rejects(
      { ...BASE_CONFIG, hostKind: "multipass" },
      'bluegreen:sshPublicKey is required when bluegreen:hostKind is "multipass": pulumi config set sshPublicKey "$(cat ~/.ssh/id_ed25519.pub)"',
    );
  });

  it("ssh host kind needs an address", () => {
    rejects({ ...BASE_CONFIG, sshHost: undefined }, 'bluegreen:sshHost is required when bluegreen:hostKind is "ssh"');
    rejects(
      { ...BASE_CONFIG, sshHost: "host;reboot" },
      'bluegreen:sshHost must be a host name or IP address (got "host;reboot")',
    );
  });

  it("app env: reserved names, newlines, and a name in both env and secrets", () => {
    rejects(
      { ...BASE_CONFIG, appEnv: { BLUEGREEN_COLOR: "x", MULTI: "a\nb", TOKEN: "p" }, appSecrets: { TOKEN: "s" } },
      "bluegreen:appEnv.BLUEGREEN_COLOR: names must match [A-Za-z_][A-Za-z0-9_]* and not start with BLUEGREEN_ (reserved)",
      "bluegreen:appEnv.MULTI must be a single line (systemd env files cannot hold newlines)",
      "bluegreen:appSecrets.TOKEN is also set in bluegreen:appEnv; keep each name in one of them",
    );
  });

  it("app env: every LD_* name (the dynamic loader's) is refused, in appEnv and in appSecrets; PATH and HOME pass", () => {
    rejects(
      {
        ...BASE_CONFIG,
        appEnv: {
          LD_PRELOAD: "/tmp/x.so",
          LD_LIBRARY_PATH: "/tmp",
          LD_BIND_NOW: "1",
          PATH: "/usr/bin:/bin",
          HOME: "/tmp",
        },
        appSecrets: { LD_AUDIT: "/tmp/a.so", LD_: "x" },
      },
      "bluegreen:appEnv.LD_PRELOAD: LD_* variables steer the dynamic loader of the slot's process and are refused; remove it: pulumi config rm --path appEnv.LD_PRELOAD",
      "bluegreen:appEnv.LD_LIBRARY_PATH: LD_* variables steer the dynamic loader of the slot's process and are refused; remove it: pulumi config rm --path appEnv.LD_LIBRARY_PATH",
      "bluegreen:appEnv.LD_BIND_NOW: LD_* variables steer the dynamic loader of the slot's process and are refused; remove it: pulumi config rm --path appEnv.LD_BIND_NOW",
      "bluegreen:appSecrets.LD_AUDIT: LD_* variables steer the dynamic loader of the slot's process and are refused; remove it: pulumi config rm --path appSecrets.LD_AUDIT",
      "bluegreen:appSecrets.LD_: LD_* variables steer the dynamic loader of the slot's process and are refused; remove it: pulumi config rm --path appSecrets.LD_",
    );
    const cfg = load({
      ...BASE_CONFIG,
      appEnv: { PATH: "/opt/app/bin:/usr/bin:/bin", HOME: "/var/lib/bluegreen/data", LDX: "1", ld_preload: "lower" },
    });
    assert.deepStrictEqual(cfg.app.env, {
      PATH: "/opt/app/bin:/usr/bin:/bin",
      HOME: "/var/lib/bluegreen/data",
      LDX: "1",
      ld_preload: "lower",
    });
  });

  it("a bad secret's value never appears in the error", () => {
    rejects(
      { ...BASE_CONFIG, appSecrets: { TOKEN: { nested: "hunter2" } } },
      "bluegreen:appSecrets.TOKEN must be a string (got a secret of another type)",
    );
  });

  it("health path and timeouts", () => {
    rejects(
      { ...BASE_CONFIG, healthPath: "health", healthTimeout: "0" },
      'bluegreen:healthPath must be an absolute URL path such as /health/ready (got "health")',
      'bluegreen:healthTimeout must be a whole number from 5 to 900 (got "0")',
    );
  });

  it("maintenance, watch, retention and the check port", () => {
    rejects({ ...BASE_CONFIG, maintenance: "yes" }, 'bluegreen:maintenance must be true or false (got "yes")');
    rejects(
      { ...BASE_CONFIG, watchSeconds: "-1" },
      'bluegreen:watchSeconds must be a whole number from 0 to 3600 (got "-1")',
    );
    rejects(
      { ...BASE_CONFIG, rollbackErrorPercent: "0" },
      'bluegreen:rollbackErrorPercent must be a whole number from 1 to 100 (got "0")',
    );
    rejects(
      { ...BASE_CONFIG, rollbackMinErrors: "many" },
      'bluegreen:rollbackMinErrors must be a whole number from 1 to 1000000 (got "many")',
    );
    rejects(
      { ...BASE_CONFIG, keepReleases: "1" },
      'bluegreen:keepReleases must be a whole number from 2 to 1000 (got "1")',
    );
    rejects(
      { ...BASE_CONFIG, checkPort: 8081 },
      "bluegreen:previewPort and bluegreen:checkPort must differ (both are 8081)",
    );
    rejects(
      { ...BASE_CONFIG, maintenanceRetryAfter: "0" },
      'bluegreen:maintenanceRetryAfter must be a whole number from 1 to 86400 (got "0")',
    );
    const cfg = load({ ...BASE_CONFIG, maintenance: "true", watchSeconds: "0" });
    assert.strictEqual(cfg.maintenance, true);
    assert.deepStrictEqual(cfg.rollback, { verifySeconds: 15, watchSeconds: 0, errorPercent: 5, minErrors: 5 });
  });

  it("router haproxy serves HTTPS: acme http-01 claims a loopback port for lego (acmePort: 8083, else from the app's name) that must differ from the others", () => {
    const acme = {
      ...BASE_CONFIG,
      router: "haproxy",
      domains: ["example.com"],
      tls: "acme",
      acmeEmail: "ops@example.com",
    };
    const cfg = load(acme);
    assert.deepStrictEqual([cfg.router, cfg.tls.mode, cfg.acmePort], ["haproxy", "acme", 8083]);
    assert.strictEqual(load({ ...acme, appName: "shop" }).acmePort, autoPorts("shop").acme);
    assert.strictEqual(autoPorts("shop").acme, autoPorts("shop").green + 1);
    rejects({ ...acme, acmePort: 8081 }, "bluegreen:previewPort and bluegreen:acmePort must differ (both are 8081)");
    rejects({ ...acme, acmePort: 80 }, "bluegreen:acmePort must be 0 (automatic) or from 1024 to 65535 (got 80)");
    // nginx serves lego's webroot and dns-01 needs no port: the key is not checked against the others there.
    assert.strictEqual(load({ ...acme, router: "nginx", acmePort: 8081 }).tls.mode, "acme");
  });

  it("reports every problem at once", () => {
    assert.throws(
      () => load({ active: "x", hostKind: "ssh" }),
      (e: Error) => e.message.split("\n").length === 6,
    );
  });
});

describe("Pulumi.yaml config schema", () => {
  const schema = YAML.parse(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8")).config as Record<string, any>;

  it("declares every key of the table except the undeclared ones (optional secrets, a retired key), with a type and description", () => {
    const declared = Object.keys(KEYS).filter((k) => !row(k as keyof typeof KEYS).undeclared);
    assert.deepStrictEqual(Object.keys(schema), declared);
    assert.deepStrictEqual(
      Object.keys(KEYS).filter((k) => !(k in schema)),
      [
        "appSecrets",
        "tlsPrivateKey",
        "serverName",
        "backupPassphrase",
        "notifyWebhook",
        "notifySlack",
        "notifyDiscord",
        "notifyNtfy",
      ],
    );
    for (const [k, v] of Object.entries(schema)) {
      assert.ok(["string", "integer", "boolean", "array", "object"].includes(v.type), `${k}: type`);
      assert.ok(typeof v.description === "string" && v.description.length > 10, `${k}: description`);
    }
  });

  // The engine requires every declared key without a default (test/support/engine.ts). So a key in
  // DEFAULTS declares the same default; any other optional key declares the empty value of
  // its type, which components/config/reader.ts reads as unset; and only keys that loadConfig
  // requires on every stack have no default at all.
  const EMPTY: Record<string, unknown> = { string: "", object: {} };
  const hasDefault = (k: string) => schema[k].default !== undefined && schema[k].default !== null;

  it("has the same defaults as the key table (components/config/keys.ts), and empty ones for the other optional keys", () => {
    for (const [k, v] of Object.entries(DEFAULTS)) {
      assert.deepStrictEqual(schema[k]?.default, v, `default of ${k}`);
    }
    for (const k of Object.keys(schema).filter((k) => hasDefault(k) && !(k in DEFAULTS))) {
      assert.ok(schema[k].type in EMPTY, `${k}: a ${schema[k].type} key needs its default in DEFAULTS`);
      assert.deepStrictEqual(
        schema[k].default,
        EMPTY[schema[k].type],
        `${k} is not in DEFAULTS, so its default must be the empty ${schema[k].type}`,
      );
    }
  });

  it("leaves without a default only keys that loadConfig requires on every stack", () => {
    const required = Object.keys(schema).filter((k) => !hasDefault(k));
    assert.ok(required.length > 0);
    for (const k of required) {
      assert.throws(
        () => load({ ...BASE_CONFIG, [k]: undefined }),
        (e: Error) => e.message.includes(`bluegreen:${k} is required`),
        `${k} has no default`,
      );
    }
  });

  it("leaves the private key optional (an agent or a key file does instead), so not `secret` to the engine", () => {
    // The engine refuses a `secret: true` key whose default the stack does not set (test/support/engine.ts);
    // the program keeps the key secret itself (an always-secret row, wrapped in pulumi.secret).
    assert.deepStrictEqual([schema.sshPrivateKey.default, schema.sshPrivateKey.secret], ["", undefined]);
  });
});
