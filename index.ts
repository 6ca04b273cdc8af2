// bluegreen: a host, nginx, two slots and a switch. This file only composes;
// config is validated in components/config/config.ts before anything is created.
import * as pulumi from "@pulumi/pulumi";
import { resolveArtifacts } from "./components/app/artifact";
import { loadConfig, publicUrl } from "./components/config/config";
import { Host } from "./components/host/host";
import { HostPackages } from "./components/host/packages";
import { HostSetup } from "./components/host/setup";
import { appLayout, COLORS } from "./components/host/layout";
import { Maintenance } from "./components/app/maintenance";
import { ReleaseRetention } from "./components/app/retention";
import { Router } from "./components/router/router";
import { Slot } from "./components/app/slot";
import { Tls } from "./components/app/tls";
import { TrafficSwitch } from "./components/app/trafficSwitch";

const cfg = loadConfig();
const artifacts = resolveArtifacts(cfg);

const host = new Host("host", { host: cfg.host, ssh: cfg.ssh, arch: cfg.arch });
const layout = appLayout(cfg.appName);
const on = { connection: host.connection, sudo: host.sudo, layout };

const setup = new HostSetup("setup", { ...on, router: cfg.router }, { dependsOn: [host.ready] });
// HTTP-01 through HAProxy: lego answers on a loopback port behind the app's route (nginx serves its webroot).
const acmeHttpPort =
  cfg.router === "haproxy" && cfg.tls.mode === "acme" && cfg.tls.challenge === "http-01" ? cfg.acmePort : undefined;
const router = new Router(
  "router",
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
  { dependsOn: [setup] },
);
new Tls("tls", { ...on, domains: cfg.domains, tls: cfg.tls, acmeHttpPort }, { dependsOn: [router] });
// Only with hostPackages: a stack without them keeps the resources it always had.
const packages = cfg.hostPackages.length
  ? [new HostPackages("packages", { ...on, packages: cfg.hostPackages }, { dependsOn: [setup] })]
  : [];
const slots = COLORS.map(
  (color) =>
    new Slot(
      color,
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
      { dependsOn: [router, ...packages] },
    ),
);
// Before the switch: with maintenance turned off in the same `up`, the switch is watched at once;
// with it turned on, the switch defers its watch until maintenance goes off.
const maintenanceMode = new Maintenance(
  "maintenance",
  { ...on, enabled: cfg.maintenance, retryAfterSeconds: cfg.maintenanceRetryAfter },
  { dependsOn: [router] },
);
new TrafficSwitch(
  "switch",
  {
    ...on,
    active: cfg.active,
    healthPath: cfg.app.healthPath,
    checkPort: cfg.checkPort,
    rollback: cfg.rollback,
    hooks: cfg.app.hooks,
    secretNames: cfg.app.secretNames,
  },
  { dependsOn: [...slots, maintenanceMode] },
);
new ReleaseRetention(
  "releases",
  { ...on, keep: cfg.keepReleases, versions: slots.map((s) => s.version) },
  { dependsOn: slots },
);

const login = pulumi.interpolate`${cfg.ssh.user}@${host.ip}`;
const portFlag = cfg.ssh.port === 22 ? "" : ` -p ${cfg.ssh.port}`;
export const ip = host.ip;
export const url = publicUrl(cfg) ?? pulumi.interpolate`http://${host.ip}/`;
export const active = cfg.active;
export const maintenance = cfg.maintenance;
export const blueVersion = cfg.slots.blue.version;
export const greenVersion = cfg.slots.green.version;
export const sshCommand = pulumi.interpolate`ssh${portFlag} ${login}`;
/** Forwards the loopback-only preview listener (the idle slot) to this machine's same port. */
export const previewTunnelCommand = pulumi.interpolate`ssh${portFlag} -N -L ${cfg.previewPort}:127.0.0.1:${cfg.previewPort} ${login}`;
/** Live colour, versions, health, maintenance and the last audit lines, from the host. */
export const statusCommand = pulumi.interpolate`ssh${portFlag} ${login} ${host.sudo ? "sudo -n " : ""}${layout.statusCommand}`;
