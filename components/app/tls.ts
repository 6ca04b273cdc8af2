import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { AppLayout } from "../host/layout";
import { TlsConfig } from "../config/config";
import { renderAcmeConf, renderDnsEnv, renderTlsRenewUnits } from "./tlsFiles";
import { renderBundle } from "../host/shell";
import { tool } from "../host/tools";

export interface TlsArgs {
  /** Where this app lives on the host (components/host/layout.ts). */
  readonly layout: AppLayout;
  readonly connection: pulumi.Input<command.types.input.remote.ConnectionArgs>;
  readonly sudo: boolean;
  readonly domains: readonly string[];
  readonly tls: TlsConfig;
  /** HTTP-01 through HAProxy: the loopback port lego's own server listens on; undefined with nginx (webroot). */
  readonly acmeHttpPort?: number;
}

/**
 * HTTPS for the public listener, as one step after the router. `acme`: lego on the
 * host issues the certificate (HTTP-01 through the router, or DNS-01) and a systemd
 * timer renews it, so renewals never depend on a `pulumi up`; the private key is
 * made on the host and never leaves it. `files`: your certificate, the key sent
 * on stdin as a secret. Either way a new certificate is one rename on the host, and no
 * reload: nginx reads it at each handshake; HAProxy is handed it over its runtime API.
 */
export class Tls extends pulumi.ComponentResource {
  public readonly config: command.remote.Command;

  constructor(name: string, args: TlsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("bluegreen:index:Tls", name, {}, opts);
    this.config = new command.remote.Command(
      `${name}-config`,
      {
        connection: args.connection,
        create: tool(args.layout, "tls-config.sh", { MODE: args.tls.mode, DOMAINS: args.domains.join(" ") }, args.sudo),
        stdin: tlsStdin(args.layout, args.domains, args.tls, args.acmeHttpPort),
        addPreviousOutputInEnv: false,
      },
      { parent: this },
    );
    this.registerOutputs({ mode: args.tls.mode });
  }
}

/** What the tls step reads on stdin; a secret whenever it carries credentials or a key. */
export function tlsStdin(
  L: AppLayout,
  domains: readonly string[],
  tls: TlsConfig,
  acmeHttpPort?: number,
): pulumi.Input<string> {
  switch (tls.mode) {
    case "off":
      return "";
    case "files":
      return pulumi.secret(tls.privateKey).apply((key) => renderBundle({ certificate: tls.certificate, key }));
    case "acme": {
      const units = renderTlsRenewUnits(L);
      const sections = (dnsEnv?: string) =>
        renderBundle({
          acme: renderAcmeConf({ ...tls, domains, httpPort: acmeHttpPort }),
          dnsEnv,
          ca: tls.caCertificate,
          renewService: units.service,
          renewTimer: units.timer,
        });
      return tls.dnsEnv ? pulumi.secret(tls.dnsEnv).apply((env) => sections(renderDnsEnv(env))) : sections();
    }
  }
}
