// Any app, not only the demo binary: bundles, appCommand, hostPackages, buildCommand and
// the switch hooks. Config errors are exact; the rendered unit and env are exact; the
// program's steps and diffs are checked under mocks; buildCommand really runs.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { resolveArtifact } from "../../components/app/artifact";
import { ConfigError, loadConfig } from "../../components/config/config";
import { appLayout, layout, renderLayoutSh } from "../../components/host/layout";
import { renderSlotEnv, renderSlotUnit } from "../../components/app/unitFiles";
import { libScriptNames, loadScript } from "../../components/host/shell";
import { BASE_CONFIG, changedResources, find, plain, ROOT, runProgram } from "../support/harness";
import { run } from "../support/tools";

const BUNDLE = "test/fixtures/bundle-v1.tar.gz";
const NODE_APP = {
  ...BASE_CONFIG,
  blueArtifact: BUNDLE,
  greenArtifact: BUNDLE,
  appCommand: "node server.js",
  hostPackages: ["nodejs", "sqlite3"],
};

function load(config: Record<string, unknown>) {
  const values = new Map<string, string>();
  for (const [k, v] of Object.entries(config))
    if (v !== undefined) values.set(k, typeof v === "string" ? v : JSON.stringify(v));
  return loadConfig({ get: (k) => values.get(k) }, ROOT, {});
}

