// The GitHub workflows users copy: valid against the workflow schema, and doing
// what docs/ci.md says: they reach the durable state, target a stack a runner
// can reach, and give the deploy secrets only to jobs a maintainer has gated.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { ROOT } from "../support/harness";
import { run } from "../support/tools";

const DIR = path.join(ROOT, ".github", "workflows");
const FILES = ["deploy.yml", "preview.yml"];
const validate = (file: string) => run(path.join(ROOT, "node_modules", ".bin", "action-validator"), [file]);
const load = (name: string) => YAML.parse(fs.readFileSync(path.join(DIR, name), "utf8"));

type Job = { name: string; job: any; steps: any[] };
const jobs = (wf: any): Job[] =>
  Object.entries(wf.jobs).map(([name, job]: [string, any]) => ({ name, job, steps: job.steps ?? [] }));
const isPulumi = (s: any) => String(s.uses).startsWith("pulumi/actions@");
const isCheckout = (s: any) => String(s.uses).startsWith("actions/checkout@");
// [job, step] for every pulumi/actions step of a workflow.
const pulumiSteps = (wf: any): [Job, any][] =>
  jobs(wf).flatMap((j) => j.steps.filter(isPulumi).map((s) => [j, s] as [Job, any]));
const pulumiStep = (wf: any) => {
  const all = pulumiSteps(wf);
  assert.strictEqual(all.length, 1, "one pulumi/actions step per workflow");
  return all[0][1];
};
const triggers = (wf: any): string[] =>
  typeof wf.on === "string" ? [wf.on] : Array.isArray(wf.on) ? wf.on : Object.keys(wf.on);
// Any secret other than the job's own GITHUB_TOKEN.
const usesSecrets = (x: unknown) => /secrets\.(?!GITHUB_TOKEN\b)[A-Za-z_]/.test(JSON.stringify(x ?? {}));

const STACK = "${{ vars.PULUMI_STACK || 'prod' }}";
const ENVIRONMENT: Record<string, string> = { "preview.yml": "preview", "deploy.yml": "production" };

