// @ts-check
// Runs where `pulumi up` runs (node -, this text on stdin): switches every host of an app at
// once, or none. Each host runs its own switch.sh with COORDINATED=yes over one SSH session
// (phases.sh has the protocol); this program hears every host and says the next word to all:
//
//   prepare  every host gates its target, runs preSwitch, reads its counters and writes its
//            intent, then waits. A failure anywhere: `abort` to all; nothing moved anywhere.
//   commit   sent to all at once; each moves its link and verifies through its router. A
//            failure anywhere: `abort` to all; every host puts traffic back.
//   watch    each host streams its counts; a host that breaches alone, or all hosts summed
//            over the limits, moves every host back.
//   confirm  every watch passed: each host records the switch (one audit line per host, all
//            with the same switch_id).
//
// Until a host hears `confirm`, the end of its SSH session (this program killed, a connection
// lost) makes it put traffic back by itself; a host killed halfway keeps its intent, and the
// next `pulumi up` finishes or undoes it.
//
// Inputs (environment; components/app/fleetSwitch.ts):
//   TARGET           the colour every host makes live
//   HOSTS            JSON: [{name, address, port, user, hostKey, command}]; command is the host's
//                    switch.sh command line, with %SWITCH_ID% where the switch id goes
//   SECTIONS         the hooks' stdin sections, sent to each host first (empty: none)
//   ERROR_PERCENT, MIN_ERRORS   the watch's limits, applied to every host's counts summed
//   PREPARE_SECONDS  how long a host may take to prepare (lock wait, gate, preSwitch)
//   PHASE_SECONDS    how long a host may take for any later phase
//   SSH_PRIVATE_KEY, SSH_PRIVATE_KEY_PASSWORD   optional (secret); without a key, ssh's agent
//   SSH_PROGRAM      optional: the ssh program (tests); default ssh
"use strict";
const { spawn } = require("child_process");
const crypto = require("crypto");
const fs = require("fs");
const os = require("os");
const path = require("path");

/** @typedef {{name: string, address: string, port: number, user: string, hostKey: string, command: string}} HostSpec */
/** @typedef {{spec: HostSpec, child: import("child_process").ChildProcessWithoutNullStreams, said: string[], lines: string[], stderr: string, exit: Promise<number>, code?: number, moved?: number, verified?: number, total: number, errors: number, phase: string, mode?: string}} Session */

const env = process.env;
const need = (/** @type {string} */ k) => {
  const v = env[k];
  if (v === undefined || v === "") throw new Error(`local-coordinate.js: ${k} is required`);
  return v;
};
const TARGET = need("TARGET");
/** @type {HostSpec[]} */
const HOSTS = JSON.parse(need("HOSTS"));
const PERCENT = Number(need("ERROR_PERCENT"));
const MIN = Number(need("MIN_ERRORS"));
const PREPARE_MS = Number(need("PREPARE_SECONDS")) * 1000;
const PHASE_MS = Number(need("PHASE_SECONDS")) * 1000;
const SWITCH_ID = `${new Date().toISOString().replace(/[-:.]/g, "").slice(0, 15)}-${crypto.randomBytes(3).toString("hex")}`;
const started = Date.now();
const say = (/** @type {string} */ line) => process.stdout.write(`${line}\n`);
const secs = (/** @type {number} */ ms) => `${(ms / 1000).toFixed(1)} s`;

/** A private folder for the key, the askpass helper and known_hosts; gone when this exits. */
function sshFiles() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bluegreen-coordinate-"));
  process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
  const known = path.join(dir, "known_hosts");
  fs.writeFileSync(known, HOSTS.map((h) => `${h.port === 22 ? h.address : `[${h.address}]:${h.port}`} ${h.hostKey}\n`).join(""), { mode: 0o600 });
  /** @type {string[]} */
  const opts = ["-T", "-o", `UserKnownHostsFile=${known}`, "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes"];
  opts.push("-o", "ConnectTimeout=15", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3");
  opts.push("-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no");
  /** @type {NodeJS.ProcessEnv} */
  const sshEnv = { ...env };
  for (const k of ["SSH_PRIVATE_KEY", "SSH_PRIVATE_KEY_PASSWORD", "HOSTS", "SECTIONS"]) delete sshEnv[k];
  if (env.SSH_PRIVATE_KEY) {
    const key = path.join(dir, "key");
    fs.writeFileSync(key, env.SSH_PRIVATE_KEY.endsWith("\n") ? env.SSH_PRIVATE_KEY : `${env.SSH_PRIVATE_KEY}\n`, { mode: 0o600 });
    opts.push("-i", key, "-o", "IdentitiesOnly=yes");
  }
  if (env.SSH_PRIVATE_KEY_PASSWORD) {
    // ssh asks the helper for the passphrase (never argv): it prints the variable it inherits.
    const askpass = path.join(dir, "askpass");
    fs.writeFileSync(askpass, '#!/bin/sh\nprintf \'%s\\n\' "$BLUEGREEN_KEY_PASSPHRASE"\n', { mode: 0o700 });
    Object.assign(sshEnv, { SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: "force", BLUEGREEN_KEY_PASSPHRASE: env.SSH_PRIVATE_KEY_PASSWORD, DISPLAY: env.DISPLAY ?? ":0" });
  } else opts.push("-o", "BatchMode=yes");
  return { opts, sshEnv };
}

