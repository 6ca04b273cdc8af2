// The switch script against a real nginx on this machine, under load.
// Needs nginx, wrk, curl and go; CI installs them, and a missing one fails the test.
import * as assert from "assert";
import * as fs from "fs";
import { Sandbox, wrk } from "./sandbox";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("switch against a real nginx (local sandbox)", function () {
    this.timeout(120_000);

    describe("socket mode", () => {
        let host: Sandbox;
        before(async () => {
            host = new Sandbox({ mode: "socket", httpPort: 18180, previewPort: 18181 });
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
                    const c = spawn(host.at("/usr/local/lib/bluegreen/switch.sh"), [], { env: { PATH: process.env.PATH, TARGET: color, MODE: "socket", HEALTH_PATH: "/health/ready" } });
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

    describe("tcp mode", () => {
        let host: Sandbox;
        before(async () => {
            host = new Sandbox({ mode: "tcp", httpPort: 18190, previewPort: 18191, ports: { blue: 18291, green: 18292 } });
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
