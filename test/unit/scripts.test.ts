import * as assert from "assert";
import { spawn } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as net from "net";
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
      // readlink -f, only for a symlink: a tool reached through one (bluegreen-status) still
      // finds lib.sh, and any other runs no program for it (two forks and two execs saved).
      assert.ok(
        text.includes(
          "\nset -euo pipefail\n# lib.sh is beside this file: a symlink to it (bluegreen-status) is resolved; no program runs otherwise.\n" +
            'BG_SELF=$0 && { [[ $0 == */* ]] || BG_SELF=./$0; } && { [ ! -L "$0" ] || BG_SELF=$(readlink -f "$0"); }\n' +
            '# shellcheck source=/dev/null\n. "${BG_SELF%/*}/lib.sh"\n',
        ),
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

describe("host-script helpers (bash, real coreutils)", () => {
  const inDir = (code: string) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bg-helpers-"));
    try {
      fs.mkdirSync(path.join(dir, "a"));
      fs.mkdirSync(path.join(dir, "b"));
      return run("bash", ["-c", `set -euo pipefail; . ${script("state.sh")}; cd ${dir}; ${code}`]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };

  it("atomic_link replaces a link with one rename: a reader racing 600 replacements never finds it missing", () => {
    // GNU ln -sfn (coreutils >= 8.27) makes the new link under a temporary name and renames it over the old.
    const r = inDir(`
      atomic_link a L
      ( n=0 seen=0; while [ ! -e stop ]; do seen=$((seen + 1)); [ -L L ] || n=$((n + 1)); done; echo "$n $seen" >reader ) &
      for i in $(seq 300); do atomic_link b L; atomic_link a L; done
      : >stop; wait; cat reader; readlink L`);
    assert.strictEqual(r.status, 0, r.stderr);
    const [misses, seen] = r.stdout.split("\n")[0].split(" ").map(Number);
    assert.strictEqual(misses, 0, r.stdout);
    assert.ok(seen > 1000, `the reader ran alongside: ${seen} reads`);
    assert.strictEqual(r.stdout.split("\n")[1], "a");
  });

  it("atomic_link refuses a directory that is not a link (ln would put the link inside it)", () => {
    const r = inDir("mkdir L; if atomic_link a L; then echo linked; else echo refused; fi; ls L | wc -l");
    assert.strictEqual(r.stdout, "refused\n0\n", r.stderr);
  });

  /** bash with http.sh sourced, run without blocking this process (its own servers must answer). */
  const httpBash = (code: string) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const c = spawn("bash", ["-c", `set -euo pipefail; . ${script("http.sh")}; ${code}`]);
      let stdout = "";
      let stderr = "";
      c.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      c.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      c.on("close", (status) => resolve({ status, stdout, stderr }));
    });

  it("http_get: the status and headers (any case), the request header it was given; bash alone", async () => {
    const seen: http.IncomingHttpHeaders[] = [];
    const server = http.createServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(503, { "X-Bluegreen-Color": "green", "x-bluegreen-slot": "green" });
      res.end("not ready\n");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const r = await httpBash(
        `http_get ${port} /health/ready 3 "X-Bluegreen-Slot: green"; http_header c X-BLUEGREEN-COLOR; ` +
          'http_header s x-bluegreen-slot; http_header n X-None; echo "$HTTP_STATUS $c $s [$n]"; echo done >&2',
      );
      assert.strictEqual(r.stdout, "503 green green []\n");
      // Its stderr still works after it: nothing it did redirected the script's own.
      assert.strictEqual(r.stderr, "done\n");
      assert.strictEqual(seen.length, 1);
      assert.strictEqual(seen[0]["x-bluegreen-slot"], "green");
      assert.strictEqual(seen[0].connection, "close");
    } finally {
      server.close();
    }
  });

  it("http_get: a listener that accepts nothing holds it for its timeout, no longer (bash's connect has no timeout of its own)", async () => {
    const server = net.createServer((c) => c.destroy());
    await new Promise<void>((r) => server.listen({ port: 0, host: "127.0.0.1", backlog: 1 }, r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      // While bash runs (spawnSync) this process accepts nothing: bash's first two connections
      // fill the queue (backlog 1), and the kernel drops the SYN of http_get's. Without the
      // guard that connect would wait about 2 minutes: `timeout 10` ends the test sooner.
      const r = run("timeout", [
        "10",
        "bash",
        "-c",
        `. ${script("http.sh")}; exec 3<>/dev/tcp/127.0.0.1/${port} 4<>/dev/tcp/127.0.0.1/${port}; s=\${EPOCHREALTIME/./}; ` +
          `if http_get ${port} / 2; then echo answered; else echo "no answer after $(((\${EPOCHREALTIME/./} - s) / 100000))"; fi; ` +
          "http_get 1 / 2 || echo refused; sleep 2.5; echo alive",
      ]);
      assert.strictEqual(r.status, 0, `bash was stopped by timeout: ${r.stdout}${r.stderr}`);
      assert.strictEqual(r.stdout, "no answer after 20\nrefused\nalive\n", r.stderr);
    } finally {
      server.close();
    }
  });

  it("a tool's header finds lib.sh run by its path, by a relative name, and through a symlink elsewhere", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bg-header-"));
    try {
      fs.mkdirSync(path.join(dir, "tools"));
      fs.mkdirSync(path.join(dir, "bin"));
      const header = fs.readFileSync(script("switch.sh"), "utf8").split("\n");
      const at = header.indexOf("set -euo pipefail");
      fs.writeFileSync(path.join(dir, "tools", "lib.sh"), 'echo "lib from ${BASH_SOURCE[0]%/*}"\n');
      fs.writeFileSync(path.join(dir, "tools", "tool.sh"), [header[0], ...header.slice(at, at + 5), ""].join("\n"), {
        mode: 0o755,
      });
      fs.symlinkSync(path.join(dir, "tools", "tool.sh"), path.join(dir, "bin", "tool"));
      const out = (cmd: string) => run("bash", ["-c", `cd ${dir}/tools && ${cmd}`]).stdout.trim();
      assert.strictEqual(out(`${dir}/tools/tool.sh`), `lib from ${dir}/tools`);
      assert.strictEqual(out("bash tool.sh"), "lib from .");
      assert.strictEqual(out("./tool.sh"), "lib from .");
      assert.strictEqual(out(`${dir}/bin/tool`), `lib from ${dir}/tools`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
