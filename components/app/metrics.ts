import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { MetricsConfig } from "../config/config";
import { AppLayout } from "../host/layout";
import { MANAGED } from "../host/shell";
import { tool, toolStdin } from "../host/tools";

export interface MetricsArgs {
  /** Where this app lives on the host (components/host/layout.ts). */
  readonly layout: AppLayout;
  readonly connection: pulumi.Input<command.types.input.remote.ConnectionArgs>;
  readonly sudo: boolean;
  readonly metrics: MetricsConfig;
}

/**
 * The endpoint: a socket on 127.0.0.1 whose every connection runs metrics.sh once (Accept=yes),
 * so nothing runs between scrapes; and the textfile writer for node_exporter, every 30 s.
 */
export function renderMetricsUnits(
  L: AppLayout,
  port: number,
): Record<"socket" | "service" | "textService" | "textTimer", string> {
  return {
    socket: [
      MANAGED,
      "[Unit]",
      `Description=bluegreen: app ${L.app}'s Prometheus metrics on 127.0.0.1:${port}`,
      "",
      "[Socket]",
      `ListenStream=127.0.0.1:${port}`,
      "Accept=yes",
      "MaxConnections=8",
      "",
      "[Install]",
      "WantedBy=sockets.target",
      "",
    ].join("\n"),
    service: [
      MANAGED,
      "[Unit]",
      `Description=bluegreen: one scrape of app ${L.app}'s metrics`,
      "CollectMode=inactive-or-failed",
      "",
      "[Service]",
      `ExecStart=${L.toolsDir}/metrics.sh serve`,
      "StandardInput=socket",
      "StandardOutput=socket",
      "StandardError=journal",
      "SyslogLevel=warning",
      "LogLevelMax=notice",
      "RuntimeMaxSec=30",
      "NoNewPrivileges=yes",
      "ProtectHome=yes",
      "PrivateTmp=yes",
      "",
    ].join("\n"),
    textService: [
      MANAGED,
      "[Unit]",
      `Description=bluegreen: app ${L.app}'s metrics for node_exporter's textfile collector`,
      "",
      "[Service]",
      "Type=oneshot",
      `ExecStart=${L.toolsDir}/metrics.sh textfile`,
      "SyslogLevel=warning",
      "LogLevelMax=notice",
      "TimeoutStartSec=60",
      "",
    ].join("\n"),
    textTimer: [
      MANAGED,
      "[Unit]",
      `Description=bluegreen: app ${L.app}'s metrics into the textfile directory every 30 s`,
      "",
      "[Timer]",
      "OnBootSec=30s",
      "OnUnitActiveSec=30s",
      "AccuracySec=5s",
      "",
      "[Install]",
      "WantedBy=timers.target",
      "",
    ].join("\n"),
  };
}

/** Prometheus metrics of the app on a loopback port, as one step. Removing it runs its delete step. */
export class Metrics extends pulumi.ComponentResource {
  public readonly config: command.remote.Command;

  constructor(name: string, args: MetricsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("bluegreen:index:Metrics", name, {}, opts);
    const { layout: L, metrics: m } = args;
    this.config = new command.remote.Command(
      `${name}-config`,
      {
        connection: args.connection,
        create: tool(L, "metrics-config.sh", { STATE: "on", PORT: m.port }, args.sudo),
        delete: tool(L, "metrics-config.sh", { STATE: "off" }, args.sudo),
        stdin: toolStdin("metrics-config.sh", renderMetricsUnits(L, m.port)),
        addPreviousOutputInEnv: false,
      },
      { parent: this },
    );
    this.registerOutputs({ port: m.port, result: this.config.stdout });
  }
}
