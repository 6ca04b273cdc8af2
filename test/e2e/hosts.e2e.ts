// Several e2e hosts at once (./container.ts): what the multi-host scenarios build on. Three
// containers from the one image boot in parallel, each an SSH host on its own veth with its own
// address, client key and host key, and all serve at once; a test process killed with SIGKILL
// leaves no container, veth or mount behind, and the next boot starts clean.
import * as assert from "assert";
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { startWrk } from "../support/sandbox";
import { run } from "../support/tools";
import { cleanStrays, Container, HOSTS_DIR } from "./container";
import { sshRun } from "./replay";
import { ensureImage, Image } from "./vm";

const linkExists = (link: string) => run("ip", ["link", "show", link]).status === 0;
/** Mounts under the hosts' directory, as this machine sees them: the overlays must never show here. */
const mountsOfHosts = () =>
  run("findmnt", ["-rn", "-o", "TARGET"])
    .stdout.split("\n")
    .filter((t) => t.startsWith(HOSTS_DIR));
const processAlive = (pid: number) => fs.existsSync(`/proc/${pid}`);

async function until(what: string, seconds: number, check: () => boolean): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${seconds} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("e2e hosts: several nspawn containers at once", function () {
  this.timeout(5 * 60_000);
  let image: Image;
  before(() => {
    image = ensureImage();
  });

  it("3 hosts boot in parallel, each on its own veth, address, SSH key and host key; all serve at once; shutdown leaves nothing", async () => {
    const started = Date.now();
    const hosts = await Container.bootMany(image, 3);
    const bootSeconds = (Date.now() - started) / 1000;
    try {
      console.log(`      3 containers booted and answering SSH in ${bootSeconds.toFixed(1)} s (in parallel)`);
      assert.strictEqual(new Set(hosts.map((h) => h.address)).size, 3, "three addresses");
      assert.strictEqual(new Set(hosts.map((h) => h.link)).size, 3, "three veths");
      assert.strictEqual(new Set(hosts.map((h) => h.connection.hostKey)).size, 3, "three host keys");
      assert.strictEqual(new Set(hosts.map((h) => h.connection.privateKey)).size, 3, "three client keys");
      for (const h of hosts) {
        // This machine's end of the pair, and the container's: one /30 each.
        const here = run("ip", ["-4", "-br", "addr", "show", "dev", h.link]).stdout;
        assert.match(here, new RegExp(`\\bUP\\b.*\\b${h.address.replace(/\.2$/, ".1").replace(/\./g, "\\.")}/30\\b`));
        assert.strictEqual(
          (
            await h.sh("hostname; ip -4 -br addr show dev host0 | awk '{print $3}'; systemctl is-system-running")
          ).trim(),
          `${h.machine}\n${h.address}/30\nrunning`,
        );
        // Its only route is its own /30: it reaches this machine and nothing else.
        assert.strictEqual(
          (await h.sh("ip -4 route show | awk '{print $1, $2, $3}'")).trim(),
          `${h.address.replace(/\.2$/, ".0")}/30 dev host0`,
        );
        // Its own host key is the image's no longer: the sshd it runs offers this host's key only.
        assert.strictEqual(
          (await h.sh("cat /etc/ssh/ssh_host_ed25519_key.pub")).split(/\s+/).slice(0, 2).join(" "),
          h.connection.hostKey,
        );
        assert.notStrictEqual(h.connection.hostKey, image.hostKey);
      }
      // Pinning holds: another host's key is refused, and another host's client key does not log in.
      const [a, b] = hosts;
      await assert.rejects(
        sshRun({ ...a.connection, hostKey: b.connection.hostKey, dialErrorLimit: 1 }, "true"),
        /could not connect/,
      );
      await assert.rejects(
        sshRun({ ...a.connection, privateKey: b.connection.privateKey, dialErrorLimit: 1 }, "true"),
        /could not connect/,
      );
      await assert.rejects(
        sshRun({ ...a.connection, privateKey: image.privateKey, dialErrorLimit: 1 }, "true"),
        /could not connect/,
        "the image's own key no longer logs in",
      );

      // Serving at once: each its own page, under load on all three together.
      await Promise.all(hosts.map((h) => h.sh(`echo 'served by ${h.machine}' > /var/www/html/index.html`)));
      // Each serves its page before the load too: a CI run saw 14 of one host's 16 first connections
      // stall past wrk's 2 s while the other two went on, right after the boot.
      for (const h of hosts) {
        assert.strictEqual(
          run("curl", ["-sS", "--max-time", "5", `http://${h.httpAddress}/`]).stdout,
          `served by ${h.machine}\n`,
        );
      }
      const loads = hosts.map((h) => startWrk(`http://${h.httpAddress}/`, { connections: 16, seconds: 3 }));
      const results = await Promise.all(loads.map((l) => l.done));
      for (const [i, h] of hosts.entries()) {
        const r = results[i];
        assert.ok(r.requests > 100, `${h.machine}: ${r.raw}`);
        assert.strictEqual(r.non2xx + r.socketErrors, 0, `${h.machine}: ${r.raw}`);
        assert.strictEqual(
          run("curl", ["-sS", "--max-time", "5", `http://${h.httpAddress}/`]).stdout,
          `served by ${h.machine}\n`,
        );
      }
      console.log(
        `      3 hosts under wrk at once (16 conns, 3 s each): ${results.map((r) => `${r.requests} requests`).join(", ")}, 0 errors`,
      );
      assert.deepStrictEqual(mountsOfHosts(), [], "the containers' overlays are not mounted on this machine");
    } finally {
      await Promise.all(hosts.map((h) => h.shutdown()));
    }
    for (const h of hosts) {
      assert.ok(!linkExists(h.link), `${h.link} is gone`);
      assert.ok(!fs.existsSync(path.join(HOSTS_DIR, String(h.net))), `host ${h.net}'s directory is gone`);
    }
    assert.deepStrictEqual(mountsOfHosts(), []);
  });

  it("a test process killed with SIGKILL leaves no container, veth or mount: its watchdog stops the container, and the next boot removes whatever is left", async () => {
    // A test process that boots two hosts, says where, and waits to be killed.
    const child = spawn(
      "node",
      [
        "-r",
        "ts-node/register/transpile-only",
        "-e",
        `const { Container } = require("./test/e2e/container");
         const { ensureImage } = require("./test/e2e/vm");
         Container.bootMany(ensureImage(), 2).then((hs) => {
           const fs = require("fs");
           console.log(JSON.stringify(hs.map((h) => ({ net: h.net, link: h.link, leader: Number(fs.readFileSync(require("path").join("${HOSTS_DIR}", String(h.net), "leader"), "utf8").split(" ")[0]), supervisor: Number(fs.readFileSync(require("path").join("${HOSTS_DIR}", String(h.net), "supervisor"), "utf8").split(" ")[0]) }))));
           setInterval(() => undefined, 1000);
         }, (e) => { console.error(e); process.exit(1); });`,
      ],
      { cwd: path.join(__dirname, "..", ".."), stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    try {
      await until("the child's hosts", 120, () => out.includes("]") || child.exitCode !== null);
      const hosts = JSON.parse(out.trim().split("\n").pop()!) as {
        net: number;
        link: string;
        leader: number;
        supervisor: number;
      }[];
      const [watched, orphaned] = hosts;
      for (const h of hosts) assert.ok(linkExists(h.link) && processAlive(h.leader), `${h.link} is up`);
      // The second host's supervisor and watchdog die too (kill -9 of its process group): its
      // nspawn and container are left running with no one to stop them but the next boot.
      process.kill(-orphaned.supervisor, "SIGKILL");
      const reaped = new Promise((r) => child.once("exit", r));
      child.kill("SIGKILL");
      await reaped;
      await until(
        `${watched.link} gone (the watchdog)`,
        20,
        () => !linkExists(watched.link) && !processAlive(watched.leader),
      );
      await until("the orphaned supervisor gone", 10, () => !processAlive(orphaned.supervisor));
      // The next boot's first step: every host of a dead test process is stopped and removed.
      cleanStrays();
      await until(
        `${orphaned.link} gone (cleanStrays)`,
        10,
        () => !linkExists(orphaned.link) && !processAlive(orphaned.leader),
      );
      for (const h of hosts)
        assert.ok(!fs.existsSync(path.join(HOSTS_DIR, String(h.net))), `host ${h.net}'s directory is gone`);
      assert.deepStrictEqual(mountsOfHosts(), []);
    } finally {
      // Whatever failed, the child does not outlive the test (its watchdogs then stop its hosts).
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
    // And a host boots on a clean machine again.
    const again = await Container.boot(image);
    try {
      assert.strictEqual((await again.sh("systemctl is-system-running")).trim(), "running");
    } finally {
      await again.shutdown();
    }
  });
});
