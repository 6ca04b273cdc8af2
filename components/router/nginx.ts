// The nginx site, the shared http-level file and the maintenance page. No Pulumi, no
// I/O: tests compare their output with expected text.

import * as crypto from "crypto";
import { MANAGED } from "../host/shell";
import { AppLayout, Color, COLORS, LinkModeName, shared } from "../host/layout";

export type { LinkModeName } from "../host/layout";
const MODES: readonly LinkModeName[] = ["socket", "tcp"];

export interface NginxSiteOptions {
  readonly layout: AppLayout;
  /** The site's domains; empty: any name (server_name _ and the default server). */
  readonly domains: readonly string[];
  /** HTTPS on :443; undefined: plain HTTP only. */
  readonly tls?: { readonly hstsMaxAge: number };
  /**
   * HAProxy only: the 127.0.0.1 port of lego's own HTTP-01 server (HAProxy cannot serve a
   * directory); undefined: no ACME HTTP-01 route. nginx serves lego's webroot instead.
   */
  readonly acmePort?: number;
  /** 127.0.0.1 port of the preview listener (always the idle slot). */
  readonly previewPort: number;
  /** 127.0.0.1 port of the check listener: the live slot, never in maintenance. */
  readonly checkPort: number;
  /** Retry-After of the maintenance page, in seconds. */
  readonly maintenanceRetryAfter: number;
  /** The slots' loopback ports, for a slot that listens on tcp. */
  readonly ports: Readonly<Record<Color, number>>;
  /**
   * Several hosts behind a load balancer: BALANCER_HEALTH_PATH answers the live slot's readiness
   * (healthPath), or 503 while the host is drained. Undefined: no such path (one host).
   */
  readonly balancer?: { readonly healthPath: string };
}

/** The path a load balancer's health check asks on every host (several hosts only). */
export const BALANCER_HEALTH_PATH = "/.bluegreen/health";

/**
 * The shared file's version. Apps on one host may run different bluegreen releases;
 * router-config.sh never replaces a newer shared file with an older one (a newer site
 * may need what it defines). Raise it whenever renderNginxCommon's output changes.
 */
export const NGINX_COMMON_VERSION = 2;

/**
 * The http-level nginx file every app shares (conf.d/bluegreen.conf): the log
 * format the post-switch watch reads, the request-id and upgrade maps, and the
 * include of every app's site. The same text from every app stack.
 */
export function renderNginxCommon(): string {
  return [
    MANAGED,
    "# Shared by every bluegreen app on this host; each app's site is in the include below.",
    `# bluegreen-common ${NGINX_COMMON_VERSION}`,
    "server_tokens off;",
    "",
    "# Starts with time, status and upstream status: the post-switch watch reads those three.",
    "log_format bluegreen '$msec $status $upstream_status [$time_iso8601] $remote_addr \"$request\" '",
    "                     '$body_bytes_sent rt=$request_time urt=$upstream_response_time '",
    "                     'ua=\"$upstream_addr\" rid=$bluegreen_request_id host=$host';",
    "",
    "# Keep a caller's request id, or mint one, unique on this host: the time, the worker, its",
    "# connection and the request on it. Not nginx's $request_id: OpenSSL's RAND_bytes and a",
    "# getpid() per request, about a tenth of nginx's CPU per proxied request on a 2-vCPU VM.",
    "map $http_x_request_id $bluegreen_request_id {",
    "    default $http_x_request_id;",
    '    ""      "$msec-$pid-$connection-$connection_requests";',
    "}",
    "",
    '# Upstream keep-alive needs an empty Connection header; WebSockets need "upgrade".',
    "map $http_upgrade $bluegreen_connection {",
    "    default upgrade;",
    '    ""      "";',
    "}",
    "",
    `include ${shared.nginxSitesDir}/*.conf;`,
    "",
  ].join("\n");
}

/**
 * The nginx site: a public listener on :80 for the live slot, a loopback check
 * listener (live slot, never in maintenance) and a loopback preview listener
 * (idle slot). No colour is written here: each request picks its upstream group
 * from two file tests, whether the live link points at green and whether that
 * slot listens on tcp. The switch renames one symlink and nginx is never
 * reloaded; a slot changes how it listens only while it is idle.
 */
