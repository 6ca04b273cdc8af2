// HTTPS against a real nginx and a real HAProxy on this machine, through the real host
// scripts (tls-config.sh, tls-renew.sh, lib.sh, router-<kind>.sh): the same tests for both
// routers. A certificate is verified served before port 80 redirects; a renewal under
// keep-alive HTTPS load fails no request and reloads nothing (the same worker PIDs);
// acme HTTP-01 issues and renews against a local pebble. Needs nginx, haproxy, socat,
// openssl, wrk, curl, go, lego, pebble and pebble-challtestsrv.
import * as assert from "assert";
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import * as tls from "tls";
import { appLayout, layout, shared } from "../../components/host/layout";
import { renderHaproxyApp, renderHaproxyCrt, renderHaproxyRoute } from "../../components/router/haproxy";
import { renderAcmeConf } from "../../components/app/tlsFiles";
import { renderBundle } from "../../components/host/shell";
import { Sandbox, startWrk } from "../support/sandbox";
import { requireTool, run } from "../support/tools";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const DOMAIN = "app.bluegreen.test";

/** A throwaway CA; each leaf() is a fresh key and a certificate for a name (DOMAIN) with its serial. */
class Pki {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "bg-pki-"));
  private n = 0;
  constructor() {
    requireTool("openssl");
    const r = run("openssl", [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"],
      ...["-subj", "/CN=bluegreen test CA", "-keyout", `${this.dir}/ca.key`, "-out", `${this.dir}/ca.pem`],
    ]);
    assert.strictEqual(r.status, 0, r.stderr);
  }
  leaf(name = DOMAIN): { certificate: string; key: string; serial: string } {
    const p = `${this.dir}/leaf${++this.n}`;
    const serial = `5EED${String(this.n).padStart(4, "0")}`;
    const csr = run("openssl", [
      ...["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"],
      ...["-subj", `/CN=${name}`, "-keyout", `${p}.key`, "-out", `${p}.csr`],
    ]);
    assert.strictEqual(csr.status, 0, csr.stderr);
    fs.writeFileSync(`${p}.ext`, `subjectAltName=DNS:${name}\n`);
    const r = run("openssl", [
      ...["x509", "-req", "-in", `${p}.csr`, "-CA", `${this.dir}/ca.pem`, "-CAkey", `${this.dir}/ca.key`],
      ...["-set_serial", `0x${serial}`, "-days", "2", "-extfile", `${p}.ext`, "-out", `${p}.crt`],
    ]);
    assert.strictEqual(r.status, 0, r.stderr);
    return {
      certificate: fs.readFileSync(`${p}.crt`, "utf8") + fs.readFileSync(`${this.dir}/ca.pem`, "utf8"),
      key: fs.readFileSync(`${p}.key`, "utf8"),
      serial,
    };
  }
  stop() {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The serial a new TLS handshake on loopback:port gets for DOMAIN, as openssl prints it. */
function servedSerial(port: number, name = DOMAIN): string {
  const r = run("bash", [
    "-c",
    `timeout 10 openssl s_client -connect 127.0.0.1:${port} -servername ${name} </dev/null 2>/dev/null | openssl x509 -noout -serial`,
  ]);
  return r.stdout.trim().replace(/^serial=/, "");
}

/** curl's status line and headers for a URL on loopback, with DOMAIN as the name. */
function head(url: string, port: number): string {
  return run("curl", [
    ...["-ksS", "-o", "/dev/null", "-D", "-", "--max-time", "5"],
    ...["--resolve", `${DOMAIN}:${port}:127.0.0.1`, url],
  ]).stdout;
}

/**
 * The router's current workers. An nginx worker of the generation before a reload lingers as
 * "worker process is shutting down" while it finishes its kept-alive connections; it is not
 * counted, or a snapshot taken just after a reload would differ from one taken later.
 */
function workerPids(host: Sandbox): string {
  const master = fs.readFileSync(host.at(host.router === "nginx" ? "nginx.pid" : "haproxy.pid"), "utf8").trim();
  const draining = (pid: string) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("shutting down");
    } catch {
      return true; // gone already
    }
  };
  return run("pgrep", ["-P", master])
    .stdout.trim()
    .split("\n")
    .filter((pid) => !draining(pid))
    .sort()
    .join(" ");
}

