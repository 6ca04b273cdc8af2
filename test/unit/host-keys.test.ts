// The host's SSH key, which every step pins: the key made for a Hetzner server, its cloud-init
// text, the first-use scan (local-host-key-scan.sh) and the program's check of a changed key.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { fingerprint, hostKeyFromSeed, hostKeyLine, verifyHostKey } from "../../components/host/hostKeys";
import { renderHostKeyUserData } from "../../components/host/installer";
import { loadScript } from "../../components/host/shell";
import { requireTool, run } from "../support/tools";

const SEED = Buffer.alloc(32, 7);
const OTHER = hostKeyFromSeed(Buffer.alloc(32, 9)).publicKey;

/** A folder with an ssh-keyscan that prints `lines` (its output format: `host type base64`), or exits 1 when empty. */
function fakeKeyscan(lines: string[]): string {
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), "bg-keyscan-"));
  const body = lines.length
    ? `printf '%s\\n' ${lines.map((l) => `'${l}'`).join(" ")}\necho "$*" >>"$(dirname "$0")/calls"\n`
    : `echo "$*" >>"$(dirname "$0")/calls"\nexit 1\n`;
  fs.writeFileSync(path.join(bin, "ssh-keyscan"), `#!/usr/bin/env bash\nset -euo pipefail\n${body}`, { mode: 0o755 });
  return bin;
}

async function withPath<T>(bin: string, fn: () => Promise<T>): Promise<T> {
  const before = process.env.PATH;
  process.env.PATH = `${bin}${path.delimiter}${before}`;
  try {
    return await fn();
  } finally {
    process.env.PATH = before;
  }
}

