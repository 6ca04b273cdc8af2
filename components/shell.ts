import * as fs from "fs";
import * as path from "path";
import { AppLayout } from "./layout";

const SCRIPTS_DIR = path.join(__dirname, "scripts");

/** The text of a script in components/scripts, read at program run time. */
export function loadScript(name: string): string {
  return fs.readFileSync(path.join(SCRIPTS_DIR, name), "utf8");
}

/** Names of the scripts that are installed on the host (everything but local-*). */
export function hostScriptNames(): string[] {
  return fs
    .readdirSync(SCRIPTS_DIR)
    .filter((f) => f.endsWith(".sh") && !f.startsWith("local-"))
    .sort();
}

const SAFE = /^[A-Za-z0-9_/.:@%+=,-]+$/;

/** Quotes a value for a POSIX shell word; plain values stay readable in diffs. */
export function shellQuote(value: string): string {
  return SAFE.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

export type ShellVars = Record<string, string | number>;

function envPrefix(vars: ShellVars): string {
  const words = Object.entries(vars).map(([k, v]) => `${k}=${shellQuote(String(v))}`);
  return words.length ? `env ${words.join(" ")} ` : "";
}

/**
 * A command line that runs an installed host tool with values as an inline
 * `env K=V` prefix (not `environment`, which needs sshd AcceptEnv). Secrets
 * never go here: they travel on stdin.
 */
export function toolCommand(L: AppLayout, tool: string, vars: ShellVars, sudo: boolean): string {
  return `${sudo ? "sudo -n " : ""}${envPrefix(vars)}${L.toolsDir}/${tool}`;
}

/** A command line that runs a script sent on stdin (used before the tools are installed). */
export function stdinScriptCommand(vars: ShellVars, sudo: boolean): string {
  return `${sudo ? "sudo -n " : ""}${envPrefix(vars)}bash -s`;
}
