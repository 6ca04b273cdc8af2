// End-to-end: the program's own commands, replayed with the engine's rules
// (./replay.ts) against a real Debian host with systemd and sshd, once per router:
// nginx.e2e.ts and haproxy.e2e.ts call e2eScenarios with their router. The host is a
// systemd-nspawn container (./container.ts) or a qemu VM (./vm.ts), both booted from the
// same image (BLUEGREEN_E2E_RIG, default nspawn); qemu.e2e.ts runs QEMU_SCENARIOS on a VM.
// The scenarios run in order on one host per router; each starts from the state the
// previous one left, as a user's stack would. The any-app scenarios (24-28), which
// exercise the slots rather than the router, are defined for nginx only: not skipped,
// absent (README, Tests).
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { autoPorts } from "../../components/config/config";
import { autoMetricsPort } from "../../components/config/metrics";
import type { RouterKind } from "../../components/host/layout";
import { isSecret, plain, ROOT, runProgram } from "../support/harness";
import { startWrk, WrkResult } from "../support/sandbox";
import { run } from "../support/tools";
import { localStdoutFrom, resourcesOf, sftpPut, sshRun, StateEntry, up, UpResult } from "./replay";
import { bootHost, Host, Rig, rigFromEnv } from "./host";
import { ensureImage, GuestLoad, guestLoads as loadsInGuest, Image } from "./vm";

const FAULTS = "/var/lib/bluegreen/data/faults";

/** What differs between the routers, as seen from the host: everything else is asserted the same way. */
interface RouterUnderTest {
  readonly kind: RouterKind;
  /** Run once on the fresh host. The image enables nginx (a host that has one already); HAProxy hosts come without. */
  readonly prepare: string;
  /** The worker processes: the same PIDs mean no reload and no restart. */
  readonly workers: string;
  /** The master process: the same PID means no restart. */
  readonly master: string;
  /** Each app's file in the router's shared directory, as `ls` lists them (app names in, sorted). */
  readonly appFiles: (apps: readonly string[]) => string;
  readonly listAppFiles: string;
  /** HTTPS: the group that may read the served certificate file. */
  readonly tlsGroup: string;
  /** What the tls step says of the router when an app's first certificate is installed, and at a renewal. */
  readonly firstCertificate: string;
  readonly renewedCertificate: string;
  /** The status of an ACME challenge request while no challenge is being solved. */
  readonly idleChallenge: string;
  /** A guest command: the router's log lines of responses with status 400 or more since a guest time (s). */
  readonly errorLog: (since: number) => string;
}

const ROUTERS_UNDER_TEST: Readonly<Record<RouterKind, RouterUnderTest>> = {
  nginx: {
    kind: "nginx",
    prepare: "systemctl is-active nginx",
    workers: "pgrep -P $(cat /run/nginx.pid) | sort | tr '\\n' ' '",
    master: "cat /run/nginx.pid",
    appFiles: (apps) => apps.map((a) => `${a}.conf`).join(" "),
    listAppFiles: "ls /etc/nginx/bluegreen | tr '\\n' ' ' | sed 's/ $//'",
    // nginx's workers open the certificate at each handshake: nothing to reload, ever.
    tlsGroup: "www-data",
    firstCertificate: "nginx was not reloaded",
    renewedCertificate: "nginx was not reloaded",
    // lego's webroot, served by nginx: the token files are gone by now.
    idleChallenge: "404",
    // Each app's access log starts with $msec and $status; a client that gave up is logged as 499.
    errorLog: (since) =>
      `awk -v t=${since} '$1 >= t && $2 >= 400' /var/log/nginx/*.access.log; echo '(error.log, its last lines:)'; tail -n 8 /var/log/nginx/error.log`,
  },
  haproxy: {
    kind: "haproxy",
    prepare: "systemctl disable --now nginx",
    workers: "pgrep -P $(systemctl show -p MainPID --value haproxy) | sort | tr '\\n' ' '",
    master: "systemctl show -p MainPID --value haproxy",
    appFiles: (apps) => [...apps.flatMap((a) => [`${a}.crt`, `${a}.route`]), "head"].join(" "),
    listAppFiles: "ls /etc/haproxy/bluegreen/routes | tr '\\n' ' ' | sed 's/ $//'",
    // HAProxy's master reads the certificate (as root); a renewal goes over the runtime API.
    tlsGroup: "root",
    firstCertificate: "haproxy was reloaded once to add the app's first certificate to its :443 crt-list",
    renewedCertificate: "haproxy was not reloaded (runtime API: set ssl cert, commit ssl cert)",
    // lego's own server behind the app's acme backend, down between challenges.
    idleChallenge: "503",
    // "log stdout format raw" with option httplog: the 6th field is the status, the 10th the
    // termination state (who ended the session, in which phase); HAProxy's own alerts as they are.
    errorLog: (since) =>
      `journalctl -u haproxy -S @${since} -o cat --no-pager | awk '($6 ~ /^[0-9]+$/ && $6 >= 400) || /ALERT|WARNING|DOWN/'`,
  },
};

const escapeRe = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * The scenarios the qemu rig runs in CI (qemu.e2e.ts), each for what only a VM shows; the
 * nspawn suites run them too. 2 and 3 are what 9 reboots into (a switched stack), and the
 * zero-failure switch on a guest with its own kernel and NIC (README, Tests: qemu-only).
 */
export const QEMU_SCENARIOS: readonly string[] = ["1", "2", "3", "9"];

export interface ScenarioOptions {
  /** The rig of the host (default: BLUEGREEN_E2E_RIG, else nspawn). */
  readonly rig?: Rig;
  /** Only the scenarios with these numbers ("1", "4b", ...) are defined; default all. */
  readonly only?: readonly string[];
}

