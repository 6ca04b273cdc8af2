import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { toolsInstallerText } from "../../components/host/setup";
import { layout, renderLayoutSh } from "../../components/host/layout";
import { hostScriptNames, libScriptNames, scriptPaths, sourcedScriptNames } from "../../components/host/shell";
import { ROOT } from "../support/harness";
import { requireTool, run } from "../support/tools";

const script = (name: string) => scriptPaths().get(name) ?? assert.fail(`no script ${name}`);
const SOURCED = sourcedScriptNames();
const executables = [
  ...[...scriptPaths()].filter(([name]) => !SOURCED.has(name)).map(([, file]) => file),
  path.join(ROOT, "app", "build.sh"),
  path.join(ROOT, "app", "node", "build.sh"),
  path.join(ROOT, ".ci", "run"),
  path.join(ROOT, "test", "e2e", "vm", "build-image.sh"),
  path.join(ROOT, "test", "e2e", "fake-bin", "pulumi"),
  path.join(ROOT, "test", "fixtures", "fake-pulumi-recorder"),
  path.join(ROOT, "test", "fixtures", "bin", "multipass"),
];

describe("shell scripts", () => {
  it("every executable script starts with a bash shebang and set -euo pipefail before any command", () => {
    assert.ok(executables.length >= 10);
    for (const file of executables) {
      const lines = fs.readFileSync(file, "utf8").split("\n");
      assert.strictEqual(lines[0], "#!/usr/bin/env bash", file);
      const firstCode = lines.slice(1).find((l) => l.trim() !== "" && !l.startsWith("#"));
      assert.strictEqual(firstCode, "set -euo pipefail", file);
    }
  });

  it("every host tool sources lib.sh (which brings layout.sh) right after set", () => {
    for (const name of hostScriptNames().filter((n) => !SOURCED.has(n) && n !== "wait-ready.sh")) {
      const text = fs.readFileSync(script(name), "utf8");
      // readlink -f: a tool reached through a symlink (bluegreen-status) still finds lib.sh.
      assert.match(
        text,
        /\nset -euo pipefail\n# shellcheck source=\/dev\/null\n\. "\$\(dirname "\$\(readlink -f "\$0"\)"\)\/lib\.sh"\n/,
        name,
      );
    }
  });

  it("lib.sh sources every topic file of components/scripts/lib, each a sourced file", () => {
    const topics = libScriptNames().slice(1);
    assert.ok(topics.length >= 8, topics.join(" "));
    const lib = fs.readFileSync(script("lib.sh"), "utf8");
    const sourced = [...lib.matchAll(/^\s*\. "\$BG_LIB_DIR\/([a-z-]+\.sh)"$/gm)].map((m) => m[1]);
    assert.deepStrictEqual(sourced.filter((n) => !["layout.sh"].includes(n)).sort(), [...topics].sort());
    for (const name of topics)
      assert.ok(fs.readFileSync(script(name), "utf8").startsWith("# shellcheck shell=bash\n"), name);
  });

  it("all scripts, the generated layout.sh and the tools installer pass bash -n and shellcheck", () => {
    requireTool("shellcheck");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bg-sh-"));
    fs.writeFileSync(path.join(dir, "layout.sh"), renderLayoutSh(layout));
    fs.writeFileSync(path.join(dir, "install-tools.sh"), toolsInstallerText(layout));
    const files = [
      ...executables,
      ...[...SOURCED].map(script),
      path.join(dir, "layout.sh"),
      path.join(dir, "install-tools.sh"),
      // The test rigs' own scripts, held to the same standard.
      path.join(ROOT, "test", "e2e", "pebble-in-vm.sh"),
      path.join(ROOT, "test", "e2e", "vm", "build-image.sh"),
      path.join(ROOT, "test", "lint", "go.sh"),
    ];
    for (const f of files) {
      const syntax = run("bash", ["-n", f]);
      assert.strictEqual(syntax.status, 0, `${f}: ${syntax.stderr}`);
    }
    const lint = run("shellcheck", ["--shell=bash", "--severity=style", ...files]);
    fs.rmSync(dir, { recursive: true, force: true });
    assert.strictEqual(lint.status, 0, lint.stdout + lint.stderr);
  });

  it("the tools installer carries every host script and layout.sh, and ends by setting up the host", () => {
    const text = toolsInstallerText(layout);
    for (const name of ["layout.sh", ...hostScriptNames()]) assert.ok(text.includes(`"$dir/${name}"`), name);
    assert.ok(!text.includes("local-multipass-launch.sh"), "local scripts stay local");
    // lib.sh's topics are in place before the lib.sh that sources them.
    const at = (name: string) => text.indexOf(`"$dir/.${name}.new" "$dir/${name}"`);
    for (const name of libScriptNames().slice(1)) assert.ok(at(name) > 0 && at(name) < at("lib.sh"), name);
    assert.ok(text.endsWith('"$dir/setup-host.sh"\n'));
  });
});
