// npm run status with several hosts (components/cli/fleetStatus.ts): each host asked over SSH,
// the hosts that disagree named, and the command that makes them agree.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { disagreeing, fixCommand, fleetLines, hostReports } from "../../components/cli/fleetStatus";
import { parseStatusCommand } from "../../components/cli/ssh";

const OUTPUTS = {
  active: "green",
  blueVersion: "v1",
  greenVersion: "v2",
  hosts: {
    web1: { ip: "203.0.113.11", hostKey: "ssh-ed25519 AAAA1" },
    web2: { ip: "203.0.113.12", hostKey: "ssh-ed25519 AAAA2" },
    web3: { ip: "203.0.113.13", hostKey: "ssh-ed25519 AAAA3" },
  },
};

describe("npm run status, several hosts", () => {
  it("asks every host at its own address; names the one that disagrees, and the command that fixes it", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bg-fleet-status-"));
    // An ssh whose hosts answer bluegreen-status --json: web2 still serves blue; web3 does not answer.
    fs.writeFileSync(
      path.join(dir, "ssh"),
      [
        "#!/bin/sh",
        'echo "$*" >>"$(dirname "$0")/calls"',
        'case "$*" in',
        `  *203.0.113.11*) echo '{"live": "green", "slots": {"blue": {"version": "v1"}, "green": {"version": "v2"}}}' ;;`,
        `  *203.0.113.12*) echo '{"live": "blue", "slots": {"blue": {"version": "v1"}, "green": {"version": "v2"}}}' ;;`,
        '  *) echo "ssh: connect to host 203.0.113.13 port 22: No route to host" >&2; exit 255 ;;',
        "esac",
        "",
      ].join("\n"),
      { mode: 0o755 },
    );
    const before = process.env.BLUEGREEN_SSH;
    process.env.BLUEGREEN_SSH = path.join(dir, "ssh");
    try {
      const tool = parseStatusCommand("ssh -p 2222 deploy@203.0.113.11 sudo -n /usr/local/sbin/bluegreen-status");
      const reports = hostReports(tool, OUTPUTS);
      assert.deepStrictEqual(
        fs.readFileSync(path.join(dir, "calls"), "utf8").trim().split("\n"),
        ["11", "12", "13"].map(
          (n) =>
            `-o BatchMode=yes -o ConnectTimeout=15 -p 2222 deploy@203.0.113.${n} sudo -n /usr/local/sbin/bluegreen-status --json`,
        ),
      );
      const bad = disagreeing(reports, "green", OUTPUTS);
      assert.deepStrictEqual(bad, ["web2", "web3"]);
      assert.deepStrictEqual(fleetLines(reports, bad, "green", "prod"), [
        "host web1: live green; blue v1, green v2",
        "host web2: live blue; blue v1, green v2  <- disagrees",
        "host web3: did not answer: ssh: connect to host 203.0.113.13 port 22: No route to host",
        `web2, web3 do not serve what the last pulumi up made live (green): ${fixCommand("prod")}`,
      ]);
      assert.strictEqual(
        fixCommand("prod"),
        `npx pulumi up --stack prod --replace "$(npx pulumi stack --stack prod --show-urns | grep -o 'urn:[^ ]*::switch-hosts')"`,
      );
    } finally {
      if (before === undefined) delete process.env.BLUEGREEN_SSH;
      else process.env.BLUEGREEN_SSH = before;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("every host agrees: one line says so", () => {
    const ok = [
      { name: "web1", live: "green", versions: { blue: "v1", green: "v2" } },
      { name: "web2", live: "green", versions: { blue: "v1", green: "v2" } },
    ];
    assert.deepStrictEqual(disagreeing(ok, "green", OUTPUTS), []);
    assert.deepStrictEqual(
      fleetLines(ok, [], "green", "prod").pop(),
      "every host serves green, as the last pulumi up made it",
    );
  });
});
