// The VM scenarios (./scenarios.ts) with router: haproxy, on their own VM: HAProxy 2.6,
// installed by bluegreen from the image's local apt repository.
import { vmScenarios } from "./scenarios";

vmScenarios("haproxy");