function rejects(config: Record<string, unknown>, ...problems: string[]) {
  assert.throws(
    () => load(config),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.strictEqual(e.message, `invalid bluegreen stack config:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
      return true;
    },
  );
}

describe("any app: config errors name the key and what is allowed", () => {
  it("a bundle without appCommand", () => {
    rejects(
      { ...BASE_CONFIG, greenArtifact: BUNDLE },
      'bluegreen:appCommand is required when bluegreen:greenArtifact is a .tar.gz bundle: how a release starts, run from its directory, e.g. pulumi config set appCommand "node server.js"',
    );
  });

  it("appCommand whose program is a systemd prefix, a variable or a path out of the release", () => {
    for (const program of ["+node", "-node", "@node", "!node", "${NODE}", "../bin/x", '"node"'])
      rejects(
        { ...NODE_APP, appCommand: `${program} server.js` },
        `bluegreen:appCommand must start with the program to run: a name found on the host's PATH (node), an absolute path, or a path inside the release (bin/server); not ${JSON.stringify(program)} (got ${JSON.stringify(`${program} server.js`)})`,
      );
  });

  it("appCommand that could add unit directives, or has $NAME inside a word (systemd leaves it)", () => {
    rejects(
      { ...NODE_APP, appCommand: "node server.js\nExecStartPre=/bin/sh -c id" },
      'bluegreen:appCommand must be a single line without control characters (got "node server.js\\nExecStartPre=/bin/sh -c id")',
    );
    rejects(
      { ...NODE_APP, appCommand: "php -S 127.0.0.1:$PORT -t public" },
      'bluegreen:appCommand has $PORT inside a word, which systemd leaves as it is; write ${PORT} (got "php -S 127.0.0.1:$PORT -t public")',
    );
    rejects(
      { ...NODE_APP, appCommand: "node server.js ; rm -rf /" },
      'bluegreen:appCommand must not contain a lone ";" (systemd starts a second command there) (got "node server.js ; rm -rf /")',
    );
  });

  it("appArgs beside appCommand, and PORT in appEnv when bluegreen sets it", () => {
    rejects(
      { ...NODE_APP, appArgs: "--port 1" },
      "bluegreen:appArgs applies only to the single executable; with bluegreen:appCommand put the arguments in the command: pulumi config rm appArgs",
    );
    rejects(
      { ...NODE_APP, linkMode: "tcp", appEnv: { PORT: "80" } },
      "bluegreen:appEnv.PORT is set by bluegreen with bluegreen:appCommand in tcp mode (each slot's own port); remove it: pulumi config rm --path appEnv.PORT",
    );
  });

  it("hostPackages entries that are not package names, or repeat", () => {
    rejects(
      { ...NODE_APP, hostPackages: ["nodejs", "Node JS", "nodejs", "php;reboot", 7] },
      `bluegreen:hostPackages entry "Node JS" is not a package name: lowercase letters, digits, + - and ., starting with a letter or digit and not ending in - (apt install NAME), optionally NAME=VERSION`,
      `bluegreen:hostPackages lists "nodejs" twice`,
      `bluegreen:hostPackages entry "php;reboot" is not a package name: lowercase letters, digits, + - and ., starting with a letter or digit and not ending in - (apt install NAME), optionally NAME=VERSION`,
      `bluegreen:hostPackages entry 7 is not a package name: lowercase letters, digits, + - and ., starting with a letter or digit and not ending in - (apt install NAME), optionally NAME=VERSION`,
    );
    rejects(
      { ...NODE_APP, hostPackages: "nodejs" },
      "bluegreen:hostPackages must be a list of Debian/Ubuntu package names, e.g. pulumi config set --path 'hostPackages[0]' nodejs",
    );
    assert.deepStrictEqual(
      load({ ...NODE_APP, hostPackages: ["nodejs=18.19.0+dfsg-6~deb12u2", "php8.2-cli"] }).hostPackages,
      ["nodejs=18.19.0+dfsg-6~deb12u2", "php8.2-cli"],
    );
  });

  it("a package name ending in - (apt would remove the package) is refused", () => {
    rejects(
      { ...NODE_APP, hostPackages: ["nginx-"] },
      'bluegreen:hostPackages entry "nginx-" is not a package name: lowercase letters, digits, + - and ., starting with a letter or digit and not ending in - (apt install NAME), optionally NAME=VERSION',
    );
    assert.deepStrictEqual(load({ ...NODE_APP, hostPackages: ["g++", "libstdc++6"] }).hostPackages, [
      "g++",
      "libstdc++6",
    ]);
  });

  it("a secret on the command line (ps shows it to every user) is refused; so is PORT among the secrets", () => {
    rejects(
      { ...NODE_APP, appCommand: "node server.js --key ${API_KEY}", appSecrets: { API_KEY: "k", API: "a" } },
      "bluegreen:appCommand passes the secret API_KEY on the command line, where ps shows it to every user on the host; let the app read API_KEY from its environment",
    );
    rejects(
      { ...NODE_APP, linkMode: "tcp", appSecrets: { PORT: "9999" } },
      "bluegreen:appEnv.PORT is set by bluegreen with bluegreen:appCommand in tcp mode (each slot's own port); remove it: pulumi config rm --path appEnv.PORT",
    );
  });

  it("a file named like a bundle that is not one, and gzip data not named like one", () => {
    rejects(
      { ...NODE_APP, greenArtifact: "test/fixtures/app-v1.tgz" },
      'bluegreen:greenArtifact: file "test/fixtures/app-v1.tgz" does not exist (relative paths start at the project directory)',
    );
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bg-art-"));
    fs.writeFileSync(path.join(dir, "fake.tar.gz"), "plain text");
    fs.copyFileSync(path.join(ROOT, BUNDLE), path.join(dir, "app"));
    rejects(
      { ...NODE_APP, blueArtifact: path.join(dir, "fake.tar.gz"), greenArtifact: path.join(dir, "app") },
      `bluegreen:blueArtifact: "${dir}/fake.tar.gz" is named like a bundle but is not gzip data; make it with: tar -czf NAME.tar.gz -C DIR .`,
      `bluegreen:greenArtifact: "${dir}/app" is gzip data; name a bundle .tar.gz or .tgz (or ship the executable itself)`,
    );
    fs.rmSync(dir, { recursive: true });
  });

  it("hooks: control characters, postSwitchFailure without postSwitch, hookTimeout out of range", () => {
    rejects(
      { ...NODE_APP, preSwitch: "node migrate.js\u0007", postSwitchFailure: "rollback", hookTimeout: 2 },
      "bluegreen:preSwitch must be shell text without control characters other than newline and tab",
      "bluegreen:postSwitchFailure is set but bluegreen:postSwitch is empty; it would be ignored",
      'bluegreen:hookTimeout must be a whole number from 5 to 3600 (got "2")',
    );
    rejects(
      { ...NODE_APP, postSwitch: "true", postSwitchFailure: "abort" },
      'bluegreen:postSwitchFailure must be one of warn, rollback (got "abort")',
    );
  });

  it("buildCommand without a build artifact would be ignored", () => {
    rejects(
      { ...NODE_APP, buildCommand: "make bundle" },
      'bluegreen:buildCommand is set but neither bluegreen:blueArtifact nor bluegreen:greenArtifact is "build"; it would be ignored',
    );
  });
});