describe("host keys", () => {
  describe("the key made for a Hetzner server", () => {
    it("is a key OpenSSH reads: ssh-keygen -y derives the same public line, and the fingerprints agree", () => {
      requireTool("ssh-keygen");
      const pair = hostKeyFromSeed(SEED);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bg-hostkey-"));
      try {
        const file = path.join(dir, "ssh_host_ed25519_key");
        fs.writeFileSync(file, pair.privateKey, { mode: 0o600 });
        const derived = run("ssh-keygen", ["-y", "-f", file]);
        assert.strictEqual(derived.status, 0, derived.stderr);
        assert.strictEqual(hostKeyLine(derived.stdout, "ssh-keygen -y"), pair.publicKey);
        const fp = run("ssh-keygen", ["-l", "-f", file]);
        assert.strictEqual(fp.stdout.split(/\s+/)[1], fingerprint(pair.publicKey));
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it("is the same for the same seed (state keeps the seed, so the key never moves), another for another", () => {
      assert.deepStrictEqual(hostKeyFromSeed(SEED), hostKeyFromSeed(Buffer.from(SEED)));
      assert.notStrictEqual(hostKeyFromSeed(SEED).publicKey, OTHER);
      assert.throws(() => hostKeyFromSeed(Buffer.alloc(16)), /an ed25519 seed is 32 bytes, not 16/);
    });

    it("reaches cloud-init as ssh_keys, with the image's own keys deleted first", () => {
      const pair = hostKeyFromSeed(SEED);
      const text = renderHostKeyUserData(pair);
      assert.ok(text.startsWith("#cloud-config\n"), text);
      assert.deepStrictEqual(YAML.parse(text), {
        ssh_deletekeys: true,
        ssh_keys: { ed25519_private: pair.privateKey, ed25519_public: pair.publicKey },
        runcmd: [["sh", "-c", "systemctl try-reload-or-restart ssh.service sshd.service || true"]],
      });
    });
  });

  describe("hostKeyLine", () => {
    it("keeps type and key, drops a comment; anything else is an error naming where it came from", () => {
      assert.strictEqual(hostKeyLine(`  ${OTHER} root@box\n`, "x"), OTHER);
      assert.throws(
        () => hostKeyLine("no key here", "host-ssh-hostkey's output"),
        /^Error: host-ssh-hostkey's output is not an SSH public key line: "no key here"$/,
      );
    });
  });

  describe("verifyHostKey: the program's check before any step", () => {
    const pair = hostKeyFromSeed(SEED);

    it("the same key: no error; ssh-keyscan was asked for that key's type on the SSH port", async () => {
      const bin = fakeKeyscan([`203.0.113.10 ${pair.publicKey}`]);
      await withPath(bin, () => verifyHostKey("203.0.113.10", 2222, pair.publicKey));
      assert.strictEqual(fs.readFileSync(path.join(bin, "calls"), "utf8"), "-T 5 -t ed25519 -p 2222 203.0.113.10\n");
    });

    it("a host that does not answer is not refused (the provider's own check still stands)", async () => {
      await withPath(fakeKeyscan([]), () => verifyHostKey("203.0.113.10", 22, pair.publicKey));
    });

    it("another key: refused, with both fingerprints and what to do", async () => {
      await assert.rejects(
        withPath(fakeKeyscan([`203.0.113.10 ${OTHER}`]), () => verifyHostKey("203.0.113.10", 22, pair.publicKey)),
        {
          message:
            `bluegreen: error: the SSH host key of 203.0.113.10:22 has changed: this stack knows ssh-ed25519 ${fingerprint(pair.publicKey)}, ` +
            `the host now shows ${fingerprint(OTHER)}. Nothing was run on it. If the server was reinstalled or its keys ` +
            `regenerated, check the new key on its console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then set it: ` +
            `pulumi config set bluegreen:sshHostKey '${OTHER}'. Otherwise someone may be in between: do not go on.`,
        },
      );
    });
  });

  describe("local-host-key-scan.sh: first use, or the key the program gave the server", () => {
    const pair = hostKeyFromSeed(SEED);
    /** Runs the script as the local provider does: sh -c, the script on stdin. */
    const scan = (bin: string, env: Record<string, string>) =>
      run("/bin/sh", ["-c", "bash -s"], {
        input: loadScript("local-host-key-scan.sh"),
        env: { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH}`, PORT: "22", ...env },
      });

    it("first use: prints the key the host shows (ed25519 first) and says its fingerprint on stderr", () => {
      requireTool("ssh-keygen");
      const rsa = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7";
      const r = scan(fakeKeyscan([`# 10.0.0.1:22 SSH-2.0-OpenSSH_9.2`, `10.0.0.1 ${rsa}`, `10.0.0.1 ${OTHER}`]), {
        HOST: "10.0.0.1",
        WAIT_SECONDS: "5",
      });
      assert.strictEqual(r.status, 0, r.stderr);
      assert.strictEqual(r.stdout, `${OTHER}\n`);
      assert.strictEqual(
        r.stderr,
        `bluegreen: recorded the SSH host key of 10.0.0.1:22 on first use: ssh-ed25519 ${fingerprint(OTHER)}. ` +
          "Check it on the server's console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub); every later step refuses any other key.\n",
      );
    });

    it("pinned: the host's key is the one it was given, so it is printed", () => {
      const r = scan(fakeKeyscan([`10.0.0.1 ${pair.publicKey}`]), {
        HOST: "10.0.0.1",
        WAIT_SECONDS: "5",
        PINNED: pair.publicKey,
      });
      assert.strictEqual(r.status, 0, r.stderr);
      assert.strictEqual(r.stdout, `${pair.publicKey}\n`);
      assert.strictEqual(r.stderr, "");
    });

    it("pinned, and the host shows another key to the end of the wait: refused, both fingerprints named", () => {
      requireTool("ssh-keygen");
      const r = scan(fakeKeyscan([`10.0.0.1 ${OTHER}`]), {
        HOST: "10.0.0.1",
        WAIT_SECONDS: "1",
        PINNED: pair.publicKey,
      });
      assert.strictEqual(r.status, 1);
      assert.strictEqual(r.stdout, "");
      assert.strictEqual(
        r.stderr,
        `bluegreen: error: 10.0.0.1:22 shows the SSH host key ssh-ed25519 ${fingerprint(OTHER)}, not the key this stack gave it ` +
          `(${fingerprint(pair.publicKey)}); nothing was run on it. If you rebuilt the server yourself, check the key on its console ` +
          "and set it: pulumi config set bluegreen:sshHostKey '<that key line>'. Otherwise someone may be in between: do not go on.\n",
      );
    });

    it("no answer to the end of the wait: an error naming the port key", () => {
      const r = scan(fakeKeyscan([]), { HOST: "10.0.0.1", WAIT_SECONDS: "1" });
      assert.strictEqual(r.status, 1);
      assert.strictEqual(
        r.stderr,
        "bluegreen: error: no SSH answer from 10.0.0.1:22 in 1 s (ssh-keyscan); check that the host is up and that bluegreen:sshPort is its SSH port\n",
      );
    });
  });
});
