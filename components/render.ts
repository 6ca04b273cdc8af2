// Pure renderers for every text file bluegreen puts on a host. No Pulumi, no
// I/O: tests compare their output with expected text.

import {
    activeColorFile,
    Color,
    layout,
    maintenanceFlag,
    liveSocketLink,
    liveUpstreamLink,
    previewSocketLink,
    previewUpstreamLink,
    slotSocket,
} from "./layout";

export type LinkModeName = "socket" | "tcp";

export interface NginxSiteOptions {
    readonly mode: LinkModeName;
    readonly serverName: string;
    /** 127.0.0.1 port of the preview listener (always the idle slot). */
    readonly previewPort: number;
    /** 127.0.0.1 port of the check listener: the live slot, never in maintenance. */
    readonly checkPort: number;
    /** Retry-After of the maintenance page, in seconds. */
    readonly maintenanceRetryAfter: number;
}

const MANAGED = "# Managed by bluegreen (Pulumi). Local edits are overwritten on the next `pulumi up`.";

/**
 * The nginx site: a public listener on :80 for the live slot, and a
 * loopback-only preview listener for the idle slot. Neither names a colour:
 * both go through a link the switch renames, so switching never edits this file.
 */
export function renderNginxSite(o: NginxSiteOptions): string {
    const upstream = (name: string, socketLink: string, includeLink: string, keepalive: number) =>
        o.mode === "socket"
            ? [
                  `upstream ${name} {`,
                  `    # A symlink to the slot's socket; connect(2) follows it, so renaming it moves new`,
                  `    # connections at once. nginx checks a pooled connection's age only when it returns`,
                  `    # to the pool, so one can be reused up to keepalive_time + keepalive_timeout (1 s)`,
                  `    # after the rename; the switch waits that long before it calls the move done.`,
                  `    server unix:${socketLink};`,
                  `    keepalive ${keepalive};`,
                  `    keepalive_time 500ms;`,
                  `    keepalive_timeout 500ms;`,
                  `}`,
              ]
            : [
                  `upstream ${name} {`,
                  `    # A symlink to slot-blue.conf or slot-green.conf; the switch renames it and reloads.`,
                  `    include ${includeLink};`,
                  `    keepalive ${keepalive};`,
                  `}`,
              ];
    return [
        MANAGED,
        "server_tokens off;",
        "",
        "# Starts with time, status and upstream status: the post-switch watch reads those three.",
        "log_format bluegreen '$msec $status $upstream_status [$time_iso8601] $remote_addr \"$request\" '",
        "                     '$body_bytes_sent rt=$request_time urt=$upstream_response_time '",
        "                     'ua=\"$upstream_addr\" rid=$bluegreen_request_id';",
        "",
        "# Keep a caller's request id, or mint one.",
        "map $http_x_request_id $bluegreen_request_id {",
        "    default $http_x_request_id;",
        "    \"\"      $request_id;",
        "}",
        "",
        "# Upstream keep-alive needs an empty Connection header; WebSockets need \"upgrade\".",
        "map $http_upgrade $bluegreen_connection {",
        "    default upgrade;",
        "    \"\"      \"\";",
        "}",
        "",
        ...upstream("bluegreen_live", liveSocketLink, liveUpstreamLink, 32),
        "",
        ...upstream("bluegreen_preview", previewSocketLink, previewUpstreamLink, 8),
        "",
        "server {",
        "    listen 80 default_server;",
        "    listen [::]:80 default_server;",
        `    server_name ${o.serverName};`,
        "    access_log /var/log/nginx/bluegreen.access.log bluegreen;",
        "",
        "    # Maintenance mode is a flag file checked per request: no reload, slots keep running.",
        "    # error_page applies to nginx's own 503 only, never to the app's.",
        "    error_page 503 @bluegreen_maintenance;",
        "    location / {",
        `        if (-f ${maintenanceFlag}) {`,
        "            return 503;",
        "        }",
        "        proxy_pass http://bluegreen_live;",
        ...proxyDirectives("        "),
        "    }",
        "    location @bluegreen_maintenance {",
        `        root ${layout.stateDir}/www;`,
        `        add_header Retry-After ${o.maintenanceRetryAfter} always;`,
        "        add_header Cache-Control \"no-store\" always;",
        "        try_files /maintenance.html =503;",
        "    }",
        "}",
        "",
        ...loopbackServer(
            "# Check: the live slot on loopback, never in maintenance; the switch verifies through it.",
            o.checkPort,
            "access_log off;",
            "bluegreen_live",
        ),
        ...loopbackServer(
            "# Preview: the idle slot, on loopback only. Reach it with an SSH tunnel.",
            o.previewPort,
            "access_log /var/log/nginx/bluegreen.preview.log bluegreen;",
            "bluegreen_preview",
        ),
    ].join("\n");
}

