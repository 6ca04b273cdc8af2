// The GitHub workflows users copy: valid against the workflow schema, and doing
// what the README says.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { ROOT } from "./harness";
import { run } from "./tools";

const DIR = path.join(ROOT, ".github", "workflows");
const validate = (file: string) => run(path.join(ROOT, "node_modules", ".bin", "action-validator"), [file]);
const load = (name: string) => YAML.parse(fs.readFileSync(path.join(DIR, name), "utf8"));
const pulumiStep = (wf: any) => wf.jobs[Object.keys(wf.jobs)[0]].steps.find((s: any) => String(s.uses).startsWith("pulumi/actions@"));

describe("GitHub workflows", () => {
    it("every workflow passes action-validator, and the validator rejects a broken one", () => {
        const files = fs.readdirSync(DIR).filter((f) => f.endsWith(".yml"));
        assert.deepStrictEqual(files.sort(), ["deploy.yml", "preview.yml"]);
        for (const f of files) {
            const r = validate(path.join(DIR, f));
            assert.strictEqual(r.status, 0, `${f}: ${r.stdout}${r.stderr}`);
        }
        const broken = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "bg-wf-")), "broken.yml");
        fs.writeFileSync(broken, "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    stepz: []\n");
        assert.strictEqual(validate(broken).status, 1);
    });

    it("pull requests get a preview --diff posted as a comment", () => {
        const wf = load("preview.yml");
        assert.deepStrictEqual(Object.keys(wf.on), ["pull_request"]);
        assert.strictEqual(wf.permissions["pull-requests"], "write");
        const step = pulumiStep(wf);
        assert.strictEqual(step.uses, "pulumi/actions@v7");
        assert.deepStrictEqual([step.with.command, step.with.diff, step.with["comment-on-pr"]], ["preview", true, true]);
    });

    it("main runs pulumi up, one run at a time", () => {
        const wf = load("deploy.yml");
        assert.deepStrictEqual(wf.on.push.branches, ["main"]);
        assert.deepStrictEqual(wf.concurrency, { group: "pulumi-dev", "cancel-in-progress": false });
        assert.strictEqual(pulumiStep(wf).with.command, "up");
    });

    it("both install with npm ci first, keep state in a durable backend, and take secrets only from the secret store", () => {
        for (const name of ["preview.yml", "deploy.yml"]) {
            const wf = load(name);
            const steps = wf.jobs[Object.keys(wf.jobs)[0]].steps;
            assert.ok(steps.findIndex((s: any) => s.run === "npm ci") < steps.indexOf(pulumiStep(wf)), `${name}: npm ci before pulumi`);
            const step = pulumiStep(wf);
            assert.strictEqual(step.with["cloud-url"], "${{ secrets.PULUMI_BACKEND_URL }}");
            for (const [k, v] of Object.entries(step.env)) assert.match(String(v), /^\$\{\{ secrets\.[A-Z_]+ \}\}$/, `${name}: ${k}`);
            assert.ok("PULUMI_CONFIG_PASSPHRASE" in step.env);
        }
    });
});
