// Where bluegreen keeps things on the host. The same names reach the host
// scripts as layout.sh (rendered from this object), so there is one source.
//
// Several apps can share a host, one stack each. Every app has its own
// namespace: "bluegreen" for the app named bluegreen (the default, and the
// layout of hosts set up before apps had names), "bluegreen-<app>" for any
// other. Units, sockets, state, locks, releases, env files, logs, tools and
// the nginx site all live under that namespace; only nginx itself, the
// http-level nginx file and the registry of claims are shared.

export const COLORS = ["blue", "green"] as const;
export type Color = (typeof COLORS)[number];
export type LinkModeName = "socket" | "tcp";

export const otherColor = (c: Color): Color => (c === "blue" ? "green" : "blue");

/** The app name of stacks that set none; its namespace is plain "bluegreen". */
export const DEFAULT_APP = "bluegreen";

/** What every app on a host shares. */
export const shared = {
  /** http-level nginx settings (log format, maps) and the include of every app's site. */
  nginxCommon: "/etc/nginx/conf.d/bluegreen.conf",
  /** One site per app, included by nginxCommon. */
  nginxSitesDir: "/etc/nginx/bluegreen",
  /** One claims file per app: its owner stack, domains and ports; checked for collisions. */
  claimsDir: "/var/lib/bluegreen-apps",
  /** Held only while the shared nginx files or the claims change (never across a switch). */
  hostLock: "/var/lib/bluegreen-apps/.lock",
  /**
   * The routers' group, and only theirs: nginx's workers (www-data is a member) and HAProxy's
   * (its `group`; HAProxy drops supplementary groups, so one group must reach every socket)
   * reach every app's socket through it. Each slot's socket directory is in it (setgid, so the
   * socket the app makes there is too); no app's processes are (each runs in its own appGroup).
   */
  webGroup: "bluegreen",
  /** HAProxy: the main file (global and defaults), shared by every app and versioned. */
  haproxyMain: "/etc/haproxy/haproxy.cfg",
  /** HAProxy reads every *.cfg here after the main file: the public frontend, then one file per app. */
  haproxyDir: "/etc/haproxy/bluegreen",
  /** The public frontend, assembled on the host from every app's routes (catch-all last). */
  haproxyPublic: "/etc/haproxy/bluegreen/10-public.cfg",
  /** Each app's lines for the public frontend (not *.cfg: HAProxy does not load them). */
  haproxyRoutesDir: "/etc/haproxy/bluegreen/routes",
  /**
   * HTTPS: the crt-list of the public :443 listener, assembled on the host from every app's
   * entry whose certificate exists (not *.cfg). HAProxy refuses a TLS listener with no
   * certificate, so the listener is in the frontend only while this list has an entry.
   */
  haproxyCrtList: "/etc/haproxy/bluegreen/certs.list",
  /** The runtime API: root only. Certificates are set through it. */
  haproxyAdminSocket: "/run/haproxy/admin.sock",
  /**
   * The master CLI (Debian's unit starts HAProxy with -S here): it lists every worker, the one
   * a reload just forked and those still draining, and passes a command to each by PID. The
   * switch sets map entries on every worker through it, so no reload can lose them.
   */
  haproxyMasterSocket: "/run/haproxy-master.sock",
} as const;

export type RouterKind = "nginx" | "haproxy";

export type AppLayout = ReturnType<typeof appLayout>;