/** A server block on 127.0.0.1 that proxies everything to one upstream. */
function loopbackServer(comment: string, port: number, accessLog: string, upstream: string): string[] {
    return [
        comment,
        "server {",
        `    listen 127.0.0.1:${port};`,
        `    ${accessLog}`,
        "",
        "    location / {",
        `        proxy_pass http://${upstream};`,
        ...proxyDirectives("        "),
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

/** tcp mode: the body included inside an upstream block for one slot. */
export function renderTcpUpstream(port: number): string {
    return `server 127.0.0.1:${port};\n`;
}

export interface SlotUnitOptions {
    /** Arguments after the binary; systemd expands ${VAR} from the env file. */
    readonly args: string;
    readonly drainTimeoutSeconds: number;
}

/** The systemd template unit both slots run from: bluegreen@blue, bluegreen@green. */
export function renderSlotUnit(o: SlotUnitOptions): string {
    return [
        MANAGED,
        "[Unit]",
        "Description=bluegreen app slot %i",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        `User=${layout.appUser}`,
        `Group=${layout.appUser}`,
        `EnvironmentFile=${layout.envDir}/%i.env`,
        `WorkingDirectory=${layout.dataDir}`,
        `ExecStart=${layout.stateDir}/slots/%i/current/app ${o.args}`,
        "Restart=on-failure",
        "RestartSec=2",
        "KillSignal=SIGTERM",
        // The app drains for drainTimeout; give it that plus the readiness delay and a margin.
        `TimeoutStopSec=${o.drainTimeoutSeconds + 5}`,
        // The socket lives here; the directory is group-readable so nginx (in our group) can reach it.
        "RuntimeDirectory=bluegreen/%i",
        "RuntimeDirectoryMode=0750",
        "UMask=0007",
        `ReadWritePaths=${layout.dataDir}`,
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "RestrictSUIDSGID=yes",
        "RestrictNamespaces=yes",
        "RestrictRealtime=yes",
        "LockPersonality=yes",
        "CapabilityBoundingSet=",
        "SystemCallArchitectures=native",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ].join("\n");
}

export interface SlotEnvOptions {
    readonly color: Color;
    readonly version: string;
    readonly listen: string;
    readonly drainTimeoutSeconds: number;
    /** App env and secrets, merged; written to a 0600 file and never to a command line. */
    readonly appEnv: Readonly<Record<string, string>>;
}

/** The slot's listen address: a unix socket, or a loopback port (never a public address). */
export function slotListen(mode: LinkModeName, color: Color, port: number): string {
    return mode === "socket" ? `unix:${slotSocket(color)}` : `127.0.0.1:${port}`;
}

/** The per-slot systemd EnvironmentFile. Values are double-quoted with C escapes. */
export function renderSlotEnv(o: SlotEnvOptions): string {
    const vars: Record<string, string> = {
        BLUEGREEN_COLOR: o.color,
        BLUEGREEN_VERSION: o.version,
        BLUEGREEN_LISTEN: o.listen,
        BLUEGREEN_DATA_DIR: layout.dataDir,
        BLUEGREEN_ACTIVE_FILE: activeColorFile,
        BLUEGREEN_DRAIN_TIMEOUT: String(o.drainTimeoutSeconds),
        ...Object.fromEntries(Object.entries(o.appEnv).sort(([a], [b]) => (a < b ? -1 : 1))),
    };
    const quote = (v: string) => `"${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
    return Object.entries(vars)
        .map(([k, v]) => `${k}=${quote(v)}\n`)
        .join("");
}

/** cloud-init user data for a multipass VM: installs the deploy key for the default user. */
export function renderCloudInit(publicKey: string): string {
    return ["#cloud-config", "ssh_authorized_keys:", `  - ${publicKey}`, ""].join("\n");
}

export interface ToolFile {
    readonly name: string;
    readonly text: string;
}

/**
 * A script that writes the host tools into place, each via a temporary file
 * renamed over the old one, so a running tool is never truncated.
 */
export function renderToolsInstaller(files: readonly ToolFile[], finalStep: string): string {
    const out = [
        "#!/usr/bin/env bash",
        "# Installs bluegreen's host tools. Generated by components/render.ts.",
        "set -euo pipefail",
        `dir=${layout.toolsDir}`,
        'install -d -m 0755 "$dir"',
    ];
    for (const f of files) {
        if (!/^[a-z0-9-]+\.sh$/.test(f.name)) throw new Error(`tool name ${JSON.stringify(f.name)} is not a plain script name`);
        const marker = `BLUEGREEN_TOOL_${f.name.replace(/[^a-z0-9]/g, "_").toUpperCase()}`;
        if (f.text.split("\n").includes(marker)) throw new Error(`tool ${f.name} contains its heredoc marker ${marker}`);
        const text = f.text.endsWith("\n") ? f.text : f.text + "\n";
        out.push(`cat > "$dir/.${f.name}.new" <<'${marker}'`, text + marker, `chmod 0755 "$dir/.${f.name}.new"`, `mv -f "$dir/.${f.name}.new" "$dir/${f.name}"`);
    }
    out.push(`"$dir/${finalStep}"`, "");
    return out.join("\n");
}