describe("any app: the unit and env a slot runs with", () => {
  const shop = appLayout("shop");
  const unit = (command: string) =>
    renderSlotUnit({ layout: shop, color: "green", args: "", command, drainTimeoutSeconds: 25 })
      .split("\n")
      .filter((l) => /^(ExecStart|WorkingDirectory)=/.test(l));

  it("appCommand runs from the release directory; its program is found on PATH, taken as is, or made absolute in the release", () => {
    assert.deepStrictEqual(unit("node server.js"), [
      "WorkingDirectory=/var/lib/bluegreen-shop/slots/green/current",
      "ExecStart=node server.js",
    ]);
    assert.deepStrictEqual(unit(".venv/bin/gunicorn --bind unix:${BLUEGREEN_SOCKET} app:app"), [
      "WorkingDirectory=/var/lib/bluegreen-shop/slots/green/current",
      "ExecStart=/var/lib/bluegreen-shop/slots/green/current/.venv/bin/gunicorn --bind unix:${BLUEGREEN_SOCKET} app:app",
    ]);
    assert.deepStrictEqual(unit("./app --listen ${BLUEGREEN_LISTEN}"), [
      "WorkingDirectory=/var/lib/bluegreen-shop/slots/green/current",
      "ExecStart=/var/lib/bluegreen-shop/slots/green/current/app --listen ${BLUEGREEN_LISTEN}",
    ]);
    assert.deepStrictEqual(unit('node -e "a;  b" server.js'), [
      "WorkingDirectory=/var/lib/bluegreen-shop/slots/green/current",
      'ExecStart=node -e "a;  b" server.js',
    ]);
    assert.deepStrictEqual(unit("/usr/bin/php -S 127.0.0.1:${PORT} -t public"), [
      "WorkingDirectory=/var/lib/bluegreen-shop/slots/green/current",
      "ExecStart=/usr/bin/php -S 127.0.0.1:${PORT} -t public",
    ]);
  });

  it("the single executable's unit is byte for byte the expected one (appCommand changes nothing for it)", () => {
    assert.strictEqual(
      renderSlotUnit({
        layout,
        color: "green",
        args: "--listen ${BLUEGREEN_LISTEN} --color ${BLUEGREEN_COLOR}",
        drainTimeoutSeconds: 25,
      }),
      fs.readFileSync(path.join(ROOT, "test", "expected", "bluegreen@green.service"), "utf8"),
    );
  });

  it("with appCommand the env also says where to listen the way frameworks read it", () => {
    const env = (listen: string) =>
      renderSlotEnv({
        layout: shop,
        color: "blue",
        version: "v1",
        listen,
        drainTimeoutSeconds: 25,
        appEnv: {},
        command: true,
      });
    assert.match(
      env("unix:/run/bluegreen-shop/blue/app.sock"),
      /\nBLUEGREEN_SOCKET="\/run\/bluegreen-shop\/blue\/app\.sock"\n/,
    );
    assert.doesNotMatch(env("unix:/run/bluegreen-shop/blue/app.sock"), /\nPORT=/);
    assert.match(env("127.0.0.1:28573"), /\nPORT="28573"\n/);
    assert.doesNotMatch(
      renderSlotEnv({
        layout: shop,
        color: "blue",
        version: "v1",
        listen: "127.0.0.1:28573",
        drainTimeoutSeconds: 25,
        appEnv: {},
      }),
      /PORT=|BLUEGREEN_SOCKET=/,
    );
  });
});

