// loadConfig (the stack's config) and configFrom (a plain object): one validation, in the
// order the problems are reported, each area read by its own module.

import { Color, COLORS } from "../host/layout";
import { readApp, readHostPackages } from "./app";
import { readBalancer } from "./balancer";
import { ConfigError } from "./errors";
import { readArch, readHost } from "./host";
import { checkSeveral, readDrained, readHosts } from "./hosts";
import { ConfigValues } from "./keys";
import { readAcmePort, readPorts } from "./ports";
import { Reader } from "./reader";
import { readArtifact, readBuildCommand, readVersion } from "./releases";
import { ConfigSource, objectSource, pulumiSource } from "./source";
import { readSsh } from "./ssh";
import { readMaintenance, readRollback } from "./switch";
import { readDomains, readTls } from "./tls";
import { readBackups } from "./data";
import { readMetrics } from "./metrics";
import { readNotify } from "./notify";
import { BluegreenConfig, HostConfig, SlotConfig } from "./types";
import { unknownKeys } from "./unknownKeys";

/**
 * Parses and validates the whole stack config. `projectDir` resolves relative
 * artifact paths; `env` supplies HCLOUD_TOKEN as the provider would.
 */
export function loadConfig(
  source: ConfigSource = pulumiSource,
  projectDir: string = process.cwd(),
  processEnv: NodeJS.ProcessEnv = process.env,
): BluegreenConfig {
  const r = new Reader(source, projectDir, processEnv);
  for (const problem of unknownKeys(source)) r.problem(problem);
  const active = r.oneOf("active");
  const appName = r.checked("appName");
  const linkMode = r.oneOf("linkMode");
  const router = r.oneOf("router");
  const problemsBeforeHost = r.problems.length;
  const hostKind = r.oneOf("hostKind");
  // An unknown kind is one problem; checking the fallback kind's keys would invent more.
  const hostKindKnown = r.problems.length === problemsBeforeHost;
  const host: HostConfig = hostKindKnown ? readHost(r, hostKind) : { kind: "ssh", address: "" };
  const hosts = hostKindKnown ? readHosts(r, host) : [{ name: "", host }];
  const drainedHosts = readDrained(r, hosts);
  const ssh = readSsh(r, hostKind, hostKindKnown, host);
  const arch = readArch(r, host);
  const ports = readPorts(r, appName);
  const slots = {} as Record<Color, SlotConfig>;
  for (const color of COLORS) {
    slots[color] = { color, version: readVersion(r, color), artifact: readArtifact(r, color), port: ports[color] };
  }
  const artifacts = { blue: slots.blue.artifact, green: slots.green.artifact };
  const app = readApp(r, linkMode, artifacts);
  checkSeveral(r, hosts, app.hooks.postSwitchFailure);
  const hostPackages = readHostPackages(r);
  const buildCommand = readBuildCommand(r, artifacts);
  const bundleMaxMegabytes = r.int("bundleMaxMegabytes");
  const domains = readDomains(r);
  const tls = readTls(r, domains);
  const acmePort = readAcmePort(r, appName, ports, router, tls);
  // One host today: the balancer's keys are checked and do nothing.
  const balancer = readBalancer(r, { hosts: hosts.map((h) => h.host), tls });
  const { maintenance, maintenanceRetryAfter } = readMaintenance(r);
  const keepReleases = r.int("keepReleases");
  const rollback = readRollback(r);
  const usesAcmePort = router === "haproxy" && tls.mode === "acme" && tls.challenge === "http-01";
  const ops = {
    backups: readBackups(r),
    notify: readNotify(r),
    metrics: readMetrics(r, appName, ports, usesAcmePort ? acmePort : undefined),
  };
  if (r.problems.length) throw new ConfigError(r.problems);
  return {
    active,
    maintenance,
    maintenanceRetryAfter,
    rollback,
    keepReleases,
    checkPort: ports.check,
    acmePort,
    linkMode,
    router,
    arch,
    host: hosts[0].host,
    hosts,
    drainedHosts,
    ssh,
    slots,
    app,
    previewPort: ports.preview,
    appName,
    domains,
    tls,
    hostPackages,
    buildCommand,
    bundleMaxMegabytes,
    balancer,
    ops,
  };
}

export interface ConfigFromOptions {
  /** Where relative artifact paths start (default: the working directory). */
  readonly projectDir?: string;
  /** The environment the providers see: HCLOUD_TOKEN for hostKind hetzner (default: none). */
  readonly env?: NodeJS.ProcessEnv;
  /** Keys to treat as set with --secret (tlsPrivateKey and a non-empty acmeDnsEnv must be). */
  readonly secrets?: readonly string[];
}

/**
 * Validates a plain object exactly as loadConfig validates the stack's config (the same
 * rules, the same messages, naming keys as bluegreen:KEY), for programs that use bluegreen
 * as a library. Keys the table does not know are refused.
 */
export function configFrom(values: ConfigValues, opts: ConfigFromOptions = {}): BluegreenConfig {
  const source = objectSource(values, opts.secrets);
  return loadConfig(source, opts.projectDir ?? process.cwd(), opts.env ?? {});
}
