// The switch script against a real nginx and a real HAProxy on this machine, under load:
// the same tests for both routers. Needs nginx, haproxy, socat, wrk, curl and go; CI
// installs them, and a missing one fails the test.
import * as assert from "assert";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { onPorts, Sandbox, SWITCH_TEST_VALUES, wrk } from "../support/sandbox";
import { run } from "../support/tools";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const sha256 = (text: string) => crypto.createHash("sha256").update(text).digest("hex");

for (const router of ["nginx", "haproxy"] as const) {
  // Each router's sandboxes on their own ports.
  const base = router === "nginx" ? 0 : 500;
  describe(`switch against a real ${router} (local sandbox)`, function () {
    this.timeout(120_000);

    describe("socket mode", () => {
      let host: Sandbox;
      before(async () => {
        host = new Sandbox({
          router,
          mode: "socket",
          httpPort: 18180 + base,
          previewPort: 18181 + base,
          checkPort: 18182 + base,
        });
        const cfg = host.configureAndStart();
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
        const load = wrk(`http://127.0.0.1:${18180 + base}/`, 8, 64);
        const results: string[] = [];
        for (let i = 0; i < 10; i++) {
          await sleep(600);
          const target = i % 2 === 0 ? "green" : "blue";
          const r = host.switchTo(target);
          assert.strictEqual(r.status, 0, r.stderr);
          assert.match(
            r.stdout,
            new RegExp(
              `^live: ${target} v[12] \\(was ${target === "green" ? "blue" : "green"}\\); switched in \\d+ ms, verified \\d+ ms after the link moved through ${router}: X-Bluegreen-Color: ${target}\\n$`,
            ),
          );
          results.push(target);
          for (let k = 0; k < 10; k++)
            assert.strictEqual(host.servedColor(), target, `request ${k} after the switch to ${target}`);
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
          const before = host.liveLink();
          const r = host.switchTo("green");
          assert.strictEqual(r.status, 1);
          assert.match(
            r.stderr,
            /^bluegreen: error: refusing to switch to green: it is not ready \(GET \/health\/ready on the slot gave no 2xx\)\. Traffic stays on blue\.\nLast journal lines of bluegreen@green:\n/,
          );
          assert.strictEqual(host.liveLink(), before);
          assert.strictEqual(host.servedColor(), "blue");
        } finally {
          fs.rmSync(`${host.faultDir}/green.unready`);
        }
      });

      it("two switches started at once are serialized by the lock and end consistent", async () => {
        const { spawn } = await import("child_process");
        const start = (color: string) =>
          new Promise<{ code: number | null; out: string }>((resolve) => {
            const c = spawn(host.at("/usr/local/lib/bluegreen/switch.sh"), [], {
              env: {
                PATH: process.env.PATH,
                ...SWITCH_TEST_VALUES,
                TARGET: color,
                HEALTH_PATH: "/health/ready",
                CHECK_PORT: String(18182 + base),
              },
            });
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
        assert.strictEqual(host.liveLink(), `/var/lib/bluegreen/colors/${recorded}`);
        const other = recorded === "blue" ? "green" : "blue";
        assert.strictEqual(host.previewColor(), other);
        // The second switch saw the first one's result, not a half-done state.
        const second = [a, b].find((x) => x.out.includes(`live: ${recorded} `))!;
        assert.match(second.out, new RegExp(`\\(was ${other}\\)`));
      });
    });

    describe("maintenance, post-switch watch and audit (socket mode)", () => {
      let host: Sandbox;
      const audit = () => fs.readFileSync(host.at("/var/log/bluegreen/audit.log"), "utf8");
      before(async () => {
        host = new Sandbox({
          router,
          mode: "socket",
          httpPort: 18170 + base,
          previewPort: 18171 + base,
          checkPort: 18172 + base,
        });
        assert.strictEqual(host.configureAndStart().status, 0);
        await host.startSlot("blue", "v1");
        await host.startSlot("green", "v2");
        assert.strictEqual(host.switchTo("blue").status, 0);
      });
      after(() => host?.stop());

      it("maintenance on: public gets the page as 503 with Retry-After; preview and check still reach the slots; off restores", () => {
        const on = host.tool("maintenance.sh", { STATE: "on" }, "<h1>Down for maintenance</h1>\n");
        assert.strictEqual(on.status, 0, on.stderr);
        assert.strictEqual(on.stdout, "maintenance on: public requests get 503 with Retry-After; blue keeps running\n");
        const page = run("curl", ["-sS", "-D", "-", `http://127.0.0.1:${18170 + base}/`]);
        assert.match(page.stdout, /^HTTP\/1\.1 503 /);
        // Header names are case-insensitive; HAProxy sends them in lower case.
        assert.match(page.stdout, /\r\nRetry-After: 120\r\n/i);
        assert.match(page.stdout, /<h1>Down for maintenance<\/h1>/);
        assert.strictEqual(host.previewColor(), "green");
        assert.strictEqual(run("curl", ["-sS", `http://127.0.0.1:${18172 + base}/`]).stdout, "blue v1\n");
        // A switch during maintenance verifies through the check listener and still works.
        assert.strictEqual(host.switchTo("green").status, 0);
        assert.strictEqual(host.switchTo("blue").status, 0);
        const off = host.tool("maintenance.sh", { STATE: "off" });
        assert.strictEqual(off.stdout, "maintenance off: public traffic goes to blue again\n");
        assert.strictEqual(host.servedColor(), "blue");
        assert.match(
          audit(),
          /Z maintenance state=on live=blue result=ok by=\w+\n(.*\n)*.*Z maintenance state=off live=blue result=ok by=\w+\n$/,
        );
      });

      it("an app 503 is passed through, not turned into the maintenance page", () => {
        fs.writeFileSync(`${host.faultDir}/blue.unready`, "");
        try {
          const r = run("curl", ["-sS", "-D", "-", `http://127.0.0.1:${18170 + base}/health/ready`]);
          assert.match(r.stdout, /^HTTP\/1\.1 503 [\s\S]*not ready \(fault injected\)/);
          assert.doesNotMatch(r.stdout, /Retry-After/i);
        } finally {
          fs.rmSync(`${host.faultDir}/blue.unready`);
        }
      });

      it("a new slot that answers 5xx after the switch is rolled back within the watch, with the reason", async () => {
        fs.writeFileSync(`${host.faultDir}/green.error500`, "");
        try {
          const load = wrk(`http://127.0.0.1:${18170 + base}/`, 6, 8);
          await sleep(500);
          const r = host.switchTo("green", { WATCH_SECONDS: "10", ERROR_PERCENT: "5", MIN_ERRORS: "5" });
          const w = await load;
          assert.strictEqual(r.status, 1, r.stdout);
          assert.match(
            r.stderr,
            /^bluegreen: error: switch to green rolled back: (\d+) of (\d+) responses since the switch were 5xx, \d+ ms after it \(limit: 5% and at least 5\)\. Traffic is back on blue \(v1\)\.\nLast journal lines of bluegreen@green:\n[\s\S]*\nNext: fix the app and deploy a new version to green \(pulumi config set greenVersion \.\.\.\), or stay on blue: pulumi config set active blue\n$/,
          );
          assert.strictEqual(host.servedColor(), "blue");
          assert.strictEqual(host.liveLink(), "/var/lib/bluegreen/colors/blue");
          assert.strictEqual(fs.readFileSync(host.at("/var/lib/bluegreen/active"), "utf8"), "blue\n");
          assert.strictEqual(w.socketErrors, 0, "no connection was reset; the only failures are green's own 500s");
          assert.match(audit(), /Z rollback from=green to=blue errors=\d+ responses=\d+ result=rolled-back by=\w+\n$/);
        } finally {
          fs.rmSync(`${host.faultDir}/green.error500`);
        }
      });

      it("a healthy new slot passes the watch, says what it sees as it goes, and what it saw", async () => {
        const load = wrk(`http://127.0.0.1:${18170 + base}/`, 5, 8);
        await sleep(300);
        const r = host.switchTo("green", { WATCH_SECONDS: "3", BG_PROGRESS_SECONDS: "1" });
        await load;
        assert.strictEqual(r.status, 0, r.stderr);
        assert.match(r.stdout, /; watched 3 s: 0 of \d+ responses 5xx\n$/);
        // A line a second on stderr while it watches: how long, and the counts so far, growing.
        const seen = [...r.stderr.matchAll(/^watching green: (\d+) of 3 s, (\d+) responses, 0 5xx so far$/gm)];
        assert.ok(seen.length >= 2, r.stderr);
        const totals = seen.map((m) => Number(m[2]));
        assert.ok(totals[0] > 0 && totals.every((t, i) => i === 0 || t >= totals[i - 1]), r.stderr);
        assert.match(audit(), /Z switch from=blue to=green version=v2 result=ok by=\w+\n$/);
      });

      it("status shows the live colour, versions, health, maintenance and the audit tail", () => {
        const r = host.tool("status.sh", { LINES: "2" });
        assert.strictEqual(r.status, 0, r.stderr);
        assert.match(
          r.stdout,
          /^live: {8}green \(recorded green\)\nmaintenance: off\nblue: {8}v1 {9}unit \S* +ready yes pid \S+ +on unix:\S+\/blue\/app\.sock\ngreen: {7}v2 {9}unit \S* +ready yes pid \S+ +on unix:\S+\/green\/app\.sock\n/,
        );
        assert.strictEqual(host.tool("status.sh", {}, undefined, ["live"]).stdout, "green\n");
        assert.match(
          r.stdout,
          /last 2 audit lines \(.*audit\.log\):\n  \S+ rollback from=green to=blue .*\n  \S+ switch from=blue to=green version=v2 result=ok by=\w+\n$/,
        );
      });

      if (router === "haproxy")
        it("a switch right after a reload reaches the new worker (the old one still accepts on the admin socket for a moment)", () => {
          for (const target of ["green", "blue", "green", "blue", "green", "blue"] as const) {
            const r = host.lib(`router_reload && set_live ${target} && record_active ${target}`);
            assert.strictEqual(r.status, 0, r.stderr);
            for (let k = 0; k < 5; k++) assert.strictEqual(host.servedColor(), target, `request ${k} after the reload`);
          }
        });

      if (router === "haproxy")
        it("a worker still draining after a reload gets the switch too: the next request on its kept-alive connection reaches the new slot", async () => {
          const net = await import("net");
          const master = host.at("/run/haproxy-master.sock");
          const oldWorkers = () =>
            run("socat", ["-", `UNIX-CONNECT:${master}`], { input: "show proc\n" }).stdout.split("# old workers")[1] ??
            "";
          assert.strictEqual(host.switchTo("blue", { WATCH_SECONDS: "0" }).status, 0);
          const conn = net.connect(host.opts.httpPort, "127.0.0.1");
          let got = "";
          conn.on("data", (d: Buffer) => (got += d.toString()));
          const ask = async () => {
            got = "";
            conn.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
            for (let i = 0; i < 100 && !/\r\n\r\n[\s\S]*\n/.test(got); i++) await sleep(20);
            return got;
          };
          try {
            assert.match(await ask(), /x-bluegreen-color: blue/i);
            process.kill(Number(fs.readFileSync(host.at("/haproxy.pid"), "utf8").trim()), "SIGUSR2");
            for (let i = 0; i < 100 && !/^\d+\s+worker/m.test(oldWorkers()); i++) await sleep(50);
            assert.match(oldWorkers(), /^\d+\s+worker/m, "the old worker drains: it holds our idle connection");
            const r = host.switchTo("green", { WATCH_SECONDS: "0" });
            assert.strictEqual(r.status, 0, r.stderr);
            assert.strictEqual(host.servedColor(), "green", "new connections: the new worker");
            const last = await ask();
            assert.match(last, /x-bluegreen-color: green/i, "the old worker's next answer comes from the new slot");
            assert.match(last, /connection: close/i, "and closes the connection (idle-close-on-response)");
          } finally {
            conn.destroy();
          }
        });

      if (router === "haproxy")
        it("an EXTRAOPTS line in /etc/default/haproxy (it replaces the unit's -S) gets the master CLI back; one that has it, or none, is left alone", () => {
          const master = host.at("/run/haproxy-master.sock");
          const cases: [string, string, string][] = [
            ['CONFIG="x"\nEXTRAOPTS="-de -m 16"\n', "added\n", `CONFIG="x"\nEXTRAOPTS="-de -m 16 -S ${master}"\n`],
            ["EXTRAOPTS=-de\n", "added\n", `EXTRAOPTS="-de -S ${master}"\n`],
            [`EXTRAOPTS="-S ${master}"\n`, "", `EXTRAOPTS="-S ${master}"\n`],
            ['#EXTRAOPTS="-de -m 16"\n', "", '#EXTRAOPTS="-de -m 16"\n'],
          ];
          for (const [before, said, after] of cases) {
            const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "bg-default-")), "haproxy");
            fs.writeFileSync(f, before);
            const r = host.lib(`haproxy_master_cli_opts ${f}`);
            assert.strictEqual(r.status, 0, r.stderr);
            assert.strictEqual(r.stdout, said, before);
            assert.strictEqual(fs.readFileSync(f, "utf8"), after, before);
            fs.rmSync(path.dirname(f), { recursive: true });
          }
        });

      if (router === "haproxy")
        it("a map HAProxy holds without an entry (loaded by an older bluegreen): the switch adds it and moves traffic", () => {
          const admin = host.at("/run/haproxy/admin.sock");
          const map = host.at("/var/lib/bluegreen/haproxy.map");
          const cli = (cmd: string) => run("socat", ["-", `UNIX-CONNECT:${admin}`], { input: `${cmd}\n` }).stdout;
          assert.strictEqual(host.switchTo("blue").status, 0);
          assert.strictEqual(cli(`del map ${map} https`), "\n");
          assert.doesNotMatch(cli(`show map ${map}`), / https /);
          const r = host.switchTo("green", { WATCH_SECONDS: "0" });
          assert.strictEqual(r.status, 0, r.stderr);
          assert.strictEqual(host.servedColor(), "green");
          assert.match(
            cli(`show map ${map}`),
            /^0x[0-9a-f]+ live bluegreen_green_socket\n(.*\n)*0x[0-9a-f]+ https off\n/,
          );
          assert.strictEqual(host.switchTo("blue", { WATCH_SECONDS: "0" }).status, 0);
          assert.strictEqual(host.servedColor(), "blue");
        });

      if (router === "haproxy")
        it("a watch that cannot read HAProxy's counters never passes: refused before the move, or put back after it", () => {
          // socat that answers everything but `show stat` after the first ALLOW of them (a runtime API that stops answering).
          const bin = fs.mkdtempSync(path.join(os.tmpdir(), "bg-socat-"));
          const real = run("bash", ["-c", "command -v socat"]).stdout.trim();
          fs.writeFileSync(
            path.join(bin, "socat"),
            `#!/bin/bash\nin=$(cat)\nif [[ $in == *"show stat"* ]]; then\n  n=$(cat ${bin}/n 2>/dev/null || echo 0); echo $((n + 1)) > ${bin}/n\n  [ "$n" -lt "$ALLOW" ] || exit 1\nfi\nprintf '%s\\n' "$in" | exec ${real} "$@"\n`,
            { mode: 0o755 },
          );
          const env = (allow: number) => ({
            WATCH_SECONDS: "2",
            PATH: `${bin}:${process.env.PATH}`,
            ALLOW: String(allow),
          });
          try {
            assert.strictEqual(host.switchTo("blue").status, 0);
            const before = host.switchTo("green", env(0));
            assert.strictEqual(before.status, 1, before.stdout);
            assert.match(
              before.stderr,
              /^bluegreen: error: could not read haproxy's counters for green before the switch, so the post-switch watch could not count; nothing moved, traffic stays on blue\./,
            );
            assert.strictEqual(host.servedColor(), "blue");
            fs.rmSync(path.join(bin, "n"));
            const after = host.switchTo("green", env(1));
            assert.strictEqual(after.status, 1, after.stdout);
            assert.match(
              after.stderr,
              /^bluegreen: error: the post-switch watch could not read haproxy's counts for green even once in 2 s \(\d+ tries\), so the switch is not confirmed; traffic is back on blue\./,
            );
            assert.strictEqual(host.servedColor(), "blue");
            assert.strictEqual(host.liveLink(), "/var/lib/bluegreen/colors/blue");
            assert.match(
              audit(),
              /Z switch from=blue to=green version=v2 result=failed by=\w+\n.*Z switch from=blue to=green version=v2 result=failed by=\w+\n$/,
            );
          } finally {
            fs.rmSync(bin, { recursive: true, force: true });
          }
        });
    });

    describe("the gate and the verify ask the router's check listener, in bash alone", () => {
      const port = (router === "nginx" ? 19110 : 19120) as number;
      let host: Sandbox;
      /** The check listener's answer to a fresh curl, with an X-Bluegreen-Slot request header if given. */
      const ask = (slot?: string) => {
        const name = slot === undefined ? [] : ["-H", `X-Bluegreen-Slot: ${slot}`];
        const r = run("curl", [
          "-sS",
          "-D",
          "-",
          "-o",
          "/dev/null",
          ...name,
          `http://127.0.0.1:${port + 2}/health/ready`,
        ]);
        const header = (h: string) => new RegExp(`\r\n${h}: *(\\w+)\r\n`, "i").exec(r.stdout)?.[1] ?? "none";
        return { status: r.stdout.split(" ")[1], color: header("X-Bluegreen-Color"), slot: header("X-Bluegreen-Slot") };
      };
      before(async () => {
        host = new Sandbox(onPorts(router, port));
        assert.strictEqual(host.configureAndStart().status, 0);
        await host.startSlot("blue", "v1");
        await host.startSlot("green", "v2");
        assert.strictEqual(host.switchTo("blue").status, 0);
      });
      after(() => host?.stop());

      it("the check listener serves the live slot, or the slot a request names, and says which slot answered", () => {
        assert.deepStrictEqual(ask(), { status: "200", color: "blue", slot: "blue" });
        assert.deepStrictEqual(ask("green"), { status: "200", color: "green", slot: "green" });
        assert.deepStrictEqual(ask("blue"), { status: "200", color: "blue", slot: "blue" });
        // Any other value is not a slot: the live one answers, and says so.
        assert.deepStrictEqual(ask("purple"), { status: "200", color: "blue", slot: "blue" });
        fs.writeFileSync(`${host.faultDir}/green.unready`, "");
        try {
          assert.deepStrictEqual(ask("green"), { status: "503", color: "green", slot: "green" });
        } finally {
          fs.rmSync(`${host.faultDir}/green.unready`);
        }
      });

      it("the public listener keeps a caller's X-Request-Id and mints one unique per request otherwise, on new and kept-alive connections", async () => {
        const http = await import("http");
        const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
        const get = (headers: Record<string, string> = {}) =>
          new Promise<string>((resolve, reject) => {
            http
              .get({ host: "127.0.0.1", port, path: "/", agent, headers }, (res) => {
                res.resume();
                res.on("end", () => resolve(String(res.headers["x-request-id"] ?? "")));
              })
              .on("error", reject);
          });
        assert.strictEqual(await get({ "X-Request-Id": "caller-123" }), "caller-123");
        const ids = await Promise.all(Array.from({ length: 200 }, () => get()));
        agent.destroy();
        assert.ok(
          ids.every((id) => id.length >= 8),
          ids.slice(0, 3).join(" "),
        );
        assert.strictEqual(new Set(ids).size, 200, "every minted id differs");
      });

      it("a switch runs no curl: the gate and the verify are bash's own requests (a curl on PATH that fails is never run)", () => {
        const bin = fs.mkdtempSync(path.join(os.tmpdir(), "bg-nocurl-"));
        try {
          fs.writeFileSync(path.join(bin, "curl"), `#!/bin/sh\necho "$*" >> ${bin}/calls\nexit 7\n`, { mode: 0o755 });
          const r = host.tool("switch.sh", {
            ...SWITCH_TEST_VALUES,
            PATH: `${bin}:${process.env.PATH}`,
            TARGET: "green",
            HEALTH_PATH: "/health/ready",
            CHECK_PORT: String(port + 2),
          });
          assert.strictEqual(r.status, 0, r.stderr);
          assert.match(r.stdout, /through \w+: X-Bluegreen-Color: green\n$/);
          const calls = path.join(bin, "calls");
          assert.ok(!fs.existsSync(calls), `curl was run: ${fs.existsSync(calls) && fs.readFileSync(calls, "utf8")}`);
          assert.strictEqual(host.servedColor(), "green");
          // The gate still refuses an unready target, through the router.
          fs.writeFileSync(`${host.faultDir}/blue.unready`, "");
          const refused = host.tool("switch.sh", {
            ...SWITCH_TEST_VALUES,
            PATH: `${bin}:${process.env.PATH}`,
            TARGET: "blue",
            HEALTH_PATH: "/health/ready",
            CHECK_PORT: String(port + 2),
          });
          assert.strictEqual(refused.status, 1, refused.stdout);
          assert.match(refused.stderr, /^bluegreen: error: refusing to switch to blue: it is not ready/);
          assert.strictEqual(host.servedColor(), "green");
        } finally {
          fs.rmSync(`${host.faultDir}/blue.unready`, { force: true });
          fs.rmSync(bin, { recursive: true, force: true });
        }
      });

      it("with a router config that ignores X-Bluegreen-Slot (an older bluegreen's), the gate asks the slot itself", () => {
        const file = host.at(
          router === "nginx" ? "/etc/nginx/bluegreen/bluegreen.conf" : "/etc/haproxy/bluegreen/50-bluegreen.cfg",
        );
        const current = fs.readFileSync(file, "utf8");
        const older =
          router === "nginx"
            ? current
                .replace(
                  /^ {4}# The switch's readiness gate asks[^\n]*\n {4}if \(\$http_x_bluegreen_slot[^\n]*\n[^\n]*\n {4}\}\n/m,
                  "",
                )
                .replace(/^ {8}(proxy_hide_header|add_header) X-Bluegreen-Slot[^\n]*\n/gm, "")
            : current.replace(
                /^ {4}(http-request set-var\(txn\.bluegreen_slot\)|use_backend %\[var\(txn\.bluegreen_slot|http-after-response set-header X-Bluegreen-Slot)[^\n]*\n/gm,
                "",
              );
        assert.notStrictEqual(older, current);
        fs.writeFileSync(file, older);
        try {
          assert.strictEqual(host.lib("router_test && router_reload").status, 0);
          for (let i = 0; i < 100 && ask().slot !== "none"; i++) sleepSync(50);
          assert.deepStrictEqual(ask("blue"), { status: "200", color: host.servedColor(), slot: "none" });
          const idle = host.servedColor() === "green" ? "blue" : "green";
          // The live slot answers the named request, and it is ready: only asking the idle slot itself finds it is not.
          fs.writeFileSync(`${host.faultDir}/${idle}.unready`, "");
          const refused = host.switchTo(idle);
          assert.strictEqual(refused.status, 1, refused.stdout);
          assert.match(refused.stderr, new RegExp(`^bluegreen: error: refusing to switch to ${idle}: it is not ready`));
          fs.rmSync(`${host.faultDir}/${idle}.unready`);
          assert.strictEqual(host.switchTo(idle).status, 0);
          assert.strictEqual(host.servedColor(), idle);
        } finally {
          fs.rmSync(`${host.faultDir}/blue.unready`, { force: true });
          fs.rmSync(`${host.faultDir}/green.unready`, { force: true });
          fs.writeFileSync(file, current);
          assert.strictEqual(host.lib("router_test && router_reload").status, 0);
        }
      });
    });

    describe("a switch during maintenance: its watch runs when maintenance goes off", () => {
      const port = (router === "nginx" ? 19040 : 19080) as number;
      let host: Sandbox;
      const audit = () => fs.readFileSync(host.at("/var/log/bluegreen/audit.log"), "utf8");
      const maintenance = (STATE: string) => host.tool("maintenance.sh", { STATE }, "<h1>Down for maintenance</h1>\n");
      before(async () => {
        host = new Sandbox(onPorts(router, port));
        assert.strictEqual(host.configureAndStart().status, 0);
        await host.startSlot("blue", "v1");
        await host.startSlot("green", "v2");
        assert.strictEqual(host.switchTo("blue").status, 0);
      });
      after(() => host?.stop());

      it("a slot answering 500 goes live during maintenance: the switch says it is not watched yet, and turning maintenance off watches it and rolls back", async () => {
        assert.strictEqual(maintenance("on").status, 0);
        fs.writeFileSync(`${host.faultDir}/green.error500`, "");
        try {
          const r = host.switchTo("green", { WATCH_SECONDS: "3" });
          assert.strictEqual(r.status, 0, r.stderr);
          assert.match(
            r.stdout,
            /^live: green v2 \(was blue\); switched in \d+ ms, .*; not watched yet: maintenance is on, so the public reaches no slot; the 3 s watch of green runs when maintenance is turned off\n$/,
          );
          assert.match(audit(), /Z switch from=blue to=green version=v2 watch=deferred result=ok by=\w+\n$/);
          assert.match(
            fs.readFileSync(host.at("/var/lib/bluegreen/watch.pending"), "utf8"),
            /^to=green\nfrom=blue\nversion=v2\nseconds=3\n/,
          );
          const load = wrk(`http://127.0.0.1:${port}/`, 6, 8);
          await sleep(300);
          const off = maintenance("off");
          await load;
          assert.strictEqual(off.status, 1, off.stdout);
          assert.match(
            off.stdout,
            /^maintenance off: public traffic goes to green again\nwatch: maintenance is off, so the public reaches green \(v2, live since \S+\) now: watching it for 3 s\n$/,
          );
          assert.match(
            off.stderr,
            /^bluegreen: error: switch to green \(made during maintenance, at \S+\) rolled back once maintenance went off: (\d+) of (\d+) responses since the switch were 5xx, \d+ ms after it \(limit: 5% and at least 5\)\. Traffic is back on blue \(v1\)\.\n/,
          );
          assert.strictEqual(host.servedColor(), "blue");
          assert.strictEqual(fs.readFileSync(host.at("/var/lib/bluegreen/active"), "utf8"), "blue\n");
          assert.ok(!fs.existsSync(host.at("/var/lib/bluegreen/watch.pending")));
          assert.match(
            audit(),
            /Z rollback from=green to=blue errors=\d+ responses=\d+ deferred=yes result=rolled-back by=\w+\n$/,
          );
        } finally {
          fs.rmSync(`${host.faultDir}/green.error500`);
        }
      });

      it("a healthy slot switched to during maintenance passes the watch when maintenance goes off, and the audit says what was watched and when", async () => {
        assert.strictEqual(maintenance("on").status, 0);
        assert.strictEqual(host.switchTo("green", { WATCH_SECONDS: "2" }).status, 0);
        const load = wrk(`http://127.0.0.1:${port}/`, 5, 8);
        await sleep(300);
        const off = maintenance("off");
        await load;
        assert.strictEqual(off.status, 0, off.stderr);
        assert.match(
          off.stdout,
          /\nwatch: green \(v2\) passed the watch deferred by maintenance; watched 2 s: 0 of [1-9]\d* responses 5xx\n$/,
        );
        assert.match(
          audit(),
          /Z switch from=blue to=green version=v2 watch=deferred result=ok by=\w+\n(.*\n)*.*Z watch to=green version=v2 deferred=yes errors=0 responses=[1-9]\d* result=ok by=\w+\n$/,
        );
        assert.strictEqual(host.servedColor(), "green");
      });

      it("with no public traffic when maintenance goes off, the deferred watch says it saw no evidence, in its output and the audit line", () => {
        assert.strictEqual(maintenance("on").status, 0);
        assert.strictEqual(host.switchTo("blue", { WATCH_SECONDS: "1" }).status, 0);
        const off = maintenance("off");
        assert.strictEqual(off.status, 0, off.stderr);
        assert.match(
          off.stdout,
          /\nwatch: blue \(v1\) passed the watch deferred by maintenance; watched 1 s: no public request reached blue, so the watch saw no evidence either way\n$/,
        );
        assert.match(
          audit(),
          /Z watch to=blue version=v1 deferred=yes errors=0 responses=0 watch=no-traffic result=ok by=\w+\n$/,
        );
      });

      it("a switch with no public traffic says so: in its output and in its audit line", () => {
        const r = host.switchTo("green", { WATCH_SECONDS: "1" });
        assert.strictEqual(r.status, 0, r.stderr);
        assert.match(
          r.stdout,
          /; watched 1 s: no public request reached green, so the watch saw no evidence either way\n$/,
        );
        assert.match(audit(), /Z switch from=blue to=green version=v2 watch=no-traffic result=ok by=\w+\n$/);
      });
    });

    describe("a full disk (the state and the audit log on small filesystems of their own)", () => {
      const port = (router === "nginx" ? 19050 : 19090) as number;
      let host: Sandbox;
      let state: string;
      let logs: string;
      const audit = () => fs.readFileSync(`${logs}/audit.log`, "utf8");
      const fill = (dir: string) => run("dd", ["if=/dev/zero", `of=${dir}/filler`, "bs=64k"]);
      const unfill = () => [state, logs].forEach((d) => fs.rmSync(`${d}/filler`, { force: true }));
      const mount = (dir: string, size: string) => {
        const keep = fs.mkdtempSync(path.join(os.tmpdir(), "bg-keep-"));
        run("cp", ["-a", `${dir}/.`, keep]);
        const m = run("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]);
        assert.strictEqual(m.status, 0, `mounting a tmpfs needs root: ${m.stderr}`);
        run("cp", ["-a", `${keep}/.`, dir]);
        fs.rmSync(keep, { recursive: true, force: true });
      };
      before(async () => {
        host = new Sandbox(onPorts(router, port));
        state = host.at("/var/lib/bluegreen");
        logs = host.at("/var/log/bluegreen");
        fs.mkdirSync(logs, { recursive: true });
        mount(state, "8m");
        mount(logs, "256k");
        const cfg = host.configureAndStart();
        assert.strictEqual(cfg.status, 0, cfg.stderr);
        await host.startSlot("blue", "v1");
        await host.startSlot("green", "v2");
        assert.strictEqual(host.switchTo("blue").status, 0);
      });
      after(() => {
        for (const d of [state, logs]) if (d) run("umount", [d]);
        host?.stop();
      });
      afterEach(unfill);

      const consistent = (color: string) => {
        assert.strictEqual(host.liveLink(), `/var/lib/bluegreen/colors/${color}`);
        assert.strictEqual(fs.readFileSync(`${state}/active`, "utf8"), `${color}\n`);
        assert.strictEqual(host.servedColor(), color);
        for (const left of ["switch.intent", "switch.intent.new", "active.new", "haproxy.map.new"])
          assert.ok(!fs.existsSync(`${state}/${left}`), `${left} was left behind`);
      };

      it("the state filesystem is full: the switch refuses before anything moves, naming the filesystem and the space it needs, and audits it", () => {
        fill(state);
        const r = host.switchTo("green");
        assert.strictEqual(r.status, 1, r.stdout);
        assert.match(
          r.stderr,
          /^bluegreen: error: the filesystem of \S+\/var\/lib\/bluegreen \(mounted on \S+\/var\/lib\/bluegreen\) has \d+ KiB free; a switch needs 1024 KiB there to record its intent, the live colour and the audit line\. Nothing moved: traffic stays on blue\. Free space there \(journalctl --vacuum-size=100M, apt-get clean, fewer releases kept: pulumi config set keepReleases 2\), then run pulumi up again\.\n$/,
        );
        consistent("blue");
        assert.match(audit(), /Z switch to=green result=refused by=\w+\n$/);
      });

      it("both fill up during the watch and the new slot breaches it: traffic goes back (the reserve is freed for it), and the error says the audit line could not be written", async () => {
        try {
          const load = wrk(`http://127.0.0.1:${port}/`, 8, 8);
          await sleep(300);
          const { spawn } = await import("child_process");
          const c = spawn(host.at("/usr/local/lib/bluegreen/switch.sh"), [], {
            env: {
              PATH: process.env.PATH,
              ...SWITCH_TEST_VALUES,
              TARGET: "green",
              HEALTH_PATH: "/health/ready",
              CHECK_PORT: String(port + 2),
              WATCH_SECONDS: "6",
            },
          });
          let err = "";
          c.stderr.on("data", (d) => (err += d));
          const code = new Promise<number | null>((r) => c.on("close", r));
          // Once the link has moved; a new audit log file needs a page of its own, which the full disk lacks.
          for (
            let i = 0;
            i < 100 && !(fs.existsSync(`${state}/switch.intent`) && host.liveLink().endsWith("green"));
            i++
          )
            await sleep(20);
          await sleep(100);
          fs.rmSync(`${logs}/audit.log`);
          fill(state);
          fill(logs);
          fs.writeFileSync(`${host.faultDir}/green.error500`, "");
          assert.strictEqual(await code, 1, err);
          await load;
          assert.match(
            err,
            /bluegreen: the state filesystem is full \(the filesystem of \S+ \(mounted on \S+\) has 0 KiB free\): freeing bluegreen's 1 MiB reserve to put traffic back\n/,
          );
          assert.match(
            err,
            /bluegreen: error: switch to green rolled back: \d+ of \d+ responses since the switch were 5xx, [\s\S]*\nNext: fix the app [^\n]*\n\(This could not be written to the audit log \S+\/var\/log\/bluegreen\/audit\.log: the filesystem of \S+\/var\/log\/bluegreen \(mounted on \S+\/var\/log\/bluegreen\) has 0 KiB free\.\)\n$/,
          );
          consistent("blue");
        } finally {
          fs.rmSync(`${host.faultDir}/green.error500`, { force: true });
        }
      });

      it("once there is space again, the next switch works and takes its reserve back", () => {
        const r = host.switchTo("green", { WATCH_SECONDS: "0" });
        assert.strictEqual(r.status, 0, r.stderr);
        consistent("green");
        assert.strictEqual(fs.statSync(`${state}/.space-reserve`).size, 1048576);
      });
    });

    // Releases do not involve the router: once.
    (router === "nginx" ? describe : () => undefined)("releases", () => {
      let host: Sandbox;
      before(() => {
        host = new Sandbox({
          router,
          mode: "socket",
          httpPort: 18160 + base,
          previewPort: 18161 + base,
          checkPort: 18162 + base,
        });
      });
      after(() => host?.stop());

      /** ensure_release from lib.sh, as deploy-slot.sh calls it. */
      const store = (version: string, bytes = `binary ${version}\n`, sha = sha256(bytes)) => {
        const file = host.at(`/var/tmp/bluegreen-upload-${version}`);
        fs.mkdirSync(host.at("/var/tmp"), { recursive: true });
        fs.writeFileSync(file, bytes);
        return host.lib(`ensure_release ${version} ${sha} ${file} ''`);
      };
      const stored = () =>
        fs
          .readdirSync(host.at("/opt/bluegreen/releases"))
          .filter((d) => !d.startsWith("."))
          .sort();

      it("prune keeps the newest KEEP, every version configured in this run, and what a slot runs; and stale incoming dirs go", async () => {
        for (const v of ["v1", "v2", "v3", "v4"]) {
          assert.strictEqual(store(v).status, 0);
          await sleep(20);
        }
        // blue runs v2; this run configures green for v1 (an old release it is about to use) and blue for v4.
        fs.mkdirSync(host.at("/var/lib/bluegreen/slots/blue"), { recursive: true });
        fs.symlinkSync(host.at("/opt/bluegreen/releases/v2"), host.at("/var/lib/bluegreen/slots/blue/current"));
        fs.mkdirSync(host.at("/opt/bluegreen/releases/.incoming.abc123"));
        const r = host.tool("prune.sh", { KEEP: "1", PROTECT: "v1,v4" });
        assert.strictEqual(r.status, 0, r.stderr);
        assert.strictEqual(
          r.stdout,
          "releases: kept the 1 newest and those in use (v1 v4 v2 ); removed: v3; stale incoming: .incoming.abc123 \n",
        );
        assert.deepStrictEqual(stored(), ["v1", "v2", "v4"]);
        assert.ok(!fs.existsSync(host.at("/opt/bluegreen/releases/.incoming.abc123")));
        assert.ok(
          !fs.existsSync(host.at("/var/tmp/bluegreen-upload-v3".replace("v3", sha256("binary v3\n").slice(0, 16)))),
        );
        assert.match(
          fs.readFileSync(host.at("/var/log/bluegreen/audit.log"), "utf8"),
          /Z release-prune removed=v3 keep=1 result=ok by=\w+\n$/,
        );
      });

      it("a release that went missing is stored again from its upload", () => {
        fs.rmSync(host.at("/opt/bluegreen/releases/v4"), { recursive: true });
        const r = store("v4");
        assert.strictEqual(r.status, 0, r.stderr);
        assert.ok(stored().includes("v4"));
      });

      it("refuses new bytes under a stored version", () => {
        const r = store("v4", "other bytes\n", "0".repeat(64));
        assert.strictEqual(r.status, 1);
        assert.match(
          r.stderr,
          /^bluegreen: error: release v4 is already on the host with sha256 [0-9a-f]{64}, but the artifact is now 0{64}\.\nVersions are immutable here: give the new build a new version string\. \(With the artifact "build": the source changed since v4 was first built, or it was built on another machine from other source; see docs\/your-app\.md, "Versions and builds"\.\)\n$/,
        );
      });

      it("refuses a file whose sha256 does not match, and leaves no incoming dir", () => {
        const r = store("v9", "tampered\n", "1".repeat(64));
        assert.strictEqual(r.status, 1);
        assert.match(r.stderr, /release v9 failed verification: expected sha256 1{64}, got [0-9a-f]{64}/);
        assert.ok(!stored().includes("v9"));
        assert.deepStrictEqual(
          fs.readdirSync(host.at("/opt/bluegreen/releases")).filter((d) => d.startsWith(".")),
          [],
        );
      });
    });

    describe("mixed link modes: a socket slot and a tcp slot", () => {
      let host: Sandbox;
      before(async () => {
        host = new Sandbox({
          router,
          mode: "socket",
          httpPort: 18190 + base,
          previewPort: 18191 + base,
          checkPort: 18192 + base,
          ports: { blue: 18291 + base, green: 18292 + base },
        });
        const cfg = host.configureAndStart();
        assert.strictEqual(cfg.status, 0, cfg.stderr);
        await host.startSlot("blue", "v1", "socket");
        await host.startSlot("green", "v2", "tcp");
        assert.strictEqual(host.switchTo("blue").status, 0);
      });
      after(() => host?.stop());

      const masterPid = () => fs.readFileSync(host.at(`/${router}.pid`), "utf8").trim();
      /** The router's workers, once those of the config change in before() are gone (a loaded machine drains them slowly). */
      const workers = () => {
        const want = router === "nginx" ? 2 : 1;
        let w = "";
        for (let waited = 0; waited < 10_000; waited += 100) {
          w = run("pgrep", ["-P", masterPid()]).stdout.trim();
          if (w.split("\n").length <= want) break;
          run("sleep", ["0.1"]);
        }
        return w;
      };

      it(`10 switches between them under 64 keep-alive connections: 0 failed, and ${router} is never reloaded`, async () => {
        const before = workers();
        const load = wrk(`http://127.0.0.1:${18190 + base}/`, 8, 64);
        for (let i = 0; i < 10; i++) {
          await sleep(600);
          const target = i % 2 === 0 ? "green" : "blue";
          const r = host.switchTo(target);
          assert.strictEqual(r.status, 0, r.stderr);
          for (let k = 0; k < 5; k++) assert.strictEqual(host.servedColor(), target);
          assert.strictEqual(host.previewColor(), target === "blue" ? "green" : "blue");
        }
        const w = await load;
        assert.ok(w.requests > 1000, w.raw);
        assert.strictEqual(w.socketErrors, 0, w.raw);
        assert.strictEqual(w.non2xx, 0, w.raw);
        assert.strictEqual(workers(), before, `the same ${router} workers served throughout: no reload`);
      });

      it("the idle slot changes how it listens with no reload, and the live slot is untouched", async () => {
        const before = workers();
        await host.startSlot("green", "v2", "socket");
        assert.strictEqual(host.previewColor(), "green");
        await host.startSlot("green", "v2", "tcp");
        assert.strictEqual(host.previewColor(), "green");
        assert.strictEqual(host.servedColor(), "blue");
        assert.strictEqual(workers(), before);
      });

      it(`a port change that would cut ${router} off from the live tcp slot is refused before anything changes`, () => {
        assert.strictEqual(host.switchTo("green").status, 0);
        const site = host.at(
          router === "nginx" ? "/etc/nginx/bluegreen/bluegreen.conf" : "/etc/haproxy/bluegreen/50-bluegreen.cfg",
        );
        const old = fs.readFileSync(site, "utf8");
        const r = host.routerConfig({ blue: 18291 + base, green: 18299 + base });
        assert.strictEqual(r.status, 1);
        assert.strictEqual(
          r.stderr,
          `bluegreen: error: bluegreen:greenPort is now ${18299 + base}, but green is live and listens on 127.0.0.1:${18292 + base}; ${router} would lose it. Nothing was changed.\n` +
            `Change the idle slot's port first, switch to it, then change this one:\n  pulumi config set greenPort ${18292 + base} && pulumi up\n`,
        );
        assert.strictEqual(fs.readFileSync(site, "utf8"), old);
        assert.strictEqual(host.servedColor(), "green");
        // The idle slot's port may change: its upstream is only reached through the preview listener.
        const ok = host.routerConfig({ blue: 18293 + base, green: 18292 + base });
        assert.strictEqual(ok.status, 0, ok.stderr);
        assert.strictEqual(host.servedColor(), "green");
      });
    });

    describe("crash safety", () => {
      let host: Sandbox;
      const audit = () => fs.readFileSync(host.at("/var/log/bluegreen/audit.log"), "utf8");
      const recorded = () => fs.readFileSync(host.at("/var/lib/bluegreen/active"), "utf8").trim();
      const intent = () => host.at("/var/lib/bluegreen/switch.intent");
      before(async () => {
        host = new Sandbox({
          router,
          mode: "socket",
          httpPort: 18150 + base,
          previewPort: 18151 + base,
          checkPort: 18152 + base,
        });
        assert.strictEqual(host.configureAndStart().status, 0);
        await host.startSlot("blue", "v1");
        await host.startSlot("green", "v2");
        assert.strictEqual(host.switchTo("blue").status, 0);
      });
      after(() => host?.stop());

      /** Starts a switch with a long watch and kills it with `signal` once the link has moved. */
      async function killMidSwitch(target: "blue" | "green", signal: NodeJS.Signals) {
        const { spawn } = await import("child_process");
        const c = spawn(host.at("/usr/local/lib/bluegreen/switch.sh"), [], {
          env: {
            PATH: process.env.PATH,
            ...SWITCH_TEST_VALUES,
            TARGET: target,
            HEALTH_PATH: "/health/ready",
            CHECK_PORT: String(18152 + base),
            WATCH_SECONDS: "30",
          },
          detached: true,
        });
        let err = "";
        c.stderr.on("data", (d) => (err += d));
        const closed = new Promise<number | null>((r) => c.on("close", (code) => r(code)));
        for (let i = 0; i < 100 && !(fs.existsSync(intent()) && host.liveLink().endsWith(target)); i++) await sleep(50);
        await sleep(300);
        process.kill(-c.pid!, signal);
        return { code: await closed, err };
      }

      it("SIGTERM after the link moved: the link goes back, the record and audit agree", async () => {
        const r = await killMidSwitch("green", "SIGTERM");
        assert.strictEqual(r.code, 143);
        assert.match(
          r.err,
          /the switch to green stopped before it was confirmed \(exit 143\); traffic was put back on blue/,
        );
        assert.strictEqual(host.liveLink(), "/var/lib/bluegreen/colors/blue");
        assert.strictEqual(recorded(), "blue");
        assert.ok(!fs.existsSync(intent()));
        assert.strictEqual(host.servedColor(), "blue");
        assert.match(audit(), /Z switch from=blue to=green version=v2 result=interrupted by=\w+\n$/);
      });

      it("kill -9 after the link moved, then the same switch again: it resumes and runs the full watch", async () => {
        await killMidSwitch("green", "SIGKILL");
        assert.strictEqual(host.liveLink(), "/var/lib/bluegreen/colors/green", "the killed switch left the link moved");
        assert.strictEqual(recorded(), "blue", "and the record unconfirmed");
        assert.match(
          fs.readFileSync(intent(), "utf8"),
          /^from=blue\nto=green\nmoved_ms=\d+\nwatch_base=(\d+|\d+:-?\d+:-?\d+( \d+:-?\d+:-?\d+)*)\n$/,
        );
        assert.match(
          host.tool("status.sh", {}).stdout,
          /switch: {6}INTERRUPTED blue -> green, not confirmed; the link serves green\./,
        );
        const r = host.switchTo("green", { WATCH_SECONDS: "2" });
        assert.strictEqual(r.status, 0, r.stderr);
        // Nothing loads the public listener here: the watch says it saw no evidence.
        assert.match(
          r.stdout,
          /^live: green v2 \(was blue\); .*; watched 2 s: no public request reached green, so the watch saw no evidence either way\n$/,
        );
        assert.strictEqual(recorded(), "green");
        assert.ok(!fs.existsSync(intent()));
        assert.match(
          audit(),
          /Z switch from=blue to=green version=v2 resumed=yes watch=no-traffic result=ok by=\w+\n$/,
        );
      });

      it("kill -9, then the resumed switch meets a failing slot: the watch still rolls it back", async () => {
        await killMidSwitch("blue", "SIGKILL");
        fs.writeFileSync(`${host.faultDir}/blue.error500`, "");
        try {
          const load = wrk(`http://127.0.0.1:${18150 + base}/`, 5, 8);
          await sleep(300);
          const r = host.switchTo("blue", { WATCH_SECONDS: "8" });
          await load;
          assert.strictEqual(r.status, 1, r.stdout);
          assert.match(
            r.stderr,
            /^bluegreen: error: switch to blue rolled back: \d+ of \d+ responses since the switch were 5xx/,
          );
          assert.strictEqual(host.liveLink(), "/var/lib/bluegreen/colors/green");
          assert.strictEqual(recorded(), "green");
          assert.ok(!fs.existsSync(intent()));
        } finally {
          fs.rmSync(`${host.faultDir}/blue.error500`);
        }
      });

      it("kill -9, then a switch back to the old colour undoes it", async () => {
        await killMidSwitch("blue", "SIGKILL");
        const r = host.switchTo("green");
        assert.strictEqual(r.status, 0, r.stderr);
        assert.strictEqual(r.stdout, "live: green v2 (an interrupted switch to blue was undone)\n");
        assert.strictEqual(host.liveLink(), "/var/lib/bluegreen/colors/green");
        assert.strictEqual(recorded(), "green");
        assert.ok(!fs.existsSync(intent()));
        assert.match(audit(), /Z switch from=blue to=green interrupted=undone result=ok by=\w+\n$/);
      });
    });
  });
}
