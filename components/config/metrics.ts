// Metrics: a Prometheus text endpoint on a loopback port.

import { autoPorts, Ports } from "./ports";
import { key, Reader } from "./reader";
import { MetricsConfig } from "./types";

/** The metrics port an app gets with metricsPort 0: 8084 for the app bluegreen, else the sixth of its automatic ports. */
export function autoMetricsPort(app: string): number {
  return app === "bluegreen" ? 8084 : autoPorts(app).preview + 5;
}

export function readMetrics(r: Reader, appName: string, ports: Ports, acmePort?: number): MetricsConfig | undefined {
  const on = r.bool("metrics");
  const n = r.int("metricsPort");
  if (!on) {
    if (r.setToNonDefault("metricsPort"))
      r.problem(`${key("metricsPort")} is set but ${key("metrics")} is false; it would be ignored`);
    return undefined;
  }
  if (n !== 0 && n < 1024) r.problem(`${key("metricsPort")} must be 0 (automatic) or from 1024 to 65535 (got ${n})`);
  const port = n === 0 ? autoMetricsPort(appName) : n;
  const others: [string, number | undefined][] = [
    ["bluePort", ports.blue],
    ["greenPort", ports.green],
    ["previewPort", ports.preview],
    ["checkPort", ports.check],
    ["acmePort", acmePort],
  ];
  for (const [k, p] of others)
    if (p === port) r.problem(`${key(k)} and ${key("metricsPort")} must differ (both are ${port})`);
  return { port };
}