describe("any app: the program under mocks", () => {
  it("packages get a step of their own; a bundle's deploy step says so; hooks ride on the switch's stdin", async () => {
    const r = await runProgram({
      ...NODE_APP,
      preSwitch: "node migrate.js",
      postSwitch: "curl -fsS https://hooks.example.com/deployed",
      postSwitchFailure: "rollback",
      appSecrets: { DB_PASSWORD: "s3cret" },
    });
    const packages = plain(find(r, "packages-install").inputs);
    assert.strictEqual(packages.create, "env PACKAGES='nodejs sqlite3' /usr/local/lib/bluegreen/host-packages.sh");
    assert.strictEqual(packages.delete, undefined, "packages stay on the host: another app may use them");
    const blue = plain(find(r, "blue-service").inputs);
    assert.match(blue.create, / KIND=bundle BUNDLE_MAX_MB=1024 /);
    const sw = plain(find(r, "switch-link").inputs);
    assert.strictEqual(
      sw.create,
      "env TARGET=blue HEALTH_PATH=/health/ready CHECK_PORT=8082 VERIFY_TIMEOUT=15 WATCH_SECONDS=30 ERROR_PERCENT=5 MIN_ERRORS=5 " +
        "HOOKS=yes HOOK_TIMEOUT=600 POST_SWITCH_FAILURE=rollback SECRET_NAMES=DB_PASSWORD /usr/local/lib/bluegreen/switch.sh",
    );
    assert.strictEqual(
      sw.stdin,
      "#bluegreen-section preSwitch\nnode migrate.js\n#bluegreen-section postSwitch\ncurl -fsS https://hooks.example.com/deployed\n",
    );
  });

  it("a stack that uses none of it keeps exactly the steps and commands it had", async () => {
    const r = await runProgram(BASE_CONFIG);
    assert.ok(!r.resources.some((x) => x.name === "packages-install"));
    assert.doesNotMatch(plain(find(r, "blue-service").inputs).create, /KIND|BUNDLE_MAX_MB/);
    const sw = plain(find(r, "switch-link").inputs);
    assert.doesNotMatch(sw.create, /HOOK/);
    assert.strictEqual(sw.stdin, undefined);
  });

  it("exact diffs: a hook change is the switch alone; a package, the packages step alone", async () => {
    const base = await runProgram({ ...NODE_APP, preSwitch: "node migrate.js" });
    assert.deepStrictEqual(
      changedResources(base, await runProgram({ ...NODE_APP, preSwitch: "node migrate.js --verbose" })),
      ["switch-link"],
    );
    assert.deepStrictEqual(
      changedResources(
        base,
        await runProgram({ ...NODE_APP, preSwitch: "node migrate.js", hostPackages: ["nodejs", "sqlite3", "curl"] }),
      ),
      ["packages-install"],
    );
    assert.deepStrictEqual(
      changedResources(
        base,
        await runProgram({
          ...NODE_APP,
          preSwitch: "node migrate.js",
          appCommand: "node --enable-source-maps server.js",
        }),
      ),
      ["blue-service", "green-service"],
    );
  });
});

