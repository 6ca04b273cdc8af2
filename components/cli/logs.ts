// npm run logs: the slots' journal on the host, journalctl -u <ns>@<colour> over SSH.
import { openStack, outputs, stringOutput } from "./pulumi";
import { Stop } from "./say";
import { HostTool, parseStatusCommand, sshCapture, sshInteractive, trustStackHostKey } from "./ssh";

export interface LogsOptions {
  readonly stack?: string;
  /** A slot, or live/idle as the host's live link says; both slots when undefined. */
  readonly which?: "blue" | "green" | "live" | "idle";
  readonly follow: boolean;
  readonly lines?: string;
}

/** The colour the host's live link serves (bluegreen-status live). */
function hostLive(tool: HostTool): "blue" | "green" {
  const r = sshCapture(tool, [tool.statusPath, "live"]);
  const color = r.stdout?.trim();
  if (color === "blue" || color === "green") return color;
  throw new Stop(
    `could not ask the host which slot is live (${tool.statusPath} live): ${r.error?.message ?? (r.stderr.trim() || `got "${color}"`)}`,
  );
}

export async function logs(o: LogsOptions): Promise<void> {
  const stack = await openStack(o.stack);
  const out = await outputs(stack);
  trustStackHostKey(out);
  const tool = parseStatusCommand(stringOutput(out, "statusCommand", stack.name));
  let colors: string[] = ["blue", "green"];
  if (o.which === "blue" || o.which === "green") colors = [o.which];
  else if (o.which) {
    const live = hostLive(tool);
    colors = [o.which === "live" ? live : live === "blue" ? "green" : "blue"];
  }
  const args = ["journalctl", "--no-pager", ...colors.flatMap((c) => ["-u", `${tool.ns}@${c}`])];
  if (o.lines !== undefined) args.push("-n", o.lines);
  if (o.follow) args.push("-f");
  const code = await sshInteractive(tool, args);
  if (code !== 0) process.exitCode = code;
}
