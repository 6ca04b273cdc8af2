// The stacks whose resources must keep their identity across releases of bluegreen:
// test/fixtures/urns/<name>.txt holds the URNs the program registered for each before
// BlueGreenApp existed (commit e03d6e6); test/program/urns.test.ts holds today's program to them.
import { BASE_CONFIG, FAKE_PUB } from "../support/harness";

export const URN_STACKS: Readonly<Record<string, Record<string, unknown>>> = {
  ssh: { ...BASE_CONFIG },
  multipass: { ...BASE_CONFIG, hostKind: "multipass", sshHost: undefined, sshPublicKey: FAKE_PUB },
  hetzner: {
    ...BASE_CONFIG,
    hostKind: "hetzner",
    sshHost: undefined,
    sshPublicKey: FAKE_PUB,
    "hcloud:token": "tok-abc123-secret",
  },
  "haproxy-tls": {
    ...BASE_CONFIG,
    router: "haproxy",
    domains: ["example.com"],
    tls: "acme",
    acmeEmail: "ops@example.com",
    hostPackages: ["ffmpeg"],
    appSecrets: { TOKEN: "s3cret" },
  },
};