describe("any app: buildCommand", () => {
  let project: string;
  beforeEach(() => {
    project = fs.mkdtempSync(path.join(os.tmpdir(), "bg-build-"));
  });
  afterEach(() => fs.rmSync(project, { recursive: true, force: true }));
  const build = (command: string, version = "v1") =>
    resolveArtifact("green", version, { kind: "build" }, "amd64", { command, projectDir: project, app: "shop" });
  const errorOf = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      return e.problems.join("\n");
    }
    assert.fail("no error");
  };

  it("the Node demo's build is a reproducible bundle; a version is built once per machine, then reused", () => {
    fs.cpSync(path.join(ROOT, "app", "node"), path.join(project, "app", "node"), { recursive: true });
    const counter = path.join(project, "builds");
    const cmd = `echo x >> ${counter}; bash app/node/build.sh "$BLUEGREEN_VERSION" "$BLUEGREEN_ARCH" "$BLUEGREEN_OUT"`;
    const first = build(cmd, "v7");
    assert.strictEqual(first.kind, "file");
    assert.strictEqual(first.bundle, true);
    assert.strictEqual(
      first.kind === "file" && first.path,
      path.join(project, "dist", "releases", "shop", "v7", "app-linux-amd64"),
    );
    assert.strictEqual(fs.readFileSync(counter, "utf8"), "x\nx\n", "the first build of a version runs twice");
    assert.match(
      fs.readFileSync(path.join(project, "dist/releases/shop/v7/app-linux-amd64.sha256"), "utf8"),
      new RegExp(`^${first.sha256} [0-9a-f]{16}\n$`),
    );
    // Another run (a new process) reuses v7 as built, even after the source moved on.
    fs.appendFileSync(path.join(project, "app", "node", "server.js"), "\n// changed\n");
    const built = require.resolve("../../components/app/artifact");
    delete require.cache[built];
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a fresh module: a new pulumi run
    const fresh = require(built) as typeof import("../../components/app/artifact");
    const again = fresh.resolveArtifact("blue", "v7", { kind: "build" }, "amd64", {
      command: cmd,
      projectDir: project,
      app: "shop",
    });
    assert.strictEqual(again.sha256, first.sha256);
    assert.strictEqual(fs.readFileSync(counter, "utf8"), "x\nx\n", "not built again");
  });

  it("a build that is not reproducible fails at its first build, with why and how to fix it", () => {
    const e = errorOf(() => build('date +%s%N > "$BLUEGREEN_OUT"'));
    assert.match(
      e,
      /^bluegreen:greenArtifact is "build", but bluegreen:buildCommand is not reproducible: two builds of v1 from the same source gave sha256 [0-9a-f]{64} and [0-9a-f]{64}\. The host stores each version once and refuses v1 with another sha256, so this build would fail on the next machine or run that builds v1 again\. Make the output depend on the source only: for a tarball, tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \| gzip -n; for Go, -trimpath -buildvcs=false; set SOURCE_DATE_EPOCH for tools that stamp the time$/,
    );
    assert.deepStrictEqual(fs.readdirSync(path.join(project, "dist/releases/shop/v1")), [], "nothing recorded or left");
  });

  it("a changed buildCommand under a built version is refused; another app's build of the same version is its own", () => {
    const first = build('printf shop > "$BLUEGREEN_OUT"', "v1");
    delete require.cache[require.resolve("../../components/app/artifact")];
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a fresh module: a new pulumi run
    const fresh = require("../../components/app/artifact") as typeof import("../../components/app/artifact");
    const opts = { projectDir: project, command: 'printf other > "$BLUEGREEN_OUT"' };
    const again = () => fresh.resolveArtifact("green", "v1", { kind: "build" }, "amd64", { ...opts, app: "shop" });
    assert.throws(again, {
      message:
        "invalid bluegreen stack config:\n  - bluegreen:buildCommand changed since v1 was built here (dist/releases/shop/v1/). " +
        "A version is immutable on the host, so build the new way under a new version (pulumi config set greenVersion ...), " +
        "or delete dist/releases/shop/v1/ if v1 never reached a host",
    });
    const blog = fresh.resolveArtifact("green", "v1", { kind: "build" }, "amd64", { ...opts, app: "blog" });
    assert.notStrictEqual(blog.sha256, first.sha256);
    assert.strictEqual(blog.kind === "file" && fs.readFileSync(blog.path, "utf8"), "other");
  });

  it("a build never sees what unlocks the stack or a cloud account", () => {
    const saved = { ...process.env };
    Object.assign(process.env, {
      PULUMI_CONFIG_PASSPHRASE: "correct-horse",
      HCLOUD_TOKEN: "t",
      NPM_TOKEN: "n",
      GOFLAGS: "-mod=mod",
    });
    try {
      const a = build('env | sort | grep -E "^(PULUMI|HCLOUD|NPM_TOKEN|GOFLAGS)" > "$BLUEGREEN_OUT" || true', "v9");
      assert.strictEqual(a.kind === "file" && fs.readFileSync(a.path, "utf8"), "GOFLAGS=-mod=mod\n");
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    }
  });

  it("a failing build shows its stderr; a build that writes nothing says where it should have", () => {
    assert.strictEqual(
      errorOf(() => build("echo 'npm ERR! missing script: bundle' >&2; exit 2", "v2")),
      'bluegreen:greenArtifact is "build", but bluegreen:buildCommand failed for v2 (linux/amd64) with exit 2: npm ERR! missing script: bundle',
    );
    assert.match(
      errorOf(() => build("true", "v3")),
      new RegExp(
        `^bluegreen:greenArtifact is "build", but bluegreen:buildCommand exited 0 without writing \\$BLUEGREEN_OUT \\(${project}/dist/releases/shop/v3/app-linux-amd64\\.build-[0-9-]+-1\\): it must write the executable or the \\.tar\\.gz bundle there$`,
      ),
    );
  });
});

/** Slot blue's env file, as the host has it, with APP_ENV. */
const blueEnv = (appEnv: Record<string, string>) =>
  renderSlotEnv({
    layout,
    color: "blue",
    version: "v1",
    listen: "unix:/run/bluegreen/blue/app.sock",
    drainTimeoutSeconds: 25,
    appEnv,
  });

/** Writes BIN/NAME, an executable bash script: a host tool faked for a test. */
function fakeTool(bin: string, name: string, body: string) {
  fs.writeFileSync(path.join(bin, name), `#!/bin/bash\n${body}`, { mode: 0o755 });
}

