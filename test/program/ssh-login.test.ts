// The program's SSH login as people have it: an agent, ~/.ssh/id_ed25519 (with a passphrase or
// not), or the key in config; what each puts in the connection every host step gets.
import * as assert from "assert";
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { BASE_CONFIG, find, isSecret, plain, ROOT, runProgram } from "../support/harness";
import { requireTool, run } from "../support/tools";

const MULTIPASS = { ...BASE_CONFIG, hostKind: "multipass", sshHost: undefined, sshPrivateKey: undefined };

describe("SSH login without a key in config", () => {
  let home: string;
  let agent: ChildProcess | undefined;
  before(() => {
    requireTool("ssh-keygen", "apt-get install -y openssh-client");
    requireTool("ssh-agent", "apt-get install -y openssh-client");
  });
  beforeEach(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), "bg-login-"));
    fs.mkdirSync(path.join(home, ".ssh"));
  });
  afterEach(() => agent?.kill());
  const keygen = (file: string, pass = "") => {
    assert.strictEqual(run("ssh-keygen", ["-q", "-t", "ed25519", "-N", pass, "-C", "me", "-f", file]).status, 0);
    return fs.readFileSync(`${file}.pub`, "utf8").trim();
  };
  const connection = (r: Awaited<ReturnType<typeof runProgram>>) => find(r, "setup-tools").inputs.connection;
  const cloudInit = (r: Awaited<ReturnType<typeof runProgram>>) => String(plain(find(r, "host-vm").inputs).create);

  it("~/.ssh/id_ed25519: its text, secret, in the connection; its .pub on the new VM", async () => {
    const pub = keygen(path.join(home, ".ssh", "id_ed25519"));
    const r = await runProgram(MULTIPASS, { home });
    assert.ok(isSecret(connection(r)));
    const c = plain(connection(r));
    assert.strictEqual(c.privateKey, fs.readFileSync(path.join(home, ".ssh", "id_ed25519"), "utf8"));
    assert.strictEqual(c.privateKeyPassword, undefined);
    assert.ok(cloudInit(r).includes(JSON.stringify(pub)), "the VM gets the key's .pub");
  });

  it("a passphrase-protected key with sshPrivateKeyPassword: both in the connection, both secret", async () => {
    keygen(path.join(home, ".ssh", "id_ed25519"), "correct horse");
    const r = await runProgram(
      { ...MULTIPASS, sshPrivateKeyPassword: "correct horse" },
      { home, secretKeys: ["bluegreen:sshPrivateKeyPassword"] },
    );
    const c = plain(connection(r));
    assert.strictEqual(c.privateKeyPassword, "correct horse");
    assert.match(c.privateKey, /^-----BEGIN OPENSSH PRIVATE KEY-----/);
    assert.ok(!JSON.stringify(find(r, "setup-tools").inputs.create).includes("correct horse"));
  });

  it("the Quick start: Pulumi.dev.yaml as shipped, nothing set, a key at ~/.ssh/id_ed25519: the program runs", async () => {
    keygen(path.join(home, ".ssh", "id_ed25519"));
    const dev = YAML.parse(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8")).config as Record<
      string,
      unknown
    >;
    const r = await runProgram(dev, { home });
    assert.strictEqual(r.outputs.active, "blue");
    assert.strictEqual(plain(connection(r)).user, "ubuntu");
  });

  it("an agent holding a key: no key text and no socket path in any input; the agent's key on the VM", async () => {
    const key = path.join(home, "deploy");
    const pub = keygen(key);
    const sock = path.join(home, "agent.sock");
    agent = spawn("ssh-agent", ["-D", "-a", sock], { stdio: "ignore" });
    for (let i = 0; i < 50 && !fs.existsSync(sock); i++) await new Promise((res) => setTimeout(res, 50));
    assert.strictEqual(run("ssh-add", [key], { env: { ...process.env, SSH_AUTH_SOCK: sock } }).status, 0);
    const r = await runProgram(MULTIPASS, { home, sshAuthSock: sock });
    const c = plain(connection(r));
    assert.deepStrictEqual(Object.keys(c).sort(), [
      "dialErrorLimit",
      "host",
      "hostKey",
      "perDialTimeout",
      "port",
      "user",
    ]);
    assert.ok(!JSON.stringify(r.resources.map((x) => plain(x.inputs))).includes(sock), "no socket path in inputs");
    assert.ok(cloudInit(r).includes(JSON.stringify(pub)));
  });
});
