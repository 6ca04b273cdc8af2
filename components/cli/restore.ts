// npm run restore: puts a backup or snapshot of the app's databases back, with the host's own
// command (bluegreen-restore over SSH: maintenance on, both slots stopped, the backup checked and
// put back, the slots started, maintenance off), or lists the backups (bluegreen-backup list).
import { openStack, outputs, stringOutput } from "./pulumi";
import { Stop } from "./say";
import { parseStatusCommand, sshInteractive } from "./ssh";

export interface RestoreOptions {
  readonly stack?: string;
  /** A backup id, or "latest"; undefined with list. */
  readonly id?: string;
  /** Fetch it from the off-host remote (or list the remote's). */
  readonly remote: boolean;
  readonly list: boolean;
}

/** What a backup id looks like (bluegreen-backup list): its UTC time and its kind. */
export const BACKUP_ID_RE = /^(latest|[0-9]{8}T[0-9]{6}Z-[a-z-]+(-[0-9]+)?)$/;

export async function restore(o: RestoreOptions): Promise<void> {
  const stack = await openStack(o.stack);
  const tool = parseStatusCommand(stringOutput(await outputs(stack), "statusCommand", stack.name));
  const sbin = tool.statusPath.replace(/-status$/, "");
  const remote = o.remote ? ["--remote"] : [];
  let args: string[];
  if (o.list) args = [`${sbin}-backup`, "list", ...remote];
  else if (o.id !== undefined) args = [`${sbin}-restore`, ...remote, o.id];
  else throw new Stop("say which backup to restore (an id from npm run restore -- --list, or latest)");
  const code = await sshInteractive(tool, args);
  if (code !== 0) process.exitCode = code;
}