/** The host paths and names of one app. */
export function appLayout(app: string = DEFAULT_APP) {
  const ns = app === DEFAULT_APP ? "bluegreen" : `bluegreen-${app}`;
  const stateDir = `/var/lib/${ns}`;
  const runDir = `/run/${ns}`;
  const tlsDir = `${stateDir}/tls`;
  const envDir = `/etc/${ns}`;
  return {
    app,
    /** Prefix of everything this app owns on the host. */
    ns,
    /** The same, as an nginx identifier (upstream and variable names). */
    nginxIdent: ns.replace(/-/g, "_"),
    /** Host scripts, installed by the HostSetup component. */
    toolsDir: `/usr/local/lib/${ns}`,
    /** Persistent state: links, recorded active colour, per-slot records, lock. */
    stateDir,
    /** Data directory both slots read and write (SQLite lives here). */
    dataDir: `${stateDir}/data`,
    /** One directory per version, written once. */
    releasesDir: `/opt/${ns}/releases`,
    /** Per-slot env files, mode 0600, read by systemd before it drops privileges. */
    envDir,
    /** Per-slot runtime directories (systemd RuntimeDirectory) holding the sockets. */
    runDir,
    nginxSite: `${shared.nginxSitesDir}/${ns}.conf`,
    /** HAProxy: this app's backends and loopback frontends. */
    haproxyApp: `${shared.haproxyDir}/50-${ns}.cfg`,
    /** HAProxy: this app's lines in the public frontend. */
    haproxyRoute: `${shared.haproxyRoutesDir}/${ns}.route`,
    /** HAProxy: this app's crt-list line (its certificate, by SNI for its domains); empty without tls. */
    haproxyCrt: `${shared.haproxyRoutesDir}/${ns}.crt`,
    /**
     * HAProxy: live, idle and maintenance, as a map the frontends read per request. Written
     * (one rename) and then set through the runtime API, so a switch never reloads.
     */
    haproxyMap: `${stateDir}/haproxy.map`,
    /** systemd looks for an instance's own unit file before the template, so each slot has its own. */
    unitDir: "/etc/systemd/system",
    /** Uploaded artifacts, kept across reboots (unlike /tmp) so a missing release can be stored again. */
    uploadDir: "/var/tmp",
    /** Every deploy, switch, rollback and maintenance change, one line each. */
    auditLog: `/var/log/${ns}/audit.log`,
    /** nginx's log of public requests; the post-switch watch reads it. */
    accessLog: `/var/log/nginx/${ns}.access.log`,
    previewLog: `/var/log/nginx/${ns}.preview.log`,
    /** The app's Unix user; its slots run as it. */
    appUser: ns,
    /**
     * The app's own group: its user's primary group, its slots' and hooks' Group=, and no
     * other app's. The namespace, but for the default app, whose namespace "bluegreen" is the
     * routers' group (shared.webGroup): "bluegreen_app", which no app's namespace can be (an
     * app name has no "_").
     */
    appGroup: app === DEFAULT_APP ? "bluegreen_app" : ns,
    /** The app's claims on the shared host: owner stack, domains, ports. */
    claimsFile: `${shared.claimsDir}/${ns}`,
    /** bluegreen-status for this app. */
    statusCommand: `/usr/local/sbin/${ns}-status`,
    unitName: (c: Color) => `${ns}@${c}`,
    slotSocket: (c: Color) => `${runDir}/${c}/app.sock`,
    /** nginx's name for the upstream group of one slot listening one way. */
    upstreamName: (c: Color | "${bluegreen_slot}", m: LinkModeName | "${bluegreen_mode}") =>
      `${ns.replace(/-/g, "_")}_${c}_${m}`,
    /**
     * The live pointer: a symlink to ${stateDir}/colors/<colour>, a directory holding one
     * file named after that colour. nginx tests `-f live/green` on every request, so
     * one rename(2) of this link moves every new request, with no reload.
     */
    liveLink: `${stateDir}/live`,
    /** Present while a slot listens on a loopback port rather than its unix socket. */
    slotTcpFlag: (slot: Color | "$bluegreen_slot") => `${stateDir}/slots/${slot}/tcp`,
    activeColorFile: `${stateDir}/active`,
    /** While this file exists, public requests get the maintenance page. */
    maintenanceFlag: `${stateDir}/maintenance`,
    /** While this file exists, the load balancer's health check (BALANCER_HEALTH_PATH) gets 503: the host is drained. */
    drainFlag: `${stateDir}/drain`,
    /**
     * HTTPS: the live certificate (chain and key in one file, read by nginx per handshake,
     * handed to HAProxy over its runtime API) and its records.
     */
    tlsDir,
    /** A symlink to the newest installed certificate's directory; renamed, never rewritten in place. */
    tlsPem: `${tlsDir}/live/cert.pem`,
    /** While this file exists (a certificate is installed and tls is on), port 80 redirects to https. */
    httpsFlag: `${tlsDir}/https`,
    /** lego's --path: the ACME account key and the issued certificates, root only. */
    acmeDir: `${stateDir}/acme`,
    /** HTTP-01 tokens lego writes (--http.webroot) and nginx serves under /.well-known/acme-challenge/. */
    acmeWebroot: `${stateDir}/acme-webroot`,
    /** The renewal timer's settings (acme.conf) and the DNS provider's credentials (dns.env, 0600). */
    tlsConfDir: `${envDir}/tls`,
    tlsRenewUnit: `${ns}-tls-renew`,
    /** Backups (root only): one directory per backup, its files, checksums and manifest. */
    backupDir: `${stateDir}/backups`,
    /** backup.conf (the databases and retention) and rclone.conf (the off-host remote's credentials, 0600). */
    backupConfDir: `${envDir}/backup`,
    /** The hourly backup's timer and service. */
    backupUnit: `${ns}-backup`,
    /** Queued notifications (queue/), those given up on (failed/), and what the checks last said (state/). */
    notifyDir: `${stateDir}/notify`,
    /** notify.conf and one curl config per webhook target (its URL), 0600. */
    notifyConfDir: `${envDir}/notify`,
    /** The notification drain (a .path unit starts it when the queue is not empty) and the periodic checks. */
    notifyUnit: `${ns}-notify`,
    checkUnit: `${ns}-check`,
    /** The metrics' counters (read from the audit and access logs), and their socket-activated endpoint. */
    metricsDir: `${stateDir}/metrics`,
    metricsUnit: `${ns}-metrics`,
    /** Operators' commands on the host: a backup now, a restore, the list of backups. */
    backupCommand: `/usr/local/sbin/${ns}-backup`,
    restoreCommand: `/usr/local/sbin/${ns}-restore`,
  };
}