describe("any app: hook output is scrubbed of the slot's secret values (lib.sh scrub_secrets)", () => {
  it("each secret value, wherever it appears in a line, becomes [secret NAME]; other values stay", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bg-scrub-"));
    fs.writeFileSync(path.join(dir, "layout.sh"), "");
    for (const f of [...libScriptNames(), "router-nginx.sh"]) fs.writeFileSync(path.join(dir, f), loadScript(f));
    fs.writeFileSync(
      path.join(dir, "blue.env"),
      blueEnv({
        DB_PASSWORD: 'p"a\\ss',
        API_TOKEN: "tok-123",
        LOG_LEVEL: "debug",
        A_ID: "AKIA1",
        B_KEY: "AKIA1:wJalr",
      }),
    );
    const r = run("bash", ["-c", `. ${dir}/lib.sh; scrub_secrets ${dir}/blue.env "DB_PASSWORD API_TOKEN A_ID B_KEY"`], {
      input: 'connecting with p"a\\ss and tok-123tok-123\nlevel debug\nkeys AKIA1:wJalr AKIA1\n',
    });
    fs.rmSync(dir, { recursive: true });
    assert.strictEqual(
      r.stdout,
      // Longest first: a value that contains another goes whole.
      "connecting with [secret DB_PASSWORD] and [secret API_TOKEN][secret API_TOKEN]\nlevel debug\nkeys [secret B_KEY] [secret A_ID]\n",
    );
  });
});

