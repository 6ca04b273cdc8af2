// The router seam (components/router/contract.ts) against the two routers' files on the host:
// each defines every operation and no other router_* function (read from the text, and from
// bash itself by sourcing the file in a subshell), and each operation's callers are the host
// scripts that call it.
import * as assert from "assert";
import * as fs from "fs";
import { scriptPaths } from "../../components/host/shell";
import { ROUTER_CONTRACT, ROUTER_OPERATIONS } from "../../components/router/contract";
import { ROUTERS } from "../../components/router/routers";
import { run } from "../support/tools";

const file = (name: string) => scriptPaths().get(name) ?? assert.fail(`no script ${name}`);
const code = (name: string) =>
  fs
    .readFileSync(file(name), "utf8")
    .split("\n")
    .filter((l) => !/^\s*#/.test(l))
    .join("\n");
const routerFiles = Object.keys(ROUTERS).map((kind) => `router-${kind}.sh`);

describe("the router contract (components/router/contract.ts)", () => {
  it("lists each operation once, each with what it does and its exit status", () => {
    assert.strictEqual(new Set(ROUTER_OPERATIONS).size, ROUTER_OPERATIONS.length);
    assert.ok(ROUTER_OPERATIONS.length >= 18);
    for (const op of ROUTER_CONTRACT) {
      assert.match(op.name, /^router_[a-z_]+$/);
      assert.ok(op.does.length > 20 && op.exits.length > 0, op.name);
    }
  });

  for (const name of routerFiles) {
    describe(name, () => {
      it("defines every operation of the contract and no other router_* function (its text)", () => {
        const defined = [...code(name).matchAll(/^(router_[a-z_]+)\(\) /gm)].map((m) => m[1]);
        assert.deepStrictEqual([...defined].sort(), [...ROUTER_OPERATIONS].sort());
      });

      it("defines them as functions when sourced by bash (in a subshell, nothing run)", () => {
        const r = run("bash", [
          "--norc",
          "-c",
          `set -euo pipefail; ( . "$1"; declare -F | sed -n 's/^declare -f \\(router_.*\\)$/\\1/p' )`,
          "bash",
          file(name),
        ]);
        assert.strictEqual(r.status, 0, r.stderr);
        assert.deepStrictEqual(r.stdout.trim().split("\n").sort(), [...ROUTER_OPERATIONS].sort());
      });
    });
  }

  it("each operation's callers are exactly the host scripts that call it", () => {
    const others = [...scriptPaths().keys()].filter((n) => !routerFiles.includes(n));
    for (const op of ROUTER_CONTRACT) {
      const callers = others.filter((n) => new RegExp(`\\b${op.name}\\b`).test(code(n)));
      assert.deepStrictEqual([...callers].sort(), [...op.callers].sort(), op.name);
    }
  });
});