export function renderNginxSite(o: NginxSiteOptions): string {
  const L = o.layout;
  const groups = COLORS.flatMap((c) =>
    MODES.flatMap((m) => [
      `upstream ${L.upstreamName(c, m)} {`,
      m === "socket" ? `    server unix:${L.slotSocket(c)};` : `    server 127.0.0.1:${o.ports[c]};`,
      "    keepalive 32;",
      "}",
    ]),
  );
  // An app without domains answers every name the other apps do not claim.
  const dflt = o.domains.length ? "" : " default_server";
  const text = [
    MANAGED,
    `# App ${L.app}: its slots, its domains, its loopback preview and check listeners.`,
    "# One group per slot and way of listening, each with its own keep-alive pool: after a",
    "# switch no new request reuses a connection to the old slot.",
    ...groups,
    "",
    ...(o.tls ? tlsPreamble(L) : []),
    ...publicServer(
      o,
      [`listen 80${dflt};`, `listen [::]:80${dflt};`],
      [
        "# ACME HTTP-01: lego writes tokens here and nginx serves them, never redirected, no reload.",
        "location ^~ /.well-known/acme-challenge/ {",
        `    root ${L.acmeWebroot};`,
        "    default_type text/plain;",
        "    try_files $uri =404;",
        "}",
      ],
    ),
    ...(o.tls
      ? publicServer(
          o,
          [`listen 443 ssl http2${dflt};`, `listen [::]:443 ssl http2${dflt};`],
          [
            "# Read per handshake, because the path is a variable: a renewed certificate needs no reload.",
            `ssl_certificate $${L.nginxIdent}_tls_pem;`,
            `ssl_certificate_key $${L.nginxIdent}_tls_pem;`,
            "ssl_protocols TLSv1.2 TLSv1.3;",
            `ssl_ciphers ${TLS12_CIPHERS};`,
            "ssl_prefer_server_ciphers off;",
            "ssl_session_cache shared:bluegreen_tls:10m;",
            "ssl_session_timeout 1d;",
            "ssl_session_tickets off;",
          ],
        )
      : []),
    ...loopbackServer(
      L,
      "# Check: the live slot on loopback, never in maintenance; the switch verifies through it.",
      o.checkPort,
      "access_log off;",
      "live",
      [
        ...balancerHealth(o).map((l) => l.slice(4)),
        "# Which site nginx has loaded: router-config.sh waits for this after a reload, because",
        "# a reload can fail after nginx -t passed (a port taken, say) and nginx keeps the old one.",
        `location = ${SITE_MARKER_PATH} {`,
        `    return 200 "${SITE_HASH_PLACEHOLDER}";`,
        "}",
      ],
      true,
    ),
    ...loopbackServer(
      L,
      "# Preview: the idle slot, on loopback only. Reach it with an SSH tunnel.",
      o.previewPort,
      `access_log ${L.previewLog} bluegreen;`,
      "idle",
    ),
  ].join("\n");
  return text.replace(SITE_HASH_PLACEHOLDER, siteHash(text));
}

/** The path on the check listener that answers the loaded site's hash. */
export const SITE_MARKER_PATH = "/.bluegreen/site";
const SITE_HASH_PLACEHOLDER = "@SITE_HASH@";
/** The hash a site answers on SITE_MARKER_PATH: of its own text with the placeholder in place. */
const siteHash = (text: string) => crypto.createHash("sha256").update(text).digest("hex").slice(0, 16);

/** Mozilla's "intermediate" TLS 1.2 suites without DHE (TLS 1.3 suites are not configurable here). */
export const TLS12_CIPHERS = [
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-CHACHA20-POLY1305",
].join(":");

function tlsPreamble(L: AppLayout): string[] {
  return [
    "# The certificate and its key, one file. A map's value is a variable, so nginx opens the",
    "# file at each TLS handshake: installing a renewed certificate is one rename, no reload.",
    `map $ssl_server_name $${L.nginxIdent}_tls_pem {`,
    `    default ${L.tlsPem};`,
    "}",
    "",
  ];
}

/**
 * A public server block (:80 or :443): the live slot, the maintenance page and,
 * on :80, the redirect to https once a certificate is installed (a flag file,
 * so the first certificate needs no reload either).
 */
function publicServer(o: NginxSiteOptions, listen: readonly string[], head: readonly string[]): string[] {
  const L = o.layout;
  const https = listen[0].includes(" ssl");
  const hsts =
    https && o.tls && o.tls.hstsMaxAge > 0
      ? [`add_header Strict-Transport-Security "max-age=${o.tls.hstsMaxAge}" always;`]
      : [];
  // Only a site with tls can have the https flag (router-config.sh removes it otherwise), so
  // only such a site tests for it: a stat(2) per request fewer on plain HTTP.
  const redirect =
    https || !o.tls ? [] : [`    if (-f ${L.httpsFlag}) {`, "        return 308 https://$host$request_uri;", "    }"];
  return [
    "server {",
    ...listen.map((l) => `    ${l}`),
    `    server_name ${o.domains.length ? o.domains.join(" ") : "_"};`,
    `    access_log ${L.accessLog} bluegreen;`,
    ...head.map((l) => `    ${l}`),
    ...slotSelection(L, "live"),
    "",
    ...balancerHealth(o),
    "    # Maintenance mode is a flag file checked per request: no reload, slots keep running.",
    "    # error_page applies to nginx's own 503 only, never to the app's.",
    "    error_page 503 @bluegreen_maintenance;",
    "    location / {",
    ...redirect.map((l) => `    ${l}`),
    `        if (-f ${L.maintenanceFlag}) {`,
    "            return 503;",
    "        }",
    `        proxy_pass http://${L.upstreamName("${bluegreen_slot}", "${bluegreen_mode}")};`,
    ...proxyDirectives("        "),
    ...hsts.map((l) => `        ${l}`),
    "    }",
    "    location @bluegreen_maintenance {",
    `        root ${L.stateDir}/www;`,
    `        add_header Retry-After ${o.maintenanceRetryAfter} always;`,
    '        add_header Cache-Control "no-store" always;',
    ...hsts.map((l) => `        ${l}`),
    "        try_files /maintenance.html =503;",
    "    }",
    "}",
    "",
  ];
}

