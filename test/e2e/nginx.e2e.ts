// The VM scenarios (./scenarios.ts) with router: nginx, on their own VM.
import { vmScenarios } from "./scenarios";

vmScenarios("nginx");
