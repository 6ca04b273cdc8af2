// What BlueGreenApp places on each of its hosts (the host's tools and router site for the app,
// TLS, host packages, a slot per colour, maintenance mode, release retention), and how those
// resources are named: the app's own names on its one host, or `<host>-...` on each of several,
// where the first host takes over a one-host app's resources by alias.
import * as pulumi from "@pulumi/pulumi";
import { BluegreenConfig } from "../config";
import { HostConnection } from "../host/host";
import { AppLayout, Color, COLORS } from "../host/layout";
import { HostPackages } from "../host/packages";
import { HostSetup } from "../host/setup";
import { Router } from "../router/router";
import { ResolvedArtifact } from "./artifact";
import { Drain } from "./drain";
import { Maintenance } from "./maintenance";
import { opsResources } from "./ops";
import { ReleaseRetention } from "./retention";
import { Slot } from "./slot";
import { Tls } from "./tls";

/** Names and resource options of an app's children. */
export interface Namer {
  readonly name: (n: string) => string;
  readonly opts: (
    n: string,
    dependsOn: pulumi.Input<pulumi.Input<pulumi.Resource>[]>,
  ) => pulumi.ComponentResourceOptions;
}

/** Where an app's children go on one host: `on` names those of that host, `app` those of the app itself. */
export interface Placement {
  readonly on: Namer;
  readonly app: Namer;
}

/**
 * How BlueGreenApp names its children. `bare`: the stack program's own names (`blue`, `switch`),
 * each aliased to the stack's root, where they were before BlueGreenApp; else `${app}-blue`. With
 * several hosts, a host's children are `<host>-blue`...; the first host's are also aliased to the
 * one-host names, so a stack that grows from one host to several keeps every resource it had.
 */
export function placement(
  parent: pulumi.Resource,
  p: { readonly app: string; readonly bare: boolean; readonly host: string; readonly first: boolean },
): Placement {
  const own = (n: string) => (p.bare ? n : `${p.app}-${n}`);
  const sameName = p.bare ? [{ parent: pulumi.rootStackResource }] : [];
  const app: Namer = { name: own, opts: (_n, dependsOn) => ({ parent, dependsOn, aliases: sameName }) };
  if (!p.host) return { on: app, app };
  const on: Namer = {
    name: (n) => own(`${p.host}-${n}`),
    opts: (n, dependsOn) => ({
      parent,
      dependsOn,
      aliases: p.first ? [{ name: own(n) }, ...(p.bare ? [{ name: n, parent: pulumi.rootStackResource }] : [])] : [],
    }),
  };
  return { on, app };
}

export interface OnHost {
  readonly on: {
    readonly connection: HostConnection["connection"];
    readonly sudo: boolean;
    readonly layout: AppLayout;
  };
  readonly slots: Slot[];
  readonly maintenance: Maintenance;
  /** Backups, notifications and metrics: those configured (components/app/ops.ts). */
  readonly ops: pulumi.Resource[];
}

/** One of several hosts: its name, and whether it is out of the load balancer (bluegreen:drainedHosts). */
export interface FleetMember {
  readonly name: string;
  readonly drained: boolean;
}

/** The app's resources on one host, up to its slots and maintenance mode. */
export function appOnHost(
  p: Placement,
  host: HostConnection,
  cfg: BluegreenConfig,
  artifacts: Record<Color, ResolvedArtifact>,
  layout: AppLayout,
  member?: FleetMember,
): OnHost {
  const { name, opts } = p.on;
  const on = { connection: host.connection, sudo: host.sudo, layout };
  const setup = new HostSetup(
    name("setup"),
    { ...on, router: cfg.router },
    opts("setup", host.ready ? [host.ready] : []),
  );
  // HTTP-01 through HAProxy: lego answers on a loopback port behind the app's route (nginx serves its webroot).
  const acmeHttpPort =
    cfg.router === "haproxy" && cfg.tls.mode === "acme" && cfg.tls.challenge === "http-01" ? cfg.acmePort : undefined;
  const router = new Router(
    name("router"),
    {
      ...on,
      router: cfg.router,
      owner: setup.owner,
      domains: cfg.domains,
      tls: cfg.tls.mode === "off" ? undefined : { hstsMaxAge: cfg.tls.hstsMaxAge },
      previewPort: cfg.previewPort,
      checkPort: cfg.checkPort,
      acmePort: acmeHttpPort,
      maintenanceRetryAfter: cfg.maintenanceRetryAfter,
      ports: { blue: cfg.slots.blue.port, green: cfg.slots.green.port },
      // Several hosts: the path the balancer's health check asks (the live slot's readiness, or drained).
      balancer: member ? { healthPath: cfg.app.healthPath } : undefined,
    },
    opts("router", [setup]),
  );
  // Several hosts: in or out of the balancer before anything that serves is touched.
  const drain = member
    ? [
        new Drain(
          name("drain"),
          { ...on, drained: member.drained, checkPort: cfg.checkPort, health: cfg.balancer.health },
          opts("drain", [router]),
        ),
      ]
    : [];
  new Tls(name("tls"), { ...on, domains: cfg.domains, tls: cfg.tls, acmeHttpPort }, opts("tls", [router]));
  // Only with hostPackages: an app without them keeps the resources it always had.
  const packages = cfg.hostPackages.length
    ? [new HostPackages(name("packages"), { ...on, packages: cfg.hostPackages }, opts("packages", [setup]))]
    : [];
  const slots = COLORS.map(
    (color) =>
      new Slot(
        name(color),
        {
          ...on,
          hostAddress: host.ip,
          color,
          version: cfg.slots[color].version,
          artifact: artifacts[color],
          mode: cfg.linkMode,
          port: cfg.slots[color].port,
          app: cfg.app,
          bundleMaxMegabytes: cfg.bundleMaxMegabytes,
        },
        opts(color, [router, ...packages, ...drain]),
      ),
  );
  // Before the switch: with maintenance turned off in the same `up`, the switch is watched at once;
  // with it turned on, the switch defers its watch until maintenance goes off.
  const maintenance = new Maintenance(
    name("maintenance"),
    { ...on, enabled: cfg.maintenance, retryAfterSeconds: cfg.maintenanceRetryAfter },
    opts("maintenance", [router, ...drain]),
  );
  // Backups, notifications and metrics: only those configured.
  const ops = opsResources(name, opts, on, cfg.ops, [setup]);
  return { on, slots, maintenance, ops };
}

/** Release retention on one host, after its slots. */
export function retention(p: Placement, a: OnHost, cfg: BluegreenConfig): void {
  new ReleaseRetention(
    p.on.name("releases"),
    { ...a.on, keep: cfg.keepReleases, versions: a.slots.map((s) => s.version) },
    p.on.opts("releases", a.slots),
  );
}
