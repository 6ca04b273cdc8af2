// The e2e scenarios (./scenarios.ts) with router: nginx, on their own host (BLUEGREEN_E2E_RIG:
// an nspawn container by default, or a qemu VM).
import { e2eScenarios } from "./scenarios";

e2eScenarios("nginx");
