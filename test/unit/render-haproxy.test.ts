// The HAProxy renderers' HTTPS text, exactly, and the real haproxy binary's word on it.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { appLayout, layout } from "../../components/host/layout";
import {
  HTTPS_BIND_MARK,
  renderHaproxyApp,
  renderHaproxyCrt,
  renderHaproxyMain,
  renderHaproxyPublicHead,
  renderHaproxyRoute,
} from "../../components/router/haproxy";
import { loadScript } from "../../components/host/shell";
import { requireTool, run } from "../support/tools";

const SHOP = {
  layout: appLayout("shop"),
  domains: ["shop.example.com", "www.shop.example.com"],
  tls: { hstsMaxAge: 31536000 },
  acmePort: 20105,
  previewPort: 20101,
  checkPort: 20102,
  maintenanceRetryAfter: 120,
  ports: { blue: 20103, green: 20104 },
};

describe("HAProxy renderers: HTTPS", () => {
  it("main: TLS 1.2 and 1.3 with Mozilla's intermediate suites, no session tickets", () => {
    const main = renderHaproxyMain();
    assert.ok(main.includes("\n# bluegreen-haproxy 2\n"));
    assert.ok(
      main.includes(
        "    hard-stop-after 5m\n" +
          "    # HTTPS, once an app has a certificate: TLS 1.2 and 1.3, Mozilla's intermediate suites.\n" +
          "    ssl-default-bind-ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305\n" +
          "    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets\n\n",
      ),
      main,
    );
  });

  it("public head: the :443 listeners, marked for the host to uncomment, and X-Forwarded-Proto by the listener", () => {
    assert.strictEqual(HTTPS_BIND_MARK, "#bluegreen-https");
    assert.ok(
      renderHaproxyPublicHead().includes(
        [
          "frontend bluegreen_public",
          "    bind :80",
          "    bind [::]:80 v6only",
          "    # HTTPS: the host uncomments these while the crt-list holds a certificate (HAProxy refuses",
          "    # a TLS listener with none). Each app's certificate is chosen by SNI for its domains, and",
          "    # a renewed one is handed over the runtime API: no reload.",
          "#bluegreen-https    bind :443 ssl crt-list /etc/haproxy/bluegreen/certs.list alpn h2,http/1.1",
          "#bluegreen-https    bind [::]:443 v6only ssl crt-list /etc/haproxy/bluegreen/certs.list alpn h2,http/1.1",
          "    # HAProxy is the edge: a client-sent X-Forwarded-For would let it spoof its address.",
          "    http-request set-header X-Forwarded-For %[src]",
          "    http-request set-header X-Real-IP %[src]",
          "    http-request set-header X-Forwarded-Proto http unless { ssl_fc }",
          "    http-request set-header X-Forwarded-Proto https if { ssl_fc }",
          "",
        ].join("\n"),
      ),
    );
    // router-haproxy.sh uncomments the same mark.
    assert.ok(loadScript("router-haproxy.sh").includes(`sed 's/^${HTTPS_BIND_MARK}//'`));
  });

  it("route with tls: ACME HTTP-01 to lego, never redirected nor in maintenance; the redirect from the map; HSTS on :443", () => {
    assert.strictEqual(
      renderHaproxyRoute(SHOP),
      [
        "# bluegreen route: domains (app shop)",
        "    acl bluegreen_bluegreen_shop_host var(txn.bluegreen_host) -m str shop.example.com www.shop.example.com",
        "    http-request set-var(txn.bluegreen_claimed) int(1) if bluegreen_bluegreen_shop_host",
        "    acl bluegreen_bluegreen_shop_acme path_beg /.well-known/acme-challenge/",
        "    http-request redirect scheme https code 308 if bluegreen_bluegreen_shop_host !{ ssl_fc } !bluegreen_bluegreen_shop_acme { str(https),map(/var/lib/bluegreen-shop/haproxy.map) -m str on }",
        '    http-request return status 503 content-type "text/html; charset=utf-8" file /var/lib/bluegreen-shop/www/maintenance.html hdr Retry-After 120 hdr Cache-Control no-store if bluegreen_bluegreen_shop_host !bluegreen_bluegreen_shop_acme { str(maintenance),map(/var/lib/bluegreen-shop/haproxy.map) -m str on }',
        '    http-after-response set-header Strict-Transport-Security "max-age=31536000" if bluegreen_bluegreen_shop_host { ssl_fc }',
        "    use_backend bluegreen_shop_acme if bluegreen_bluegreen_shop_host bluegreen_bluegreen_shop_acme",
        "    use_backend %[str(live),map(/var/lib/bluegreen-shop/haproxy.map)] if bluegreen_bluegreen_shop_host",
        "",
      ].join("\n"),
    );
  });

  it("route with tls, dns-01 (no acme port) and no HSTS: only the redirect is added", () => {
    assert.strictEqual(
      renderHaproxyRoute({ ...SHOP, tls: { hstsMaxAge: 0 }, acmePort: undefined }),
      [
        "# bluegreen route: domains (app shop)",
        "    acl bluegreen_bluegreen_shop_host var(txn.bluegreen_host) -m str shop.example.com www.shop.example.com",
        "    http-request set-var(txn.bluegreen_claimed) int(1) if bluegreen_bluegreen_shop_host",
        "    http-request redirect scheme https code 308 if bluegreen_bluegreen_shop_host !{ ssl_fc } { str(https),map(/var/lib/bluegreen-shop/haproxy.map) -m str on }",
        '    http-request return status 503 content-type "text/html; charset=utf-8" file /var/lib/bluegreen-shop/www/maintenance.html hdr Retry-After 120 hdr Cache-Control no-store if bluegreen_bluegreen_shop_host { str(maintenance),map(/var/lib/bluegreen-shop/haproxy.map) -m str on }',
        "    use_backend %[str(live),map(/var/lib/bluegreen-shop/haproxy.map)] if bluegreen_bluegreen_shop_host",
        "",
      ].join("\n"),
    );
  });

  it("catch-all route: its redirect, maintenance page, HSTS and ACME route skip the names another app claimed", () => {
    assert.strictEqual(
      renderHaproxyRoute({ ...SHOP, domains: [] }),
      [
        "# bluegreen route: catch-all (app shop)",
        "    acl bluegreen_bluegreen_shop_acme path_beg /.well-known/acme-challenge/",
        "    http-request redirect scheme https code 308 if !{ var(txn.bluegreen_claimed) -m found } !{ ssl_fc } !bluegreen_bluegreen_shop_acme { str(https),map(/var/lib/bluegreen-shop/haproxy.map) -m str on }",
        '    http-request return status 503 content-type "text/html; charset=utf-8" file /var/lib/bluegreen-shop/www/maintenance.html hdr Retry-After 120 hdr Cache-Control no-store if !{ var(txn.bluegreen_claimed) -m found } !bluegreen_bluegreen_shop_acme { str(maintenance),map(/var/lib/bluegreen-shop/haproxy.map) -m str on }',
        '    http-after-response set-header Strict-Transport-Security "max-age=31536000" if !{ var(txn.bluegreen_claimed) -m found } { ssl_fc }',
        "    use_backend bluegreen_shop_acme if !{ var(txn.bluegreen_claimed) -m found } bluegreen_bluegreen_shop_acme",
        "    use_backend %[str(live),map(/var/lib/bluegreen-shop/haproxy.map)]",
        "",
      ].join("\n"),
    );
  });

  it("route without tls: no redirect, no HSTS, no ACME route, even with an acme port", () => {
    const plain = renderHaproxyRoute({ ...SHOP, tls: undefined });
    assert.doesNotMatch(plain, /redirect|Strict-Transport|acme/);
  });

  it("crt-list line: the live certificate, by SNI for the app's domains; none without tls", () => {
    assert.strictEqual(
      renderHaproxyCrt(SHOP),
      "/var/lib/bluegreen-shop/tls/live/cert.pem shop.example.com www.shop.example.com\n",
    );
    assert.strictEqual(renderHaproxyCrt({ ...SHOP, tls: undefined }), "");
  });

  it("app: lego's loopback backend with tls and an acme port only", () => {
    assert.ok(
      renderHaproxyApp(SHOP).endsWith(
        [
          "# ACME HTTP-01: lego's own server on loopback, up only while it solves a challenge.",
          "backend bluegreen_shop_acme",
          "    server lego 127.0.0.1:20105",
          "",
        ].join("\n"),
      ),
    );
    assert.doesNotMatch(renderHaproxyApp({ ...SHOP, tls: undefined }), /acme/);
    assert.doesNotMatch(renderHaproxyApp({ ...SHOP, acmePort: undefined }), /acme/);
  });

  it("real haproxy (-c) accepts two apps with HTTPS on one :443 crt-list, and the head without it; refuses :443 with an empty crt-list", () => {
    requireTool("haproxy", "apt-get install -y haproxy");
    requireTool("openssl");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bg-haproxy-c-"));
    try {
      const at = (p: string) => path.join(dir, p);
      const relocate = (t: string) =>
        t
          .replace(/\/etc\/haproxy\//g, at("etc/haproxy/"))
          .replace(/\/var\/lib\//g, at("var/lib/"))
          .replace(/\/run\//g, at("run/"))
          .replace(/^ {4}(user|group) .*\n/gm, "");
      const apps = [
        {
          ...SHOP,
          layout,
          domains: ["example.com", "www.example.com"],
          acmePort: 8083,
          previewPort: 8081,
          checkPort: 8082,
        },
        SHOP,
      ];
      fs.mkdirSync(at("etc/haproxy/bluegreen"), { recursive: true });
      fs.mkdirSync(at("run/haproxy"), { recursive: true });
      const crts: string[] = [];
      for (const o of apps) {
        fs.mkdirSync(at(`${o.layout.tlsDir}/live`), { recursive: true });
        fs.mkdirSync(at(`${o.layout.stateDir}/www`), { recursive: true });
        fs.writeFileSync(at(`${o.layout.stateDir}/www/maintenance.html`), "<p>maintenance</p>\n");
        fs.writeFileSync(at(`${o.layout.stateDir}/haproxy.map`), "live x\n");
        const r = run("openssl", [
          ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"],
          ...["-subj", `/CN=${o.domains[0]}`, "-addext", `subjectAltName=DNS:${o.domains.join(",DNS:")}`],
          ...["-keyout", at("key.pem"), "-out", at("cert.pem")],
        ]);
        assert.strictEqual(r.status, 0, r.stderr);
        fs.writeFileSync(
          at(o.layout.tlsPem),
          fs.readFileSync(at("cert.pem"), "utf8") + fs.readFileSync(at("key.pem"), "utf8"),
        );
        crts.push(relocate(renderHaproxyCrt(o)));
        fs.writeFileSync(at(`etc/haproxy/bluegreen/50-${o.layout.ns}.cfg`), relocate(renderHaproxyApp(o)));
      }
      fs.writeFileSync(at("etc/haproxy/haproxy.cfg"), relocate(renderHaproxyMain()));
      const head = relocate(renderHaproxyPublicHead());
      const routes = apps.map((o) => relocate(renderHaproxyRoute(o))).join("");
      const check = () =>
        run("haproxy", ["-c", "-f", at("etc/haproxy/haproxy.cfg"), "-f", at("etc/haproxy/bluegreen")]);
      // As the host assembles it: with a certificate, the :443 lines uncommented.
      fs.writeFileSync(at("etc/haproxy/bluegreen/certs.list"), crts.join(""));
      fs.writeFileSync(at("etc/haproxy/bluegreen/10-public.cfg"), head.replace(/^#bluegreen-https/gm, "") + routes);
      const withTls = check();
      assert.strictEqual(withTls.status, 0, withTls.stderr + withTls.stdout);
      // No certificate yet: the :443 lines stay comments, and the config loads.
      fs.writeFileSync(at("etc/haproxy/bluegreen/certs.list"), "");
      fs.writeFileSync(at("etc/haproxy/bluegreen/10-public.cfg"), head + routes);
      const without = check();
      assert.strictEqual(without.status, 0, without.stderr + without.stdout);
      // Why the mark exists: HAProxy refuses a TLS listener with no certificate.
      fs.writeFileSync(at("etc/haproxy/bluegreen/10-public.cfg"), head.replace(/^#bluegreen-https/gm, "") + routes);
      const empty = check();
      assert.strictEqual(empty.status, 1);
      assert.match(empty.stderr, /no SSL certificate specified for bind ':443'/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
