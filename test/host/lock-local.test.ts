// The app lock between host steps (lib.sh take_lock), on this machine: a step waits as long as
// the holder said it may hold the lock (a switch's watch and hooks, up to an hour), not a fixed
// 300 s, and a holder that outlives its own bound is named. Needs nginx (the sandbox), flock.
import * as assert from "assert";
import { spawn } from "child_process";
import { onPorts, Sandbox } from "../support/sandbox";

describe("the app lock: waits derived from what the holder may need (local sandbox)", function () {
  this.timeout(60_000);
  let host: Sandbox;
  before(() => {
    host = new Sandbox(onPorts("nginx", 19095));
  });
  after(() => host?.stop());

  /** Holds the app lock as a switch would, declaring HOLD seconds, for SLEEP seconds. */
  function holder(hold: number, seconds: number): Promise<number | null> {
    const lib = host.at(`${host.L.toolsDir}/lib.sh`);
    const child = spawn(
      "bash",
      ["-c", `. ${lib}; take_lock "$BG_LOCK" 1 ${hold} "a switch to green"; echo held; sleep ${seconds}`],
      {
        env: { PATH: process.env.PATH },
      },
    );
    return new Promise((resolve) => {
      child.stdout.on("data", (d) => String(d).includes("held") && resolve(child.pid ?? null));
    });
  }

  it("a step whose own wait is 1 s waits for a switch that said it may hold the lock for 20 s, and gets it when the switch ends", async () => {
    await holder(20, 4);
    const start = Date.now();
    const r = host.lib('take_lock "$BG_LOCK" 1 && echo got it');
    assert.strictEqual(r.status, 0, r.stderr);
    assert.strictEqual(r.stdout, "got it\n");
    assert.ok(Date.now() - start >= 3000, `waited ${Date.now() - start} ms for the holder`);
  });

  it("a holder that outlives what it said it may need is named, with how to find it", async () => {
    const pid = await holder(1, 20);
    const r = host.lib('BG_LOCK_MARGIN=1 take_lock "$BG_LOCK" 1');
    assert.strictEqual(r.status, 1, r.stdout);
    const lock = host.at("/var/lib/bluegreen/lock");
    assert.match(
      r.stderr,
      new RegExp(
        `^bluegreen: error: another bluegreen operation \\(a switch to green, pid ${pid}, since \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\\) has held ${lock} for over \\d+ s, longer than it said it may; look for it with: fuser -v ${lock}\\n$`,
      ),
    );
    if (pid) process.kill(pid, "SIGKILL");
  });
});
