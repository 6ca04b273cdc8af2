// The switch script against a real nginx on this machine, under load.
// Needs nginx, wrk, curl and go; CI installs them, and a missing one fails the test.
import * as assert from "assert";
import * as crypto from "crypto";
import * as fs from "fs";
import { Sandbox, wrk } from "./sandbox";
import { run } from "./tools";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha256 = (text: string) => crypto.createHash("sha256").update(text).digest("hex");

describe("switch against a real nginx (local sandbox)", function () {
    this.timeout(120_000);

    describe("socket mode", () => {
        let host: Sandbox;
        before(async () => {
            host = new Sandbox({ mode: "socket", httpPort: 18180, previewPort: 18181, checkPort: 18182 });
            const cfg = host.configureAndStartNginx();
            assert.strictEqual(cfg.status, 0, cfg.stderr);
            await host.startSlot("blue", "v1");
            await host.startSlot("green", "v2");
            const first = host.switchTo("blue");
            assert.strictEqual(first.status, 0, first.stderr);
        });
        after(() => host?.stop());

        it("serves blue publicly and green on the preview listener", () => {
            assert.strictEqual(host.servedColor(), "blue");
            assert.strictEqual(host.previewColor(), "green");
            assert.strictEqual(fs.readFileSync(host.at("/var/lib/bluegreen/active"), "utf8"), "blue\n");
        });

        it("10 switches under 64 keep-alive connections: 0 failed requests, and the served colour follows", async () => {
            const load = wrk("http://127.0.0.1:18180/", 8, 64);
            const results: string[] = [];
            for (let i = 0; i < 10; i++) {
                await sleep(600);
                const target = i % 2 === 0 ? "green" : "blue";
                const r = host.switchTo(target);
                assert.strictEqual(r.status, 0, r.stderr);
                assert.match(r.stdout, new RegExp(`^live: ${target} v[12] \\(was ${target === "green" ? "blue" : "green"}\\); switched in \\d+ ms, converged \\d+ ms after the link moved; verified through nginx: X-Bluegreen-Color: ${target}\\n$`));
                results.push(target);
                for (let k = 0; k < 10; k++) assert.strictEqual(host.servedColor(), target, `request ${k} after the switch to ${target}`);
            }
            const w = await load;
            assert.ok(w.requests > 1000, `wrk made ${w.requests} requests:\n${w.raw}`);
            assert.strictEqual(w.socketErrors, 0, w.raw);
            assert.strictEqual(w.non2xx, 0, w.raw);
            assert.strictEqual(host.servedColor(), "blue");
            assert.strictEqual(host.previewColor(), "green");
        });

        it("refuses an unready target, names why, and leaves the links alone", () => {
            fs.writeFileSync(`${host.faultDir}/green.unready`, "");
            try {
                const before = [host.readLink("live"), host.readLink("preview")];
                const r = host.switchTo("green");
                assert.strictEqual(r.status, 1);
                assert.match(r.stderr, /^bluegreen: error: refusing to switch to green: it is not ready \(GET \/health\/ready on the slot gave no 2xx\)\. Traffic stays on blue\.\nLast journal lines of bluegreen@green:\n/);
                assert.deepStrictEqual([host.readLink("live"), host.readLink("preview")], before);
                assert.strictEqual(host.servedColor(), "blue");
            } finally {
                fs.rmSync(`${host.faultDir}/green.unready`);
            }
        });

        it("two switches started at once are serialized by the lock and end consistent", async () => {
            const { spawn } = await import("child_process");
            const start = (color: string) =>
                new Promise<{ code: number | null; out: string }>((resolve) => {
                    const c = spawn(host.at("/usr/local/lib/bluegreen/switch.sh"), [], { env: { PATH: process.env.PATH, TARGET: color, MODE: "socket", HEALTH_PATH: "/health/ready", CHECK_PORT: "18182" } });
                    let out = "";
                    c.stdout.on("data", (d) => (out += d));
                    c.stderr.on("data", (d) => (out += d));
                    c.on("close", (code) => resolve({ code, out }));
                });
            const [a, b] = await Promise.all([start("green"), start("blue")]);
            assert.strictEqual(a.code, 0, a.out);
            assert.strictEqual(b.code, 0, b.out);
            const recorded = fs.readFileSync(host.at("/var/lib/bluegreen/active"), "utf8").trim();
            assert.strictEqual(host.servedColor(), recorded);
            assert.strictEqual(host.readLink("live"), `/run/bluegreen/${recorded}/app.sock`);
            const other = recorded === "blue" ? "green" : "blue";
            assert.strictEqual(host.readLink("preview"), `/run/bluegreen/${other}/app.sock`);
            // The second switch saw the first one's result, not a half-done state.
            const second = [a, b].find((x) => x.out.includes(`live: ${recorded} `))!;
            assert.match(second.out, new RegExp(`\\(was ${other}\\)`));
        });
    });

    describe("maintenance, post-switch watch and audit (socket mode)", () => {
        let host: Sandbox;
        const audit = () => fs.readFileSync(host.at("/var/log/bluegreen/audit.log"), "utf8");
        before(async () => {
            host = new Sandbox({ mode: "socket", httpPort: 18170, previewPort: 18171, checkPort: 18172 });
            assert.strictEqual(host.configureAndStartNginx().status, 0);
            await host.startSlot("blue", "v1");
            await host.startSlot("green", "v2");
            assert.strictEqual(host.switchTo("blue").status, 0);
        });
        after(() => host?.stop());

        it("maintenance on: public gets the page as 503 with Retry-After; preview and check still reach the slots; off restores", () => {
            const on = host.tool("maintenance.sh", { STATE: "on" }, "<h1>Down for maintenance</h1>\n");
            assert.strictEqual(on.status, 0, on.stderr);
            assert.strictEqual(on.stdout, "maintenance on: public requests get 503 with Retry-After; blue keeps running\n");
            const page = run("curl", ["-sS", "-D", "-", "http://127.0.0.1:18170/"]);
            assert.match(page.stdout, /^HTTP\/1\.1 503 /);
            assert.match(page.stdout, /\r\nRetry-After: 120\r\n/);
            assert.match(page.stdout, /<h1>Down for maintenance<\/h1>/);
            assert.strictEqual(host.previewColor(), "green");
            assert.strictEqual(run("curl", ["-sS", "http://127.0.0.1:18172/"]).stdout, "blue v1\n");
            // A switch during maintenance verifies through the check listener and still works.
            assert.strictEqual(host.switchTo("green").status, 0);
            assert.strictEqual(host.switchTo("blue").status, 0);
            const off = host.tool("maintenance.sh", { STATE: "off" });
            assert.strictEqual(off.stdout, "maintenance off: public traffic goes to blue again\n");
            assert.strictEqual(host.servedColor(), "blue");
            assert.match(audit(), /Z maintenance state=on live=blue result=ok by=\w+\n(.*\n)*.*Z maintenance state=off live=blue result=ok by=\w+\n$/);
        });

        it("an app 503 is passed through, not turned into the maintenance page", () => {
            fs.writeFileSync(`${host.faultDir}/blue.unready`, "");
            try {
                const r = run("curl", ["-sS", "-D", "-", "http://127.0.0.1:18170/health/ready"]);
                assert.match(r.stdout, /^HTTP\/1\.1 503 [\s\S]*not ready \(fault injected\)/);
                assert.doesNotMatch(r.stdout, /Retry-After/);
            } finally {
                fs.rmSync(`${host.faultDir}/blue.unready`);
            }
        });

        it("a new slot that answers 5xx after the switch is rolled back within the watch, with the reason", async () => {
            fs.writeFileSync(`${host.faultDir}/green.error500`, "");
            try {
                const load = wrk("http://127.0.0.1:18170/", 6, 8);
                await sleep(500);
                const r = host.switchTo("green", { WATCH_SECONDS: "10", ERROR_PERCENT: "5", MIN_ERRORS: "5" });
                const w = await load;
                assert.strictEqual(r.status, 1, r.stdout);
                assert.match(
                    r.stderr,
                    /^bluegreen: error: switch to green rolled back: (\d+) of (\d+) responses since the switch were 5xx, \d+ ms after it \(limit: 5% and at least 5\)\. Traffic is back on blue \(v1\)\.\nLast journal lines of bluegreen@green:\n[\s\S]*\nNext: fix the app and deploy a new version to green \(pulumi config set greenVersion \.\.\.\), or stay on blue: pulumi config set active blue\n$/,
                );
                assert.strictEqual(host.servedColor(), "blue");
                assert.strictEqual(host.readLink("live"), "/run/bluegreen/blue/app.sock");
                assert.strictEqual(fs.readFileSync(host.at("/var/lib/bluegreen/active"), "utf8"), "blue\n");
                assert.strictEqual(w.socketErrors, 0, "no connection was reset; the only failures are green's own 500s");
                assert.match(audit(), /Z rollback from=green to=blue errors=\d+ responses=\d+ result=rolled-back by=\w+\n$/);
            } finally {
                fs.rmSync(`${host.faultDir}/green.error500`);
            }
        });

        it("a healthy new slot passes the watch, and the result says what was seen", async () => {
            const load = wrk("http://127.0.0.1:18170/", 4, 8);
            await sleep(300);
            const r = host.switchTo("green", { WATCH_SECONDS: "2" });
            await load;
            assert.strictEqual(r.status, 0, r.stderr);
            assert.match(r.stdout, /; watched 2 s: 0 of \d+ responses 5xx\n$/);
            assert.match(audit(), /Z switch from=blue to=green version=v2 result=ok by=\w+\n$/);
        });

        it("status shows the live colour, versions, health, maintenance and the audit tail", () => {
            const r = host.tool("status.sh", { LINES: "2" });
            assert.strictEqual(r.status, 0, r.stderr);
            assert.match(r.stdout, /^live: {8}green \(socket mode, recorded green\)\nmaintenance: off\nblue: {8}v1 {9}unit \S* +ready yes pid \S+\ngreen: {7}v2 {9}unit \S* +ready yes pid \S+\n/);
            assert.match(r.stdout, /last 2 audit lines \(.*audit\.log\):\n  \S+ rollback from=green to=blue .*\n  \S+ switch from=blue to=green version=v2 result=ok by=\w+\n$/);
        });
    });

    describe("releases", () => {
        let host: Sandbox;
        before(() => {
            host = new Sandbox({ mode: "socket", httpPort: 18160, previewPort: 18161, checkPort: 18162 });
            fs.mkdirSync(host.at("/opt/bluegreen/releases"), { recursive: true });
        });
        after(() => host?.stop());

        const store = (version: string, keep = "3") => {
            const file = host.at(`/tmp-upload-${version}`);
            fs.writeFileSync(file, `binary ${version}\n`);
            const sha = sha256(`binary ${version}\n`);
            return host.tool("release.sh", { VERSION: version, SHA256: sha, SOURCE_FILE: file, KEEP: keep });
        };
        const stored = () => fs.readdirSync(host.at("/opt/bluegreen/releases")).filter((d) => !d.startsWith(".")).sort();

        it("keeps the newest KEEP releases and never one a slot uses", async () => {
            for (const v of ["v1", "v2", "v3"]) {
                assert.strictEqual(store(v).status, 0);
                await sleep(20);
            }
            // blue runs v1 (the oldest), green runs v3.
            for (const [c, v] of [["blue", "v1"], ["green", "v3"]]) {
                fs.mkdirSync(host.at(`/var/lib/bluegreen/slots/${c}`), { recursive: true });
                fs.symlinkSync(host.at(`/opt/bluegreen/releases/${v}`), host.at(`/var/lib/bluegreen/slots/${c}/current`));
            }
            // KEEP=2: the newest two (v4, v3) plus v1, which blue uses; v2 goes.
            const r = store("v4", "2");
            assert.strictEqual(r.status, 0, r.stderr);
            assert.strictEqual(r.stdout, `release v4 stored (sha256 ${sha256("binary v4\n")})\nremoved old releases: v2\n`);
            assert.deepStrictEqual(stored(), ["v1", "v3", "v4"]);
            assert.match(fs.readFileSync(host.at("/var/log/bluegreen/audit.log"), "utf8"), /Z release-prune removed=v2 keep=2 result=ok by=\w+\n$/);
        });

        it("refuses new bytes under a stored version", () => {
            const file = host.at("/tmp-upload-other");
            fs.writeFileSync(file, "other bytes\n");
            const r = host.tool("release.sh", { VERSION: "v4", SHA256: "0".repeat(64), SOURCE_FILE: file });
            assert.strictEqual(r.status, 1);
            assert.match(r.stderr, /^bluegreen: error: release v4 is already on the host with sha256 [0-9a-f]{64}, but the artifact is now 0{64}\.\nVersions are immutable here: give the new build a new version string\.\n$/);
        });

        it("refuses a file whose sha256 does not match", () => {
            const file = host.at("/tmp-upload-v9");
            fs.writeFileSync(file, "tampered\n");
            const r = host.tool("release.sh", { VERSION: "v9", SHA256: "1".repeat(64), SOURCE_FILE: file });
            assert.strictEqual(r.status, 1);
            assert.match(r.stderr, /release v9 failed verification: expected sha256 1{64}, got [0-9a-f]{64}/);
            assert.ok(!stored().includes("v9"));
        });
    });

    describe("tcp mode", () => {
        let host: Sandbox;
        before(async () => {
            host = new Sandbox({ mode: "tcp", httpPort: 18190, previewPort: 18191, checkPort: 18192, ports: { blue: 18291, green: 18292 } });
            const cfg = host.configureAndStartNginx();
            assert.strictEqual(cfg.status, 0, cfg.stderr);
            await host.startSlot("blue", "v1");
            await host.startSlot("green", "v2");
            assert.strictEqual(host.switchTo("blue").status, 0);
        });
        after(() => host?.stop());

        it("switches by relinking the upstream include and reloading", () => {
            const r = host.switchTo("green");
            assert.strictEqual(r.status, 0, r.stderr);
            assert.strictEqual(host.servedColor(), "green");
            assert.strictEqual(host.readLink("live"), "/etc/nginx/bluegreen/slot-green.conf");
            assert.strictEqual(host.previewColor(), "blue");
        });

        it("status reads the mode from the nginx site, even with a socket link left from socket mode", () => {
            fs.symlinkSync(host.at("/run/bluegreen/blue/app.sock"), host.at("/var/lib/bluegreen/active.sock"));
            const r = host.tool("status.sh", {});
            assert.strictEqual(r.status, 0, r.stderr);
            assert.match(r.stdout, /^live: {8}green \(tcp mode, recorded green\)\n/);
        });

        it("a config nginx -t rejects puts the links back and nginx keeps serving", () => {
            const slotBlue = host.at("/etc/nginx/bluegreen/slot-blue.conf");
            const good = fs.readFileSync(slotBlue, "utf8");
            fs.writeFileSync(slotBlue, "server 127.0.0.1:notaport;\n");
            try {
                const r = host.switchTo("blue");
                assert.strictEqual(r.status, 1);
                assert.match(r.stderr, /^bluegreen: error: nginx -t failed after relinking to blue, so the links were put back and nginx keeps serving green:\n.*invalid port/s);
                assert.strictEqual(host.readLink("live"), "/etc/nginx/bluegreen/slot-green.conf");
                assert.strictEqual(host.servedColor(), "green");
            } finally {
                fs.writeFileSync(slotBlue, good);
            }
        });
    });
});