/** @returns {Session} */
function open(/** @type {HostSpec} */ spec, /** @type {{opts: string[], sshEnv: NodeJS.ProcessEnv}} */ ssh) {
  const command = spec.command.replace(/%SWITCH_ID%/g, SWITCH_ID);
  const args = [...ssh.opts, "-p", String(spec.port), "--", `${spec.user}@${spec.address}`, command];
  const child = spawn(env.SSH_PROGRAM || "ssh", args, { env: ssh.sshEnv, stdio: ["pipe", "pipe", "pipe"] });
  /** @type {Session} */
  const s = { spec, child, said: [], lines: [], stderr: "", exit: Promise.resolve(0), total: 0, errors: 0, phase: "connecting" };
  s.exit = new Promise((resolve) => {
    child.on("error", (e) => ((s.stderr += `${e.message}\n`), resolve(255)));
    child.on("close", (code, signal) => resolve((s.code = code ?? (signal ? 128 : 255))));
  });
  let buf = "";
  child.stdout.on("data", (/** @type {Buffer} */ d) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.startsWith("@bluegreen ")) hear(s, line.slice(11).split(" "));
      else s.lines.push(line);
    }
  });
  // ssh ends its own messages with CRLF.
  child.stderr.on("data", (/** @type {Buffer} */ d) => (s.stderr += d.toString().replace(/\r\n/g, "\n")));
  child.stdin.on("error", () => undefined); // a host that went away: its exit says why
  if (env.SECTIONS) child.stdin.write(`${env.SECTIONS.endsWith("\n") ? env.SECTIONS : `${env.SECTIONS}\n`}@end-sections\n`);
  return s;
}

/** A protocol line from a host. */
function hear(/** @type {Session} */ s, /** @type {string[]} */ words) {
  const [what, ...rest] = words;
  s.said.push(what);
  if (what === "prepared") [s.mode] = rest;
  if (what === "committed") [s.moved, s.verified] = rest.map(Number);
  if (what === "watch" || (what === "watched" && rest[0] !== "deferred")) [s.total, s.errors] = rest.map(Number);
  s.phase = what;
  wake();
}

/** @type {(() => void)[]} */
let waiters = [];
const wake = () => {
  const w = waiters;
  waiters = [];
  for (const f of w) f();
};
/** Resolves when something is heard or a host exits, or after ms. */
const change = (/** @type {number} */ ms) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    waiters.push(() => (clearTimeout(t), resolve(undefined)));
  });

/** Waits until every session has said `word`; returns the first session that failed instead, with why. */
async function all(/** @type {Session[]} */ sessions, /** @type {string} */ word, /** @type {number} */ ms, /** @type {(() => string | undefined) | undefined} */ check) {
  const deadline = Date.now() + ms;
  for (;;) {
    const failed = sessions.find((s) => s.code !== undefined && !s.said.includes(word));
    if (failed) return { failed, why: hostError(failed) };
    const breach = check?.();
    if (breach) return { failed: undefined, why: breach };
    if (sessions.every((s) => s.said.includes(word))) return undefined;
    if (Date.now() > deadline) {
      const late = sessions.find((s) => !s.said.includes(word));
      return { failed: late, why: `no "${word}" from ${late?.spec.name} in ${secs(ms)} (it last said: ${late?.phase})` };
    }
    await change(Math.min(1000, Math.max(10, deadline - Date.now())));
  }
}

/** What a host that stopped said about it: its own error lines, else ssh's, else its exit. */
function hostError(/** @type {Session} */ s) {
  const own = s.stderr.split("\n").filter((l) => l.trim() !== "").slice(-12).join("\n");
  return own || `its switch exited ${s.code} with nothing on stderr`;
}

/** A host's outcome in one line: its summary, else its first error line, else what it last said. */
function outcome(/** @type {Session} */ s) {
  const live = s.lines.filter((l) => l.startsWith("live:")).pop();
  const error = s.stderr.split("\n").find((l) => l.startsWith("bluegreen: error: "));
  return live ?? error?.slice("bluegreen: error: ".length) ?? `last said ${s.phase}${s.code === undefined ? "" : `, exit ${s.code}`}`;
}

