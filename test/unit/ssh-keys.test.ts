// Which key the host steps log in with, against real keys from ssh-keygen and a real ssh-agent.
import * as assert from "assert";
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { chooseSshKey } from "../../components/host/sshKeys";
import { requireTool, run } from "../support/tools";

describe("the SSH key: config, else an agent, else ~/.ssh/id_ed25519", () => {
  let home: string;
  let agent: ChildProcess | undefined;
  const sock = () => path.join(home, "agent.sock");

  before(() => {
    requireTool("ssh-keygen", "apt-get install -y openssh-client");
    requireTool("ssh-agent", "apt-get install -y openssh-client");
  });
  beforeEach(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), "bg-ssh-"));
    fs.mkdirSync(path.join(home, ".ssh"));
  });
  afterEach(() => agent?.kill());

  const keygen = (file: string, pass = "") => {
    const r = run("ssh-keygen", ["-q", "-t", "ed25519", "-N", pass, "-C", "me@laptop", "-f", file]);
    assert.strictEqual(r.status, 0, r.stderr);
    return fs.readFileSync(`${file}.pub`, "utf8").trim();
  };
  async function startAgent(withKey?: string): Promise<void> {
    agent = spawn("ssh-agent", ["-D", "-a", sock()], { stdio: "ignore" });
    for (let i = 0; i < 50 && !fs.existsSync(sock()); i++) await new Promise((r) => setTimeout(r, 50));
    if (withKey)
      assert.strictEqual(run("ssh-add", [withKey], { env: { ...process.env, SSH_AUTH_SOCK: sock() } }).status, 0);
  }

  it("no key anywhere: one error that names every place it looked and what to do", () => {
    const r = chooseSshKey({ env: { HOME: home } });
    assert.deepStrictEqual(r.problems, [
      `no SSH key: bluegreen:sshPrivateKey is unset, no ssh agent runs (SSH_AUTH_SOCK is unset), and ${home}/.ssh/id_ed25519 does not exist. Add your key to an agent (ssh-add), make one (ssh-keygen -t ed25519), or set bluegreen:sshKeyFile`,
    ]);
  });

  it("~/.ssh/id_ed25519 without a passphrase: read, with its .pub", () => {
    const pub = keygen(path.join(home, ".ssh", "id_ed25519"));
    const { choice } = chooseSshKey({ env: { HOME: home } });
    assert.strictEqual(choice?.via, "file");
    assert.strictEqual(choice?.publicKey, pub);
    assert.match(choice?.via === "file" ? choice.privateKey : "", /^-----BEGIN OPENSSH PRIVATE KEY-----/);
  });

  it("a passphrase-protected key: refused without the passphrase, taken with it", () => {
    keygen(path.join(home, ".ssh", "id_ed25519"), "correct horse");
    assert.deepStrictEqual(chooseSshKey({ env: { HOME: home } }).problems, [
      `${home}/.ssh/id_ed25519 is passphrase-protected: pulumi config set --secret sshPrivateKeyPassword <passphrase>, or add the key to an ssh agent (ssh-add) and leave sshPrivateKey unset`,
    ]);
    assert.strictEqual(chooseSshKey({ env: { HOME: home }, password: "correct horse" }).choice?.via, "file");
  });

  it("an agent holding a key wins over the file, and the connection gets no key text", async () => {
    const key = path.join(home, "deploy");
    const pub = keygen(key, "");
    keygen(path.join(home, ".ssh", "id_ed25519"));
    await startAgent(key);
    const { choice } = chooseSshKey({ env: { HOME: home, SSH_AUTH_SOCK: sock() } });
    assert.deepStrictEqual(choice, { via: "agent", socket: sock(), publicKey: pub });
  });

  it("an agent with no key falls through to the file; the config key beats both", async () => {
    keygen(path.join(home, ".ssh", "id_ed25519"));
    await startAgent();
    assert.strictEqual(chooseSshKey({ env: { HOME: home, SSH_AUTH_SOCK: sock() } }).choice?.via, "file");
    const configKey = fs.readFileSync(path.join(home, ".ssh", "id_ed25519"), "utf8");
    assert.strictEqual(chooseSshKey({ configKey, env: { HOME: home, SSH_AUTH_SOCK: sock() } }).choice?.via, "config");
  });
});
