import { execFileSync } from "child_process";
import * as path from "path";
import { Arch, Artifact, ConfigError, sha256File } from "./config";
import { Color } from "./layout";

export type ResolvedArtifact = Exclude<Artifact, { kind: "build" }>;

/** Where a "build" artifact for a version lands, relative to the project directory. */
export function buildOutputPath(projectDir: string, version: string, arch: Arch): string {
  return path.join(projectDir, "dist", "releases", version, `app-linux-${arch}`);
}

/**
 * Turns a "build" artifact into a file by building the demo app in app/ for
 * this version. The build is reproducible, so an unchanged source gives the
 * same sha256 and nothing is uploaded again.
 */
export function resolveArtifact(
  color: Color,
  version: string,
  artifact: Artifact,
  arch: Arch,
  projectDir = process.cwd(),
): ResolvedArtifact {
  if (artifact.kind !== "build") return artifact;
  const out = buildOutputPath(projectDir, version, arch);
  try {
    execFileSync("bash", [path.join(projectDir, "app", "build.sh"), version, arch, out], {
      stdio: ["ignore", "ignore", "pipe"],
    });
  } catch (e) {
    const stderr = (e as { stderr?: Buffer }).stderr?.toString().trim() ?? String(e);
    throw new ConfigError([
      `bluegreen:${color}Artifact is "build" but building app/ for ${version} (linux/${arch}) failed: ${stderr}. ` +
        `Install Go, or set ${color}Artifact to a file path or an https URL with ${color}Sha256`,
    ]);
  }
  return { kind: "file", path: out, sha256: sha256File(out) };
}
