import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { Arch, Artifact, BluegreenConfig, ConfigError, isGzip, sha256File } from "../config/config";
import { Color, COLORS } from "../host/layout";

export type ResolvedArtifact = Exclude<Artifact, { kind: "build" }>;

/**
 * Where a "build" artifact for a version lands, relative to the project directory. Apps
 * built from one project directory (one stack each) keep their builds apart.
 */
export function buildOutputPath(projectDir: string, app: string, version: string, arch: Arch): string {
  return path.join(projectDir, "dist", "releases", app, version, `app-linux-${arch}`);
}

export interface BuildOptions {
  /** Shell text run with bash in the project directory (config key buildCommand). */
  readonly command: string;
  readonly projectDir: string;
  /** The app's name (appName): its builds are its own. */
  readonly app: string;
}

/**
 * The environment a build gets: the user's, without what could unlock the stack or a cloud
 * account (a build runs third-party code, such as npm install scripts).
 */
export function buildEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const secretish = /^(PULUMI_|AWS_|ARM_|AZURE_|GOOGLE_|HCLOUD_|DIGITALOCEAN_)|TOKEN|SECRET|PASSWORD|PASSPHRASE|_KEY$/i;
  return Object.fromEntries(Object.entries(env).filter(([k]) => !secretish.test(k)));
}

/** Builds already resolved in this run, by output path: blue and green of one version build once. */
const built = new Map<string, ResolvedArtifact>();

/**
 * Turns a "build" artifact into a file by running buildCommand for this version.
 *
 * A version is built once per machine: its output and sha256 stay in
 * dist/releases/VERSION/, and a later run (for instance the one that deploys the
 * next version to the other slot) reuses them instead of building the old version
 * from newer source. The first build of a version runs twice and the two outputs
 * must be identical: the host stores each version once and refuses the same version
 * with another sha256, so a non-reproducible build would otherwise fail only later,
 * on the machine that rebuilds it.
 */
export function resolveArtifact(
  color: Color,
  version: string,
  artifact: Artifact,
  arch: Arch,
  build: BuildOptions,
): ResolvedArtifact {
  if (artifact.kind !== "build") return artifact;
  const out = buildOutputPath(build.projectDir, build.app, version, arch);
  const done = built.get(out);
  if (done) return done;
  const record = `${out}.sha256`;
  const dir = path.relative(build.projectDir, path.dirname(out));
  const k = `bluegreen:${color}Artifact`;
  const commandHash = crypto.createHash("sha256").update(build.command).digest("hex").slice(0, 16);
  let sha: string;
  if (fs.existsSync(out) && fs.existsSync(record)) {
    const [recorded = "", recordedCommand = ""] = fs.readFileSync(record, "utf8").trim().split(/\s+/);
    sha = recorded;
    if (recordedCommand !== commandHash)
      throw new ConfigError([
        `bluegreen:buildCommand changed since ${version} was built here (${dir}/). A version is immutable on the host, so build the new way under a new version (pulumi config set ${color}Version ...), or delete ${dir}/ if ${version} never reached a host`,
      ]);
    const actual = sha256File(out);
    if (actual !== sha)
      throw new ConfigError([
        `${k}: ${path.relative(build.projectDir, out)} (built earlier for ${version}) has sha256 ${actual}, but its build recorded ${sha}; ` +
          `delete ${dir}/ to build it again`,
      ]);
  } else {
    // Each build writes its own file, then the first is renamed into place: two runs at once
    // (a preview beside an up) never read each other's half-written output.
    const tag = `${process.pid}-${Date.now()}`;
    const [a, b] = [`${out}.build-${tag}-1`, `${out}.build-${tag}-2`];
    runBuild(k, version, arch, a, build);
    const first = sha256File(a);
    runBuild(k, version, arch, b, build);
    const second = sha256File(b);
    fs.rmSync(b, { force: true });
    if (first !== second) {
      fs.rmSync(a, { force: true });
      throw new ConfigError([
        `${k} is "build", but bluegreen:buildCommand is not reproducible: two builds of ${version} from the same source gave sha256 ${first} and ${second}. ` +
          `The host stores each version once and refuses ${version} with another sha256, so this build would fail on the next machine or run that builds ${version} again. ` +
          `Make the output depend on the source only: for a tarball, tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner | gzip -n; ` +
          `for Go, -trimpath -buildvcs=false; set SOURCE_DATE_EPOCH for tools that stamp the time`,
      ]);
    }
    sha = first;
    fs.renameSync(a, out);
    // The record is renamed into place too: a run beside this one never reads half of it.
    fs.writeFileSync(`${record}.${tag}`, `${sha} ${commandHash}\n`);
    fs.renameSync(`${record}.${tag}`, record);
  }
  const resolved: ResolvedArtifact = { kind: "file", path: out, sha256: sha, bundle: isGzip(out) };
  built.set(out, resolved);
  return resolved;
}

function runBuild(k: string, version: string, arch: Arch, out: string, build: BuildOptions): void {
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.rmSync(out, { force: true });
  const r = spawnSync("bash", ["-c", build.command], {
    cwd: build.projectDir,
    env: { ...buildEnv(process.env), BLUEGREEN_VERSION: version, BLUEGREEN_ARCH: arch, BLUEGREEN_OUT: out },
    stdio: ["ignore", "ignore", "pipe"],
    encoding: "utf8",
  });
  const why = r.error ? r.error.message : (r.stderr || "").trim().split("\n").slice(-15).join("\n");
  if (r.status !== 0)
    throw new ConfigError([
      `${k} is "build", but bluegreen:buildCommand failed for ${version} (linux/${arch}) with exit ${r.status ?? r.signal}: ${why || "(no output)"}`,
    ]);
  if (!fs.existsSync(out) || !fs.statSync(out).isFile())
    throw new ConfigError([
      `${k} is "build", but bluegreen:buildCommand exited 0 without writing $BLUEGREEN_OUT (${out}): it must write the executable or the .tar.gz bundle there`,
    ]);
}

/** Both slots' artifacts, built where needed; a bundle needs appCommand to say how it starts. */
export function resolveArtifacts(
  cfg: Pick<BluegreenConfig, "slots" | "arch" | "app" | "buildCommand" | "appName">,
  projectDir = process.cwd(),
): Record<Color, ResolvedArtifact> {
  const out = {} as Record<Color, ResolvedArtifact>;
  for (const c of COLORS) {
    const s = cfg.slots[c];
    out[c] = resolveArtifact(c, s.version, s.artifact, cfg.arch, {
      command: cfg.buildCommand,
      projectDir,
      app: cfg.appName,
    });
    if (out[c].bundle && !cfg.app.command && s.artifact.kind === "build")
      throw new ConfigError([
        `bluegreen:appCommand is required: bluegreen:buildCommand made a .tar.gz bundle for ${s.version} (${c}), and appCommand says how a release starts, run from its directory, e.g. pulumi config set appCommand "node server.js"`,
      ]);
  }
  return out;
}
