// The router seam: nginx or HAProxy in front of the slots. Each is one entry here (what
// is sent to the host) and one file on the host (components/scripts/router/router-<kind>.sh:
// how it is installed, tested, reloaded, told which slot is live, and watched), which
// defines the operations of components/router/contract.ts, no more, no fewer. Everything
// else, the switch's contract above all (lock, gate, move, verify, record, watch, crash
// safety), is one piece of code for both.
import { RouterKind } from "../host/layout";
import { ToolName } from "../host/tools";
import { NginxSiteOptions, renderMaintenancePage, renderNginxCommon, renderNginxSite } from "./nginx";
import {
  renderHaproxyApp,
  renderHaproxyCrt,
  renderHaproxyMain,
  renderHaproxyPublicHead,
  renderHaproxyRoute,
} from "./haproxy";

/** What every router serves for an app: its domains, listeners, maintenance page and slots. */
export type SiteOptions = NginxSiteOptions;

export interface RouterImpl {
  readonly kind: RouterKind;
  /** The host tool that installs the router and readies it for bluegreen (idempotent). */
  readonly installTool: ToolName & ("router-install.sh" | "haproxy-install.sh");
  /** The sections router-config.sh reads on stdin; router-<kind>.sh knows where each goes. */
  sections(o: SiteOptions): Record<string, string>;
}

export const ROUTERS: Readonly<Record<RouterKind, RouterImpl>> = {
  nginx: {
    kind: "nginx",
    installTool: "router-install.sh",
    sections: (o) => ({ common: renderNginxCommon(), site: renderNginxSite(o) }),
  },
  haproxy: {
    kind: "haproxy",
    installTool: "haproxy-install.sh",
    sections: (o) => ({
      main: renderHaproxyMain(),
      public: renderHaproxyPublicHead(),
      app: renderHaproxyApp(o),
      route: renderHaproxyRoute(o),
      // HAProxy reads the page when it loads its config, so it travels with the config.
      page: renderMaintenancePage(o.maintenanceRetryAfter),
      // This app's crt-list line (its certificate by SNI), only with tls.
      ...(o.tls ? { crt: renderHaproxyCrt(o) } : {}),
    }),
  },
};
