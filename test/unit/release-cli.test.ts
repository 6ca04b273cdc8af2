// npm run release / rollback against a recording fake `pulumi`: the order of
// steps, and where each failure stops. (test/e2e runs them for real on the VM.)
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ROOT } from "../support/harness";
import { run } from "../support/tools";

function stack(config: Record<string, string>, outputs: Record<string, string>, upResults: number[]) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bg-fake-pulumi-"));
  for (const [sub, values] of [
    ["config", config],
    ["outputs", outputs],
  ] as const) {
    fs.mkdirSync(path.join(dir, sub));
    for (const [k, v] of Object.entries(values)) fs.writeFileSync(path.join(dir, sub, k), `${v}\n`);
  }
  fs.writeFileSync(path.join(dir, "up-results"), upResults.map((c) => `${c}\n`).join(""));
  fs.writeFileSync(path.join(dir, "calls"), "");
  // An ssh that answers `bluegreen-status live` with the colour in FAKE_DIR/host-live, and records its argv.
  fs.writeFileSync(path.join(dir, "ssh"), '#!/bin/sh\necho "$*" > "$FAKE_DIR/ssh-args"\ncat "$FAKE_DIR/host-live"\n', {
    mode: 0o755,
  });
  const cli = (...args: string[]) =>
    run(
      "node",
      ["-r", "ts-node/register/transpile-only", path.join(ROOT, "components", "cli", "release.ts"), ...args],
      {
        env: {
          ...process.env,
          FAKE_DIR: dir,
          BLUEGREEN_PULUMI: path.join(ROOT, "test", "fixtures", "fake-pulumi-recorder"),
          BLUEGREEN_SSH: path.join(dir, "ssh"),
        },
      },
    );
  return {
    cli,
    hostServes: (c: string) => fs.writeFileSync(path.join(dir, "host-live"), `${c}\n`),
    sshArgs: () => fs.readFileSync(path.join(dir, "ssh-args"), "utf8").trim(),
    calls: () => fs.readFileSync(path.join(dir, "calls"), "utf8").trim().split("\n"),
    config: (k: string) => fs.readFileSync(path.join(dir, "config", k), "utf8").trim(),
  };
}

const LIVE_BLUE = { active: "blue", blueVersion: "v1", greenVersion: "v1" };

