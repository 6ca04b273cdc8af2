import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { HooksConfig, RollbackConfig } from "../config/config";
import { AppLayout, Color } from "../host/layout";
import { tool, toolStdin } from "../host/tools";

/** What a switch does, on one host or on several: the same keys for TrafficSwitch and FleetSwitch. */
export interface SwitchPolicy {
  /** The slot that should receive live traffic. */
  readonly active: Color;
  /** The slots' readiness path: checked on the target before, and through nginx after, the switch. */
  readonly healthPath: string;
  /** nginx's loopback check listener, which the switch verifies through. */
  readonly checkPort: number;
  /** After the switch: how long to watch the new slot's 5xx, and the limits that move traffic back. */
  readonly rollback: RollbackConfig;
  /** preSwitch/postSwitch, run on the host as the slot (switch.sh); their text travels on stdin. */
  readonly hooks: HooksConfig;
  /** Names of the app's secret env values: hook output is scrubbed of them. */
  readonly secretNames: readonly string[];
}

export interface TrafficSwitchArgs extends SwitchPolicy {
  /** Where this app lives on the host (components/host/layout.ts). */
  readonly layout: AppLayout;
  readonly connection: pulumi.Input<command.types.input.remote.ConnectionArgs>;
  readonly sudo: boolean;
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
    const { hooks } = args;
    const hasHooks = hooks.preSwitch !== "" || hooks.postSwitch !== "";
    // Without hooks the step is the command it always was, with no stdin.
    const hookVars = hasHooks
      ? {
          HOOKS: "yes",
          HOOK_TIMEOUT: hooks.timeoutSeconds,
          ...(hooks.postSwitch ? { POST_SWITCH_FAILURE: hooks.postSwitchFailure } : {}),
          ...(args.secretNames.length ? { SECRET_NAMES: args.secretNames.join(" ") } : {}),
        }
      : {};
    const waitLimit = `${args.rollback.watchSeconds + 600 + (hasHooks ? 2 * hooks.timeoutSeconds : 0)}s`;
    this.link = new command.remote.Command(
      `${name}-link`,
      {
        connection: args.connection,
        create: tool(
          args.layout,
          "switch.sh",
          {
            TARGET: args.active,
            HEALTH_PATH: args.healthPath,
            CHECK_PORT: args.checkPort,
            // bluegreen:verifyTimeout: how long the router may take to serve the target before the link goes back.
            VERIFY_TIMEOUT: args.rollback.verifySeconds,
            WATCH_SECONDS: args.rollback.watchSeconds,
            ERROR_PERCENT: args.rollback.errorPercent,
            MIN_ERRORS: args.rollback.minErrors,
            ...hookVars,
          },
          args.sudo,
        ),
        stdin: hasHooks
          ? toolStdin("switch.sh", { preSwitch: hooks.preSwitch, postSwitch: hooks.postSwitch })
          : undefined,
        addPreviousOutputInEnv: false,
      },
      // The post-switch watch keeps the step running for watchSeconds, and the hooks for theirs.
      { parent: this, customTimeouts: { create: waitLimit, update: waitLimit } },
    );
    this.registerOutputs({ active: args.active, result: this.link.stdout });
  }
}