// docs/ci.md, the user's guide to CI for their stack (moved out of the README; the README links it).
function ciSection(): string {
  const file = path.join(ROOT, "docs", "ci.md");
  assert.ok(fs.existsSync(file), "docs/ci.md exists");
  const text = fs.readFileSync(file, "utf8");
  assert.match(text, /^# CI for your stack\n/, "docs/ci.md starts with its title");
  return text;
}

describe("GitHub workflows", () => {
  it("every workflow passes action-validator, and the validator rejects a broken one", () => {
    const files = fs.readdirSync(DIR).filter((f) => f.endsWith(".yml"));
    assert.deepStrictEqual(files.sort(), FILES);
    for (const f of files) {
      const r = validate(path.join(DIR, f));
      assert.strictEqual(r.status, 0, `${f}: ${r.stdout}${r.stderr}`);
    }
    const broken = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "bg-wf-")), "broken.yml");
    fs.writeFileSync(broken, "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    stepz: []\n");
    assert.strictEqual(validate(broken).status, 1);
  });

  it("pull requests get a preview --diff posted as a comment, from this repository's branches only", () => {
    const wf = load("preview.yml");
    // pull_request runs the workflow file and code of the PR's merge commit
    // and gives forks no secrets; pull_request_target would hand the base
    // branch's secrets to whatever code the job checks out.
    assert.deepStrictEqual(triggers(wf), ["pull_request"]);
    const step = pulumiStep(wf);
    assert.strictEqual(step.uses, "pulumi/actions@v7");
    assert.deepStrictEqual([step.with.command, step.with.diff, step.with["comment-on-pr"]], ["preview", true, true]);
    // A fork's run gets no secrets and a read-only token: skip it rather than fail.
    const [job] = pulumiSteps(wf)[0];
    assert.strictEqual(job.job.if, "github.event.pull_request.head.repo.full_name == github.repository");
  });

  it("main runs pulumi up from main only, one run at a time per stack", () => {
    const wf = load("deploy.yml");
    assert.deepStrictEqual(triggers(wf).sort(), ["push", "workflow_dispatch"]);
    assert.deepStrictEqual(wf.on.push.branches, ["main"]);
    // Keyed by the stack, never by the run, and a queued deploy is not cancelled.
    assert.deepStrictEqual(wf.concurrency, { group: `deploy-${STACK}`, "cancel-in-progress": false });
    const [[job, step]] = pulumiSteps(wf);
    assert.strictEqual(step.with.command, "up");
    // workflow_dispatch can name any branch; only main deploys.
    assert.strictEqual(job.job.if, "github.ref == 'refs/heads/main'");
  });

  it("every pulumi step reaches the durable backend through PULUMI_BACKEND_URL, never creating a stack", () => {
    // The reason: the project file names a backend, which beats a `pulumi login`
    // (the action's cloud-url) and loses only to PULUMI_BACKEND_URL.
    const project = YAML.parse(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8"));
    assert.ok(project.backend?.url, "Pulumi.yaml sets backend.url");
    for (const name of FILES) {
      const steps = pulumiSteps(load(name));
      assert.ok(steps.length > 0, `${name}: has a pulumi step`);
      for (const [job, step] of steps) {
        const where = `${name} ${job.name}`;
        assert.strictEqual(
          step.env?.PULUMI_BACKEND_URL,
          "${{ secrets.PULUMI_BACKEND_URL }}",
          `${where}: PULUMI_BACKEND_URL in the step's env`,
        );
        assert.ok(
          !("cloud-url" in step.with),
          `${where}: cloud-url is overridden by Pulumi.yaml's backend.url; use PULUMI_BACKEND_URL`,
        );
        // On a wrong backend, upsert would make an empty stack and `up` a second server.
        assert.notStrictEqual(step.with.upsert, true, `${where}: upsert`);
        assert.notStrictEqual(step.with.upsert, "true", `${where}: upsert`);
      }
    }
  });

  it("both install with npm ci, in the same job, before the action", () => {
    for (const name of FILES) {
      for (const [job, step] of pulumiSteps(load(name))) {
        const ci = job.steps.findIndex((s: any) => typeof s.run === "string" && /^npm ci\b/.test(s.run.trim()));
        assert.ok(ci >= 0 && ci < job.steps.indexOf(step), `${name} ${job.name}: npm ci before pulumi`);
      }
    }
  });

  it("both target the same stack, one a runner can reach: not the multipass dev stack", () => {
    const names = FILES.map((name) => pulumiStep(load(name)).with["stack-name"]);
    for (const n of names) assert.strictEqual(n, STACK);
    const fallback = /'([^']+)'/.exec(STACK)![1];
    assert.notStrictEqual(fallback, "dev");
    // A committed Pulumi.<stack>.yaml for the CI stack must not be a local VM either.
    const file = path.join(ROOT, `Pulumi.${fallback}.yaml`);
    if (fs.existsSync(file)) {
      const kind = YAML.parse(fs.readFileSync(file, "utf8"))?.config?.["bluegreen:hostKind"];
      assert.ok(kind === "hetzner" || kind === "ssh", `${file}: hostKind ${kind}`);
    }
  });

  it("deploy secrets reach only jobs in their protected environment, never pull_request_target", () => {
    for (const name of FILES) {
      const wf = load(name);
      assert.ok(!usesSecrets(wf.env), `${name}: no secrets in workflow-level env`);
      assert.ok(!triggers(wf).includes("pull_request_target"), `${name}: pull_request_target`);
      for (const j of jobs(wf)) {
        assert.ok(!j.job.uses, `${name} ${j.name}: no reusable workflow (secrets: inherit)`);
        const hasSecrets = usesSecrets(j.job);
        if (hasSecrets)
          assert.strictEqual(
            j.job.environment,
            ENVIRONMENT[name],
            `${name} ${j.name}: secrets only under environment ${ENVIRONMENT[name]}`,
          );
        for (const s of j.steps) {
          if (s.env && "PULUMI_CONFIG_PASSPHRASE" in s.env)
            assert.strictEqual(
              j.job.environment,
              ENVIRONMENT[name],
              `${name} ${j.name}: the passphrase needs the environment`,
            );
          for (const [k, v] of Object.entries(s.env ?? {})) {
            if (usesSecrets(v)) assert.match(String(v), /^\$\{\{ secrets\.[A-Z_]+ \}\}$/, `${name}: ${k}`);
          }
          // Under pull_request_target the job has the base's secrets: never check out the PR.
          if (triggers(wf).includes("pull_request_target") && isCheckout(s)) {
            assert.ok(
              !/head|merge|github\.ref/.test(JSON.stringify(s.with ?? {})),
              `${name} ${j.name}: checks out the PR under pull_request_target`,
            );
          }
        }
      }
      const [job, step] = pulumiSteps(wf)[0];
      assert.strictEqual(job.job.environment, ENVIRONMENT[name]);
      assert.ok("PULUMI_CONFIG_PASSPHRASE" in step.env, `${name}: the passphrase decrypts the stack's secrets`);
    }
  });

  it("permissions are the least each job needs, and checkout leaves no token behind", () => {
    const preview = load("preview.yml");
    assert.deepStrictEqual(preview.permissions, {});
    assert.deepStrictEqual(preview.jobs.preview.permissions, { contents: "read", "pull-requests": "write" });
    const deploy = load("deploy.yml");
    // actions and pull-requests, read: the preview run's plan, and which pull request a commit came from.
    assert.deepStrictEqual(deploy.permissions, { contents: "read", actions: "read", "pull-requests": "read" });
    for (const name of FILES) {
      const wf = load(name);
      for (const j of jobs(wf)) {
        const effective = j.job.permissions ?? wf.permissions;
        assert.ok(effective && typeof effective === "object", `${name} ${j.name}: explicit permissions`);
        const writes = Object.entries(effective)
          .filter(([, v]) => v === "write")
          .map(([k]) => k);
        assert.deepStrictEqual(
          writes,
          name === "preview.yml" ? ["pull-requests"] : [],
          `${name} ${j.name}: write scopes`,
        );
        for (const s of j.steps.filter(isCheckout)) {
          assert.strictEqual(s.with?.["persist-credentials"], false, `${name} ${j.name}: checkout persist-credentials`);
        }
      }
    }
  });

  it("docs/ci.md names every secret, variable and environment the workflows use", () => {
    const section = ciSection();
    for (const name of FILES) {
      const text = fs.readFileSync(path.join(DIR, name), "utf8");
      const used = new Set([...text.matchAll(/\b(?:secrets|vars)\.([A-Z_]+)/g)].map((m) => m[1]));
      for (const u of used) assert.ok(section.includes(`\`${u}\``), `docs/ci.md: ${u} (${name})`);
      assert.ok(section.includes(`\`${ENVIRONMENT[name]}\``), `docs/ci.md: environment ${ENVIRONMENT[name]}`);
    }
  });
});
