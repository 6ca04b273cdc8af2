// What each slot runs: its version and artifact (built here, a local file, or an https URL
// with its sha256), and how builds and bundles are made.

import * as fs from "fs";
import * as path from "path";
import { Color, COLORS } from "../host/layout";
import { isGzip, sha256File } from "./files";
import { key, q, Reader } from "./reader";
import { Artifact } from "./types";

/** A release bundle is a gzip'd tar, named .tar.gz or .tgz; anything else is one executable. */
export const BUNDLE_RE = /\.(tar\.gz|tgz)$/i;

const VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;
const SHA256_RE = /^[0-9a-f]{64}$/;

export function readVersion(r: Reader, color: Color): string {
  const k = `${color}Version` as const;
  const v = r.raw(k);
  if (v === undefined) {
    r.problem(`${key(k)} is required: pulumi config set ${k} v1`);
    return "";
  }
  return r.matches(k, v, VERSION_RE, "1-64 letters, digits, '.', '_', '+' or '-', starting with a letter or digit");
}

export function readArtifact(r: Reader, color: Color): Artifact {
  const k = `${color}Artifact` as const;
  const shaKey = `${color}Sha256` as const;
  const value = r.str(k);
  const sha = r.raw(shaKey)?.toLowerCase();
  if (sha !== undefined && !SHA256_RE.test(sha)) {
    r.problem(`${key(shaKey)} must be 64 hexadecimal characters (got ${q(r.raw(shaKey))})`);
  }
  if (value === "build") {
    if (sha !== undefined) r.problem(`${key(shaKey)} applies only to file or https artifacts; ${key(k)} is "build"`);
    return { kind: "build" };
  }
  if (/^[a-z]+:\/\//i.test(value)) {
    if (!/^https:\/\/[^\s'"`$\\]+$/.test(value)) {
      r.problem(`${key(k)} must be "build", a local file path, or an https:// URL (got ${r.shown(k, value)})`);
    } else if (sha === undefined) {
      r.problem(`${key(shaKey)} is required when ${key(k)} is a URL: the host verifies the download against it`);
    }
    const bundle = BUNDLE_RE.test(new URL(value).pathname);
    return { kind: "url", url: value, sha256: sha ?? "", secret: r.secretKeys.has(k), bundle };
  }
  return fileArtifact(r, color, value, sha);
}

/** A local file: it must exist, match its sha256 if one is given, and be gzip exactly when named as a bundle. */
function fileArtifact(r: Reader, color: Color, value: string, sha: string | undefined): Artifact {
  const k = `${color}Artifact` as const;
  const file = path.resolve(r.projectDir, value);
  if (!fs.existsSync(file) || !fs.statSync(file).isFile()) {
    r.problem(`${key(k)}: file ${r.shown(k, value)} does not exist (relative paths start at the project directory)`);
    return { kind: "file", path: file, sha256: "", bundle: false };
  }
  const actual = sha256File(file);
  if (sha !== undefined && SHA256_RE.test(sha) && sha !== actual) {
    r.problem(`${key(`${color}Sha256`)} is ${sha} but ${q(value)} has sha256 ${actual}`);
  }
  const bundle = BUNDLE_RE.test(file);
  if (bundle !== isGzip(file))
    r.problem(
      bundle
        ? `${key(k)}: ${q(value)} is named like a bundle but is not gzip data; make it with: tar -czf NAME.tar.gz -C DIR .`
        : `${key(k)}: ${q(value)} is gzip data; name a bundle .tar.gz or .tgz (or ship the executable itself)`,
    );
  return { kind: "file", path: file, sha256: actual, bundle };
}

/** buildCommand: one line of shell, and only set when a slot's artifact is "build". */
export function readBuildCommand(r: Reader, artifacts: Readonly<Record<Color, Artifact>>): string {
  const v = r.str("buildCommand").trim();
  const builds = COLORS.some((c) => artifacts[c].kind === "build");
  if (!builds && r.setToNonDefault("buildCommand"))
    r.problem(
      `${key("buildCommand")} is set but neither ${key("blueArtifact")} nor ${key("greenArtifact")} is "build"; it would be ignored`,
    );
  // eslint-disable-next-line no-control-regex -- refusing control characters is the point
  if (v === "" || /[\x00-\x08\x0a-\x1f\x7f]/.test(v))
    r.problem(`${key("buildCommand")} must be one line of shell (got ${q(v)})`);
  return v;
}