/**
 * HAProxy's one worker, once the generation before a reload has gone (nginx: its workers, as
 * workerPids). An old HAProxy worker keeps no mark in its command line, and until it has
 * stopped listening it may take new connections: CI saw a renewal validated through one, so
 * the new worker's acme backend had counted 0 requests.
 */
function settledWorkers(host: Sandbox): string {
  // nginx runs 2 workers here (sandbox.ts); an old one may not call itself "shutting down" yet
  // just after a reload on a loaded machine (CI saw it counted), so wait for the count too.
  const want = host.router === "nginx" ? 2 : 1;
  for (let i = 0; i < 75; i++) {
    const pids = workerPids(host);
    if (pids.split(" ").length <= want) return pids;
    run("sleep", ["0.2"]);
  }
  throw new Error(`${host.router} still has more than one worker 15 s after its reload: ${workerPids(host)}`);
}

/**
 * A sandbox host for `router` on the ports from `b` (http b, preview b+1, check b+2, slots b+3
 * and b+4, https b+5, acme b+6), serving DOMAIN with tls, its config applied and blue live.
 */
async function tlsHost(
  router: "nginx" | "haproxy",
  b: number,
  hstsMaxAge: number,
  greenToo: boolean,
): Promise<Sandbox> {
  const host = new Sandbox({
    router,
    mode: "socket",
    httpPort: b,
    previewPort: b + 1,
    checkPort: b + 2,
    ports: { blue: b + 3, green: b + 4 },
    domains: [DOMAIN],
    tls: { hstsMaxAge, httpsPort: b + 5 },
    acmePort: b + 6,
  });
  try {
    const cfg = host.configureAndStart();
    assert.strictEqual(cfg.status, 0, cfg.stderr);
    await host.startSlot("blue", "v1");
    if (greenToo) await host.startSlot("green", "v2");
    const first = host.switchTo("blue");
    assert.strictEqual(first.status, 0, first.stderr);
    return host;
  } catch (e) {
    // The caller never gets the host to stop: stop it here, or its router keeps these ports.
    host.stop();
    throw e;
  }
}

function filesMode(host: Sandbox, cert: { certificate: string; key: string }, env: Record<string, string> = {}) {
  return host.tool(
    "tls-config.sh",
    { MODE: "files", DOMAINS: DOMAIN, ...env },
    renderBundle({ certificate: cert.certificate, key: cert.key }),
  );
}

