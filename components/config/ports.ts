// The loopback ports: the slots' (tcp mode), the preview and check listeners', and lego's
// HTTP-01 port behind HAProxy. 0 picks the app's automatic one.

import { RouterKind } from "../host/layout";
import { key, Reader } from "./reader";
import { TlsConfig } from "./types";

export interface Ports {
  readonly blue: number;
  readonly green: number;
  readonly preview: number;
  readonly check: number;
}

/**
 * The loopback ports an app gets when its port keys are 0: the historical ones for the
 * app named bluegreen, otherwise five consecutive ports from its name's hash in
 * 20001-29995 (the fifth, acme, only for HTTP-01 through HAProxy). Two names can still meet (1 in 1000); the host refuses the second app's
 * ports before anything changes, naming the key to set.
 */
export function autoPorts(app: string): { preview: number; check: number; blue: number; green: number; acme: number } {
  if (app === "bluegreen") return { preview: 8081, check: 8082, blue: 8001, green: 8002, acme: 8083 };
  let h = 0x811c9dc5;
  for (const ch of app) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  const base = 20000 + (h % 1000) * 10;
  return { preview: base + 1, check: base + 2, blue: base + 3, green: base + 4, acme: base + 5 };
}

type PortName = keyof ReturnType<typeof autoPorts>;

/** A loopback port; 0 picks the app's automatic one (autoPorts). */
function port(r: Reader, which: PortName, appName: string): number {
  const k = `${which}Port` as const;
  const n = r.int(k);
  if (n === 0) return autoPorts(appName)[which];
  if (n < 1024) r.problem(`${key(k)} must be 0 (automatic) or from 1024 to 65535 (got ${n})`);
  return n;
}

/** The slots' and listeners' ports, which must all differ. */
export function readPorts(r: Reader, appName: string): Ports {
  const ports = {
    blue: port(r, "blue", appName),
    green: port(r, "green", appName),
    preview: port(r, "preview", appName),
    check: port(r, "check", appName),
  };
  if (ports.blue === ports.green) {
    r.problem(`${key("bluePort")} and ${key("greenPort")} must differ: both slots cannot listen on port ${ports.blue}`);
  }
  for (const [a, b] of [
    ["blue", "preview"],
    ["green", "preview"],
    ["blue", "check"],
    ["green", "check"],
    ["preview", "check"],
  ] as const) {
    if (ports[a] === ports[b])
      r.problem(`${key(`${a}Port`)} and ${key(`${b}Port`)} must differ (both are ${ports[a]})`);
  }
  return ports;
}

/**
 * lego's HTTP-01 port. HAProxy cannot serve a directory: lego answers HTTP-01 itself on this
 * loopback port, behind the app's HAProxy route. Only then is the port claimed, and checked.
 */
export function readAcmePort(r: Reader, appName: string, ports: Ports, router: RouterKind, tls: TlsConfig): number {
  const acmePort = port(r, "acme", appName);
  if (router === "haproxy" && tls.mode === "acme" && tls.challenge === "http-01") {
    for (const other of ["blue", "green", "preview", "check"] as const) {
      if (ports[other] === acmePort)
        r.problem(`${key(`${other}Port`)} and ${key("acmePort")} must differ (both are ${acmePort})`);
    }
  }
  return acmePort;
}
