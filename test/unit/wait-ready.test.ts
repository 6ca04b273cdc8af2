// wait-ready.sh, the first step on a new host: it waits for cloud-init and the package manager and
// says so while it waits (a first boot can take minutes), with stand-ins for cloud-init, fuser
// and dpkg on PATH.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { loadScript } from "../../components/host/shell";
import { requireTool, run } from "../support/tools";

function fakes(cloudInitStates: string[], lockedPolls: number): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bg-wait-"));
  const write = (name: string, text: string) =>
    fs.writeFileSync(path.join(dir, name), `#!/usr/bin/env bash\n${text}\n`, { mode: 0o755 });
  fs.writeFileSync(path.join(dir, "states"), cloudInitStates.join("\n") + "\n");
  // Each call prints the next state; the last one stays.
  write(
    "cloud-init",
    `f=${dir}/states; s=$(head -1 "$f"); [ "$(wc -l < "$f")" -le 1 ] || sed -i 1d "$f"; echo "status: $s"`,
  );
  fs.writeFileSync(path.join(dir, "locks"), String(lockedPolls));
  write("fuser", `n=$(cat ${dir}/locks); [ "$n" -gt 0 ] || exit 1; echo $((n - 1)) > ${dir}/locks; exit 0`);
  write("dpkg", "echo amd64");
  return dir;
}

describe("wait-ready.sh: a line every few seconds while it waits", () => {
  before(() => requireTool("systemctl", "apt-get install -y systemd"));

  it("cloud-init running, then done; then the dpkg lock held: what it waits for, and for how long", () => {
    const bin = fakes(["running", "running", "running", "running", "done"], 3);
    const r = run("bash", ["-s"], {
      input: loadScript("wait-ready.sh"),
      env: {
        PATH: `${bin}:${process.env.PATH}`,
        EXPECTED_ARCH: "amd64",
        BG_POLL_SECONDS: "1",
        BG_PROGRESS_SECONDS: "1",
      },
    });
    assert.strictEqual(r.status, 0, r.stderr);
    const lines = r.stderr.trim().split("\n");
    assert.ok(lines.length >= 4, r.stderr);
    for (const l of lines)
      assert.match(
        l,
        /^waiting for (cloud-init: \d+ s so far \(status: running\)|the package manager: \d+ s so far \(another apt or dpkg holds its lock\))$/,
      );
    assert.ok(
      lines.some((l) => l.startsWith("waiting for cloud-init")) &&
        lines.some((l) => l.startsWith("waiting for the package manager")),
    );
    assert.match(r.stdout, /^host up: .*, amd64\n$/);
  });

  it("nothing to wait for: no progress line at all", () => {
    const bin = fakes(["done"], 0);
    const r = run("bash", ["-s"], {
      input: loadScript("wait-ready.sh"),
      env: {
        PATH: `${bin}:${process.env.PATH}`,
        EXPECTED_ARCH: "amd64",
        BG_POLL_SECONDS: "1",
        BG_PROGRESS_SECONDS: "1",
      },
    });
    assert.strictEqual(r.status, 0, r.stderr);
    assert.strictEqual(r.stderr, "");
  });

  it("the wrong architecture is refused with the config line that fixes it", () => {
    const r = run("bash", ["-s"], {
      input: loadScript("wait-ready.sh"),
      env: { PATH: `${fakes(["done"], 0)}:${process.env.PATH}`, EXPECTED_ARCH: "arm64", BG_POLL_SECONDS: "1" },
    });
    assert.strictEqual(r.status, 1);
    assert.strictEqual(
      r.stderr.trim(),
      "bluegreen: error: the host is amd64 but bluegreen:hostArch is arm64; set it with: pulumi config set hostArch amd64",
    );
  });
});
