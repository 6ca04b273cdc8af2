import { strict as assert } from "assert";
import { ESLint } from "eslint";
import * as path from "path";

// `npm test` runs `npm run lint` (ESLint with typescript-eslint and Pulumi's
// plugin, Prettier, gofmt, go vet). This proves the Pulumi rule is really
// active: without type information it silently reports nothing.
describe("lint", function () {
  this.timeout(120000);

  it("flags an Output pasted into a template literal, and not the pulumi.interpolate form", async () => {
    const eslint = new ESLint({ overrideConfigFile: "test/lint/eslint.config.mjs", ignore: false });
    const [result] = await eslint.lintFiles([path.join("test", "fixtures", "lint", "output-in-template.ts")]);
    const found = result.messages.map((m) => `${m.line}:${m.ruleId}`);
    assert.deepEqual(found, [
      "7:@pulumi/no-output-in-template-literal",
      "7:@typescript-eslint/no-base-to-string",
      "7:@typescript-eslint/restrict-template-expressions",
    ]);
  });
});
