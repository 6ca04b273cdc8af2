// npm run status with several hosts: each host's own report (bluegreen-status --json over SSH),
// and whether they agree with each other and with the last pulumi up. A host that disagrees is
// named, with the command that makes every host agree again.
import { HostTool, sshCapture, stackHosts } from "./ssh";

export interface HostReport {
  readonly name: string;
  readonly live?: string;
  readonly versions?: Record<string, string | null>;
  readonly error?: string;
}

/** Each host's report, asked over SSH with the login of statusCommand and the host's own address. */
export function hostReports(tool: HostTool, outputs: Record<string, unknown>): HostReport[] {
  return Object.entries(stackHosts(outputs)).map(([name, h]) => {
    const r = sshCapture({ ...tool, login: `${tool.login.split("@")[0]}@${h.ip}` }, [tool.statusPath, "--json"]);
    if (r.error || r.status !== 0)
      return { name, error: r.error?.message ?? (r.stderr.trim() || `ssh exited with ${r.status}`) };
    const j = JSON.parse(r.stdout) as { live?: string; slots?: Record<string, { version?: string | null }> };
    const versions = Object.fromEntries(Object.entries(j.slots ?? {}).map(([c, s]) => [c, s.version ?? null]));
    return { name, live: j.live, versions };
  });
}

/** The hosts that do not serve what the last pulumi up made live, or could not say. */
export function disagreeing(
  reports: readonly HostReport[],
  active: string,
  versions: Record<string, unknown>,
): string[] {
  return reports
    .filter(
      (r) => r.error || r.live !== active || ["blue", "green"].some((c) => r.versions?.[c] !== versions[`${c}Version`]),
    )
    .map((r) => r.name);
}

/** The command that runs the coordinated switch again, so every host ends on `active`. */
export const fixCommand = (stack: string) =>
  `npx pulumi up --stack ${stack} --replace "$(npx pulumi stack --stack ${stack} --show-urns | grep -o 'urn:[^ ]*::switch-hosts')"`;

/** The report's lines: one per host, then whether they agree. */
export function fleetLines(
  reports: readonly HostReport[],
  bad: readonly string[],
  active: string,
  stack: string,
): string[] {
  const lines = reports.map((r) =>
    r.error
      ? `host ${r.name}: did not answer: ${r.error}`
      : `host ${r.name}: live ${r.live ?? "none"}; blue ${r.versions?.blue ?? "none"}, green ${r.versions?.green ?? "none"}${bad.includes(r.name) ? "  <- disagrees" : ""}`,
  );
  if (bad.length === 0) return [...lines, `every host serves ${active}, as the last pulumi up made it`];
  return [
    ...lines,
    `${bad.join(", ")} ${bad.length === 1 ? "does" : "do"} not serve what the last pulumi up made live (${active}): ${fixCommand(stack)}`,
  ];
}