for (const router of ["nginx", "haproxy"] as const) {
  const b = router === "nginx" ? 18740 : 18760;
  const httpsPort = b + 5;
  const reloaded =
    router === "nginx"
      ? "nginx was not reloaded"
      : "haproxy was reloaded once to add the app's first certificate to its :443 crt-list";
  const notReloaded =
    router === "nginx"
      ? "nginx was not reloaded"
      : "haproxy was not reloaded (runtime API: set ssl cert, commit ssl cert)";

  describe(`HTTPS through a real ${router} (local sandbox)`, function () {
    this.timeout(120_000);
    let host: Sandbox;
    let pki: Pki;
    before(async () => {
      pki = new Pki();
      host = await tlsHost(router, b, 600, true);
    });
    after(() => {
      host?.stop();
      pki?.stop();
    });

    it(
      "before any certificate: port 80 serves the app, no redirect" +
        (router === "haproxy" ? "; no :443 listener (HAProxy refuses one without a certificate)" : ""),
      () => {
        assert.match(head(`http://${DOMAIN}:${b}/`, b), /^HTTP\/1\.1 200 /);
        if (router === "haproxy") {
          const frontend = fs.readFileSync(host.at("/etc/haproxy/bluegreen/10-public.cfg"), "utf8");
          assert.match(
            frontend,
            new RegExp(`^#bluegreen-https {4}bind 127\\.0\\.0\\.1:${httpsPort} ssl crt-list `, "m"),
          );
          assert.strictEqual(fs.readFileSync(host.at("/etc/haproxy/bluegreen/certs.list"), "utf8"), "");
          assert.strictEqual(servedSerial(httpsPort), "");
        }
      },
    );

    it("files: while a new handshake does not get the certificate, port 80 keeps serving plain HTTP", () => {
      // The check looks on a port nothing serves: as if the router served another certificate.
      const r = filesMode(host, pki.leaf(), { BG_HTTPS_PORT: String(b + 9) });
      assert.strictEqual(r.status, 1, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(
          `bluegreen: error: ${router} serves certificate serial 'none' on :443, not the installed 5EED0001; see: `,
        ),
      );
      // Installed all the same (HAProxy: its first certificate, with one reload), just not verified.
      assert.ok(r.stdout.includes(`installed, expires `) && r.stdout.includes(`; ${reloaded}\n`), r.stdout);
      assert.ok(!fs.existsSync(host.at(layout.httpsFlag)));
      assert.match(head(`http://${DOMAIN}:${b}/`, b), /^HTTP\/1\.1 200 /);
    });

    it("files: installed, verified served to a new handshake, and only then port 80 redirects; HSTS on :443 only", () => {
      const cert = pki.leaf();
      const r = filesMode(host, cert);
      assert.strictEqual(r.status, 0, r.stderr);
      assert.match(
        r.stdout,
        new RegExp(
          `^tls: files; certificate serial ${cert.serial} installed, expires \\S+; ${router === "nginx" ? reloaded : notReloaded.replace(/[()]/g, "\\$&")}\\nverified: a new TLS handshake on 127\\.0\\.0\\.1:443 gets serial ${cert.serial}\\n$`,
        ),
      );
      assert.strictEqual(servedSerial(httpsPort), cert.serial);
      const plain = head(`http://${DOMAIN}:${b}/x?y=1`, b);
      assert.match(plain, /^HTTP\/1\.1 308 /);
      assert.match(
        plain,
        new RegExp(`\\r\\nlocation: https://${DOMAIN.replace(/\./g, "\\.")}(:${b})?/x\\?y=1\\r\\n`, "i"),
      );
      assert.doesNotMatch(plain, /strict-transport-security/i);
      const secure = head(`https://${DOMAIN}:${httpsPort}/`, httpsPort);
      assert.match(secure, /^HTTP\/[12](\.1)? 200 /);
      assert.match(secure, /\r\nstrict-transport-security: max-age=600\r\n/i);
      assert.match(secure, /\r\nx-bluegreen-color: blue\r\n/i);
      // ACME HTTP-01 is never redirected.
      assert.doesNotMatch(head(`http://${DOMAIN}:${b}/.well-known/acme-challenge/t0ken`, b), /^HTTP\/1\.1 308 /);
    });

    it("a renewal under 64 keep-alive HTTPS connections: new handshakes get the new serial, 0 failed requests, open connections keep theirs, the same worker PIDs", async () => {
      const pids = settledWorkers(host);
      // A connection opened before the renewals, used after them. Its first request is sent at
      // once: a connection that sends nothing gets HAProxy's 408 after `timeout http-request`
      // (10 s), and the renewals can take that long on a busy machine; kept alive, it waits 75 s.
      const early = tls.connect({ host: "127.0.0.1", port: httpsPort, servername: DOMAIN, rejectUnauthorized: false });
      await new Promise((ok) => early.once("secureConnect", ok));
      const earlySerial = early.getPeerCertificate().serialNumber;
      early.write(`GET / HTTP/1.1\r\nHost: ${DOMAIN}\r\n\r\n`);
      const first = await new Promise<string>((ok) => early.once("data", (d: Buffer) => ok(d.toString())));
      assert.match(first, /^HTTP\/1\.1 200 /);
      const load = startWrk(`https://127.0.0.1:${httpsPort}/`, {
        connections: 64,
        seconds: 7,
        headers: [`Host: ${DOMAIN}`],
      });
      const serials: string[] = [];
      for (let i = 0; i < 3; i++) {
        await sleep(1200);
        const cert = pki.leaf();
        const r = filesMode(host, cert);
        assert.strictEqual(r.status, 0, r.stderr);
        assert.ok(r.stdout.includes(`; ${notReloaded}\n`), r.stdout);
        assert.strictEqual(servedSerial(httpsPort), cert.serial);
        serials.push(cert.serial);
      }
      const w = await load.done;
      assert.ok(w.requests > 1000, `wrk made ${w.requests} requests:\n${w.raw}`);
      assert.strictEqual(w.socketErrors, 0, w.raw);
      assert.strictEqual(w.non2xx, 0, w.raw);
      assert.strictEqual(workerPids(host), pids, "the router's workers changed: it was reloaded");
      early.write(`GET / HTTP/1.1\r\nHost: ${DOMAIN}\r\nConnection: close\r\n\r\n`);
      const answer = await new Promise<string>((ok) => {
        let out = "";
        early.on("data", (d) => (out += d));
        early.on("end", () => ok(out));
      });
      assert.match(answer, /^HTTP\/1\.1 200 /);
      assert.strictEqual(earlySerial.toUpperCase().replace(/^0+/, ""), "5EED0002");
      console.log(
        `      ${router}: ${w.requests} requests, ${w.rps} req/s, p99 ${w.p99ms} ms; serials ${serials.join(" -> ")}; workers ${pids}`,
      );
    });

    if (router === "haproxy")
      it("a second app on the same HAProxy: its own certificate by SNI; a renewal of one leaves the other's alone, with no reload", () => {
        // The app shop, as its own router-config.sh and tls step would leave it on this host.
        const shop = appLayout("shop");
        const SHOP = "shop.bluegreen.test";
        const o = {
          layout: shop,
          domains: [SHOP],
          tls: { hstsMaxAge: 0 },
          previewPort: b + 7,
          checkPort: b + 8,
          maintenanceRetryAfter: 120,
          ports: { blue: b + 3, green: b + 4 },
        };
        const here = (t: string) =>
          t
            .replace(new RegExp(`(${shop.stateDir}|${shop.runDir})/`, "g"), (m) => host.at(m))
            .replace(/^ {4}(user|group) .*\n/gm, "");
        const shopCert = pki.leaf(SHOP);
        fs.mkdirSync(host.at(`${shop.tlsDir}/live`), { recursive: true });
        fs.mkdirSync(host.at(`${shop.stateDir}/www`), { recursive: true });
        fs.writeFileSync(host.at(shop.tlsPem), shopCert.certificate + shopCert.key);
        fs.writeFileSync(host.at(`${shop.stateDir}/www/maintenance.html`), "<p>maintenance</p>\n");
        fs.writeFileSync(
          host.at(shop.haproxyMap),
          "live bluegreen_shop_blue_tcp\nidle bluegreen_shop_green_tcp\nmaintenance off\nhttps on\n",
        );
        fs.writeFileSync(host.at(shop.haproxyApp), here(renderHaproxyApp(o)));
        fs.writeFileSync(host.at(shop.haproxyRoute), here(renderHaproxyRoute(o)));
        fs.writeFileSync(host.at(shop.haproxyCrt), here(renderHaproxyCrt(o)));
        // This app's router step assembles the crt-list and the frontend with shop's entries: one reload.
        const cfg = host.routerConfig();
        assert.strictEqual(cfg.status, 0, cfg.stderr);
        assert.strictEqual(
          fs.readFileSync(host.at(shared.haproxyCrtList), "utf8"),
          `${host.at(shop.tlsPem)} ${SHOP}\n${host.at(layout.tlsPem)} ${DOMAIN}\n`,
        );
        const mine = servedSerial(httpsPort);
        assert.strictEqual(servedSerial(httpsPort, SHOP), shopCert.serial);
        assert.notStrictEqual(mine, shopCert.serial);
        const pids = settledWorkers(host);
        const renewed = pki.leaf();
        const r = filesMode(host, renewed);
        assert.strictEqual(r.status, 0, r.stderr);
        assert.ok(r.stdout.includes(`; ${notReloaded}\n`), r.stdout);
        assert.strictEqual(servedSerial(httpsPort), renewed.serial);
        assert.strictEqual(servedSerial(httpsPort, SHOP), shopCert.serial);
        assert.strictEqual(workerPids(host), pids);
        // A transaction a killed renewal left open on shop's certificate. HAProxy 2.6 keeps one
        // at a time and answers `set ssl cert` for the open path, whatever path was asked: the
        // next renewal of this app aborts it first, and shop keeps its own certificate.
        const shopPem = host.at(shop.tlsPem);
        const left = host.lib(`haproxy_cli_payload "set ssl cert ${shopPem}" "${shopPem}"`);
        assert.strictEqual(left.stdout.trim(), `Transaction created for certificate ${shopPem}!`);
        const again = pki.leaf();
        const r2 = filesMode(host, again);
        assert.strictEqual(r2.status, 0, r2.stderr);
        assert.ok(
          r2.stderr.includes(`bluegreen: aborted a certificate transaction left open on ${shopPem}\n`),
          r2.stderr,
        );
        assert.strictEqual(servedSerial(httpsPort), again.serial);
        assert.strictEqual(servedSerial(httpsPort, SHOP), shopCert.serial);
        assert.strictEqual(workerPids(host), pids);
      });

    if (router === "haproxy")
      it("a catch-all app in maintenance leaves the names another app claims alone (every http-request rule runs before any use_backend)", () => {
        // The app edge (no domains: every name no app claims), as its router step would leave it.
        const edge = appLayout("edge");
        const o = {
          layout: edge,
          domains: [] as string[],
          previewPort: b + 17,
          checkPort: b + 18,
          maintenanceRetryAfter: 60,
          ports: { blue: b + 3, green: b + 4 },
        };
        const here = (t: string) =>
          t
            .replace(new RegExp(`(${edge.stateDir}|${edge.runDir})/`, "g"), (m) => host.at(m))
            .replace(/^ {4}(user|group) .*\n/gm, "");
        fs.mkdirSync(host.at(`${edge.stateDir}/www`), { recursive: true });
        fs.writeFileSync(host.at(`${edge.stateDir}/www/maintenance.html`), "<p>edge: maintenance</p>\n");
        fs.writeFileSync(
          host.at(edge.haproxyMap),
          "live bluegreen_edge_blue_tcp\nidle bluegreen_edge_green_tcp\nmaintenance on\nhttps off\n",
        );
        const files = [edge.haproxyApp, edge.haproxyRoute, edge.haproxyCrt].map((f) => host.at(f));
        fs.writeFileSync(files[0], here(renderHaproxyApp(o)));
        fs.writeFileSync(files[1], here(renderHaproxyRoute(o)));
        fs.writeFileSync(files[2], "");
        const cfg = host.routerConfig();
        assert.strictEqual(cfg.status, 0, cfg.stderr);
        try {
          const status = (name: string, url: string) =>
            run("curl", [
              "-ksS",
              "-o",
              "/dev/null",
              "-w",
              "%{http_code}",
              "--max-time",
              "5",
              "-H",
              `Host: ${name}`,
              url,
            ]).stdout;
          // This app's name: its live slot, over https and (redirected) over http.
          assert.match(head(`https://${DOMAIN}:${httpsPort}/`, httpsPort), /^HTTP\/(1\.1|2) 200 /);
          assert.strictEqual(status(DOMAIN, `http://127.0.0.1:${b}/`), "308");
          // Any other name: the catch-all's maintenance page.
          assert.strictEqual(status("other.bluegreen.test", `http://127.0.0.1:${b}/`), "503");
        } finally {
          for (const f of files) fs.rmSync(f, { force: true });
          const back = host.routerConfig();
          assert.strictEqual(back.status, 0, back.stderr);
        }
      });

    it("X-Forwarded-Proto is https on :443", async () => {
      // An echo server as the live slot, on blue's tcp port.
      const echo = http.createServer((req, res) => {
        res.setHeader("x-bluegreen-color", "blue");
        res.end(JSON.stringify(req.headers));
      });
      await new Promise<void>((ok) => echo.listen(b + 3, "127.0.0.1", ok));
      const slot = host.at(`${layout.stateDir}/slots/blue`);
      const listen = fs.readFileSync(`${slot}/listen`, "utf8");
      try {
        fs.writeFileSync(`${slot}/listen`, `127.0.0.1:${b + 3}\n`);
        fs.writeFileSync(`${slot}/tcp`, "");
        const sync = host.lib("router_sync");
        assert.strictEqual(sync.status, 0, sync.stderr);
        // Awaited, not spawnSync: this process's echo server must answer it.
        const got = await curlAsync(`https://${DOMAIN}:${httpsPort}/`, httpsPort);
        assert.strictEqual((JSON.parse(got) as Record<string, string>)["x-forwarded-proto"], "https", got);
      } finally {
        echo.close();
        // Blue, the demo app, on its socket again.
        fs.writeFileSync(`${slot}/listen`, listen);
        fs.rmSync(`${slot}/tcp`, { force: true });
        host.lib("router_sync");
      }
    });

    it("tls off: port 80 stops redirecting at once", () => {
      const r = host.tool("tls-config.sh", { MODE: "off", DOMAINS: DOMAIN }, "");
      assert.strictEqual(r.status, 0, r.stderr);
      assert.match(head(`http://${DOMAIN}:${b}/`, b), /^HTTP\/1\.1 200 /);
    });
  });
}

