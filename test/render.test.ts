import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { renderLayoutSh } from "../components/layout";
import {
    renderCloudInit,
    renderNginxSite,
    renderSlotEnv,
    renderSlotUnit,
    renderTcpUpstream,
    renderToolsInstaller,
    slotListen,
} from "../components/render";
import { ROOT } from "./harness";
import { requireTool, run } from "./tools";

const expected = (f: string) => fs.readFileSync(path.join(ROOT, "test", "expected", f), "utf8");

/** Runs `nginx -t` on the site inside a minimal main config, with host paths moved into a temp dir. */
function nginxTest(site: string): { status: number | null; stderr: string } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bg-nginx-t-"));
    const moved = site
        .replace(/\/etc\/nginx\/bluegreen\//g, `${dir}/`)
        .replace(/\/var\/lib\/bluegreen\//g, `${dir}/`)
        .replace(/\/var\/log\/nginx\//g, `${dir}/`)
        .replace("listen 80 default_server;", "listen 127.0.0.1:18999 default_server;")
        .replace("listen [::]:80 default_server;", "");
    fs.writeFileSync(path.join(dir, "slot-blue.conf"), renderTcpUpstream(8001));
    fs.symlinkSync(path.join(dir, "slot-blue.conf"), path.join(dir, "live.conf"));
    fs.symlinkSync(path.join(dir, "slot-blue.conf"), path.join(dir, "preview.conf"));
    fs.writeFileSync(path.join(dir, "site.conf"), moved);
    fs.writeFileSync(
        path.join(dir, "nginx.conf"),
        `pid ${dir}/nginx.pid; error_log ${dir}/error.log; events {} http { include ${dir}/site.conf; }\n`,
    );
    const r = run("nginx", ["-t", "-c", path.join(dir, "nginx.conf")]);
    fs.rmSync(dir, { recursive: true, force: true });
    return r;
}

describe("renderers", () => {
    describe("nginx site", () => {
        const socket = renderNginxSite({ mode: "socket", serverName: "_", previewPort: 8081, checkPort: 8082, maintenanceRetryAfter: 120 });
        const tcp = renderNginxSite({ mode: "tcp", serverName: "_", previewPort: 8081, checkPort: 8082, maintenanceRetryAfter: 120 });

        it("socket mode: matches the expected text", () => {
            assert.strictEqual(socket, expected("nginx-socket.conf"));
        });

        it("tcp mode differs only in the upstream blocks, which include the links", () => {
            const socketUpstream = [
                "    # A symlink to the slot's socket; connect(2) follows it, so renaming it moves new",
                "    # connections at once. nginx checks a pooled connection's age only when it returns",
                "    # to the pool, so one can be reused up to keepalive_time + keepalive_timeout (1 s)",
                "    # after the rename; the switch waits that long before it calls the move done.",
            ].join("\n");
            const tcpLive = [
                "    # A symlink to slot-blue.conf or slot-green.conf; the switch renames it and reloads.",
                "    include /etc/nginx/bluegreen/live.conf;",
                "    keepalive 32;",
            ].join("\n");
            const tcpPreview = tcpLive.replace("live.conf", "preview.conf").replace("keepalive 32", "keepalive 8");
            const fromSocket = socket
                .replace(`${socketUpstream}\n    server unix:/var/lib/bluegreen/active.sock;\n    keepalive 32;\n    keepalive_time 500ms;\n    keepalive_timeout 500ms;`, tcpLive)
                .replace(`${socketUpstream}\n    server unix:/var/lib/bluegreen/preview.sock;\n    keepalive 8;\n    keepalive_time 500ms;\n    keepalive_timeout 500ms;`, tcpPreview);
            assert.strictEqual(tcp, fromSocket);
        });

        it("names no colour outside comments: switching never rewrites it", () => {
            const directives = (socket + tcp)
                .split("\n")
                .filter((l) => !l.trim().startsWith("#"))
                .join("\n")
                .replace(/bluegreen/g, "");
            assert.doesNotMatch(directives, /blue|green/);
        });

        it("only the public listener binds beyond loopback; check and preview are 127.0.0.1", () => {
            assert.deepStrictEqual(socket.match(/listen [^;]+;/g), [
                "listen 80 default_server;",
                "listen [::]:80 default_server;",
                "listen 127.0.0.1:8082;",
                "listen 127.0.0.1:8081;",
            ]);
        });

        it("maintenance: a per-request flag check on the public server only, with Retry-After", () => {
            assert.strictEqual(socket.match(/if \(-f \/var\/lib\/bluegreen\/maintenance\)/g)?.length, 1);
            assert.match(socket, /location @bluegreen_maintenance \{\n        root \/var\/lib\/bluegreen\/www;\n        add_header Retry-After 120 always;/);
        });

        it("real nginx accepts both modes (nginx -t)", function () {
            requireTool("nginx");
            for (const site of [socket, tcp]) {
                const r = nginxTest(site);
                assert.strictEqual(r.status, 0, r.stderr);
            }
        });

        it("the server name is configurable", () => {
            assert.match(renderNginxSite({ mode: "socket", serverName: "example.com www.example.com", previewPort: 9000, checkPort: 9001, maintenanceRetryAfter: 60 }), /server_name example\.com www\.example\.com;[\s\S]*listen 127\.0\.0\.1:9000;/);
        });
    });

    it("systemd unit: matches the expected text (hardened, unprivileged, restart on failure)", () => {
        assert.strictEqual(
            renderSlotUnit({ args: "--listen ${BLUEGREEN_LISTEN} --color ${BLUEGREEN_COLOR}", drainTimeoutSeconds: 25 }),
            expected("bluegreen@.service"),
        );
    });

    it("systemd unit: stop timeout follows the drain timeout", () => {
        assert.match(renderSlotUnit({ args: "", drainTimeoutSeconds: 100 }), /\nTimeoutStopSec=105\n/);
    });

    it("env file: bluegreen's variables first, app env sorted, values quoted with C escapes", () => {
        const text = renderSlotEnv({
            color: "green",
            version: "v2",
            listen: slotListen("socket", "green", 8002),
            drainTimeoutSeconds: 25,
            appEnv: { ZED: 'say "hi"', ALPHA: "C:\\path", HOME_REF: "$HOME" },
        });
        assert.strictEqual(
            text,
            [
                'BLUEGREEN_COLOR="green"',
                'BLUEGREEN_VERSION="v2"',
                'BLUEGREEN_LISTEN="unix:/run/bluegreen/green/app.sock"',
                'BLUEGREEN_DATA_DIR="/var/lib/bluegreen/data"',
                'BLUEGREEN_ACTIVE_FILE="/var/lib/bluegreen/active"',
                'BLUEGREEN_DRAIN_TIMEOUT="25"',
                'ALPHA="C:\\\\path"',
                'HOME_REF="$HOME"',
                'ZED="say \\"hi\\""',
                "",
            ].join("\n"),
        );
    });

    it("tcp listen addresses are loopback", () => {
        assert.strictEqual(slotListen("tcp", "blue", 8001), "127.0.0.1:8001");
        assert.strictEqual(renderTcpUpstream(8001), "server 127.0.0.1:8001;\n");
    });

    it("cloud-init installs the key for the default user", () => {
        assert.strictEqual(renderCloudInit("ssh-ed25519 AAAA k"), "#cloud-config\nssh_authorized_keys:\n  - ssh-ed25519 AAAA k\n");
    });

    it("layout.sh carries the same paths as layout.ts", () => {
        const text = renderLayoutSh();
        assert.match(text, /\nBG_LIVE_SOCK=\/var\/lib\/bluegreen\/active\.sock\n/);
        assert.match(text, /\nBG_RELEASES_DIR=\/opt\/bluegreen\/releases\n/);
        assert.match(text, /\nBG_ACTIVE_FILE=\/var\/lib\/bluegreen\/active\n/);
    });

    describe("tools installer", () => {
        it("writes each file through a temporary name, then runs the final step", () => {
            const text = renderToolsInstaller([{ name: "a.sh", text: "echo a" }], "a.sh");
            assert.strictEqual(
                text,
                [
                    "#!/usr/bin/env bash",
                    "# Installs bluegreen's host tools. Generated by components/render.ts.",
                    "set -euo pipefail",
                    "dir=/usr/local/lib/bluegreen",
                    'install -d -m 0755 "$dir"',
                    `cat > "$dir/.a.sh.new" <<'BLUEGREEN_TOOL_A_SH'`,
                    "echo a",
                    "BLUEGREEN_TOOL_A_SH",
                    'chmod 0755 "$dir/.a.sh.new"',
                    'mv -f "$dir/.a.sh.new" "$dir/a.sh"',
                    '"$dir/a.sh"',
                    "",
                ].join("\n"),
            );
        });

        it("refuses a file that contains its own heredoc marker, or an odd name", () => {
            assert.throws(() => renderToolsInstaller([{ name: "a.sh", text: "x\nBLUEGREEN_TOOL_A_SH\n" }], "a.sh"), /contains its heredoc marker/);
            assert.throws(() => renderToolsInstaller([{ name: "../a.sh", text: "" }], "a.sh"), /not a plain script name/);
        });
    });
});
