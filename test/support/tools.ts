// Test helpers for things that need real programs. Missing programs fail loudly:
// CI installs them, and a test that silently skips proves nothing.
import { execFileSync, spawnSync } from "child_process";

export function requireTool(name: string, installHint = `apt-get install -y ${name}`): void {
  const r = spawnSync("sh", ["-c", `command -v ${name}`]);
  if (r.status !== 0) throw new Error(`${name} is required for this test and is not installed (${installHint})`);
}

export function run(cmd: string, args: string[], opts: { input?: string; cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(cmd, args, { encoding: "utf8", input: opts.input, cwd: opts.cwd, env: opts.env ?? process.env });
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

export function sh(script: string, env?: NodeJS.ProcessEnv): string {
  return execFileSync("bash", ["-c", script], { encoding: "utf8", env: env ?? process.env });
}