/** curl in a child process, awaited (so this process's own servers can answer it). */
function curlAsync(url: string, port: number): Promise<string> {
  return new Promise((ok, fail) => {
    const c = spawn("curl", ["-ksS", "--max-time", "5", "--resolve", `${DOMAIN}:${port}:127.0.0.1`, url]);
    let out = "";
    let err = "";
    c.stdout.on("data", (d) => (out += d));
    c.stderr.on("data", (d) => (err += d));
    c.on("close", (code) => (code === 0 ? ok(out) : fail(new Error(err))));
  });
}

/** pebble (a test ACME server) and pebble-challtestsrv (its DNS: every name is 127.0.0.1), as in test/e2e/pebble-in-vm.sh. */
class Pebble {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "bg-pebble-"));
  private readonly children: ChildProcess[] = [];
  readonly directory: string;
  constructor(
    private readonly port: number,
    httpPort: number,
  ) {
    for (const t of ["pebble", "pebble-challtestsrv", "lego"]) requireTool(t);
    const d = this.dir;
    const sh = run("bash", [
      "-c",
      `set -e; cd ${d}
      openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout ca.key -out ca.pem -days 2 -subj "/CN=pebble listener CA" 2>/dev/null
      openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout pebble.key -out pebble.csr -subj /CN=localhost 2>/dev/null
      printf '%s\\n' subjectAltName=DNS:localhost,IP:127.0.0.1 extendedKeyUsage=serverAuth >pebble.ext
      openssl x509 -req -in pebble.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile pebble.ext -out pebble.crt 2>/dev/null`,
    ]);
    assert.strictEqual(sh.status, 0, sh.stderr);
    fs.writeFileSync(
      `${d}/pebble.json`,
      JSON.stringify({
        pebble: {
          listenAddress: `127.0.0.1:${port}`,
          managementListenAddress: `127.0.0.1:${port + 1}`,
          certificate: `${d}/pebble.crt`,
          privateKey: `${d}/pebble.key`,
          httpPort,
          tlsPort: port + 2,
          ocspResponderURL: "",
          externalAccountBindingRequired: false,
        },
      }),
    );
    this.children.push(
      spawn(
        "pebble-challtestsrv",
        [
          ...["-management", `127.0.0.1:${port + 4}`, "-dns01", `127.0.0.1:${port + 3}`],
          ...["-http01", "", "-https01", "", "-tlsalpn01", "", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
        ],
        { stdio: "ignore" },
      ),
      spawn("pebble", ["-config", `${d}/pebble.json`, "-dnsserver", `127.0.0.1:${port + 3}`], {
        stdio: "ignore",
        env: { ...process.env, PEBBLE_VA_NOSLEEP: "1", PEBBLE_WFE_NONCEREJECT: "0", PEBBLE_AUTHZREUSE: "0" },
      }),
    );
    this.directory = `https://127.0.0.1:${port}/dir`;
  }
  get ca(): string {
    return fs.readFileSync(`${this.dir}/ca.pem`, "utf8");
  }
  async ready(): Promise<void> {
    for (let i = 0; i < 100; i++) {
      if (run("curl", ["-fsS", "--cacert", `${this.dir}/ca.pem`, this.directory]).status === 0) return;
      await sleep(200);
    }
    throw new Error("pebble did not start");
  }
  stop() {
    for (const c of this.children) c.kill("SIGKILL");
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

for (const router of ["nginx", "haproxy"] as const) {
  const b = router === "nginx" ? 18800 : 18820;
  const httpsPort = b + 5;
  describe(`acme (HTTP-01, DNS-01) through a real ${router}, against a local pebble`, function () {
    this.timeout(120_000);
    let host: Sandbox;
    let pebble: Pebble;
    const status = () =>
      Object.fromEntries(
        fs
          .readFileSync(host.at(`${layout.tlsDir}/status`), "utf8")
          .trim()
          .split("\n")
          .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
      );
    before(async () => {
      pebble = new Pebble(b + 10, b);
      host = await tlsHost(router, b, 0, false);
      await pebble.ready();
      // What tls-config.sh writes before it runs tls-renew.sh (it also enables the systemd timer, not here).
      const conf = host.at(layout.tlsConfDir);
      fs.mkdirSync(conf, { recursive: true, mode: 0o700 });
      fs.writeFileSync(
        `${conf}/acme.conf`,
        renderAcmeConf({
          email: "ops@bluegreen.test",
          directory: pebble.directory,
          challenge: "http-01",
          domains: [DOMAIN],
          dnsResolvers: [],
          httpPort: router === "haproxy" ? b + 6 : undefined,
        }),
      );
      fs.writeFileSync(`${conf}/ca.pem`, pebble.ca);
    });
    after(() => {
      host?.stop();
      pebble?.stop();
    });

    it(`issue: pebble validates HTTP-01 through ${router} (${router === "nginx" ? "lego's webroot" : "lego's own server behind the app's acme backend"}), and new handshakes get the certificate`, () => {
      const r = host.tool("tls-renew.sh", {}, "", ["issue"]);
      assert.strictEqual(r.status, 0, r.stderr + r.stdout);
      const serial = status().serial;
      assert.match(
        r.stdout,
        new RegExp(
          `^certificate for ${DOMAIN.replace(/\./g, "\\.")} installed: serial ${serial}, expires \\S+; ${
            router === "nginx"
              ? "nginx was not reloaded"
              : "haproxy was reloaded once to add the app's first certificate to its :443 crt-list"
          }\\n$`,
        ),
      );
      assert.strictEqual(servedSerial(httpsPort), serial);
    });

    it("a forced renewal: validated again, the new serial served, the same worker PIDs", () => {
      const before = status().serial;
      // The issue reloaded HAProxy: the old worker could still take pebble's connections.
      const pids = settledWorkers(host);
      const r = host.tool("tls-renew.sh", {}, "", ["force"]);
      assert.strictEqual(r.status, 0, r.stderr + r.stdout);
      const after = status().serial;
      assert.notStrictEqual(after, before);
      assert.ok(
        r.stdout.endsWith(
          `; ${router === "nginx" ? "nginx was not reloaded" : "haproxy was not reloaded (runtime API: set ssl cert, commit ssl cert)"}\n`,
        ),
        r.stdout,
      );
      assert.strictEqual(servedSerial(httpsPort), after);
      if (router === "haproxy") {
        // The renewal was validated through the acme backend (to lego); the reload reset the counters.
        const stat = host.lib(
          `haproxy_cli "show stat" | awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "req_tot") r = i; next } $1 == "bluegreen_acme" && $2 == "BACKEND" { print $r }'`,
        );
        assert.strictEqual(stat.status, 0, stat.stderr);
        assert.ok(
          Number(stat.stdout.trim()) >= 1,
          `acme backend requests: ${stat.stdout.trim()} (workers ${pids} before, ${workerPids(host)} now); the renewal said: ${r.stdout}`,
        );
      }
      assert.strictEqual(workerPids(host), pids, "the router's workers changed: it was reloaded");
      console.log(`      ${router}: pebble serials ${before} -> ${after}; workers ${pids}`);
    });

    it("dns-01: a wildcard beside the name (the router reloads for the new domains), issued through a DNS hook, served by SNI; a renewal reloads nothing", () => {
      const WILD = `*.${DOMAIN}`;
      // pulumi up with the new domains: the router step first (the redirect stops: the certificate does not cover them).
      (host.opts as { domains?: readonly string[] }).domains = [DOMAIN, WILD];
      const cfg = host.routerConfig(undefined, { DOMAINS: `${DOMAIN} ${WILD}` });
      assert.strictEqual(cfg.status, 0, cfg.stderr);
      const hook = `${pebble.dir}/dns-hook.sh`;
      fs.writeFileSync(
        hook,
        [
          "#!/usr/bin/env bash",
          "set -euo pipefail",
          '[ "${FAKE_DNS_TOKEN:-}" = local-dns-token ] || exit 3',
          'case "$1" in',
          `  present) curl -fsS -X POST -d "{\\"host\\":\\"$2\\",\\"value\\":\\"$3\\"}" http://127.0.0.1:${b + 14}/set-txt ;;`,
          `  cleanup) curl -fsS -X POST -d "{\\"host\\":\\"$2\\"}" http://127.0.0.1:${b + 14}/clear-txt ;;`,
          "esac",
          "",
        ].join("\n"),
        { mode: 0o755 },
      );
      const conf = host.at(layout.tlsConfDir);
      fs.writeFileSync(
        `${conf}/acme.conf`,
        renderAcmeConf({
          email: "ops@bluegreen.test",
          directory: pebble.directory,
          challenge: "dns-01",
          domains: [DOMAIN, WILD],
          dnsProvider: "exec",
          dnsResolvers: [`127.0.0.1:${b + 13}`],
          dnsPropagationCheck: false,
        }),
      );
      fs.writeFileSync(
        `${conf}/dns.env`,
        `EXEC_PATH=${hook}\nEXEC_POLLING_INTERVAL=1\nEXEC_PROPAGATION_TIMEOUT=30\nEXEC_SEQUENCE_INTERVAL=0\nFAKE_DNS_TOKEN=local-dns-token\n`,
        { mode: 0o600 },
      );
      const pids = settledWorkers(host);
      const r = host.tool("tls-renew.sh", {}, "", ["issue"]);
      assert.strictEqual(r.status, 0, r.stderr + r.stdout);
      assert.ok(!(r.stdout + r.stderr).includes("local-dns-token"));
      const issued = status().serial;
      // The name and any one label under it, each by SNI.
      assert.strictEqual(servedSerial(httpsPort), issued);
      assert.strictEqual(servedSerial(httpsPort, `anything.${DOMAIN}`), issued);
      // Same path, another certificate: HAProxy takes it over the runtime API.
      assert.ok(
        r.stdout.endsWith(
          `; ${router === "nginx" ? "nginx was not reloaded" : "haproxy was not reloaded (runtime API: set ssl cert, commit ssl cert)"}\n`,
        ),
        r.stdout,
      );
      assert.strictEqual(workerPids(host), pids, "the router's workers changed: it was reloaded");
      const f = host.tool("tls-renew.sh", {}, "", ["force"]);
      assert.strictEqual(f.status, 0, f.stderr + f.stdout);
      assert.notStrictEqual(status().serial, issued);
      assert.strictEqual(servedSerial(httpsPort, `anything.${DOMAIN}`), status().serial);
      assert.strictEqual(workerPids(host), pids, "the router's workers changed: it was reloaded");
    });
  });
}
