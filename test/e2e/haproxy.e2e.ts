// The e2e scenarios (./scenarios.ts) with router: haproxy, on their own host (BLUEGREEN_E2E_RIG:
// an nspawn container by default, or a qemu VM): HAProxy 2.6, installed by bluegreen from the
// image's local apt repository.
import { e2eScenarios } from "./scenarios";

e2eScenarios("haproxy");