const send = (/** @type {Session[]} */ sessions, /** @type {string} */ word) => {
  for (const s of sessions) if (s.code === undefined && s.child.stdin.writable) s.child.stdin.write(`${word}\n`);
};

/** Calls every host back and waits for them to finish putting traffic back. */
async function abortAll(/** @type {Session[]} */ sessions, /** @type {string} */ why) {
  send(sessions, `abort ${why.split("\n")[0]}`);
  for (const s of sessions) s.child.stdin.end();
  const bounded = (/** @type {Promise<number>} */ p) => Promise.race([p, new Promise((r) => setTimeout(() => r(-1), PHASE_MS))]);
  await Promise.all(sessions.map((s) => bounded(s.exit)));
}

/** The summed watch: a breach of the limits by every host's counts together. */
function summed(/** @type {Session[]} */ sessions) {
  const total = sessions.reduce((n, s) => n + s.total, 0);
  const errors = sessions.reduce((n, s) => n + s.errors, 0);
  if (errors >= MIN && errors * 100 >= total * PERCENT)
    return `${errors} of ${total} responses were 5xx across ${sessions.length} hosts (limit: ${PERCENT}% and at least ${MIN})`;
  return undefined;
}

async function main() {
  const ssh = sshFiles();
  say(`switch ${SWITCH_ID}: ${TARGET} on ${HOSTS.length} hosts (${HOSTS.map((h) => h.name).join(", ")})`);
  const sessions = HOSTS.map((h) => open(h, ssh));
  const fail = async (/** @type {string} */ phase, /** @type {{failed?: Session, why: string}} */ r, /** @type {string} */ after) => {
    const who = r.failed ? `host ${r.failed.spec.name}` : "the hosts together";
    await abortAll(sessions, `${who}: ${r.why}`);
    process.stderr.write(`bluegreen: error: the switch to ${TARGET} stopped at ${phase}: ${who} failed:\n${r.why}\n${after}\n`);
    for (const s of sessions) process.stderr.write(`  ${s.spec.name}: ${outcome(s)}\n`);
    process.exit(1);
  };
  const t0 = Date.now();
  const prepared = await all(sessions, "prepared", PREPARE_MS, undefined);
  if (prepared) return fail("prepare", prepared, "Nothing moved on any host: traffic stays where it was.");
  say(`prepared on every host in ${secs(Date.now() - t0)}: ${sessions.map((s) => `${s.spec.name} ${s.mode === "noop" ? "already there" : "ready to move"}`).join(", ")}`);
  const sent = Date.now();
  send(sessions, "commit");
  const committed = await all(sessions, "committed", PHASE_MS, undefined);
  if (committed) return fail("commit", committed, "Every host was called back: traffic is back where it was.");
  const moves = sessions.filter((s) => s.mode === "move").map((s) => /** @type {number} */ (s.moved));
  const window = moves.length ? Math.max(...moves) - Math.min(...moves) : 0;
  say(`committed on every host: moved within ${window} ms of each other (host clocks), all verified ${Date.now() - sent} ms after the word was sent`);
  const watched = await all(sessions, "watched", PHASE_MS, () => summed(sessions));
  if (watched) return fail("the watch", watched, "Every host was called back: traffic is back where it was.");
  send(sessions, "confirm");
  const confirmed = await all(sessions, "confirmed", PHASE_MS, undefined);
  if (confirmed) {
    process.stderr.write(`bluegreen: error: ${confirmed.failed?.spec.name} did not confirm (${confirmed.why}); the others did. Run pulumi up again: every host then finishes the switch to ${TARGET} or says why not.\n`);
    process.exit(1);
  }
  for (const s of sessions) s.child.stdin.end();
  const codes = await Promise.all(sessions.map((s) => s.exit));
  const total = sessions.reduce((n, s) => n + s.total, 0);
  const errors = sessions.reduce((n, s) => n + s.errors, 0);
  for (const s of sessions) say(`  ${s.spec.name}: ${s.lines.filter((l) => l.startsWith("live:")).pop() ?? "(no summary)"}`);
  say(`live: ${TARGET} on every host (${HOSTS.length}); switch ${SWITCH_ID}; mixed-version window ${window} ms; watched ${errors} of ${total} responses 5xx across hosts; ${secs(Date.now() - started)} in all`);
  const bad = sessions.filter((s, i) => codes[i] !== 0);
  for (const s of bad) process.stderr.write(`bluegreen: warning: ${s.spec.name} confirmed the switch, then: ${hostError(s)}\n`);
}

for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"]) process.on(sig, () => process.exit(128));
main().catch((e) => {
  process.stderr.write(`bluegreen: error: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