describe("any app: a hook's output is capped, whole lines only, before it is scrubbed (lib.sh run_hook, systemd faked)", () => {
  // The fakes do what run_hook relies on: systemd-run opens StandardOutput=file:PATH for writing
  // (open(2) with O_WRONLY, as systemd's acquire_path does) and exits with the hook's status.
  // The VM suite (scenario 28) runs the same code under the real systemd.
  let root: string;
  const TOKEN = "tok-secret-5e2a";
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "bg-hook-"));
    const tools = path.join(root, layout.toolsDir);
    const bin = path.join(root, "bin");
    const dirs = [layout.toolsDir, "bin", layout.envDir, layout.unitDir, path.dirname(layout.auditLog)];
    for (const d of dirs.map((d) => path.join(root, d))) fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(path.join(tools, "layout.sh"), renderLayoutSh(layout, { root }));
    for (const f of [...libScriptNames(), "router-nginx.sh"]) fs.writeFileSync(path.join(tools, f), loadScript(f));
    fs.writeFileSync(
      path.join(root, layout.unitDir, `${layout.ns}@blue.service`),
      `[Service]\nUser=nobody\nEnvironmentFile=${path.join(root, layout.envDir, "blue.env")}\n`,
    );
    fs.writeFileSync(path.join(root, layout.envDir, "blue.env"), blueEnv({ NOTIFY_TOKEN: TOKEN }));
    fakeTool(
      bin,
      "systemd-run",
      `out=""
while [ $# -gt 0 ]; do
  case "$1" in
    StandardOutput=file:*) out=\${1#StandardOutput=file:} ;;
    EnvironmentFile=*) set -a; . "\${1#EnvironmentFile=}"; set +a ;;
    --) shift; break ;;
  esac
  shift
done
"$@" >"$out" 2>&1
echo $? >${root}/status
exit "$(cat ${root}/status)"
`,
    );
    fakeTool(
      bin,
      "systemctl",
      `case "$*" in
  *ExecMainStatus*) cat ${root}/status ;;
  *Result*) cat ${root}/result 2>/dev/null || echo exit-code ;;
esac
`,
    );
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  /** Runs the hook TEXT as run_hook does in a switch, holding the app lock (fd 9) as switch.sh does. */
  const hook = (text: string) => {
    const lock = path.join(root, "app.lock");
    return run(
      "bash",
      [
        "-c",
        `. ${path.join(root, layout.toolsDir, "lib.sh")}; take_lock ${lock} 5; rc=0; run_hook postSwitch blue "$1" 60 NOTIFY_TOKEN || rc=$?; ` +
          `flock -n ${lock} true && echo "lock: released" || echo "lock: held"; echo "exit: $rc"; ls -A ${path.join(root, layout.envDir)}`,
        "hook",
        text,
      ],
      { env: { ...process.env, PATH: `${root}/bin:${process.env.PATH ?? ""}` } },
    );
  };

  it("a short output passes whole, scrubbed; the switch's lock stays held; nothing is left beside the env", () => {
    const r = hook('echo "notifying with $NOTIFY_TOKEN"; echo "to stderr" >&2; exit 3');
    assert.strictEqual(r.stderr, "");
    assert.strictEqual(
      r.stdout,
      "  postSwitch| notifying with [secret NOTIFY_TOKEN]\n  postSwitch| to stderr\nlock: held\nexit: 3\nblue.env\n",
    );
  });

  it("a hook stopped by hookTimeout mid-line: that last line, which may end inside a secret, is not shown", () => {
    fs.writeFileSync(path.join(root, "result"), "timeout\n");
    const r = hook(`echo "sent $NOTIFY_TOKEN"; printf '%s' "cut at \${NOTIFY_TOKEN%????}"; exit 143`);
    assert.strictEqual(r.stderr, "");
    assert.strictEqual(
      r.stdout,
      "  postSwitch| sent [secret NOTIFY_TOKEN]\n" +
        "  postSwitch| bluegreen: the unfinished last line of postSwitch is not shown (it may have been cut inside a secret value)\n" +
        "  postSwitch| bluegreen: postSwitch was stopped after 60 s (bluegreen:hookTimeout)\n" +
        "lock: held\nexit: 143\nblue.env\n",
    );
  });

  it("cut and failed, or ending in a NUL byte: the unfinished last line still goes, and the notes stand on their own lines", () => {
    fs.writeFileSync(path.join(root, "result"), "timeout\n");
    const cut = hook(`yes "an early line" | head -c 2000000; printf 'cut at %s' "\${NOTIFY_TOKEN%????}"; exit 143`);
    assert.deepStrictEqual(cut.stdout.split("\n").slice(-8), [
      "  postSwitch| an early line",
      "  postSwitch| bluegreen: postSwitch printed over 1024 KiB; only the end is kept",
      "  postSwitch| bluegreen: the unfinished last line of postSwitch is not shown (it may have been cut inside a secret value)",
      "  postSwitch| bluegreen: postSwitch was stopped after 60 s (bluegreen:hookTimeout)",
      "lock: held",
      "exit: 143",
      "blue.env",
      "",
    ]);
    fs.rmSync(path.join(root, "result"));
    const nul = hook(`echo "sent $NOTIFY_TOKEN"; printf 'cut at %s\\0' "\${NOTIFY_TOKEN%????}"; exit 1`);
    assert.strictEqual(
      nul.stdout,
      "  postSwitch| sent [secret NOTIFY_TOKEN]\n" +
        "  postSwitch| bluegreen: the unfinished last line of postSwitch is not shown (it may have been cut inside a secret value)\n" +
        "lock: held\nexit: 1\nblue.env\n",
    );
    const ok = hook(`echo "sent $NOTIFY_TOKEN"; printf 'done'`);
    assert.strictEqual(
      ok.stdout,
      "  postSwitch| sent [secret NOTIFY_TOKEN]\n  postSwitch| done\nlock: held\nexit: 0\nblue.env\n",
    );
  });

  it("an output over 1 MiB keeps its last 200 whole lines and says it was cut; a secret cut at the edge is dropped", () => {
    // The reader keeps the last 1 MiB + 1 byte. Laid out so that this window starts inside the
    // secret: its first line begins "-secret-5e2a", a piece the scrubber cannot recognise. The
    // window's lines are long, so fewer than 200 of them fill it and all would be shown.
    const cap = 1024 * 1024;
    const long = "f".repeat(8191);
    const tail = `sent ${TOKEN}\nthe last line\n`;
    let first = "-secret-5e2a cut mid-value";
    while ((cap + 1 - (first.length + 1) - tail.length) % (long.length + 1) !== 0) first += ".";
    const filler = (cap + 1 - (first.length + 1) - tail.length) / (long.length + 1);
    const r = hook(
      `yes "an early line" | head -c 2000000; printf '%s' "earlier line with tok"; printf '%s\\n' '${first}'; ` +
        `yes "${long}" | head -n ${filler}; echo "sent $NOTIFY_TOKEN"; echo "the last line"`,
    );
    assert.strictEqual(r.stderr, "");
    const lines = r.stdout.split("\n");
    const shown = lines.filter((l) => l.startsWith("  postSwitch| "));
    assert.deepStrictEqual(shown, [
      ...Array<string>(filler).fill(`  postSwitch| ${long}`),
      "  postSwitch| sent [secret NOTIFY_TOKEN]",
      "  postSwitch| the last line",
      "  postSwitch| bluegreen: postSwitch printed over 1024 KiB; only the end is kept",
    ]);
    assert.deepStrictEqual(lines.slice(-4), ["lock: held", "exit: 0", "blue.env", ""]);
    const audit = fs.readFileSync(path.join(root, layout.auditLog), "utf8");
    assert.ok(!audit.includes(TOKEN.slice(4)), "a piece of the secret reached the audit log");
    assert.match(audit, /hook-output name=postSwitch slot=blue \| bluegreen: postSwitch printed over 1024 KiB/);
  });
});

