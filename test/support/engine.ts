// The Pulumi engine's checks of Pulumi.yaml and of a stack's config, which run
// before the program does and which mocks never run. Each function mirrors one
// function of pulumi/pulumi at tag v3.248.0 (commit a88168d865b7), cited as
// file:line; the messages are the engine's own text. The CLI that `npx pulumi`
// runs is newer (3.265.0), but these functions are unchanged up to v3.259.0
// (config.go only moved to pkg/workspace/config.go).
//
// Not emulated: ESC environments merged into the stack config (mergeConfig's
// first loop), project config keys that are paths (`a.b`), and the wording of
// JSON-schema errors (the Go validator's messages differ from ajv's; only
// pass/fail is the same).
import * as fs from "fs";
import * as path from "path";
import Ajv2020, { ValidateFunction } from "ajv/dist/2020";
import * as YAML from "yaml";

const SCHEMA_FILE = path.join(__dirname, "..", "fixtures", "pulumi-project.schema.json");

export interface ConfigItemsType {
  readonly type: string;
  readonly items?: ConfigItemsType;
}

/** sdk/go/common/workspace/project.go:265 ProjectConfigType. `default`/`value` of null count as absent. */
export interface ProjectConfigType {
  readonly type?: string;
  readonly description?: string;
  readonly items?: ConfigItemsType;
  readonly default?: unknown;
  readonly value?: unknown;
  readonly secret?: boolean;
}

export interface Project {
  readonly name: string;
  readonly config: Readonly<Record<string, ProjectConfigType>>;
}

/**
 * One stack config value, as `config.Value` holds it: `value` is the plaintext
 * (decrypted if secure): a string as `pulumi config set` stores it, a number or
 * boolean as a YAML scalar in Pulumi.<stack>.yaml, or an array/object (an
 * "object value", as `--path` or a YAML map/list makes it). `secure` is true
 * for `--secret` values, and for objects holding at least one secure leaf
 * (sdk/go/common/resource/config/object.go:50 Secure).
 */
export interface StackValue {
  readonly value: unknown;
  readonly secure: boolean;
}

/** Keys are namespaced: `bluegreen:active`, `hcloud:token`. */
export type StackConfig = Record<string, StackValue>;

// ---------------------------------------------------------------------------
// Loading Pulumi.yaml

let validateSchema: ValidateFunction | undefined;

/**
 * sdk/go/common/workspace/project.go:552 ValidateProject: the `name` checks,
 * then the embedded project.json (draft 2020-12) schema. Messages of the name
 * checks are the engine's (without its did-you-mean suggestion); schema errors
 * are ajv's, as `#/path: message`.
 */
export function validateProjectSchema(raw: unknown): string[] {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return [`expected project to be an object, was '${raw === null ? "<nil>" : typeof raw}'`];
  }
  const project = raw as Record<string, unknown>;
  if (!("name" in project)) return ["project is missing a 'name' attribute"];
  if (typeof project.name !== "string" || project.name === "")
    return ["project is missing a non-empty string 'name' attribute"];
  if (!validateSchema) {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    validateSchema = ajv.compile(JSON.parse(fs.readFileSync(SCHEMA_FILE, "utf8")));
  }
  if (validateSchema(project)) return [];
  return (validateSchema.errors ?? []).map(
    (e) =>
      `#${e.instancePath}: ${e.message}${e.params && "additionalProperty" in e.params ? ` '${e.params.additionalProperty}'` : ""}`,
  );
}

/** sdk/go/common/workspace/project.go:413 isPrimitiveValue (Go's string, int, bool; YAML integers decode to int). */
function isPrimitiveValue(v: unknown): boolean {
  return typeof v === "string" || typeof v === "boolean" || (typeof v === "number" && Number.isInteger(v));
}

/** sdk/go/common/workspace/project.go:816 configKeyIsNamespacedByProject */
function configKeyIsNamespacedByProject(projectName: string, key: string): boolean {
  return !key.includes(":") || key.startsWith(`${projectName}:`);
}

/**
 * sdk/go/common/workspace/project.go:469 RewriteShorthandConfigValues: a bare
 * value under `config:` becomes the `default` of a project key, or the `value`
 * of another namespace's key.
 */
