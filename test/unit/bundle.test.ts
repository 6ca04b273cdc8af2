// Release bundles on the host: the real lib.sh (ensure_release, unpack_bundle) against
// archives made here with GNU tar, under a temp root. What a user relies on: a bundle
// lands whole in VERSION/, and an archive that would write outside it is refused with
// an exact message before anything is unpacked.
import * as assert from "assert";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { layout, renderLayoutSh } from "../../components/host/layout";
import { libScriptNames, loadScript } from "../../components/host/shell";
import { requireTool, run } from "../support/tools";

describe("release bundles on the host (lib.sh ensure_release, unpack_bundle)", () => {
  let root: string;
  let work: string;
  const releases = () => path.join(root, layout.releasesDir);

  before(() => {
    for (const t of ["tar", "gzip", "realpath", "sha256sum"]) requireTool(t);
  });
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "bg-bundle-"));
    work = fs.mkdtempSync(path.join(os.tmpdir(), "bg-bundle-src-"));
    const tools = path.join(root, layout.toolsDir);
    fs.mkdirSync(tools, { recursive: true });
    fs.writeFileSync(path.join(tools, "layout.sh"), renderLayoutSh(layout, { root }));
    for (const f of [...libScriptNames(), "router-nginx.sh"]) fs.writeFileSync(path.join(tools, f), loadScript(f));
  });
  afterEach(() => {
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(work, { recursive: true, force: true });
  });

  /** Runs shell in `work` (bash, errexit); returns status and output. */
  const shIn = (script: string) => run("bash", ["-c", `set -euo pipefail; cd ${work}; ${script}`]);
  const sha = (file: string) => crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");

  /** ensure_release VERSION SHA FILE "" KIND MAX_MB with the real lib.sh. */
  function ensure(version: string, file: string, kind: "bundle" | "binary", maxMb = 5, digest = sha(file)) {
    return run("bash", [
      "-c",
      `set -euo pipefail; . ${root}${layout.toolsDir}/lib.sh; ensure_release "$@"`,
      "ensure",
      version,
      digest,
      file,
      "",
      kind,
      String(maxMb),
    ]);
  }

  /** A tree made by `make` (shell run in a fresh directory), packed with tar -czf from inside it. */
  function bundle(name: string, make: string, tarArgs = "."): string {
    const dir = path.join(work, `${name}.d`);
    fs.mkdirSync(dir);
    const r = shIn(`cd ${name}.d; ${make}; tar -czf ../${name}.tgz ${tarArgs}`);
    assert.strictEqual(r.status, 0, r.stderr);
    return path.join(work, `${name}.tgz`);
  }

  it("a bundle is unpacked whole into VERSION/, readable by the app, writable by nobody else, set-id bits gone", () => {
    const file = bundle(
      "ok",
      "mkdir -p public node_modules/.bin node_modules/x/bin; echo 'console.log(1)' > server.js; echo hi > public/index.html; " +
        "echo x > node_modules/x/bin/x; chmod 4777 node_modules/x/bin/x; ln -s ../x/bin/x node_modules/.bin/x; chmod 0600 server.js",
    );
    const r = ensure("v1", file, "bundle");
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stderr, /release v1 stored \(sha256 [0-9a-f]{64}, bundle\)/);
    const v1 = path.join(releases(), "v1");
    const listing = shIn(`cd ${v1} && find . -printf '%y %m %p\\n' | sort -k3`).stdout;
    assert.strictEqual(
      listing,
      [
        "d 755 .",
        "f 644 ./.bluegreen-sha256",
        "d 755 ./node_modules",
        "d 755 ./node_modules/.bin",
        "l 777 ./node_modules/.bin/x",
        "d 755 ./node_modules/x",
        "d 755 ./node_modules/x/bin",
        "f 755 ./node_modules/x/bin/x",
        "d 755 ./public",
        "f 644 ./public/index.html",
        "f 644 ./server.js",
        "",
      ].join("\n"),
    );
    assert.strictEqual(fs.readFileSync(path.join(v1, ".bluegreen-sha256"), "utf8").trim(), sha(file));
    assert.deepStrictEqual(
      fs.readdirSync(releases()).filter((n) => n.startsWith(".incoming")),
      [],
    );
    // The same version again is a no-op; the same version with other bytes is refused.
    assert.strictEqual(ensure("v1", file, "bundle").status, 0);
    const other = bundle("other", "echo changed > server.js");
    const again = ensure("v1", other, "bundle");
    assert.strictEqual(again.status, 1);
    assert.match(
      again.stderr,
      new RegExp(
        `release v1 is already on the host with sha256 ${sha(file)}, but the artifact is now ${sha(other)}\\.`,
      ),
    );
  });

  it("a single executable is still stored as VERSION/app, and a release stored before bundles still counts", () => {
    const exe = path.join(work, "app");
    fs.writeFileSync(exe, "#!/bin/sh\necho hi\n");
    assert.strictEqual(ensure("v1", exe, "binary").status, 0);
    assert.strictEqual(fs.statSync(path.join(releases(), "v1", "app")).mode & 0o777, 0o755);
    // The old layout: VERSION/app and VERSION/sha256.
    const old = path.join(releases(), "v0");
    fs.mkdirSync(old, { recursive: true });
    fs.copyFileSync(exe, path.join(old, "app"));
    fs.writeFileSync(path.join(old, "sha256"), `${sha(exe)}\n`);
    const r = ensure("v0", exe, "binary");
    assert.strictEqual(r.status, 0, r.stderr);
    assert.strictEqual(r.stderr, "", "nothing stored again");
  });

  const refusals: [string, string, string, string?][] = [
    [
      "a name with ..",
      "echo x > f",
      '"../evil" climbs out of the release directory with ..',
      "-P --transform s,^./f,../evil, ./f",
    ],
    [
      "an absolute name",
      "echo x > f",
      `"${"/etc/bluegreen-test"}" has an absolute path`,
      "-P --transform s,^./f,/etc/bluegreen-test, ./f",
    ],
    ["a link to an absolute path", "ln -s /etc etc", 'the link "./etc" points out of the release directory (-> /etc)'],
    [
      "a relative link out",
      "mkdir d; ln -s ../../x d/up",
      'the link "./d/up" points out of the release directory (-> ../../x)',
    ],
    [
      "a member written through its own link",
      "mkdir sub; ln -s sub l; echo x > f",
      '"./l/f" would be written through the link "l"',
      "./sub ./l -P --transform s,^./f,./l/f, ./f",
    ],
    ["a fifo", "mkfifo pipe", '"./pipe" is a fifo; a bundle holds only files, directories and links'],
    [
      "bluegreen's own record",
      "echo 0 > .bluegreen-sha256",
      '"./.bluegreen-sha256" is a name bluegreen keeps for itself',
    ],
  ];
  for (const [what, make, message, tarArgs] of refusals) {
    it(`refused before anything is unpacked: ${what}`, () => {
      const r = ensure("v9", bundle("bad", make, tarArgs), "bundle");
      assert.strictEqual(r.status, 1, r.stderr);
      assert.strictEqual(r.stderr.trim(), `bluegreen: error: release bundle v9: ${message}; nothing was unpacked`);
      assert.ok(!fs.existsSync(path.join(releases(), "v9")), "no release");
      assert.deepStrictEqual(fs.readdirSync(releases()), [], "no .incoming left");
      assert.ok(!fs.existsSync("/etc/bluegreen-test"));
    });
  }

  it("a chain of links that each look inside but lead out is caught once unpacked, and nothing is installed", () => {
    // d/up -> .. is the root; x -> d/up/.. reads as d, but is the root's parent.
    const r = ensure("v9", bundle("chain", "mkdir d; ln -s .. d/up; ln -s d/up/.. x", "./d ./x"), "bundle");
    assert.strictEqual(r.status, 1);
    assert.strictEqual(
      r.stderr.trim(),
      'bluegreen: error: release bundle v9: the link "x" resolves out of the release directory (-> d/up/..); nothing was installed',
    );
    assert.deepStrictEqual(fs.readdirSync(releases()), []);
  });

  it("a sparse file counts at its listed size, not its size in the archive", () => {
    const r = ensure("v9", bundle("sparse", "truncate -s 3G big", "--sparse ."), "bundle", 2);
    assert.strictEqual(r.status, 1);
    assert.strictEqual(
      r.stderr.trim(),
      "bluegreen: error: release bundle v9: its files add up to more than 2 MiB (bluegreen:bundleMaxMegabytes); nothing was unpacked",
    );
  });

  it("a bundle over bundleMaxMegabytes is refused, naming the key; a corrupt one says so", () => {
    const big = bundle("big", "head -c 3145728 /dev/zero > zeros");
    const r = ensure("v9", big, "bundle", 2);
    assert.strictEqual(r.status, 1);
    assert.strictEqual(
      r.stderr.trim(),
      "bluegreen: error: release bundle v9 unpacks to more than 2 MiB (bluegreen:bundleMaxMegabytes); nothing was unpacked",
    );
    assert.strictEqual(ensure("v9", big, "bundle", 4).status, 0);
    const corrupt = path.join(work, "corrupt.tgz");
    fs.writeFileSync(corrupt, "not gzip");
    const c = ensure("v8", corrupt, "bundle");
    assert.strictEqual(c.status, 1);
    assert.match(
      c.stderr,
      /^bluegreen: error: release bundle v8 is not a readable \.tar\.gz: gzip: stdin: not in gzip format/,
    );
  });
});