describe("release and rollback commands", function () {
  this.timeout(60_000);

  it("release: deploy to the idle slot, then switch, in that order", () => {
    const s = stack(LIVE_BLUE, LIVE_BLUE, [0, 0]);
    const r = s.cli("release", "v2");
    assert.strictEqual(r.status, 0, r.stderr);
    assert.deepStrictEqual(s.calls(), [
      "stack output active",
      "config get active",
      "stack output blueVersion",
      "config get greenVersion",
      "config get greenArtifact",
      "config get greenSha256",
      "config set greenVersion v2",
      "up --yes --skip-preview",
      "config set active green",
      "up --yes --skip-preview",
    ]);
    assert.strictEqual(
      r.stdout,
      "==> live: blue (v1); deploying v2 to the idle slot, green\n==> switching traffic to green (v2)\n==> released v2: green is live; blue keeps v1 running for npm run rollback\n",
    );
  });

  it("release: sets the artifact and sha256 of the idle slot when given", () => {
    const s = stack(LIVE_BLUE, LIVE_BLUE, [0, 0]);
    assert.strictEqual(
      s.cli("release", "v2", "--artifact", "https://example.com/app", "--sha256", "ab".repeat(32)).status,
      0,
    );
    assert.ok(s.calls().includes("config set greenArtifact https://example.com/app"));
    assert.ok(s.calls().includes(`config set greenSha256 ${"ab".repeat(32)}`));
  });

  it("release: a failed deploy stops before the switch, and says how to undo the config", () => {
    const s = stack(LIVE_BLUE, LIVE_BLUE, [1]);
    const r = s.cli("release", "v2");
    assert.strictEqual(r.status, 1);
    assert.ok(!s.calls().includes("config set active green"));
    assert.match(
      r.stderr,
      /==> stopped: deploying v2 to green failed \(its error is above\); blue \(v1\) is still live and untouched\.\nFix it and run this again, or put the config back:\n  pulumi config set greenVersion v1\n$/,
    );
  });

  it("release: the undo advice restores the artifact and sha256 it set too, so following it never meets 'versions are immutable'", () => {
    const s = stack({ ...LIVE_BLUE, greenArtifact: "dist/app-v1" }, LIVE_BLUE, [1]);
    const r = s.cli("release", "v2", "--artifact", "https://example.com/app-v2", "--sha256", "ab".repeat(32));
    assert.strictEqual(r.status, 1);
    assert.match(
      r.stderr,
      /put the config back:\n  pulumi config set greenVersion v1\n  pulumi config set greenArtifact dist\/app-v1\n  pulumi config rm greenSha256\n$/,
    );
  });

  it("release: a switch that failed or was rolled back: config follows the colour the host serves", () => {
    const s = stack(
      { ...LIVE_BLUE, statusCommand: "" },
      { ...LIVE_BLUE, statusCommand: "ssh root@203.0.113.10 /usr/local/sbin/bluegreen-status" },
      [0, 1],
    );
    s.hostServes("blue");
    const r = s.cli("release", "v2");
    assert.strictEqual(r.status, 1);
    assert.strictEqual(s.config("active"), "blue");
    assert.strictEqual(s.sshArgs(), "root@203.0.113.10 /usr/local/sbin/bluegreen-status live");
    assert.deepStrictEqual(s.calls().slice(-4), [
      "config set active green",
      "up --yes --skip-preview",
      "stack output statusCommand",
      "config set active blue",
    ]);
    assert.match(
      r.stderr,
      /==> stopped: switching to green failed \(its error is above\); the host still serves blue and config says active=blue again\.\n$/,
    );
  });

  it("release: a switch that finished on the host while pulumi lost the connection: config stays on the new colour", () => {
    const s = stack(
      LIVE_BLUE,
      { ...LIVE_BLUE, statusCommand: "ssh root@203.0.113.10 /usr/local/sbin/bluegreen-status" },
      [0, 1],
    );
    s.hostServes("green");
    const r = s.cli("release", "v2");
    assert.strictEqual(r.status, 1);
    assert.strictEqual(s.config("active"), "green");
    assert.match(
      r.stderr,
      /==> stopped: switching to green: pulumi up failed \(its error is above\), but the host serves green; config says active=green\. Run pulumi up to finish the switch \(its post-switch watch runs again\)\.\n$/,
    );
  });

  it("release: refuses when config and the last up disagree, before changing anything", () => {
    const s = stack({ ...LIVE_BLUE, active: "green" }, LIVE_BLUE, []);
    const r = s.cli("release", "v2");
    assert.strictEqual(r.status, 1);
    assert.strictEqual(
      r.stderr,
      "==> stopped: config says active=green but the last pulumi up left blue live; run pulumi up (or pulumi config set active blue) first\n",
    );
    assert.deepStrictEqual(s.calls(), ["stack output active", "config get active"]);
  });

  it("release: a bad version string is refused before pulumi runs", () => {
    const s = stack(LIVE_BLUE, LIVE_BLUE, []);
    const r = s.cli("release", "v 2");
    assert.strictEqual(
      r.stderr,
      `==> stopped: "v 2" is not a valid version: use 1-64 letters, digits, '.', '_', '+' or '-'\n`,
    );
    assert.deepStrictEqual(s.calls(), [""]);
  });

  it("rollback: switches to the other slot without a version string", () => {
    const s = stack(
      { active: "green", blueVersion: "v1", greenVersion: "v2" },
      { active: "green", blueVersion: "v1", greenVersion: "v2" },
      [0],
    );
    const r = s.cli("rollback");
    assert.strictEqual(r.status, 0, r.stderr);
    assert.strictEqual(
      r.stdout,
      "==> rolling back: green -> blue (v1, still running)\n==> rolled back: blue (v1) is live\n",
    );
    assert.strictEqual(s.config("active"), "blue");
  });
});