function rewriteShorthandConfigValues(
  projectName: string,
  config: Record<string, unknown>,
): Record<string, ProjectConfigType> {
  const out: Record<string, ProjectConfigType> = {};
  for (const [key, v] of Object.entries(config)) {
    if (isPrimitiveValue(v) || Array.isArray(v)) {
      out[key] = configKeyIsNamespacedByProject(projectName, key) ? { default: v } : { value: v };
    } else {
      out[key] = v ?? {};
    }
  }
  return out;
}

const present = (v: unknown) => v !== undefined && v !== null;

/** sdk/go/common/workspace/project.go:743 InferFullTypeName */
export function inferFullTypeName(typeName: string, items?: ConfigItemsType): string {
  return items ? `array<${inferFullTypeName(items.type, items.items)}>` : typeName;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Go's strconv.Atoi on a 64-bit platform: optional sign, decimal digits, int64 range. */
function atoi(s: string): boolean {
  if (!/^[+-]?[0-9]+$/.test(s)) return false;
  const n = BigInt(s);
  return n >= INT64_MIN && n <= INT64_MAX;
}

/**
 * sdk/go/common/workspace/project.go:754 ValidateConfigValue, for defaults
 * (as YAML decodes them) and for stack values (strings, or JSON-decoded object
 * values). Any other type name falls through to the array branch, as in Go.
 */
export function validateConfigValue(typeName: string, items: ConfigItemsType | undefined, value: unknown): boolean {
  if (typeName === "string") return typeof value === "string";
  if (typeName === "integer") {
    // Go: an int (YAML), a whole float64 (JSON), or a string that strconv.Atoi accepts.
    if (typeof value === "number") return Number.isFinite(value) && Math.trunc(value) === value;
    if (typeof value === "string") return atoi(value);
    return false;
  }
  if (typeName === "boolean") return value === "true" || value === "false" || typeof value === "boolean";
  if (typeName === "object") return typeof value === "object" && value !== null && !Array.isArray(value);
  if (!Array.isArray(value) || !items) return false;
  return value.every((item) => validateConfigValue(items.type, items.items, item));
}

/** sdk/go/common/workspace/project.go:820 (*Project).Validate; Go iterates a map, so with several problems it reports any one. */
function validateProjectConfig(projectName: string, config: Readonly<Record<string, ProjectConfigType>>): string[] {
  const errors: string[] = [];
  for (const key of Object.keys(config).sort()) {
    const t = config[key];
    if (present(t.default) && present(t.value)) {
      errors.push(`project config '${key}' cannot have both a 'default' and 'value' attribute`);
      continue;
    }
    if (configKeyIsNamespacedByProject(projectName, key)) {
      if (t.type !== undefined && t.type === "array" && !t.items) {
        errors.push(
          `The configuration key '${key}' declares an array but does not specify the underlying type via the 'items' attribute`,
        );
        continue;
      }
      if (t.type !== undefined && present(t.default) && !validateConfigValue(t.type, t.items, t.default)) {
        errors.push(
          `The default value specified for configuration key '${key}' is not of the expected type '${inferFullTypeName(t.type, t.items)}'`,
        );
      }
    } else if (t.type !== undefined) {
      errors.push(`Configuration key '${key}' is not namespaced by the project and should not define a type`);
    } else if (present(t.default)) {
      errors.push(
        `Configuration key '${key}' is not namespaced by the project and should not define a default value. ` +
          "Did you mean to use the 'value' attribute instead of 'default'?",
      );
    } else if (!present(t.value)) {
      errors.push(`Configuration key '${key}' is namespaced and must provide an attribute 'value'`);
    }
  }
  return errors;
}

export interface LoadedProject {
  /** Undefined when the engine would refuse to load the file. */
  readonly project?: Project;
  /** Every problem found, each as the CLI words it (see validateProjectSchema for schema errors). */
  readonly errors: string[];
}

/**
 * sdk/go/common/workspace/loaders.go:109 LoadProjectBytes: parse, validate
 * against the schema ("could not validate"), rewrite shorthand config, then
 * (*Project).Validate ("could not unmarshal", loaders.go:143).
 */
export function loadProject(text: string, file = "Pulumi.yaml"): LoadedProject {
  const raw = YAML.parse(text) as unknown;
  const schemaErrors = validateProjectSchema(raw);
  if (schemaErrors.length) return { errors: schemaErrors.map((e) => `could not validate '${file}': ${e}`) };
  const doc = raw as { name: string; config?: unknown; stackConfigDir?: unknown };
  let config = doc.config;
  if (typeof config === "string") {
    // project.go:431 RewriteConfigPathIntoStackConfigDir
    if ("stackConfigDir" in doc) {
      return {
        errors: [
          "Should not use both config and stackConfigDir to define the stack directory. Use only stackConfigDir instead.",
        ],
      };
    }
    config = undefined;
  }
  const projectConfig = rewriteShorthandConfigValues(doc.name, (config ?? {}) as Record<string, unknown>);
  for (const key of Object.keys(projectConfig)) {
    if (key.slice(key.indexOf(":") + 1).includes("."))
      throw new Error(`test/support/engine.ts does not emulate path config keys such as '${key}'`);
  }
  const errors = validateProjectConfig(doc.name, projectConfig).map((e) => `could not unmarshal '${file}': ${e}`);
  return errors.length ? { errors } : { project: { name: doc.name, config: projectConfig }, errors };
}

// ---------------------------------------------------------------------------
// Stack config

/** sdk/go/common/workspace/config.go:29 formatMissingKeys: sorted, "'a', 'b' and 'c'" (no comma before "and"). */
export function formatMissingKeys(keys: readonly string[]): string {
  if (keys.length === 1) return `'${keys[0]}'`;
  const sorted = [...keys].sort();
  return sorted
    .map((k, i) => (i === sorted.length - 1 ? `and '${k}'` : i === sorted.length - 2 ? `'${k}' ` : `'${k}', `))
    .join("");
}

/** sdk/go/common/workspace/config.go:52 missingStackConfigurationKeysError */
export function missingKeysMessage(keys: readonly string[], stackName: string): string {
  return `Stack '${stackName}' is missing configuration ${keys.length > 1 ? "values" : "value"} ${formatMissingKeys(keys)}`;
}

/** sdk/go/common/workspace/config.go:163 parseConfigKey: a key without ':' is in the project's namespace. */
function parseConfigKey(projectName: string, key: string): string {
  return key.includes(":") ? key : `${projectName}:${key}`;
}

/**
 * sdk/go/common/workspace/config.go:174 createConfigValue: how a project
 * default or value enters the stack config. Never secure.
 */
function createConfigValue(raw: unknown): StackValue {
  // Primitives are stored as their text (fmt "%v"); everything else as a JSON object value.
  return { value: isPrimitiveValue(raw) ? String(raw) : raw, secure: false };
}

/**
 * The decrypted content validateStackConfigValue type-checks
 * (config.go:141-147): a plain value is its text (YAML scalars are marshalled
 * to text, config/object.go:404 MarshalString); an object value is its
 * JSON-decoded structure.
 */
function content(v: StackValue): unknown {
  if (typeof v.value === "string") return v.value;
  if (typeof v.value === "number" || typeof v.value === "boolean") return JSON.stringify(v.value);
  if (v.value === null || v.value === undefined) return "";
  return JSON.parse(JSON.stringify(v.value));
}

/** sdk/go/common/workspace/config.go:123 validateStackConfigValue */
export function validateStackConfigValue(
  stackName: string,
  key: string,
  t: ProjectConfigType,
  v: StackValue,
): string | undefined {
  if (t.secret && !v.secure)
    return `Stack '${stackName}' with configuration key '${key}' must be encrypted as it's secret`;
  if (t.type !== undefined && !validateConfigValue(t.type, t.items, content(v))) {
    return `Stack '${stackName}' with configuration key '${key}' must be of type '${inferFullTypeName(t.type, t.items)}'`;
  }
  return undefined;
}

export interface StackConfigCheck {
  /**
   * The engine's errors, in its order and words. `pulumi up` stops at the
   * first and prints "error: validating stack config: <errors[0]>"
   * (pkg/cmd/pulumi/operations/up.go:204); the rest are what it reports once
   * the earlier ones are fixed. A missing-keys error comes first.
   */
  readonly errors: string[];
  /** The stack config with the project's defaults filled in: what the program receives. */
  readonly merged: StackConfig;
}

/**
 * sdk/go/common/workspace/config.go:250 mergeConfig, as `pulumi up|preview`
 * calls it (ValidateStackConfigAndApplyProjectConfig, validate=true, with a
 * decrypter), then config.go:70 validateStackConfigValues.
 *
 * - A project-namespaced key that the stack does not set and that has no
 *   `default`/`value` is missing (config.go:314).
 * - Otherwise an unset key gets its default (or value) as a plain, not secure,
 *   value (config.go:322-343): so a `secret: true` key with a default that the
 *   stack does not set fails "must be encrypted as it's secret".
 * - Only keys with an explicit `type` are then checked (config.go:105), the
 *   defaults included.
 */
export function checkStackConfig(stackName: string, project: Project, stack: StackConfig): StackConfigCheck {
  const merged: StackConfig = { ...stack };
  const keys = Object.keys(project.config).sort();
  const missing: string[] = [];
  for (const projectKey of keys) {
    const t = project.config[projectKey];
    const key = parseConfigKey(project.name, projectKey);
    const found = key in merged;
    const hasDefault = present(t.default);
    const hasValue = present(t.value);
    if (!found && !hasValue && !hasDefault && key.startsWith(`${project.name}:`)) {
      missing.push(projectKey);
      continue;
    }
    if (!found && (hasValue || hasDefault)) merged[key] = createConfigValue(hasDefault ? t.default : t.value);
  }
  const errors: string[] = [];
  if (missing.length) errors.push(missingKeysMessage(missing, stackName));
  for (const projectKey of keys) {
    const t = project.config[projectKey];
    if (t.type === undefined) continue;
    const v = merged[parseConfigKey(project.name, projectKey)];
    if (v === undefined) continue; // missing: already reported
    const e = validateStackConfigValue(stackName, projectKey, t, v);
    if (e) errors.push(e);
  }
  return { errors, merged };
}

/** `{secure: <ciphertext>}`, as Pulumi.<stack>.yaml writes a secret (config/object.go UnmarshalYAML). */
function isSecureLeaf(v: unknown): v is { secure: string } {
  return (
    typeof v === "object" &&
    v !== null &&
    !Array.isArray(v) &&
    Object.keys(v).length === 1 &&
    typeof (v as { secure?: unknown }).secure === "string"
  );
}

/**
 * sdk/go/common/workspace/loaders.go:191 LoadProjectStackBytes and
 * loaders.go:61 stackConfigNamespacedWithProject: a Pulumi.<stack>.yaml's
 * `config:` as StackConfig. `decrypt` turns ciphertext into plaintext; the
 * default keeps the ciphertext, which type-checks as a string.
 */
export function loadStackConfig(
  text: string,
  projectName: string,
  decrypt: (ciphertext: string) => string = (c) => c,
): StackConfig {
  const doc = (YAML.parse(text) ?? {}) as { config?: Record<string, unknown> };
  const out: StackConfig = {};
  for (const [k, raw] of Object.entries(doc.config ?? {})) {
    let secure = false;
    const plain = (v: unknown): unknown => {
      if (isSecureLeaf(v)) {
        secure = true;
        return decrypt(v.secure);
      }
      if (Array.isArray(v)) return v.map(plain);
      if (typeof v === "object" && v !== null)
        return Object.fromEntries(Object.entries(v).map(([n, x]) => [n, plain(x)]));
      return v;
    };
    out[k.includes(":") ? k : `${projectName}:${k}`] = { value: plain(raw), secure };
  }
  return out;
}

/**
 * The value the program reads for a merged key, as the Node SDK hands config
 * to it: text for plain values, JSON text for object values.
 */
export function programValue(v: StackValue): string {
  const c = content(v);
  return typeof c === "string" ? c : JSON.stringify(c);
}
