// The app in its slots: its name on the host, how a release starts (appCommand or the single
// executable with appArgs), its environment and secrets, readiness, and the packages it needs.

import * as pulumi from "@pulumi/pulumi";
import { Color, COLORS } from "../host/layout";
import { appCommandProblem, unitArgsProblem } from "./commandLine";
import { readHooks } from "./hooks";
import { key, q, Reader } from "./reader";
import { AppConfig, Artifact, LinkMode } from "./types";

/** Debian policy's package names (apt install NAME), optionally pinned NAME=VERSION. */
// Not ending in "-": apt reads "nginx-" as "remove nginx".
const APT_PACKAGE_RE = /^[a-z0-9][a-z0-9+.-]*[a-z0-9+](=[A-Za-z0-9.+~:-]+)?$/;

export function readApp(r: Reader, linkMode: LinkMode, artifacts: Readonly<Record<Color, Artifact>>): AppConfig {
  const healthPath = r.checked("healthPath");
  const args = r.str("appArgs");
  const argsProblem = unitArgsProblem(args);
  if (argsProblem) r.problem(`${key("appArgs")} ${argsProblem} (got ${q(args)})`);
  const command = readAppCommand(r, artifacts);
  const envRaw = r.map("appEnv", true);
  const secretsRaw = r.map("appSecrets", true);
  if (command && linkMode === "tcp" && ("PORT" in envRaw || "PORT" in secretsRaw))
    r.problem(
      `${key("appEnv")}.PORT is set by bluegreen with ${key("appCommand")} in tcp mode (each slot's own port); remove it: pulumi config rm --path appEnv.PORT`,
    );
  for (const name of Object.keys(secretsRaw)) {
    if (name in envRaw)
      r.problem(`${key("appSecrets")}.${name} is also set in ${key("appEnv")}; keep each name in one of them`);
  }
  // appEnv set with --secret joins the secrets: the whole env file is then a secret.
  const envSecret = r.secretKeys.has("appEnv");
  const allSecrets = envSecret ? { ...envRaw, ...secretsRaw } : secretsRaw;
  secretsOnCommandLine(r, { appCommand: command, appArgs: args }, Object.keys(allSecrets));
  return {
    command,
    healthPath,
    healthTimeoutSeconds: r.int("healthTimeout"),
    drainTimeoutSeconds: r.int("drainTimeout"),
    args,
    env: envSecret ? {} : envRaw,
    secrets: Object.keys(allSecrets).length ? pulumi.secret(allSecrets) : undefined,
    secretNames: Object.keys(allSecrets).sort(),
    hooks: readHooks(r),
  };
}

/** systemd puts ${NAME} into the process's argv, which every user on the host can read in ps. */
function secretsOnCommandLine(
  r: Reader,
  lines: { readonly appCommand: string; readonly appArgs: string },
  secretNames: readonly string[],
): void {
  for (const [k, text] of Object.entries(lines)) {
    for (const name of secretNames) {
      if (new RegExp(`\\$\\{?${name}(?![A-Za-z0-9_])`).test(text))
        r.problem(
          `${key(k)} passes the secret ${name} on the command line, where ps shows it to every user on the host; let the app read ${name} from its environment`,
        );
    }
  }
}

/** appCommand: checked as a systemd command line, and required by a bundle. */
function readAppCommand(r: Reader, artifacts: Readonly<Record<Color, Artifact>>): string {
  const v = r.raw("appCommand")?.trim() ?? "";
  const bundles = COLORS.filter((c) => {
    const a = artifacts[c];
    return a.kind !== "build" && a.bundle;
  });
  if (v === "") {
    for (const c of bundles)
      r.problem(
        `${key("appCommand")} is required when ${key(`${c}Artifact`)} is a .tar.gz bundle: how a release starts, run from its directory, e.g. pulumi config set appCommand "node server.js"`,
      );
    return "";
  }
  const problem = appCommandProblem(v);
  if (problem) r.problem(`${key("appCommand")} ${problem} (got ${q(v)})`);
  if (r.setToNonDefault("appArgs"))
    r.problem(
      `${key("appArgs")} applies only to the single executable; with ${key("appCommand")} put the arguments in the command: pulumi config rm appArgs`,
    );
  return v;
}

export function readHostPackages(r: Reader): string[] {
  const out: string[] = [];
  for (const entry of r.list(
    "hostPackages",
    "Debian/Ubuntu package names, e.g. pulumi config set --path 'hostPackages[0]' nodejs",
  ) ?? []) {
    if (typeof entry !== "string" || !APT_PACKAGE_RE.test(entry)) {
      r.problem(
        `${key("hostPackages")} entry ${q(entry)} is not a package name: lowercase letters, digits, + - and ., starting with a letter or digit and not ending in - (apt install NAME), optionally NAME=VERSION`,
      );
    } else if (out.includes(entry)) {
      r.problem(`${key("hostPackages")} lists ${q(entry)} twice`);
    } else out.push(entry);
  }
  return out;
}
