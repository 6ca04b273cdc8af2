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
    /** tcp-mode upstream files and the links to them. */
    nginxDir: "/etc/nginx/bluegreen",
    nginxSite: "/etc/nginx/conf.d/bluegreen.conf",
    unitFile: "/etc/systemd/system/bluegreen@.service",
    /** Every deploy, switch, rollback and maintenance change, one line each. */
    auditLog: "/var/log/bluegreen/audit.log",
    /** nginx's log of public requests; the post-switch watch reads it. */
    accessLog: "/var/log/nginx/bluegreen.access.log",
    appUser: "bluegreen",
} as const;

export const unitName = (c: Color) => `bluegreen@${c}`;
export const slotSocket = (c: Color) => `${layout.runDir}/${c}/app.sock`;
/** The link nginx proxies live traffic through in socket mode. */
export const liveSocketLink = `${layout.stateDir}/active.sock`;
/** The link the preview listener proxies through in socket mode: always the idle slot. */
export const previewSocketLink = `${layout.stateDir}/preview.sock`;
export const liveUpstreamLink = `${layout.nginxDir}/live.conf`;
export const previewUpstreamLink = `${layout.nginxDir}/preview.conf`;
export const activeColorFile = `${layout.stateDir}/active`;
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
        BG_NGINX_DIR: layout.nginxDir,
        BG_NGINX_SITE: layout.nginxSite,
        BG_UNIT_FILE: layout.unitFile,
        BG_LIVE_SOCK: liveSocketLink,
        BG_PREVIEW_SOCK: previewSocketLink,
        BG_LIVE_UPSTREAM: liveUpstreamLink,
        BG_PREVIEW_UPSTREAM: previewUpstreamLink,
        BG_ACTIVE_FILE: activeColorFile,
        BG_LOCK: `${layout.stateDir}/lock`,
        BG_RELEASE_LOCK: `${layout.stateDir}/release.lock`,
        BG_MAINTENANCE_FLAG: maintenanceFlag,
        BG_WWW_DIR: `${layout.stateDir}/www`,
        BG_AUDIT_LOG: layout.auditLog,
        BG_ACCESS_LOG: layout.accessLog,
    };
    return [
        "# shellcheck shell=bash disable=SC2034",
        "# Generated from components/layout.ts; do not edit on the host.",
        ...Object.entries(paths).map(([k, v]) => `${k}=${root}${v}`),
        `BG_APP_USER=${layout.appUser}`,
        `nginx_test() { ${o.nginxTest ?? "nginx -t"}; }`,
        `nginx_reload() { ${o.nginxReload ?? "systemctl reload nginx"}; }`,
        "",
    ].join("\n");
}
