import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { ResolvedArtifact } from "./artifact";
import { AppConfig, LinkMode } from "../config/config";
import { AppLayout, Color } from "../host/layout";
import { renderSlotEnv, renderSlotUnit, slotListen } from "./unitFiles";
import { tool, ToolEnv, toolStdin } from "../host/tools";

export interface SlotArgs {
  /** Where this app lives on the host (components/host/layout.ts). */
  readonly layout: AppLayout;
  readonly connection: pulumi.Input<command.types.input.remote.ConnectionArgs>;
  readonly sudo: boolean;
  /** The host's address; a new host gets the artifact uploaded again. */
  readonly hostAddress: pulumi.Input<string>;
  readonly color: Color;
  readonly version: string;
  readonly artifact: ResolvedArtifact;
  readonly mode: LinkMode;
  /** tcp mode: the loopback port this slot listens on. */
  readonly port: number;
  readonly app: AppConfig;
  /** A bundle unpacked on the host may hold at most this many MiB. */
  readonly bundleMaxMegabytes: number;
}

/** Where an uploaded artifact waits on the host: named by its hash, kept across reboots until pruned. */
export const uploadPath = (L: AppLayout, sha256: string) => `${L.uploadDir}/${L.ns}-upload-${sha256.slice(0, 16)}`;

/**
 * One colour of the app: its artifact on the host, and one deploy step that
 * stores the release (again, if it went missing), checks the unit, and runs the
 * slot if it is idle or stages the change if it is live (the switch applies it).
 * A new version or setting is an update of that step, never a replacement, so
 * nothing stops the process just started.
 */
export class Slot extends pulumi.ComponentResource {
  public readonly version: string;
  public readonly service: command.remote.Command;

  constructor(name: string, args: SlotArgs, opts?: pulumi.ComponentResourceOptions) {
    super("bluegreen:index:Slot", name, {}, opts);
    const { color, version, artifact, app } = args;
    this.version = version;

    const listen = slotListen(args.layout, args.mode, color, args.port);
    const vars: ToolEnv<"deploy-slot.sh"> = {
      SLOT: color,
      VERSION: version,
      SHA256: artifact.sha256,
      LISTEN: listen,
      // In the command text, so a new healthPath or healthTimeout reruns both slot steps (an
      // update: create again; a trigger would replace, i.e. stop the slot), and each gates on it.
      HEALTH_PATH: app.healthPath,
      HEALTH_TIMEOUT: app.healthTimeoutSeconds,
      // Only a bundle adds these: a single executable's step keeps the command it always had.
      ...(artifact.bundle ? { KIND: "bundle", BUNDLE_MAX_MB: args.bundleMaxMegabytes } : {}),
    };
    let upload: pulumi.Resource | undefined;
    if (artifact.kind === "file") {
      vars.SOURCE_FILE = uploadPath(args.layout, artifact.sha256);
      upload = new command.remote.CopyToRemote(
        `${name}-upload`,
        {
          connection: args.connection,
          source: new pulumi.asset.FileAsset(artifact.path),
          remotePath: vars.SOURCE_FILE,
          triggers: [args.hostAddress],
        },
        { parent: this },
      );
    }

    const unit = renderSlotUnit({
      layout: args.layout,
      color,
      args: app.args,
      command: app.command,
      drainTimeoutSeconds: app.drainTimeoutSeconds,
    });
    const sourceUrl = artifact.kind === "url" ? artifact.url : undefined;
    const bundle = (secrets: Record<string, string>) =>
      toolStdin("deploy-slot.sh", {
        unit,
        env: renderSlotEnv({
          layout: args.layout,
          color,
          version,
          listen,
          drainTimeoutSeconds: app.drainTimeoutSeconds,
          appEnv: { ...app.env, ...secrets },
          command: app.command !== "",
        }),
        sourceUrl,
      });
    // Secrets (app secrets, an appEnv set with --secret, a URL set with --secret) make the whole
    // stdin a secret Output; it never reaches a command line, an output or an error message.
    const secretUrl = artifact.kind === "url" && artifact.secret;
    const stdin = app.secrets ? app.secrets.apply(bundle) : secretUrl ? pulumi.secret(bundle({})) : bundle({});

    const waitLimit = `${app.healthTimeoutSeconds + app.drainTimeoutSeconds + 1200}s`;
    this.service = new command.remote.Command(
      `${name}-service`,
      {
        connection: args.connection,
        create: tool(args.layout, "deploy-slot.sh", vars, args.sudo),
        delete: tool(args.layout, "stop-slot.sh", { SLOT: color, VERSION: version }, args.sudo),
        stdin,
        addPreviousOutputInEnv: false,
      },
      { parent: this, dependsOn: upload ? [upload] : [], customTimeouts: { create: waitLimit, update: waitLimit } },
    );

    this.registerOutputs({ version, deployed: this.service.stdout });
  }
}
