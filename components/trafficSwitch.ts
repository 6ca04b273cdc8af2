import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { RollbackConfig } from "./config";
import { AppLayout, Color } from "./layout";
import { toolCommand } from "./shell";

export interface TrafficSwitchArgs {
  /** Where this app lives on the host (components/layout.ts). */
  readonly layout: AppLayout;
  readonly connection: pulumi.Input<command.types.input.remote.ConnectionArgs>;
  readonly sudo: boolean;
  /** The slot that should receive live traffic. */
  readonly active: Color;
  /** The slots' readiness path: checked on the target before, and through nginx after, the switch. */
  readonly healthPath: string;
  /** nginx's loopback check listener, which the switch verifies through. */
  readonly checkPort: number;
  /** After the switch: how long to watch the new slot's 5xx, and the limits that move traffic back. */
  readonly rollback: RollbackConfig;
  /** How long to wait for nginx to serve the target before putting the link back. */
  readonly verifyTimeoutSeconds?: number;
}

/**
 * Points live traffic at `active`. The colour is part of the command text, so
 * changing it is an update of this one resource (a replace would run a delete
 * step; this resource has none, so nothing destructive ever runs). The switch
 * also applies config staged for the slot it moves traffic away from.
 */
export class TrafficSwitch extends pulumi.ComponentResource {
  public readonly link: command.remote.Command;

  constructor(name: string, args: TrafficSwitchArgs, opts?: pulumi.ComponentResourceOptions) {
    super("bluegreen:index:TrafficSwitch", name, {}, opts);
    this.link = new command.remote.Command(
      `${name}-link`,
      {
        connection: args.connection,
        create: toolCommand(
          args.layout,
          "switch.sh",
          {
            TARGET: args.active,
            HEALTH_PATH: args.healthPath,
            CHECK_PORT: args.checkPort,
            VERIFY_TIMEOUT: args.verifyTimeoutSeconds ?? 15,
            WATCH_SECONDS: args.rollback.watchSeconds,
            ERROR_PERCENT: args.rollback.errorPercent,
            MIN_ERRORS: args.rollback.minErrors,
          },
          args.sudo,
        ),
        addPreviousOutputInEnv: false,
      },
      // The post-switch watch keeps the step running for watchSeconds.
      {
        parent: this,
        customTimeouts: {
          create: `${args.rollback.watchSeconds + 600}s`,
          update: `${args.rollback.watchSeconds + 600}s`,
        },
      },
    );
    this.registerOutputs({ active: args.active, result: this.link.stdout });
  }
}
