// The bluegreen stack: its hosts and one app, from this stack's config (docs/configuration.md).
// Everything else lives in the library (components/index.ts); this file only composes.
import * as pulumi from "@pulumi/pulumi";
import { balancerFor, BlueGreenApp, hostsFor, loadConfig, preflight } from "./components";

const cfg = loadConfig();
// Local tools and builds before the hosts: a missing tool or a failed build stops here, before a VM or server exists.
const artifacts = preflight(cfg);
const fleet = hostsFor(cfg);
// "bare": the names and places this stack's resources have had since before BlueGreenApp.
const app = new BlueGreenApp("app", { hosts: fleet.hosts, config: cfg, artifacts, naming: "bare" });
// Several Hetzner servers: a load balancer, which sends each host requests once it serves the live colour.
const balancer = balancerFor(cfg, fleet, [app.switched]);

const first = fleet.hosts[0].host;
export const ip = first.ip;
// The host's SSH key every step pins: the release CLI's ssh trusts it, and an attached stack (hostKind stack) pins it.
export const hostKey = first.hostKey;
// Several hosts: each one's address and SSH key (npm run status asks every one).
export const hosts = fleet.hosts[0].name
  ? pulumi.output(Object.fromEntries(fleet.hosts.map((h) => [h.name, { ip: h.host.ip, hostKey: h.host.hostKey }])))
  : undefined;
export const balancerIp = balancer?.ipv4;
export const url = app.url;
export const { active, maintenance, blueVersion, greenVersion } = app;
export const { sshCommand, previewTunnelCommand, statusCommand } = app;