/**
 * The load balancer's health check (several hosts): the live slot's readiness, not logged (the
 * drain's evidence is that public requests stopped), or 503 while the host is drained. Outside
 * `location /`, so neither maintenance nor the https redirect touches it.
 */
function balancerHealth(o: NginxSiteOptions): string[] {
  if (!o.balancer) return [];
  const L = o.layout;
  return [
    "    # The load balancer's health check: the live slot's readiness; 503 while this host is drained.",
    `    location = ${BALANCER_HEALTH_PATH} {`,
    "        access_log off;",
    `        if (-f ${L.drainFlag}) {`,
    "            return 503;",
    "        }",
    `        rewrite ^ ${o.balancer.healthPath} break;`,
    `        proxy_pass http://${L.upstreamName("${bluegreen_slot}", "${bluegreen_mode}")};`,
    ...proxyDirectives("        "),
    "    }",
    "",
  ];
}

/**
 * Sets $bluegreen_slot and $bluegreen_mode for this request: the live slot (or the
 * idle one), from the live link, and how that slot listens, from its tcp flag.
 * Both are stat(2) calls per request; server-level `if` with `set` is safe.
 */
function slotSelection(L: AppLayout, which: "live" | "idle", byName = false): string[] {
  const [dflt, other] = which === "live" ? (["blue", "green"] as const) : (["green", "blue"] as const);
  return [
    `    set $bluegreen_slot ${dflt};`,
    `    if (-f ${L.liveLink}/green) {`,
    `        set $bluegreen_slot ${other};`,
    "    }",
    ...(byName
      ? [
          "    # The switch's readiness gate asks for one slot by name, live or not.",
          "    if ($http_x_bluegreen_slot ~ ^(blue|green)$) {",
          "        set $bluegreen_slot $1;",
          "    }",
        ]
      : []),
    "    set $bluegreen_mode socket;",
    `    if (-f ${L.slotTcpFlag("$bluegreen_slot")}) {`,
    "        set $bluegreen_mode tcp;",
    "    }",
  ];
}

/**
 * A server block on 127.0.0.1 that proxies everything to the live or the idle slot. With
 * `byName` (the check listener) a request may name the slot instead (X-Bluegreen-Slot: blue
 * or green), and every answer says which slot nginx sent it to (X-Bluegreen-Slot, never the
 * app's): the switch's gate asks the target through the very upstream the public reaches
 * after the move, and its verify knows where nginx routed even for an app that sends no
 * X-Bluegreen-Color.
 */
function loopbackServer(
  L: AppLayout,
  comment: string,
  port: number,
  accessLog: string,
  which: "live" | "idle",
  extra: readonly string[] = [],
  byName = false,
): string[] {
  return [
    comment,
    "server {",
    `    listen 127.0.0.1:${port};`,
    `    ${accessLog}`,
    ...slotSelection(L, which, byName),
    "",
    ...extra.map((l) => `    ${l}`),
    "    location / {",
    `        proxy_pass http://${L.upstreamName("${bluegreen_slot}", "${bluegreen_mode}")};`,
    ...proxyDirectives("        "),
    ...(byName
      ? ["        proxy_hide_header X-Bluegreen-Slot;", "        add_header X-Bluegreen-Slot $bluegreen_slot always;"]
      : []),
    "    }",
    "}",
    "",
  ];
}

function proxyDirectives(indent: string): string[] {
  return [
    "proxy_http_version 1.1;",
    "proxy_set_header Upgrade $http_upgrade;",
    "proxy_set_header Connection $bluegreen_connection;",
    "proxy_set_header Host $host;",
    "proxy_set_header X-Real-IP $remote_addr;",
    // nginx is the edge: a client-sent X-Forwarded-For would let it spoof its address.
    "proxy_set_header X-Forwarded-For $remote_addr;",
    "proxy_set_header X-Forwarded-Proto $scheme;",
    "proxy_set_header X-Forwarded-Host $host;",
    "proxy_set_header X-Request-Id $bluegreen_request_id;",
    "add_header X-Request-Id $bluegreen_request_id always;",
  ].map((l) => indent + l);
}

/** The page public clients get in maintenance mode (as a 503 with Retry-After). */
export function renderMaintenancePage(retryAfterSeconds: number): string {
  const minutes = Math.max(1, Math.round(retryAfterSeconds / 60));
  return [
    "<!doctype html>",
    '<html lang="en"><head><meta charset="utf-8"><title>Down for maintenance</title>',
    '<meta name="viewport" content="width=device-width, initial-scale=1"></head>',
    '<body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 4rem auto; padding: 0 1rem">',
    "<h1>Down for maintenance</h1>",
    `<p>We will be back shortly. Please try again in about ${minutes} minute${minutes === 1 ? "" : "s"}.</p>`,
    "</body></html>",
    "",
  ].join("\n");
}
