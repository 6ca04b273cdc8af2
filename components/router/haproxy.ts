// Pure renderers for the HAProxy router's files (router-haproxy.sh installs them).
// HAProxy cannot test a file per request as nginx does, so the state an nginx site reads
// from the file system (live link, tcp flags, maintenance flag) is a map here: a file the
// host rewrites with one rename and then sets through the runtime API. The config itself
// names no colour and no mode, exactly like the nginx site.

import * as crypto from "crypto";
import { COLORS, LinkModeName, shared } from "../host/layout";
import { MANAGED } from "../host/shell";
import { BALANCER_HEALTH_PATH, TLS12_CIPHERS, type NginxSiteOptions } from "./nginx";

const MODES: readonly LinkModeName[] = ["socket", "tcp"];

/**
 * The version of the files every app shares (the main file and the public frontend's head).
 * router-haproxy.sh never replaces a newer one with an older one. Raise it whenever either changes.
 */
export const HAPROXY_SHARED_VERSION = 2;

/** The site options are the router's, whichever router serves them. */
export type HaproxySiteOptions = NginxSiteOptions;

/** The public frontend's default: no app claims this name. */
const NO_APP_BACKEND = [
  "backend bluegreen_no_app",
  '    http-request return status 404 content-type text/plain string "no app here\\n"',
  "",
];

/**
 * haproxy.cfg: global and defaults, shared by every app. No chroot (the slots' sockets are
 * under /run), the group that reaches every app's 0660 socket, a root-only admin socket.
 * Master-worker comes from Debian's unit (-Ws): a reload hands the listeners to new workers.
 */
export function renderHaproxyMain(): string {
  return [
    MANAGED,
    "# Shared by every bluegreen app on this host; each app's backends are in the directory below.",
    `# bluegreen-haproxy ${HAPROXY_SHARED_VERSION}`,
    "global",
    "    log stdout format raw local0 info",
    "    user haproxy",
    // HAProxy drops supplementary groups: its primary group must be the one that reaches the sockets.
    `    group ${shared.webGroup}`,
    `    stats socket ${shared.haproxyAdminSocket} mode 600 level admin`,
    "    stats timeout 30s",
    "    # An old worker finishes its in-flight requests; none outlives this after a reload.",
    "    hard-stop-after 5m",
    "    # HTTPS, once an app has a certificate: TLS 1.2 and 1.3, Mozilla's intermediate suites.",
    `    ssl-default-bind-ciphers ${TLS12_CIPHERS}`,
    "    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets",
    "",
    "defaults",
    "    mode http",
    "    log global",
    "    option httplog",
    "    # After a reload, an old worker keeps each idle keep-alive connection until its next",
    "    # request and answers that one with Connection: close, so no request meets a closed socket.",
    "    option idle-close-on-response",
    "    timeout connect 5s",
    "    timeout client 75s",
    "    timeout server 60s",
    "    timeout http-request 10s",
    "    timeout http-keep-alive 75s",
    "    # A request id: the caller's, or a new one.",
    "    unique-id-format %{+X}o%ci%cp%fi%fp%Ts%rt%pid",
    "",
    ...NO_APP_BACKEND,
  ].join("\n");
}

/** Starts the :443 bind lines of the public frontend's head; the host removes it while the crt-list has an entry. */
export const HTTPS_BIND_MARK = "#bluegreen-https";

