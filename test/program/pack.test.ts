// bluegreen as a package: `npm pack` it, install the tarball into a new project, and run a
// program there (under the SDK's mocks) that puts two apps on one host with no stack config.
// It proves what a user of the package gets: the face (components/index.ts) compiles against
// the shipped types, the host scripts travel in the tarball, and two apps' resources do not
// collide.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ROOT } from "../support/harness";
import { run } from "../support/tools";

const CONSUMER_PROGRAM = `import * as fs from "fs";
import { BlueGreenApp, configFrom, Host, preflight } from "bluegreen";

const key = fs.readFileSync("deploy-key", "utf8");
const machine = { hostKind: "ssh", sshHost: "203.0.113.10", sshPrivateKey: key } as const;
const shop = configFrom({ ...machine, appName: "shop", blueVersion: "v1", greenVersion: "v2", blueArtifact: "app-v1", greenArtifact: "app-v2" });
const blog = configFrom({ ...machine, appName: "blog", blueVersion: "v7", greenVersion: "v7", blueArtifact: "app-v1", greenArtifact: "app-v1", active: "green" });

const built = { shop: preflight(shop), blog: preflight(blog) };
const host = new Host("vps", { host: shop.host, ssh: shop.ssh, arch: shop.arch });
export const shopUrl = new BlueGreenApp("shop", { host, config: shop, artifacts: built.shop }).url;
const blogApp = new BlueGreenApp("blog", { host, config: blog, artifacts: built.blog });
export const blogStatus = blogApp.statusCommand;
export const blogActive = blogApp.active;
`;

// Runs the compiled program under mocks with the consumer's own @pulumi/pulumi (the one bluegreen
// resolves too), and prints what it registered.
const RUNNER = `const pulumi = require("@pulumi/pulumi");
const { waitForRPCs } = require("@pulumi/pulumi/runtime/settings");
const resources = [];
pulumi.runtime.setMocks({
  newResource: (a) => {
    resources.push({ type: a.type, name: a.name, create: a.inputs.create });
    const state = a.type === "random:index/randomId:RandomId" ? { ...a.inputs, hex: "c0ffee" } : a.inputs;
    return { id: a.custom ? a.name + "-id" : undefined, state };
  },
  call: (a) => { throw new Error("unexpected invoke " + a.token); },
}, "consumer", "dev", false, "organization").then(async () => {
  const program = require("./bin/index.js");
  const outputs = {};
  for (const [k, v] of Object.entries(program)) outputs[k] = await new Promise((r) => v.apply(r));
  await waitForRPCs();
  console.log(JSON.stringify({ resources, outputs }));
});
`;

interface LockFile {
  packages: Record<string, { version: string }>;
}

const RELEASES_MARK = path.join(ROOT, "dist", "releases", ".pack-test");

