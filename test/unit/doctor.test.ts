// npm run doctor: the checks against a project folder, an environment and a PATH of the test's
// own, and the exact report a user reads.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { report } from "../../components/cli/doctor";
import { DoctorContext, diagnose } from "../../components/cli/doctorChecks";
import { isEncryptedKey } from "../../components/host/sshKeys";
import { ROOT } from "../support/harness";
import { requireTool, run } from "../support/tools";

function project(stackFile: string | undefined, tools: readonly string[]): { root: string; bin: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "bg-doctor-"));
  fs.copyFileSync(path.join(ROOT, "Pulumi.yaml"), path.join(root, "Pulumi.yaml"));
  if (stackFile !== undefined) fs.writeFileSync(path.join(root, "Pulumi.dev.yaml"), stackFile);
  const bin = path.join(root, "bin");
  fs.mkdirSync(path.join(root, "node_modules", ".bin"), { recursive: true });
  fs.mkdirSync(bin);
  for (const t of ["pulumi", ...tools]) {
    const dir = t === "pulumi" ? path.join(root, "node_modules", ".bin") : bin;
    fs.writeFileSync(path.join(dir, t), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
  }
  return { root, bin };
}

const versions: Record<string, string> = { pulumi: "v3.248.0", go: "go version go1.22.2 linux/arm64" };
function ctx(p: { root: string; bin: string }, env: NodeJS.ProcessEnv, arch = "x64"): DoctorContext {
  return {
    root: p.root,
    stack: "dev",
    env: { PATH: p.bin, HOME: p.root, ...env },
    run: (cmd) => ({ status: 0, stdout: versions[path.basename(cmd)] ?? "", stderr: "" }),
    arch,
    nodeVersion: "v20.20.2",
  };
}

