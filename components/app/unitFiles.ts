// The files of one slot on the host: its systemd unit, its env file, and the bundle of
// sections its deploy step reads on stdin. Pure renderers: tests compare their output with expected text.

import { AppLayout, Color, LinkModeName, shared } from "../host/layout";
import { MANAGED } from "../host/shell";

export interface SlotUnitOptions {
  readonly layout: AppLayout;
  readonly color: Color;
  /** Arguments after the binary (validated in config.ts); systemd expands ${VAR} from the env file. */
  readonly args: string;
  /** appCommand (validated in config.ts): replaces `app args`, and runs from the release directory. */
  readonly command?: string;
  readonly drainTimeoutSeconds: number;
}

/**
 * The ExecStart line of a slot. The single executable keeps its place: `current/app args`,
 * run from the data directory. An appCommand runs from the release directory; its program
 * is a name systemd looks up on its own PATH (/usr/local/bin, /usr/bin, ...), an absolute
 * path, or a path inside the release, which is made absolute here (systemd takes no relative paths).
 */
export function slotExec(L: AppLayout, color: Color, o: Pick<SlotUnitOptions, "args" | "command">) {
  const current = `${L.stateDir}/slots/${color}/current`;
  if (!o.command) return { workingDirectory: L.dataDir, execStart: `${current}/app ${o.args}` };
  const command = o.command.trim();
  const program = command.split(/\s/)[0];
  const resolved =
    program.includes("/") && !program.startsWith("/") ? `${current}/${program.replace(/^\.\//, "")}` : program;
  // Only the program changes: the arguments keep their exact text (quoted spaces included).
  return { workingDirectory: current, execStart: resolved + command.slice(program.length) };
}

/**
 * A slot's own systemd unit, bluegreen@blue.service or bluegreen@green.service.
 * Each slot has its own file so a change of args or drain timeout reaches the
 * idle slot at once and the live one only when it is idle again.
 */
export function renderSlotUnit(o: SlotUnitOptions): string {
  const L = o.layout;
  const exec = slotExec(L, o.color, o);
  return [
    MANAGED,
    "[Unit]",
    `Description=bluegreen app ${L.app === L.ns ? "" : `${L.app} `}slot ${o.color}`,
    "After=network-online.target",
    "Wants=network-online.target",
    "",
    "[Service]",
    "Type=simple",
    // Every app runs as its own user in its own group, and no other app's: another app's
    // processes reach neither its socket nor its 0700 data directory.
    `User=${L.appUser}`,
    `Group=${L.appGroup}`,
    `EnvironmentFile=${L.envDir}/${o.color}.env`,
    `WorkingDirectory=${exec.workingDirectory}`,
    `ExecStart=${exec.execStart}`,
    "Restart=on-failure",
    "RestartSec=2",
    "KillSignal=SIGTERM",
    // The app drains for drainTimeout; give it that plus the readiness delay and a margin.
    `TimeoutStopSec=${o.drainTimeoutSeconds + 5}`,
    // The socket lives here. As root ("+": outside the sandbox), before the app runs: the
    // directory, owned by the app's user and the routers' group, setgid, so the socket the app
    // makes in it (group-writable: UMask) is in that group: the app's user and the router reach
    // it, no other app does; a socket left by the last run goes. Not RuntimeDirectory=: systemd
    // sets that directory's mode and owner (User:Group) again before every command it starts,
    // so neither the routers' group nor the setgid bit would reach ExecStart (systemd 252, seen
    // in a container). ReadWritePaths opens it in ProtectSystem=strict's read-only /run.
    `ExecStartPre=+/usr/bin/install -d -m 0755 ${L.runDir}`,
    `ExecStartPre=+/usr/bin/install -d -m 2750 -o ${L.appUser} -g ${shared.webGroup} ${L.runDir}/${o.color}`,
    `ExecStartPre=+/usr/bin/find ${L.runDir}/${o.color} -mindepth 1 -delete`,
    "UMask=0007",
    `ReadWritePaths=${L.dataDir}`,
    `ReadWritePaths=-${L.runDir}/${o.color}`,
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "RestrictSUIDSGID=yes",
    "RestrictNamespaces=yes",
    "RestrictRealtime=yes",
    "LockPersonality=yes",
    "CapabilityBoundingSet=",
    "SystemCallArchitectures=native",
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

export interface SlotEnvOptions {
  readonly layout: AppLayout;
  readonly color: Color;
  readonly version: string;
  readonly listen: string;
  readonly drainTimeoutSeconds: number;
  /** App env and secrets, merged; written to a 0600 file and never to a command line. */
  readonly appEnv: Readonly<Record<string, string>>;
  /** With appCommand, the listen address is also given the way frameworks read it: PORT or BLUEGREEN_SOCKET. */
  readonly command?: boolean;
}

/** The slot's listen address: a unix socket, or a loopback port (never a public address). */
export function slotListen(L: AppLayout, mode: LinkModeName, color: Color, port: number): string {
  return mode === "socket" ? `unix:${L.slotSocket(color)}` : `127.0.0.1:${port}`;
}

/** The per-slot systemd EnvironmentFile. Values are double-quoted with C escapes. */
export function renderSlotEnv(o: SlotEnvOptions): string {
  const vars: Record<string, string> = {
    BLUEGREEN_COLOR: o.color,
    BLUEGREEN_VERSION: o.version,
    BLUEGREEN_LISTEN: o.listen,
    BLUEGREEN_DATA_DIR: o.layout.dataDir,
    BLUEGREEN_ACTIVE_FILE: o.layout.activeColorFile,
    BLUEGREEN_DRAIN_TIMEOUT: String(o.drainTimeoutSeconds),
    ...(o.command
      ? o.listen.startsWith("unix:")
        ? { BLUEGREEN_SOCKET: o.listen.slice("unix:".length) }
        : { PORT: o.listen.slice(o.listen.lastIndexOf(":") + 1) }
      : {}),
    ...Object.fromEntries(Object.entries(o.appEnv).sort(([a], [b]) => (a < b ? -1 : 1))),
  };
  const quote = (v: string) => `"${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
  return Object.entries(vars)
    .map(([k, v]) => `${k}=${quote(v)}\n`)
    .join("");
}
