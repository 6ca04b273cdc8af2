// Reads raw config values through a ConfigSource and collects every problem, each naming its
// key. The scalar rules (allowed values, ranges, patterns) come from the key's row in the table.

import { DEFAULTS, DefaultKey, Key, KeysWhere, PROJECT, row, SECRET_CAPABLE, ValueOfKey } from "./keys";
import { ConfigSource } from "./source";

/** A value as error messages quote it. */
export const q = (v: unknown) => JSON.stringify(v);
/** A key as error messages name it: bluegreen:KEY. */
export const key = (k: string) => `${PROJECT}:${k}`;

export type EnumKey = KeysWhere<{ values: readonly string[] }>;
export type IntKey = KeysWhere<{ type: "integer" }>;
export type BoolKey = KeysWhere<{ type: "boolean" }>;
export type PatternKey = KeysWhere<{ pattern: unknown }>;
export type ListKey = KeysWhere<{ type: "array" }>;
export type MapKey = KeysWhere<{ type: "object" }>;
/** Keys with a string, number or boolean default (lists and maps are read as JSON). */
export type ScalarKey = Exclude<DefaultKey, ListKey | MapKey>;

const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** JSON.parse, but numbers keep their exact text (12345678901234567890 stays that, not 12345678901234567000). */
export function parseJsonExact(text: string): unknown {
  return JSON.parse(
    text.replace(
      /("(?:[^"\\]|\\.)*")|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g,
      (m, str?: string) => str ?? JSON.stringify(m),
    ),
  ) as unknown;
}

/** JSON text parsed, or undefined when it is not JSON. */
function parsed(text: string, exact = false): unknown {
  try {
    return exact ? parseJsonExact(text) : (JSON.parse(text) as unknown);
  } catch {
    return undefined;
  }
}

export class Reader {
  readonly problems: string[] = [];
  /** Keys the source holds encrypted. */
  readonly secretKeys = new Set<string>();
  private readonly refusedSecrets = new Set<string>();

  constructor(
    readonly source: ConfigSource,
    /** Where relative artifact paths start. */
    readonly projectDir: string,
    /** The environment the providers see (HCLOUD_TOKEN). */
    readonly env: NodeJS.ProcessEnv,
  ) {}

  problem(text: string): void {
    this.problems.push(text);
  }

  /** The value as set; "" is unset (Pulumi.yaml's empty defaults). A secret a key cannot keep is a problem. */
  raw(k: Key): string | undefined {
    const v = this.source.get(k);
    if (v === undefined || v === "") return undefined;
    if (this.source.isSecret?.(k)) {
      if (!(k in SECRET_CAPABLE) && !this.refusedSecrets.has(k)) {
        this.refusedSecrets.add(k);
        this.problem(
          `${key(k)} is set with --secret, but its value is written in plain text on the host or in outputs, so it cannot stay secret; ` +
            `set it without --secret, or keep secret values in ${key("appSecrets")} (secret keys: ${Object.keys(SECRET_CAPABLE).join(", ")})`,
        );
      }
      this.secretKeys.add(k);
    }
    return v;
  }

  /** A value for an error message; a secret one is never shown. */
  shown(k: Key, v: unknown): string {
    return this.secretKeys.has(k) ? "a secret value, not shown" : q(v);
  }

  /** The value, or the table's default. */
  str(k: ScalarKey): string {
    return this.raw(k) ?? String(DEFAULTS[k]);
  }

  /** One of the row's values; `fallback` (the table's default) when unset or not allowed. */
  oneOf<K extends EnumKey>(k: K, fallback = DEFAULTS[k] as ValueOfKey<K>): ValueOfKey<K> {
    const allowed = row(k).values!;
    const v = this.raw(k) ?? fallback;
    if (allowed.includes(v)) return v as ValueOfKey<K>;
    this.problem(`${key(k)} must be one of ${allowed.join(", ")} (got ${q(v)})`);
    return fallback;
  }

