// The switch and what follows it: how long it verifies the router serves the new slot, the
// watch that moves traffic back, and the maintenance page.

import { Reader } from "./reader";
import { RollbackConfig } from "./types";

export function readMaintenance(r: Reader): { maintenance: boolean; maintenanceRetryAfter: number } {
  return { maintenance: r.bool("maintenance"), maintenanceRetryAfter: r.int("maintenanceRetryAfter") };
}

export function readRollback(r: Reader): RollbackConfig {
  return {
    verifySeconds: r.int("verifyTimeout"),
    watchSeconds: r.int("watchSeconds"),
    errorPercent: r.int("rollbackErrorPercent"),
    minErrors: r.int("rollbackMinErrors"),
  };
}
