import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { AppLayout } from "../host/layout";
import { renderMaintenancePage } from "../router/nginx";
import { tool } from "../host/tools";

export interface MaintenanceArgs {
  /** Where this app lives on the host (components/host/layout.ts). */
  readonly layout: AppLayout;
  readonly connection: pulumi.Input<command.types.input.remote.ConnectionArgs>;
  readonly sudo: boolean;
  /** true: public requests get a 503 maintenance page; false: they reach the live slot. */
  readonly enabled: boolean;
  /** Retry-After of the page, in seconds; also shapes its wording. */
  readonly retryAfterSeconds: number;
}

/**
 * Maintenance mode as one resource: turning it on or off is an update of this
 * command alone. Neither slot stops and the link does not move, so leaving
 * maintenance serves the same colour as before.
 */
export class Maintenance extends pulumi.ComponentResource {
  public readonly mode: command.remote.Command;

  constructor(name: string, args: MaintenanceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("bluegreen:index:Maintenance", name, {}, opts);
    this.mode = new command.remote.Command(
      `${name}-mode`,
      {
        connection: args.connection,
        create: tool(args.layout, "maintenance.sh", { STATE: args.enabled ? "on" : "off" }, args.sudo),
        stdin: args.enabled ? renderMaintenancePage(args.retryAfterSeconds) : "",
        addPreviousOutputInEnv: false,
      },
      { parent: this },
    );
    this.registerOutputs({ enabled: args.enabled });
  }
}
