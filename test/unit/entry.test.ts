// Which file `pulumi up` runs. package.json now has `exports` and `main` for the library, and the
// Node.js language host prefers those to index.ts unless Pulumi.yaml names a main of its own:
// - pulumi/pulumi pkg/engine/project.go getPwdMain: a `main` that is a file gives pwd = its folder
//   and entry point = its name; no `main` gives entry point ".".
// - sdk/nodejs/cmd/run/run.ts: entry point "." means no entry point; then exports["."] (a string,
//   or .default/.require/.import), else package.json's main, else the folder (index.js/index.ts).
// Running the library's face would register no resource, and the engine would plan to delete
// every resource of the stack.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { ROOT } from "../support/harness";

interface PackageJson {
  main?: string;
  exports?: string | Record<string, string | Record<string, string>>;
}

/** The program file the language host runs for this project, by the two rules above. */
export function programFile(root: string, project: { main?: string }, pkg: PackageJson): string {
  if (project.main) {
    const main = path.resolve(root, project.main);
    if (!fs.statSync(main).isDirectory()) return main;
  }
  const dot = typeof pkg.exports === "object" ? pkg.exports["."] : pkg.exports;
  const entry = typeof dot === "object" ? (dot.default ?? dot.require ?? dot.import) : (dot ?? pkg.main);
  return entry ? path.resolve(root, entry) : path.join(root, "index.ts");
}

const project = () => YAML.parse(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8")) as { main?: string };
const pkg = () => JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as PackageJson;

describe("the program Pulumi runs", () => {
  it("is index.ts: Pulumi.yaml's main names it, so package.json's library entry is not run", () => {
    assert.strictEqual(programFile(ROOT, project(), pkg()), path.join(ROOT, "index.ts"));
  });

  it("would be the library's face without that line (the rule this guards against)", () => {
    assert.strictEqual(programFile(ROOT, {}, pkg()), path.join(ROOT, "dist", "lib", "components", "index.js"));
    assert.strictEqual(programFile(ROOT, {}, { main: "lib.js" }), path.join(ROOT, "lib.js"));
    assert.strictEqual(programFile(ROOT, {}, {}), path.join(ROOT, "index.ts"));
  });
});
