// Pulumi.yaml's config block and docs/configuration.md say what the key table says: they are
// generated from it (npm run config:gen), and must be committed as generated.
import * as assert from "assert";
import * as fs from "fs";
import * as YAML from "yaml";
import {
  configurationDoc,
  DOC_FILE,
  projectConfigBlock,
  projectFile,
  PROJECT_FILE,
} from "../../components/config/generate";
import { KEYS, ROWS } from "../../components/config";

const FIX = "run npm run config:gen and commit the result";

describe("files generated from the key table", () => {
  it("Pulumi.yaml's config block, byte for byte, with the comments above it kept", () => {
    const text = fs.readFileSync(PROJECT_FILE, "utf8");
    assert.strictEqual(text, projectFile(text), FIX);
    assert.ok(text.endsWith(projectConfigBlock()));
    assert.match(text.slice(0, text.indexOf("\nconfig:")), /^# The engine treats every key declared here/m);
  });

  it("docs/configuration.md", () => {
    assert.strictEqual(fs.readFileSync(DOC_FILE, "utf8"), configurationDoc(), FIX);
  });

  it("the config block declares each declared row with its type, default and description", () => {
    const config = YAML.parse(projectConfigBlock()).config as Record<string, Record<string, unknown>>;
    for (const [k, r] of ROWS) {
      if (r.undeclared) {
        assert.ok(!(k in config), `${k} is not declared`);
        assert.ok(projectConfigBlock().includes(`# ${k}: `), `${k}: the block says why it is not declared`);
        continue;
      }
      assert.strictEqual(config[k].type, r.type, k);
      assert.deepStrictEqual(config[k].default, r.default, k);
      assert.strictEqual(config[k].description, r.description, k);
      assert.strictEqual(config[k].secret, r.required && r.secret ? true : undefined, k);
    }
  });

  it("the doc has a row for every key, under its area", () => {
    const doc = configurationDoc();
    for (const k of Object.keys(KEYS)) assert.match(doc, new RegExp(`^\\| \`${k}\` \\|`, "m"), k);
  });
});
