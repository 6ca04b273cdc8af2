import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { Color } from "./layout";
import { renderNginxSite } from "./render";
import { toolCommand } from "./shell";

export interface RouterArgs {
  readonly connection: pulumi.Input<command.types.input.remote.ConnectionArgs>;
  readonly sudo: boolean;
  /** Names the site answers to; empty: any. */
  readonly domains: readonly string[];
  /** Serve :443 too (the certificate comes from the Tls component); undefined: HTTP only. */
  readonly tls?: { readonly hstsMaxAge: number };
  /** Loopback port of the preview listener, which always reaches the idle slot. */
  readonly previewPort: number;
  /** Loopback port of the check listener: the live slot, never in maintenance. */
  readonly checkPort: number;
  /** Retry-After of the maintenance page, in seconds. */
  readonly maintenanceRetryAfter: number;
  /** The slots' loopback ports, used while a slot listens on tcp. */
  readonly ports: Readonly<Record<Color, number>>;
}

/**
 * nginx, installed and configured idempotently. The site names neither a colour
 * nor a link mode (each request reads the live link and the slot's tcp flag), so
 * switching traffic and changing linkMode never touch it.
 */
export class Router extends pulumi.ComponentResource {
  public readonly config: command.remote.Command;

  constructor(name: string, args: RouterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("bluegreen:index:Router", name, {}, opts);
    const install = new command.remote.Command(
      `${name}-install`,
      {
        connection: args.connection,
        create: toolCommand("router-install.sh", {}, args.sudo),
        addPreviousOutputInEnv: false,
      },
      { parent: this },
    );
    this.config = new command.remote.Command(
      `${name}-config`,
      {
        connection: args.connection,
        create: toolCommand(
          "router-config.sh",
          { BLUE_PORT: args.ports.blue, GREEN_PORT: args.ports.green },
          args.sudo,
        ),
        stdin: renderNginxSite({
          domains: args.domains,
          tls: args.tls,
          previewPort: args.previewPort,
          checkPort: args.checkPort,
          maintenanceRetryAfter: args.maintenanceRetryAfter,
          ports: args.ports,
        }),
        addPreviousOutputInEnv: false,
      },
      { parent: this, dependsOn: [install] },
    );
    this.registerOutputs({});
  }
}
