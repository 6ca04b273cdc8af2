import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { AppLayout } from "../host/layout";
import { tool } from "../host/tools";

export interface ReleaseRetentionArgs {
  /** Where this app lives on the host (components/host/layout.ts). */
  readonly layout: AppLayout;
  readonly connection: pulumi.Input<command.types.input.remote.ConnectionArgs>;
  readonly sudo: boolean;
  /** Releases kept on the host besides those in use. */
  readonly keep: number;
  /** The versions the slots are configured for in this run: never removed. */
  readonly versions: readonly string[];
}

/**
 * Removes old releases once both slots' deploy steps are done (depend on them),
 * so it never removes a version a slot is about to use in the same `pulumi up`.
 */
export class ReleaseRetention extends pulumi.ComponentResource {
  constructor(name: string, args: ReleaseRetentionArgs, opts?: pulumi.ComponentResourceOptions) {
    super("bluegreen:index:ReleaseRetention", name, {}, opts);
    const prune = new command.remote.Command(
      `${name}-prune`,
      {
        connection: args.connection,
        create: tool(
          args.layout,
          "prune.sh",
          { KEEP: args.keep, PROTECT: [...new Set(args.versions)].join(",") },
          args.sudo,
        ),
        addPreviousOutputInEnv: false,
      },
      { parent: this },
    );
    this.registerOutputs({ result: prune.stdout });
  }
}
