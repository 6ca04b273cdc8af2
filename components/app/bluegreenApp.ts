import * as pulumi from "@pulumi/pulumi";
import { BluegreenConfig, publicUrl } from "../config";
import { HostConnection } from "../host/host";
import { appLayout, AppLayout, Color } from "../host/layout";
import { appOnHost, placement, retention } from "./appOnHost";
import { ResolvedArtifact } from "./artifact";
import { FleetHost, FleetSwitch } from "./fleetSwitch";
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
   * (give each its own `appName`). Give `hosts` instead to run the app on several machines at once.
   */
  readonly host?: HostConnection;
  /**
   * Several machines that serve the app together (behind a load balancer), each with a name (a-z,
   * 0-9, -). Every switch moves all of them or none (FleetSwitch). The first one listed takes over
   * the resources a one-host app had, so going from `host` to `hosts` keeps them.
   */
  readonly hosts?: readonly FleetHost[];
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
  /** The switch (TrafficSwitch, or FleetSwitch across several hosts): once it is done, every host serves `active`. */
  public readonly switched: pulumi.Resource;

  constructor(name: string, args: BlueGreenAppArgs, opts?: pulumi.ComponentResourceOptions) {
    super("bluegreen:index:BlueGreenApp", name, {}, opts);
    const { config: cfg, artifacts } = args;
    const hosts: readonly FleetHost[] = args.hosts ?? (args.host ? [{ name: "", host: args.host }] : []);
    if (hosts.length > 1 && hosts.some((h) => !/^[a-z0-9](?:[a-z0-9-]{0,14}[a-z0-9])?$/.test(h.name)))
      throw new Error(`BlueGreenApp ${name}: several hosts each need a name of a-z, 0-9 and - (at most 16)`);
    if (hosts.length === 0 || (args.host && args.hosts))
      throw new Error(`BlueGreenApp ${name}: give either host or hosts (at least one)`);
    const layout = appLayout(cfg.appName);
    this.layout = layout;
    const bare = args.naming === "bare";
    // Several hosts, or one named one: each host's resources are named after it.
    const fleet = hosts.some((h) => h.name !== "");
    const places = hosts.map((h, i) => placement(this, { app: name, bare, host: fleet ? h.name : "", first: i === 0 }));
    const drained = (h: FleetHost) => cfg.drainedHosts.includes(h.name);
    const apps = hosts.map((h, i) =>
      appOnHost(places[i], h.host, cfg, artifacts, layout, fleet ? { name: h.name, drained: drained(h) } : undefined),
    );
    // Once per app: the switch (on every host at once, with several), then each host's retention.
    const app = places[0].app;
    // The switch waits for each host's slots, maintenance mode and ops steps (its snapshot reads backup.conf).
    const after = apps.flatMap((a) => [...a.slots, a.maintenance, ...a.ops]);
    if (fleet) {
      this.switched = new FleetSwitch(
        app.name("switch"),
        {
          layout,
          hosts,
          privateKey: cfg.ssh.privateKey,
          privateKeyPassword: cfg.ssh.privateKeyPassword,
          active: cfg.active,
          healthPath: cfg.app.healthPath,
          checkPort: cfg.checkPort,
          rollback: cfg.rollback,
          hooks: cfg.app.hooks,
          secretNames: cfg.app.secretNames,
        },
        app.opts("switch", after),
      );
    } else {
      this.switched = new TrafficSwitch(
        app.name("switch"),
        {
          ...apps[0].on,
          active: cfg.active,
          healthPath: cfg.app.healthPath,
          checkPort: cfg.checkPort,
          rollback: cfg.rollback,
          hooks: cfg.app.hooks,
          secretNames: cfg.app.secretNames,
        },
        app.opts("switch", after),
      );
    }
    apps.forEach((a, i) => retention(places[i], a, cfg));

    const host = hosts[0].host;
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