export function e2eScenarios(kind: RouterKind, options: ScenarioOptions = {}): void {
  const rig = options.rig ?? rigFromEnv();
  const router = ROUTERS_UNDER_TEST[kind];
  const report: string[] = [];
  const note = (line: string) => {
    report.push(line);
    console.log(`      ${line}`);
  };
  /**
   * A scenario for these routers only (default: both), and if `options.only` is set, only when
   * it names the scenario's number. For the others it is not defined at all.
   */
  const scenario = (title: string, fn: () => Promise<void>, only: readonly RouterKind[] = ["nginx", "haproxy"]) => {
    const number = /^(\w+)\. /.exec(title)?.[1];
    if (!number) throw new Error(`a scenario's title starts with its number: ${title}`);
    if (only.includes(kind) && (!options.only || options.only.includes(number))) it(title, fn);
  };
  const NGINX_ONLY: readonly RouterKind[] = ["nginx"];

  const where = rig === "qemu" ? "a qemu VM" : "an nspawn container";
  describe(`e2e on ${where}, router ${kind} (replayed program)`, function () {
    this.timeout(20 * 60_000);
    let image: Image;
    let host: Host;
    let state: StateEntry[] = [];
    let config: Record<string, unknown>;
    /** Keys set with --secret besides the usual ones (pulumi config set --secret). */
    let secretKeys: string[] = [];

    const baseConfig = () => ({
      hostKind: "ssh",
      sshHost: host.connection.host,
      sshPort: host.connection.port,
      sshPrivateKey: host.connection.privateKey,
      sshHostKey: host.connection.hostKey,
      router: kind,
      active: "blue",
      blueVersion: "v1",
      greenVersion: "v1",
      // A short post-switch watch keeps the scenarios quick; scenario 13 sets its own.
      watchSeconds: "3",
      // The demo app's fault injection, so scenarios can make a slot unhealthy.
      appArgs:
        "--listen ${BLUEGREEN_LISTEN} --color ${BLUEGREEN_COLOR} --version ${BLUEGREEN_VERSION} --drain-timeout ${BLUEGREEN_DRAIN_TIMEOUT}s --fault-dir ${BLUEGREEN_DATA_DIR}/faults",
    });

    /** Every secret value in the config: none may appear in a step's output (stdout/stderr are stored in state in plain text). */
    const secretValues = () => [
      ...host.connection.privateKey.split("\n").filter((l) => l.length > 20 && !l.startsWith("-----")),
      ...Object.values((config.appSecrets ?? {}) as Record<string, string>),
      ...Object.values((config.acmeDnsEnv ?? {}) as Record<string, string>).filter((v) => v.startsWith("secret-")),
      ...((config.tlsPrivateKey as string | undefined) ?? "")
        .split("\n")
        .filter((l) => l.length > 20 && !l.startsWith("-----")),
    ];

    /** `pulumi config set ...` then `pulumi up`, replayed. */
    async function deploy(changes: Record<string, unknown>): Promise<UpResult> {
      config = { ...config, ...changes };
      const result = await up(
        state,
        resourcesOf(await runProgram(config, { secretKeys, localStdout: localStdoutFrom(state) })),
      );
      state = result.state;
      for (const step of result.steps) {
        for (const secret of secretValues())
          assert.ok(!step.output.includes(secret), `step ${step.name} printed a secret value`);
      }
      return result;
    }

    const stepsOf = (r: UpResult) => r.steps.map((s) => `${s.action} ${s.name}${s.ok ? "" : " (failed)"}`);
    const output = (r: UpResult, name: string) => r.steps.find((s) => s.name === name)?.output ?? "";

    /** What a client of the public port gets, e.g. "blue v1". */
    function publicAnswer(): string {
      const r = run("curl", ["-sS", "--max-time", "10", `http://${host.httpAddress}/`]);
      return r.stdout.trim() || r.stderr.trim();
    }
    const onHost = (cmd: string) => host.sh(cmd).then((s) => s.trim());
    const mainPid = (color: string) => onHost(`systemctl show -p MainPID --value bluegreen@${color}`);
    const liveLink = () => onHost("readlink /var/lib/bluegreen/live");

    /** Runs wrk through the forwarded port with keep-alive connections while `during` runs. */
    /**
     * Host-side wrk (64 keep-alive conns through the forwarded port) that starts 2 s before
     * `during` and runs until 1 s after it ends, and for at least `minSeconds`. A fixed-length
     * run could end before a slow `up` reached its switch (CI ran two TCG VMs at once), and
     * then "0 failed" and the watch's count would say nothing about the switch.
     */
    async function underLoad(minSeconds: number, during: () => Promise<void>): Promise<WrkResult> {
      const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
      const started = Date.now();
      // A long timeout: under TCG a slow answer is not a failed one.
      const load = startWrk(`http://${host.httpAddress}/`, { connections: 64, seconds: 3600, timeout: "15s" });
      try {
        await sleep(2000);
        await during();
        await sleep(Math.max(1000, minSeconds * 1000 - (Date.now() - started)));
      } finally {
        await load.stop();
      }
      return load.done;
    }

    const timing = (r: UpResult) => {
      const m = /switched in (\d+) ms, verified (\d+) ms after the link moved/.exec(output(r, "switch-link"));
      return m
        ? `switch step ${m[1]} ms, verified through ${kind} ${m[2]} ms after the link moved`
        : "no timing in the output";
    };

    let suiteStarted = 0;
    before(async function () {
      suiteStarted = Date.now();
      image = ensureImage();
      const started = Date.now();
      host = await bootHost(rig, image);
      note(
        `${host.name} booted and answering SSH in ${((Date.now() - started) / 1000).toFixed(1)} s${rig === "qemu" ? " (TCG)" : ""}`,
      );
      await host.sh(router.prepare);
      config = baseConfig();
    });

    after(async () => {
      await host?.shutdown();
      if (suiteStarted)
        note(`the suite (${kind}, ${rig}) took ${((Date.now() - suiteStarted) / 1000).toFixed(0)} s, boot to shutdown`);
      if (report.length)
        console.log(`\n    e2e figures (${kind}, ${rig}):\n${report.map((l) => `      ${l}`).join("\n")}\n`);
    });

    scenario("1. fresh host: v1 on both slots, blue live, slots private, app unprivileged", async () => {
      const started = Date.now();
      const r = await deploy({});
      assert.strictEqual(r.error, undefined, r.error);
      assert.deepStrictEqual(stepsOf(r), [
        "create host-ready",
        "create setup-tools",
        "create router-install",
        "create router-config",
        "create tls-config",
        "create blue-upload",
        "create green-upload",
        "create maintenance-mode",
        "create blue-service",
        "create green-service",
        // The switch also waits for maintenance (index.ts), so retention registers first.
        "create releases-prune",
        "create switch-link",
      ]);
      note(`fresh host deploy (${kind}): ${((Date.now() - started) / 1000).toFixed(1)} s for 12 steps`);
      assert.strictEqual(publicAnswer(), "blue v1");
      // Only sshd and the router listen on TCP; the app only on its unix sockets.
      const tcp = await onHost("ss -ltnpH | awk '{print $4, $6}' | sort");
      for (const line of tcp.split("\n"))
        assert.match(line, new RegExp(`users:\\(\\("(sshd|${kind})"`), `unexpected TCP listener: ${line}`);
      assert.match(tcp, new RegExp(`^127\\.0\\.0\\.1:8081 .*${kind}`, "m"), "the preview listener is on loopback");
      if (kind === "haproxy") {
        // bluegreen installed it (from the image's local apt repository); its admin socket is root's.
        assert.match(output(r, "router-install"), /^haproxy 2\.6\.\S+ installed and running/m);
        assert.strictEqual(await onHost("stat -c '%a %U' /run/haproxy/admin.sock"), "600 root");
        assert.strictEqual(
          await onHost("cat /var/lib/bluegreen/haproxy.map"),
          "live bluegreen_blue_socket\nidle bluegreen_green_socket\nmaintenance off\nhttps off\ndrain off\nblue bluegreen_blue_socket\ngreen bluegreen_green_socket",
        );
      }
      const unix = await onHost("ss -lxpH | grep '\"app\"' | awk '{print $5}' | sort");
      assert.strictEqual(unix, "/run/bluegreen/blue/app.sock\n/run/bluegreen/green/app.sock");
      for (const c of ["blue", "green"]) {
        assert.strictEqual(await onHost(`ps -o user= -p ${await mainPid(c)}`), "bluegreen");
        // In the app's own group only (not bluegreen, the routers'), as systemd's initgroups gives it.
        assert.strictEqual(
          await onHost(
            `for g in $(awk '/^Groups:/ { $1 = ""; print }' /proc/${await mainPid(c)}/status); do getent group $g | cut -d: -f1; done`,
          ),
          "bluegreen_app",
        );
        // Its socket directory is its user's in the routers' group, setgid, so the socket is in that group too.
        assert.strictEqual(
          await onHost(`stat -c '%a %U:%G' /run/bluegreen/${c} /run/bluegreen/${c}/app.sock`),
          "2750 bluegreen:bluegreen\n660 bluegreen:bluegreen",
        );
        assert.strictEqual(await onHost(`stat -c '%a %U' /etc/bluegreen/${c}.env`), "600 root");
      }
    });

    scenario("2. v2 to green: only green's steps run; preview answers green v2, public stays blue v1", async () => {
      const r = await deploy({ greenVersion: "v2" });
      assert.strictEqual(r.error, undefined, r.error);
      assert.deepStrictEqual(stepsOf(r), ["update green-upload", "update green-service", "update releases-prune"]);
      assert.strictEqual(await onHost("curl -sS http://127.0.0.1:8081/"), "green v2");
      assert.strictEqual(publicAnswer(), "blue v1");
      note(
        `time to ready, v2 on the idle slot: ${/ready on \S+ in (\d+) ms/.exec(output(r, "green-service"))?.[1]} ms (restart + readiness)`,
      );
    });

    scenario(
      "3. switch to green under load: one step, 0 failed requests, then only green; the router never reloads",
      async () => {
        const workers = await onHost(router.workers);
        let r!: UpResult;
        // In the guest: through qemu's port forward a long host-side load sees the forward's
        // own stalls (wrk timeouts), switch or not.
        const load = await wholeUnderLoad(async () => {
          r = await deploy({ active: "green" });
        });
        assert.strictEqual(r.error, undefined, r.error);
        assert.deepStrictEqual(stepsOf(r), ["update switch-link"]);
        assert.strictEqual(load.failed, 0, load.raw);
        assert.strictEqual(load.retried, 0, `no kept-alive connection was closed under the client:\n${load.raw}`);
        for (let i = 0; i < 20; i++) assert.strictEqual(publicAnswer(), "green v2", `request ${i} after the switch`);
        assert.strictEqual(await onHost(router.workers), workers, `the same ${kind} workers throughout`);
        note(
          `switch blue->green under 64 keep-alive conns (in-guest load): ${load.requests} requests, ${load.failed} failed, ${load.retried} resent; ${timing(r)}`,
        );
      },
    );

    scenario("4. roll back to blue under load: 0 failed, and green was never stopped", async () => {
      const greenPid = await mainPid("green");
      const workers = await onHost(router.workers);
      let r!: UpResult;
      const load = await wholeUnderLoad(async () => {
        r = await deploy({ active: "blue" });
      });
      assert.strictEqual(r.error, undefined, r.error);
      assert.deepStrictEqual(stepsOf(r), ["update switch-link"]);
      assert.strictEqual(load.failed, 0, load.raw);
      assert.strictEqual(load.retried, 0, `no kept-alive connection was closed under the client:\n${load.raw}`);
      assert.strictEqual(publicAnswer(), "blue v1");
      assert.strictEqual(await mainPid("green"), greenPid);
      assert.strictEqual(await onHost(router.workers), workers, `the same ${kind} workers throughout`);
      note(`rollback green->blue under load (in-guest): ${load.requests} requests, 0 failed, 0 resent; ${timing(r)}`);
    });

    scenario(
      "4b. a config change reloads the router under in-guest load: its listeners pass on, 0 failed",
      async () => {
        const workers = await onHost(router.workers);
        const master = await onHost(router.master);
        let r: UpResult | undefined;
        const load = await wholeUnderLoad(async () => {
          r = await deploy({ maintenanceRetryAfter: "300" });
        });
        assert.strictEqual(r!.error, undefined, r!.error);
        assert.deepStrictEqual(stepsOf(r!), ["update router-config"]);
        assert.notStrictEqual(await onHost(router.workers), workers, "reloaded: new workers");
        assert.strictEqual(await onHost(router.master), master, `${kind} was restarted`);
        note(
          `${kind} reload (a config change) under 64 keep-alive conns (in-guest load): ${load.requests} requests, ${load.failed} failed, ${load.retried} resent by the client after the router closed a kept-alive connection`,
        );
        assert.strictEqual(load.failed, 0, load.raw);
      },
    );

    scenario(
      "5. unhealthy target: the switch is refused with the slot's journal tail; traffic and link stay",
      async () => {
        await onHost(`install -d ${FAULTS} && touch ${FAULTS}/green.unready`);
        try {
          const link = await liveLink();
          const r = await deploy({ active: "green" });
          assert.deepStrictEqual(stepsOf(r), ["update switch-link (failed)"]);
          assert.match(
            r.error!,
            /bluegreen: error: refusing to switch to green: it is not ready \(GET \/health\/ready on the slot gave no 2xx\)\. Traffic stays on blue\./,
          );
          assert.match(
            r.error!,
            /Last journal lines of bluegreen@green:\n(.*\n)*.*green v2 listening on unix:\/run\/bluegreen\/green\/app\.sock/,
          );
          assert.strictEqual(publicAnswer(), "blue v1");
          assert.strictEqual(await liveLink(), link);
          // Like the engine, a failed update keeps the old inputs: the next `up` tries again.
          assert.match(state.find((e) => e.name === "switch-link")!.inputs.create, /TARGET=blue /);
        } finally {
          await onHost(`rm -f ${FAULTS}/green.unready`);
        }
        const back = await deploy({ active: "blue" });
        assert.deepStrictEqual(stepsOf(back), [], "config back at blue: nothing to do");
      },
    );

    /** 64 keep-alive connections to nginx's public port, generated in the guest, for the whole of `during` (vm.ts). */
    async function wholeUnderLoad(during: () => Promise<void>, url = "http://127.0.0.1/"): Promise<GuestLoad> {
      return (await guestLoads([{ url }], during))[0];
    }

    /** One in-guest load generator per target (64 connections each), all for the whole of `during`. */
    const guestLoads = (
      targets: readonly { url: string; host?: string; connections?: number }[],
      during: () => Promise<void>,
    ) => loadsInGuest(host, targets, during, router.errorLog);

    scenario(
      "5b. secret rotation day, under load: rotate, up, switch, roll back; no step blocked, no live slot restarted, 0 failed",
      async () => {
        const SECRET = "rotated-db-password-7f3a";
        const pids: Record<string, string>[] = [];
        const snap = async () => pids.push({ blue: await mainPid("blue"), green: await mainPid("green") });
        const outputs: string[] = [];
        const load = await wholeUnderLoad(async () => {
          await snap();
          const rotate = await deploy({ appSecrets: { DB_PASSWORD: SECRET } });
          assert.strictEqual(rotate.error, undefined, rotate.error);
          assert.deepStrictEqual(stepsOf(rotate), ["update blue-service", "update green-service"]);
          assert.match(
            output(rotate, "blue-service"),
            /^slot blue: PENDING\. It is live, so its new settings \(env, secrets, unit or listen address\) are staged, not applied/,
          );
          assert.match(
            output(rotate, "green-service"),
            /^slot green: v2 ready on unix:\/run\/bluegreen\/green\/app\.sock in \d+ ms/,
          );
          assert.match(
            await onHost("/usr/local/sbin/bluegreen-status"),
            /\n {13}PENDING: v1 on unix:\/run\/bluegreen\/blue\/app\.sock staged while live; applies right after the next switch away from blue\n/,
          );
          await snap();
          const sw = await deploy({ active: "green" });
          assert.strictEqual(sw.error, undefined, sw.error);
          assert.deepStrictEqual(stepsOf(sw), ["update switch-link"]);
          assert.match(
            output(sw, "switch-link"),
            /\nslot blue \(now idle\) picked up its staged settings: v1 on unix:\/run\/bluegreen\/blue\/app\.sock\n?$/,
          );
          outputs.push(timing(sw));
          await snap();
          const back = await deploy({ active: "blue" });
          assert.strictEqual(back.error, undefined, back.error);
          assert.deepStrictEqual(stepsOf(back), ["update switch-link"]);
          await snap();
        });
        assert.strictEqual(load.failed, 0, load.raw);
        // No slot was restarted while it was live: blue (live) kept its PID through the rotation;
        // green (live after the switch) kept its PID through the switch and the rollback.
        assert.strictEqual(pids[1].blue, pids[0].blue, "blue was live during the rotation");
        assert.notStrictEqual(pids[1].green, pids[0].green, "green (idle) got the new secret at once");
        assert.strictEqual(pids[2].green, pids[1].green, "green was live after the switch");
        assert.notStrictEqual(pids[2].blue, pids[1].blue, "blue picked up the secret once idle");
        assert.strictEqual(pids[3].blue, pids[2].blue, "the rollback restarted nothing");
        for (const c of ["blue", "green"])
          assert.strictEqual(await onHost(`grep -c '^DB_PASSWORD="${SECRET}"$' /etc/bluegreen/${c}.env`), "1");
        assert.strictEqual(await onHost("ls /etc/bluegreen"), "blue.env\ngreen.env", "nothing left pending");
        assert.strictEqual(publicAnswer(), "blue v1");
        note(
          `secret rotation day under 64 keep-alive conns (in-guest load): ${load.requests} requests, 0 failed; ${outputs[0]}`,
        );
      },
    );

    scenario(
      "5c. mode migration under load: socket to tcp and back, with 0 failed requests and no refusal",
      async () => {
        const listening = () => onHost("ss -ltnpH | grep '\"app\"' | awk '{print $4}' | sort");
        const load = await wholeUnderLoad(async () => {
          const toTcp = await deploy({ linkMode: "tcp" });
          assert.strictEqual(toTcp.error, undefined, toTcp.error);
          assert.deepStrictEqual(stepsOf(toTcp), ["update blue-service", "update green-service"]);
          assert.strictEqual(
            await listening(),
            "127.0.0.1:8002",
            "the idle slot came up on its port; the live one waits",
          );
          assert.strictEqual(await onHost("curl -sS http://127.0.0.1:8081/"), "green v2");
          const sw = await deploy({ active: "green" });
          assert.strictEqual(sw.error, undefined, sw.error);
          assert.strictEqual(await listening(), "127.0.0.1:8001\n127.0.0.1:8002", "the old slot followed once idle");
          const toSocket = await deploy({ linkMode: "socket" });
          assert.strictEqual(toSocket.error, undefined, toSocket.error);
          const back = await deploy({ active: "blue" });
          assert.strictEqual(back.error, undefined, back.error);
          assert.strictEqual(await listening(), "", "both slots back on their sockets");
        });
        assert.strictEqual(load.failed, 0, load.raw);
        assert.strictEqual(publicAnswer(), "blue v1");
        note(
          `mode migration socket -> tcp -> socket under 64 keep-alive conns (in-guest load; 2 switches, 4 slot restarts while idle): ${load.requests} requests, 0 failed`,
        );
      },
    );

    scenario(
      "5d. a switch killed after the rename: the re-run finishes it with the watch; host, record, audit and state agree",
      async () => {
        const killed = deploy({ active: "green", watchSeconds: "30" });
        await onHost(
          "for i in $(seq 1 100); do [ -f /var/lib/bluegreen/switch.intent ] && break; sleep 0.2; done; sleep 1; pkill -KILL -f 'bluegreen/[s]witch.sh'",
        );
        const r = await killed;
        assert.deepStrictEqual(stepsOf(r), ["update switch-link (failed)"]);
        assert.strictEqual(
          await liveLink(),
          "/var/lib/bluegreen/colors/green",
          "killed after the rename: the link moved",
        );
        assert.strictEqual(await onHost("cat /var/lib/bluegreen/active"), "blue", "but nothing confirmed it");
        assert.match(
          await onHost("/usr/local/sbin/bluegreen-status"),
          /\nswitch: {6}INTERRUPTED blue -> green, not confirmed; the link serves green\./,
        );
        assert.match(
          state.find((e) => e.name === "switch-link")!.inputs.create,
          /TARGET=blue /,
          "the failed update kept the old inputs",
        );
        const again = await deploy({ watchSeconds: "3" });
        assert.strictEqual(again.error, undefined, again.error);
        assert.deepStrictEqual(stepsOf(again), ["update switch-link"]);
        assert.match(
          output(again, "switch-link"),
          // No load runs here: the watch says it saw no public response, not "0 of 0".
          /^live: green v2 \(was blue\); .*; watched 3 s: no public request reached green, so the watch saw no evidence either way/,
        );
        assert.strictEqual(await onHost("cat /var/lib/bluegreen/active"), "green");
        assert.strictEqual(await onHost("test -e /var/lib/bluegreen/switch.intent && echo left || echo gone"), "gone");
        assert.match(
          await onHost("tail -n 2 /var/log/bluegreen/audit.log"),
          /switch from=blue to=green version=v2 resumed=yes watch=no-traffic result=ok/,
        );
        assert.match(state.find((e) => e.name === "switch-link")!.inputs.create, /TARGET=green /);
        assert.strictEqual(publicAnswer(), "green v2");
        const back = await deploy({ active: "blue" });
        assert.strictEqual(back.error, undefined, back.error);
      },
    );

    scenario(
      "5e. host keys on a stack from before pinning: every step runs once more under load (0 failed, nothing restarted, no reload); first use records the key; a changed key stops `up` before any step",
      async () => {
        // A stack made before this release: no hostKey in any step's connection, no sshHostKey in its config.
        const unpinned = (c: any): any => {
          if (isSecret(c)) return { ...c, value: unpinned(c.value) };
          const { hostKey: _, ...rest } = c as Record<string, unknown>;
          return rest;
        };
        state = state.map((e) =>
          e.inputs.connection ? { ...e, inputs: { ...e.inputs, connection: unpinned(e.inputs.connection) } } : e,
        );
        const remoteSteps = state.filter((e) => e.type.startsWith("command:remote:")).map((e) => e.name);
        const before = {
          workers: await onHost(router.workers),
          blue: await mainPid("blue"),
          green: await mainPid("green"),
        };
        let upgrade: UpResult | undefined;
        const load = await wholeUnderLoad(async () => {
          upgrade = await deploy({ sshHostKey: undefined });
        });
        const r = upgrade!;
        assert.strictEqual(r.error, undefined, r.error);
        assert.deepStrictEqual(stepsOf(r), [
          "create host-ssh-hostkey",
          // The uploads update too (their connection changed), but copy nothing: the files did not change.
          ...remoteSteps.map((n) => `update ${n}`),
        ]);
        assert.match(
          output(r, "host-ssh-hostkey"),
          new RegExp(
            `bluegreen: recorded the SSH host key of ${host.connection.host.replace(/\./g, "\\.")}:${host.connection.port} on first use: ssh-ed25519 SHA256:`,
          ),
        );
        for (const e of state.filter((x) => x.type.startsWith("command:remote:")))
          assert.strictEqual(plain(e.inputs.connection).hostKey, host.connection.hostKey, e.name);
        assert.strictEqual(load.failed, 0, load.raw);
        assert.strictEqual(await onHost(router.workers), before.workers, `${kind} was not reloaded`);
        assert.strictEqual(await mainPid("blue"), before.blue, "the live slot was not restarted");
        assert.strictEqual(await mainPid("green"), before.green, "the idle slot was not restarted either");
        assert.strictEqual(publicAnswer(), "blue v1");
        note(
          `host-key upgrade of an existing stack (${r.steps.length} steps run again) under 64 keep-alive conns: ${load.requests} requests, 0 failed, no reload, no restart`,
        );

        // The host's key changes (a reinstall, or someone in between): the next up stops before any step.
        const audit = await onHost("wc -l < /var/log/bluegreen/audit.log");
        const newKey = (
          await onHost(
            "mkdir -p /root/keys.kept && cp -a /etc/ssh/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key.pub /root/keys.kept/ && " +
              "rm -f /etc/ssh/ssh_host_ed25519_key* && ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key && " +
              "systemctl restart ssh && cat /etc/ssh/ssh_host_ed25519_key.pub",
          )
        )
          .split(/\s+/)
          .slice(0, 2)
          .join(" ");
        const kept = state;
        try {
          await assert.rejects(deploy({ greenVersion: "v1" }), {
            message: new RegExp(
              `bluegreen: error: the SSH host key of ${host.connection.host.replace(/\./g, "\\.")}:${host.connection.port} has changed: .* Nothing was run on it\\. .*pulumi config set bluegreen:sshHostKey '${newKey.replace(/[+/]/g, "\\$&")}'`,
            ),
          });
          assert.strictEqual(state, kept, "no step ran, so the state is as it was");
        } finally {
          const restored = await sshRun(
            { ...host.connection, hostKey: newKey, dialErrorLimit: 3 },
            "cp -a /root/keys.kept/ssh_host_ed25519_key* /etc/ssh/ && systemctl restart ssh",
          );
          assert.strictEqual(restored.code, 0, restored.combined);
        }
        assert.strictEqual(await onHost("wc -l < /var/log/bluegreen/audit.log"), audit, "nothing was run on the host");
        // Back to the base config (the key pinned in config): the scan goes; nothing runs on the host.
        const back = await deploy({ sshHostKey: host.connection.hostKey, greenVersion: "v2" });
        assert.strictEqual(back.error, undefined, back.error);
        assert.deepStrictEqual(stepsOf(back), ["delete host-ssh-hostkey"]);
      },
    );

    scenario("7. two switches at once are serialized by the lock; the last one wins; nothing half-done", async () => {
      const out = await onHost(
        "s=/usr/local/lib/bluegreen/switch.sh; v='VERIFY_TIMEOUT=15 WATCH_SECONDS=0 ERROR_PERCENT=5 MIN_ERRORS=5'; " +
          "(env TARGET=green HEALTH_PATH=/health/ready CHECK_PORT=8082 $v $s > /tmp/s1 2>&1; echo $? >> /tmp/s1) & " +
          "(env TARGET=blue HEALTH_PATH=/health/ready CHECK_PORT=8082 $v $s > /tmp/s2 2>&1; echo $? >> /tmp/s2) & wait; cat /tmp/s1 /tmp/s2",
      );
      const lines = out.split("\n");
      assert.deepStrictEqual(
        lines.filter((l) => /^\d+$/.test(l)),
        ["0", "0"],
        out,
      );
      const finished = (await onHost("ls -t --full-time /tmp/s1 /tmp/s2 | head -1")).includes("/tmp/s1")
        ? "green"
        : "blue";
      const recorded = await onHost("cat /var/lib/bluegreen/active");
      assert.strictEqual(recorded, finished, out);
      assert.strictEqual(await liveLink(), `/var/lib/bluegreen/colors/${recorded}`);
      assert.match(
        await onHost("curl -sS http://127.0.0.1:8081/"),
        new RegExp(`^${recorded === "blue" ? "green" : "blue"} `),
      );
      assert.match(publicAnswer(), new RegExp(`^${recorded} `));
      // Put the host back where the stack's config says.
      await onHost(
        "env TARGET=blue HEALTH_PATH=/health/ready CHECK_PORT=8082 VERIFY_TIMEOUT=15 WATCH_SECONDS=0 ERROR_PERCENT=5 MIN_ERRORS=5 /usr/local/lib/bluegreen/switch.sh",
      );
    });

    scenario("8. a new version aimed at the live slot is refused and the live process is untouched", async () => {
      const pid = await mainPid("blue");
      const r = await deploy({ blueVersion: "v3" });
      assert.deepStrictEqual(stepsOf(r), ["update blue-upload", "update blue-service (failed)"]);
      assert.match(
        r.error!,
        new RegExp(
          `slot blue is live \\(${kind} sends it traffic\\) and runs v1; refusing to restart it with v3 because that would drop requests\\. Nothing was changed\\.\\nDeploy to the idle slot instead, then switch:\\n  pulumi config set blueVersion v1\\n  pulumi config set greenVersion v3 && pulumi up\\n  pulumi config set active green && pulumi up`,
        ),
      );
      assert.strictEqual(await mainPid("blue"), pid);
      assert.strictEqual(publicAnswer(), "blue v1");
      const back = await deploy({ blueVersion: "v1" });
      assert.strictEqual(back.error, undefined, back.error);
      // The refused update kept blue-service's v1 inputs, so going back to v1 never touches the slot.
      assert.deepStrictEqual(stepsOf(back), ["update blue-upload"]);
      assert.strictEqual(await mainPid("blue"), pid);
    });

    scenario(
      "8b. a healthPath the idle slot answers 503 on fails its step at up time, not at the next rollback; the live slot is untouched",
      async () => {
        const pid = await mainPid("blue");
        await onHost(`install -d ${FAULTS} && touch ${FAULTS}/green.unready`);
        try {
          // /healthz is always 200: both slot steps rerun, pass without a restart, and record the path.
          const first = await deploy({ healthPath: "/healthz" });
          assert.strictEqual(first.error, undefined, first.error);
          assert.deepStrictEqual(stepsOf(first), ["update blue-service", "update green-service", "update switch-link"]);
          assert.match(output(first, "green-service"), /^slot green: already runs v\d+ this way; not restarted/m);
          assert.strictEqual(
            await onHost("grep ^health_path= /var/lib/bluegreen/slots/green/deployed"),
            "health_path=/healthz",
          );
          // Back to /health/ready, which green answers 503 on: its step fails with the path and the answer.
          const r = await deploy({ healthPath: "/health/ready" });
          assert.deepStrictEqual(stepsOf(r), ["update blue-service", "update green-service (failed)"]);
          assert.match(
            r.error!,
            /slot green \(v\d+\) does not pass the readiness gate: GET \/health\/ready on it got HTTP 503 for 60 s, not 2xx \(bluegreen:healthPath, bluegreen:healthTimeout\), so a switch or rollback to it would be refused\. It was not restarted and gets no public traffic: the live slot is untouched; nothing was changed\.\nSet healthPath back to one v\d+ answers 2xx on \(it passed on \/healthz\): pulumi config set healthPath \/healthz && pulumi up/,
          );
          assert.strictEqual(await mainPid("blue"), pid);
          assert.strictEqual(publicAnswer(), "blue v1");
        } finally {
          await onHost(`rm -f ${FAULTS}/green.unready`);
        }
        // The failed update kept green's /healthz inputs, so the next up reruns it, and the switch's.
        const back = await deploy({});
        assert.strictEqual(back.error, undefined, back.error);
        assert.deepStrictEqual(stepsOf(back), ["update green-service", "update switch-link"]);
        assert.strictEqual(
          await onHost("grep ^health_path= /var/lib/bluegreen/slots/green/deployed"),
          "health_path=/health/ready",
        );
        assert.strictEqual(await mainPid("blue"), pid);
      },
    );

    scenario(
      "10. drain: a long request to the idle slot completes across its restart; readiness said 503 first",
      async () => {
        const sock = "/run/bluegreen/green/app.sock";
        await onHost(
          `(curl -sS -w ' %{http_code}' --unix-socket ${sock} 'http://x/slow?ms=6000' > /tmp/slow.out 2>&1 &) ; ` +
            `(for i in $(seq 1 150); do curl -s -o /dev/null -w '%{http_code}\\n' --max-time 1 --unix-socket ${sock} http://x/health/ready; sleep 0.1; done > /tmp/ready.log 2>&1 &) ; sleep 1`,
        );
        const r = await deploy({ greenVersion: "v3" });
        assert.strictEqual(r.error, undefined, r.error);
        await new Promise((res) => setTimeout(res, 1000));
        assert.strictEqual(await onHost("cat /tmp/slow.out"), "green v2 slept 6000ms\n 200");
        const codes = (await onHost("cat /tmp/ready.log")).split("\n");
        const first503 = codes.indexOf("503");
        const firstDown = codes.findIndex((c) => c !== "200" && c !== "503");
        assert.ok(first503 >= 0, `readiness never said 503: ${codes.join(" ")}`);
        assert.ok(
          firstDown === -1 || first503 < firstDown,
          `503 must come before the socket closes: ${codes.join(" ")}`,
        );
        assert.strictEqual(codes[codes.length - 1], "200");
        assert.strictEqual(await onHost("curl -sS http://127.0.0.1:8081/"), "green v3");
        note(
          `drain: a 6 s request to green finished during its restart; readiness 503 for ${codes.filter((c) => c === "503").length * 100} ms before the socket closed`,
        );
      },
    );

    scenario("9. reboot: the same colour and versions are served, and the next up runs nothing", async () => {
      const before = { public: publicAnswer(), preview: await onHost("curl -sS http://127.0.0.1:8081/") };
      const started = Date.now();
      await host.reboot();
      let answer = "";
      for (let i = 0; i < 60 && answer !== before.public; i++) {
        answer = publicAnswer();
        if (answer !== before.public) await new Promise((r) => setTimeout(r, 1000));
      }
      note(`reboot: serving again ${((Date.now() - started) / 1000).toFixed(0)} s after the reboot command`);
      assert.strictEqual(answer, before.public);
      assert.strictEqual(await onHost("curl -sS http://127.0.0.1:8081/"), before.preview);
      const r = await deploy({});
      assert.deepStrictEqual(stepsOf(r), []);
    });

    /**
     * Runs `npm run release|rollback` with the stand-in `pulumi` (fake-bin/pulumi, which
     * replays against the host) through the Automation API, and ssh trusting only the
     * host key the stack pinned (never StrictHostKeyChecking=no, nor a known_hosts of the test's).
     */
    async function cli(args: string[]): Promise<{ code: number | null; out: string }> {
      const { spawn } = await import("child_process");
      const fs = await import("fs");
      const os = await import("os");
      const path = await import("path");
      const stackFile = path.join(os.tmpdir(), `bg-fake-stack-${process.pid}.json`);
      const program = await runProgram(config);
      fs.writeFileSync(
        stackFile,
        JSON.stringify({ config, state, outputs: program.outputs, secretOutputs: program.secretOutputs }),
      );
      const keyFile = path.join(os.tmpdir(), `bg-e2e-key-${process.pid}`);
      fs.writeFileSync(keyFile, host.connection.privateKey, { mode: 0o600 });
      const child = spawn("node", ["-r", "ts-node/register/transpile-only", "components/cli/release.ts", ...args], {
        env: {
          ...process.env,
          BLUEGREEN_PULUMI: path.join(__dirname, "fake-bin", "pulumi"),
          FAKE_PULUMI_STATE: stackFile,
          // No known_hosts of ours: the CLI trusts the host key the stack pinned (its hostKey output).
          BLUEGREEN_SSH: `ssh -i ${keyFile} -o LogLevel=ERROR`,
        },
      });
      let out = "";
      child.stdout.on("data", (d) => (out += d));
      child.stderr.on("data", (d) => (out += d));
      const code = await new Promise<number | null>((r) => child.on("close", r));
      const after = JSON.parse(fs.readFileSync(stackFile, "utf8"));
      config = after.config;
      state = after.state;
      return { code, out };
    }

    scenario(
      "11. release end to end: idle slot deployed and smoke-tested through the preview tunnel, then switched",
      async () => {
        assert.strictEqual(publicAnswer(), "blue v1");
        const started = Date.now();
        const r = await cli(["release", "v4", "--smoke", 'curl -fsS "$BLUEGREEN_PREVIEW_URL" | grep -qx "green v4"']);
        assert.strictEqual(r.code, 0, r.out);
        const steps = r.out.split("\n").filter((l) => l.startsWith("==> "));
        const timings = steps.filter((l) => l.startsWith("==> timing: "));
        assert.deepStrictEqual(
          steps
            .filter((l) => !timings.includes(l))
            .map((l) => l.replace(/\(http:\/\/127\.0\.0\.1:\d+\/\)/, "(URL)").replace(/\d+\.\d s/g, "N s")),
          [
            "==> live: blue (v1); deploying v4 to the idle slot, green",
            '==> smoke test against the preview listener (URL): curl -fsS "$BLUEGREEN_PREVIEW_URL" | grep -qx "green v4"',
            "==> switching traffic to green (v4)",
            "==> released v4: green is live; blue keeps v1 running for npm run rollback",
            "==> live: green (v4) · release took N s (deploy N s, smoke N s, switch+watch N s)",
          ],
        );
        // Each phase timed from the engine events of its up; the steps that hold two phases say so.
        assert.strictEqual(timings.length, 3, timings.join("\n"));
        assert.match(
          timings[0],
          /^==> timing: deploy v4 to green \d+\.\d s \(pulumi up\): \d+\.\d s before the first step \(the program run, with any build\); .*green-service update \d+\.\d s \(starts the slot and waits for its health gate: one step, the gate is not timed apart\)/,
        );
        assert.match(timings[1], /^==> timing: smoke test passed in \d+\.\d s \(tunnel included\)$/);
        assert.match(
          timings[2],
          /^==> timing: switch to green \d+\.\d s \(pulumi up\): .*switch-link update \d+\.\d s \(moves traffic and runs the post-switch watch: one step, the watch is not timed apart\)/,
        );
        assert.strictEqual(publicAnswer(), "green v4");
        assert.strictEqual(config.greenVersion, "v4");
        assert.strictEqual(config.active, "green");
        for (const line of [...timings, steps[steps.length - 1]]) note(line);
        note(
          `release v4 end to end (deploy, smoke, switch with a 3 s watch): ${((Date.now() - started) / 1000).toFixed(0)} s`,
        );
      },
    );

    scenario("11b. a release whose smoke test fails stops before the switch, old slot serving", async () => {
      const r = await cli(["release", "v5", "--smoke", "exit 3"]);
      assert.strictEqual(r.code, 1);
      assert.match(
        r.out,
        /==> stopped: the smoke test failed \(exit 3\); green \(v4\) is still live\. blue runs v5 on the preview listener for a closer look\.\n$/,
      );
      assert.strictEqual(publicAnswer(), "green v4");
      assert.strictEqual(config.active, "green");
      // Put blue back on v1 for the next scenarios (it is idle, so this is allowed).
      const back = await deploy({ blueVersion: "v1" });
      assert.strictEqual(back.error, undefined, back.error);
    });

    scenario("12. npm run rollback: back to the warm previous slot, no version string", async () => {
      const greenPid = await mainPid("green");
      const r = await cli(["rollback"]);
      assert.strictEqual(r.code, 0, r.out);
      assert.match(
        r.out,
        /==> rolling back: green -> blue \(v1, still running\)\n[\s\S]*==> rolled back: blue \(v1\) is live\n$/,
      );
      assert.strictEqual(publicAnswer(), "blue v1");
      assert.strictEqual(await mainPid("green"), greenPid, "green keeps running, warm");
    });

    scenario(
      "13. automatic rollback: a slot that serves 500s after the switch is taken out within the watch",
      async () => {
        await onHost(`install -d ${FAULTS} && touch ${FAULTS}/green.error500`);
        try {
          let r!: UpResult;
          const load = await underLoad(20, async () => {
            r = await deploy({ active: "green", watchSeconds: "10" });
          });
          assert.deepStrictEqual(
            stepsOf(r),
            ["update switch-link (failed)"],
            `${output(r, "switch-link")}\nthe load meanwhile: ${load.requests} requests, ${load.non2xx} non-2xx`,
          );
          assert.match(
            r.error!,
            /switch to green rolled back: \d+ of \d+ responses since the switch were 5xx, \d+ ms after it \(limit: 5% and at least 5\)\. Traffic is back on blue \(v1\)\./,
          );
          assert.match(r.error!, /Next: fix the app and deploy a new version to green/);
          assert.strictEqual(load.resets, 0, `no request was lost beyond green's own 500s:\n${load.raw}`);
          for (let i = 0; i < 10; i++) assert.strictEqual(publicAnswer(), "blue v1");
          assert.strictEqual(await onHost("cat /var/lib/bluegreen/active"), "blue");
          const seen = /(\d+) of (\d+) responses since the switch were 5xx, (\d+) ms after it/.exec(r.error!)!;
          note(
            `automatic rollback: traffic back on blue ${seen[3]} ms after the switch, having seen ${seen[1]} 5xx of ${seen[2]} responses; wrk saw ${load.non2xx} non-2xx, ${load.resets} resets`,
          );
        } finally {
          await onHost(`rm -f ${FAULTS}/green.error500`);
          // Blue again in the stack, as the scenarios after this one expect, even if an
          // assertion above failed with green still live.
          const back = await deploy({ active: "blue", watchSeconds: "3" });
          assert.strictEqual(back.error, undefined, back.error);
        }
      },
    );

    scenario(
      "14. maintenance: a 503 page with Retry-After, one step, slots and router untouched; leaving restores blue",
      async () => {
        const pids = [await mainPid("blue"), await mainPid("green")];
        const workers = await onHost(router.workers);
        const on = await deploy({ maintenance: "true" });
        let checked = false;
        try {
          assert.deepStrictEqual(stepsOf(on), ["update maintenance-mode"]);
          const page = run("curl", ["-sS", "-D", "-", `http://${host.httpAddress}/`]);
          assert.match(page.stdout, /^HTTP\/1\.1 503 [\s\S]*\r\nRetry-After: 300\r\n[\s\S]*Down for maintenance/i);
          assert.strictEqual(
            await onHost("curl -sS http://127.0.0.1:8081/"),
            "green v4",
            "the preview listener still works",
          );
          assert.deepStrictEqual([await mainPid("blue"), await mainPid("green")], pids);
          checked = true;
        } finally {
          // Out of maintenance whatever failed: the scenarios after this one serve traffic.
          if (!checked) await deploy({ maintenance: "false" }).catch(() => undefined);
        }
        const off = await deploy({ maintenance: "false" });
        assert.deepStrictEqual(stepsOf(off), ["update maintenance-mode"]);
        assert.strictEqual(publicAnswer(), "blue v1");
        assert.strictEqual(await onHost(router.workers), workers, `${kind} never reloaded`);
      },
    );

    scenario(
      "15. audit log and status: every deploy, switch, rollback and maintenance change is on the host",
      async () => {
        const audit = await onHost("cat /var/log/bluegreen/audit.log");
        for (const re of [
          /Z deploy slot=green version=v2 was=v1 result=ok by=root/,
          /Z switch from=blue to=green version=v2( watch=no-traffic)? result=ok by=root/,
          /Z switch from=blue to=green version=v2 result=refused by=root/,
          /Z deploy slot=blue version=v3 running=v1 result=refused by=root/,
          /Z rollback from=green to=blue errors=\d+ responses=\d+ result=rolled-back by=root/,
          /Z maintenance state=on live=blue result=ok by=root\n.*Z maintenance state=off live=blue result=ok by=root/,
          /Z release version=v4 sha256=[0-9a-f]{64} kind=binary result=ok by=root/,
        ]) {
          assert.match(audit, re);
        }
        const status = await onHost("/usr/local/sbin/bluegreen-status");
        assert.match(
          status,
          /^live: {8}blue \(recorded blue\)\nmaintenance: off\nblue: {8}v1 {9}unit active {4}ready yes pid \d+ +on unix:\/run\/bluegreen\/blue\/app\.sock\ngreen: {7}v4 {9}unit active {4}ready yes pid \d+ +on unix:\/run\/bluegreen\/green\/app\.sock\n/,
        );
        assert.match(status, /\nlast 10 audit lines \(\/var\/log\/bluegreen\/audit\.log\):(\n {2}\S+ .*){10}$/);
      },
    );

    scenario("16. retention: keepReleases=2 keeps the two newest and the ones in use, removes the rest", async () => {
      assert.strictEqual(await onHost("ls /opt/bluegreen/releases | sort | tr '\\n' ' '"), "v1 v2 v3 v4 v5");
      const r = await deploy({ keepReleases: "2" });
      assert.strictEqual(r.error, undefined, r.error);
      assert.deepStrictEqual(stepsOf(r), ["update releases-prune"]);
      // In use: blue v1, green v4. Newest two: v5, v4. So v2 and v3 go.
      assert.strictEqual(await onHost("ls /opt/bluegreen/releases | sort | tr '\\n' ' '"), "v1 v4 v5");
      assert.strictEqual(publicAnswer(), "blue v1");
    });

    // ---- HTTPS: pebble (a test ACME server) and pebble-challtestsrv (its DNS) run in the VM, so
    // lego, nginx and the renewal timer are the real ones and nothing leaves the machine.
    const ACME_DIR = "/root/acme-test";
    const DOMAIN = "app.example.test";
    /** The certificate serial a new TLS handshake on the VM's :443 gets for this name. */
    const servedSerial = (name = DOMAIN) =>
      onHost(
        `openssl s_client -connect 127.0.0.1:443 -servername ${name} </dev/null 2>/dev/null | openssl x509 -noout -serial | sed 's/^serial=//'`,
      );
    /** An https request to the VM's router, verified against pebble's root. */
    const httpsGet = (name = DOMAIN) =>
      onHost(`curl -sS --max-time 10 --cacert ${ACME_DIR}/root.pem --resolve ${name}:443:127.0.0.1 https://${name}/`);
    /** The router's workers once a reload's old generation has gone (two equal reads 2 s apart). */
    async function settledWorkers(): Promise<string> {
      let last = await onHost(router.workers);
      for (let i = 0; i < 30; i++) {
        await new Promise((r) => setTimeout(r, 2000));
        const now = await onHost(router.workers);
        if (now === last) return now;
        last = now;
      }
      return last;
    }

    scenario(
      "17. HTTPS over ACME HTTP-01 through the router: issued, served with TLS 1.2+, port 80 redirects; nginx never reloads, HAProxy once for the first certificate",
      async () => {
        await sftpPut(host.connection, `${__dirname}/pebble-in-vm.sh`, "/root/pebble-in-vm.sh");
        await onHost(`bash /root/pebble-in-vm.sh ${ACME_DIR}`);
        const r = await deploy({
          domains: [DOMAIN],
          tls: "acme",
          acmeEmail: "ops@example.test",
          acmeDirectory: "https://127.0.0.1:14000/dir",
          acmeCaCertificate: await onHost(`cat ${ACME_DIR}/ca.pem`),
        });
        assert.strictEqual(r.error, undefined, r.error);
        assert.deepStrictEqual(stepsOf(r), ["update router-config", "update tls-config"]);
        assert.match(
          output(r, "tls-config"),
          new RegExp(
            `certificate for app\\.example\\.test installed: serial [0-9A-F]+, expires \\S+; ${escapeRe(router.firstCertificate)}$`,
            "m",
          ),
        );
        assert.match(
          output(r, "tls-config"),
          /verified: a new TLS handshake on 127\.0\.0\.1:443 gets serial [0-9A-F]+/,
        );
        await onHost(`curl -fsS https://127.0.0.1:15000/roots/0 --cacert ${ACME_DIR}/ca.pem > ${ACME_DIR}/root.pem`);
        assert.strictEqual(await httpsGet(), "blue v1");
        assert.strictEqual(
          await onHost(
            `curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' -H 'Host: ${DOMAIN}' 'http://127.0.0.1/a?b=1'`,
          ),
          `308 https://${DOMAIN}/a?b=1`,
        );
        // The challenge path is never redirected (no challenge is being solved now: not a 308).
        assert.strictEqual(
          await onHost(
            `curl -sS -o /dev/null -w '%{http_code}' -H 'Host: ${DOMAIN}' http://127.0.0.1/.well-known/acme-challenge/x`,
          ),
          router.idleChallenge,
        );
        assert.match(
          await onHost(
            "openssl s_client -connect 127.0.0.1:443 -tls1_2 </dev/null 2>&1 | grep -c 'BEGIN CERTIFICATE' || true",
          ),
          /^1$/,
        );
        assert.match(
          await onHost(
            "openssl s_client -connect 127.0.0.1:443 -tls1_1 </dev/null 2>&1 | grep -c 'BEGIN CERTIFICATE' || true",
          ),
          /^0$/,
        );
        assert.strictEqual(await onHost("systemctl is-enabled bluegreen-tls-renew.timer"), "enabled");
        assert.strictEqual(
          await onHost("stat -c '%a %U:%G' $(readlink -f /var/lib/bluegreen/tls/live/cert.pem)"),
          `640 root:${router.tlsGroup}`,
        );
        assert.strictEqual(await onHost("stat -c '%a' /var/lib/bluegreen/acme"), "700");
        const status = await onHost("/usr/local/sbin/bluegreen-status");
        assert.match(
          status,
          /\ntls: {9}acme; serial [0-9A-F]+ for app\.example\.test, expires \S+\n {13}renewal ok at \S+; next run /,
        );
        // A second up with nothing changed issues nothing.
        const again = await deploy({});
        assert.deepStrictEqual(stepsOf(again), []);
      },
    );

    scenario(
      "18. forced renewals under HTTPS keep-alive load: 0 failed, the new certificate served, the router never reloaded",
      async () => {
        const before = await servedSerial();
        const pids = await settledWorkers();
        const renewals = 4;
        const outputs: string[] = [];
        // The site's name as Host and SNI: HAProxy routes by it (nginx would take any name).
        const [load] = await guestLoads([{ url: "https://127.0.0.1/", host: DOMAIN }], async () => {
          for (let i = 0; i < renewals; i++) outputs.push(await onHost("/usr/local/lib/bluegreen/tls-renew.sh force"));
        });
        const after = await servedSerial();
        note(
          `TLS renewals under 64 keep-alive https conns (in-guest load): ${renewals} renewals, ${load.requests} requests, ${load.failed} failed, the slowest ${load.slowestMs} ms; serial ${before} -> ${after}`,
        );
        assert.strictEqual(load.failed, 0, load.raw);
        assert.notStrictEqual(after, before);
        assert.strictEqual(await onHost(router.workers), pids, `${kind} was reloaded or restarted`);
        for (const out of outputs) assert.ok(out.endsWith(`; ${router.renewedCertificate}`), out);
        assert.strictEqual(await httpsGet(), "blue v1");
        assert.match(
          await onHost("tail -n 1 /var/log/bluegreen/audit.log"),
          /tls-force domains=app\.example\.test serial=[0-9A-F]+ result=ok/,
        );
      },
    );

    scenario("19. a wildcard over DNS-01 with a provider hook; the credentials never printed", async () => {
      secretKeys = ["bluegreen:acmeDnsEnv"];
      const r = await deploy({
        domains: ["example.test", "*.example.test"],
        acmeChallenge: "dns-01",
        acmeDnsProvider: "exec",
        acmeDnsEnv: {
          EXEC_PATH: `${ACME_DIR}/fake-dns.sh`,
          EXEC_POLLING_INTERVAL: "1",
          EXEC_PROPAGATION_TIMEOUT: "30",
          EXEC_SEQUENCE_INTERVAL: "0",
          FAKE_DNS_TOKEN: "secret-dns-token-e2e",
        },
        acmeDnsResolvers: ["127.0.0.1:8053"],
        acmeDnsPropagationCheck: false,
      });
      assert.strictEqual(r.error, undefined, r.error);
      assert.deepStrictEqual(stepsOf(r), ["update router-config", "update tls-config"]);
      assert.strictEqual(await httpsGet("anything.example.test"), "blue v1");
      assert.match(
        await onHost("openssl x509 -noout -ext subjectAltName -in /var/lib/bluegreen/tls/live/cert.pem"),
        /DNS:\*\.example\.test/,
      );
      assert.strictEqual(await onHost("stat -c '%a' /etc/bluegreen/tls/dns.env"), "600");
      assert.ok(
        !(await onHost("cat /var/log/bluegreen/tls.log /var/log/bluegreen/audit.log")).includes("secret-dns-token-e2e"),
      );
    });

    scenario("20. tls off: port 80 serves the app again, nothing listens on 443, renewals stop", async () => {
      secretKeys = [];
      const r = await deploy({
        domains: [],
        tls: "off",
        acmeEmail: undefined,
        acmeDirectory: undefined,
        acmeCaCertificate: undefined,
        acmeChallenge: undefined,
        acmeDnsProvider: undefined,
        acmeDnsEnv: undefined,
        acmeDnsResolvers: undefined,
        acmeDnsPropagationCheck: undefined,
      });
      assert.strictEqual(r.error, undefined, r.error);
      assert.deepStrictEqual(stepsOf(r), ["update router-config", "update tls-config"]);
      assert.strictEqual(publicAnswer(), "blue v1");
      assert.strictEqual(await onHost("ss -ltnH 'sport = :443' | wc -l"), "0");
      assert.strictEqual(await onHost("systemctl is-active bluegreen-tls-renew.timer || true"), "inactive");
      assert.strictEqual(await onHost("ls /etc/systemd/system | grep -c tls-renew || true"), "0");
    });

    // ---- Several apps on one host: "shop" is a second stack (its own state and config) on the same VM.
    const SHOP = "shop.example.test";
    let shopState: StateEntry[] = [];
    let shopConfig: Record<string, unknown> = {};
    async function deployShop(changes: Record<string, unknown>): Promise<UpResult> {
      shopConfig = { ...shopConfig, ...changes };
      const result = await up(shopState, resourcesOf(await runProgram(shopConfig, { stack: "shop" })));
      shopState = result.state;
      return result;
    }
    /** What the app behind a Host header answers on the VM's port 80. */
    const answerFor = (name: string) => onHost(`curl -sS --max-time 10 -H 'Host: ${name}' http://127.0.0.1/`);

    scenario(
      "21. a second app, its own stack, beside the first: its own units, site, ports and user; the first untouched",
      async () => {
        const pids = { blue: await mainPid("blue"), green: await mainPid("green") };
        const master = await onHost(router.master);
        shopConfig = { ...baseConfig(), appName: "shop", domains: [SHOP] };
        let r: UpResult | undefined;
        const [first] = await guestLoads([{ url: "http://127.0.0.1/" }], async () => {
          r = await deployShop({});
        });
        assert.strictEqual(r!.error, undefined, r!.error);
        note(
          `second app's first up (its site added: one ${kind} reload) under 64 keep-alive conns on the first app: ${first.requests} requests, ${first.failed} failed, ${first.retried} resent by the client after ${kind} closed a kept-alive connection`,
        );
        assert.strictEqual(await answerFor(SHOP), "blue v1");
        assert.strictEqual(publicAnswer(), "blue v1");
        assert.strictEqual(await onHost(router.master), master, `${kind} was restarted`);
        assert.deepStrictEqual({ blue: await mainPid("blue"), green: await mainPid("green") }, pids);
        assert.strictEqual(
          await onHost("systemctl is-active bluegreen-shop@blue bluegreen-shop@green | tr '\\n' ' '"),
          "active active",
        );
        assert.strictEqual(
          await onHost(`ps -o user= -p $(systemctl show -p MainPID --value bluegreen-shop@blue)`),
          "bluegreen-shop",
        );
        // The first app's data is not the second app's to read.
        assert.match(
          await onHost("su -s /bin/sh bluegreen-shop -c 'ls /var/lib/bluegreen/data' 2>&1 || true"),
          /Permission denied/,
        );
        // Nor are its sockets the second app's to reach, or the other way round: each app's user is
        // in its own group only, and each socket directory is in the routers' group (bluegreen).
        assert.strictEqual(await onHost("id -nG bluegreen; id -nG bluegreen-shop"), "bluegreen_app\nbluegreen-shop");
        assert.strictEqual(
          await onHost("stat -c '%a %U:%G' /run/bluegreen-shop/blue /run/bluegreen-shop/blue/app.sock"),
          "2750 bluegreen-shop:bluegreen\n660 bluegreen-shop:bluegreen",
        );
        const asApp = (user: string, group: string, cmd: string) =>
          onHost(`setpriv --reuid=${user} --regid=${group} --init-groups sh -c '${cmd}' 2>&1; echo "exit=$?"`);
        const probe = (sock: string) => `curl -s -o /dev/null --unix-socket ${sock} http://app/health/live`;
        assert.strictEqual(
          await asApp("bluegreen-shop", "bluegreen-shop", probe("/run/bluegreen/blue/app.sock")),
          "exit=7",
        );
        assert.strictEqual(
          await asApp("bluegreen", "bluegreen_app", probe("/run/bluegreen-shop/blue/app.sock")),
          "exit=7",
        );
        assert.match(await asApp("bluegreen-shop", "bluegreen-shop", "ls /run/bluegreen/blue"), /Permission denied/);
        assert.strictEqual(await asApp("bluegreen", "bluegreen_app", probe("/run/bluegreen/blue/app.sock")), "exit=0");
        assert.strictEqual(
          await asApp("bluegreen-shop", "bluegreen-shop", probe("/run/bluegreen-shop/blue/app.sock")),
          "exit=0",
        );
        assert.strictEqual(await onHost("curl -sS http://127.0.0.1:28571/ 2>&1 | head -c 100"), "green v1");
        assert.match(await onHost("/usr/local/sbin/bluegreen-shop-status"), /^live: {8}blue \(recorded blue\)/);
      },
    );

    scenario(
      "22. each app switches under load; the other app's load sees 0 failed requests and keeps its colour",
      async () => {
        const [main, shop] = await guestLoads(
          [{ url: "http://127.0.0.1/" }, { url: "http://127.0.0.1/", host: SHOP }],
          async () => {
            const s = await deployShop({ active: "green" });
            assert.strictEqual(s.error, undefined, s.error);
            assert.deepStrictEqual(stepsOf(s), ["update switch-link"]);
            assert.strictEqual(publicAnswer(), "blue v1");
            const m = await deploy({ active: "green" });
            assert.strictEqual(m.error, undefined, m.error);
            assert.strictEqual(await answerFor(SHOP), "green v1");
          },
        );
        note(
          `two apps switching in turn under 64 keep-alive conns each: first app ${main.requests} requests, ${main.failed} failed (${main.retried} resent); second app ${shop.requests} requests, ${shop.failed} failed (${shop.retried} resent); the slowest ${Math.max(main.slowestMs, shop.slowestMs)} ms`,
        );
        assert.strictEqual(main.failed, 0, main.raw);
        assert.strictEqual(shop.failed, 0, shop.raw);
        assert.strictEqual(publicAnswer(), `green ${String(config.greenVersion)}`);
        assert.strictEqual(await answerFor(SHOP), "green v1");
        // Each switch held only its own app's lock and wrote only its own audit log.
        assert.match(await onHost("tail -n 3 /var/log/bluegreen-shop/audit.log"), /switch from=blue to=green/);
        assert.doesNotMatch(await onHost("cat /var/log/bluegreen/audit.log"), /shop/);
      },
    );

    scenario(
      "23. the same domain from a third stack is refused before anything changes; destroying the second app leaves the first serving",
      async () => {
        const intruder = { ...baseConfig(), appName: "intruder", domains: [SHOP] };
        const refused = await up([], resourcesOf(await runProgram(intruder, { stack: "intruder" })));
        assert.match(
          refused.error ?? "",
          /domain shop\.example\.test is already served by app 'shop' \(stack organization\/bluegreen\/shop\/[0-9a-f]+\) on this host\. Nothing was changed\./,
        );
        assert.strictEqual(await onHost(router.listAppFiles), router.appFiles(["bluegreen-shop", "bluegreen"]));
        // Its destroy removes the tools its first steps installed.
        assert.strictEqual((await up(refused.state, [])).error, undefined);
        assert.strictEqual(await onHost("test -e /usr/local/lib/bluegreen-intruder && echo left || echo gone"), "gone");

        let d: UpResult | undefined;
        const [first] = await guestLoads([{ url: "http://127.0.0.1/" }], async () => {
          d = await up(shopState, []);
        });
        assert.strictEqual(d!.error, undefined, d!.error);
        shopState = d!.state;
        note(
          `second app destroyed (its site removed: one ${kind} reload) under 64 keep-alive conns on the first app: ${first.requests} requests, ${first.failed} failed, ${first.retried} resent by the client after ${kind} closed a kept-alive connection`,
        );
        assert.strictEqual(publicAnswer(), `green ${String(config.greenVersion)}`);
        assert.strictEqual(
          await answerFor(SHOP),
          `green ${String(config.greenVersion)}`,
          "the remaining app is the catch-all",
        );
        assert.strictEqual(await onHost(router.listAppFiles), router.appFiles(["bluegreen"]));
        assert.strictEqual(await onHost("ls /etc/systemd/system | grep -c bluegreen-shop || true"), "0");
        assert.strictEqual(
          await onHost("systemctl is-active bluegreen-shop@blue bluegreen-shop@green || true"),
          "inactive\ninactive",
        );
        assert.strictEqual(await onHost("ls /var/lib/bluegreen-shop"), "data");
        assert.strictEqual(await onHost("ls /var/lib/bluegreen-apps"), "bluegreen");
        assert.strictEqual(await onHost("test -e /usr/local/lib/bluegreen-shop && echo left || echo gone"), "gone");
      },
    );

    // ---- Any app: "notes", the Node.js demo (app/node) as a .tar.gz bundle started by appCommand,
    // with nodejs and sqlite3 installed through hostPackages (the VM's local apt repository), a
    // preSwitch migration and the live-slot job. A third stack on the same VM.
    const NOTES = "notes.example.test";
    const NOTES_SOCKET = (c: string) => `/run/bluegreen-notes/${c}/app.sock`;
    const NODE_BUILD = 'bash app/node/build.sh "$BLUEGREEN_VERSION" "$BLUEGREEN_ARCH" "$BLUEGREEN_OUT"';
    let notesState: StateEntry[] = [];
    let notesConfig: Record<string, unknown> = {};
    /** Keys of the notes stack set with --secret (scenario 27b's webhook). */
    let notesSecrets: string[] = [];
    async function deployNotes(changes: Record<string, unknown>): Promise<UpResult> {
      notesConfig = { ...notesConfig, ...changes };
      for (const [k, v] of Object.entries(notesConfig)) if (v === undefined) delete notesConfig[k];
      const program = await runProgram(notesConfig, { stack: "notes", secretKeys: notesSecrets });
      const result = await up(notesState, resourcesOf(program));
      notesState = result.state;
      const secrets = Object.values((notesConfig.appSecrets ?? {}) as Record<string, string>);
      for (const step of result.steps)
        for (const secret of secrets)
          assert.ok(!step.output.includes(secret), `step ${step.name} printed a secret value`);
      for (const secret of secrets) assert.ok(!(result.error ?? "").includes(secret), "the error shows a secret value");
      return result;
    }
    /** The Node demo as a bundle, its migrations edited by `edit` (shell run in the copy's migrations/). */
    function nodeBundle(name: string, edit = "true"): string {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), `bg-node-${name}-`));
      fs.cpSync(path.join(ROOT, "app", "node"), dir, { recursive: true });
      const out = path.join(dir, `${name}.tar.gz`);
      const r = run("bash", ["-c", `set -e; cd ${dir}/migrations; ${edit}; bash ${dir}/build.sh ${name} amd64 ${out}`]);
      assert.strictEqual(r.status, 0, r.stderr);
      return out;
    }
    const notesGet = (p: string) => onHost(`curl -sS --max-time 10 -H 'Host: ${NOTES}' http://127.0.0.1${p}`);
    const notesPid = (c: string) => onHost(`systemctl show -p MainPID --value bluegreen-notes@${c}`);

    scenario(
      "24. any app: a Node bundle with appCommand; hostPackages installs nodejs and sqlite3 first; the preSwitch migration runs before traffic",
      async () => {
        assert.strictEqual(await onHost("dpkg-query -W -f='${Status}' nodejs 2>/dev/null || echo absent"), "absent");
        const firstApp = publicAnswer();
        const { appArgs: _demoArgs, ...base } = baseConfig();
        const v1 = nodeBundle("v1", "rm 0002_last_color.sql");
        notesConfig = {
          ...base,
          appName: "notes",
          domains: [NOTES],
          blueArtifact: v1,
          greenArtifact: v1,
          appCommand: "node server.js",
          hostPackages: ["nodejs", "sqlite3"],
          preSwitch: "node migrate.js",
        };
        const r = await deployNotes({});
        assert.strictEqual(r.error, undefined, r.error);
        const order = stepsOf(r);
        assert.ok(order.indexOf("create packages-install") >= 0, order.join(", "));
        assert.ok(order.indexOf("create packages-install") < order.indexOf("create blue-service"), order.join(", "));
        assert.match(output(r, "packages-install"), /host packages: installed nodejs \S+, .*sqlite3 \S+/);
        assert.match(
          await onHost("dpkg-query -W -f='${Status}' nodejs sqlite3"),
          /^install ok installedinstall ok installed$/,
        );
        const sw = output(r, "switch-link");
        assert.match(
          sw,
          /preSwitch: running as slot blue \(v1\) before traffic moves\n {2}preSwitch\| migrate: applied 0001_visits\.sql\n/,
        );
        assert.strictEqual(await notesGet("/"), "blue v1");
        assert.strictEqual(await notesGet("/visits"), "visits 1");
        assert.strictEqual(await notesGet("/visits"), "visits 2");
        // Run from the release, as the app's own user; the release is root's and read-only to it.
        const pid = await notesPid("blue");
        assert.strictEqual(await onHost(`readlink /proc/${pid}/cwd`), "/opt/bluegreen-notes/releases/v1");
        assert.strictEqual(
          await onHost(`stat -c %U /proc/${pid}; tr '\\0' ' ' </proc/${pid}/cmdline`),
          "bluegreen-notes\nnode server.js",
        );
        assert.strictEqual(await onHost("stat -c '%U %a' /opt/bluegreen-notes/releases/v1/server.js"), "root 644");
        assert.match(
          await onHost("cat /var/log/bluegreen-notes/audit.log"),
          /hook-output name=preSwitch slot=blue \| migrate: applied 0001_visits\.sql\n(.*\n)*.* hook name=preSwitch slot=blue version=v1 exit=0 result=ok/,
        );
        // Nothing to do the second time: the packages are there, nothing reinstalled.
        const again = await deployNotes({});
        assert.deepStrictEqual(stepsOf(again), []);
        assert.strictEqual(publicAnswer(), firstApp, "the first app still serves");
      },
      NGINX_ONLY,
    );

    scenario(
      "25. v2, built by buildCommand: its migration adds a column while v1 serves /visits under load; the switch loses nothing; the old slot keeps working",
      async () => {
        const r = await deployNotes({ greenVersion: "v2", greenArtifact: "build", buildCommand: NODE_BUILD });
        assert.strictEqual(r.error, undefined, r.error);
        assert.deepStrictEqual(stepsOf(r), ["update green-upload", "update green-service", "update releases-prune"]);
        let s: UpResult | undefined;
        const [visits, page] = await guestLoads(
          [
            // Fewer connections than elsewhere: every /visits is a SQLite write through one sqlite3
            // process per slot, and the VM has one emulated CPU (TCG) for both loads, the apps,
            // the migration and the switch. The point is that none fails, not the rate.
            { url: "http://127.0.0.1/visits", host: NOTES, connections: 8 },
            { url: "http://127.0.0.1/", host: NOTES, connections: 16 },
          ],
          async () => {
            s = await deployNotes({ active: "green" });
          },
        );
        assert.strictEqual(s!.error, undefined, s!.error);
        note(
          `Node bundle switch with a preSwitch migration (ALTER TABLE) under two keep-alive loads (8 and 16 conns): /visits ${visits.requests} requests, ${visits.failed} failed; / ${page.requests} requests, ${page.failed} failed`,
        );
        assert.strictEqual(visits.failed, 0, visits.raw);
        assert.strictEqual(page.failed, 0, page.raw);
        assert.match(output(s!, "switch-link"), /preSwitch\| migrate: applied 0002_last_color\.sql\n/);
        assert.match(await notesGet("/visits"), /^visits \d+ last_color green$/);
        // The old slot, v1, now idle, still serves against the migrated database (expand/contract).
        assert.match(
          await onHost(`curl -sS --unix-socket ${NOTES_SOCKET("blue")} http://blue/visits`),
          /^visits \d+ last_color blue$/,
        );
        // Only the live slot runs the job.
        await new Promise((res) => setTimeout(res, 5000));
        const jobs = JSON.parse(await notesGet("/jobs")) as { color: string }[];
        assert.ok(jobs.length > 0);
        assert.deepStrictEqual([...new Set(jobs.slice(0, 2).map((j) => j.color))], ["green"]);
      },
      NGINX_ONLY,
    );

    scenario(
      "26. drain across a restart, then rollback under load (preSwitch skipped): v2's column stays, v1 keeps counting",
      async () => {
        const preview = autoPorts("notes").preview;
        const slow = onHost(`curl -sS -o /dev/null -w '%{http_code}' 'http://127.0.0.1:${preview}/slow?ms=4000'`);
        await new Promise((res) => setTimeout(res, 1000));
        const before = await notesPid("blue");
        const r = await deployNotes({ appEnv: { NOTE: "restart" } });
        assert.strictEqual(r.error, undefined, r.error);
        assert.strictEqual(await slow, "200", "the in-flight request to the idle slot completed across its restart");
        assert.notStrictEqual(await notesPid("blue"), before, "the idle slot restarted");
        assert.match(output(r, "green-service"), /PENDING/);
        let s: UpResult | undefined;
        const [load] = await guestLoads([{ url: "http://127.0.0.1/visits", host: NOTES }], async () => {
          s = await deployNotes({ active: "blue" });
        });
        assert.strictEqual(s!.error, undefined, s!.error);
        assert.strictEqual(load.failed, 0, load.raw);
        note(`Node rollback to v1 under load on /visits: ${load.requests} requests, ${load.failed} failed`);
        // A rollback to the release that was live before skips preSwitch: it already ran against this data.
        assert.match(
          output(s!, "switch-link"),
          /preSwitch: skipped: blue \(v1\) was live before the last switch, so this is a rollback/,
        );
        assert.match(await notesGet("/visits"), /^visits \d+ last_color blue$/);
      },
      NGINX_ONLY,
    );

    scenario(
      "27. a failing migration refuses the switch with its output, traffic stays; an unsafe bundle is refused before it is unpacked",
      async () => {
        const v3 = nodeBundle("v3", "printf 'ALTER TABLE nope ADD COLUMN x TEXT;\\n' > 0003_bad.sql");
        const d = await deployNotes({ greenVersion: "v3", greenArtifact: v3, buildCommand: undefined });
        assert.strictEqual(d.error, undefined, d.error);
        const s = await deployNotes({ active: "green" });
        assert.match(
          s.error ?? "",
          /preSwitch failed on green, so the switch did not happen: traffic stays on blue\. Its output:/,
        );
        assert.match(s.error ?? "", /migrate: 0003_bad\.sql failed: .*no such table: nope/);
        assert.strictEqual(await notesGet("/"), "blue v1");
        assert.match(
          await onHost("tail -n 1 /var/log/bluegreen-notes/audit.log"),
          /switch from=blue to=green version=v3 result=refused/,
        );
        assert.match(
          await onHost("cat /var/log/bluegreen-notes/audit.log"),
          /hook name=preSwitch slot=green version=v3 exit=1 result=failed/,
        );
        assert.deepStrictEqual(stepsOf(await deployNotes({ active: "blue" })), []);

        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bg-evil-"));
        run("bash", ["-c", `cd ${dir} && ln -s /etc etc && echo x > server.js && tar -czf evil.tar.gz etc server.js`]);
        const e = await deployNotes({ greenVersion: "v5", greenArtifact: `${dir}/evil.tar.gz` });
        assert.match(
          e.error ?? "",
          /release bundle v5: the link "etc" points out of the release directory \(-> \/etc\); nothing was unpacked/,
        );
        assert.strictEqual(await onHost("ls /opt/bluegreen-notes/releases | tr '\\n' ' '"), "v1 v2 v3");
        assert.strictEqual(await notesGet("/"), "blue v1");
        const back = await deployNotes({ greenVersion: "v3", greenArtifact: v3 });
        assert.strictEqual(back.error, undefined, back.error);
      },
      NGINX_ONLY,
    );

    scenario(
      "27b. data and signals with real systemd: the backup timer's service, a bad migration, a rollback and a restore of the snapshot; notifications by the .path unit; metrics from the socket; then all removed",
      async () => {
        // A webhook receiver on the host's loopback (node is there: the notes app's hostPackages).
        const receiver = await onHost(
          `nohup node -e "require('http').createServer((q, s) => { let b = ''; q.on('data', (d) => (b += d)); q.on('end', () => { require('fs').appendFileSync('/root/hooks.log', b); s.end('ok'); }); }).listen(9199, '127.0.0.1')" >/dev/null 2>&1 & echo $!`,
        );
        notesSecrets = ["bluegreen:notifyWebhook"];
        const on = await deployNotes({
          backupDatabases: ["app.db"],
          metrics: "true",
          notifyWebhook: "http://127.0.0.1:9199/hook",
        });
        assert.strictEqual(on.error, undefined, on.error);
        assert.deepStrictEqual(stepsOf(on), ["create backups-config", "create notify-config", "create metrics-config"]);
        assert.strictEqual(
          await onHost(
            "systemctl is-active bluegreen-notes-backup.timer bluegreen-notes-notify.path bluegreen-notes-check.timer bluegreen-notes-metrics.socket",
          ),
          "active\nactive\nactive\nactive",
        );
        // The timer's own service, run now by systemd.
        await onHost("systemctl start bluegreen-notes-backup.service");
        assert.match(
          await onHost("tail -n 3 /var/log/bluegreen-notes/audit.log"),
          / backup id=\S+-hourly kind=hourly bytes=\d+ result=ok by=root/,
        );
        // A migration that breaks the data (every visit forgotten), behind a switch.
        const good = Number(/^visits (\d+)/.exec(await notesGet("/visits"))![1]);
        const v6 = nodeBundle("v6", "printf 'UPDATE visits SET count = 0;\\n' > 0003_zero.sql");
        assert.strictEqual((await deployNotes({ greenVersion: "v6", greenArtifact: v6 })).error, undefined);
        const sw = await deployNotes({ active: "green" });
        assert.strictEqual(sw.error, undefined, sw.error);
        const snap = /snapshot: (\S+-snapshot) taken before preSwitch/.exec(output(sw, "switch-link"))?.[1];
        assert.ok(snap, output(sw, "switch-link"));
        assert.match(await notesGet("/visits"), /^visits 1 last_color green$/);
        // Rollback: v1 again, on the broken data; then the snapshot back.
        assert.strictEqual((await deployNotes({ active: "blue" })).error, undefined);
        assert.match(await notesGet("/visits"), /^visits 2 last_color blue$/);
        const started = Date.now();
        const restored = await onHost(`/usr/local/sbin/bluegreen-notes-restore ${snap}`);
        note(
          `restore of the notes app's snapshot with real systemd: ${Date.now() - started} ms over SSH (${restored.split("\n")[0]})`,
        );
        assert.match(restored, new RegExp(`^restored ${snap} \\(app\\.db\\) from local: `));
        assert.strictEqual(await notesGet("/visits"), `visits ${good + 1} last_color blue`);
        assert.strictEqual(
          await onHost("systemctl is-active bluegreen-notes@blue bluegreen-notes@green"),
          "active\nactive",
        );
        // The .path unit started the drain for each queued event; the receiver got them.
        let hooks = "";
        for (let i = 0; i < 60 && !/"event": "restore"/.test(hooks); i++) {
          await new Promise((r) => setTimeout(r, 500));
          hooks = await onHost("cat /root/hooks.log 2>/dev/null || true");
        }
        assert.match(hooks, /"event": "switch", "result": "ok", "app": "notes"/);
        assert.match(hooks, /"event": "restore", "result": "ok", "app": "notes"/);
        assert.match(
          await onHost("cat /var/log/bluegreen-notes/audit.log"),
          / notify event=restore target=webhook try=1 id=\S+ result=ok /,
        );
        // The metrics socket: one metrics.sh per connection, run by systemd.
        const metrics = await onHost(`curl -sS --max-time 20 http://127.0.0.1:${autoMetricsPort("notes")}/metrics`);
        assert.match(metrics, /^bluegreen_live\{app="notes",color="blue"\} 1$/m);
        assert.match(metrics, /^bluegreen_backups\{app="notes"\} [3-9]$/m);
        // Removed from config: their delete steps stop the units; the backups stay.
        const off = await deployNotes({ backupDatabases: undefined, metrics: undefined, notifyWebhook: undefined });
        assert.strictEqual(off.error, undefined, off.error);
        assert.deepStrictEqual(stepsOf(off).sort(), [
          "delete backups-config",
          "delete metrics-config",
          "delete notify-config",
        ]);
        assert.strictEqual(
          await onHost(
            "systemctl is-active bluegreen-notes-backup.timer bluegreen-notes-notify.path bluegreen-notes-metrics.socket || true",
          ),
          "inactive\ninactive\ninactive",
        );
        assert.match(await onHost("ls /var/lib/bluegreen-notes/backups | wc -l"), /^[3-9]$/);
        notesSecrets = [];
        await onHost(`kill ${receiver}`);
      },
      NGINX_ONLY,
    );

    scenario(
      "28. postSwitch: its output has secret values scrubbed and capped; a failure moves traffic back (rollback) or warns (warn); then the stack is destroyed",
      async () => {
        const TOKEN = "tok-secret-9c1f";
        const firstApp = publicAnswer();
        const v4 = nodeBundle("v4");
        const d = await deployNotes({
          greenVersion: "v4",
          greenArtifact: v4,
          appSecrets: { NOTIFY_TOKEN: TOKEN },
          postSwitch: 'echo "notifying with $NOTIFY_TOKEN"; exit 3',
          postSwitchFailure: "rollback",
        });
        assert.strictEqual(d.error, undefined, d.error);
        const s = await deployNotes({ active: "green" });
        assert.match(
          s.error ?? "",
          /postSwitch failed on green, and postSwitchFailure is rollback: traffic is back on blue \(v1\)\. Its output:\nnotifying with \[secret NOTIFY_TOKEN\]/,
        );
        assert.strictEqual(await notesGet("/"), "blue v1");
        const audit = await onHost("cat /var/log/bluegreen-notes/audit.log");
        assert.match(audit, /hook-output name=postSwitch slot=green \| notifying with \[secret NOTIFY_TOKEN\]/);
        assert.ok(!audit.includes(TOKEN), "the audit log holds the secret");

        const w = await deployNotes({ postSwitchFailure: "warn" });
        assert.strictEqual(w.error, undefined, w.error);
        assert.strictEqual(await notesGet("/"), "green v4");
        assert.match(
          output(w, "switch-link"),
          /postSwitch FAILED \(traffic stays on green: postSwitchFailure is warn\)/,
        );

        // A hook that prints without end: its output goes through a pipe that keeps the last
        // 1 MiB, so the disk does not fill before hookTimeout stops it.
        const flood = await deployNotes({ active: "blue", postSwitch: 'yes "flood $NOTIFY_TOKEN"', hookTimeout: "5" });
        assert.strictEqual(flood.error, undefined, flood.error);
        const floodOut = output(flood, "switch-link");
        assert.match(
          floodOut,
          /( {2}postSwitch\| flood \[secret NOTIFY_TOKEN\]\n)+ {2}postSwitch\| bluegreen: postSwitch printed over 1024 KiB; only the end is kept\n {2}postSwitch\| (bluegreen: the unfinished last line of postSwitch is not shown \(it may have been cut inside a secret value\)\n {2}postSwitch\| )?bluegreen: postSwitch was stopped after 5 s \(bluegreen:hookTimeout\)\n/,
        );
        assert.ok(!floodOut.includes(TOKEN), "the hook's output holds the secret");
        assert.match(floodOut, /postSwitch FAILED \(traffic stays on blue: postSwitchFailure is warn\)/);
        assert.strictEqual(await notesGet("/"), "blue v1");
        assert.strictEqual(
          await onHost("ls /etc/bluegreen-notes | grep -c hook || true"),
          "0",
          "the hook's files are gone",
        );

        const gone = await up(notesState, []);
        assert.strictEqual(gone.error, undefined, gone.error);
        notesState = gone.state;
        assert.strictEqual(
          await onHost("systemctl is-active bluegreen-notes@blue bluegreen-notes@green || true"),
          "inactive\ninactive",
        );
        assert.strictEqual(publicAnswer(), firstApp);
        assert.strictEqual(
          await onHost("dpkg-query -W -f='${Status}' nodejs"),
          "install ok installed",
          "packages stay",
        );
      },
      NGINX_ONLY,
    );
  });
}
