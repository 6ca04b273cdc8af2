// Draining one of several hosts (drain.sh) behind a stand-in load balancer (test/support/balancer.ts,
// a real HAProxy set up as the Hetzner balancer behaves), with two sandbox hosts, each with its own
// real router (nginx, then HAProxy) and demo slots. Under load through the balancer: the drained
// host's health check fails on purpose, the balancer takes it out, drain.sh ends only once its
// public requests stopped, and nothing fails, also while the drained host's live slot restarts.
import * as assert from "assert";
import * as fs from "fs";
import { BALANCER_HEALTH_PATH } from "../../components/router/nginx";
import { StandInBalancer } from "../support/balancer";
import { onPorts, Sandbox, wrk } from "../support/sandbox";
import { run } from "../support/tools";

const HEALTH = { interval: 1, timeout: 1, retries: 2 } as const;
/** drain.sh's inputs as the Drain component derives them from the balancer's health check. */
const DRAIN = { EJECT_SECONDS: "3", QUIET_SECONDS: "2", WAIT_SECONDS: "20" };

for (const router of ["nginx", "haproxy"] as const) {
  const base = router === "nginx" ? 19400 : 19450;
  describe(`draining one of two hosts behind a stand-in balancer (${router}, local sandboxes)`, function () {
    this.timeout(180_000);
    const hosts: Sandbox[] = [];
    let lb: StandInBalancer;
    const lbUrl = `http://127.0.0.1:${base + 40}/`;

    before(async () => {
      for (const i of [0, 1]) {
        const h = new Sandbox({ ...onPorts(router, base + 10 * i), balancer: { healthPath: "/health/ready" } });
        hosts.push(h);
        const cfg = h.configureAndStart();
        assert.strictEqual(cfg.status, 0, cfg.stderr);
        await h.startSlot("blue", "v1");
        await h.startSlot("green", "v2");
        assert.strictEqual(h.switchTo("blue").status, 0);
      }
      lb = new StandInBalancer({
        listen: `127.0.0.1:${base + 40}`,
        targets: hosts.map((h, i) => ({ name: `web${i + 1}`, address: `127.0.0.1:${h.opts.httpPort}` })),
        health: HEALTH,
      });
      lb.start();
      await lb.waitFor({ web1: "UP", web2: "UP" }, 20);
    });
    after(() => {
      lb?.stop();
      for (const h of hosts) h.stop();
    });

    const drain = (h: Sandbox, state: "on" | "off") =>
      h.tool("drain.sh", { STATE: state, CHECK_PORT: String(h.opts.checkPort), ...DRAIN });
    const health = (h: Sandbox, port = h.opts.httpPort) =>
      run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", `http://127.0.0.1:${port}${BALANCER_HEALTH_PATH}`])
        .stdout;

    it("the health path answers the live slot's readiness, on the public and the check listener", () => {
      for (const h of hosts) {
        assert.strictEqual(health(h), "200");
        assert.strictEqual(health(h, h.opts.checkPort), "200");
      }
      fs.writeFileSync(`${hosts[0].faultDir}/blue.unready`, "");
      try {
        assert.strictEqual(health(hosts[0]), "503", "the live slot is not ready: the balancer must see it");
      } finally {
        fs.rmSync(`${hosts[0].faultDir}/blue.unready`);
      }
    });

    it("drain on under load: out of the balancer, ended only once requests stopped; then maintenance and back, 0 failed", async () => {
      const load = wrk(lbUrl, 22, 16);
      await new Promise((r) => setTimeout(r, 1500));
      const started = Date.now();
      const on = drain(hosts[1], "on");
      const took = Date.now() - started;
      assert.strictEqual(on.status, 0, on.stderr);
      assert.match(
        on.stdout,
        /^drained: the balancer's health check gets 503, and no public request came for 2 s \(\d+ since the drain began\); blue keeps running\n$/,
      );
      assert.ok(took >= 3000, `it waited the balancer's time to drop the host (${took} ms)`);
      assert.strictEqual(lb.states().web2, "DOWN");
      assert.strictEqual(health(hosts[1]), "503");
      // Maintenance on the drained host: its live slot restarts; nobody is sent there.
      await hosts[1].startSlot("blue", "v1");
      const back = drain(hosts[1], "off");
      assert.strictEqual(back.status, 0, back.stderr);
      assert.match(back.stdout, /^not drained: the balancer's health check gets HTTP 200 from blue;/);
      await lb.waitFor({ web2: "UP" }, 10);
      const w = await load;
      assert.ok(w.requests > 1000, w.raw);
      assert.strictEqual(w.socketErrors, 0, w.raw);
      assert.strictEqual(w.non2xx, 0, w.raw);
      assert.match(
        fs.readFileSync(hosts[1].at("/var/log/bluegreen/audit.log"), "utf8"),
        / drain state=on live=blue result=ok .*\n.* drain state=off live=blue result=ok /,
      );
    });

    it("drain on while the balancer still sends (its check does not ask the health path): fails with why, after the bound", () => {
      // Public requests straight to the host, as a balancer that ignores the health path would send.
      const direct = wrk(`http://127.0.0.1:${hosts[0].opts.httpPort}/`, 8, 2);
      const r = hosts[0].tool("drain.sh", {
        STATE: "on",
        CHECK_PORT: String(hosts[0].opts.checkPort),
        EJECT_SECONDS: "1",
        QUIET_SECONDS: "2",
        WAIT_SECONDS: "4",
      });
      assert.strictEqual(r.status, 1);
      assert.match(
        r.stderr,
        /^bluegreen: error: this host is drained \(its health check answers 503\), but public requests still arrived 0 s ago, after 4 s; is the balancer's health check on \/\.bluegreen\/health of each host \(docs\/hosts\.md\)\? Nothing else was run here\.\n$/,
      );
      assert.strictEqual(drain(hosts[0], "off").status, 0);
      return direct;
    });
  });
}
