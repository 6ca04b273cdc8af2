import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { AppLayout } from "./layout";
import { tool } from "./tools";

export interface HostPackagesArgs {
  /** Where this app lives on the host (components/host/layout.ts). */
  readonly layout: AppLayout;
  readonly connection: pulumi.Input<command.types.input.remote.ConnectionArgs>;
  readonly sudo: boolean;
  /** apt package names (validated in config.ts), optionally NAME=VERSION. */
  readonly packages: readonly string[];
}

/**
 * The Debian/Ubuntu packages the app needs (a runtime such as nodejs), installed
 * before any slot starts. Only missing packages are installed: nothing is upgraded,
 * and no service is restarted (host-packages.sh). A package dropped from the list
 * stays on the host: another app may use it.
 */
export class HostPackages extends pulumi.ComponentResource {
  public readonly installed: command.remote.Command;

  constructor(name: string, args: HostPackagesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("bluegreen:index:HostPackages", name, {}, opts);
    this.installed = new command.remote.Command(
      `${name}-install`,
      {
        connection: args.connection,
        create: tool(args.layout, "host-packages.sh", { PACKAGES: args.packages.join(" ") }, args.sudo),
        addPreviousOutputInEnv: false,
      },
      { parent: this, customTimeouts: { create: "30m", update: "30m" } },
    );
    this.registerOutputs({ packages: args.packages, result: this.installed.stdout });
  }
}