describe("any app: hostPackages on the host (host-packages.sh, apt and dpkg faked)", () => {
  let root: string;
  const calls = () => fs.readFileSync(path.join(root, "apt.log"), "utf8").trim().split("\n");
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "bg-pkgs-"));
    const tools = path.join(root, layout.toolsDir);
    const bin = path.join(root, "bin");
    fs.mkdirSync(tools, { recursive: true });
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(tools, "layout.sh"), renderLayoutSh(layout, { root }));
    for (const f of [...libScriptNames(), "router-nginx.sh", "host-packages.sh"])
      fs.writeFileSync(path.join(tools, f), loadScript(f), { mode: 0o755 });
    // apt's own words for each case: a plain install, an install that would upgrade libc6, an unknown name.
    fakeTool(
      bin,
      "apt-get",
      `echo "$*" >> ${root}/apt.log
case "$*" in
  *update*) exit 0 ;;
  *nosuch*) echo "E: Unable to locate package nosuch"; exit 100 ;;
  "-s install"*php-cli*) echo "Inst libc6 [2.36-9] (2.36-10 Debian:12.5/stable [amd64]) []"; echo "Inst php-cli (8.2 Debian:12.5/stable [all])" ;;
  "-s install"*) echo "Inst nodejs (18.19.0 Debian:12.5/stable [amd64])" ;;
esac
exit 0
`,
    );
    fakeTool(
      bin,
      "dpkg-query",
      `case "$*" in
  *'|'*curl) echo "install ok installed|7.88.1" ;;
  *'|'*) exit 1 ;;
  *) for p in "\${@: -1}"; do echo "$p 1.0"; done ;;
esac
`,
    );
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));
  const install = (packages: string) =>
    run(path.join(root, layout.toolsDir, "host-packages.sh"), [], {
      env: { ...process.env, PATH: `${root}/bin:${process.env.PATH ?? ""}`, PACKAGES: packages },
    });

  it("installs only what is missing, after apt's plan, never removing anything", () => {
    const r = install("curl nodejs");
    assert.strictEqual(r.status, 0, r.stderr);
    assert.strictEqual(r.stdout, "host packages: installed nodejs 1.0\n");
    assert.deepStrictEqual(calls(), [
      "-s install -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confold -y -q --no-install-recommends --no-remove nodejs",
      "install -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confold -y -q --no-install-recommends --no-remove nodejs",
    ]);
    const again = install("curl");
    assert.strictEqual(again.stdout, "host packages: curl already installed; nothing changed\n");
  });

  it("a plan that would upgrade a package on the host is refused, naming it; nothing is installed", () => {
    const r = install("php-cli");
    assert.strictEqual(r.status, 1);
    assert.strictEqual(
      r.stderr,
      "bluegreen: error: installing php-cli would change packages already on this host, which bluegreen does not do on a live host; nothing was changed:\n" +
        "  Inst libc6 [2.36-9] (2.36-10 Debian:12.5/stable [amd64]) []\n" +
        "Upgrade them yourself when it suits you (apt-get install --only-upgrade NAME), then run pulumi up again.\n",
    );
    assert.ok(!calls().some((c) => c.startsWith("install")));
  });

  it("an unknown package: the lists are refreshed once, then apt's message names it", () => {
    const r = install("nosuch");
    assert.strictEqual(r.status, 1);
    assert.deepStrictEqual(
      calls().map((c) => c.split(" ")[0] + (c.includes(" -s ") || c.startsWith("-s") ? " (plan)" : "")),
      ["-s (plan)", "update", "-s (plan)"],
    );
    assert.match(
      r.stderr,
      /bluegreen: error: apt-get could not install nosuch \(bluegreen:hostPackages\); nothing was changed:\nE: Unable to locate package nosuch\n$/,
    );
  });
});
