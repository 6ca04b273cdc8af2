// Several hosts (bluegreen:hosts, bluegreen:drainedHosts): each named host is the kind's own
// machine with its own address (ssh), location (hetzner) or VM name (multipass).

import { HETZNER_LOCATIONS, hetznerTypeProblem, isHostAddress } from "./host";
import { key, q, Reader } from "./reader";
import { HostConfig, NamedHost } from "./types";

const NAME_RE = /^[a-z0-9](?:[a-z0-9-]{0,14}[a-z0-9])?$/;

/** The hosts the app runs on: `host` alone, or one per bluegreen:hosts entry, in its order. */
export function readHosts(r: Reader, host: HostConfig): NamedHost[] {
  const v = r.raw("hosts");
  if (v === undefined) return [{ name: "", host }];
  let entries: unknown;
  try {
    entries = JSON.parse(v);
  } catch {
    entries = undefined;
  }
  if (typeof entries === "object" && entries !== null && !Array.isArray(entries) && !Object.keys(entries).length)
    return [{ name: "", host }];
  if (typeof entries !== "object" || entries === null || Array.isArray(entries)) {
    r.problem(`${key("hosts")} must be a map of NAME: WHERE, e.g. pulumi config set --path 'hosts.web1' 203.0.113.10`);
    return [{ name: "", host }];
  }
  if (host.kind === "stack") {
    r.problem(
      `${key("hosts")} cannot be used with ${key("hostKind")} "stack": list the hosts in the stack that made them`,
    );
    return [{ name: "", host }];
  }
  if (host.kind === "ssh" && r.raw("sshHost") !== undefined)
    r.problem(
      `${key("sshHost")} and ${key("hosts")} are both set: with several hosts, give every address in hosts and remove sshHost (pulumi config rm sshHost)`,
    );
  const out: NamedHost[] = [];
  for (const [name, where] of Object.entries(entries as Record<string, unknown>)) {
    if (!NAME_RE.test(name)) {
      r.problem(`${key("hosts")}: ${q(name)} is not a host name: a-z, 0-9 and - (not first or last), at most 16`);
      continue;
    }
    if (typeof where !== "string") {
      r.problem(`${key("hosts")}.${name} must be a string (got ${q(where)})`);
      continue;
    }
    const named = namedHost(r, host, name, where, out.length === 0);
    if (named) out.push({ name, host: named });
  }
  return out.length ? out : [{ name: "", host }];
}

/** One entry's machine: the kind's own, with this host's address, location or VM name. */
function namedHost(r: Reader, host: HostConfig, name: string, where: string, first: boolean): HostConfig | undefined {
  const at = `${key("hosts")}.${name}`;
  switch (host.kind) {
    case "ssh":
      if (!isHostAddress(where)) {
        r.problem(`${at} must be the host's name or IP address (got ${q(where)})`);
        return undefined;
      }
      return { ...host, address: where };
    case "hetzner": {
      const location = where || host.location;
      if (!(HETZNER_LOCATIONS as readonly string[]).includes(location)) {
        r.problem(
          `${at} must be a location, one of ${HETZNER_LOCATIONS.join(", ")}, or empty for hetznerLocation (got ${q(where)})`,
        );
        return undefined;
      }
      const problem = hetznerTypeProblem(host.serverType, location, at);
      if (problem) r.problem(problem);
      return { ...host, location };
    }
    case "multipass":
      if (where !== "")
        r.problem(`${at} must be empty for multipass (the VM is named after the host), got ${q(where)}`);
      // The first host keeps the one-host stack's VM.
      return { ...host, name: first ? host.name : `${host.name}-${name}` };
    case "stack":
      return undefined;
  }
}

/** What several hosts rule out: a postSwitch failure that would move one host back alone. */
export function checkSeveral(r: Reader, hosts: readonly NamedHost[], postSwitchFailure: string): void {
  if (hosts[0].name === "" || postSwitchFailure !== "rollback") return;
  r.problem(
    `${key("postSwitchFailure")} "rollback" is not possible with several hosts: a postSwitch hook runs on each host after every host confirmed, and one host moving back alone would serve another colour than the rest. Use warn (the default): pulumi config set postSwitchFailure warn`,
  );
}

/** bluegreen:drainedHosts: names from hosts, never all of them. */
export function readDrained(r: Reader, hosts: readonly NamedHost[]): string[] {
  const list = r.list(
    "drainedHosts",
    `host names from ${key("hosts")}, e.g. pulumi config set --path 'drainedHosts[0]' web2`,
  );
  if (!list?.length) return [];
  const names = hosts.map((h) => h.name);
  const out: string[] = [];
  for (const n of list) {
    if (typeof n !== "string" || !names.includes(n) || n === "")
      r.problem(
        `${key("drainedHosts")} entry ${q(n)} is not a host in ${key("hosts")}${names[0] ? ` (${names.join(", ")})` : " (it names none)"}`,
      );
    else if (!out.includes(n)) out.push(n);
  }
  if (out.length && out.length === names.length)
    r.problem(`${key("drainedHosts")} names every host: at least one must stay in the load balancer to serve the app`);
  return out;
}
