// The bluegreen stack: one host and one app, from this stack's config (docs/configuration.md).
// Everything else lives in the library (components/index.ts); this file only composes.
import { BlueGreenApp, Host, loadConfig, preflight } from "./components";

const cfg = loadConfig();
// Local tools and builds before the Host: a missing tool or a failed build stops here, before a VM or server exists.
const artifacts = preflight(cfg);
const host = new Host("host", { host: cfg.host, ssh: cfg.ssh, arch: cfg.arch });
// "bare": the names and places this stack's resources have had since before BlueGreenApp.
const app = new BlueGreenApp("app", { host, config: cfg, artifacts, naming: "bare" });

export const ip = host.ip;
// The host's SSH key every step pins: the release CLI's ssh trusts it, and an attached stack (hostKind stack) pins it.
export const hostKey = host.hostKey;
export const url = app.url;
export const active = app.active;
export const maintenance = app.maintenance;
export const blueVersion = app.blueVersion;
export const greenVersion = app.greenVersion;
export const sshCommand = app.sshCommand;
export const previewTunnelCommand = app.previewTunnelCommand;
export const statusCommand = app.statusCommand;
