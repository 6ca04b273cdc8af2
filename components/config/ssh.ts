// How bluegreen reaches the host over SSH: user, port, the private key, and the public keys
// (the one a new host gets, the host's own to verify).

import * as pulumi from "@pulumi/pulumi";
import { chooseSshKey } from "../host/sshKeys";
import { key, q, Reader } from "./reader";
import { HostConfig, HostKind, SshConfig } from "./types";

const PUBLIC_KEY_RE = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,3}( [^\n]*)?$/;

/** `hostKindKnown`: false when hostKind itself was refused, so its keys are not asked for. */
export function readSsh(r: Reader, hostKind: HostKind, hostKindKnown: boolean, host: HostConfig): SshConfig {
  const port = r.int("sshPort");
  const user = r.checked("sshUser", r.raw("sshUser") ?? (hostKind === "multipass" ? "ubuntu" : "root"));
  const privateKeyText = r.raw("sshPrivateKey");
  if (privateKeyText !== undefined && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(privateKeyText)) {
    r.problem(`${key("sshPrivateKey")} must be a PEM/OpenSSH private key (the file's text, not its path)`);
  }
  const password = r.raw("sshPrivateKeyPassword");
  // A stack on another host's stack (hostKind "stack") still logs in itself.
  const chosen = chooseSshKey({
    configKey: privateKeyText,
    password,
    keyFile: r.raw("sshKeyFile"),
    env: r.env,
  });
  for (const p of chosen.problems) r.problem(p);
  const publicKey = r.raw("sshPublicKey") ?? chosen.choice?.publicKey;
  if (publicKey !== undefined) r.matches("sshPublicKey", publicKey.trim(), PUBLIC_KEY_RE, "an OpenSSH public key line");
  else if (hostKindKnown && chosen.choice) publicKeyRequired(r, host);
  const hostKey = r.raw("sshHostKey");
  if (hostKey !== undefined)
    r.matches(
      "sshHostKey",
      hostKey.trim(),
      PUBLIC_KEY_RE,
      "a host public key line (ssh-keyscan output without the host name)",
    );
  const choice = chosen.choice;
  return {
    user,
    port,
    // The agent: no key in the connection (the provider offers $SSH_AUTH_SOCK's keys itself).
    privateKey: choice && choice.via !== "agent" ? pulumi.secret(choice.privateKey) : undefined,
    privateKeyPassword: password !== undefined && choice?.via !== "agent" ? pulumi.secret(password) : undefined,
    keyFrom: choice?.via === "file" ? `the file ${choice.file}` : choice?.via === "agent" ? "the ssh agent" : "config",
    publicKey: publicKey?.trim(),
    hostKey: hostKey?.trim(),
  };
}

/** A new host (hetzner, multipass) gets sshPublicKey, unless Hetzner already holds the keys to put on it. */
function publicKeyRequired(r: Reader, host: HostConfig): void {
  if (host.kind === "multipass") {
    r.problem(
      `${key("sshPublicKey")} is required when ${key("hostKind")} is ${q(host.kind)}: pulumi config set sshPublicKey "$(cat ~/.ssh/id_ed25519.pub)"`,
    );
  } else if (host.kind === "hetzner" && host.sshKeys.length === 0) {
    r.problem(
      `${key("sshPublicKey")} is required when ${key("hostKind")} is "hetzner" and ${key("hetznerSshKeys")} is empty: ` +
        `pulumi config set sshPublicKey "$(cat ~/.ssh/id_ed25519.pub)", or name keys already in the Hetzner project: pulumi config set --path 'hetznerSshKeys[0]' my-laptop`,
    );
  }
}
