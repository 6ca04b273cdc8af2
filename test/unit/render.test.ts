import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { appLayout, layout, renderLayoutSh } from "../../components/host/layout";
import { renderAcmeConf, renderTlsRenewUnits } from "../../components/app/tlsFiles";
import { renderCloudInit, renderToolsInstaller } from "../../components/host/installer";
import { renderNginxCommon, renderNginxSite } from "../../components/router/nginx";
import { renderBundle } from "../../components/host/shell";
import { renderSlotEnv, renderSlotUnit, slotListen } from "../../components/app/unitFiles";
import { ROOT } from "../support/harness";
import { requireTool, run } from "../support/tools";

const expected = (f: string) => fs.readFileSync(path.join(ROOT, "test", "expected", f), "utf8");

/** Runs `nginx -t` on the shared http-level file and these sites, with host paths moved into a temp dir. */
function nginxTest(...sites: string[]): { status: number | null; stderr: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bg-nginx-t-"));
  const move = (text: string) =>
    text
      .replace(/\/var\/lib\/bluegreen/g, `${dir}/var-lib-bluegreen`)
      .replace(/\/var\/log\/nginx\//g, `${dir}/`)
      .replace(/\/etc\/nginx\/bluegreen\//g, `${dir}/sites/`)
      .replace(/listen 80( default_server)?;/g, "listen 127.0.0.1:18999$1;")
      .replace(/listen 443 ssl http2( default_server)?;/g, "listen 127.0.0.1:18998 ssl http2$1;")
      .replace(/ *listen \[::\]:(80|443)[^;]*;\n/g, "");
  fs.mkdirSync(path.join(dir, "sites"));
  sites.forEach((site, i) => fs.writeFileSync(path.join(dir, "sites", `app${i}.conf`), move(site)));
  fs.writeFileSync(path.join(dir, "common.conf"), move(renderNginxCommon()));
  fs.writeFileSync(
    path.join(dir, "nginx.conf"),
    `pid ${dir}/nginx.pid; error_log ${dir}/error.log; events {} http { include ${dir}/common.conf; }\n`,
  );
  const r = run("nginx", ["-t", "-c", path.join(dir, "nginx.conf")]);
  fs.rmSync(dir, { recursive: true, force: true });
  return r;
}

describe("renderers", () => {
  describe("nginx site", () => {
    const site = renderNginxSite({
      layout,
      domains: [],
      previewPort: 8081,
      checkPort: 8082,
      maintenanceRetryAfter: 120,
      ports: { blue: 8001, green: 8002 },
    });

    it("matches the expected text", () => {
      assert.strictEqual(site, expected("nginx-site.conf"));
    });

    it("names no live colour: every server picks its slot per request from the live link", () => {
      // Colours appear only in the upstream group names and the -f test of the link.
      const directives = site
        .split("\n")
        .filter(
          (l) =>
            !l.trim().startsWith("#") &&
            !/^upstream bluegreen_(blue|green)_(socket|tcp) \{$/.test(l) &&
            !/^    server (unix:\/run\/bluegreen\/(blue|green)\/app\.sock|127\.0\.0\.1:800[12]);$/.test(l),
        )
        .join("\n");
      assert.deepStrictEqual(directives.match(/.*\b(blue|green)\b.*/g), [
        "    set $bluegreen_slot blue;",
        "    if (-f /var/lib/bluegreen/live/green) {",
        "        set $bluegreen_slot green;",
        "    set $bluegreen_slot blue;",
        "    if (-f /var/lib/bluegreen/live/green) {",
        "        set $bluegreen_slot green;",
        // The check listener: the slot a request names (the switch's gate), never a fixed one.
        "    if ($http_x_bluegreen_slot ~ ^(blue|green)$) {",
        "    set $bluegreen_slot green;",
        "    if (-f /var/lib/bluegreen/live/green) {",
        "        set $bluegreen_slot blue;",
      ]);
    });

    it("every server proxies to the group its request picked; no include, no link mode", () => {
      assert.strictEqual(
        site.match(/proxy_pass http:\/\/bluegreen_\$\{bluegreen_slot\}_\$\{bluegreen_mode\};/g)?.length,
        3,
      );
      assert.doesNotMatch(site, /include /);
    });

    it("only the public listener binds beyond loopback; check and preview are 127.0.0.1", () => {
      assert.deepStrictEqual(site.match(/listen [^;]+;/g), [
        "listen 80 default_server;",
        "listen [::]:80 default_server;",
        "listen 127.0.0.1:8082;",
        "listen 127.0.0.1:8081;",
      ]);
    });

    it("maintenance: a per-request flag check on the public server only, with Retry-After", () => {
      assert.strictEqual(site.match(/if \(-f \/var\/lib\/bluegreen\/maintenance\)/g)?.length, 1);
      assert.match(
        site,
        /location @bluegreen_maintenance \{\n        root \/var\/lib\/bluegreen\/www;\n        add_header Retry-After 120 always;/,
      );
    });

    it("real nginx accepts it (nginx -t)", function () {
      requireTool("nginx");
      const r = nginxTest(site);
      assert.strictEqual(r.status, 0, r.stderr);
    });

    it("the server name and ports are configurable", () => {
      const other = renderNginxSite({
        layout,
        domains: ["example.com", "www.example.com"],
        previewPort: 9000,
        checkPort: 9001,
        maintenanceRetryAfter: 60,
        ports: { blue: 7001, green: 7002 },
      });
      assert.match(
        other,
        /upstream bluegreen_blue_tcp \{\n    server 127\.0\.0\.1:7001;[\s\S]*server_name example\.com www\.example\.com;[\s\S]*listen 127\.0\.0\.1:9000;/,
      );
    });
  });

  describe("several apps on one nginx", () => {
    const shop = appLayout("shop");
    const shopSite = renderNginxSite({
      layout: shop,
      domains: ["shop.example.com"],
      tls: { hstsMaxAge: 0 },
      previewPort: 20011,
      checkPort: 20012,
      maintenanceRetryAfter: 60,
      ports: { blue: 20013, green: 20014 },
    });
    const mainSite = renderNginxSite({
      layout,
      domains: [],
      tls: { hstsMaxAge: 0 },
      previewPort: 8081,
      checkPort: 8082,
      maintenanceRetryAfter: 120,
      ports: { blue: 8001, green: 8002 },
    });

    it("the shared http-level file matches the expected text and includes every app's site", () => {
      assert.strictEqual(renderNginxCommon(), expected("nginx-common.conf"));
    });

    it("a named app has its own upstreams, paths, certificate variable and logs, and is not the default server", () => {
      assert.match(
        shopSite,
        /^upstream bluegreen_shop_blue_socket \{\n    server unix:\/run\/bluegreen-shop\/blue\/app\.sock;/m,
      );
      assert.match(shopSite, /proxy_pass http:\/\/bluegreen_shop_\$\{bluegreen_slot\}_\$\{bluegreen_mode\};/);
      assert.match(shopSite, /if \(-f \/var\/lib\/bluegreen-shop\/live\/green\)/);
      assert.match(shopSite, /ssl_certificate \$bluegreen_shop_tls_pem;/);
      assert.match(shopSite, /access_log \/var\/log\/nginx\/bluegreen-shop\.access\.log bluegreen;/);
      assert.match(shopSite, /\n    listen 80;\n    listen \[::\]:80;\n    server_name shop\.example\.com;/);
      assert.doesNotMatch(shopSite, /default_server|\/var\/lib\/bluegreen\/|bluegreen_blue_/);
    });

    it("real nginx accepts two apps' sites side by side on :80 and :443 (nginx -t)", function () {
      requireTool("nginx");
      const r = nginxTest(mainSite, shopSite);
      assert.strictEqual(r.status, 0, r.stderr);
    });

    it("a named app's unit runs as its own user in its own group, its socket directory in the routers' group (setgid), from its own paths", () => {
      const unit = renderSlotUnit({ layout: shop, color: "blue", args: "", drainTimeoutSeconds: 25 });
      assert.match(
        unit,
        /\nUser=bluegreen-shop\nGroup=bluegreen-shop\nEnvironmentFile=\/etc\/bluegreen-shop\/blue\.env\n/,
      );
      assert.ok(
        unit.includes(
          [
            "ExecStartPre=+/usr/bin/install -d -m 0755 /run/bluegreen-shop",
            "ExecStartPre=+/usr/bin/install -d -m 2750 -o bluegreen-shop -g bluegreen /run/bluegreen-shop/blue",
            "ExecStartPre=+/usr/bin/find /run/bluegreen-shop/blue -mindepth 1 -delete",
            "UMask=0007",
            "ReadWritePaths=/var/lib/bluegreen-shop/data",
            "ReadWritePaths=-/run/bluegreen-shop/blue",
          ].join("\n"),
        ),
        unit,
      );
      assert.doesNotMatch(unit, /^(Group|SupplementaryGroups)=bluegreen$/m);
      // systemd would set a RuntimeDirectory's mode and owner again before ExecStart, undoing the group and setgid bit.
      assert.doesNotMatch(unit, /^RuntimeDirectory/m);
    });
  });

  describe("nginx site with HTTPS", () => {
    const site = renderNginxSite({
      layout,
      domains: ["example.com", "www.example.com"],
      tls: { hstsMaxAge: 31536000 },
      previewPort: 8081,
      checkPort: 8082,
      maintenanceRetryAfter: 120,
      ports: { blue: 8001, green: 8002 },
    });

    it("matches the expected text: :443 with TLS 1.2/1.3 and the certificate read per handshake, :80 redirecting once a certificate is installed", () => {
      assert.strictEqual(site, expected("nginx-site-tls.conf"));
    });

    it("real nginx accepts it with no certificate on disk yet (the path is a variable, read at handshake)", function () {
      requireTool("nginx");
      const r = nginxTest(site);
      assert.strictEqual(r.status, 0, r.stderr);
    });

    it("HSTS is sent only over https and only when hstsMaxAge > 0, also on the maintenance page", () => {
      const [http, https] = site.split("listen 443 ssl");
      assert.doesNotMatch(http, /Strict-Transport-Security/);
      assert.strictEqual(https.match(/add_header Strict-Transport-Security "max-age=31536000" always;/g)?.length, 2);
      const off = renderNginxSite({
        layout,
        domains: ["example.com"],
        tls: { hstsMaxAge: 0 },
        previewPort: 8081,
        checkPort: 8082,
        maintenanceRetryAfter: 120,
        ports: { blue: 8001, green: 8002 },
      });
      assert.doesNotMatch(off, /Strict-Transport-Security/);
      assert.match(off, /listen 443 ssl http2;/);
    });

    it("ACME HTTP-01 tokens are served on :80 before the redirect, and never on the preview or check listeners", () => {
      const [port80] = site.split("listen 443 ssl");
      const challenge = port80.indexOf("location ^~ /.well-known/acme-challenge/ {");
      assert.ok(challenge > 0 && challenge < port80.indexOf("return 308 https://$host$request_uri;"));
      assert.strictEqual(site.match(/acme-challenge/g)?.length, 1);
    });
  });

  it("renewal units: a oneshot lego renewal twice a day at a random time, caught up after downtime", () => {
    const { service, timer } = renderTlsRenewUnits(layout);
    assert.match(service, /\nType=oneshot\nExecStart=\/usr\/local\/lib\/bluegreen\/tls-renew\.sh renew\n/);
    assert.match(timer, /\nOnCalendar=\*-\*-\* 00,12:00:00\nRandomizedDelaySec=12h\nPersistent=true\n/);
  });

  it("acme.conf: shell-quoted values tls-renew.sh sources", () => {
    assert.strictEqual(
      renderAcmeConf({
        email: "ops@example.com",
        directory: "https://acme-v02.api.letsencrypt.org/directory",
        challenge: "dns-01",
        domains: ["example.com", "*.example.com"],
        dnsProvider: "hetzner",
        dnsResolvers: ["1.1.1.1:53"],
      }),
      [
        "# Managed by bluegreen (Pulumi). Local edits are overwritten on the next `pulumi up`.",
        "ACME_EMAIL=ops@example.com",
        "ACME_DIRECTORY=https://acme-v02.api.letsencrypt.org/directory",
        "ACME_CHALLENGE=dns-01",
        "ACME_DOMAINS='example.com *.example.com'",
        "ACME_DNS_PROVIDER=hetzner",
        "ACME_DNS_RESOLVERS=1.1.1.1:53",
        "",
      ].join("\n"),
    );
  });

  it("systemd unit: matches the expected text (hardened, unprivileged, restart on failure, one file per slot)", () => {
    assert.strictEqual(
      renderSlotUnit({
        layout,
        color: "green",
        args: "--listen ${BLUEGREEN_LISTEN} --color ${BLUEGREEN_COLOR}",
        drainTimeoutSeconds: 25,
      }),
      expected("bluegreen@green.service"),
    );
  });

  it("systemd unit: stop timeout follows the drain timeout", () => {
    assert.match(
      renderSlotUnit({ layout, color: "blue", args: "", drainTimeoutSeconds: 100 }),
      /\nTimeoutStopSec=105\n/,
    );
  });

  it("systemd unit: real systemd-analyze verify accepts it", function () {
    requireTool("systemd-analyze", "apt-get install -y systemd");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bg-unit-"));
    const unit = renderSlotUnit({
      layout,
      color: "blue",
      args: "--listen ${BLUEGREEN_LISTEN} --name 'a b'",
      drainTimeoutSeconds: 25,
    }).replace(/^ExecStart=\S+/m, "ExecStart=/bin/true");
    fs.writeFileSync(path.join(dir, "bluegreen@blue.service"), unit);
    const r = run("systemd-analyze", ["verify", path.join(dir, "bluegreen@blue.service")]);
    fs.rmSync(dir, { recursive: true, force: true });
    assert.strictEqual(r.status, 0, r.stderr);
  });

  it("slot bundle: unit, env and URL as sections; a section holding the marker is refused", () => {
    assert.strictEqual(
      renderBundle({ unit: "U1\nU2\n", env: 'A="1"\n', sourceUrl: "https://x/y?t=1" }),
      '#bluegreen-section unit\nU1\nU2\n#bluegreen-section env\nA="1"\n#bluegreen-section sourceUrl\nhttps://x/y?t=1\n',
    );
    assert.strictEqual(
      renderBundle({ unit: "U\n", env: "" }),
      "#bluegreen-section unit\nU\n#bluegreen-section env\n\n",
    );
    assert.throws(
      () => renderBundle({ unit: "#bluegreen-section env\n", env: "" }),
      /the unit section contains the section marker/,
    );
  });

  it("env file: bluegreen's variables first, app env sorted, values quoted with C escapes", () => {
    const text = renderSlotEnv({
      layout,
      color: "green",
      version: "v2",
      listen: slotListen(layout, "socket", "green", 8002),
      drainTimeoutSeconds: 25,
      appEnv: { ZED: 'say "hi"', ALPHA: "C:\\path", HOME_REF: "$HOME" },
    });
    assert.strictEqual(
      text,
      [
        'BLUEGREEN_COLOR="green"',
        'BLUEGREEN_VERSION="v2"',
        'BLUEGREEN_LISTEN="unix:/run/bluegreen/green/app.sock"',
        'BLUEGREEN_DATA_DIR="/var/lib/bluegreen/data"',
        'BLUEGREEN_ACTIVE_FILE="/var/lib/bluegreen/active"',
        'BLUEGREEN_DRAIN_TIMEOUT="25"',
        'ALPHA="C:\\\\path"',
        'HOME_REF="$HOME"',
        'ZED="say \\"hi\\""',
        "",
      ].join("\n"),
    );
  });

  it("tcp listen addresses are loopback", () => {
    assert.strictEqual(slotListen(layout, "tcp", "blue", 8001), "127.0.0.1:8001");
  });

  it("cloud-init installs the key for the default user", () => {
    assert.strictEqual(
      renderCloudInit("ssh-ed25519 AAAA k"),
      '#cloud-config\nssh_authorized_keys:\n  - "ssh-ed25519 AAAA k"\n',
    );
  });

  it("layout.sh carries the same paths as layout.ts", () => {
    const text = renderLayoutSh();
    assert.match(text, /\nBG_LIVE_LINK=\/var\/lib\/bluegreen\/live\n/);
    assert.match(text, /\nnginx_test\(\) \{ timeout 60 nginx -t; \}\n/);
    assert.match(text, /\nBG_RELEASES_DIR=\/opt\/bluegreen\/releases\n/);
    assert.match(text, /\nBG_ACTIVE_FILE=\/var\/lib\/bluegreen\/active\n/);
  });

  describe("tools installer", () => {
    it("writes each file through a temporary name, then runs the final step", () => {
      const text = renderToolsInstaller(layout, [{ name: "a.sh", text: "echo a" }], "a.sh");
      assert.strictEqual(
        text,
        [
          "#!/usr/bin/env bash",
          "# Installs bluegreen's host tools. Generated by components/host/installer.ts.",
          "set -euo pipefail",
          "claims=/var/lib/bluegreen-apps/bluegreen",
          'if [ -f "$claims" ] && ! grep -qxF "owner=${OWNER:?}" "$claims"; then',
          `  echo "bluegreen: error: app 'bluegreen' on this host belongs to $(sed -n 's/^owner=//p' "$claims"), not to this stack ($OWNER); nothing was changed. Choose another appName; or, if this stack is its owner under a new name or backend, delete $claims on the host and run pulumi up again." >&2`,
          "  exit 1",
          "fi",
          "dir=/usr/local/lib/bluegreen",
          'install -d -m 0755 "$dir"',
          `cat > "$dir/.a.sh.new" <<'BLUEGREEN_TOOL_A_SH'`,
          "echo a",
          "BLUEGREEN_TOOL_A_SH",
          'chmod 0755 "$dir/.a.sh.new"',
          'mv -f "$dir/.a.sh.new" "$dir/a.sh"',
          '"$dir/a.sh"',
          "",
        ].join("\n"),
      );
    });

    it("refuses a file that contains its own heredoc marker, or an odd name", () => {
      assert.throws(
        () => renderToolsInstaller(layout, [{ name: "a.sh", text: "x\nBLUEGREEN_TOOL_A_SH\n" }], "a.sh"),
        /contains its heredoc marker/,
      );
      assert.throws(
        () => renderToolsInstaller(layout, [{ name: "../a.sh", text: "" }], "a.sh"),
        /not a plain script name/,
      );
    });
  });
});
