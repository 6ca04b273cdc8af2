// Apps on one host cannot reach each other's sockets; the router reaches them all.
// Real users and groups on this machine (the test runs as root and removes them after),
// the real setup-host.sh, and each slot's socket directory made the way systemd makes it
// from the rendered unit (no systemd here: RuntimeDirectory= with its mode, owned
// User:Group, then the unit's own ExecStartPre=+ lines as root, then the demo app as
// User:Group with the unit's UMask and the user's groups, as systemd's initgroups gives
// them). A real nginx whose workers run as a router user proxies to every app's socket.
// A real HAProxy runs as renderHaproxyMain() says (user haproxy, group bluegreen). Ports 19201-19208.
import * as assert from "assert";
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  appLayout,
  AppLayout,
  Color,
  layout as defaultLayout,
  renderLayoutSh,
  shared,
} from "../../components/host/layout";
import { renderSlotUnit } from "../../components/app/unitFiles";
import { renderHaproxyMain } from "../../components/router/haproxy";
import { libScriptNames, loadScript } from "../../components/host/shell";
import { buildDemoApp } from "../support/sandbox";
import { requireTool, run } from "../support/tools";

const ROUTER_USER = "bgtiso-router";
const A = appLayout("isoa");
const B = appLayout("isob");
const D = defaultLayout; // the default app, set up by an older bluegreen: user bluegreen in group bluegreen
const PORTS = { dBlue: 19201, dGreen: 19202, aBlue: 19203, bBlue: 19204 };
const HAPROXY_PORTS = { dBlue: 19205, dGreen: 19206, aBlue: 19207, bBlue: 19208 };

function sh(cmd: string): string {
  const r = run("bash", ["-c", cmd]);
  if (r.status !== 0) throw new Error(`${cmd}: exit ${r.status}: ${r.stderr}${r.stdout}`);
  return r.stdout.trim();
}
const exists = (kind: "passwd" | "group", name: string) => run("getent", [kind, name]).status === 0;

/** What a process of USER in GROUP (plus USER's groups from /etc/group, as systemd sets them) gets connecting to SOCK. */
function connectAs(user: string, group: string, sock: string): string {
  const probe =
    "const s = require('net').connect(process.argv[1]);" +
    "s.on('connect', () => { console.log('connected'); s.destroy(); });" +
    "s.on('error', (e) => console.log(e.code));";
  const r = run("setpriv", ["--reuid", user, "--regid", group, "--init-groups", process.execPath, "-e", probe, sock]);
  return (r.stdout + r.stderr).trim();
}

