import * as assert from "assert";
import * as fs from "fs";
import * as net from "net";
import { Sandbox } from "../support/sandbox";

// Several apps on one host: router-config.sh checks this app's claims against every
// other app's before it writes anything. The sandbox is the app named bluegreen; the
// other apps are their claims files, as their own router-config.sh would leave them.
describe("apps sharing a host: claims are checked before anything changes (local sandbox)", function () {
  this.timeout(60000);
  let host: Sandbox;
  const claims = (ns: string) => host.at(`/var/lib/bluegreen-apps/${ns}`);
  const site = () => fs.readFileSync(host.at("/etc/nginx/bluegreen/bluegreen.conf"), "utf8");
  const other = (text: string) => fs.writeFileSync(claims("bluegreen-shop"), text);
  const SHOP = "app=shop\nowner=organization/bluegreen/shop\ncatchall=no\ndomain=shop.example.com\nport=20011\n";

  before(async () => {
    host = new Sandbox({ mode: "socket", httpPort: 18150, previewPort: 18151, checkPort: 18152 });
    const r = host.configureAndStartNginx();
    assert.strictEqual(r.status, 0, r.stderr);
    await host.startSlot("blue", "v1");
    await host.startSlot("green", "v1");
  });
  after(() => host?.stop());

  it("records the app's owner, domains, catch-all and ports", () => {
    assert.strictEqual(
      fs.readFileSync(claims("bluegreen"), "utf8"),
      "app=bluegreen\nowner=organization/bluegreen/sandbox\ncatchall=yes\nrouter=nginx\nport=18151\nport=18152\nport=18201\nport=18202\n",
    );
  });

  it("the same app name from another stack is refused", () => {
    const before = site();
    const r = host.routerConfig(undefined, { OWNER: "organization/bluegreen/intruder" });
    assert.strictEqual(r.status, 1);
    assert.strictEqual(
      r.stderr,
      "bluegreen: error: app 'bluegreen' already exists on this host, deployed by organization/bluegreen/sandbox; organization/bluegreen/intruder cannot take it over. Choose another name: pulumi config set appName NAME. (If this stack is its owner under a new name or backend, delete " +
        host.at("/var/lib/bluegreen-apps/bluegreen") +
        " on the host.) Nothing was changed.\n",
    );
    assert.strictEqual(site(), before);
  });

  it("a domain another app serves is refused, naming that app and its stack; a wildcard beside it is not a collision", () => {
    other(SHOP);
    const before = site();
    const r = host.routerConfig(undefined, { DOMAINS: "example.com shop.example.com" });
    assert.strictEqual(r.status, 1);
    assert.strictEqual(
      r.stderr,
      "bluegreen: error: domain shop.example.com is already served by app 'shop' (stack organization/bluegreen/shop) on this host. Nothing was changed.\n",
    );
    assert.strictEqual(site(), before);
    assert.match(fs.readFileSync(claims("bluegreen"), "utf8"), /^catchall=yes$/m);
    const ok = host.routerConfig(undefined, { DOMAINS: "example.com *.example.com" });
    assert.strictEqual(ok.status, 0, ok.stderr);
    assert.match(fs.readFileSync(claims("bluegreen"), "utf8"), /\ndomain=example\.com\ndomain=\*\.example\.com\n/);
  });

  it("a stack that already deploys another app here cannot take a second name (no rename in place)", () => {
    other(SHOP.replace("owner=organization/bluegreen/shop", "owner=organization/bluegreen/sandbox"));
    const r = host.routerConfig(undefined, { DOMAINS: "example.com" });
    assert.strictEqual(r.status, 1);
    assert.strictEqual(
      r.stderr,
      "bluegreen: error: stack organization/bluegreen/sandbox already deploys app 'shop' on this host, so it cannot also be 'bluegreen': an app is not renamed in place. Set appName back to shop, or destroy that app first (pulumi destroy), then deploy this name. Nothing was changed.\n",
    );
  });

  it("a reload nginx -t accepted but could not apply (a port someone holds) fails the step and puts the old site back", async () => {
    fs.rmSync(claims("bluegreen-shop"), { force: true });
    const before = site();
    const squatter = net.createServer().listen(18159, "127.0.0.1");
    await new Promise((r) => squatter.once("listening", r));
    try {
      const r = host.routerConfig(undefined, {}, 18159);
      assert.strictEqual(r.status, 1);
      assert.match(
        r.stderr,
        /bluegreen: error: nginx accepted the new config but did not load it within 15 s, so it keeps serving the previous one, whose files were put back\./,
      );
      assert.strictEqual(site(), before);
      assert.strictEqual(host.servedColor(), "blue");
      assert.strictEqual(host.previewColor(), "green");
    } finally {
      squatter.close();
    }
  });

  it("a host without the shared nginx file yet (a fresh host) gets it", () => {
    const common = host.at("/etc/nginx/conf.d/bluegreen.conf");
    const ours = fs.readFileSync(common, "utf8");
    fs.rmSync(common);
    const r = host.routerConfig();
    assert.strictEqual(r.status, 0, r.stderr);
    assert.strictEqual(fs.readFileSync(common, "utf8"), ours);
  });

  it("the shared nginx file of a newer bluegreen (another app's) is never replaced by an older one", () => {
    const common = host.at("/etc/nginx/conf.d/bluegreen.conf");
    const ours = fs.readFileSync(common, "utf8");
    const newer = ours.replace(/^# bluegreen-common \d+$/m, "# bluegreen-common 99");
    assert.notStrictEqual(newer, ours);
    fs.writeFileSync(common, newer);
    const r = host.routerConfig();
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stderr, /keeping the host's shared nginx file \(version 99, newer than this app's bluegreen\)/);
    assert.strictEqual(fs.readFileSync(common, "utf8"), newer);
    fs.writeFileSync(common, ours);
  });

  it("a second app without domains (a second catch-all) is refused", () => {
    other(SHOP.replace("catchall=no\ndomain=shop.example.com\n", "catchall=yes\n"));
    const r = host.routerConfig();
    assert.strictEqual(r.status, 1);
    assert.strictEqual(
      r.stderr,
      "bluegreen: error: app 'shop' (stack organization/bluegreen/shop) already answers every name on this host, having no domains; give this app its domains: pulumi config set --path 'domains[0]' example.com. Nothing was changed.\n",
    );
  });

  it("a port another app uses is refused, naming the key to change", () => {
    other(SHOP.replace("port=20011", "port=18152"));
    const r = host.routerConfig(undefined, { DOMAINS: "example.com" });
    assert.strictEqual(r.status, 1);
    assert.strictEqual(
      r.stderr,
      "bluegreen: error: bluegreen:checkPort 18152 is already used by app 'shop' (stack organization/bluegreen/shop) on this host; choose a free one: pulumi config set checkPort PORT. Nothing was changed.\n",
    );
    fs.rmSync(claims("bluegreen-shop"));
    const ok = host.routerConfig();
    assert.strictEqual(ok.status, 0, ok.stderr);
    assert.strictEqual(host.servedColor(), "blue");
  });
});