/** node_exporter's textfile collector directory (Debian's prometheus-node-exporter); metrics go there too when it exists. */
export const TEXTFILE_DIR = "/var/lib/prometheus/node-exporter";

/** The default app's layout: the one hosts had before apps had names. */
export const layout = appLayout();

export interface LayoutShOptions {
  /** Prefix for every path; tests run the host scripts in a temp dir. */
  readonly root?: string;
  /** Which router the host runs (components/router/routers.ts). */
  readonly router?: RouterKind;
  /** Commands that check and reload nginx's config. */
  readonly nginxTest?: string;
  readonly nginxReload?: string;
  /** Commands that check and (seamlessly) reload HAProxy's config. */
  readonly haproxyTest?: string;
  readonly haproxyReload?: string;
}

/** layout.sh, sourced by every host script: the app's paths and names plus how to drive nginx. */
export function renderLayoutSh(L: AppLayout = layout, o: LayoutShOptions = {}): string {
  const root = o.root ?? "";
  const paths: Record<string, string> = {
    BG_TOOLS_DIR: L.toolsDir,
    BG_STATE_DIR: L.stateDir,
    BG_DATA_DIR: L.dataDir,
    BG_RELEASES_DIR: L.releasesDir,
    BG_ENV_DIR: L.envDir,
    BG_RUN_DIR: L.runDir,
    BG_NGINX_SITE: L.nginxSite,
    BG_NGINX_COMMON: shared.nginxCommon,
    BG_CLAIMS_DIR: shared.claimsDir,
    BG_CLAIMS_FILE: L.claimsFile,
    BG_HOST_LOCK: shared.hostLock,
    BG_UNIT_DIR: L.unitDir,
    BG_UPLOAD_DIR: L.uploadDir,
    BG_LIVE_LINK: L.liveLink,
    BG_ACTIVE_FILE: L.activeColorFile,
    BG_SWITCH_INTENT: `${L.stateDir}/switch.intent`,
    BG_WATCH_PENDING: `${L.stateDir}/watch.pending`,
    BG_LOCK: `${L.stateDir}/lock`,
    BG_RELEASE_LOCK: `${L.stateDir}/release.lock`,
    BG_MAINTENANCE_FLAG: L.maintenanceFlag,
    BG_DRAIN_FLAG: L.drainFlag,
    BG_WWW_DIR: `${L.stateDir}/www`,
    BG_AUDIT_LOG: L.auditLog,
    BG_ACCESS_LOG: L.accessLog,
    BG_TLS_DIR: L.tlsDir,
    BG_TLS_PEM: L.tlsPem,
    BG_HTTPS_FLAG: L.httpsFlag,
    BG_ACME_DIR: L.acmeDir,
    BG_ACME_WEBROOT: L.acmeWebroot,
    BG_TLS_CONF_DIR: L.tlsConfDir,
    BG_STATUS_COMMAND: L.statusCommand,
    BG_HAPROXY_MAIN: shared.haproxyMain,
    BG_HAPROXY_DIR: shared.haproxyDir,
    BG_HAPROXY_PUBLIC: shared.haproxyPublic,
    BG_HAPROXY_ROUTES_DIR: shared.haproxyRoutesDir,
    BG_HAPROXY_ADMIN: shared.haproxyAdminSocket,
    BG_HAPROXY_MASTER: shared.haproxyMasterSocket,
    BG_HAPROXY_APP: L.haproxyApp,
    BG_HAPROXY_ROUTE: L.haproxyRoute,
    BG_HAPROXY_MAP: L.haproxyMap,
    BG_HAPROXY_CRT: L.haproxyCrt,
    BG_HAPROXY_CRT_LIST: shared.haproxyCrtList,
    BG_BACKUP_DIR: L.backupDir,
    BG_BACKUP_CONF_DIR: L.backupConfDir,
    BG_NOTIFY_DIR: L.notifyDir,
    BG_NOTIFY_CONF_DIR: L.notifyConfDir,
    BG_METRICS_DIR: L.metricsDir,
    BG_TEXTFILE_DIR: TEXTFILE_DIR,
    BG_BACKUP_COMMAND: L.backupCommand,
    BG_RESTORE_COMMAND: L.restoreCommand,
  };
  return [
    "# shellcheck shell=bash disable=SC2034",
    "# Generated from components/host/layout.ts; do not edit on the host.",
    `BG_APP=${L.app}`,
    `BG_NS=${L.ns}`,
    ...Object.entries(paths).map(([k, v]) => `${k}=${root}${v}`),
    `BG_APP_USER=${L.appUser}`,
    `BG_APP_GROUP=${L.appGroup}`,
    `BG_WEB_GROUP=${shared.webGroup}`,
    `BG_TLS_RENEW_UNIT=${L.tlsRenewUnit}`,
    `BG_BACKUP_UNIT=${L.backupUnit}`,
    `BG_NOTIFY_UNIT=${L.notifyUnit}`,
    `BG_CHECK_UNIT=${L.checkUnit}`,
    `BG_METRICS_UNIT=${L.metricsUnit}`,
    `BG_ROUTER=${o.router ?? "nginx"}`,
    `BG_IDENT=${L.nginxIdent}`,
    // Bounded: the command provider never kills a remote command, so every wait needs its own deadline.
    `nginx_test() { ${o.nginxTest ?? "timeout 60 nginx -t"}; }`,
    `nginx_reload() { ${o.nginxReload ?? "timeout 60 systemctl reload nginx"}; }`,
    `haproxy_test() { ${o.haproxyTest ?? `timeout 60 haproxy -c -f ${root}${shared.haproxyMain} -f ${root}${shared.haproxyDir}`}; }`,
    // Debian's unit reloads the master-worker with USR2: the listeners pass to the new workers.
    `haproxy_reload() { ${o.haproxyReload ?? "timeout 60 systemctl reload haproxy"}; }`,
    "",
  ].join("\n");
}
