// Small crypto, file and address helpers the config checks use (and the components, through index.ts).

import * as crypto from "crypto";
import * as fs from "fs";
import * as net from "net";

export function sha256File(file: string): string {
  return crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

/** Whether a file starts with gzip's magic bytes. */
export function isGzip(file: string): boolean {
  const fd = fs.openSync(file, "r");
  try {
    const b = Buffer.alloc(2);
    return fs.readSync(fd, b, 0, 2, 0) === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    fs.closeSync(fd);
  }
}

/** Whether a certificate's subjectAltName DNS names cover a domain (one wildcard label at the left). */
export function certificateCovers(cert: crypto.X509Certificate, domain: string): boolean {
  const names = (cert.subjectAltName ?? "")
    .split(", ")
    .filter((n) => n.startsWith("DNS:"))
    .map((n) => n.slice(4).toLowerCase());
  if (names.includes(domain)) return true;
  if (domain.startsWith("*.")) return false;
  const parent = domain.slice(domain.indexOf(".") + 1);
  return names.includes(`*.${parent}`);
}

export function isIp(v: string): boolean {
  return net.isIP(v) !== 0;
}

export function isCidr(v: string): boolean {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(v);
  if (!m) return false;
  const family = net.isIP(m[1]);
  const bits = Number(m[2]);
  return (family === 4 && bits <= 32) || (family === 6 && bits <= 128);
}