/** The public frontend's head; every app's routes follow it (assembled on the host). */
export function renderHaproxyPublicHead(): string {
  return [
    MANAGED,
    `# bluegreen-haproxy ${HAPROXY_SHARED_VERSION}`,
    "# The public listener, shared by every app: each app's routes follow, the catch-all app last.",
    "frontend bluegreen_public",
    "    bind :80",
    "    bind [::]:80 v6only",
    "    # HTTPS: the host uncomments these while the crt-list holds a certificate (HAProxy refuses",
    "    # a TLS listener with none). Each app's certificate is chosen by SNI for its domains, and",
    "    # a renewed one is handed over the runtime API: no reload.",
    `${HTTPS_BIND_MARK}    bind :443 ssl crt-list ${shared.haproxyCrtList} alpn h2,http/1.1`,
    `${HTTPS_BIND_MARK}    bind [::]:443 v6only ssl crt-list ${shared.haproxyCrtList} alpn h2,http/1.1`,
    "    # HAProxy is the edge: a client-sent X-Forwarded-For would let it spoof its address.",
    "    http-request set-header X-Forwarded-For %[src]",
    "    http-request set-header X-Real-IP %[src]",
    "    http-request set-header X-Forwarded-Proto http unless { ssl_fc }",
    "    http-request set-header X-Forwarded-Proto https if { ssl_fc }",
    "    http-request set-header X-Forwarded-Host %[req.hdr(host)]",
    "    http-request set-header X-Request-Id %[unique-id] unless { req.hdr(x-request-id) -m found }",
    "    http-request set-var(txn.bluegreen_rid) req.hdr(x-request-id)",
    "    http-response set-header X-Request-Id %[var(txn.bluegreen_rid)]",
    "    http-request set-var(txn.bluegreen_host) req.hdr(host),field(1,:),lower",
    "    default_backend bluegreen_no_app",
    "",
    "",
  ].join("\n");
}

/**
 * One app's lines in the public frontend: the maintenance page (read when HAProxy loads,
 * sent while the map says so) and the live slot's backend, for its domains, or for every
 * name no other app claims (the catch-all, placed last on the host). With tls: the redirect
 * to https once the map's https entry is on (set when the certificate is verified served),
 * HSTS on :443, and ACME HTTP-01 requests to lego's own server, never redirected.
 */
export function renderHaproxyRoute(o: HaproxySiteOptions): string {
  const L = o.layout;
  const acl = `bluegreen_${L.nginxIdent}_host`;
  const acme = `bluegreen_${L.nginxIdent}_acme`;
  const exact = o.domains.filter((d) => !d.startsWith("*."));
  const wildcards = o.domains.filter((d) => d.startsWith("*.")).map((d) => d.slice(1));
  const conditions: string[] = [];
  if (exact.length) conditions.push(`    acl ${acl} var(txn.bluegreen_host) -m str ${exact.join(" ")}`);
  if (wildcards.length) conditions.push(`    acl ${acl} var(txn.bluegreen_host) -m end ${wildcards.join(" ")}`);
  // Every http-request rule runs before any use_backend, so the catch-all's rules (placed
  // last) would also fire for the other apps' names: an app with domains marks its
  // requests as claimed, and the catch-all's rules skip those.
  if (o.domains.length) conditions.push(`    http-request set-var(txn.bluegreen_claimed) int(1) if ${acl}`);
  const when = o.domains.length ? ` ${acl}` : " !{ var(txn.bluegreen_claimed) -m found }";
  const map = L.haproxyMap;
  const lego = o.tls && o.acmePort !== undefined;
  const notAcme = lego ? ` !${acme}` : "";
  const hsts = o.tls && o.tls.hstsMaxAge > 0 ? o.tls.hstsMaxAge : 0;
  // Several hosts: the balancer's health check is neither redirected nor sent the maintenance page.
  const notCheck = o.balancer ? " !{ var(txn.bluegreen_lbcheck) -m found }" : "";
  return [
    `# bluegreen route: ${o.domains.length ? "domains" : "catch-all"} (app ${L.app})`,
    ...conditions,
    ...(lego ? [`    acl ${acme} path_beg /.well-known/acme-challenge/`] : []),
    ...balancerHealthRules(o, when),
    ...(o.tls
      ? [
          `    http-request redirect scheme https code 308 if${when} !{ ssl_fc }${notAcme}${notCheck} { str(https),map(${map}) -m str on }`,
        ]
      : []),
    `    http-request return status 503 content-type "text/html; charset=utf-8" file ${L.stateDir}/www/maintenance.html ` +
      `hdr Retry-After ${o.maintenanceRetryAfter} hdr Cache-Control no-store if${when}${notAcme}${notCheck} { str(maintenance),map(${map}) -m str on }`,
    ...(hsts
      ? [`    http-after-response set-header Strict-Transport-Security "max-age=${hsts}" if${when} { ssl_fc }`]
      : []),
    ...(lego ? [`    use_backend ${L.nginxIdent}_acme if${when} ${acme}`] : []),
    `    use_backend %[str(live),map(${map})]${o.domains.length ? ` if${when}` : ""}`,
    "",
  ].join("\n");
}

