import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { RouterKind } from "../host/layout";
import { ROUTERS, SiteOptions } from "./routers";
import { tool, toolStdin } from "../host/tools";

export interface RouterArgs extends SiteOptions {
  readonly connection: pulumi.Input<command.types.input.remote.ConnectionArgs>;
  readonly sudo: boolean;
  /** Which router the host runs (components/router/routers.ts); every app on a host uses the same. */
  readonly router: RouterKind;
  /** The stack that owns this app (organization/project/stack): a second stack may not take its name. */
  readonly owner: pulumi.Input<string>;
}

/**
 * The router (nginx or HAProxy, components/router/routers.ts), installed and configured
 * idempotently, shared by every app on the host. This app's config routes its domains
 * to its slots; it names neither a colour nor a link mode (nginx reads the live link and
 * the slot's tcp flag per request; HAProxy a map set through its runtime API), so
 * switching traffic and changing linkMode never touch it. Before anything is
 * written, the app's claims (owner stack, domains, ports) are checked against
 * every other app's on the host. Destroying the stack removes this app's site,
 * units and state, and nothing of any other app.
 */
export class Router extends pulumi.ComponentResource {
  public readonly config: command.remote.Command;

  constructor(name: string, args: RouterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("bluegreen:index:Router", name, {}, opts);
    const impl = ROUTERS[args.router];
    const install = new command.remote.Command(
      `${name}-install`,
      {
        connection: args.connection,
        create: tool(args.layout, impl.installTool, {}, args.sudo),
        addPreviousOutputInEnv: false,
      },
      { parent: this },
    );
    this.config = new command.remote.Command(
      `${name}-config`,
      {
        connection: args.connection,
        create: pulumi.output(args.owner).apply((owner) =>
          tool(
            args.layout,
            "router-config.sh",
            {
              OWNER: owner,
              DOMAINS: args.domains.join(" "),
              // The acme port is claimed only while lego listens there (HAProxy, HTTP-01).
              PORTS: [args.previewPort, args.checkPort, args.ports.blue, args.ports.green, args.acmePort ?? ""]
                .join(" ")
                .trim(),
              BLUE_PORT: args.ports.blue,
              GREEN_PORT: args.ports.green,
            },
            args.sudo,
          ),
        ),
        stdin: toolStdin(
          "router-config.sh",
          impl.sections({
            layout: args.layout,
            domains: args.domains,
            tls: args.tls,
            acmePort: args.acmePort,
            previewPort: args.previewPort,
            checkPort: args.checkPort,
            maintenanceRetryAfter: args.maintenanceRetryAfter,
            ports: args.ports,
            balancer: args.balancer,
          }),
        ),
        // Gone tools mean the app was removed already (a retried destroy): nothing to do.
        delete: pulumi
          .output(args.owner)
          .apply(
            (owner) =>
              `if [ -x ${args.layout.toolsDir}/app-remove.sh ]; then ${tool(args.layout, "app-remove.sh", { OWNER: owner }, args.sudo)}; fi`,
          ),
        addPreviousOutputInEnv: false,
      },
      { parent: this, dependsOn: [install] },
    );
    this.registerOutputs({});
  }
}
