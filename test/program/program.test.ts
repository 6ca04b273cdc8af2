import * as assert from "assert";
import {
  BASE_CONFIG,
  changedResources,
  FAKE_KEY,
  FAKE_PUB,
  find,
  isSecret,
  MOCK_HOST_KEY,
  plain,
  ROOT,
  Run,
  runProgram,
  STACK_HOST_KEY,
} from "../support/harness";

const commandText = (run: Run, name: string) => plain(find(run, name).inputs).create as string;

describe("program under mocks", function () {
  let blue: Run;
  before(async () => {
    blue = await runProgram({ ...BASE_CONFIG, active: "blue" });
  });

  it("registers host, setup, router, both slots and the switch in dependency order", () => {
    const custom = blue.resources.filter((r) => !r.type.startsWith("bluegreen:")).map((r) => `${r.type} ${r.name}`);
    assert.deepStrictEqual(custom, [
      // The host's SSH key, read once where pulumi runs and pinned by every step after it.
      "command:local:Command host-ssh-hostkey",
      "command:remote:Command host-ready",
      "random:index/randomId:RandomId setup-owner",
      "command:remote:Command setup-tools",
      "command:remote:Command router-install",
      "command:remote:Command router-config",
      "command:remote:Command tls-config",
      "command:remote:CopyToRemote blue-upload",
      "command:remote:CopyToRemote green-upload",
      "command:remote:Command maintenance-mode",
      "command:remote:Command blue-service",
      "command:remote:Command green-service",
      // The switch waits for maintenance too (its watch runs once the public reaches a slot).
      "command:remote:Command releases-prune",
      "command:remote:Command switch-link",
    ]);
  });

  it("switch: flipping active changes exactly one resource, the switch, and only its target", async () => {
    const green = await runProgram({ ...BASE_CONFIG, active: "green" });
    assert.deepStrictEqual(changedResources(blue, green), ["switch-link"]);
    assert.strictEqual(
      commandText(blue, "switch-link"),
      "env TARGET=blue HEALTH_PATH=/health/ready CHECK_PORT=8082 VERIFY_TIMEOUT=15 " +
        "WATCH_SECONDS=30 ERROR_PERCENT=5 MIN_ERRORS=5 /usr/local/lib/bluegreen/switch.sh",
    );
    assert.strictEqual(
      commandText(green, "switch-link"),
      commandText(blue, "switch-link").replace("TARGET=blue", "TARGET=green"),
    );
    assert.strictEqual(plain(find(green, "switch-link").inputs).delete, undefined, "the switch has no delete step");
    assert.strictEqual(
      plain(find(green, "switch-link").inputs).triggers,
      undefined,
      "triggers would make it a replace",
    );
    assert.strictEqual(green.outputs.active, "green");
  });

  it("maintenance: turning it on changes exactly one resource, and sends the page on stdin", async () => {
    const on = await runProgram({ ...BASE_CONFIG, maintenance: "true" });
    assert.deepStrictEqual(changedResources(blue, on), ["maintenance-mode"]);
    const mode = plain(find(on, "maintenance-mode").inputs);
    assert.strictEqual(mode.create, "env STATE=on /usr/local/lib/bluegreen/maintenance.sh");
    assert.match(mode.stdin, /Please try again in about 2 minutes\./);
    // Retry-After lives in the nginx site, so changing it touches the router too.
    const slower = await runProgram({ ...BASE_CONFIG, maintenance: "true", maintenanceRetryAfter: 300 });
    assert.deepStrictEqual(changedResources(on, slower), ["maintenance-mode", "router-config"]);
    assert.match(plain(find(slower, "router-config").inputs).stdin, /add_header Retry-After 300 always;/);
    assert.strictEqual(commandText(blue, "maintenance-mode"), "env STATE=off /usr/local/lib/bluegreen/maintenance.sh");
    assert.strictEqual(on.outputs.maintenance, true);
  });

  it("the post-switch watch and its limits are plain values on the switch's command line", async () => {
    const run = await runProgram({ ...BASE_CONFIG, watchSeconds: 0, rollbackErrorPercent: 20, rollbackMinErrors: 50 });
    assert.match(commandText(run, "switch-link"), / WATCH_SECONDS=0 ERROR_PERCENT=20 MIN_ERRORS=50 /);
  });

  it("version: changing only green's version changes only green's resources, and retention", async () => {
    const v2 = await runProgram({ ...BASE_CONFIG, greenVersion: "v2", greenArtifact: "test/fixtures/app-v2" });
    assert.deepStrictEqual(changedResources(blue, v2), ["green-service", "green-upload", "releases-prune"]);
    assert.match(commandText(v2, "green-service"), / VERSION=v2 /);
    assert.match(plain(find(v2, "green-service").inputs).delete, /^env SLOT=green VERSION=v2 .*stop-slot\.sh$/);
    assert.strictEqual(
      plain(find(v2, "green-service").inputs).triggers,
      undefined,
      "a version change must be an update, not a replace",
    );
    // Retention runs after both slots and never removes a version either slot is configured for.
    assert.strictEqual(commandText(v2, "releases-prune"), "env KEEP=5 PROTECT=v1,v2 /usr/local/lib/bluegreen/prune.sh");
    assert.strictEqual(v2.outputs.greenVersion, "v2");
    assert.strictEqual(v2.outputs.blueVersion, "v1");
  });

  it("slot service: plain values on the command line; its unit and env file on stdin", () => {
    const svc = plain(find(blue, "blue-service").inputs);
    assert.strictEqual(
      svc.create,
      "env SLOT=blue VERSION=v1 SHA256=636292753d9b22f93785a4bdb30b1629477d14e46f9a1a2afe8e7c1f959c868c LISTEN=unix:/run/bluegreen/blue/app.sock " +
        "HEALTH_PATH=/health/ready HEALTH_TIMEOUT=60 SOURCE_FILE=/var/tmp/bluegreen-upload-636292753d9b22f9 /usr/local/lib/bluegreen/deploy-slot.sh",
    );
    assert.strictEqual(svc.delete, "env SLOT=blue VERSION=v1 /usr/local/lib/bluegreen/stop-slot.sh");
    assert.match(
      svc.stdin,
      /^#bluegreen-section unit\n# Managed by bluegreen[^\n]*\n\[Unit\]\nDescription=bluegreen app slot blue\n[\s\S]*\n#bluegreen-section env\nBLUEGREEN_COLOR="blue"\nBLUEGREEN_VERSION="v1"\n/,
    );
    assert.strictEqual(svc.addPreviousOutputInEnv, false);
  });

  it("every command turns off addPreviousOutputInEnv (stock sshd refuses those env requests)", () => {
    for (const r of blue.resources.filter(
      (x) => x.type === "command:remote:Command" || x.type === "command:local:Command",
    )) {
      assert.strictEqual(plain(r.inputs).addPreviousOutputInEnv, false, r.name);
    }
  });

  it("upload: the file goes to a hash-named path that survives a reboot; the host verifies it", () => {
    const upload = plain(find(blue, "blue-upload").inputs);
    assert.strictEqual(upload.remotePath, "/var/tmp/bluegreen-upload-636292753d9b22f9");
    assert.deepStrictEqual(upload.source, { asset: "file", path: `${ROOT}/test/fixtures/app-v1` });
  });

  it("an https artifact: no upload; the URL travels on stdin, never on a command line", async () => {
    const sha = "a".repeat(64);
    const run = await runProgram({
      ...BASE_CONFIG,
      greenArtifact: "https://example.com/app-v1?token=abc",
      greenSha256: sha,
    });
    assert.ok(!run.resources.some((r) => r.name === "green-upload"));
    assert.strictEqual(
      commandText(run, "green-service"),
      commandText(blue, "green-service")
        .replace(/SHA256=\w+/, `SHA256=${sha}`)
        .replace(/ SOURCE_FILE=\S+/, ""),
    );
    assert.match(
      plain(find(run, "green-service").inputs).stdin,
      /\n#bluegreen-section sourceUrl\nhttps:\/\/example\.com\/app-v1\?token=abc\n$/,
    );
    assert.ok(
      !isSecret(find(run, "green-service").inputs.stdin),
      "a URL set without --secret stays readable in the diff",
    );
  });

  it("a URL set with --secret: the stdin is secret and the URL is in no command or output", async () => {
    const url = "https://example.com/app-v1?token=s3cr3t";
    const run = await runProgram(
      { ...BASE_CONFIG, greenArtifact: url, greenSha256: "a".repeat(64) },
      { secretKeys: ["bluegreen:greenArtifact"] },
    );
    assert.ok(isSecret(find(run, "green-service").inputs.stdin));
    for (const r of run.resources)
      for (const f of ["create", "update", "delete"])
        assert.ok(!String(plain(r.inputs)[f] ?? "").includes("s3cr3t"), `${r.name}.${f}`);
    assert.ok(!JSON.stringify(run.outputs).includes("s3cr3t"));
  });

  it("tcp mode: slots listen on 127.0.0.1 ports; the site has every slot's port; the switch is the same", async () => {
    const run = await runProgram({ ...BASE_CONFIG, linkMode: "tcp", bluePort: 9001, greenPort: 9002 });
    assert.match(commandText(run, "blue-service"), / LISTEN=127\.0\.0\.1:9001 /);
    assert.match(commandText(run, "green-service"), / LISTEN=127\.0\.0\.1:9002 /);
    assert.strictEqual(commandText(run, "switch-link"), commandText(blue, "switch-link"));
    assert.strictEqual(
      commandText(run, "router-config"),
      "env OWNER=organization/bluegreen/dev/a1b2c3 DOMAINS='' PORTS='8081 8082 9001 9002' BLUE_PORT=9001 GREEN_PORT=9002 /usr/local/lib/bluegreen/router-config.sh",
    );
  });

  describe("day-two changes: the exact diff each one causes", () => {
    const cases: [string, Record<string, unknown>, string[]][] = [
      // Both slots' deploy steps: the idle one applies it, the live one stages it for after the next switch.
      ["appEnv", { appEnv: { LOG_LEVEL: "debug" } }, ["blue-service", "green-service"]],
      ["appSecrets (a rotation)", { appSecrets: { DB_PASSWORD: "new" } }, ["blue-service", "green-service"]],
      ["drainTimeout", { drainTimeout: 40 }, ["blue-service", "green-service"]],
      [
        "appArgs",
        { appArgs: "--listen ${BLUEGREEN_LISTEN} --color ${BLUEGREEN_COLOR}" },
        ["blue-service", "green-service"],
      ],
      // linkMode changes how the slots listen; the site, which names no mode, and the switch stay as they are.
      ["linkMode", { linkMode: "tcp" }, ["blue-service", "green-service"]],
      ["healthTimeout", { healthTimeout: 90 }, ["blue-service", "green-service"]],
      // Both slot steps run again and gate their slot on the new path (deploy-slot.sh); the switch verifies with it.
      ["healthPath", { healthPath: "/healthz" }, ["blue-service", "green-service", "switch-link"]],
      ["bluePort (socket mode: only the site's tcp group)", { bluePort: 9001 }, ["router-config"]],
      [
        "bluePort (tcp mode: blue listens there, the site sends tcp traffic there)",
        { linkMode: "tcp", bluePort: 9001 },
        ["blue-service", "green-service", "router-config"],
      ],
      ["keepReleases", { keepReleases: 3 }, ["releases-prune"]],
      ["watchSeconds", { watchSeconds: 10 }, ["switch-link"]],
      ["domains (HTTP only)", { domains: ["example.com"] }, ["router-config", "tls-config"]],
      // Only the site (:443 appears) and the tls step; no slot, no switch.
      [
        "tls acme",
        { domains: ["example.com"], tls: "acme", acmeEmail: "ops@example.com" },
        ["router-config", "tls-config"],
      ],
      [
        "acmeDirectory, once on acme: the tls step alone",
        { domains: ["example.com"], tls: "acme", acmeEmail: "ops@example.com", acmeDirectory: "letsencrypt-staging" },
        ["router-config", "tls-config"],
      ],
      [
        "hstsMaxAge: the site alone",
        { domains: ["example.com"], tls: "acme", acmeEmail: "ops@example.com", hstsMaxAge: 600 },
        ["router-config", "tls-config"],
      ],
    ];
    for (const [what, change, expected] of cases) {
      it(`${what}: ${expected.join(", ")}`, async () => {
        const base = await runProgram({ ...BASE_CONFIG, appSecrets: { DB_PASSWORD: "old" } });
        const changed = await runProgram({ ...BASE_CONFIG, appSecrets: { DB_PASSWORD: "old" }, ...change });
        assert.deepStrictEqual(changedResources(base, changed), expected);
      });
    }
  });

  it("healthPath: each slot step changes only its command's HEALTH_PATH, an update that reruns it (no trigger: a replace would stop the slot)", async () => {
    const changed = await runProgram({ ...BASE_CONFIG, active: "blue", healthPath: "/healthz" });
    for (const name of ["blue-service", "green-service"]) {
      const a = plain(find(blue, name).inputs);
      const b = plain(find(changed, name).inputs);
      const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter(
        (k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]),
      );
      assert.deepStrictEqual(keys, ["create"], name);
      assert.strictEqual(b.create, a.create.replace(" HEALTH_PATH=/health/ready ", " HEALTH_PATH=/healthz "), name);
      assert.strictEqual(b.triggers, undefined, `${name}: triggers would make it a replace (stop-slot.sh)`);
      assert.strictEqual(b.update, undefined, `${name}: with no update command, an update runs create: deploy-slot.sh`);
    }
  });

  it("a non-root SSH user runs every host step through sudo -n", async () => {
    const run = await runProgram({ ...BASE_CONFIG, sshUser: "deploy" });
    for (const r of run.resources.filter((x) => x.type === "command:remote:Command")) {
      assert.match(plain(r.inputs).create, /^sudo -n /, r.name);
    }
    assert.strictEqual(run.outputs.sshCommand, "ssh deploy@203.0.113.10");
  });

  it("exports url, ip, active, versions, an ssh command and a preview tunnel command", () => {
    assert.deepStrictEqual(blue.outputs, {
      ip: "203.0.113.10",
      hostKey: MOCK_HOST_KEY,
      url: "http://203.0.113.10/",
      active: "blue",
      maintenance: false,
      blueVersion: "v1",
      greenVersion: "v1",
      sshCommand: "ssh root@203.0.113.10",
      previewTunnelCommand: "ssh -N -L 8081:127.0.0.1:8081 root@203.0.113.10",
      statusCommand: "ssh root@203.0.113.10 /usr/local/sbin/bluegreen-status",
    });
  });

  it("host readiness waits long enough for a booting server and checks the architecture", () => {
    const ready = plain(find(blue, "host-ready").inputs);
    assert.strictEqual(ready.create, "env EXPECTED_ARCH=amd64 bash -s");
    assert.strictEqual(ready.connection.dialErrorLimit, 150);
    // It polls cloud-init (test/unit/wait-ready.test.ts runs it), printing a line while it waits.
    assert.match(ready.stdin, /state=\$\(cloud-init status /);
    assert.match(ready.stdin, /progress cloud-init /);
  });

  describe("several apps on one host: appName", () => {
    let shop: Run;
    before(async () => {
      shop = await runProgram({ ...BASE_CONFIG, appName: "shop", domains: ["shop.example.com"] });
    });

    it("every host step runs the app's own tools, with its own ports from its name", () => {
      for (const r of shop.resources.filter((x) => x.type === "command:remote:Command" && x.name !== "host-ready")) {
        const create = String(plain(r.inputs).create);
        assert.ok(
          create.includes("/usr/local/lib/bluegreen-shop/") || create.endsWith(" bash -s"),
          `${r.name}: ${create}`,
        );
      }
      assert.strictEqual(
        commandText(shop, "router-config"),
        "env OWNER=organization/bluegreen/dev/a1b2c3 DOMAINS=shop.example.com PORTS='28571 28572 28573 28574' BLUE_PORT=28573 GREEN_PORT=28574 /usr/local/lib/bluegreen-shop/router-config.sh",
      );
      assert.match(
        plain(find(shop, "blue-service").inputs).create,
        / LISTEN=unix:\/run\/bluegreen-shop\/blue\/app\.sock /,
      );
      assert.match(plain(find(shop, "setup-tools").inputs).stdin, /\nBG_NS=bluegreen-shop\n/);
    });

    it("destroying the stack removes this app only: the router config's delete step", () => {
      assert.strictEqual(
        plain(find(shop, "router-config").inputs).delete,
        "if [ -x /usr/local/lib/bluegreen-shop/app-remove.sh ]; then env OWNER=organization/bluegreen/dev/a1b2c3 /usr/local/lib/bluegreen-shop/app-remove.sh; fi",
      );
      // The tools go too, unless another stack owns an app of this name here.
      assert.strictEqual(
        plain(find(shop, "setup-tools").inputs).delete,
        "sh -c 'if [ ! -f /var/lib/bluegreen-apps/bluegreen-shop ] || grep -qxF owner=organization/bluegreen/dev/a1b2c3 /var/lib/bluegreen-apps/bluegreen-shop; then rm -rf /usr/local/lib/bluegreen-shop /usr/local/sbin/bluegreen-shop-status; fi'",
      );
    });

    it("outputs point at the app: its URL and status command", () => {
      assert.strictEqual(shop.outputs.url, "http://shop.example.com/");
      assert.strictEqual(shop.outputs.statusCommand, "ssh root@203.0.113.10 /usr/local/sbin/bluegreen-shop-status");
      assert.strictEqual(shop.outputs.previewTunnelCommand, "ssh -N -L 28571:127.0.0.1:28571 root@203.0.113.10");
    });

    it("hostKind stack: attaches to the host another stack created, read through a StackReference", async () => {
      const attached = await runProgram({
        ...BASE_CONFIG,
        sshHost: undefined,
        hostKind: "stack",
        hostStack: "organization/bluegreen/prod",
        appName: "shop",
        domains: ["shop.example.com"],
      });
      const ref = find(attached, "host-stack");
      assert.strictEqual(ref.type, "pulumi:pulumi:StackReference");
      assert.strictEqual(plain(ref.inputs).name, "organization/bluegreen/prod");
      assert.strictEqual(plain(find(attached, "router-config").inputs).connection.host, "203.0.113.20");
      assert.ok(!attached.resources.some((r) => r.type.startsWith("hcloud:")));
      // The host's key is the one the other stack exports: the scan waits for exactly that key.
      assert.deepStrictEqual(
        attached.resources.filter((r) => r.type === "command:local:Command").map((r) => r.name),
        ["host-ssh-hostkey"],
      );
      assert.match(
        plain(find(attached, "host-ssh-hostkey").inputs).create,
        / PINNED='ssh-ed25519 [^']*TheOtherStackKnows' /,
      );
      assert.strictEqual(plain(find(attached, "router-config").inputs).connection.hostKey, STACK_HOST_KEY);
      await assert.rejects(runProgram({ ...BASE_CONFIG, sshHost: undefined, hostKind: "stack" }), {
        message:
          'invalid bluegreen stack config:\n  - bluegreen:hostStack is required when bluegreen:hostKind is "stack": the stack that created the host, e.g. pulumi config set hostStack organization/bluegreen/prod',
      });
    });

    it("a bad app name is refused before anything else", async () => {
      await assert.rejects(runProgram({ ...BASE_CONFIG, appName: "Shop_1" }), {
        message:
          'invalid bluegreen stack config:\n  - bluegreen:appName must be a name of lowercase letters, digits and - (at most 22: its Unix user is bluegreen-NAME; not "apps"), e.g. shop (got "Shop_1")',
      });
    });
  });

  describe("multipass host", () => {
    it("launches the VM locally with cloud-init holding the public key, and connects as ubuntu to its IP", async () => {
      const run = await runProgram({
        ...BASE_CONFIG,
        hostKind: "multipass",
        sshHost: undefined,
        sshPublicKey: FAKE_PUB,
      });
      const vm = plain(find(run, "host-vm").inputs);
      assert.strictEqual(
        vm.create,
        `env NAME=bluegreen CPUS=1 MEMORY=1G DISK=8G IMAGE=24.04 CLOUD_INIT='#cloud-config\nssh_authorized_keys:\n  - "${FAKE_PUB}"\n' bash -s`,
      );
      assert.strictEqual(vm.delete, "multipass delete --purge bluegreen");
      assert.strictEqual(run.outputs.ip, "10.12.0.5");
      assert.strictEqual(plain(find(run, "host-ready").inputs).connection.user, "ubuntu");
      assert.match(commandText(run, "setup-tools"), /^sudo -n env OWNER=organization\/bluegreen\/dev\/a1b2c3 bash -s$/);
    });
  });

  describe("hetzner host", () => {
    let run: Run;
    before(async () => {
      run = await runProgram({
        ...BASE_CONFIG,
        hostKind: "hetzner",
        sshHost: undefined,
        sshPublicKey: FAKE_PUB,
        "hcloud:token": "tok-abc123-secret",
      });
    });

    it("firewall admits only tcp 22, 80 and 443, and the server uses it", () => {
      const fw = plain(find(run, "host-firewall").inputs);
      assert.deepStrictEqual(
        fw.rules.map((r: any) => `${r.direction} ${r.protocol} ${r.port} ${r.sourceIps.join(",")}`),
        ["in tcp 22 0.0.0.0/0,::/0", "in tcp 80 0.0.0.0/0,::/0", "in tcp 443 0.0.0.0/0,::/0"],
      );
      const server = plain(find(run, "host-server").inputs);
      assert.deepStrictEqual(server.firewallIds, [4242]);
      assert.strictEqual(server.serverType, "cx23");
      assert.strictEqual(server.image, "ubuntu-24.04");
      assert.strictEqual(server.location, "fsn1");
      assert.strictEqual(run.outputs.ip, "198.51.100.7");
    });

    it("SSH can be limited to configured CIDRs", async () => {
      const limited = await runProgram({
        ...BASE_CONFIG,
        hostKind: "hetzner",
        sshPublicKey: FAKE_PUB,
        "hcloud:token": "t",
        sshAllowedCidrs: ["203.0.113.7/32"],
      });
      assert.deepStrictEqual(plain(find(limited, "host-firewall").inputs).rules[0].sourceIps, ["203.0.113.7/32"]);
    });

    it("no slot listens on a public address", () => {
      for (const c of ["blue", "green"]) {
        assert.match(commandText(run, `${c}-service`), new RegExp(` LISTEN=unix:/run/bluegreen/${c}/app\\.sock `));
        assert.match(
          plain(find(run, `${c}-service`).inputs).stdin,
          new RegExp(`BLUEGREEN_LISTEN="unix:/run/bluegreen/${c}/app.sock"`),
        );
      }
    });

    it("the hcloud token appears in no resource input", () => {
      assert.ok(!JSON.stringify(run.resources.map((r) => plain(r.inputs))).includes("tok-abc123-secret"));
    });

    it("an Arm server type defaults the architecture to arm64", async () => {
      const arm = await runProgram({
        ...BASE_CONFIG,
        hostKind: "hetzner",
        sshPublicKey: FAKE_PUB,
        "hcloud:token": "t",
        hetznerServerType: "cax11",
      });
      assert.strictEqual(plain(find(arm, "host-ready").inputs).create, "env EXPECTED_ARCH=arm64 bash -s");
    });
  });

  describe("secrets", () => {
    let run: Run;
    const SECRET = "hunter2-db-password";
    before(async () => {
      run = await runProgram({ ...BASE_CONFIG, appEnv: { LOG_LEVEL: "info" }, appSecrets: { DB_PASSWORD: SECRET } });
    });

    it("the SSH private key is secret in every command's connection", () => {
      const remote = run.resources.filter((r) => r.type.startsWith("command:remote:"));
      assert.ok(remote.length > 5);
      for (const r of remote) {
        assert.ok(isSecret(r.inputs.connection), `${r.name}: connection is not secret`);
        assert.strictEqual(plain(r.inputs.connection).privateKey, FAKE_KEY);
      }
    });

    it("app secrets reach the slot only as a secret stdin, never a command line", () => {
      for (const c of ["blue", "green"]) {
        const svc = find(run, `${c}-service`);
        assert.ok(isSecret(svc.inputs.stdin), `${c}-service stdin must be secret`);
        assert.match(plain(svc.inputs.stdin), /\nDB_PASSWORD="hunter2-db-password"\nLOG_LEVEL="info"\n$/);
      }
      for (const r of run.resources) {
        const i = plain(r.inputs);
        for (const field of ["create", "update", "delete"]) {
          const text = String(i[field] ?? "");
          assert.ok(!text.includes(SECRET) && !text.includes("AAAAfakekey"), `${r.name}.${field} contains a secret`);
        }
        for (const field of ["create", "update", "delete"])
          assert.ok(!isSecret(r.inputs[field]), `${r.name}.${field} is secret, so its diff would be hidden`);
      }
    });

    it("an appEnv value set with --secret makes the env file secret too", async () => {
      const r = await runProgram(
        { ...BASE_CONFIG, appEnv: { API_TOKEN: "tok-in-appenv" } },
        { secretKeys: ["bluegreen:appEnv"] },
      );
      for (const c of ["blue", "green"])
        assert.ok(isSecret(find(r, `${c}-service`).inputs.stdin), `${c}-service stdin must be secret`);
      assert.ok(
        !JSON.stringify(r.resources.map((x) => [plain(x.inputs).create, plain(x.inputs).delete])).includes(
          "tok-in-appenv",
        ),
      );
    });

    it("--secret on a key that lands in plain text is refused, naming the key and the keys that can be secret", async () => {
      await assert.rejects(
        runProgram({ ...BASE_CONFIG, healthPath: "/ready" }, { secretKeys: ["bluegreen:healthPath"] }),
        {
          message:
            "invalid bluegreen stack config:\n  - bluegreen:healthPath is set with --secret, but its value is written in plain text on the host or in outputs, so it cannot stay secret; " +
            "set it without --secret, or keep secret values in bluegreen:appSecrets (secret keys: sshPrivateKey, sshPrivateKeyPassword, appSecrets, acmeDnsEnv, tlsPrivateKey, backupRemote, backupPassphrase, notifyWebhook, notifySlack, notifyDiscord, notifyNtfy, appEnv, blueArtifact, greenArtifact)",
        },
      );
    });

    it("without secrets the env file stays plain so its diff is readable", () => {
      assert.ok(!isSecret(find(blue, "blue-service").inputs.stdin));
    });

    it("stack outputs hold no secret", () => {
      assert.deepStrictEqual(run.secretOutputs, []);
      assert.ok(!JSON.stringify(run.outputs).includes(SECRET));
    });
  });

  it("appArgs that could add unit directives are refused with the reason", async () => {
    for (const [args, why] of [
      ["--a ; /bin/rm", 'must not contain a lone ";" (systemd starts a second command there)'],
      ["--a \\", 'must not contain "\\" (systemd reads it as an escape)'],
      [
        "--home %h",
        'must not contain "%" (systemd expands it as a specifier; pass such values through appEnv and ${NAME})',
      ],
      ["--name 'a", "has an unclosed ' quote"],
    ]) {
      await assert.rejects(runProgram({ ...BASE_CONFIG, appArgs: args }), {
        message: `invalid bluegreen stack config:\n  - bluegreen:appArgs ${why} (got ${JSON.stringify(args)})`,
      });
    }
  });

  it("big integers in appEnv keep every digit", async () => {
    // The engine hands object config to the program as JSON text; a JS object literal cannot hold this number.
    const r = await runProgram(
      { ...BASE_CONFIG, appEnv: '{"ACCOUNT_ID": 12345678901234567890}' },
      { skipConfigValidation: true },
    );
    assert.match(plain(find(r, "blue-service").inputs).stdin, /\nACCOUNT_ID="12345678901234567890"\n/);
  });

  it("bad config registers nothing: it never reaches the host", async () => {
    await assert.rejects(
      runProgram({ ...BASE_CONFIG, active: "purple" }),
      /bluegreen:active must be one of blue, green \(got "purple"\)/,
    );
  });
});
