// npm run release / rollback against a recording fake `pulumi`: the order of
// steps, and where each failure stops. (test/e2e runs them for real on the VM.)
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ROOT } from "./harness";
import { run } from "./tools";

function stack(config: Record<string, string>, outputs: Record<string, string>, upResults: number[]) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bg-fake-pulumi-"));
    for (const [sub, values] of [["config", config], ["outputs", outputs]] as const) {
        fs.mkdirSync(path.join(dir, sub));
        for (const [k, v] of Object.entries(values)) fs.writeFileSync(path.join(dir, sub, k), `${v}\n`);
    }
    fs.writeFileSync(path.join(dir, "up-results"), upResults.map((c) => `${c}\n`).join(""));
    fs.writeFileSync(path.join(dir, "calls"), "");
    const cli = (...args: string[]) =>
        run("node", ["-r", "ts-node/register/transpile-only", path.join(ROOT, "components", "cli", "release.ts"), ...args], {
            env: { ...process.env, FAKE_DIR: dir, BLUEGREEN_PULUMI: path.join(ROOT, "test", "fixtures", "fake-pulumi-recorder") },
        });
    return {
        cli,
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
        assert.strictEqual(s.cli("release", "v2", "--artifact", "https://example.com/app", "--sha256", "ab".repeat(32)).status, 0);
        assert.ok(s.calls().includes("config set greenArtifact https://example.com/app"));
        assert.ok(s.calls().includes(`config set greenSha256 ${"ab".repeat(32)}`));
    });

    it("release: a failed deploy stops before the switch, and says how to undo the config", () => {
        const s = stack(LIVE_BLUE, LIVE_BLUE, [1]);
        const r = s.cli("release", "v2");
        assert.strictEqual(r.status, 1);
        assert.ok(!s.calls().includes("config set active green"));
        assert.strictEqual(
            r.stderr.trim().split("\n").pop(),
            "Fix it and run this again, or put the config back: pulumi config set greenVersion v1",
        );
        assert.match(r.stderr, /==> stopped: deploying v2 to green failed \(its error is above\); blue \(v1\) is still live and untouched\./);
    });

    it("release: a failed or rolled-back switch sets active back to the colour still serving", () => {
        const s = stack(LIVE_BLUE, LIVE_BLUE, [0, 1]);
        const r = s.cli("release", "v2");
        assert.strictEqual(r.status, 1);
        assert.strictEqual(s.config("active"), "blue");
        assert.deepStrictEqual(s.calls().slice(-3), ["config set active green", "up --yes --skip-preview", "config set active blue"]);
        assert.match(r.stderr, /==> stopped: switching to green failed \(its error is above\); blue still serves traffic and config says active=blue again\.\n$/);
    });

    it("release: refuses when config and the last up disagree, before changing anything", () => {
        const s = stack({ ...LIVE_BLUE, active: "green" }, LIVE_BLUE, []);
        const r = s.cli("release", "v2");
        assert.strictEqual(r.status, 1);
        assert.strictEqual(r.stderr, "==> stopped: config says active=green but the last pulumi up left blue live; run pulumi up (or pulumi config set active blue) first\n");
        assert.deepStrictEqual(s.calls(), ["stack output active", "config get active"]);
    });

    it("release: a bad version string is refused before pulumi runs", () => {
        const s = stack(LIVE_BLUE, LIVE_BLUE, []);
        const r = s.cli("release", "v 2");
        assert.strictEqual(r.stderr, `==> stopped: "v 2" is not a valid version: use 1-64 letters, digits, '.', '_', '+' or '-'\n`);
        assert.deepStrictEqual(s.calls(), [""]);
    });

    it("rollback: switches to the other slot without a version string", () => {
        const s = stack({ active: "green", blueVersion: "v1", greenVersion: "v2" }, { active: "green", blueVersion: "v1", greenVersion: "v2" }, [0]);
        const r = s.cli("rollback");
        assert.strictEqual(r.status, 0, r.stderr);
        assert.strictEqual(r.stdout, "==> rolling back: green -> blue (v1, still running)\n==> rolled back: blue (v1) is live\n");
        assert.strictEqual(s.config("active"), "blue");
    });
});
