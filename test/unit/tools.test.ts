// components/host/tools.ts against the scripts: each declaration says what the script's own
// header says (`# Inputs:`, `# Stdin sections:`, `# Stdin:`, `# Arguments:`), both ways; the
// script checks its required inputs at its top, keeps no default of its own, and reads no
// upper-case input it does not declare. tool() builds the commands the components send.
import * as assert from "assert";
import * as fs from "fs";
import { layout } from "../../components/host/layout";
import { toolsInstallerText } from "../../components/host/setup";
import { scriptPaths, sourcedScriptNames } from "../../components/host/shell";
import {
  EnvInput,
  INSTALLER,
  installerCommand,
  SectionInput,
  tool,
  ToolName,
  TOOLS,
  ToolSpec,
  toolStdin,
  toolVars,
} from "../../components/host/tools";

const text = (name: string) => fs.readFileSync(scriptPaths().get(name) ?? assert.fail(`no script ${name}`), "utf8");
const executables = () => [...scriptPaths().keys()].filter((n) => !sourcedScriptNames().has(n)).sort();

interface Header {
  env: Record<string, EnvInput>;
  sections?: Record<string, SectionInput>;
  stdinText: boolean;
  args: boolean;
}

const ENTRY = /^#   ([A-Za-z][A-Za-z0-9_]*) +(required|optional|required\(([^)]+)\))( +secret)?(?: {2,}.*)?$/;

