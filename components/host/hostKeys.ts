// The host's own SSH key, which every host step pins (the command provider checks it only
// when the connection has `hostKey`: pulumi-command v1.2.1 provider/pkg/provider/remote/
// connection.go, ssh.FixedHostKey with HostKeyAlgorithms of that key's type; without it,
// InsecureIgnoreHostKey). Where it comes from:
// - sshHostKey, when the stack's config sets it;
// - hetzner: the program makes the server's ed25519 key from a secret seed and gives it to
//   cloud-init (ssh_keys), so the key is known before the server first answers;
// - multipass: read inside the VM over multipass's own channel (local-multipass-launch.sh);
// - otherwise: recorded on first use (local-host-key-scan.sh), kept in the stack's state.
// A key that differs later is refused before any step runs (verifyHostKey).
import { spawn } from "child_process";
import * as crypto from "crypto";

/** An ed25519 host key: the private key in OpenSSH's format, and its public line. */
export interface HostKeyPair {
  readonly privateKey: string;
  readonly publicKey: string;
}

const sshString = (b: Buffer | string): Buffer => {
  const body = typeof b === "string" ? Buffer.from(b) : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
};
const uint32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

/** The ed25519 key pair of a 32-byte seed, as sshd reads it (PROTOCOL.key, openssh-key-v1, unencrypted). */
export function hostKeyFromSeed(seed: Buffer, comment = "bluegreen-host"): HostKeyPair {
  if (seed.length !== 32) throw new Error(`an ed25519 seed is 32 bytes, not ${seed.length}`);
  // PKCS#8 wrapping of a raw ed25519 seed (RFC 8410).
  const pkcs8 = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]);
  const priv = crypto.createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" });
  const pub = crypto.createPublicKey(priv).export({ format: "der", type: "spki" }).subarray(-32);
  const blob = Buffer.concat([sshString("ssh-ed25519"), sshString(pub)]);
  // The check integer only has to repeat itself; derived from the seed, so the text is stable.
  const check = crypto.createHash("sha256").update(seed).digest().readUInt32BE(0);
  let secret = Buffer.concat([
    uint32(check),
    uint32(check),
    sshString("ssh-ed25519"),
    sshString(pub),
    sshString(Buffer.concat([seed, pub])),
    sshString(comment),
  ]);
  const pad = (8 - (secret.length % 8)) % 8;
  secret = Buffer.concat([secret, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const body = Buffer.concat([
    Buffer.from("openssh-key-v1\0"),
    sshString("none"),
    sshString("none"),
    sshString(""),
    uint32(1),
    sshString(blob),
    sshString(secret),
  ]).toString("base64");
  const lines = body.match(/.{1,70}/g) ?? [];
  return {
    privateKey: ["-----BEGIN OPENSSH PRIVATE KEY-----", ...lines, "-----END OPENSSH PRIVATE KEY-----", ""].join("\n"),
    publicKey: `ssh-ed25519 ${blob.toString("base64")}`,
  };
}

const KEY_LINE = /^(ssh-ed25519|ecdsa-sha2-nistp(?:256|384|521)|ssh-rsa) ([A-Za-z0-9+/]+={0,3})$/;

/** `type base64` from a key line (a comment and surrounding space dropped); throws on anything else. */
export function hostKeyLine(text: string, what: string): string {
  const line = text.trim().split(/\s+/).slice(0, 2).join(" ");
  if (!KEY_LINE.test(line)) throw new Error(`${what} is not an SSH public key line: ${JSON.stringify(text.trim())}`);
  return line;
}

/** The key's SHA256 fingerprint, as `ssh-keygen -l` prints it. */
export function fingerprint(keyLine: string): string {
  const blob = Buffer.from(keyLine.trim().split(/\s+/)[1] ?? "", "base64");
  return `SHA256:${crypto.createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/**
 * Refuses a host whose SSH key is not `expected`, asking it with ssh-keyscan for that key's
 * type. A host that does not answer (down, not yet up, no ssh-keyscan here) is not refused:
 * the steps then fail in the provider's words (it checks the same key: connection.hostKey).
 */
export async function verifyHostKey(host: string, port: number, expected: string, timeoutSeconds = 5): Promise<void> {
  const type = expected.split(/\s+/)[0];
  const stdout = await keyscan(
    ["-T", String(timeoutSeconds), "-t", keyscanType(type), "-p", String(port), host],
    timeoutSeconds,
  );
  const seen = stdout
    .split("\n")
    .map((l) => l.trim().split(/\s+/).slice(1, 3).join(" "))
    .filter((l) => KEY_LINE.test(l));
  if (seen.length === 0 || seen.includes(expected.trim().split(/\s+/).slice(0, 2).join(" "))) return;
  throw new Error(
    `bluegreen: error: the SSH host key of ${host}:${port} has changed: this stack knows ${type} ${fingerprint(expected)}, ` +
      `the host now shows ${fingerprint(seen[0])}. Nothing was run on it. If the server was reinstalled or its keys ` +
      `regenerated, check the new key on its console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then set it: ` +
      `pulumi config set bluegreen:sshHostKey '${seen[0]}'. Otherwise someone may be in between: do not go on.`,
  );
}

/** ssh-keyscan's stdout, or "" when it cannot run, fails or outlives its own timeout. */
function keyscan(args: string[], timeoutSeconds: number): Promise<string> {
  return new Promise((resolve) => {
    let out = "";
    const child = spawn("ssh-keyscan", args, { stdio: ["ignore", "pipe", "ignore"] });
    const timer = setTimeout(() => child.kill("SIGKILL"), (timeoutSeconds + 2) * 1000);
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.on("error", () => {
      clearTimeout(timer);
      resolve("");
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve(code === 0 ? out : "");
    });
  });
}

/** ssh-keyscan's name for a key type (-t). */
function keyscanType(type: string): string {
  if (type === "ssh-ed25519") return "ed25519";
  if (type === "ssh-rsa") return "rsa";
  return "ecdsa";
}
