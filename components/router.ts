import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { AppLayout, Color } from "./layout";
import { renderBundle, renderNginxCommon, renderNginxSite } from "./render";
import { toolCommand } from "./shell";

export interface RouterArgs {
  /** Where this app lives on the host (components/layout.ts). */
  readonly layout: AppLayout;
  readonly connection: pulumi.Input<command.types.input.remote.ConnectionArgs>;
  readonly sudo: boolean;
  /** The stack that owns this app (organization/project/stack): a second stack may not take its name. */
  readonly owner: pulumi.Input<string>;
  /** Names the site answers to; empty: any name no other app claims. */
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
 * nginx, installed and configured idempotently, shared by every app on the host.
 * This app's site routes its domains to its slots; the site names neither a colour
 * nor a link mode (each request reads the live link and the slot's tcp flag), so
 * switching traffic and changing linkMode never touch it. Before anything is
 * written, the app's claims (owner stack, domains, ports) are checked against
 * every other app's on the host. Destroying the stack removes this app's site,
 * units and state, and nothing of any other app.
 */
export class Router extends pulumi.ComponentResource {
  public readonly config: command.remote.Command;

  constructor(name: string, args: RouterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("bluegreen:index:Router", name, {}, opts);
    const install = new command.remote.Command(
      `${name}-install`,
      {
        connection: args.connection,
        create: toolCommand(args.layout, "router-install.sh", {}, args.sudo),
        addPreviousOutputInEnv: false,
      },
      { parent: this },
    );
    this.config = new command.remote.Command(
      `${name}-config`,
      {
        connection: args.connection,
        create: pulumi.output(args.owner).apply((owner) =>
          toolCommand(
            args.layout,
            "router-config.sh",
            {
              OWNER: owner,
              DOMAINS: args.domains.join(" "),
              PORTS: [args.previewPort, args.checkPort, args.ports.blue, args.ports.green].join(" "),
              BLUE_PORT: args.ports.blue,
              GREEN_PORT: args.ports.green,
            },
            args.sudo,
          ),
        ),
        stdin: renderBundle({
          common: renderNginxCommon(),
          site: renderNginxSite({
            layout: args.layout,
            domains: args.domains,
            tls: args.tls,
            previewPort: args.previewPort,
            checkPort: args.checkPort,
            maintenanceRetryAfter: args.maintenanceRetryAfter,
            ports: args.ports,
          }),
        }),
        // Gone tools mean the app was removed already (a retried destroy): nothing to do.
        delete: pulumi
          .output(args.owner)
          .apply(
            (owner) =>
              `if [ -x ${args.layout.toolsDir}/app-remove.sh ]; then ${toolCommand(args.layout, "app-remove.sh", { OWNER: owner }, args.sudo)}; fi`,
          ),
        addPreviousOutputInEnv: false,
      },
      { parent: this, dependsOn: [install] },
    );
    this.registerOutputs({});
  }
}