/** The header: the comment lines before `set -euo pipefail`. */
function parseHeader(name: string): Header {
  const lines = text(name).split("\n");
  const end = lines.indexOf("set -euo pipefail");
  assert.ok(end > 0, `${name}: no set -euo pipefail`);
  const head = lines.slice(1, end);
  const block = (title: RegExp): [string, RegExpExecArray][] | undefined => {
    const at = head.findIndex((l) => title.test(l));
    if (at < 0) return undefined;
    const out: [string, RegExpExecArray][] = [];
    if (/:\s*none\b/.test(head[at])) return out;
    for (const l of head.slice(at + 1)) {
      if (!l.startsWith("#   ")) break;
      const m = ENTRY.exec(l) ?? assert.fail(`${name}: cannot read this input line: ${l}`);
      out.push([m[1], m]);
    }
    assert.ok(out.length > 0, `${name}: ${head[at]} lists nothing (say "none")`);
    return out;
  };
  const inputs = block(/^# Inputs\b[^:]*:/) ?? assert.fail(`${name}: its header has no "# Inputs:" block`);
  const env: Record<string, EnvInput> = {};
  for (const [n, m] of inputs) {
    assert.ok(!m[4], `${name}: ${n}: an env input is never secret (secrets travel on stdin)`);
    env[n] = m[3] ? { presence: "optional", requiredWith: m[3] } : { presence: m[2] as "required" | "optional" };
  }
  const sectionLines = block(/^# Stdin sections\b[^:]*:/);
  const sections = sectionLines
    ? Object.fromEntries(
        sectionLines.map(([n, m]) => [
          n,
          { presence: m[2] as "required" | "optional", ...(m[4] ? { secret: true } : {}) },
        ]),
      )
    : undefined;
  return {
    env,
    sections,
    stdinText: head.some((l) => /^# Stdin: /.test(l)),
    args: head.some((l) => /^# Arguments: /.test(l)),
  };
}

/** What tools.ts declares, in the header's terms (defaults are TS's own business). */
function declared(spec: ToolSpec): Header {
  const env = Object.fromEntries(
    Object.entries(spec.env).map(([n, i]) => [
      n,
      i.requiredWith ? { presence: "optional", requiredWith: i.requiredWith } : { presence: i.presence },
    ]),
  ) as Record<string, EnvInput>;
  const sections = spec.sections
    ? Object.fromEntries(
        Object.entries(spec.sections).map(([n, s]) => [
          n,
          { presence: s.presence, ...(s.secret ? { secret: true } : {}) },
        ]),
      )
    : undefined;
  return { env, sections, stdinText: spec.stdinText !== undefined, args: spec.args !== undefined };
}

/** The script's code: its lines without comments (a header's names are not uses). */
const code = (name: string) =>
  text(name)
    .split("\n")
    .filter((l) => !/^\s*#/.test(l))
    .join("\n");

// Upper-case names a script reads that are no input of the program's: set by the shell, sudo or
// apt, or read from a file the script sources (acme.conf: components/app/tlsFiles.ts; os-release).
const NOT_INPUTS = new Set([
  "PATH",
  "HOME",
  "SUDO_USER",
  "EPOCHREALTIME",
  "SECONDS",
  "BASH_SOURCE",
  "BASH_REMATCH",
  "PRETTY_NAME",
  "ACME_EMAIL",
  "ACME_DIRECTORY",
  "ACME_CHALLENGE",
  "ACME_DOMAINS",
  "ACME_DNS_PROVIDER",
  "ACME_DNS_RESOLVERS",
  "ACME_DNS_DISABLE_CP",
  "ACME_HTTP_PORT",
]);

/** Upper-case names assigned in the script or in anything it sources (lib.sh, its topics, watch.sh, the routers). */
function assignedNames(name: string): Set<string> {
  const sources = [name, ...sourcedScriptNames()].map(code).join("\n");
  const out = new Set<string>();
  for (const m of sources.matchAll(/(?:^|[\s;({])(?:export |local |declare -gA )?([A-Z][A-Z0-9_]*)=/gm)) out.add(m[1]);
  for (const m of sources.matchAll(/\bread -r(?: -a)? ([A-Z][A-Z0-9_ ]*)/g))
    for (const n of m[1].split(" ")) if (n) out.add(n);
  return out;
}

describe("host tools: components/host/tools.ts and each script's header", () => {
  it("every executable script is declared, and every declaration is a script", () => {
    assert.deepStrictEqual(Object.keys(TOOLS).sort(), executables());
  });

  for (const name of Object.keys(TOOLS) as ToolName[]) {
    describe(name, () => {
      const spec: ToolSpec = TOOLS[name];

      it("the header's inputs, stdin and arguments are the declaration's, both ways", () => {
        const header = parseHeader(name);
        const decl = declared(spec);
        assert.deepStrictEqual(Object.keys(header.env), Object.keys(decl.env), `${name}: env names, in order`);
        assert.deepStrictEqual(header, decl, name);
      });

      it("checks its required inputs at its top, and keeps no default of its own", () => {
        const body = code(name);
        const lines = body.split("\n").filter((l) => l.trim() !== "");
        const must = Object.entries(spec.env).filter(([, i]) => i.presence === "required");
        if (must.length) {
          // The first code after set and the sourced files.
          const first =
            lines.find(
              (l) =>
                !/^(set -euo pipefail|BG_SELF=\$0 .*|\. "\$\{BG_SELF%\/\*\}\/lib\.sh"|\. "\$BG_LIB_DIR\/[a-z-]+\.sh")$/.test(
                  l,
                ),
            ) ?? assert.fail(`${name}: no code`);
          for (const [n] of must)
            assert.ok(first.includes(`"\${${n}:?`) || first.includes(`"\${${n}?`), `${name}: ${first} checks ${n}`);
        }
        for (const [n, i] of Object.entries(spec.env)) {
          if (i.requiredWith) assert.ok(body.includes(`\${${n}:?`), `${name}: checks ${n} when ${i.requiredWith}`);
          // ${X:-value}, ${X-value}, ${X:=value}: a default of the script's own. ${X:-} is "none".
          const fallback = new RegExp(`\\$\\{${n}:?[-=](?!\\})`);
          if (spec.run === "operator") continue;
          assert.ok(!fallback.test(body), `${name}: ${n} has a default in the script: ${fallback.exec(body)?.[0]}`);
          assert.ok(new RegExp(`\\$\\{?${n}\\b`).test(body), `${name}: declares ${n} but never reads it`);
        }
      });

      it("reads no upper-case name that is neither declared, layout.sh's (BG_*), its own, nor the system's", () => {
        const body = code(name);
        const assigned = assignedNames(name);
        const reads = new Set([...body.matchAll(/\$\{?([A-Z][A-Z0-9_]*)(?![a-z])/g)].map((m) => m[1]));
        const stray = [...reads].filter(
          (n) => !(n in spec.env) && !n.startsWith("BG_") && !assigned.has(n) && !NOT_INPUTS.has(n),
        );
        assert.deepStrictEqual(stray, [], `${name} reads undeclared inputs`);
      });
    });
  }

  it("every declared section is one the script (or, for router-config.sh, a router's file) reads", () => {
    const routers = code("router-nginx.sh") + code("router-haproxy.sh");
    for (const [name, spec] of Object.entries(TOOLS) as [ToolName, ToolSpec][])
      for (const s of Object.keys(spec.sections ?? {}))
        assert.match(
          name === "router-config.sh" ? routers : code(name),
          new RegExp(`\\b${s}\\b`),
          `${name}: section ${s}`,
        );
    assert.throws(() => toolStdin("switch.sh", { env: "x" } as never), /switch.sh reads no section env/);
  });
});

describe("host tools: the generated tools installer", () => {
  it("reads only the inputs INSTALLER declares, and checks them", () => {
    const installer = toolsInstallerText(layout);
    const head = installer.slice(0, installer.indexOf("cat > "));
    const reads = new Set([...head.matchAll(/\$\{?([A-Z][A-Z0-9_]*)(?![a-z])/g)].map((m) => m[1]));
    assert.deepStrictEqual([...reads], Object.keys(INSTALLER.env));
    for (const n of Object.keys(INSTALLER.env)) assert.ok(head.includes(`\${${n}:?}`), n);
    assert.strictEqual(installerCommand({ OWNER: "o/p/s/1" }, true), "sudo -n env OWNER=o/p/s/1 bash -s");
  });
});

describe("host tools: tool() builds the command line from the declaration", () => {
  it("the env values go in the declaration's order, and unset optional ones are left out", () => {
    assert.strictEqual(
      tool(
        layout,
        "switch.sh",
        {
          MIN_ERRORS: 5,
          ERROR_PERCENT: 5,
          WATCH_SECONDS: 0,
          VERIFY_TIMEOUT: 15,
          CHECK_PORT: 8082,
          HEALTH_PATH: "/health/ready",
          TARGET: "blue",
          HOOKS: undefined,
        },
        true,
      ),
      "sudo -n env TARGET=blue HEALTH_PATH=/health/ready CHECK_PORT=8082 VERIFY_TIMEOUT=15 WATCH_SECONDS=0 ERROR_PERCENT=5 MIN_ERRORS=5 /usr/local/lib/bluegreen/switch.sh",
    );
    assert.strictEqual(tool(layout, "router-install.sh", {}, false), "/usr/local/lib/bluegreen/router-install.sh");
    assert.strictEqual(
      tool(
        layout,
        "router-config.sh",
        { OWNER: "o/p/s/1", DOMAINS: "", PORTS: "1 2 3 4", BLUE_PORT: 3, GREEN_PORT: 4 },
        false,
      ),
      "env OWNER=o/p/s/1 DOMAINS='' PORTS='1 2 3 4' BLUE_PORT=3 GREEN_PORT=4 /usr/local/lib/bluegreen/router-config.sh",
    );
  });

  it("an undeclared or missing input is refused (the types refuse them at compile time too)", () => {
    const given = {
      TARGET: "blue",
      HEALTH_PATH: "/",
      CHECK_PORT: 1,
      VERIFY_TIMEOUT: 15,
      WATCH_SECONDS: 0,
      ERROR_PERCENT: 5,
      MIN_ERRORS: 5,
    };
    // @ts-expect-error: switch.sh declares no VERIFY
    assert.throws(() => toolVars("switch.sh", { ...given, VERIFY: 3 }), /declares no input VERIFY/);
    // @ts-expect-error: switch.sh needs MIN_ERRORS
    assert.throws(() => toolVars("switch.sh", { ...given, MIN_ERRORS: undefined }), /switch.sh needs MIN_ERRORS/);
    // @ts-expect-error: prune.sh needs PROTECT
    assert.throws(() => toolVars("prune.sh", { KEEP: 3 }), /prune.sh needs PROTECT/);
    assert.throws(() => tool(layout, "wait-ready.sh", { EXPECTED_ARCH: "amd64" }, false), /use stdinScript/);
  });
});
