// The domains the public listener answers to, and HTTPS: off, ACME (lego on the host) or the
// user's own certificate files. Certificates and keys are checked here, before anything reaches the host.

import * as crypto from "crypto";
import * as pulumi from "@pulumi/pulumi";
import { certificateCovers } from "./files";
import { Key } from "./keys";
import { key, q, Reader } from "./reader";
import { BluegreenConfig, TlsConfig } from "./types";

/** Where Let's Encrypt's directories are; any other RFC 8555 server is given by its https URL. */
export const ACME_DIRECTORIES = {
  letsencrypt: "https://acme-v02.api.letsencrypt.org/directory",
  "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
} as const;

/** A DNS name nginx and ACME both take: lowercase labels, optionally one leading "*." (a wildcard). */
const DOMAIN_RE = /^(\*\.)?(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/;
const RESOLVER_RE = /^[A-Za-z0-9.:[\]-]+:[0-9]{1,5}$/;
const EMAIL_RE = /^[^\s@"'`$\\]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$/;
const DIRECTORY_URL_RE = /^https:\/\/[A-Za-z0-9.-]+(:[0-9]{1,5})?(\/[A-Za-z0-9._~/-]*)?$/;

/** The keys only some tls modes read; any other mode refuses them when set. */
const TLS_KEYS: readonly Key[] = [
  "acmeEmail",
  "acmeDirectory",
  "acmeChallenge",
  "acmeDnsProvider",
  "acmeDnsEnv",
  "acmeDnsResolvers",
  "acmeDnsPropagationCheck",
  "acmeCaCertificate",
  "tlsCertificate",
  "tlsPrivateKey",
  "hstsMaxAge",
];

/** The site's public URL when it has a domain (a wildcard as www.), else undefined (use the host's address). */
export function publicUrl(cfg: Pick<BluegreenConfig, "domains" | "tls">): string | undefined {
  const name = cfg.domains.find((d) => !d.startsWith("*.")) ?? cfg.domains[0]?.replace(/^\*\./, "www.");
  return name && `${cfg.tls.mode === "off" ? "http" : "https"}://${name}/`;
}

/** domains, after refusing serverName, the key they replaced. */
export function readDomains(r: Reader): string[] {
  if (r.raw("serverName") !== undefined) {
    r.problem(
      `${key("serverName")} was replaced by ${key("domains")}, a list that also names the HTTPS certificate's domains: ` +
        `pulumi config rm serverName && pulumi config set --path 'domains[0]' example.com`,
    );
  }
  const entries = r.list("domains", "domain names, e.g. pulumi config set --path 'domains[0]' example.com") ?? [];
  const out: string[] = [];
  for (const entry of entries) {
    if (typeof entry !== "string" || !DOMAIN_RE.test(entry)) {
      r.problem(
        `${key("domains")} entry ${q(entry)} is not a domain name: lowercase letters, digits, - and dots, with at least one dot, optionally starting with "*." for a wildcard`,
      );
    } else if (out.includes(entry)) {
      r.problem(`${key("domains")} lists ${q(entry)} twice`);
    } else out.push(entry);
  }
  return out;
}

export function readTls(r: Reader, domains: readonly string[]): TlsConfig {
  const mode = r.oneOf("tls");
  const hstsMaxAge = r.int("hstsMaxAge");
  const unused = (allowed: readonly Key[]) => {
    for (const k of TLS_KEYS.filter((k) => !allowed.includes(k) && r.setToNonDefault(k)))
      r.problem(`${key(k)} is set but ${key("tls")} is ${q(mode)}; it would be ignored`);
  };
  if (mode === "off") {
    unused([]);
    return { mode };
  }
  if (domains.length === 0) {
    r.problem(
      `${key("domains")} is required when ${key("tls")} is ${q(mode)}: the certificate must name them, e.g. pulumi config set --path 'domains[0]' example.com`,
    );
  }
  if (mode === "files") {
    unused(["tlsCertificate", "tlsPrivateKey", "hstsMaxAge"]);
    return { mode, ...readCertificateFiles(r, domains), hstsMaxAge };
  }
  unused(TLS_KEYS.filter((k) => k.startsWith("acme") || k === "hstsMaxAge"));
  return { ...readAcme(r, domains), hstsMaxAge };
}

function readAcme(r: Reader, domains: readonly string[]): Omit<Extract<TlsConfig, { mode: "acme" }>, "hstsMaxAge"> {
  const email = r.raw("acmeEmail");
  if (email === undefined) {
    r.problem(
      `${key("acmeEmail")} is required when ${key("tls")} is "acme": the ACME account's contact, e.g. pulumi config set acmeEmail you@example.com`,
    );
  } else r.matches("acmeEmail", email, EMAIL_RE, "an email address");
  const dirValue = r.str("acmeDirectory");
  let directory: string = dirValue;
  if (dirValue in ACME_DIRECTORIES) directory = ACME_DIRECTORIES[dirValue as keyof typeof ACME_DIRECTORIES];
  else if (!DIRECTORY_URL_RE.test(dirValue)) {
    r.problem(
      `${key("acmeDirectory")} must be one of ${Object.keys(ACME_DIRECTORIES).join(", ")} or the https:// URL of an RFC 8555 directory (got ${q(dirValue)})`,
    );
  }
  const challenge = r.oneOf("acmeChallenge");
  const wildcards = domains.filter((d) => d.startsWith("*."));
  if (challenge === "http-01" && wildcards.length) {
    r.problem(
      `${key("domains")} ${wildcards.map(q).join(", ")} needs ${key("acmeChallenge")} "dns-01": ACME issues wildcard certificates over DNS-01 only`,
    );
  }
  const dns = readDns01(r, challenge === "dns-01");
  const caCertificate = r.raw("acmeCaCertificate");
  if (caCertificate !== undefined) pemCertificates(r, "acmeCaCertificate", caCertificate);
  return {
    mode: "acme",
    email: email ?? "",
    directory,
    challenge,
    ...dns,
    dnsPropagationCheck: r.bool("acmeDnsPropagationCheck"),
    caCertificate: caCertificate === undefined ? undefined : caCertificate.trim() + "\n",
  };
}

/** The DNS-01 keys: required and checked with dns-01, refused when set with http-01. */
function readDns01(r: Reader, dns01: boolean) {
  const providerValue = r.raw("acmeDnsProvider");
  let dnsProvider: string | undefined;
  if (dns01) {
    if (providerValue === undefined) {
      r.problem(
        `${key("acmeDnsProvider")} is required when ${key("acmeChallenge")} is "dns-01": a lego DNS provider code such as hetzner or cloudflare (lego dnshelp lists them)`,
      );
    } else dnsProvider = r.checked("acmeDnsProvider", providerValue);
  } else {
    for (const k of ["acmeDnsProvider", "acmeDnsEnv", "acmeDnsResolvers", "acmeDnsPropagationCheck"] as const) {
      if (r.setToNonDefault(k))
        r.problem(`${key(k)} applies only when ${key("acmeChallenge")} is "dns-01" (it is "http-01")`);
    }
  }
  const dnsEnvRaw = r.map("acmeDnsEnv");
  if (Object.keys(dnsEnvRaw).length && !r.secretKeys.has("acmeDnsEnv"))
    r.problem(
      `${key("acmeDnsEnv")} must be set with --secret, or the DNS provider's credentials sit in Pulumi.<stack>.yaml in plain text: pulumi config set --secret --path 'acmeDnsEnv.NAME' value`,
    );
  const dnsResolvers: string[] = [];
  for (const entry of r.list("acmeDnsResolvers", "host:port resolvers, e.g. 1.1.1.1:53") ?? []) {
    if (typeof entry === "string" && RESOLVER_RE.test(entry)) dnsResolvers.push(entry);
    else r.problem(`${key("acmeDnsResolvers")} entry ${q(entry)} is not a host:port resolver such as 1.1.1.1:53`);
  }
  return {
    dnsProvider,
    dnsEnv: Object.keys(dnsEnvRaw).length ? pulumi.secret(dnsEnvRaw) : undefined,
    dnsResolvers,
  };
}

/** Parses PEM certificates, with a problem naming the key when there are none or one is unreadable. */
function pemCertificates(r: Reader, k: Key, text: string): crypto.X509Certificate[] {
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) {
    r.problem(`${key(k)} must hold PEM certificates (-----BEGIN CERTIFICATE-----), the file's text, not its path`);
    return [];
  }
  try {
    return blocks.map((b) => new crypto.X509Certificate(b));
  } catch (e) {
    r.problem(`${key(k)} holds a certificate that cannot be read: ${(e as Error).message}`);
    return [];
  }
}

/** tls "files": the chain and key are checked here, before anything reaches the host. */
function readCertificateFiles(
  r: Reader,
  domains: readonly string[],
): { certificate: string; privateKey: pulumi.Output<string> } {
  const certText = r.raw("tlsCertificate");
  const keyText = r.raw("tlsPrivateKey");
  if (certText === undefined)
    r.problem(
      `${key("tlsCertificate")} is required when ${key("tls")} is "files": pulumi config set tlsCertificate -- < fullchain.pem`,
    );
  if (keyText === undefined)
    r.problem(
      `${key("tlsPrivateKey")} is required when ${key("tls")} is "files": pulumi config set --secret tlsPrivateKey -- < privkey.pem`,
    );
  else if (!r.secretKeys.has("tlsPrivateKey"))
    r.problem(
      `${key("tlsPrivateKey")} must be set with --secret, or it sits in Pulumi.<stack>.yaml in plain text: pulumi config set --secret tlsPrivateKey -- < privkey.pem`,
    );
  const certs = certText === undefined ? [] : pemCertificates(r, "tlsCertificate", certText);
  if (certs.length && keyText !== undefined) checkLeaf(r, certs[0], keyText, domains);
  return {
    certificate: certText === undefined ? "" : certs.length ? certText.trim() + "\n" : "",
    privateKey: pulumi.secret(keyText === undefined ? "" : keyText.trim() + "\n"),
  };
}

/** The leaf certificate: the key is its own, it has not expired, and it covers every domain. */
function checkLeaf(r: Reader, leaf: crypto.X509Certificate, keyText: string, domains: readonly string[]): void {
  let privateKey: crypto.KeyObject | undefined;
  try {
    privateKey = crypto.createPrivateKey(keyText);
  } catch {
    r.problem(`${key("tlsPrivateKey")} is not a PEM private key (the value is secret and not shown)`);
  }
  if (privateKey && !leaf.checkPrivateKey(privateKey))
    r.problem(
      `${key("tlsPrivateKey")} does not belong to ${key("tlsCertificate")}'s first certificate (${leaf.subject.replace(/\n/g, ", ")}); the leaf must come first`,
    );
  const notAfter = new Date(leaf.validTo);
  if (notAfter.getTime() < Date.now())
    r.problem(`${key("tlsCertificate")} expired on ${notAfter.toISOString().slice(0, 10)}`);
  const uncovered = domains.filter((d) => !certificateCovers(leaf, d));
  if (uncovered.length)
    r.problem(
      `${key("tlsCertificate")} does not cover ${uncovered.map(q).join(", ")} of ${key("domains")} (it names ${leaf.subjectAltName ?? "no subjectAltName"})`,
    );
}
