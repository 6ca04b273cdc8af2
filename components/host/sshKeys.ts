// Which SSH key the host steps log in with, as people have them: the key set in the stack's
// config, else a running ssh agent, else the key file (~/.ssh/id_ed25519 unless sshKeyFile says
// otherwise), passphrase-protected or not. What the connection gets follows the command
// provider (pulumi-command v1.2.1, provider/pkg/provider/remote/connection.go SSHConfig):
// privateKey is parsed with privateKeyPassword when one is given; the agent at agentSocketPath,
// else at $SSH_AUTH_SOCK, is always offered too. So for the agent the connection carries no
// key and no socket path (the provider finds $SSH_AUTH_SOCK itself), which keeps a path of
// this machine out of every resource's inputs.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export type SshKeyChoice =
  | { readonly via: "config"; readonly privateKey: string; readonly publicKey?: string }
  | { readonly via: "agent"; readonly socket: string; readonly publicKey?: string }
  | { readonly via: "file"; readonly file: string; readonly privateKey: string; readonly publicKey?: string };

export interface SshKeySources {
  /** bluegreen:sshPrivateKey, if set. */
  readonly configKey?: string;
  /** bluegreen:sshPrivateKeyPassword, if set. */
  readonly password?: string;
  /** bluegreen:sshKeyFile, if set; else ~/.ssh/id_ed25519. */
  readonly keyFile?: string;
  readonly env: NodeJS.ProcessEnv;
}

/** An OpenSSH or PEM private key that needs a passphrase. */
export function isEncryptedKey(text: string): boolean {
  if (/Proc-Type: 4,ENCRYPTED|BEGIN ENCRYPTED PRIVATE KEY/.test(text)) return true;
  const m = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END/.exec(text);
  if (!m) return false;
  // openssh-key-v1\0, then the cipher's name as a length-prefixed string: "none" when unencrypted.
  // Anything else is not a key this can read: not called protected (the provider says what is wrong).
  const raw = Buffer.from(m[1].replace(/\s+/g, ""), "base64");
  const magic = Buffer.from("openssh-key-v1\0");
  if (raw.length < magic.length + 4 || !raw.subarray(0, magic.length).equals(magic)) return false;
  const len = raw.readUInt32BE(magic.length);
  return raw.subarray(magic.length + 4, magic.length + 4 + len).toString() !== "none";
}

/** The first public key the agent at `socket` holds, or undefined (no agent there, or no key in it). */
export function agentPublicKey(socket: string): string | undefined {
  const r = spawnSync("ssh-add", ["-L"], { env: { SSH_AUTH_SOCK: socket, PATH: process.env.PATH }, encoding: "utf8" });
  if (r.status !== 0) return undefined;
  return r.stdout
    .split("\n")
    .find((l) => /^(ssh-|ecdsa-)/.test(l))
    ?.trim();
}

const isSocket = (p: string) => {
  try {
    return fs.statSync(p).isSocket();
  } catch {
    return false;
  }
};

/** The key to log in with, or the problems that say how to give one (each naming its key). */
export function chooseSshKey(s: SshKeySources): { choice?: SshKeyChoice; problems: string[] } {
  const locked = (what: string) =>
    `${what} is passphrase-protected: pulumi config set --secret sshPrivateKeyPassword <passphrase>, or add the key to an ssh agent (ssh-add) and leave sshPrivateKey unset`;
  if (s.configKey !== undefined) {
    if (isEncryptedKey(s.configKey) && s.password === undefined)
      return { problems: [locked("bluegreen:sshPrivateKey")] };
    return { choice: { via: "config", privateKey: s.configKey }, problems: [] };
  }
  const socket = s.env.SSH_AUTH_SOCK;
  if (socket && isSocket(socket)) {
    const publicKey = agentPublicKey(socket);
    if (publicKey) return { choice: { via: "agent", socket, publicKey }, problems: [] };
  }
  const home = s.env.HOME ?? os.homedir();
  const file = s.keyFile ? s.keyFile.replace(/^~(?=\/)/, home) : path.join(home, ".ssh", "id_ed25519");
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === "ENOENT" ? "does not exist" : (e as Error).message;
    return {
      problems: [
        `no SSH key: bluegreen:sshPrivateKey is unset, ${socket ? `the ssh agent at ${socket} holds no key` : "no ssh agent runs (SSH_AUTH_SOCK is unset)"}, and ${file} ${why}. Add your key to an agent (ssh-add), make one (ssh-keygen -t ed25519), or set bluegreen:sshKeyFile`,
      ],
    };
  }
  if (isEncryptedKey(text) && s.password === undefined) return { problems: [locked(file)] };
  const pub = `${file}.pub`;
  const publicKey = fs.existsSync(pub) ? fs.readFileSync(pub, "utf8").trim() : undefined;
  return { choice: { via: "file", file, privateKey: text, publicKey }, problems: [] };
}
