// The scenarios only a VM can show (QEMU_SCENARIOS: a real boot and reboot, a kernel and NIC of
// the guest's own), with router: nginx, on a qemu VM from the same image as the containers.
// `npm run test:e2e:qemu` runs every scenario on qemu instead (README, Tests).
import { e2eScenarios, QEMU_SCENARIOS } from "./scenarios";

e2eScenarios("nginx", { rig: "qemu", only: QEMU_SCENARIOS });
