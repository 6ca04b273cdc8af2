// npm run status: the stack's view (deployed colour and versions, config not yet
// deployed) and the host's own (bluegreen-status over SSH, --json for one object).
import { Stack } from "@pulumi/pulumi/automation";
import { configGet, openStack, outputs, stringOutput } from "./pulumi";
import { say } from "./say";
import { disagreeing, fleetLines, hostReports } from "./fleetStatus";
import { parseStatusCommand, sshCapture, stackHosts, trustStackHostKey } from "./ssh";

/** Config keys the last up exported under the same name: a difference is a staged change. */
const TRACKED = ["active", "blueVersion", "greenVersion", "maintenance"] as const;

export interface StatusOptions {
  readonly stack?: string;
  readonly json: boolean;
}

interface Staged {
  readonly key: string;
  readonly config: string | undefined;
  readonly deployed: string | undefined;
}

async function staged(stack: Stack, out: Record<string, unknown>): Promise<Staged[]> {
  const changes: Staged[] = [];
  for (const key of TRACKED) {
    const config = await configGet(stack, key);
    const v = out[key];
    const deployed = v === undefined ? undefined : typeof v === "string" ? v : JSON.stringify(v);
    // An unset key takes its default, which the last up exported.
    if (config !== undefined && config !== deployed) changes.push({ key, config, deployed });
  }
  return changes;
}

export async function status(o: StatusOptions): Promise<void> {
  const stack = await openStack(o.stack);
  const out = await outputs(stack);
  trustStackHostKey(out);
  const active = stringOutput(out, "active", stack.name);
  const changes = await staged(stack, out);
  const tool = parseStatusCommand(stringOutput(out, "statusCommand", stack.name));
  if (Object.keys(stackHosts(out)).length) return fleetStatus(stack.name, out, tool, active, changes, o.json);
  const host = sshCapture(tool, [tool.statusPath, ...(o.json ? ["--json"] : [])]);
  const hostError =
    host.error?.message ?? (host.status === 0 ? undefined : host.stderr.trim() || `ssh exited with ${host.status}`);
  const deployed = {
    active,
    blueVersion: out.blueVersion,
    greenVersion: out.greenVersion,
    maintenance: out.maintenance,
  };
  if (o.json) {
    let report: unknown = null;
    if (!hostError) report = JSON.parse(host.stdout) as unknown;
    console.log(
      JSON.stringify(
        { stack: stack.name, url: out.url, deployed, staged: changes, host: report, hostError: hostError ?? null },
        null,
        2,
      ),
    );
  } else {
    const versions = `blue ${String(out.blueVersion)}, green ${String(out.greenVersion)}`;
    say(`stack ${stack.name}: live ${active} (${String(out[`${active}Version`])}); ${versions}; ${String(out.url)}`);
    if (changes.length === 0) say("staged: nothing (config matches the last pulumi up)");
    for (const c of changes)
      say(`staged: ${c.key}=${c.config} (the last pulumi up has ${c.deployed ?? "none"}); pulumi up applies it`);
    say(`host (${tool.statusPath} on ${tool.login}):`);
    process.stdout.write(host.stdout ?? "");
    if (hostError) say(`the host did not answer: ${hostError}`);
  }
  if (hostError) process.exitCode = 1;
}

/** Several hosts: every host's live colour and versions, and whether they agree. */
function fleetStatus(
  stack: string,
  out: Record<string, unknown>,
  tool: ReturnType<typeof parseStatusCommand>,
  active: string,
  changes: Staged[],
  json: boolean,
): void {
  const reports = hostReports(tool, out);
  const bad = disagreeing(reports, active, out);
  if (json) {
    const deployed = {
      active,
      blueVersion: out.blueVersion,
      greenVersion: out.greenVersion,
      maintenance: out.maintenance,
    };
    console.log(
      JSON.stringify({ stack, url: out.url, deployed, staged: changes, hosts: reports, disagree: bad }, null, 2),
    );
  } else {
    say(
      `stack ${stack}: live ${active} (${String(out[`${active}Version`])}) on ${reports.length} hosts; ${String(out.url)}`,
    );
    for (const c of changes)
      say(`staged: ${c.key}=${c.config} (the last pulumi up has ${c.deployed ?? "none"}); pulumi up applies it`);
    for (const l of fleetLines(reports, bad, active, stack)) say(l);
  }
  if (bad.length) process.exitCode = 1;
}
