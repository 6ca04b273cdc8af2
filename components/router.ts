import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { LinkMode } from "./config";
import { renderNginxSite } from "./render";
import { toolCommand } from "./shell";

export interface RouterArgs {
    readonly connection: pulumi.Input<command.types.input.remote.ConnectionArgs>;
    readonly sudo: boolean;
    /** How nginx reaches the live slot: a socket symlink (no reload) or an upstream include (reload). */
    readonly mode: LinkMode;
    readonly serverName: string;
    /** Loopback port of the preview listener, which always reaches the idle slot. */
    readonly previewPort: number;
    /** Loopback port of the check listener: the live slot, never in maintenance. */
    readonly checkPort: number;
    /** Retry-After of the maintenance page, in seconds. */
    readonly maintenanceRetryAfter: number;
    /** tcp mode: the slots' loopback ports. */
    readonly ports: { readonly blue: number; readonly green: number };
}

/**
 * nginx, installed and configured idempotently. The site never names a
 * colour, so switching traffic does not touch it.
 */
export class Router extends pulumi.ComponentResource {
    public readonly config: command.remote.Command;

    constructor(name: string, args: RouterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("bluegreen:index:Router", name, {}, opts);
        const install = new command.remote.Command(
            `${name}-install`,
            { connection: args.connection, create: toolCommand("router-install.sh", {}, args.sudo) },
            { parent: this },
        );
        this.config = new command.remote.Command(
            `${name}-config`,
            {
                connection: args.connection,
                create: toolCommand("router-config.sh", { MODE: args.mode, BLUE_PORT: args.ports.blue, GREEN_PORT: args.ports.green }, args.sudo),
                stdin: renderNginxSite({
                    mode: args.mode,
                    serverName: args.serverName,
                    previewPort: args.previewPort,
                    checkPort: args.checkPort,
                    maintenanceRetryAfter: args.maintenanceRetryAfter,
                }),
            },
            { parent: this, dependsOn: [install] },
        );
        this.registerOutputs({});
    }
}