describe("app isolation on one host: real users and groups, setup-host.sh, sockets as the unit makes them, nginx as a router user", function () {
  this.timeout(120_000);
  let root = "";
  let app = "";
  let routerGroupWasThere = false;
  let madeUsers = false; // set once the checks found none of the test's users here
  const slots: ChildProcess[] = [];
  const at = (p: string) => path.join(root, p);
  const sock = (L: AppLayout, c: Color) => at(L.slotSocket(c));
  const curl = (port: number) => run("curl", ["-sS", "--max-time", "3", `http://127.0.0.1:${port}/`]);
  let livePidBefore = 0;
  let liveThroughRouterBefore = "";
  let setupOut = "";

  /** The app user's tools dir with the real layout.sh, lib.sh and setup-host.sh, all under root. */
  function installTools(L: AppLayout) {
    const dir = at(L.toolsDir);
    fs.mkdirSync(dir, { recursive: true });
    fs.mkdirSync(path.dirname(at(L.statusCommand)), { recursive: true });
    fs.writeFileSync(path.join(dir, "layout.sh"), renderLayoutSh(L, { root }));
    for (const name of [...libScriptNames(), "router-nginx.sh", "setup-host.sh"])
      fs.writeFileSync(path.join(dir, name), loadScript(name), { mode: 0o755 });
    return path.join(dir, "setup-host.sh");
  }

  /** Starts slot C of an app from UNIT the way systemd would, and waits for its socket. */
  function startSlot(L: AppLayout, c: Color, unit: string): ChildProcess {
    const one = (k: string) => {
      const m = new RegExp(`^${k}=(.*)$`, "m").exec(unit);
      if (!m) throw new Error(`the unit has no ${k}=:\n${unit}`);
      return m[1];
    };
    const [user, group] = [one("User"), one("Group")];
    // An older bluegreen's unit: systemd made the directory User:Group with its mode.
    const runtime = /^RuntimeDirectory=(.*)$/m.exec(unit)?.[1];
    if (runtime) {
      const dir = at(`/run/${runtime}`);
      fs.mkdirSync(path.dirname(dir), { recursive: true, mode: 0o755 });
      fs.mkdirSync(dir, { recursive: true });
      fs.chmodSync(dir, parseInt(one("RuntimeDirectoryMode"), 8));
      fs.chownSync(dir, Number(sh(`id -u ${user}`)), Number(sh(`getent group ${group} | cut -d: -f3`)));
    }
    for (const m of unit.matchAll(/^ExecStartPre=(.*)$/gm)) {
      assert.ok(m[1].startsWith("+"), `ExecStartPre runs as root ("+"): ${m[1]}`);
      sh(m[1].slice(1).replace(/ \/run\//g, ` ${root}/run/`));
    }
    const p = spawn(
      "setpriv",
      ["--reuid", user, "--regid", group, "--init-groups", "bash", "-c", `umask ${one("UMask")}; exec "$@"`, "-"]
        .concat([app, "--listen", `unix:${sock(L, c)}`, "--color", c, "--version", L.app])
        .concat(["--active-file", at("active"), "--shutdown-delay", "0s"]),
      { stdio: "ignore" },
    );
    slots.push(p);
    for (let i = 0; i < 100 && !fs.existsSync(sock(L, c)); i++) sh("sleep 0.05");
    assert.ok(fs.existsSync(sock(L, c)), `${L.ns}@${c} made no socket at ${sock(L, c)}`);
    return p;
  }
  const unitOf = (L: AppLayout, c: Color) => renderSlotUnit({ layout: L, color: c, args: "", drainTimeoutSeconds: 5 });
  /** What a process of app L gets connecting to SOCK: its user, in the group its rendered unit gives its slots and hooks. */
  const unitGroup = (L: AppLayout) => /^Group=(.*)$/m.exec(unitOf(L, "blue"))![1];
  const appConnects = (L: AppLayout, s: string) => connectAs(L.appUser, unitGroup(L), s);

  function cleanUp() {
    for (const u of [A.appUser, B.appUser, D.appUser, ROUTER_USER]) if (exists("passwd", u)) run("userdel", [u]);
    for (const g of [A.ns, B.ns, "bluegreen_app", ROUTER_USER]) if (exists("group", g)) run("groupdel", [g]);
    if (!routerGroupWasThere && exists("group", shared.webGroup)) run("groupdel", [shared.webGroup]);
  }

  before(function () {
    for (const t of ["nginx", "curl", "setpriv", "useradd", "usermod", "gpasswd", "groupadd"]) requireTool(t);
    requireTool("haproxy", "apt-get install -y haproxy");
    if (process.getuid?.() !== 0) throw new Error("this test makes real users and groups: run it as root");
    routerGroupWasThere = exists("group", shared.webGroup);
    if (exists("passwd", D.appUser))
      throw new Error(`user ${D.appUser} exists on this machine (a real bluegreen host?): this test would change it`);
    for (const u of [A.appUser, B.appUser, ROUTER_USER])
      if (exists("passwd", u)) throw new Error(`user ${u} is left from an interrupted run: userdel ${u}`);
    madeUsers = true;
    root = fs.mkdtempSync(path.join(os.tmpdir(), "bg-iso-"));
    fs.chmodSync(root, 0o755);
    app = at("app");
    fs.copyFileSync(buildDemoApp("v1"), app);
    fs.chmodSync(app, 0o755);

    // The host as an older bluegreen left it: the default app's user in the shared group
    // (its primary group), its live slot blue running that older unit (Group=bluegreen, no
    // ExecStartPre), a file in its data directory.
    if (!routerGroupWasThere) sh(`groupadd --system ${shared.webGroup}`);
    sh(
      `useradd --system --gid ${shared.webGroup} --home-dir ${at(D.dataDir)} --no-create-home --shell /usr/sbin/nologin ${D.appUser}`,
    );
    fs.mkdirSync(path.dirname(at(D.dataDir)), { recursive: true, mode: 0o755 });
    fs.mkdirSync(at(D.dataDir), { mode: 0o700 });
    fs.writeFileSync(at(`${D.dataDir}/app.db`), "data\n");
    sh(`chown -R ${D.appUser}:${shared.webGroup} ${at(D.dataDir)}`);
    const oldUnit = unitOf(D, "blue")
      .replace(/^Group=.*$/m, `Group=${shared.webGroup}`)
      .replace(/^ExecStartPre=.*\n/gm, "")
      .replace(/^ReadWritePaths=-\/run\/.*\n/m, "")
      .replace(/^UMask=/m, `RuntimeDirectory=${D.ns}/blue\nRuntimeDirectoryMode=0750\nUMask=`);
    const live = startSlot(D, "blue", oldUnit);
    livePidBefore = live.pid!;

    // The router's user is in the routers' group (router-install.sh does this for www-data).
    sh(`useradd --system --user-group --no-create-home --shell /usr/sbin/nologin ${ROUTER_USER}`);
    sh(`usermod -aG ${shared.webGroup} ${ROUTER_USER}`);
    const server = (port: number, s: string) =>
      `  server { listen 127.0.0.1:${port}; location / { proxy_pass http://unix:${s}:/; } }`;
    fs.mkdirSync(at("nginx-tmp"));
    fs.writeFileSync(
      at("nginx.conf"),
      [
        `user ${ROUTER_USER};`,
        "worker_processes 1;",
        `pid ${at("nginx.pid")};`,
        `error_log ${at("nginx-error.log")};`,
        "events { worker_connections 64; }",
        "http {",
        "  access_log off;",
        ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `  ${t}_temp_path ${at(`nginx-tmp/${t}`)};`),
        server(PORTS.dBlue, sock(D, "blue")),
        server(PORTS.dGreen, sock(D, "green")),
        server(PORTS.aBlue, sock(A, "blue")),
        server(PORTS.bBlue, sock(B, "blue")),
        "}",
        "",
      ].join("\n"),
    );
    sh(`nginx -q -c ${at("nginx.conf")}`);
    liveThroughRouterBefore = curl(PORTS.dBlue).stdout;

    // This bluegreen's setup on that host (the default app), then two new apps beside it.
    setupOut = sh(`${installTools(D)} 2>&1`);
    sh(installTools(A));
    sh(installTools(B));
    startSlot(D, "green", unitOf(D, "green")); // the idle slot, deployed by this bluegreen
    startSlot(A, "blue", unitOf(A, "blue"));
    startSlot(B, "blue", unitOf(B, "blue"));

    // HAProxy with the main file's identity: `user haproxy`, `group bluegreen`.
    const identity = renderHaproxyMain()
      .split("\n")
      .filter((l) => /^ {4}(user|group) /.test(l));
    const backends = [sock(D, "blue"), sock(D, "green"), sock(A, "blue"), sock(B, "blue")];
    fs.writeFileSync(
      at("haproxy.cfg"),
      ["global", ...identity, `    pidfile ${at("haproxy.pid")}`, "    daemon", "defaults", "    mode http"]
        .concat(["    timeout connect 2s", "    timeout client 5s", "    timeout server 5s"])
        .concat(
          Object.values(HAPROXY_PORTS).flatMap((port, i) => [
            `listen app${i}`,
            `    bind 127.0.0.1:${port}`,
            `    server s unix@${backends[i]}`,
          ]),
        )
        .join("\n") + "\n",
    );
    sh(`haproxy -q -f ${at("haproxy.cfg")}`);
  });

  after(function () {
    for (const pidFile of ["nginx.pid", "haproxy.pid"])
      if (root && fs.existsSync(at(pidFile))) run("kill", [fs.readFileSync(at(pidFile), "utf8").trim()]);
    for (const p of slots) p.kill();
    sh("sleep 0.3");
    if (madeUsers) cleanUp();
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it("app B's process cannot connect to app A's socket (EACCES), nor A's to B's or to the default app's; each app's own user can", () => {
    assert.strictEqual(appConnects(B, sock(A, "blue")), "EACCES");
    assert.strictEqual(appConnects(A, sock(B, "blue")), "EACCES");
    assert.strictEqual(appConnects(A, sock(D, "green")), "EACCES");
    assert.strictEqual(appConnects(D, sock(A, "blue")), "EACCES");
    assert.strictEqual(appConnects(A, sock(A, "blue")), "connected");
    assert.strictEqual(appConnects(B, sock(B, "blue")), "connected");
    assert.strictEqual(appConnects(D, sock(D, "green")), "connected");
  });

  it("the router's user reaches every socket, and real nginx (workers as that user) serves each app through it", () => {
    for (const s of [sock(A, "blue"), sock(B, "blue"), sock(D, "green"), sock(D, "blue")])
      assert.strictEqual(connectAs(ROUTER_USER, ROUTER_USER, s), "connected", s);
    const worker = sh(`pgrep -P ${fs.readFileSync(at("nginx.pid"), "utf8").trim()}`);
    assert.strictEqual(sh(`ps -o user= -p ${worker}`), ROUTER_USER);
    assert.deepStrictEqual(
      Object.values(PORTS).map((p) => curl(p).stdout),
      ["blue bluegreen\n", "green bluegreen\n", "blue isoa\n", "blue isob\n"],
    );
  });

  it("real HAProxy (user haproxy, group bluegreen: its worker's only group) serves each app through its socket", () => {
    const worker = fs.readFileSync(at("haproxy.pid"), "utf8").trim();
    const status = fs.readFileSync(`/proc/${worker}/status`, "utf8");
    // No supplementary groups (set_identity: setgroups(0), then setgid), its gid the routers' group.
    assert.strictEqual(/^Groups:(.*)$/m.exec(status)![1].trim(), "");
    const gid = /^Gid:\s+(\d+)\s+(\d+)/m.exec(status)!;
    assert.deepStrictEqual(
      [gid[1], gid[2]].map((g) => sh(`getent group ${g} | cut -d: -f1`)),
      [shared.webGroup, shared.webGroup],
    );
    assert.strictEqual(sh(`stat -c %U /proc/${worker}`), "haproxy");
    assert.deepStrictEqual(
      Object.values(HAPROXY_PORTS).map((p) => curl(p).stdout),
      ["blue bluegreen\n", "green bluegreen\n", "blue isoa\n", "blue isob\n"],
    );
  });

  it("a slot's socket directory is the app user's and the routers' group, setgid 2750; its socket (the demo app makes it 0660) is in that group", () => {
    for (const [L, c] of [
      [A, "blue"],
      [B, "blue"],
      [D, "green"],
    ] as const) {
      assert.strictEqual(
        sh(`stat -c '%a %U:%G' ${path.dirname(sock(L, c))} ${sock(L, c)}`),
        `2750 ${L.appUser}:${shared.webGroup}\n660 ${L.appUser}:${shared.webGroup}`,
      );
    }
  });

  it("each app's user is in its own group and no other; the router's user is in the routers' group", () => {
    assert.strictEqual(sh(`id -nG ${A.appUser}`), A.ns);
    assert.strictEqual(sh(`id -nG ${B.appUser}`), B.ns);
    assert.strictEqual(sh(`id -nG ${D.appUser}`), "bluegreen_app");
    assert.strictEqual(sh(`id -nG ${ROUTER_USER}`), `${ROUTER_USER} ${shared.webGroup}`);
    assert.strictEqual(sh(`stat -c '%a %U:%G' ${at(A.dataDir)}`), `700 ${A.appUser}:${A.ns}`);
  });

  it("app B's process cannot list app A's data directory", () => {
    const r = run("setpriv", ["--reuid", B.appUser, "--regid", unitGroup(B), "--init-groups", "ls", at(A.dataDir)]);
    assert.notStrictEqual(r.status, 0);
    assert.match(r.stderr, /Permission denied/);
  });

  it("a hook (lib.sh run_hook, systemd-run faked) runs in its app's group from the unit: it reaches its own socket, not another app's", () => {
    // The fake does what run_hook relies on (see any-app.test.ts) and runs the command as the
    // unit's User= and Group= that run_hook passes, as systemd would; it records the properties.
    const bin = at("bin");
    fs.mkdirSync(bin, { recursive: true });
    const fake = (name: string, text: string) =>
      fs.writeFileSync(path.join(bin, name), `#!/bin/bash\n${text}`, { mode: 0o755 });
    fake(
      "systemd-run",
      `out="" user="" group=""
while [ $# -gt 0 ]; do
  case "$1" in
    StandardOutput=file:*) out=\${1#StandardOutput=file:} ;;
    User=*) user=\${1#User=} ;;
    Group=*) group=\${1#Group=} ;;
    --) shift; break ;;
  esac
  [ "$1" = -p ] || echo "$1" >>${at("hook-props")}
  shift
done
setpriv --reuid "$user" --regid "$group" --init-groups "$@" >"$out" 2>&1
echo $? >${at("hook-status")}
exit "$(cat ${at("hook-status")})"
`,
    );
    fake("systemctl", `case "$*" in *ExecMainStatus*) cat ${at("hook-status")} ;; *Result*) echo exit-code ;; esac\n`);
    fs.mkdirSync(at(A.unitDir), { recursive: true });
    fs.writeFileSync(at(`${A.unitDir}/${A.ns}@blue.service`), unitOf(A, "blue"));
    fs.writeFileSync(at(`${A.envDir}/blue.env`), 'BLUEGREEN_COLOR="blue"\n');
    const probe = (s: string) =>
      `${process.execPath} -e "const s = require('net').connect('${s}'); s.on('connect', () => { console.log('connected'); s.destroy(); }); s.on('error', (e) => console.log(e.code));"`;
    const r = run(
      "bash",
      [
        "-c",
        `. ${at(`${A.toolsDir}/lib.sh`)}; rc=0; run_hook postSwitch blue "$1" 60 "" || rc=$?; echo "exit: $rc"`,
        "hook",
        `${probe(sock(B, "blue"))}\n${probe(sock(A, "blue"))}\nid -nG`,
      ],
      { env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}` } },
    );
    assert.strictEqual(r.stderr, "");
    assert.strictEqual(r.stdout, `  postSwitch| EACCES\n  postSwitch| connected\n  postSwitch| ${A.ns}\nexit: 0\n`);
    const props = fs.readFileSync(at("hook-props"), "utf8");
    assert.match(props, new RegExp(`^User=${A.appUser}\nGroup=${A.ns}\n`, "m"));
    assert.doesNotMatch(props, /RuntimeDirectory|ExecStartPre/);
  });

  it("an existing host: setup moves the default app's user out of the routers' group; its live slot keeps its process and socket, and the router never loses it", () => {
    assert.match(setupOut, /user bluegreen now has primary group bluegreen_app \(was bluegreen\)/);
    assert.strictEqual(sh(`stat -c '%G' ${at(`${D.dataDir}/app.db`)}`), "bluegreen_app");
    assert.strictEqual(liveThroughRouterBefore, "blue bluegreen\n");
    assert.strictEqual(curl(PORTS.dBlue).stdout, "blue bluegreen\n");
    // The same process, still as the older unit started it (setpriv and bash exec the app in place).
    assert.strictEqual(sh(`stat -c '%U:%G' /proc/${livePidBefore}`), `${D.appUser}:${shared.webGroup}`);
    assert.strictEqual(fs.readlinkSync(`/proc/${livePidBefore}/exe`), app);
    // The old unit's socket: in the routers' group through the slot's own group, as before.
    assert.strictEqual(
      sh(`stat -c '%a %U:%G' ${path.dirname(sock(D, "blue"))} ${sock(D, "blue")}`),
      `750 ${D.appUser}:${shared.webGroup}\n660 ${D.appUser}:${shared.webGroup}`,
    );
    // A new app's processes are not in that group, so they do not reach it either...
    assert.strictEqual(appConnects(B, sock(D, "blue")), "EACCES");
    // ...but until it is restarted with the new unit, the old slot's process (in the routers'
    // group) still reaches every app's socket: the isolation holds once every slot has been redeployed.
    assert.strictEqual(
      run("setpriv", [
        "--reuid",
        D.appUser,
        "--regid",
        shared.webGroup,
        "--groups",
        shared.webGroup,
        process.execPath,
        "-e",
        "require('net').connect(process.argv[1]).on('connect', () => { console.log('connected'); process.exit(0); }).on('error', (e) => console.log(e.code))",
        sock(A, "blue"),
      ]).stdout.trim(),
      "connected",
    );
  });
});
