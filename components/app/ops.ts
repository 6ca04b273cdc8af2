import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { OpsConfig } from "../config/config";
import { AppLayout } from "../host/layout";
import { Backups } from "./backups";
import { Metrics } from "./metrics";
import { Notifications } from "./notifications";

export interface OpsOn {
  readonly connection: pulumi.Input<command.types.input.remote.ConnectionArgs>;
  readonly sudo: boolean;
  readonly layout: AppLayout;
}

/**
 * Backups, notifications and metrics of one app (BlueGreenApp composes them): a resource for each
 * that is configured, and none for the others, so an app without them keeps exactly the
 * resources it had. Returned so the switch can wait for them (its snapshot reads backup.conf).
 */
export function opsResources(
  child: (n: string) => string,
  options: (n: string, dependsOn: pulumi.Resource[]) => pulumi.ComponentResourceOptions,
  on: OpsOn,
  ops: OpsConfig,
  after: pulumi.Resource[],
): pulumi.Resource[] {
  const out: pulumi.Resource[] = [];
  if (ops.backups) out.push(new Backups(child("backups"), { ...on, backups: ops.backups }, options("backups", after)));
  if (ops.notify) out.push(new Notifications(child("notify"), { ...on, notify: ops.notify }, options("notify", after)));
  if (ops.metrics) out.push(new Metrics(child("metrics"), { ...on, metrics: ops.metrics }, options("metrics", after)));
  return out;
}
