// The host: which kind (a new Hetzner server, a multipass VM, an existing SSH host, another
// stack's host), that kind's own keys, and the CPU architecture.

import { DEFAULTS, KEYS } from "./keys";
import { isCidr, isIp } from "./files";
import { key, q, Reader } from "./reader";
import { Arch, HostConfig, HostKind } from "./types";

export const HETZNER_LOCATIONS = KEYS.hetznerLocation.values;
/** Hetzner's US locations offer no cx (shared Intel) or cax (Arm) server types, only cpx and ccx. */
export const HETZNER_US_LOCATIONS: readonly string[] = ["ash", "hil"];
const HETZNER_NOT_IN_US_RE = /^(cx|cax)[0-9]/;
const HOSTNAME_RE =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** A host name or an IP address. */
export const isHostAddress = (v: string) => HOSTNAME_RE.test(v) || isIp(v);

/** The problem with a server type in a location that does not offer it (`where` names the location's key). */
export function hetznerTypeProblem(serverType: string, location: string, where: string): string | undefined {
  if (!HETZNER_US_LOCATIONS.includes(location) || !HETZNER_NOT_IN_US_RE.test(serverType)) return undefined;
  return (
    `${key("hetznerServerType")} ${q(serverType)} is not offered in ${where} ${q(location)}: ` +
    `in ${HETZNER_US_LOCATIONS.join(" and ")} choose a cpx or ccx server type, or keep ${q(serverType)} and set hetznerLocation to fsn1, nbg1 or hel1`
  );
}

/** The host of a known kind, with that kind's keys checked. */
export function readHost(r: Reader, kind: HostKind): HostConfig {
  switch (kind) {
    case "hetzner":
      return readHetzner(r);
    case "multipass":
      return {
        kind,
        name: r.checked("multipassName"),
        cpus: r.int("multipassCpus"),
        memory: r.checked("multipassMemory"),
        disk: r.checked("multipassDisk"),
        image: r.checked("multipassImage"),
      };
    case "stack": {
      const stack = r.raw("hostStack");
      if (stack === undefined) {
        r.problem(
          `${key("hostStack")} is required when ${key("hostKind")} is "stack": the stack that created the host, e.g. pulumi config set hostStack organization/bluegreen/prod`,
        );
      } else r.checked("hostStack", stack);
      return { kind, stack: stack ?? "" };
    }
    case "ssh": {
      const address = r.raw("sshHost");
      // With several hosts, each one's address is in bluegreen:hosts (hosts.ts).
      if (address === undefined && r.raw("hosts") !== undefined) return { kind, address: "" };
      if (address === undefined) {
        r.problem(`${key("sshHost")} is required when ${key("hostKind")} is "ssh"`);
      } else if (!isHostAddress(address)) {
        r.problem(`${key("sshHost")} must be a host name or IP address (got ${q(address)})`);
      }
      return { kind, address: address ?? "" };
    }
  }
}

function readHetzner(r: Reader): HostConfig {
  if (!r.source.get("token", "hcloud") && !r.env.HCLOUD_TOKEN) {
    r.problem(
      `hcloud:token is required when ${key("hostKind")} is "hetzner": pulumi config set --secret hcloud:token <token> (or export HCLOUD_TOKEN)`,
    );
  }
  const serverType = r.checked("hetznerServerType");
  const location = r.oneOf("hetznerLocation");
  const problem = hetznerTypeProblem(serverType, location, key("hetznerLocation"));
  if (problem) r.problem(problem);
  return {
    kind: "hetzner",
    serverType,
    location,
    image: r.checked("hetznerImage"),
    sshAllowedCidrs: readCidrs(r),
    sshKeys: readHetznerSshKeys(r),
    protect: r.bool("hetznerProtect"),
  };
}

/** Names or ids of SSH keys already uploaded to the Hetzner project (fingerprints are unique there). */
function readHetznerSshKeys(r: Reader): string[] {
  const entries = r.list(
    "hetznerSshKeys",
    "names or ids of SSH keys in the Hetzner project, e.g. pulumi config set --path 'hetznerSshKeys[0]' my-laptop",
  );
  if (entries === undefined) return [];
  const out: string[] = [];
  for (const entry of entries) {
    const value = typeof entry === "number" && Number.isSafeInteger(entry) && entry > 0 ? String(entry) : entry;
    // eslint-disable-next-line no-control-regex -- refusing control characters is the point
    if (typeof value !== "string" || !/^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$/.test(value)) {
      r.problem(
        `${key("hetznerSshKeys")} entry ${q(entry)} is not an SSH key name or id (hcloud ssh-key list shows both)`,
      );
    } else {
      out.push(value);
    }
  }
  return out;
}

function readCidrs(r: Reader): string[] {
  const v = r.raw("sshAllowedCidrs");
  if (v === undefined) return [...DEFAULTS.sshAllowedCidrs];
  let list: unknown;
  try {
    list = JSON.parse(v);
  } catch {
    list = undefined;
  }
  if (!Array.isArray(list) || list.length === 0 || !list.every((c) => typeof c === "string")) {
    r.problem(
      `${key("sshAllowedCidrs")} must be a non-empty list of CIDRs, e.g. pulumi config set --path 'sshAllowedCidrs[0]' 203.0.113.7/32`,
    );
    return [...DEFAULTS.sshAllowedCidrs];
  }
  for (const c of list) {
    if (!isCidr(c))
      r.problem(`${key("sshAllowedCidrs")} entry ${q(c)} is not a CIDR such as 203.0.113.7/32 or 2001:db8::/32`);
  }
  return list;
}

/**
 * The CPU architecture when hostArch is unset: a multipass VM has this machine's (multipass runs
 * VMs of its host's architecture), Hetzner's cax server types are Arm, the rest amd64.
 */
export function defaultArch(host: HostConfig, nodeArch: string = process.arch): Arch {
  if (host.kind === "multipass") return nodeArch === "arm64" ? "arm64" : "amd64";
  return host.kind === "hetzner" && host.serverType.startsWith("cax") ? "arm64" : "amd64";
}

export function readArch(r: Reader, host: HostConfig): Arch {
  return r.oneOf("hostArch", defaultArch(host));
}
