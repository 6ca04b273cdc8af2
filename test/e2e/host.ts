// What the e2e scenarios need of a host, whichever rig runs it: a qemu VM (./vm.ts) or a
// systemd-nspawn container (./container.ts). Both boot the same image (./vm/build-image.sh).
import type { Image } from "./vm";

export type Rig = "nspawn" | "qemu";
export const RIGS: readonly Rig[] = ["nspawn", "qemu"];

export interface Connection {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly privateKey: string;
  /** The host's SSH host key ("ssh-ed25519 AAAA..."), pinned by the tests (sshHostKey). */
  readonly hostKey: string;
}

export interface Host {
  readonly rig: Rig;
  /** What the reports call it, e.g. "VM" or "container bge2e7". */
  readonly name: string;
  /** SSH as root, as the program's commands reach it (sshHost, sshPort, sshPrivateKey, sshHostKey). */
  readonly connection: Connection;
  /** Where the host's port 80 answers from this machine: "ADDRESS:PORT". */
  readonly httpAddress: string;
  /** Runs a command on the host as root; throws with its output when it fails. */
  sh(cmd: string): Promise<string>;
  /** Reboots the host (systemd's reboot) and waits until SSH answers again. */
  reboot(): Promise<void>;
  /** Stops the host and removes everything it left on this machine. */
  shutdown(): Promise<void>;
}

/** The rig of BLUEGREEN_E2E_RIG (default nspawn); any other value is an error, not a fallback. */
export function rigFromEnv(env: NodeJS.ProcessEnv = process.env): Rig {
  const rig = env.BLUEGREEN_E2E_RIG ?? "nspawn";
  if (!(RIGS as readonly string[]).includes(rig))
    throw new Error(`BLUEGREEN_E2E_RIG must be one of ${RIGS.join(", ")} (got ${JSON.stringify(rig)})`);
  return rig as Rig;
}

/** Boots one host of that rig from the image. */
export async function bootHost(rig: Rig, image: Image): Promise<Host> {
  if (rig === "qemu") {
    const { Vm } = await import("./vm");
    return Vm.boot(image);
  }
  const { Container } = await import("./container");
  return Container.boot(image);
}
