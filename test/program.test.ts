import * as assert from "assert";
import { BASE_CONFIG, changedResources, FAKE_KEY, FAKE_PUB, find, isSecret, plain, ROOT, Run, runProgram } from "./harness";

const commandText = (run: Run, name: string) => plain(find(run, name).inputs).create as string;

describe("program under mocks", function () {
    let blue: Run;
    before(async () => {
        blue = await runProgram({ ...BASE_CONFIG, active: "blue" });
    });

    it("registers host, setup, router, both slots and the switch in dependency order", () => {
        const custom = blue.resources.filter((r) => !r.type.startsWith("bluegreen:")).map((r) => `${r.type} ${r.name}`);
        assert.deepStrictEqual(custom, [
            "command:remote:Command host-ready",
            "command:remote:Command setup-tools",
            "command:remote:Command setup-unit",
            "command:remote:Command router-install",
            "command:remote:Command router-config",
            "command:remote:CopyToRemote blue-upload",
            "command:remote:CopyToRemote green-upload",
            "command:remote:Command maintenance-mode",
            "command:remote:Command blue-release",
            "command:remote:Command green-release",
            "command:remote:Command blue-service",
            "command:remote:Command green-service",
            "command:remote:Command switch-link",
        ]);
    });

    it("switch: flipping active changes exactly one resource, the switch, and only its target", async () => {
        const green = await runProgram({ ...BASE_CONFIG, active: "green" });
        assert.deepStrictEqual(changedResources(blue, green), ["switch-link"]);
        assert.strictEqual(
            commandText(blue, "switch-link"),
            "env TARGET=blue MODE=socket HEALTH_PATH=/health/ready CHECK_PORT=8082 VERIFY_TIMEOUT=15 " +
                "WATCH_SECONDS=30 ERROR_PERCENT=5 MIN_ERRORS=5 /usr/local/lib/bluegreen/switch.sh",
        );
        assert.strictEqual(commandText(green, "switch-link"), commandText(blue, "switch-link").replace("TARGET=blue", "TARGET=green"));
        assert.strictEqual(plain(find(green, "switch-link").inputs).delete, undefined, "the switch has no delete step");
        assert.strictEqual(plain(find(green, "switch-link").inputs).triggers, undefined, "triggers would make it a replace");
        assert.strictEqual(green.outputs.active, "green");
    });

    it("maintenance: turning it on changes exactly one resource, and sends the page on stdin", async () => {
        const on = await runProgram({ ...BASE_CONFIG, maintenance: "true" });
        assert.deepStrictEqual(changedResources(blue, on), ["maintenance-mode"]);
        const mode = plain(find(on, "maintenance-mode").inputs);
        assert.strictEqual(mode.create, "env STATE=on /usr/local/lib/bluegreen/maintenance.sh");
        assert.match(mode.stdin, /Please try again in about 2 minutes\./);
        // Retry-After lives in the nginx site, so changing it touches the router too.
        const slower = await runProgram({ ...BASE_CONFIG, maintenance: "true", maintenanceRetryAfter: 300 });
        assert.deepStrictEqual(changedResources(on, slower), ["maintenance-mode", "router-config"]);
        assert.match(plain(find(slower, "router-config").inputs).stdin, /add_header Retry-After 300 always;/);
        assert.strictEqual(commandText(blue, "maintenance-mode"), "env STATE=off /usr/local/lib/bluegreen/maintenance.sh");
        assert.strictEqual(on.outputs.maintenance, true);
    });

    it("the post-switch watch and its limits are plain values on the switch's command line", async () => {
        const run = await runProgram({ ...BASE_CONFIG, watchSeconds: 0, rollbackErrorPercent: 20, rollbackMinErrors: 50 });
        assert.match(commandText(run, "switch-link"), / WATCH_SECONDS=0 ERROR_PERCENT=20 MIN_ERRORS=50 /);
    });

    it("version: changing only green's version changes only green's resources", async () => {
        const v2 = await runProgram({ ...BASE_CONFIG, greenVersion: "v2", greenArtifact: "test/fixtures/app-v2" });
        assert.deepStrictEqual(changedResources(blue, v2), ["green-release", "green-service", "green-upload"]);
        assert.match(commandText(v2, "green-service"), / VERSION=v2 /);
        assert.match(plain(find(v2, "green-service").inputs).delete, /^env SLOT=green VERSION=v2 .*stop-slot\.sh$/);
        for (const r of ["green-service", "green-release"]) {
            assert.strictEqual(plain(find(v2, r).inputs).triggers, undefined, `${r}: a version change must be an update, not a replace`);
        }
        assert.strictEqual(v2.outputs.greenVersion, "v2");
        assert.strictEqual(v2.outputs.blueVersion, "v1");
    });

    it("slot service: deploys with plain values on the command line and the env file on stdin", () => {
        const svc = plain(find(blue, "blue-service").inputs);
        assert.strictEqual(
            svc.create,
            "env SLOT=blue VERSION=v1 MODE=socket LISTEN=unix:/run/bluegreen/blue/app.sock HEALTH_PATH=/health/ready HEALTH_TIMEOUT=60 /usr/local/lib/bluegreen/deploy-slot.sh",
        );
        assert.strictEqual(svc.delete, "env SLOT=blue VERSION=v1 /usr/local/lib/bluegreen/stop-slot.sh");
        assert.match(svc.stdin, /^BLUEGREEN_COLOR="blue"\nBLUEGREEN_VERSION="v1"\n/);
    });

    it("release: uploads the file to a hash-named path and verifies it on the host", () => {
        const upload = plain(find(blue, "blue-upload").inputs);
        assert.strictEqual(upload.remotePath, "/tmp/bluegreen-upload-636292753d9b22f9");
        assert.deepStrictEqual(upload.source, { asset: "file", path: `${ROOT}/test/fixtures/app-v1` });
        assert.strictEqual(
            commandText(blue, "blue-release"),
            "env VERSION=v1 SHA256=636292753d9b22f93785a4bdb30b1629477d14e46f9a1a2afe8e7c1f959c868c KEEP=5 " +
                "SOURCE_FILE=/tmp/bluegreen-upload-636292753d9b22f9 /usr/local/lib/bluegreen/release.sh",
        );
    });

    it("release: an https artifact is downloaded on the host and checked against its sha256", async () => {
        const sha = "a".repeat(64);
        const run = await runProgram({ ...BASE_CONFIG, greenArtifact: "https://example.com/app-v1", greenSha256: sha });
        assert.ok(!run.resources.some((r) => r.name === "green-upload"));
        assert.strictEqual(
            commandText(run, "green-release"),
            `env VERSION=v1 SHA256=${sha} KEEP=5 SOURCE_URL=https://example.com/app-v1 /usr/local/lib/bluegreen/release.sh`,
        );
    });

    it("tcp mode: slots listen on 127.0.0.1 ports and the switch says so", async () => {
        const run = await runProgram({ ...BASE_CONFIG, linkMode: "tcp", bluePort: 9001, greenPort: 9002 });
        assert.match(commandText(run, "blue-service"), / LISTEN=127\.0\.0\.1:9001 /);
        assert.match(commandText(run, "green-service"), / LISTEN=127\.0\.0\.1:9002 /);
        assert.match(commandText(run, "switch-link"), / MODE=tcp /);
        assert.strictEqual(commandText(run, "router-config"), "env MODE=tcp BLUE_PORT=9001 GREEN_PORT=9002 /usr/local/lib/bluegreen/router-config.sh");
    });

    it("a non-root SSH user runs every host step through sudo -n", async () => {
        const run = await runProgram({ ...BASE_CONFIG, sshUser: "deploy" });
        for (const r of run.resources.filter((x) => x.type === "command:remote:Command")) {
            assert.match(plain(r.inputs).create, /^sudo -n /, r.name);
        }
        assert.strictEqual(run.outputs.sshCommand, "ssh deploy@203.0.113.10");
    });

    it("exports url, ip, active, versions, an ssh command and a preview tunnel command", () => {
        assert.deepStrictEqual(blue.outputs, {
            ip: "203.0.113.10",
            url: "http://203.0.113.10/",
            active: "blue",
            maintenance: false,
            blueVersion: "v1",
            greenVersion: "v1",
            sshCommand: "ssh root@203.0.113.10",
            previewTunnelCommand: "ssh -N -L 8081:127.0.0.1:8081 root@203.0.113.10",
            statusCommand: "ssh root@203.0.113.10 /usr/local/sbin/bluegreen-status",
        });
    });

    it("host readiness waits long enough for a booting server and checks the architecture", () => {
        const ready = plain(find(blue, "host-ready").inputs);
        assert.strictEqual(ready.create, "env EXPECTED_ARCH=amd64 bash -s");
        assert.strictEqual(ready.connection.dialErrorLimit, 150);
        assert.match(ready.stdin, /cloud-init status --wait/);
    });

    describe("multipass host", () => {
        it("launches the VM locally with cloud-init holding the public key, and connects as ubuntu to its IP", async () => {
            const run = await runProgram({ ...BASE_CONFIG, hostKind: "multipass", sshHost: undefined, sshPublicKey: FAKE_PUB });
            const vm = plain(find(run, "host-vm").inputs);
            assert.strictEqual(
                vm.create,
                `env NAME=bluegreen CPUS=1 MEMORY=1G DISK=8G IMAGE=24.04 CLOUD_INIT='#cloud-config\nssh_authorized_keys:\n  - ${FAKE_PUB}\n' bash -s`,
            );
            assert.strictEqual(vm.delete, "multipass delete --purge bluegreen");
            assert.strictEqual(run.outputs.ip, "10.12.0.5");
            assert.strictEqual(plain(find(run, "host-ready").inputs).connection.user, "ubuntu");
            assert.match(commandText(run, "setup-tools"), /^sudo -n bash -s$/);
        });
    });

    describe("hetzner host", () => {
        let run: Run;
        before(async () => {
            run = await runProgram({ ...BASE_CONFIG, hostKind: "hetzner", sshHost: undefined, sshPublicKey: FAKE_PUB, "hcloud:token": "tok-abc123-secret" });
        });

        it("firewall admits only tcp 22, 80 and 443, and the server uses it", () => {
            const fw = plain(find(run, "host-firewall").inputs);
            assert.deepStrictEqual(
                fw.rules.map((r: any) => `${r.direction} ${r.protocol} ${r.port} ${r.sourceIps.join(",")}`),
                ["in tcp 22 0.0.0.0/0,::/0", "in tcp 80 0.0.0.0/0,::/0", "in tcp 443 0.0.0.0/0,::/0"],
            );
            const server = plain(find(run, "host-server").inputs);
            assert.deepStrictEqual(server.firewallIds, [4242]);
            assert.strictEqual(server.serverType, "cx23");
            assert.strictEqual(server.image, "ubuntu-24.04");
            assert.strictEqual(server.location, "fsn1");
            assert.strictEqual(run.outputs.ip, "198.51.100.7");
        });

        it("SSH can be limited to configured CIDRs", async () => {
            const limited = await runProgram({ ...BASE_CONFIG, hostKind: "hetzner", sshPublicKey: FAKE_PUB, "hcloud:token": "t", sshAllowedCidrs: ["203.0.113.7/32"] });
            assert.deepStrictEqual(plain(find(limited, "host-firewall").inputs).rules[0].sourceIps, ["203.0.113.7/32"]);
        });

        it("no slot listens on a public address", () => {
            for (const c of ["blue", "green"]) {
                assert.match(commandText(run, `${c}-service`), new RegExp(` LISTEN=unix:/run/bluegreen/${c}/app\\.sock `));
                assert.match(plain(find(run, `${c}-service`).inputs).stdin, new RegExp(`BLUEGREEN_LISTEN="unix:/run/bluegreen/${c}/app.sock"`));
            }
        });

        it("the hcloud token appears in no resource input", () => {
            assert.ok(!JSON.stringify(run.resources.map((r) => plain(r.inputs))).includes("tok-abc123-secret"));
        });

        it("an Arm server type defaults the architecture to arm64", async () => {
            const arm = await runProgram({ ...BASE_CONFIG, hostKind: "hetzner", sshPublicKey: FAKE_PUB, "hcloud:token": "t", hetznerServerType: "cax11" });
            assert.strictEqual(plain(find(arm, "host-ready").inputs).create, "env EXPECTED_ARCH=arm64 bash -s");
        });
    });

    describe("secrets", () => {
        let run: Run;
        const SECRET = "hunter2-db-password";
        before(async () => {
            run = await runProgram({ ...BASE_CONFIG, appEnv: { LOG_LEVEL: "info" }, appSecrets: { DB_PASSWORD: SECRET } });
        });

        it("the SSH private key is secret in every command's connection", () => {
            const remote = run.resources.filter((r) => r.type.startsWith("command:remote:"));
            assert.ok(remote.length > 5);
            for (const r of remote) {
                assert.ok(isSecret(r.inputs.connection), `${r.name}: connection is not secret`);
                assert.strictEqual(plain(r.inputs.connection).privateKey, FAKE_KEY);
            }
        });

        it("app secrets reach the slot only as a secret stdin, never a command line", () => {
            for (const c of ["blue", "green"]) {
                const svc = find(run, `${c}-service`);
                assert.ok(isSecret(svc.inputs.stdin), `${c}-service stdin must be secret`);
                assert.match(plain(svc.inputs.stdin), /\nDB_PASSWORD="hunter2-db-password"\nLOG_LEVEL="info"\n$/);
            }
            for (const r of run.resources) {
                const i = plain(r.inputs);
                for (const field of ["create", "update", "delete"]) {
                    const text = String(i[field] ?? "");
                    assert.ok(!text.includes(SECRET) && !text.includes("AAAAfakekey"), `${r.name}.${field} contains a secret`);
                }
                for (const field of ["create", "update", "delete"]) assert.ok(!isSecret(r.inputs[field]), `${r.name}.${field} is secret, so its diff would be hidden`);
            }
        });

        it("without secrets the env file stays plain so its diff is readable", () => {
            assert.ok(!isSecret(find(blue, "blue-service").inputs.stdin));
        });

        it("stack outputs hold no secret", () => {
            assert.deepStrictEqual(run.secretOutputs, []);
            assert.ok(!JSON.stringify(run.outputs).includes(SECRET));
        });
    });

    it("bad config registers nothing: it never reaches the host", async () => {
        await assert.rejects(runProgram({ ...BASE_CONFIG, active: "purple" }), /bluegreen:active must be one of blue, green \(got "purple"\)/);
    });
});
