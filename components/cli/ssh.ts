// SSH to the host the way the stack's outputs say (sshCommand, statusCommand,
// previewTunnelCommand), never prompting (BatchMode=yes: a key that needs a passphrase
// fails at once, in ssh's own words). The host's key is the one the stack pinned (its
// hostKey output): ssh trusts exactly that key, whatever ~/.ssh/known_hosts holds.
// BLUEGREEN_SSH replaces the `ssh` program, with any options of its own
// (the tests' key), e.g. "ssh -i key"; ssh takes the first value of an option, so its own come first.
import { spawn, spawnSync, SpawnSyncReturns } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { freePort, waitForPort } from "./ports";
import { Stop } from "./say";

const BATCH = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=15"];
/** The known_hosts options of the stack's pinned key (trustStackHostKey), once read. */
let pinned: string[] = [];

function sshProgram(): [string, string[]] {
  const [cmd, ...args] = (process.env.BLUEGREEN_SSH ?? "ssh").split(" ").filter(Boolean);
  return [cmd, [...args, ...BATCH, ...pinned]];
}

/**
 * Makes every ssh of this run trust exactly the host key the stack pinned (its `hostKey` output),
 * for the host and port its sshCommand names: a known_hosts file of one line, removed at exit.
 * A stack without the output (made before keys were pinned) leaves ssh to ~/.ssh/known_hosts.
 */
export function trustStackHostKey(outputs: Record<string, unknown>): void {
  const { hostKey, sshCommand } = outputs;
  const m = typeof sshCommand === "string" ? /^ssh(?: -p (\d+))? (?:\S+@)?(\S+)$/.exec(sshCommand.trim()) : null;
  if (typeof hostKey !== "string" || !hostKey || !m) return;
  // Several hosts: every one's key, at the same port.
  const keys: [string, string][] = [
    [m[2], hostKey],
    ...Object.values(stackHosts(outputs)).map((h) => [h.ip, h.hostKey] as [string, string]),
  ];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bluegreen-ssh-"));
  process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, "known_hosts");
  const line = ([host, key]: [string, string]) => `${m[1] ? `[${host}]:${m[1]}` : host} ${key}\n`;
  fs.writeFileSync(
    file,
    keys
      .filter(([, k]) => k)
      .map(line)
      .join(""),
    { mode: 0o600 },
  );
  pinned = [
    "-o",
    `UserKnownHostsFile=${file}`,
    "-o",
    "GlobalKnownHostsFile=/dev/null",
    "-o",
    "StrictHostKeyChecking=yes",
  ];
}

/** The stack's hosts output (several hosts): name -> address and SSH key; {} for one host. */
export function stackHosts(outputs: Record<string, unknown>): Record<string, { ip: string; hostKey: string }> {
  const h = outputs.hosts;
  if (typeof h !== "object" || h === null) return {};
  const out: Record<string, { ip: string; hostKey: string }> = {};
  for (const [name, v] of Object.entries(h as Record<string, { ip?: unknown; hostKey?: unknown }>))
    if (typeof v?.ip === "string") out[name] = { ip: v.ip, hostKey: typeof v.hostKey === "string" ? v.hostKey : "" };
  return out;
}

/** The parts of the statusCommand output: `ssh [-p N] user@host [sudo -n ]/usr/local/sbin/<ns>-status`. */
export interface HostTool {
  readonly portArgs: string[];
  readonly login: string;
  readonly sudo: boolean;
  readonly statusPath: string;
  /** The app's systemd/host namespace, e.g. bluegreen or bluegreen-shop. */
  readonly ns: string;
}

export function parseStatusCommand(text: string): HostTool {
  const m = /^ssh(?: -p (\d+))? (\S+) (sudo -n )?(\/\S+\/([^/\s]+)-status)$/.exec(text.trim());
  if (!m) throw new Stop(`unexpected statusCommand output: ${text}`);
  return { portArgs: m[1] ? ["-p", m[1]] : [], login: m[2], sudo: !!m[3], statusPath: m[4], ns: m[5] };
}

/** Runs a command on the host and captures it; ssh's stderr is kept for the error. */
export function sshCapture(t: HostTool, remote: string[], timeoutMs = 60_000): SpawnSyncReturns<string> {
  const [cmd, args] = sshProgram();
  return spawnSync(cmd, [...args, ...t.portArgs, t.login, ...(t.sudo ? ["sudo", "-n"] : []), ...remote], {
    encoding: "utf8",
    timeout: timeoutMs,
  });
}

/** Runs a command on the host with our terminal (logs -f); resolves to its exit code. */
export function sshInteractive(t: HostTool, remote: string[]): Promise<number> {
  const [cmd, args] = sshProgram();
  const child = spawn(cmd, [...args, ...t.portArgs, t.login, ...(t.sudo ? ["sudo", "-n"] : []), ...remote], {
    stdio: "inherit",
  });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

/** An open tunnel to the host's preview listener: its local URL, and how to close it. */
export interface Tunnel {
  readonly url: string;
  close(): void;
}

/**
 * Forwards a free local port to the preview listener, from previewTunnelCommand
 * (`ssh [-p N] -N -L P:127.0.0.1:P user@host`). Resolves once the local port
 * accepts; if ssh exits first, fails at once with ssh's own stderr.
 */
export async function openTunnel(previewTunnelCommand: string, seconds = 30): Promise<Tunnel> {
  const m = /^ssh(?: -p (\d+))? -N -L \d+:127\.0\.0\.1:(\d+) (\S+)$/.exec(previewTunnelCommand.trim());
  if (!m) throw new Stop(`unexpected previewTunnelCommand output: ${previewTunnelCommand}`);
  const localPort = await freePort();
  const [cmd, args] = sshProgram();
  const forward = ["-N", "-o", "ExitOnForwardFailure=yes", "-L", `${localPort}:127.0.0.1:${m[2]}`];
  const child = spawn(cmd, [...args, ...(m[1] ? ["-p", m[1]] : []), ...forward, m[3]], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<string>((resolve) => {
    child.on("error", (e) => resolve(`could not run ${cmd}: ${e.message}`));
    child.on("exit", (code, signal) => {
      // The last of stderr can come after exit; close follows the streams.
      child.once("close", () => resolve(`${cmd} exited with ${code ?? signal}`));
    });
  });
  const abort = new AbortController();
  const result = await Promise.race([
    waitForPort(localPort, seconds, abort.signal).then((open) => (open ? "open" : "timeout")),
    exited.then((why) => ({ why })),
  ]);
  abort.abort();
  const close = () => child.kill();
  if (result === "open") return { url: `http://127.0.0.1:${localPort}/`, close };
  close();
  const said = stderr.trim() ? `:\n${stderr.trimEnd()}` : "";
  if (result === "timeout")
    throw new Stop(
      `the SSH tunnel to the preview listener did not open within ${seconds} s (${previewTunnelCommand})${said}`,
    );
  throw new Stop(`the SSH tunnel to the preview listener failed (${previewTunnelCommand}; ${result.why})${said}`);
}