/**
 * The load balancer's health check (several hosts), for the app's names (`when`): 503 while the
 * map's drain entry is on (drain.sh), else the live slot's readiness path. Marked in a variable
 * first, since set-path changes what the path ACL sees.
 */
function balancerHealthRules(o: HaproxySiteOptions, when: string): string[] {
  if (!o.balancer) return [];
  const map = o.layout.haproxyMap;
  const check = "{ var(txn.bluegreen_lbcheck) -m found }";
  return [
    `    http-request set-var(txn.bluegreen_lbcheck) int(1) if${when} { path ${BALANCER_HEALTH_PATH} }`,
    `    http-request return status 503 content-type text/plain string drained if${when} ${check} { str(drain),map(${map}) -m str on }`,
    `    http-request set-path ${o.balancer.healthPath} if${when} ${check}`,
  ];
}

/** One app's crt-list line: its certificate, for its domains (SNI); empty without tls. */
export function renderHaproxyCrt(o: HaproxySiteOptions): string {
  return o.tls ? `${o.layout.tlsPem} ${o.domains.join(" ")}\n` : "";
}

/**
 * One app's backends (one per slot and way of listening, each with its own idle connection
 * pool, so no request after a switch reuses a connection to the old slot) and its loopback
 * frontends: check (the live slot, or one a request names; answers the loaded config's hash)
 * and preview (the idle slot).
 */
export function renderHaproxyApp(o: HaproxySiteOptions): string {
  const L = o.layout;
  const backends = COLORS.flatMap((c) =>
    MODES.flatMap((m) => [
      `backend ${L.upstreamName(c, m)}`,
      m === "socket" ? `    server ${c} unix@${L.slotSocket(c)}` : `    server ${c} 127.0.0.1:${o.ports[c]}`,
      "",
    ]),
  );
  const map = L.haproxyMap;
  const text = [
    MANAGED,
    `# App ${L.app}: its slots and its loopback check and preview listeners. Which slot is live,`,
    `# which idle and whether in maintenance is in ${map}, set through the runtime API.`,
    ...backends,
    "# Check: the live slot on loopback, never in maintenance; the switch verifies through it.",
    `frontend ${L.nginxIdent}_check`,
    `    bind 127.0.0.1:${o.checkPort}`,
    "    # Which config HAProxy has loaded: router-config.sh waits for this after a reload.",
    `    http-request return status 200 content-type text/plain string @SITE_HASH@ if { path /.bluegreen/site }`,
    ...(o.balancer
      ? [
          "    # The load balancer's health check as the public listener answers it, for drain.sh to see on loopback.",
          ...balancerHealthRules(o, ""),
        ]
      : []),
    "    # The switch's readiness gate asks for one slot by name (X-Bluegreen-Slot: blue or green),",
    "    # live or not: the map's entry of that colour. Every answer says which slot served it.",
    `    http-request set-var(txn.bluegreen_slot) req.hdr(x-bluegreen-slot),map(${map}) if { req.hdr(x-bluegreen-slot) -m str blue green }`,
    "    use_backend %[var(txn.bluegreen_slot)] if { var(txn.bluegreen_slot) -m found }",
    `    use_backend %[str(live),map(${map})]`,
    "    http-after-response set-header X-Bluegreen-Slot %[be_name,field(-2,_)] if { be_name -m end _socket _tcp }",
    "",
    "# Preview: the idle slot, on loopback only. Reach it with an SSH tunnel.",
    `frontend ${L.nginxIdent}_preview`,
    `    bind 127.0.0.1:${o.previewPort}`,
    `    use_backend %[str(idle),map(${map})]`,
    "",
    ...(o.tls && o.acmePort !== undefined
      ? [
          "# ACME HTTP-01: lego's own server on loopback, up only while it solves a challenge.",
          `backend ${L.nginxIdent}_acme`,
          `    server lego 127.0.0.1:${o.acmePort}`,
          "",
        ]
      : []),
  ].join("\n");
  // The hash covers the routes too: a change of domains or Retry-After is a new config.
  const hash = crypto
    .createHash("sha256")
    .update(text + renderHaproxyRoute(o))
    .digest("hex")
    .slice(0, 16);
  return text.replace("@SITE_HASH@", hash);
}
