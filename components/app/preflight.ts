// What must hold on the machine that runs `pulumi up` before any resource exists: the tools
// the host kind and the builds need, and then the builds themselves. The stack program runs it
// before it makes the Host, so a missing tool or a failed build stops the update before a VM
// or a server is made (a program that throws after registering a resource may still see the
// engine create it). `npm run doctor` makes the same checks, and more, without running Pulumi.
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { BluegreenConfig, ConfigError, DEFAULTS } from "../config";
import { Color, COLORS } from "../host/layout";
import { buildOutputPath, ResolvedArtifact, resolveArtifacts } from "./artifact";

/** The first executable called `name` on PATH, or undefined. */
export function onPath(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of (env.PATH ?? "").split(path.delimiter).filter(Boolean)) {
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (fs.statSync(file).isFile()) return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

type Preflight = Pick<BluegreenConfig, "host" | "slots" | "buildCommand" | "appName" | "arch">;

export interface Missing {
  /** Needed only by `pulumi up` (the VM's launch runs there); a preview can go on without it. */
  readonly upOnly: boolean;
  readonly problem: string;
}

/** The local tools this config needs that are missing, each as the error that says what to install. */
export function missingTools(
  cfg: Preflight,
  env: NodeJS.ProcessEnv = process.env,
  projectDir = process.cwd(),
): Missing[] {
  const problems: Missing[] = [];
  if (cfg.host.kind === "multipass" && !onPath("multipass", env))
    problems.push({
      upOnly: true,
      problem:
        'bluegreen:hostKind is "multipass", but the multipass command is not on PATH: install it (https://canonical.com/multipass/install; Ubuntu: sudo snap install multipass), or set hostKind to ssh or hetzner',
    });
  // A version built here before is reused (dist/releases), and needs no compiler.
  const recorded = (c: Color) =>
    fs.existsSync(`${buildOutputPath(projectDir, cfg.appName, cfg.slots[c].version, cfg.arch)}.sha256`);
  const builds = COLORS.filter((c) => cfg.slots[c].artifact.kind === "build" && !recorded(c));
  if (builds.length && cfg.buildCommand === DEFAULTS.buildCommand && !onPath("go", env))
    problems.push({
      upOnly: false,
      problem: `bluegreen:${builds[0]}Artifact is "build", and the default bluegreen:buildCommand builds the demo app in app/ with Go, but go is not on PATH: install Go (https://go.dev/doc/install; Debian/Ubuntu: sudo apt install golang-go), or set ${builds.map((c) => `${c}Artifact`).join(" and ")} to a file or an https:// URL, or buildCommand to your own build`,
    });
  return problems;
}

/**
 * Checks the local tools, then builds what is to be built. Throws a ConfigError (every missing
 * tool at once) before anything is registered; returns both slots' artifacts for BlueGreenApp.
 */
export function preflight(
  cfg: Preflight & Parameters<typeof resolveArtifacts>[0],
  env: NodeJS.ProcessEnv = process.env,
): Record<Color, ResolvedArtifact> {
  // A preview builds too (the plan shows the artifacts' hashes), but launches no VM: it can go on
  // without multipass, with a warning, where a reviewer or a CI runner has none.
  const missing = missingTools(cfg, env);
  const fatal = missing.filter((m) => !m.upOnly || !pulumi.runtime.isDryRun()).map((m) => m.problem);
  for (const m of missing.filter((x) => x.upOnly && pulumi.runtime.isDryRun()))
    void pulumi.log.warn(`${m.problem} (pulumi up will stop here)`);
  if (fatal.length) throw new ConfigError(fatal);
  return resolveArtifacts(cfg);
}