describe("npm run doctor", () => {
  it("the shipped dev stack on an arm64 laptop with nothing set up: every missing thing, with what to do", () => {
    const p = project(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8"), []);
    assert.strictEqual(
      report(diagnose(ctx(p, {}, "arm64"))),
      [
        "ok   node v20.20.2",
        "ok   pulumi v3.248.0",
        "ok   backend file://~",
        "FAIL no secrets passphrase",
        "       -> the stack's secrets are encrypted with a passphrase: export PULUMI_CONFIG_PASSPHRASE='…' (or PULUMI_CONFIG_PASSPHRASE_FILE)",
        "FAIL hostKind multipass, but multipass is not on PATH",
        "       -> install it (https://canonical.com/multipass/install; Ubuntu: sudo snap install multipass), or set hostKind to ssh or hetzner",
        "FAIL hostArch is amd64, but multipass runs VMs of this machine's architecture (arm64)",
        "       -> pulumi config set hostArch arm64",
        "FAIL blueArtifact and greenArtifact build the demo app with Go, and go is not on PATH",
        "       -> install Go (https://go.dev/doc/install; Debian/Ubuntu: sudo apt install golang-go), or point the artifacts at a file or URL",
        "FAIL no SSH key the program can use",
        `       -> no SSH key: bluegreen:sshPrivateKey is unset, no ssh agent runs (SSH_AUTH_SOCK is unset), and ${p.root}/.ssh/id_ed25519 does not exist. Add your key to an agent (ssh-add), make one (ssh-keygen -t ed25519), or set bluegreen:sshKeyFile`,
        "5 to fix before pulumi up",
      ].join("\n"),
    );
  });

  it("the same stack once set up: ready", () => {
    const stack =
      fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8") +
      "  bluegreen:hostArch: arm64\n  bluegreen:sshPrivateKey:\n    secure: v1:abc\nencryptionsalt: v1:salt\n";
    const p = project(stack, ["multipass", "go"]);
    const checks = diagnose(ctx(p, { PULUMI_CONFIG_PASSPHRASE: "x" }, "arm64"));
    assert.strictEqual(
      report(checks),
      [
        "ok   node v20.20.2",
        "ok   pulumi v3.248.0",
        "ok   backend file://~",
        "ok   secrets passphrase: PULUMI_CONFIG_PASSPHRASE is set",
        `ok   multipass at ${p.bin}/multipass`,
        "ok   go version go1.22.2 linux/arm64 (builds blue and green; the same Go gives the same bytes)",
        "ok   ssh key: sshPrivateKey is in the stack's config, encrypted",
        "ready: npx pulumi up",
      ].join("\n"),
    );
  });

  it("hetzner without a token, a plain-text key, and no stack file", () => {
    const p = project("config:\n  bluegreen:hostKind: hetzner\n  bluegreen:sshPrivateKey: plain\n", []);
    const lines = report(diagnose(ctx(p, { PULUMI_BACKEND_URL: "s3://state" }))).split("\n");
    assert.deepStrictEqual(lines.slice(2), [
      "ok   backend s3://state (PULUMI_BACKEND_URL)",
      "FAIL no secrets passphrase",
      "       -> the stack's secrets are encrypted with a passphrase: export PULUMI_CONFIG_PASSPHRASE='…' (or PULUMI_CONFIG_PASSPHRASE_FILE)",
      "FAIL hostKind hetzner, but no Hetzner API token",
      "       -> pulumi config set --secret hcloud:token <token> (or export HCLOUD_TOKEN)",
      "FAIL blueArtifact and greenArtifact build the demo app with Go, and go is not on PATH",
      "       -> install Go (https://go.dev/doc/install; Debian/Ubuntu: sudo apt install golang-go), or point the artifacts at a file or URL",
      "FAIL sshPrivateKey is in the stack's config in plain text",
      "       -> set it again with --secret",
      "4 to fix before pulumi up",
    ]);
    // A KMS secrets provider needs no passphrase; a stack named org/project/name has Pulumi.name.yaml.
    const kms = project("secretsprovider: awskms://alias/x\nconfig:\n  bluegreen:hostKind: ssh\n", []);
    const named = { ...ctx(kms, { PULUMI_BACKEND_URL: "s3://state" }), stack: "acme/bluegreen/dev" };
    assert.ok(!report(diagnose(named)).includes("passphrase"));
    const none = project(undefined, []);
    assert.deepStrictEqual(
      report(diagnose(ctx(none, {})))
        .split("\n")
        .slice(2),
      [
        "FAIL no Pulumi.dev.yaml",
        "       -> npx pulumi stack init dev (or pass --stack NAME)",
        "1 to fix before pulumi up",
      ],
    );
  });

  it("tells a passphrase-protected key from a plain one (keys made by ssh-keygen)", () => {
    requireTool("ssh-keygen", "apt-get install -y openssh-client");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bg-keys-"));
    for (const [name, pass] of [
      ["plain", ""],
      ["locked", "correct horse"],
    ]) {
      const r = run("ssh-keygen", ["-q", "-t", "ed25519", "-N", pass, "-f", path.join(dir, name)]);
      assert.strictEqual(r.status, 0, r.stderr);
    }
    assert.strictEqual(isEncryptedKey(fs.readFileSync(path.join(dir, "plain"), "utf8")), false);
    assert.strictEqual(isEncryptedKey(fs.readFileSync(path.join(dir, "locked"), "utf8")), true);
  });

  it("no key in config: the key file the program will read, as the program chooses it", () => {
    requireTool("ssh-keygen", "apt-get install -y openssh-client");
    const p = project("config:\n  bluegreen:hostKind: ssh\n  bluegreen:sshHost: 203.0.113.10\n", []);
    fs.mkdirSync(path.join(p.root, ".ssh"));
    const file = path.join(p.root, ".ssh", "id_ed25519");
    assert.strictEqual(run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", file]).status, 0);
    const lines = report(diagnose(ctx(p, {}))).split("\n");
    assert.ok(lines.includes(`ok   ssh key: ${file}`), lines.join("\n"));
  });

  it("--help prints the usage and exits 0; an unknown option exits 2 naming it", () => {
    const cli = (args: string[]) =>
      run("node", ["-r", "ts-node/register/transpile-only", "components/cli/doctor.ts", ...args], { cwd: ROOT });
    const help = cli(["--help"]);
    assert.strictEqual(help.status, 0);
    assert.match(help.stdout, /^usage: npm run doctor \[-- --stack NAME\]\n/);
    const bad = cli(["--stak", "dev"]);
    assert.strictEqual(bad.status, 2);
    assert.match(bad.stderr, /^doctor: Unknown option '--stak'/);
  });
});