describe("the npm package (npm pack, installed into a new project)", function () {
  this.timeout(600000);
  let out: { resources: { type: string; name: string; create?: string }[]; outputs: Record<string, string> };
  let dir: string;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "bg-consumer-"));
    // The library builds into dist/lib only: dist/releases holds the builds a deployed stack relies on.
    fs.mkdirSync(path.join(ROOT, "dist", "releases"), { recursive: true });
    fs.writeFileSync(RELEASES_MARK, "");
    const pack = run("npm", ["pack", "--pack-destination", dir, "--silent"], { cwd: ROOT });
    assert.strictEqual(pack.status, 0, pack.stderr);
    assert.ok(fs.existsSync(RELEASES_MARK), "npm pack left dist/releases alone");
    fs.rmSync(RELEASES_MARK);
    const tarball = path.join(dir, pack.stdout.trim().split("\n").pop()!);
    const project = path.join(dir, "consumer");
    fs.mkdirSync(project);
    // @pulumi/pulumi is a peer of bluegreen: the consumer's own copy is the one bluegreen uses (one SDK,
    // one set of classes); this consumer takes the version this repository locks.
    const sdk = (JSON.parse(fs.readFileSync(path.join(ROOT, "package-lock.json"), "utf8")) as LockFile).packages[
      "node_modules/@pulumi/pulumi"
    ].version;
    const manifest = {
      name: "consumer",
      private: true,
      dependencies: { bluegreen: `file:${tarball}`, "@pulumi/pulumi": sdk },
    };
    fs.writeFileSync(path.join(project, "package.json"), JSON.stringify(manifest));
    // From npm's cache where it can (the repository's own `npm ci` filled it); scripts off: the
    // providers' install scripts would download plugins, which the program under mocks never needs.
    const install = run("npm", ["install", "--prefer-offline", "--ignore-scripts", "--no-audit", "--no-fund"], {
      cwd: project,
    });
    assert.strictEqual(install.status, 0, install.stdout + install.stderr);
    fs.writeFileSync(path.join(project, "index.ts"), CONSUMER_PROGRAM);
    fs.writeFileSync(path.join(project, "runner.js"), RUNNER);
    fs.copyFileSync(path.join(ROOT, "test", "fixtures", "app-v1"), path.join(project, "app-v1"));
    fs.copyFileSync(path.join(ROOT, "test", "fixtures", "app-v2"), path.join(project, "app-v2"));
    fs.writeFileSync(
      path.join(project, "deploy-key"),
      "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAfakekeyfortests\n-----END OPENSSH PRIVATE KEY-----\n",
    );
    const tsconfig = {
      compilerOptions: { strict: true, module: "commonjs", target: "ES2022", outDir: "bin", types: [] },
    };
    fs.writeFileSync(path.join(project, "tsconfig.json"), JSON.stringify({ ...tsconfig, files: ["index.ts"] }));
    // The package's own types, checked strictly: a consumer compiles against dist/lib/components/index.d.ts.
    const tsc = run(path.join(ROOT, "node_modules", ".bin", "tsc"), ["-p", "."], { cwd: project });
    assert.strictEqual(tsc.status, 0, tsc.stdout + tsc.stderr);
    const runner = run("node", ["runner.js"], { cwd: project });
    assert.strictEqual(runner.status, 0, runner.stdout + runner.stderr);
    out = JSON.parse(runner.stdout.trim().split("\n").pop()!) as typeof out;
  });

  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("ships the face, its types and the host scripts, and nothing of the tests", () => {
    const list = run("tar", ["-tzf", fs.readdirSync(dir).find((f) => f.endsWith(".tgz"))!], { cwd: dir });
    const files = list.stdout.trim().split("\n");
    for (const f of [
      "package/dist/lib/components/index.js",
      "package/dist/lib/components/index.d.ts",
      "package/dist/lib/components/scripts/switch/switch.sh",
      "package/dist/lib/components/scripts/lib/lib.sh",
    ])
      assert.ok(files.includes(f), f);
    assert.deepStrictEqual(
      files.filter((f) => /^package\/(test|index\.ts|Pulumi)/.test(f)),
      [],
    );
  });

  it("one @pulumi/pulumi in the consumer: bluegreen takes the consumer's (a peer), not a copy of its own", () => {
    const project = path.join(dir, "consumer");
    assert.ok(fs.existsSync(path.join(project, "node_modules", "@pulumi", "pulumi")));
    assert.ok(!fs.existsSync(path.join(project, "node_modules", "bluegreen", "node_modules", "@pulumi", "pulumi")));
  });

  it("two apps on one host: one host, each app its own resources, named after it", () => {
    const names = out.resources.map((r) => r.name);
    assert.deepStrictEqual(
      names.filter((n) => n.startsWith("vps")),
      // The host's key, recorded on first use (the consumer's mocks give it no stdout: no key to pin).
      ["vps", "vps-ssh-hostkey", "vps-ready"],
    );
    for (const app of ["shop", "blog"]) {
      const own = names.filter((n) => n.startsWith(`${app}-`) || n === app).sort();
      assert.deepStrictEqual(own, [
        app,
        `${app}-blue`,
        `${app}-blue-service`,
        `${app}-blue-upload`,
        `${app}-green`,
        `${app}-green-service`,
        `${app}-green-upload`,
        `${app}-maintenance`,
        `${app}-maintenance-mode`,
        `${app}-releases`,
        `${app}-releases-prune`,
        `${app}-router`,
        `${app}-router-config`,
        `${app}-router-install`,
        `${app}-setup`,
        `${app}-setup-owner`,
        `${app}-setup-tools`,
        `${app}-switch`,
        `${app}-switch-link`,
        `${app}-tls`,
        `${app}-tls-config`,
      ]);
    }
    assert.strictEqual(names.length, 3 + 2 * 21);
  });

  it("each app's steps act on its own layout on the host, and the outputs are the apps' own", () => {
    const create = (name: string) => out.resources.find((r) => r.name === name)?.create ?? "";
    assert.match(create("shop-switch-link"), /\/usr\/local\/lib\/bluegreen-shop\/switch\.sh$/);
    assert.match(create("blog-switch-link"), /\/usr\/local\/lib\/bluegreen-blog\/switch\.sh$/);
    assert.match(create("shop-switch-link"), / TARGET=blue /);
    assert.match(create("blog-switch-link"), / TARGET=green /);
    assert.match(create("shop-green-service"), / VERSION=v2 /);
    assert.deepStrictEqual(out.outputs, {
      shopUrl: "http://203.0.113.10/",
      blogStatus: "ssh root@203.0.113.10 /usr/local/sbin/bluegreen-blog-status",
      blogActive: "green",
    });
  });
});
