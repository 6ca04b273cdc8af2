import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ConfigError, loadConfig } from "../../components/config/config";
import { BASE_CONFIG, find, isSecret, plain, ROOT, runProgram } from "../support/harness";
import { requireTool } from "../support/tools";

/** loadConfig over a plain map; `secret` keys are held encrypted, as `pulumi config set --secret` does. */
function load(config: Record<string, unknown>, secret: string[] = []) {
  const values = new Map<string, string>();
  for (const [k, v] of Object.entries(config))
    if (v !== undefined) values.set(k, typeof v === "string" ? v : JSON.stringify(v));
  return loadConfig({ get: (k) => values.get(k), isSecret: (k) => secret.includes(k) }, ROOT, {});
}
function rejects(config: Record<string, unknown>, problems: string[], secret: string[] = []) {
  assert.throws(
    () => load(config, secret),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.strictEqual(e.message, `invalid bluegreen stack config:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
      return true;
    },
  );
}

const ACME = { ...BASE_CONFIG, domains: ["example.com"], tls: "acme", acmeEmail: "ops@example.com" };

/** A throwaway CA-less self-signed certificate and key made by openssl, for tls "files". */
function makeCert(names: string[], days = 30): { cert: string; key: string } {
  requireTool("openssl");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bg-cert-"));
  try {
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        path.join(dir, "key.pem"),
        "-out",
        path.join(dir, "cert.pem"),
        "-days",
        String(days),
        "-subj",
        `/CN=${names[0]}`,
        "-addext",
        `subjectAltName=${names.map((n) => `DNS:${n}`).join(",")}`,
      ],
      { stdio: "ignore" },
    );
    return {
      cert: fs.readFileSync(path.join(dir, "cert.pem"), "utf8"),
      key: fs.readFileSync(path.join(dir, "key.pem"), "utf8"),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe("tls config: exact errors before anything reaches the host", () => {
  it("defaults: tls off, no domains, the host's address as url", () => {
    const cfg = load(BASE_CONFIG);
    assert.deepStrictEqual([cfg.tls, cfg.domains], [{ mode: "off" }, []]);
  });

  it("acme: Let's Encrypt production by default, http-01", () => {
    const cfg = load(ACME);
    assert.strictEqual(cfg.tls.mode, "acme");
    if (cfg.tls.mode !== "acme") return;
    assert.strictEqual(cfg.tls.directory, "https://acme-v02.api.letsencrypt.org/directory");
    assert.strictEqual(cfg.tls.challenge, "http-01");
    assert.strictEqual(load({ ...ACME, acmeDirectory: "letsencrypt-staging" }).tls.mode, "acme");
  });

  it("an unknown tls mode", () => {
    rejects({ ...BASE_CONFIG, tls: "on" }, ['bluegreen:tls must be one of off, acme, files (got "on")']);
  });

  it("tls without domains, and acme without an email", () => {
    rejects({ ...BASE_CONFIG, tls: "acme" }, [
      "bluegreen:domains is required when bluegreen:tls is \"acme\": the certificate must name them, e.g. pulumi config set --path 'domains[0]' example.com",
      'bluegreen:acmeEmail is required when bluegreen:tls is "acme": the ACME account\'s contact, e.g. pulumi config set acmeEmail you@example.com',
    ]);
  });

  it("bad domains: not a name, upper case, a bare label, twice, not a list", () => {
    rejects(
      { ...BASE_CONFIG, domains: ["exa mple.com", "Example.com", "localhost", "a.example.com", "a.example.com"] },
      [
        'bluegreen:domains entry "exa mple.com" is not a domain name: lowercase letters, digits, - and dots, with at least one dot, optionally starting with "*." for a wildcard',
        'bluegreen:domains entry "Example.com" is not a domain name: lowercase letters, digits, - and dots, with at least one dot, optionally starting with "*." for a wildcard',
        'bluegreen:domains entry "localhost" is not a domain name: lowercase letters, digits, - and dots, with at least one dot, optionally starting with "*." for a wildcard',
        'bluegreen:domains lists "a.example.com" twice',
      ],
    );
    rejects({ ...BASE_CONFIG, domains: "example.com" }, [
      "bluegreen:domains must be a list of domain names, e.g. pulumi config set --path 'domains[0]' example.com",
    ]);
  });

  it("a wildcard needs dns-01, and dns-01 needs a provider", () => {
    rejects({ ...ACME, domains: ["example.com", "*.example.com"] }, [
      'bluegreen:domains "*.example.com" needs bluegreen:acmeChallenge "dns-01": ACME issues wildcard certificates over DNS-01 only',
    ]);
    rejects({ ...ACME, domains: ["*.example.com"], acmeChallenge: "dns-01" }, [
      'bluegreen:acmeDnsProvider is required when bluegreen:acmeChallenge is "dns-01": a lego DNS provider code such as hetzner or cloudflare (lego dnshelp lists them)',
    ]);
    const cfg = load(
      {
        ...ACME,
        domains: ["*.example.com"],
        acmeChallenge: "dns-01",
        acmeDnsProvider: "hetzner",
        acmeDnsEnv: { HETZNER_API_KEY: "k" },
        acmeDnsResolvers: ["1.1.1.1:53"],
      },
      ["acmeDnsEnv"],
    );
    assert.ok(cfg.tls.mode === "acme" && cfg.tls.dnsProvider === "hetzner" && cfg.tls.dnsEnv !== undefined);
  });

  it("dns-01 keys with http-01, acme keys with tls off, a bad directory and challenge", () => {
    rejects({ ...ACME, acmeDnsProvider: "hetzner" }, [
      'bluegreen:acmeDnsProvider applies only when bluegreen:acmeChallenge is "dns-01" (it is "http-01")',
    ]);
    rejects({ ...BASE_CONFIG, acmeEmail: "ops@example.com" }, [
      'bluegreen:acmeEmail is set but bluegreen:tls is "off"; it would be ignored',
    ]);
    rejects({ ...ACME, acmeDirectory: "http://ca.internal/dir", acmeChallenge: "tls-alpn-01" }, [
      'bluegreen:acmeDirectory must be one of letsencrypt, letsencrypt-staging or the https:// URL of an RFC 8555 directory (got "http://ca.internal/dir")',
      'bluegreen:acmeChallenge must be one of http-01, dns-01 (got "tls-alpn-01")',
    ]);
  });

  it("serverName is retired, with the command that replaces it", () => {
    rejects({ ...BASE_CONFIG, serverName: "example.com" }, [
      "bluegreen:serverName was replaced by bluegreen:domains, a list that also names the HTTPS certificate's domains: pulumi config rm serverName && pulumi config set --path 'domains[0]' example.com",
    ]);
  });

  describe("files: the certificate and key are checked here, the key never shown", () => {
    const FILES = { ...BASE_CONFIG, domains: ["example.com", "www.example.com"], tls: "files" };
    it("a matching, valid certificate covering every domain (a wildcard covers one label)", () => {
      const { cert, key } = makeCert(["example.com", "*.example.com"]);
      const cfg = load({ ...FILES, tlsCertificate: cert, tlsPrivateKey: key }, ["tlsPrivateKey"]);
      assert.strictEqual(cfg.tls.mode, "files");
    });
    it("the key set without --secret, a key of another certificate, and a domain it does not cover", () => {
      const a = makeCert(["example.com"]);
      const b = makeCert(["example.com"]);
      rejects({ ...FILES, tlsCertificate: a.cert, tlsPrivateKey: b.key }, [
        "bluegreen:tlsPrivateKey must be set with --secret, or it sits in Pulumi.<stack>.yaml in plain text: pulumi config set --secret tlsPrivateKey -- < privkey.pem",
        "bluegreen:tlsPrivateKey does not belong to bluegreen:tlsCertificate's first certificate (CN=example.com); the leaf must come first",
        'bluegreen:tlsCertificate does not cover "www.example.com" of bluegreen:domains (it names DNS:example.com)',
      ]);
    });
    it("not PEM at all: the error never echoes the key", () => {
      assert.throws(
        () =>
          load({ ...FILES, tlsCertificate: "/etc/ssl/cert.pem", tlsPrivateKey: "sekrit-key-text" }, ["tlsPrivateKey"]),
        (e: Error) => {
          assert.strictEqual(
            e.message,
            "invalid bluegreen stack config:\n  - bluegreen:tlsCertificate must hold PEM certificates (-----BEGIN CERTIFICATE-----), the file's text, not its path",
          );
          return true;
        },
      );
      const { cert } = makeCert(["example.com", "www.example.com"]);
      assert.throws(
        () => load({ ...FILES, tlsCertificate: cert, tlsPrivateKey: "sekrit-key-text" }, ["tlsPrivateKey"]),
        (e: Error) =>
          e.message.includes("bluegreen:tlsPrivateKey is not a PEM private key (the value is secret and not shown)") &&
          !e.message.includes("sekrit"),
      );
    });
  });
});

describe("tls in the program: secrets stay secret, no step but the tls step and the site", () => {
  it("files: the key reaches the host only in the tls step's secret stdin, never a command, output or other step", async () => {
    const { cert, key } = makeCert(["example.com"]);
    const run = await runProgram(
      { ...BASE_CONFIG, domains: ["example.com"], tls: "files", tlsCertificate: cert, tlsPrivateKey: key },
      { secretKeys: ["bluegreen:tlsPrivateKey"] },
    );
    const step = find(run, "tls-config");
    assert.strictEqual(
      plain(step.inputs).create,
      "env MODE=files DOMAINS=example.com /usr/local/lib/bluegreen/tls-config.sh",
    );
    assert.ok(isSecret(step.inputs.stdin), "the tls step's stdin must be secret");
    assert.ok(plain(step.inputs.stdin).includes(key.trim()));
    const keyBody = key.split("\n")[1];
    for (const r of run.resources) {
      if (r.name === "tls-config") continue;
      assert.ok(!JSON.stringify(plain(r.inputs)).includes(keyBody), `${r.name} holds the key`);
    }
    assert.ok(!isSecret(step.inputs.create));
    assert.ok(!JSON.stringify(run.outputs).includes(keyBody));
    assert.strictEqual(run.outputs.url, "https://example.com/");
  });

  it("acme dns-01: the provider's credentials are a secret stdin; without them the stdin stays readable", async () => {
    const dns = {
      ...ACME,
      domains: ["example.com", "*.example.com"],
      acmeChallenge: "dns-01",
      acmeDnsProvider: "hetzner",
      acmeDnsEnv: { HETZNER_API_KEY: "dns-token-123" },
    };
    const run = await runProgram(dns, { secretKeys: ["bluegreen:acmeDnsEnv"] });
    const step = find(run, "tls-config");
    assert.ok(isSecret(step.inputs.stdin));
    assert.match(plain(step.inputs.stdin), /\n#bluegreen-section dnsEnv\nHETZNER_API_KEY=dns-token-123\n/);
    assert.strictEqual(
      plain(step.inputs).create,
      "env MODE=acme DOMAINS='example.com *.example.com' /usr/local/lib/bluegreen/tls-config.sh",
    );
    const http = await runProgram(ACME);
    assert.ok(!isSecret(find(http, "tls-config").inputs.stdin));
    assert.match(plain(find(http, "tls-config").inputs.stdin), /^#bluegreen-section acme\n/);
  });

  it("router haproxy, acme http-01: the router step claims the acme port and routes to it; acme.conf tells lego to listen there", async () => {
    const run = await runProgram({ ...ACME, router: "haproxy" });
    assert.match(plain(find(run, "router-config").inputs).create, / PORTS='8081 8082 8001 8002 8083' /);
    assert.ok(plain(find(run, "router-config").inputs.stdin).includes("    server lego 127.0.0.1:8083\n"));
    assert.match(plain(find(run, "tls-config").inputs.stdin), /\nACME_HTTP_PORT=8083\n/);
    // nginx serves lego's webroot: no port claimed, none in acme.conf.
    const nginx = await runProgram(ACME);
    assert.match(plain(find(nginx, "router-config").inputs).create, / PORTS='8081 8082 8001 8002' /);
    assert.doesNotMatch(plain(find(nginx, "tls-config").inputs.stdin), /ACME_HTTP_PORT/);
  });

  it("acmeDnsEnv without --secret is refused: credentials would sit in the stack file in plain text", async () => {
    const cfg = {
      ...ACME,
      domains: ["*.example.com"],
      acmeChallenge: "dns-01",
      acmeDnsProvider: "hetzner",
      acmeDnsEnv: { HETZNER_API_KEY: "x" },
    };
    rejects(cfg, [
      "bluegreen:acmeDnsEnv must be set with --secret, or the DNS provider's credentials sit in Pulumi.<stack>.yaml in plain text: pulumi config set --secret --path 'acmeDnsEnv.NAME' value",
    ]);
    await runProgram(cfg, { secretKeys: ["bluegreen:acmeDnsEnv"] });
  });
});
