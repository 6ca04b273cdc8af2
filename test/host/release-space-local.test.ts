// Storing a release on a full disk: the real lib.sh (ensure_release) with its releases
// directory on a small tmpfs mounted for the test (root only). What a user relies on: a
// store that does not fit is refused before anything is written, with the filesystem, the
// free space and the space needed; nothing is left behind to keep the disk full, a directory
// left by an earlier, killed store is removed, and a retry once there is room succeeds.
import * as assert from "assert";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { layout, renderLayoutSh } from "../../components/host/layout";
import { libScriptNames, loadScript } from "../../components/host/shell";
import { requireTool, run } from "../support/tools";

describe("storing a release on a full disk (lib.sh ensure_release on a 128 MiB tmpfs)", function () {
  this.timeout(120_000);
  let root: string;
  let work: string;
  let releases: string;
  const MiB = 1 << 20;
  const sha = (file: string) => crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
  const left = () => fs.readdirSync(releases).sort();
  /** Free bytes on the tmpfs now, as df counts them. */
  const free = () => Number(run("df", ["--output=avail", "-B1", releases]).stdout.trim().split("\n").pop());
  const fill = (file: string, mib: number) => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const r = run("sh", ["-c", `head -c ${mib}M /dev/zero >${file}`]);
    assert.strictEqual(r.status, 0, r.stderr);
  };
  function ensure(version: string, file: string, kind: "binary" | "bundle" = "binary", maxMb = 1024) {
    return run("bash", [
      "-c",
      `set -euo pipefail; umask 077; . ${root}${layout.toolsDir}/lib.sh; ensure_release "$@"`,
      "ensure",
      version,
      sha(file),
      file,
      "",
      kind,
      String(maxMb),
    ]);
  }

  before(() => {
    if (process.getuid?.() !== 0) throw new Error("this test mounts a tmpfs: run it as root");
    for (const t of ["mount", "umount", "df", "tar", "gzip"]) requireTool(t);
    root = fs.mkdtempSync(path.join(os.tmpdir(), "bg-space-"));
    work = fs.mkdtempSync(path.join(os.tmpdir(), "bg-space-src-"));
    const tools = path.join(root, layout.toolsDir);
    fs.mkdirSync(tools, { recursive: true });
    fs.writeFileSync(path.join(tools, "layout.sh"), renderLayoutSh(layout, { root }));
    for (const f of [...libScriptNames(), "router-nginx.sh"]) fs.writeFileSync(path.join(tools, f), loadScript(f));
    releases = path.join(root, layout.releasesDir);
    fs.mkdirSync(releases, { recursive: true });
    const m = run("mount", ["-t", "tmpfs", "-o", "size=128m,mode=0755", "tmpfs", releases]);
    assert.strictEqual(m.status, 0, m.stderr);
    // 40 MiB that does not compress: the "binary" release.
    const r = run("sh", ["-c", `head -c 40M /dev/urandom >${work}/app`]);
    assert.strictEqual(r.status, 0, r.stderr);
  });
  after(() => {
    if (releases) run("umount", [releases]);
    if (root) fs.rmSync(root, { recursive: true, force: true });
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });
  afterEach(() => {
    for (const f of fs.readdirSync(releases)) fs.rmSync(path.join(releases, f), { recursive: true, force: true });
  });

  it("an artifact that does not fit (with the margin) is refused before the copy, nothing is left; once freed, the retry stores it", () => {
    fill(path.join(releases, "filler"), 96);
    assert.strictEqual(free(), 32 * MiB);
    const r = ensure("v1", `${work}/app`);
    assert.strictEqual(r.status, 1);
    assert.strictEqual(
      r.stderr,
      `bluegreen: error: not enough free space on ${releases} for release v1's artifact (40 MiB): 32 MiB free, 104 MiB needed with a 64 MiB margin; nothing was stored and the slots are untouched. Free space on ${releases} (releases no slot uses are in ${releases}), then run pulumi up again.\n`,
    );
    assert.deepStrictEqual(left(), ["filler"], "no .incoming.* stays behind to keep the disk full");
    assert.strictEqual(free(), 32 * MiB);

    fs.rmSync(path.join(releases, "filler"));
    const retry = ensure("v1", `${work}/app`);
    assert.strictEqual(retry.status, 0, retry.stderr);
    assert.match(retry.stderr, /^bluegreen: release v1 stored \(sha256 [0-9a-f]{64}, binary\)\n$/);
    assert.deepStrictEqual(left(), ["v1"]);
    assert.strictEqual(sha(path.join(releases, "v1", "app")), sha(`${work}/app`));
    assert.strictEqual(fs.statSync(path.join(releases, "v1", "app")).mode & 0o777, 0o755);
    assert.strictEqual(
      free(),
      128 * MiB - 40 * MiB - 4096,
      "the artifact is stored once (a rename, not a second copy)",
    );
  });

  it("an .incoming.* directory left by a killed store goes first, so the space it held is free again", () => {
    fill(path.join(releases, ".incoming.KILLED", "artifact"), 96);
    const r = ensure("v2", `${work}/app`);
    assert.strictEqual(r.status, 0, r.stderr);
    assert.strictEqual(
      r.stderr.replace(/[0-9a-f]{64}/, "SHA"),
      "bluegreen: removed .incoming.KILLED, left by an interrupted store\nbluegreen: release v2 stored (sha256 SHA, binary)\n",
    );
    assert.deepStrictEqual(left(), ["v2"]);
  });

  it("a bundle whose unpacked size does not fit is refused before tar writes anything, nothing is left", () => {
    const src = path.join(work, "b");
    fill(path.join(src, "data.bin"), 70);
    const t = run("tar", ["-czf", `${work}/b.tgz`, "-C", src, "."]);
    assert.strictEqual(t.status, 0, t.stderr);
    const r = ensure("v3", `${work}/b.tgz`, "bundle");
    assert.strictEqual(r.status, 1);
    assert.match(
      r.stderr,
      new RegExp(
        `^bluegreen: error: not enough free space on ${releases} for release bundle v3 unpacked \\(71 MiB\\): 127 MiB free, 135 MiB needed with a 64 MiB margin; nothing was stored and the slots are untouched\\.`,
      ),
    );
    assert.deepStrictEqual(left(), []);
  });

  it("a disk that fills during the unpack (no inodes left) fails the store and leaves nothing behind", () => {
    const src = path.join(work, "many");
    fs.mkdirSync(src);
    const mk = run("sh", ["-c", `cd ${src} && for i in $(seq 1 300); do : >f$i; done && tar -czf ${work}/many.tgz .`]);
    assert.strictEqual(mk.status, 0, mk.stderr);
    const limit = run("mount", ["-o", "remount,nr_inodes=100", releases]);
    assert.strictEqual(limit.status, 0, limit.stderr);
    try {
      const r = ensure("v4", `${work}/many.tgz`, "bundle");
      assert.strictEqual(r.status, 1);
      assert.match(r.stderr, /No space left on device/);
      assert.match(
        r.stderr,
        /\nbluegreen: error: release bundle v4 could not be unpacked \(see tar's message above\)\n$/,
      );
      assert.deepStrictEqual(left(), [], "the half-unpacked .incoming.* is gone");
    } finally {
      run("mount", ["-o", "remount,nr_inodes=0", releases]);
    }
    const retry = ensure("v4", `${work}/many.tgz`, "bundle");
    assert.strictEqual(retry.status, 0, retry.stderr);
    assert.strictEqual(fs.readdirSync(path.join(releases, "v4")).length, 301);
  });
});
