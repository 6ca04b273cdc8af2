// What merges is what was reviewed, built by the tools that built what runs: the workflows pin
// the Pulumi CLI and Go, the PR preview saves its plan, and main applies exactly that plan.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { ROOT } from "../support/harness";
import { run } from "../support/tools";

const load = (name: string) => YAML.parse(fs.readFileSync(path.join(ROOT, ".github", "workflows", name), "utf8"));
const steps = (wf: any): any[] => Object.values(wf.jobs).flatMap((j: any) => j.steps);
const stepOf = (wf: any, uses: string) => {
  const found = steps(wf).filter((s) => String(s.uses).startsWith(uses));
  assert.strictEqual(found.length, 1, uses);
  return found[0];
};
const lock = JSON.parse(fs.readFileSync(path.join(ROOT, "package-lock.json"), "utf8"));

describe("workflow pins and the reviewed plan", () => {
  it("both run the Pulumi CLI the lockfile's npm package runs locally, and the same exact Go", () => {
    const cli = lock.packages["node_modules/pulumi"].version as string;
    const goMod = /^go (\d+\.\d+)/m.exec(fs.readFileSync(path.join(ROOT, "app", "go.mod"), "utf8"))![1];
    const gos = new Set<string>();
    for (const name of ["preview.yml", "deploy.yml"]) {
      const wf = load(name);
      assert.strictEqual(stepOf(wf, "pulumi/actions@")["with"]["pulumi-version"], cli, name);
      const go = String(stepOf(wf, "actions/setup-go@")["with"]["go-version"]);
      // A patch release, not a line: another Go gives other bytes, which the host refuses under a known version.
      assert.match(go, /^\d+\.\d+\.\d+$/, name);
      const [maj, min] = go.split(".").map(Number);
      const [gm, gn] = goMod.split(".").map(Number);
      assert.ok(maj > gm || (maj === gm && min >= gn), `${name}: Go ${go} is older than app/go.mod's ${goMod}`);
      gos.add(go);
    }
    assert.strictEqual(gos.size, 1, "both workflows build with the same Go");
  });

  it("the preview saves its plan and uploads it as the artifact 'plan'; main applies that file", () => {
    const preview = load("preview.yml");
    const p = stepOf(preview, "pulumi/actions@");
    assert.strictEqual(p.with.command, "preview");
    const upload = stepOf(preview, "actions/upload-artifact@");
    const all = steps(preview);
    assert.ok(all.indexOf(upload) > all.indexOf(p), "upload after the preview");
    assert.deepStrictEqual(upload.with, {
      name: "plan",
      path: `${p.with.plan}.enc`,
      "if-no-files-found": "error",
      overwrite: true,
      "retention-days": 14,
    });
    const encrypt = all.find((x) => x.name === "encrypt the plan");
    assert.ok(all.indexOf(p) < all.indexOf(encrypt) && all.indexOf(encrypt) < all.indexOf(upload));
    const deploy = load("deploy.yml");
    const up = stepOf(deploy, "pulumi/actions@");
    const download = stepOf(deploy, "actions/download-artifact@");
    const d = steps(deploy);
    assert.strictEqual(up.with.command, "up");
    assert.strictEqual(up.with.plan, p.with.plan);
    const decrypt = d.find((x) => String(x.name).startsWith("decrypt the plan"));
    assert.ok(d.indexOf(download) < d.indexOf(decrypt) && d.indexOf(decrypt) < d.indexOf(up), "download, decrypt, up");
    assert.deepStrictEqual(download.with, {
      name: "plan",
      "run-id": "${{ steps.reviewed.outputs.run }}",
      "github-token": "${{ github.token }}",
    });
  });

  it("the plan travels encrypted with the stack's passphrase: the deploy decrypts it, a wrong passphrase stops it", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bg-plan-"));
    const plan = '{"config":{"bluegreen:active":"green"}}\n';
    fs.writeFileSync(path.join(dir, "plan.json"), plan);
    const stepRun = (wf: string, prefix: string) => steps(load(wf)).find((x) => String(x.name).startsWith(prefix)).run;
    const sh = (script: string, pass: string) =>
      run("bash", ["-c", script], { cwd: dir, env: { PATH: process.env.PATH, PULUMI_CONFIG_PASSPHRASE: pass } });
    assert.strictEqual(sh(stepRun("preview.yml", "encrypt the plan"), "s3cret").status, 0);
    assert.deepStrictEqual(fs.readdirSync(dir), ["plan.json.enc"]);
    assert.ok(!fs.readFileSync(path.join(dir, "plan.json.enc")).includes("bluegreen:active"));
    assert.notStrictEqual(sh(stepRun("deploy.yml", "decrypt the plan"), "guess").status, 0);
    assert.strictEqual(sh(stepRun("deploy.yml", "decrypt the plan"), "s3cret").status, 0);
    assert.strictEqual(fs.readFileSync(path.join(dir, "plan.json"), "utf8"), plan);
  });

  describe("main finds the preview run of the pull request its commit came from (the step, run with a stand-in gh)", () => {
    const script = () => steps(load("deploy.yml")).find((s) => s.id === "reviewed").run as string;
    function reviewed(answers: { pulls: string; head?: string; runs?: string }) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bg-gh-"));
      const gh = [
        "#!/usr/bin/env bash",
        'echo "$*" >> "$GH_LOG"',
        'case "$1 $2" in',
        `  "api repos/o/r/commits/abc/pulls") echo '${answers.pulls}' | jq -r "\${4:-.}" ;;`,
        `  "api repos/o/r/pulls/"*) echo '{"head":{"sha":"${answers.head ?? ""}"}}' | jq -r "\${4:-.}" ;;`,
        `  "run list") echo '${answers.runs ?? "[]"}' | jq -r "\${@: -1}" ;;`,
        '  *) echo "unexpected gh $*" >&2; exit 3 ;;',
        "esac",
      ].join("\n");
      fs.writeFileSync(path.join(dir, "gh"), gh, { mode: 0o755 });
      const out = path.join(dir, "output");
      fs.writeFileSync(out, "");
      const r = run("bash", ["-c", script()], {
        env: {
          PATH: `${dir}:${process.env.PATH}`,
          GH_LOG: path.join(dir, "log"),
          GITHUB_REPOSITORY: "o/r",
          GITHUB_OUTPUT: out,
          SHA: "abc",
          RETRY_SECONDS: "0",
        },
      });
      return { ...r, output: fs.readFileSync(out, "utf8"), log: fs.readFileSync(path.join(dir, "log"), "utf8") };
    }

    const MERGED = '[{"number":7,"merged_at":"2026-12-04T05:00:00Z","merge_commit_sha":"abc"}]';
    it("the merge commit of a pull request with a successful preview at its head: that run", () => {
      const r = reviewed({ pulls: MERGED, head: "def", runs: '[{"databaseId":4242}]' });
      assert.strictEqual(r.status, 0, r.stderr);
      assert.strictEqual(r.output, "run=4242\n");
      assert.match(r.log, /run list --repo o\/r --workflow preview.yml --commit def --status success --limit 1/);
    });

    it("a commit that is the merge of no pull request is refused, after asking again (the API lags merges)", () => {
      for (const pulls of [
        "[]",
        '[{"number":8,"merged_at":null,"merge_commit_sha":"abc"}]',
        MERGED.replace('"abc"', '"fff"'),
      ]) {
        const r = reviewed({ pulls });
        assert.strictEqual(r.status, 1, pulls);
        assert.strictEqual(
          r.stdout.trim(),
          "::error::abc is the merge of no pull request; merge through one, so that its reviewed plan is what deploys",
        );
        assert.strictEqual(r.output, "");
        assert.strictEqual(r.log.trim().split("\n").length, 6, "asked six times");
      }
    });

    it("a pull request without a successful preview at its head is refused", () => {
      const r = reviewed({ pulls: MERGED, head: "def", runs: "[]" });
      assert.strictEqual(r.status, 1);
      assert.strictEqual(
        r.stdout.trim(),
        "::error::pull request #7 has no successful preview at its head def; approve and run it first",
      );
    });
  });
});
