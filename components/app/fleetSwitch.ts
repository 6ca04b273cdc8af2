import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as fs from "fs";
import * as path from "path";
import { HooksConfig, RollbackConfig } from "../config/config";
import { HostConnection } from "../host/host";
import { AppLayout, Color } from "../host/layout";
import { SCRIPTS_DIR } from "../host/shell";
import { tool, toolStdin } from "../host/tools";

/** One host of the switch: its name (in bluegreen:hosts) and how to reach it. */
export interface FleetHost {
  readonly name: string;
  readonly host: HostConnection;
}

export interface FleetSwitchArgs {
  readonly layout: AppLayout;
  readonly hosts: readonly FleetHost[];
  /** The key the coordinator's ssh logs in with; without one, the ssh agent of the `pulumi up`. */
  readonly privateKey?: pulumi.Input<string>;
  readonly privateKeyPassword?: pulumi.Input<string>;
  /** The slot that should receive live traffic on every host. */
  readonly active: Color;
  readonly healthPath: string;
  readonly checkPort: number;
  readonly rollback: RollbackConfig;
  readonly hooks: HooksConfig;
  readonly secretNames: readonly string[];
}

/** The coordinator's text (components/scripts/switch/local-coordinate.js), sent to `node -`. */
export function coordinatorScript(): string {
  return fs.readFileSync(path.join(SCRIPTS_DIR, "switch", "local-coordinate.js"), "utf8");
}

/** Seconds the switch may take per phase, for the coordinator, each host's wait for it, and the step. */
export function fleetBounds(rollback: RollbackConfig, hooks: HooksConfig) {
  const hooksBound = hooks.preSwitch || hooks.postSwitch ? hooks.timeoutSeconds + 60 : 0;
  // A host may wait for its app lock (300 s), then gates, runs preSwitch and reads its counters.
  const prepare = 300 + 2 * rollback.verifySeconds + hooksBound + 60;
  const phase = rollback.verifySeconds + rollback.watchSeconds + 60;
  return { prepare, phase, hostWait: Math.max(prepare, phase) + 60, step: prepare + 2 * phase + hooksBound + 120 };
}

/**
 * Points live traffic at `active` on every host at once, or on none: one step, `switch-hosts`,
 * that runs local-coordinate.js where `pulumi up` runs. It drives each host's switch.sh over SSH
 * through prepare, commit, watch and confirm (phases.sh); any host that fails calls every host
 * back. The colour is in the command's text, so changing it is an update of this one resource.
 */
export class FleetSwitch extends pulumi.ComponentResource {
  public readonly coordinator: command.local.Command;

  constructor(name: string, args: FleetSwitchArgs, opts?: pulumi.ComponentResourceOptions) {
    super("bluegreen:index:FleetSwitch", name, {}, opts);
    const { hooks, rollback } = args;
    const hasHooks = hooks.preSwitch !== "" || hooks.postSwitch !== "";
    const bounds = fleetBounds(rollback, hooks);
    const hosts = pulumi.all(
      args.hosts.map(({ name: hostName, host }) =>
        pulumi.all([host.ip, host.hostKey ?? ""]).apply(([address, hostKey]) => ({
          name: hostName,
          address,
          port: host.login.port,
          user: host.login.user,
          hostKey,
          command: tool(
            args.layout,
            "switch.sh",
            {
              TARGET: args.active,
              HEALTH_PATH: args.healthPath,
              CHECK_PORT: args.checkPort,
              VERIFY_TIMEOUT: rollback.verifySeconds,
              WATCH_SECONDS: rollback.watchSeconds,
              ERROR_PERCENT: rollback.errorPercent,
              MIN_ERRORS: rollback.minErrors,
              ...(hasHooks
                ? {
                    HOOKS: "yes",
                    HOOK_TIMEOUT: hooks.timeoutSeconds,
                    ...(hooks.postSwitch ? { POST_SWITCH_FAILURE: hooks.postSwitchFailure } : {}),
                    ...(args.secretNames.length ? { SECRET_NAMES: args.secretNames.join(" ") } : {}),
                  }
                : {}),
              COORDINATED: "yes",
              PHASE_TIMEOUT: bounds.hostWait,
              SWITCH_ID: "%SWITCH_ID%",
            },
            host.sudo,
          ),
        })),
      ),
    );
    const secrets: Record<string, pulumi.Input<string>> = {};
    if (args.privateKey) secrets.SSH_PRIVATE_KEY = pulumi.secret(args.privateKey);
    if (args.privateKeyPassword) secrets.SSH_PRIVATE_KEY_PASSWORD = pulumi.secret(args.privateKeyPassword);
    const limit = `${bounds.step}s`;
    this.coordinator = new command.local.Command(
      `${name}-hosts`,
      {
        // The colour and the limits are in the text: `pulumi preview` shows a switch as this line changing.
        create: [
          `env TARGET=${args.active} ERROR_PERCENT=${rollback.errorPercent} MIN_ERRORS=${rollback.minErrors}`,
          `PREPARE_SECONDS=${bounds.prepare} PHASE_SECONDS=${bounds.phase} node -`,
        ].join(" "),
        stdin: coordinatorScript(),
        environment: {
          HOSTS: hosts.apply((h) => JSON.stringify(h)),
          ...(hasHooks
            ? { SECTIONS: toolStdin("switch.sh", { preSwitch: hooks.preSwitch, postSwitch: hooks.postSwitch }) }
            : {}),
          ...secrets,
        },
        addPreviousOutputInEnv: false,
      },
      { parent: this, customTimeouts: { create: limit, update: limit } },
    );
    this.registerOutputs({ active: args.active, result: this.coordinator.stdout });
  }
}