  /** A whole number in the row's range; the default when it is not. */
  int(k: IntKey): number {
    const { min, max } = row(k);
    const v = this.str(k);
    const n = Number(v);
    if (!/^-?\d+$/.test(v.trim()) || n < min! || n > max!) {
      this.problem(`${key(k)} must be a whole number from ${min} to ${max} (got ${q(v)})`);
      return Number(DEFAULTS[k]);
    }
    return n;
  }

  bool(k: BoolKey): boolean {
    const v = this.str(k);
    if (v !== "true" && v !== "false") this.problem(`${key(k)} must be true or false (got ${q(v)})`);
    return v === "true";
  }

  /** `v` (the key's value), with a problem when it does not match. */
  matches(k: Key, v: string, re: RegExp, what: string): string {
    if (!re.test(v)) this.problem(`${key(k)} must be ${what} (got ${q(v)})`);
    return v;
  }

  /** The key's value (by default its value or default) checked against the row's pattern. */
  checked(k: PatternKey, v: string = this.raw(k) ?? String(DEFAULTS[k])): string {
    const { re, what } = row(k).pattern!;
    return this.matches(k, v, re, what);
  }

  /**
   * A NAME: value map. An always-secret key, or one set with --secret, keeps its values out
   * of error messages; `noLoaderVars` refuses LD_* names (a slot's environment).
   */
  map(k: MapKey, noLoaderVars = false): Record<string, string> {
    const v = this.raw(k);
    if (v === undefined) return {};
    const secret = this.secretKeys.has(k) || row(k).secret?.kind === "always";
    const value = parsed(v, true);
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      this.problem(
        `${key(k)} must be a map of NAME: value (set entries with: pulumi config set --path '${k}.NAME' value)`,
      );
      return {};
    }
    const out: Record<string, string> = {};
    for (const [name, entry] of Object.entries(value)) {
      const problem = this.mapEntryProblem(k, name, entry, secret, noLoaderVars);
      if (problem) this.problem(problem);
      else out[name] = String(entry);
    }
    return out;
  }

  private mapEntryProblem(k: MapKey, name: string, value: unknown, secret: boolean, noLoaderVars: boolean) {
    if (!ENV_NAME_RE.test(name) || name.startsWith("BLUEGREEN_"))
      return `${key(k)}.${name}: names must match [A-Za-z_][A-Za-z0-9_]* and not start with BLUEGREEN_ (reserved)`;
    // The loader reads its LD_* variables before the app's first instruction: LD_PRELOAD or
    // LD_AUDIT load any library into the slot's process, LD_LIBRARY_PATH swaps its libraries.
    if (noLoaderVars && name.startsWith("LD_"))
      return `${key(k)}.${name}: LD_* variables steer the dynamic loader of the slot's process and are refused; remove it: pulumi config rm --path ${k}.${name}`;
    if (typeof value !== "string" && typeof value !== "boolean")
      return `${key(k)}.${name} must be a string (got ${secret ? "a secret of another type" : q(value)})`;
    if (/[\n\r\0]/.test(String(value)))
      return `${key(k)}.${name} must be a single line (systemd env files cannot hold newlines)`;
    return undefined;
  }

  /** A config list as parsed JSON entries; undefined (with a problem) when it is not a list. */
  list(k: ListKey, what: string): unknown[] | undefined {
    const v = this.raw(k);
    if (v === undefined) return [];
    const value = parsed(v);
    if (Array.isArray(value)) return value as unknown[];
    this.problem(`${key(k)} must be a list of ${what}`);
    return undefined;
  }

  /** Whether a key holds something other than its default (the engine fills defaults in). */
  setToNonDefault(k: Key): boolean {
    const v = this.raw(k);
    if (v === undefined) return false;
    if (!(k in DEFAULTS)) return true;
    const d: unknown = DEFAULTS[k as DefaultKey];
    if (typeof d === "string" || typeof d === "number" || typeof d === "boolean") return v !== String(d);
    const value = parsed(v);
    return value === undefined || JSON.stringify(value) !== JSON.stringify(d);
  }
}
