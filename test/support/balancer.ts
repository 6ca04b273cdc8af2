// A stand-in for the Hetzner Cloud Load Balancer, for tests only: a real HAProxy on this machine
// set up the way that balancer behaves (Hetzner's API docs and terraform-provider-hcloud, as read
// for issue 25): round robin over a fixed set of targets; an HTTP health check of each target
// every `interval` s, `timeout` s each, that must answer 2xx; a target is taken out after
// `retries` failed checks and back after as many passing ones; 503 when no target is healthy.
// What it cannot show of the real one: its own network path and latency, TLS at the balancer
// (managed or uploaded certificates), sticky cookies, and how Hetzner schedules its checks.
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { BALANCER_HEALTH_PATH } from "../../components/router/nginx";
import { requireTool, run } from "./tools";

export interface StandInTarget {
  readonly name: string;
  /** "ADDRESS:PORT" of the host's public listener. */
  readonly address: string;
}

export interface StandInOptions {
  /** Where clients reach the balancer, "ADDRESS:PORT". */
  readonly listen: string;
  readonly targets: readonly StandInTarget[];
  readonly health: { readonly interval: number; readonly timeout: number; readonly retries: number };
  /** The Host header of the health check (the balancer's http.domain). */
  readonly domain?: string;
}

export class StandInBalancer {
  readonly dir: string;
  private proc?: ChildProcess;

  constructor(readonly o: StandInOptions) {
    requireTool("haproxy", "apt-get install -y haproxy");
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "bg-lb-"));
  }

  config(): string {
    const { interval, timeout, retries } = this.o.health;
    // HTTP/1.1 needs a Host header: the domain, else a name no app claims (the catch-all app answers it).
    const host = `hdr host ${this.o.domain ?? "balancer-check"}`;
    return [
      "global",
      `    stats socket ${this.dir}/admin.sock level admin`,
      "defaults",
      "    mode http",
      "    timeout connect 5s",
      "    timeout client 60s",
      "    timeout server 60s",
      "    timeout http-keep-alive 60s",
      "frontend lb",
      `    bind ${this.o.listen}`,
      "    default_backend targets",
      "backend targets",
      "    balance roundrobin",
      "    option httpchk",
      `    http-check send meth GET uri ${BALANCER_HEALTH_PATH} ver HTTP/1.1 ${host}`,
      "    http-check expect status 200-299",
      `    timeout check ${timeout}s`,
      `    default-server inter ${interval}s fall ${retries} rise ${retries}`,
      ...this.o.targets.map((t) => `    server ${t.name} ${t.address} check`),
      "",
    ].join("\n");
  }

  start(): void {
    const file = path.join(this.dir, "haproxy.cfg");
    fs.writeFileSync(file, this.config());
    const check = run("haproxy", ["-c", "-q", "-f", file]);
    if (check.status !== 0) throw new Error(`stand-in balancer config: ${check.stderr}`);
    this.proc = spawn("haproxy", ["-db", "-f", file], { stdio: "ignore" });
  }

  /** Each target's state as the balancer sees it now: UP, DOWN, or a transition (e.g. "UP 1/2"). */
  states(): Record<string, string> {
    const r = run("socat", ["-t", "2", "-", `UNIX-CONNECT:${this.dir}/admin.sock`], { input: "show stat\n" });
    const out: Record<string, string> = {};
    for (const line of r.stdout.split("\n")) {
      const f = line.split(",");
      if (f[0] === "targets" && f[1] !== "BACKEND") out[f[1]] = f[17];
    }
    return out;
  }

  /** Waits until every target is in `state` (by name), or throws after `seconds`. */
  async waitFor(want: Record<string, string>, seconds: number): Promise<void> {
    const deadline = Date.now() + seconds * 1000;
    for (;;) {
      const s = this.states();
      if (Object.entries(want).every(([k, v]) => s[k] === v)) return;
      if (Date.now() > deadline)
        throw new Error(`stand-in balancer: wanted ${JSON.stringify(want)}, have ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  stop(): void {
    this.proc?.kill("SIGKILL");
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
