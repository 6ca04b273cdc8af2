import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { ResolvedArtifact } from "./artifact";
import { AppConfig, LinkMode } from "./config";
import { Color } from "./layout";
import { renderSlotEnv, slotListen } from "./render";
import { ShellVars, toolCommand } from "./shell";

export interface SlotArgs {
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
    /** Releases kept on the host; older ones are removed when this slot's release is stored. */
    readonly keepReleases: number;
}

/**
 * One colour of the app: its release on the host, and the systemd service that
 * runs it and waits for readiness. A new version is an update of these
 * commands, never a replacement, so nothing stops the process just started.
 */
export class Slot extends pulumi.ComponentResource {
    public readonly version: string;
    public readonly service: command.remote.Command;

    constructor(name: string, args: SlotArgs, opts?: pulumi.ComponentResourceOptions) {
        super("bluegreen:index:Slot", name, {}, opts);
        const { color, version, artifact, app } = args;
        this.version = version;

        const releaseVars: ShellVars = { VERSION: version, SHA256: artifact.sha256, KEEP: args.keepReleases };
        let upload: pulumi.Resource | undefined;
        if (artifact.kind === "url") {
            releaseVars.SOURCE_URL = artifact.url;
        } else {
            // Uploaded to a path named by its hash; release.sh checks the hash before using it.
            const remotePath = `/tmp/bluegreen-upload-${artifact.sha256.slice(0, 16)}`;
            upload = new command.remote.CopyToRemote(
                `${name}-upload`,
                {
                    connection: args.connection,
                    source: new pulumi.asset.FileAsset(artifact.path),
                    remotePath,
                    triggers: [args.hostAddress],
                },
                { parent: this },
            );
            releaseVars.SOURCE_FILE = remotePath;
        }
        const release = new command.remote.Command(
            `${name}-release`,
            { connection: args.connection, create: toolCommand("release.sh", releaseVars, args.sudo) },
            { parent: this, dependsOn: upload ? [upload] : [] },
        );

        const listen = slotListen(args.mode, color, args.port);
        const envFor = (secrets: Record<string, string>) =>
            renderSlotEnv({ color, version, listen, drainTimeoutSeconds: app.drainTimeoutSeconds, appEnv: { ...app.env, ...secrets } });
        // With secrets configured the whole env file is a secret Output; it only ever travels on stdin.
        const envFile = app.secrets ? app.secrets.apply(envFor) : envFor({});

        const deployVars: ShellVars = {
            SLOT: color,
            VERSION: version,
            MODE: args.mode,
            LISTEN: listen,
            HEALTH_PATH: app.healthPath,
            HEALTH_TIMEOUT: app.healthTimeoutSeconds,
        };
        const waitLimit = `${app.healthTimeoutSeconds + app.drainTimeoutSeconds + 300}s`;
        this.service = new command.remote.Command(
            `${name}-service`,
            {
                connection: args.connection,
                create: toolCommand("deploy-slot.sh", deployVars, args.sudo),
                delete: toolCommand("stop-slot.sh", { SLOT: color, VERSION: version }, args.sudo),
                stdin: envFile,
                addPreviousOutputInEnv: false,
            },
            { parent: this, dependsOn: [release], customTimeouts: { create: waitLimit, update: waitLimit } },
        );

        this.registerOutputs({ version, deployed: this.service.stdout });
    }
}
