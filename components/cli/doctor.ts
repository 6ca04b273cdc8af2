// npm run doctor [-- --stack NAME]: what this machine still needs before `pulumi up`, each
// missing thing with what to install or set. Exit 0 when all is in place, 1 otherwise.
import { spawnSync } from "child_process";
import * as os from "os";
import * as path from "path";
import { parseArgs } from "util";
import { Check, diagnose } from "./doctorChecks";

const USAGE = `usage: npm run doctor [-- --stack NAME]

Checks, without running Pulumi's engine: node, the pulumi CLI, the stack's file and backend,
the secrets passphrase, the tools the host kind needs (multipass, a Hetzner token, an ssh host),
the architecture, Go for the default build, and the SSH key.

  --stack NAME   the stack to check (default: dev, or $PULUMI_STACK)
  -h, --help     this text`;

/** The report: a line a check, then what to do for each failure, then the verdict. */
export function report(checks: readonly Check[]): string {
  const lines = checks.map((c) => `${c.ok ? "ok  " : "FAIL"} ${c.what}${c.ok ? "" : `\n       -> ${c.fix}`}`);
  const failed = checks.filter((c) => !c.ok).length;
  lines.push(failed ? `${failed} to fix before pulumi up` : "ready: npx pulumi up");
  return lines.join("\n");
}

function main(argv: string[]): number {
  let values: { stack?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { stack: { type: "string" }, help: { type: "boolean", short: "h" } },
      strict: true,
    }));
  } catch (e) {
    console.error(`doctor: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const checks = diagnose({
    root: path.resolve(__dirname, "..", ".."),
    stack: values.stack ?? process.env.PULUMI_STACK ?? "dev",
    env: process.env,
    run: (cmd, args) => {
      const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 30_000 });
      return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? (r.error?.message || "") };
    },
    arch: os.arch(),
    nodeVersion: process.version,
  });
  console.log(report(checks));
  return checks.every((c) => c.ok) ? 0 : 1;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
