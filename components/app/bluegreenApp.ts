import * as pulumi from "@pulumi/pulumi";
import { BluegreenConfig, publicUrl } from "../config";
import { HostConnection } from "../host/host";
import { appLayout, AppLayout, Color, COLORS } from "../host/layout";
import { HostPackages } from "../host/packages";
import { HostSetup } from "../host/setup";
import { Router } from "../router/router";
import { ResolvedArtifact } from "./artifact";
import { Maintenance } from "./maintenance";
import { opsResources } from "./ops";
import { ReleaseRetention } from "./retention";
import { Slot } from "./slot";
import { Tls } from "./tls";
import { TrafficSwitch } from "./trafficSwitch";

/**
 * How an app's resources are named.
 * - `"prefixed"` (the default): `${name}-blue`, `${name}-switch`, …, so several apps fit in one program.
 * - `"bare"`: `blue`, `switch`, …, each with an alias to the stack's root, where the bluegreen program put
 *   them before BlueGreenApp existed. The stack program (index.ts) uses it, so a stack made by an older
 *   release keeps every resource: no slot step or switch runs again, and no delete step stops a live slot.
 */
export type AppNaming = "prefixed" | "bare";

export interface BlueGreenAppArgs {
  /**
   * The machine the app runs on: a `Host`, or any `HostConnection`. Several apps can share one host
   * (give each its own `appName`). A later release adds `hosts` (several behind a load balancer) beside
   * this field, so a program that passes `host` keeps working.
   */
  readonly host: HostConnection;
  /**
   * The app's settings, validated: `loadConfig()` reads a stack's config, `configFrom({...})` checks the
   * same keys given in code (docs/configuration.md lists them). Host keys in it are ignored here: the
   * `host` above is the machine.
   */
  readonly config: BluegreenConfig;
  /**
   * Both slots' artifacts, from `preflight(config)`. Call it before you make the Host: a program that
   * throws after registering a resource may still see the engine create it, so a failed build after
   * `new Host` could leave a new VM or server behind.
   */
  readonly artifacts: Record<Color, ResolvedArtifact>;
  /** See {@link AppNaming}; "prefixed" unless given. */
  readonly naming?: AppNaming;
}

/**
 * One app with two slots on one host: the host's tools and router site for it, TLS, the host packages
 * it needs, a slot per colour, maintenance mode, the switch (the stack's `active`), and release
 * retention. Changing `active` is a one-resource diff: the switch's command.
 */
export class BlueGreenApp extends pulumi.ComponentResource {
  /** Where the public reaches the app: https://domain/ with TLS, http://domain/, else http://ip/. */
  public readonly url: pulumi.Output<string>;
  /** The colour that serves live traffic once this update is done. */
  public readonly active: pulumi.Output<string>;
  public readonly blueVersion: pulumi.Output<string>;
  public readonly greenVersion: pulumi.Output<string>;
  public readonly maintenance: pulumi.Output<boolean>;
  /** `ssh [-p N] user@ip`. */
  public readonly sshCommand: pulumi.Output<string>;
  /** Forwards the loopback-only preview listener (the idle slot) to this machine's same port. */
  public readonly previewTunnelCommand: pulumi.Output<string>;
  /** Live colour, versions, health, maintenance and the last audit lines, from the host. */
  public readonly statusCommand: pulumi.Output<string>;
  /** Where this app lives on its host. */
  public readonly layout: AppLayout;

  constructor(name: string, args: BlueGreenAppArgs, opts?: pulumi.ComponentResourceOptions) {
    super("bluegreen:index:BlueGreenApp", name, {}, opts);
    const { host, config: cfg } = args;
    const bare = args.naming === "bare";
    const child = (n: string) => (bare ? n : `${name}-${n}`);
    const under = (dependsOn: pulumi.Input<pulumi.Input<pulumi.Resource>[]>): pulumi.ComponentResourceOptions => ({
      parent: this,
      dependsOn,
      ...(bare ? { aliases: [{ parent: pulumi.rootStackResource }] } : {}),
    });

    const layout = appLayout(cfg.appName);
    this.layout = layout;
    const on = { connection: host.connection, sudo: host.sudo, layout };
    const artifacts = args.artifacts;

    const setup = new HostSetup(child("setup"), { ...on, router: cfg.router }, under(host.ready ? [host.ready] : []));
    // HTTP-01 through HAProxy: lego answers on a loopback port behind the app's route (nginx serves its webroot).
    const acmeHttpPort =
      cfg.router === "haproxy" && cfg.tls.mode === "acme" && cfg.tls.challenge === "http-01" ? cfg.acmePort : undefined;
    const router = new Router(
      child("router"),
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
      },
      under([setup]),
    );
    new Tls(child("tls"), { ...on, domains: cfg.domains, tls: cfg.tls, acmeHttpPort }, under([router]));
    // Only with hostPackages: an app without them keeps the resources it always had.
    const packages = cfg.hostPackages.length
      ? [new HostPackages(child("packages"), { ...on, packages: cfg.hostPackages }, under([setup]))]
      : [];
    const slots = COLORS.map(
      (color) =>
        new Slot(
          child(color),
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
          under([router, ...packages]),
        ),
    );
    // Before the switch: with maintenance turned off in the same `up`, the switch is watched at once;
    // with it turned on, the switch defers its watch until maintenance goes off.
    const maintenance = new Maintenance(
      child("maintenance"),
      { ...on, enabled: cfg.maintenance, retryAfterSeconds: cfg.maintenanceRetryAfter },
      under([router]),
    );
    // Backups, notifications and metrics: only those configured (components/app/ops.ts).
    const ops = opsResources(child, under, on, cfg.ops, [setup]);
    new TrafficSwitch(
      child("switch"),
      {
        ...on,
        active: cfg.active,
        healthPath: cfg.app.healthPath,
        checkPort: cfg.checkPort,
        rollback: cfg.rollback,
        hooks: cfg.app.hooks,
        secretNames: cfg.app.secretNames,
      },
      under([...slots, maintenance, ...ops]),
    );
    new ReleaseRetention(
      child("releases"),
      { ...on, keep: cfg.keepReleases, versions: slots.map((s) => s.version) },
      under(slots),
    );

    const { user, port } = host.login;
    const login = pulumi.interpolate`${user}@${host.ip}`;
    const portFlag = port === 22 ? "" : ` -p ${port}`;
    const known = publicUrl(cfg);
    this.url = known ? pulumi.output(known) : pulumi.interpolate`http://${host.ip}/`;
    this.active = pulumi.output(cfg.active);
    this.blueVersion = pulumi.output(cfg.slots.blue.version);
    this.greenVersion = pulumi.output(cfg.slots.green.version);
    this.maintenance = pulumi.output(cfg.maintenance);
    this.sshCommand = pulumi.interpolate`ssh${portFlag} ${login}`;
    this.previewTunnelCommand = pulumi.interpolate`ssh${portFlag} -N -L ${cfg.previewPort}:127.0.0.1:${cfg.previewPort} ${login}`;
    this.statusCommand = pulumi.interpolate`ssh${portFlag} ${login} ${host.sudo ? "sudo -n " : ""}${layout.statusCommand}`;
    this.registerOutputs({
      url: this.url,
      active: this.active,
      blueVersion: this.blueVersion,
      greenVersion: this.greenVersion,
      maintenance: this.maintenance,
      sshCommand: this.sshCommand,
      previewTunnelCommand: this.previewTunnelCommand,
      statusCommand: this.statusCommand,
    });
  }
}
