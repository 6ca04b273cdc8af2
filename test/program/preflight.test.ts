// The program's pre-flight: the local tools the config needs, then the builds, before any
// resource is registered. A program that throws after registering the Host may still see the
// engine create the VM or server; these tests hold that nothing is registered at all.
import * as assert from "assert";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { BASE_CONFIG, FAKE_PUB, lastRegistrations, ROOT, runProgram } from "../support/harness";

const MULTIPASS = { ...BASE_CONFIG, hostKind: "multipass", sshHost: undefined, sshPublicKey: FAKE_PUB };

/** A PATH with bash and the basic tools, and none of multipass and go. */
function bareBin(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bg-path-"));
  for (const tool of ["bash", "env", "mkdir", "rm", "mv", "sh"]) {
    const real = ["/usr/bin", "/bin"].map((d) => path.join(d, tool)).find((f) => fs.existsSync(f));
    if (real) fs.symlinkSync(real, path.join(dir, tool));
  }
  return dir;
}

describe("pre-flight: local tools and builds come before any resource", () => {
  it("multipass not on PATH: the exact error, and nothing registered", async () => {
    await assert.rejects(runProgram(MULTIPASS, { path: bareBin() }), {
      message:
        'invalid bluegreen stack config:\n  - bluegreen:hostKind is "multipass", but the multipass command is not on PATH: install it (https://canonical.com/multipass/install; Ubuntu: sudo snap install multipass), or set hostKind to ssh or hetzner',
    });
    assert.deepStrictEqual(lastRegistrations, []);
  });

  it("the default build without go: the exact error, every missing tool at once, nothing registered", async () => {
    await assert.rejects(
      // Versions never built here: one built before (dist/releases, by another suite) needs no Go.
      runProgram(
        {
          ...MULTIPASS,
          blueArtifact: "build",
          greenArtifact: "build",
          blueVersion: `never-built-${process.pid}`,
          greenVersion: `never-built-${process.pid}`,
        },
        { path: bareBin() },
      ),
      {
        message:
          'invalid bluegreen stack config:\n  - bluegreen:hostKind is "multipass", but the multipass command is not on PATH: install it (https://canonical.com/multipass/install; Ubuntu: sudo snap install multipass), or set hostKind to ssh or hetzner\n  - bluegreen:blueArtifact is "build", and the default bluegreen:buildCommand builds the demo app in app/ with Go, but go is not on PATH: install Go (https://go.dev/doc/install; Debian/Ubuntu: sudo apt install golang-go), or set blueArtifact and greenArtifact to a file or an https:// URL, or buildCommand to your own build',
      },
    );
    assert.deepStrictEqual(lastRegistrations, []);
  });

  it("a failed build stops the program before the Host is registered", async () => {
    await assert.rejects(
      runProgram({
        ...MULTIPASS,
        greenVersion: "preflight-never-built",
        greenArtifact: "build",
        buildCommand: "echo no compiler here >&2; exit 3",
      }),
      /bluegreen:greenArtifact is "build", but bluegreen:buildCommand failed for preflight-never-built \(linux\/amd64\) with exit 3: no compiler here/,
    );
    assert.deepStrictEqual(lastRegistrations, []);
  });

  it("a preview without multipass goes on (no VM is launched), and only up stops", async () => {
    const r = await runProgram(MULTIPASS, { path: bareBin(), preview: true });
    assert.strictEqual(r.registrations[0].urn, "urn:pulumi:dev::bluegreen::bluegreen:index:Host::host");
  });

  it("versions built here before need no Go: they are reused from dist/releases", async () => {
    const cmd = 'bash app/build.sh "$BLUEGREEN_VERSION" "$BLUEGREEN_ARCH" "$BLUEGREEN_OUT"';
    const hash = crypto.createHash("sha256").update(cmd).digest("hex").slice(0, 16);
    const version = `preflight-built-${process.pid}`;
    const dir = path.join(ROOT, "dist", "releases", "bluegreen", version);
    fs.mkdirSync(dir, { recursive: true });
    const out = path.join(dir, "app-linux-amd64");
    fs.copyFileSync(path.join(ROOT, "test", "fixtures", "app-v1"), out);
    const sha = crypto.createHash("sha256").update(fs.readFileSync(out)).digest("hex");
    fs.writeFileSync(`${out}.sha256`, `${sha} ${hash}\n`);
    try {
      const config = {
        ...BASE_CONFIG,
        blueVersion: version,
        greenVersion: version,
        blueArtifact: "build",
        greenArtifact: "build",
      };
      const r = await runProgram(config, { path: bareBin() });
      assert.ok(r.registrations.length > 0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("with the tools present the same stack registers the host first", async () => {
    const run = await runProgram(MULTIPASS);
    assert.strictEqual(run.registrations[0].urn, "urn:pulumi:dev::bluegreen::bluegreen:index:Host::host");
  });
});
