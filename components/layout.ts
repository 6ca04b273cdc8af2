// Where bluegreen keeps things on the host. The same names reach the host
// scripts as layout.sh (rendered from this object), so there is one source.

export const COLORS = ["blue", "green"] as const;
export type Color = (typeof COLORS)[number];

export const otherColor = (c: Color): Color => (c === "blue" ? "green" : "blue");

export const layout = {
  /** Host scripts, installed by the HostSetup component. */
  toolsDir: "/usr/local/lib/bluegreen",
  /** Persistent state: links, recorded active colour, per-slot records, lock. */
  stateDir: "/var/lib/bluegreen",
  /** Data directory both slots read and write (SQLite lives here). */
  dataDir: "/var/lib/bluegreen/data",
  /** One directory per version, written once. */
  releasesDir: "/opt/bluegreen/releases",
  /** Per-slot env files, mode 0600, read by systemd before it drops privileges. */
  envDir: "/etc/bluegreen",
  /** Per-slot runtime directories (systemd RuntimeDirectory) holding the sockets. */
  runDir: "/run/bluegreen",
  nginxSite: "/etc/nginx/conf.d/bluegreen.conf",
  /** systemd looks for an instance's own unit file before the template, so each slot has its own. */
  unitDir: "/etc/systemd/system",
  /** Uploaded artifacts, kept across reboots (unlike /tmp) so a missing release can be stored again. */
  uploadDir: "/var/tmp",
  /** Every deploy, switch, rollback and maintenance change, one line each. */
  auditLog: "/var/log/bluegreen/audit.log",
  /** nginx's log of public requests; the post-switch watch reads it. */
  accessLog: "/var/log/nginx/bluegreen.access.log",
  appUser: "bluegreen",
} as const;

export const unitName = (c: Color) => `bluegreen@${c}`;
export const slotSocket = (c: Color) => `${layout.runDir}/${c}/app.sock`;
/**
 * The live pointer: a symlink to ${stateDir}/colors/<colour>, a directory holding one
 * file named after that colour. nginx tests `-f live/green` on every request, so
 * one rename(2) of this link moves every new request, with no reload.
 */
export const liveLink = `${layout.stateDir}/live`;
/** Present while a slot listens on a loopback port rather than its unix socket (nginx passes a variable as the slot). */
export const slotTcpFlag = (slot: Color | "$bluegreen_slot") => `${layout.stateDir}/slots/${slot}/tcp`;
export const activeColorFile = `${layout.stateDir}/active`;
/** HTTPS: the live certificate (chain and key in one file, read by nginx per handshake) and its records. */
export const tlsDir = `${layout.stateDir}/tls`;
/** A symlink to the newest installed certificate's directory; renamed, never rewritten in place. */
export const tlsPem = `${tlsDir}/live/cert.pem`;
/** While this file exists (a certificate is installed and tls is on), port 80 redirects to https. */
export const httpsFlag = `${tlsDir}/https`;
/** lego's --path: the ACME account key and the issued certificates, root only. */
export const acmeDir = `${layout.stateDir}/acme`;
/** HTTP-01 tokens lego writes (--http.webroot) and nginx serves under /.well-known/acme-challenge/. */
export const acmeWebroot = `${layout.stateDir}/acme-webroot`;
/** The renewal timer's settings (acme.conf) and the DNS provider's credentials (dns.env, 0600). */
export const tlsConfDir = `${layout.envDir}/tls`;
export const tlsRenewUnit = "bluegreen-tls-renew";

/** While this file exists, public requests get the maintenance page. */
export const maintenanceFlag = `${layout.stateDir}/maintenance`;

export interface LayoutShOptions {
  /** Prefix for every path; tests run the host scripts in a temp dir. */
  readonly root?: string;
  /** Commands that check and reload nginx's config. */
  readonly nginxTest?: string;
  readonly nginxReload?: string;
}

/** layout.sh, sourced by every host script: the paths above plus how to drive nginx. */
export function renderLayoutSh(o: LayoutShOptions = {}): string {
  const root = o.root ?? "";
  const paths: Record<string, string> = {
    BG_TOOLS_DIR: layout.toolsDir,
    BG_STATE_DIR: layout.stateDir,
    BG_DATA_DIR: layout.dataDir,
    BG_RELEASES_DIR: layout.releasesDir,
    BG_ENV_DIR: layout.envDir,
    BG_RUN_DIR: layout.runDir,
    BG_NGINX_SITE: layout.nginxSite,
    BG_UNIT_DIR: layout.unitDir,
    BG_UPLOAD_DIR: layout.uploadDir,
    BG_LIVE_LINK: liveLink,
    BG_ACTIVE_FILE: activeColorFile,
    BG_SWITCH_INTENT: `${layout.stateDir}/switch.intent`,
    BG_LOCK: `${layout.stateDir}/lock`,
    BG_RELEASE_LOCK: `${layout.stateDir}/release.lock`,
    BG_MAINTENANCE_FLAG: maintenanceFlag,
    BG_WWW_DIR: `${layout.stateDir}/www`,
    BG_AUDIT_LOG: layout.auditLog,
    BG_TLS_DIR: tlsDir,
    BG_TLS_PEM: tlsPem,
    BG_HTTPS_FLAG: httpsFlag,
    BG_ACME_DIR: acmeDir,
    BG_ACME_WEBROOT: acmeWebroot,
    BG_TLS_CONF_DIR: tlsConfDir,
    BG_ACCESS_LOG: layout.accessLog,
  };
  return [
    "# shellcheck shell=bash disable=SC2034",
    "# Generated from components/layout.ts; do not edit on the host.",
    ...Object.entries(paths).map(([k, v]) => `${k}=${root}${v}`),
    `BG_APP_USER=${layout.appUser}`,
    `BG_TLS_RENEW_UNIT=${tlsRenewUnit}`,
    // Bounded: the command provider never kills a remote command, so every wait needs its own deadline.
    `nginx_test() { ${o.nginxTest ?? "timeout 60 nginx -t"}; }`,
    `nginx_reload() { ${o.nginxReload ?? "timeout 60 systemctl reload nginx"}; }`,
    "",
  ].join("\n");
}
