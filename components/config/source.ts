// Where raw config values come from: the stack (through the Pulumi SDK), or a plain object (configFrom).

import * as pulumi from "@pulumi/pulumi";
import { PROJECT } from "./keys";

/** Reads raw values; the default reads the stack's config through the Pulumi SDK. */
export interface ConfigSource {
  get(key: string, namespace?: string): string | undefined;
  /** Whether the stack holds this key encrypted (`pulumi config set --secret`). */
  isSecret?(key: string, namespace?: string): boolean;
  /**
   * Every key that is set, namespaced as the engine names them (bluegreen:greenVersion, hcloud:token).
   * Without it, keys the table does not know cannot be found and refused.
   */
  keys?(): string[];
}

// The engine lists the encrypted keys in PULUMI_CONFIG_SECRET_KEYS; the SDK reads it here (internal, but
// the only synchronous way: Config.getSecret returns an Output, and validation must finish before any resource).
// eslint-disable-next-line @typescript-eslint/no-require-imports -- not in the SDK's typings
const { isConfigSecret } = require("@pulumi/pulumi/runtime/config") as { isConfigSecret: (fullKey: string) => boolean };

/**
 * The stack's config. runtime.allConfig() is the whole map the engine handed the program
 * (PULUMI_CONFIG, or runtime.setAllConfig in tests), keys as NAMESPACE:KEY, with the
 * defaults of Pulumi.yaml already filled in.
 */
export const pulumiSource: ConfigSource = {
  get: (k, ns = PROJECT) => new pulumi.Config(ns).get(k),
  isSecret: (k, ns = PROJECT) => isConfigSecret(`${ns}:${k}`),
  keys: () => Object.keys(pulumi.runtime.allConfig()),
};

/** A plain value as Pulumi config would hold it: text, with lists and maps as JSON. */
function asConfigText(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  return typeof v === "string" ? v : typeof v === "number" || typeof v === "boolean" ? String(v) : JSON.stringify(v);
}

/**
 * A plain object as a ConfigSource: its keys are bluegreen:KEY (no other namespace; hcloud's token
 * comes from HCLOUD_TOKEN). `secrets` names the keys to treat as set with --secret.
 */
export function objectSource(values: Readonly<Record<string, unknown>>, secrets: readonly string[] = []): ConfigSource {
  const own = (k: string) => (Object.prototype.hasOwnProperty.call(values, k) ? values[k] : undefined);
  return {
    get: (k, ns = PROJECT) => (ns === PROJECT ? asConfigText(own(k)) : undefined),
    isSecret: (k, ns = PROJECT) => ns === PROJECT && secrets.includes(k),
    keys: () =>
      Object.keys(values)
        .filter((k) => own(k) !== undefined)
        .map((k) => `${PROJECT}:${k}`),
  };
}
