import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { AppLayout, renderLayoutSh, RouterKind } from "./layout";
import { renderToolsInstaller } from "./installer";
import { hostScriptNames, loadScript } from "./shell";
import { installerCommand } from "./tools";

export interface HostSetupArgs {
  /** Where this app lives on the host (components/host/layout.ts). */
  readonly layout: AppLayout;
  readonly connection: pulumi.Input<command.types.input.remote.ConnectionArgs>;
  /** Run host steps through `sudo -n` (non-root SSH user). */
  readonly sudo: boolean;
  /** The host's router: the tools drive it (router-<kind>.sh). */
  readonly router: RouterKind;
}

/** The full text sent to the host to install bluegreen's tools. */
export function toolsInstallerText(L: AppLayout, router: RouterKind = "nginx"): string {
  const files = [
    { name: "layout.sh", text: renderLayoutSh(L, { router }) },
    ...hostScriptNames().map((name) => ({ name, text: loadScript(name) })),
  ];
  return renderToolsInstaller(L, files, "setup-host.sh");
}

/**
 * Puts bluegreen's host scripts in place and creates the app user, its group and
 * directories. Later steps call the installed scripts with plain values on the
 * command line. (Each slot installs its own unit in its deploy step.)
 */
export class HostSetup extends pulumi.ComponentResource {
  /** The last setup step; everything that runs a host tool depends on it. */
  public readonly done: command.remote.Command;
  /**
   * Who owns this app on a shared host: organization/project/stack plus a random id made
   * once per stack. The id tells apart two stacks of the same name on different backends
   * (a self-managed backend's organization is always "organization").
   */
  public readonly owner: pulumi.Output<string>;

  constructor(name: string, args: HostSetupArgs, opts?: pulumi.ComponentResourceOptions) {
    super("bluegreen:index:HostSetup", name, {}, opts);
    const id = new random.RandomId(`${name}-owner`, { byteLength: 6 }, { parent: this });
    this.owner = pulumi.interpolate`${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}/${id.hex}`;
    const L = args.layout;
    const sudo = args.sudo ? "sudo -n " : "";
    this.done = new command.remote.Command(
      `${name}-tools`,
      {
        connection: args.connection,
        // The installer refuses, before writing anything, an app another stack owns here.
        create: this.owner.apply((owner) => installerCommand({ OWNER: owner }, args.sudo)),
        stdin: toolsInstallerText(L, args.router),
        // Destroy: the router's delete step (app-remove.sh) has removed the app by then; this
        // removes the tools even when that step never ran (a stack refused on its first up),
        // and never those of an app another stack owns.
        delete: this.owner.apply(
          (owner) =>
            `${sudo}sh -c 'if [ ! -f ${L.claimsFile} ] || grep -qxF owner=${owner} ${L.claimsFile}; then rm -rf ${L.toolsDir} ${L.statusCommand}; fi'`,
        ),
        addPreviousOutputInEnv: false,
      },
      { parent: this },
    );
    this.registerOutputs({});
  }
}
