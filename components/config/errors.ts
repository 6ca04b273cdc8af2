// The error bad config stops a preview or an update with.

import * as pulumi from "@pulumi/pulumi";

/** Thrown for bad stack config; lists every problem, each naming its key. */
export class ConfigError extends pulumi.RunError {
  constructor(public readonly problems: string[]) {
    super(`invalid bluegreen stack config:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}
