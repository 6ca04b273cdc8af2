import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { NotifyConfig } from "../config/config";
import { AppLayout } from "../host/layout";
import { MANAGED } from "../host/shell";
import { tool, toolStdin } from "../host/tools";

export interface NotificationsArgs {
  /** Where this app lives on the host (components/host/layout.ts). */
  readonly layout: AppLayout;
  readonly connection: pulumi.Input<command.types.input.remote.ConnectionArgs>;
  readonly sudo: boolean;
  readonly notify: NotifyConfig;
}

/** notify.conf: the targets (names only), the mail addresses, the events and the disk threshold. No secrets. */
export function renderNotifyConf(n: NotifyConfig): string {
  const targets = [...n.kinds, ...(n.email.length ? ["email"] : [])];
  return (
    [
      MANAGED,
      `targets=${targets.join(" ")}`,
      `email=${n.email.join(" ")}`,
      `events=${n.events.join(" ")}`,
      `disk_free_percent=${n.diskFreePercent}`,
    ].join("\n") + "\n"
  );
}

/** The drain (started by a .path unit while the queue is not empty) and the periodic checks. */
export function renderNotifyUnits(
  L: AppLayout,
): Record<"drainService" | "drainPath" | "checkService" | "checkTimer", string> {
  return {
    drainService: [
      MANAGED,
      "[Unit]",
      `Description=bluegreen: deliver app ${L.app}'s queued notifications`,
      "After=network-online.target",
      "Wants=network-online.target",
      "",
      "[Service]",
      "Type=oneshot",
      `ExecStart=${L.toolsDir}/notify-drain.sh`,
      "TimeoutStartSec=1h",
      "",
    ].join("\n"),
    drainPath: [
      MANAGED,
      "[Unit]",
      `Description=bluegreen: deliver app ${L.app}'s notifications as soon as one is queued`,
      "",
      "[Path]",
      `DirectoryNotEmpty=${L.notifyDir}/queue`,
      `Unit=${L.notifyUnit}.service`,
      "",
      "[Install]",
      "WantedBy=multi-user.target",
      "",
    ].join("\n"),
    checkService: [
      MANAGED,
      "[Unit]",
      `Description=bluegreen: check app ${L.app}'s backups, certificate, disk space and records`,
      "",
      "[Service]",
      "Type=oneshot",
      `ExecStart=${L.toolsDir}/check.sh`,
      "TimeoutStartSec=5min",
      "",
    ].join("\n"),
    checkTimer: [
      MANAGED,
      "[Unit]",
      `Description=bluegreen: check app ${L.app} every 5 minutes`,
      "",
      "[Timer]",
      "OnBootSec=5min",
      "OnUnitActiveSec=5min",
      "",
      "[Install]",
      "WantedBy=timers.target",
      "",
    ].join("\n"),
  };
}

/**
 * Notifications as one step: notify.conf, a 0600 curl config per webhook target (the URLs, which
 * are credentials, only in the step's secret stdin), the drain and the periodic checks. Events
 * are queued by the host scripts (their audit lines) and delivered by the drain, so a target
 * that hangs never delays a switch. Removing it runs its delete step.
 */
export class Notifications extends pulumi.ComponentResource {
  public readonly config: command.remote.Command;

  constructor(name: string, args: NotificationsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("bluegreen:index:Notifications", name, {}, opts);
    const { layout: L, notify: n } = args;
    const sections = (urls?: Record<string, string>) =>
      toolStdin("notify-config.sh", {
        conf: renderNotifyConf(n),
        urls: urls
          ? Object.entries(urls)
              .map(([k, v]) => `${k}=${v}\n`)
              .join("")
          : undefined,
        ...renderNotifyUnits(L),
      });
    const stdin = n.urls ? pulumi.secret(n.urls).apply(sections) : sections();
    this.config = new command.remote.Command(
      `${name}-config`,
      {
        connection: args.connection,
        create: tool(L, "notify-config.sh", { STATE: "on" }, args.sudo),
        delete: tool(L, "notify-config.sh", { STATE: "off" }, args.sudo),
        stdin,
        addPreviousOutputInEnv: false,
      },
      { parent: this },
    );
    this.registerOutputs({ targets: n.kinds, email: n.email, result: this.config.stdout });
  }
}
