// The router seam's contract: the shell functions each router's file on the host
// (components/scripts/router/router-nginx.sh, router-haproxy.sh) defines, which lib.sh
// sources by BG_ROUTER. Every other host script is the same for both routers and reaches
// the router only through these. A new router is a new file defining exactly these (and
// helpers of its own not named router_*), plus its entry in routers.ts.
// test/unit/router-contract.test.ts holds both files to this list, and each operation's
// callers to the scripts that call it.
//
// Exit codes: "0 or dies" means it succeeds or ends the whole script through die (exit 1,
// with a message on stderr). A function may be called in a condition (`if`, `&&`, `||`),
// where set -e does not stop it: each checks its own steps where it says it fails.

export interface RouterOperation {
  readonly name: `router_${string}`;
  /** Its positional arguments, in order. */
  readonly args: readonly string[];
  /** What it must do, for both routers, and how each does it. */
  readonly does: string;
  /** What it prints on stdout (the callers read it), if anything. */
  readonly prints?: string;
  /** Its exit status. */
  readonly exits: string;
  /** The host scripts that call it (besides the router files themselves). */
  readonly callers: readonly string[];
}

export const ROUTER_CONTRACT: readonly RouterOperation[] = [
  {
    name: "router_name",
    args: [],
    does: "Names the router for messages.",
    prints: "nginx or haproxy",
    exits: "0",
    callers: [
      "deploy-slot.sh",
      "router-config.sh",
      "switch.sh",
      "watch.sh",
      "tls.sh",
      "tls-config.sh",
      "tls-renew.sh",
      "drain.sh",
    ],
  },
  {
    name: "router_sync",
    args: [],
    does:
      "Makes the router serve what the state files say: the live link (live and idle slot, and how each listens: " +
      "the slot's tcp flag), the maintenance flag, the https flag and the drain flag. Never reloads. nginx reads them on every " +
      "request, so it does nothing. HAProxy: rewrites the map file with one rename, then sets each entry on every " +
      "worker (draining ones too) through the master CLI, serialized by router-sync.lock; with HAProxy not " +
      "running it only writes the file, which HAProxy reads when it starts.",
    exits:
      "0 once the router serves the state; non-zero or dies when it cannot be told (HAProxy: the map cannot be " +
      "written, the master CLI gives no whole answer for 15 s, a worker refuses the map). set_live calls it last, " +
      "so a switch that cannot tell the router is put back.",
    callers: [
      "state.sh",
      "slots.sh",
      "router-config.sh",
      "maintenance.sh",
      "switch.sh",
      "tls-config.sh",
      "drain.sh",
      "restore.sh",
    ],
  },
  {
    name: "router_test",
    args: [],
    does: "Checks the router's config as installed on disk (nginx -t; haproxy -c), changing nothing.",
    prints: "the router's own messages (stdout and stderr), for the error when it fails",
    exits: "0 when the router would load the config; non-zero otherwise (router-config.sh then restores the old files)",
    callers: ["router-config.sh"],
  },
  {
    name: "router_reload",
    args: [],
    does:
      "Makes the running router load the installed config without closing connections. nginx: a reload. HAProxy: " +
      "a master-worker reload, then waits (up to 30 s) until only a new worker answers the runtime API, so a " +
      "switch right after it reaches the worker that serves.",
    exits:
      "0 once reloaded; non-zero when the reload fails or (HAProxy) the old worker still answers after 30 s. " +
      "router-config.sh then waits for router_config_hash on the check listener either way.",
    callers: ["router-config.sh"],
  },
  {
    name: "router_sections",
    args: [],
    does: "Lists the stdin sections router-config.sh must get, each non-empty (routers.ts sends them).",
    prints: 'space-separated names: nginx "common site"; HAProxy "main public app route page"',
    exits: "0",
    callers: ["router-config.sh"],
  },
  {
    name: "router_files",
    args: [],
    does:
      "Lists the files, by name in WORK after router_prepare, that router-config.sh installs (each at " +
      "router_target NAME), compares with what is installed (all the same: no reload), backs up and puts back " +
      "when the router rejects them. nginx: its sections; HAProxy: its sections plus crt, certs and frontend.",
    prints: "space-separated names",
    exits: "0",
    callers: ["router-config.sh"],
  },
  {
    name: "router_target",
    args: ["NAME"],
    does: "Where the file NAME (one of router_files) is installed on the host.",
    prints: "an absolute path",
    exits: "0, or dies on a name that is none of router_files",
    callers: ["router-config.sh"],
  },
  {
    name: "router_prepare",
    args: ["WORK"],
    does:
      "Turns the sections in WORK into the files router_files lists, under the host lock. A file every app shares " +
      "is never replaced by an older version (another app's newer bluegreen: shared_version). HAProxy also " +
      "assembles the crt-list and the public frontend from every app's routes and crt-list lines (this app's new " +
      "ones, the catch-all app last) and writes the map if there is none.",
    exits: "0 or dies",
    callers: ["router-config.sh"],
  },
  {
    name: "router_config_hash",
    args: ["WORK"],
    does:
      "The hash the router's check listener answers on /.bluegreen/site once it serves the config prepared in " +
      "WORK: router-config.sh waits for it after the reload (a reload can fail after the check passed).",
    prints: "16 hex digits",
    exits: "0",
    callers: ["router-config.sh"],
  },
  {
    name: "router_serves_https",
    args: ["WORK"],
    does:
      "Whether the config prepared in WORK serves this app on :443 (nginx: the site listens on 443; HAProxy: the " +
      "crt-list has this app's certificate). Port 80 redirects to https only while it does.",
    exits: "0 when it does; 1 when it does not",
    callers: ["router-config.sh"],
  },
  {
    name: "router_remove_app",
    args: [],
    does:
      "Takes this app out of the router's config and reloads once; nothing of any other app (the app-remove step, " +
      "host lock held). Nothing to do when the app has no config. A config the router rejects without this app " +
      "is put back.",
    exits: "0, or dies when the router rejects the config without this app",
    callers: ["app-remove.sh"],
  },
  {
    name: "router_error_log_tail",
    args: [],
    does: "The router's last log lines, indented, for an error message (nginx's error log; HAProxy's journal).",
    prints: "up to 5 lines, each indented",
    exits: "not used: callers read only its output, inside a message",
    callers: ["router-config.sh", "switch.sh", "watch.sh"],
  },
  {
    name: "router_watch_base",
    args: ["TARGET"],
    does:
      "Where the post-switch watch starts counting TARGET's public responses, taken before the link moves " +
      "(kept in the switch's intent). nginx: the access log's size plus one; HAProxy: each worker's counters for " +
      'the slot\'s backends, "PID:requests:5xx" per worker.',
    prints: "the base, one line, passed back as router_watch_read's BASE",
    exits: "0; non-zero when the counters cannot be read (the switch then refuses before anything moves)",
    callers: ["switch.sh", "watch.sh", "drain.sh"],
  },
  {
    name: "router_watch_read",
    args: ["TARGET", "BASE", "MOVED_MS"],
    does:
      "Sets WATCH_TOTAL and WATCH_ERRORS: the public responses for TARGET and the 5xx among them since BASE and " +
      "MOVED_MS (ms since the epoch), without the switch's own requests on the check listener. nginx reads the " +
      "access log from BASE (responses nginx made itself do not count); HAProxy sums every worker seen since the " +
      "move, a reload's new worker from 0.",
    exits: "0 with both set; non-zero when they cannot be read (the watch counts an unread try)",
    callers: ["watch.sh", "drain.sh"],
  },
  {
    name: "router_tls_group",
    args: [],
    does: "The group that may read the served certificate file (nginx: its workers' group; HAProxy: root).",
    prints: "a group name",
    exits: "0",
    callers: ["tls.sh"],
  },
  {
    name: "router_tls_hint",
    args: [],
    does: "A command an operator runs to see which certificate the router serves, for an error message.",
    prints: "one command line",
    exits: "0",
    callers: ["tls-config.sh"],
  },
  {
    name: "router_acme_http_args",
    args: [],
    does:
      "lego's HTTP-01 flags for this router, readying what they need. nginx: the webroot nginx serves under " +
      "/.well-known/acme-challenge/ (created); HAProxy: lego's own server on the app's loopback acme port " +
      "(ACME_HTTP_PORT from acme.conf), behind the app's acme backend.",
    prints: "the flags, one line, split on spaces",
    exits: "0; non-zero (a message on stderr) when HTTP-01 through this router is not set up",
    callers: ["tls-renew.sh"],
  },
  {
    name: "router_tls_install",
    args: [],
    does:
      "Makes the router serve, to new handshakes, the certificate the live link (BG_TLS_PEM) points at now, " +
      "without closing connections; called by tls_install with the host lock held, right after the rename. " +
      "nginx opens the file at each handshake: nothing to do. HAProxy: set ssl cert and commit ssl cert over the " +
      "runtime API (no reload), or, for the app's first certificate, a crt-list entry and one reload.",
    prints: "what was done, for the step's output",
    exits:
      "0 when the router serves it; non-zero (a message on stderr) when it does not: tls_install then puts the " +
      "previous link back and says so",
    callers: ["tls.sh"],
  },
];

/** The operations' names, in the contract's order. */
export const ROUTER_OPERATIONS: readonly string[] = ROUTER_CONTRACT.map((o) => o.name);
