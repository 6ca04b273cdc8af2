import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { AppLayout } from "../host/layout";
import { tool } from "../host/tools";

export interface DrainArgs {
  readonly layout: AppLayout;
  readonly connection: pulumi.Input<command.types.input.remote.ConnectionArgs>;
  readonly sudo: boolean;
  /** true: the balancer's health check gets 503 on this host, and nothing else runs here until its requests stop. */
  readonly drained: boolean;
  /** The router's loopback check listener, which answers the balancer's health path as the public one does. */
  readonly checkPort: number;
  /** The balancer's health check: every `interval` s, `timeout` s each; a target is dropped after `retries` failures. */
  readonly health: { readonly interval: number; readonly timeout: number; readonly retries: number };
}

/**
 * One host of several in or out of the load balancer (bluegreen:drainedHosts), as one step:
 * turning it on fails the balancer's health check on purpose and ends only when the host's public
 * requests have stopped; the app's slots and the switch on that host wait for it.
 */
export class Drain extends pulumi.ComponentResource {
  public readonly state: command.remote.Command;

  constructor(name: string, args: DrainArgs, opts?: pulumi.ComponentResourceOptions) {
    super("bluegreen:index:Drain", name, {}, opts);
    const { interval, timeout, retries } = args.health;
    const eject = interval * retries + timeout;
    const quiet = interval + timeout;
    this.state = new command.remote.Command(
      `${name}-state`,
      {
        connection: args.connection,
        create: tool(
          args.layout,
          "drain.sh",
          {
            STATE: args.drained ? "on" : "off",
            CHECK_PORT: args.checkPort,
            EJECT_SECONDS: eject,
            QUIET_SECONDS: quiet,
            WAIT_SECONDS: eject + quiet + 60,
          },
          args.sudo,
        ),
        addPreviousOutputInEnv: false,
      },
      { parent: this, customTimeouts: { create: `${eject + quiet + 400}s`, update: `${eject + quiet + 400}s` } },
    );
    this.registerOutputs({ drained: args.drained });
  }
}
