import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { BackupsConfig } from "../config/config";
import { AppLayout } from "../host/layout";
import { MANAGED } from "../host/shell";
import { tool, toolStdin } from "../host/tools";

export interface BackupsArgs {
  /** Where this app lives on the host (components/host/layout.ts). */
  readonly layout: AppLayout;
  readonly connection: pulumi.Input<command.types.input.remote.ConnectionArgs>;
  readonly sudo: boolean;
  readonly backups: BackupsConfig;
}

/** backup.conf: what backup.sh and the snapshot before preSwitch copy, and how many they keep. No secrets. */
export function renderBackupConf(b: BackupsConfig): string {
  const lines = [
    MANAGED,
    `databases=${b.databases.join(" ")}`,
    `keep_hourly=${b.keepHourly}`,
    `keep_daily=${b.keepDaily}`,
    `keep_snapshots=${b.keepSnapshots}`,
    ...(b.remote ? [`remote_kind=${b.remote.type}`, `remote_path=${b.remote.path}`] : []),
  ];
  return lines.join("\n") + "\n";
}

/** The remote's rclone settings as NAME=value lines (the host writes rclone.conf from them). */
export function renderRemoteSettings(settings: Readonly<Record<string, string>>): string {
  return Object.entries(settings)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${v}\n`)
    .join("");
}

/** The hourly backup: a oneshot service and its timer (a random minute, catching up after downtime). */
export function renderBackupUnits(L: AppLayout): { service: string; timer: string } {
  return {
    service: [
      MANAGED,
      "[Unit]",
      `Description=bluegreen: back up app ${L.app}'s SQLite databases and send the copies off the host`,
      "After=network-online.target",
      "Wants=network-online.target",
      "",
      "[Service]",
      "Type=oneshot",
      `ExecStart=${L.toolsDir}/backup.sh run`,
      "TimeoutStartSec=4h",
      "Nice=10",
      "IOSchedulingClass=idle",
      "",
    ].join("\n"),
    timer: [
      MANAGED,
      "[Unit]",
      `Description=bluegreen: back up app ${L.app}'s databases every hour`,
      "",
      "[Timer]",
      "OnCalendar=hourly",
      "RandomizedDelaySec=300",
      "Persistent=true",
      "",
      "[Install]",
      "WantedBy=timers.target",
      "",
    ].join("\n"),
  };
}

/**
 * Scheduled backups of the app's SQLite databases, as one step: backup.conf, the off-host remote
 * (rclone, encrypted with rclone crypt; its credentials and the passphrase only in the step's
 * secret stdin) and the hourly timer. The snapshot before every preSwitch reads the same
 * backup.conf, so the switch's command does not change. Removing it (backupDatabases emptied)
 * runs its delete step, which stops the timer; the backups taken stay.
 */
export class Backups extends pulumi.ComponentResource {
  public readonly config: command.remote.Command;

  constructor(name: string, args: BackupsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("bluegreen:index:Backups", name, {}, opts);
    const { layout: L, backups: b } = args;
    const units = renderBackupUnits(L);
    const sections = (remote?: string, passphrase?: string) =>
      toolStdin("backup-config.sh", { conf: renderBackupConf(b), ...units, remote, passphrase });
    const remote = b.remote;
    const stdin = remote
      ? pulumi
          .all([pulumi.secret(remote.settings), pulumi.secret(remote.passphrase)])
          .apply(([s, p]) => sections(renderRemoteSettings(s), p))
      : sections();
    this.config = new command.remote.Command(
      `${name}-config`,
      {
        connection: args.connection,
        create: tool(L, "backup-config.sh", { STATE: "on" }, args.sudo),
        delete: tool(L, "backup-config.sh", { STATE: "off" }, args.sudo),
        stdin,
        addPreviousOutputInEnv: false,
      },
      { parent: this },
    );
    this.registerOutputs({ databases: b.databases, result: this.config.stdout });
  }
}
