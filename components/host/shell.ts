import * as fs from "fs";
import * as path from "path";
import { AppLayout } from "./layout";

/** components/scripts: one folder a topic in the repository; one flat tools folder on the host. */
export const SCRIPTS_DIR = path.join(__dirname, "..", "scripts");

let found: ReadonlyMap<string, string> | undefined;
/** Every script's name (unique across the topic folders) and its path in the repository. */
export function scriptPaths(): ReadonlyMap<string, string> {
  if (found) return found;
  const paths = new Map<string, string>();
  for (const topic of fs.readdirSync(SCRIPTS_DIR).sort()) {
    for (const name of fs.readdirSync(path.join(SCRIPTS_DIR, topic)).filter((f) => f.endsWith(".sh"))) {
      if (paths.has(name)) throw new Error(`components/scripts: ${name} is in two topic folders`);
      paths.set(name, path.join(SCRIPTS_DIR, topic, name));
    }
  }
  return (found = paths);
}

/** The text of a script in components/scripts/<topic>/, read at program run time. */
export function loadScript(name: string): string {
  const file = scriptPaths().get(name);
  if (!file) throw new Error(`components/scripts has no ${name}`);
  return fs.readFileSync(file, "utf8");
}

/**
 * lib.sh first, then the topic files it sources (components/scripts/lib/*.sh): sourced by
 * every host tool, never run. Whatever installs lib.sh installs these beside it.
 */
export function libScriptNames(): string[] {
  const lib = path.join(SCRIPTS_DIR, "lib");
  const names = [...scriptPaths()].filter(([, file]) => path.dirname(file) === lib).map(([name]) => name);
  return ["lib.sh", ...names.filter((n) => n !== "lib.sh").sort()];
}

/** The scripts that are sourced, never run: lib.sh and its topics, watch.sh, phases.sh and each router's file. */
export function sourcedScriptNames(): ReadonlySet<string> {
  return new Set([...libScriptNames(), "watch.sh", "phases.sh", "router-nginx.sh", "router-haproxy.sh"]);
}

/**
 * Names of the scripts that are installed on the host (everything but local-*), in the order
 * the installer writes them (one rename each): lib.sh's topic files before lib.sh, so a tool
 * that starts while the tools are replaced never finds a lib.sh whose topics are not there yet.
 */
export function hostScriptNames(): string[] {
  const [lib, ...topics] = libScriptNames();
  const rest = [...scriptPaths().keys()].filter((f) => !f.startsWith("local-") && f !== lib && !topics.includes(f));
  return [...topics, lib, ...rest.sort()];
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

/** The first line of every file bluegreen writes on a host. */
export const MANAGED = "# Managed by bluegreen (Pulumi). Local edits are overwritten on the next `pulumi up`.";

/**
 * Several files on one stdin, which host scripts split with read_sections (lib.sh):
 * a slot's unit, env file (may hold secrets) and artifact URL (may hold a token);
 * the tls step's settings, credentials and certificate. Sections start with a line
 * `#bluegreen-section NAME`; no section may contain that line. Undefined sections
 * are left out.
 */
export function renderBundle(sections: Readonly<Record<string, string | undefined>>): string {
  const out: string[] = [];
  for (const [name, text] of Object.entries(sections)) {
    if (text === undefined) continue;
    if (text.split("\n").some((l) => l.startsWith(SECTION)))
      throw new Error(`the ${name} section contains the section marker`);
    out.push(`${SECTION} ${name}`, text.endsWith("\n") ? text.slice(0, -1) : text);
  }
  return out.join("\n") + "\n";
}
const SECTION = "#bluegreen-section";
