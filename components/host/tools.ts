// The host tools' inputs, declared once: for every executable script in components/scripts,
// the env values it reads (required or optional, in the order they go on the command line),
// and what it reads on stdin. Every
// command that runs a tool is built through tool() (or stdinScript()), whose type accepts
// only the declared names and needs every required one. test/unit/tools.test.ts holds each
// declaration against the script's own header (`# Inputs:`, `# Stdin sections:`) and body.
//
// The rule: a script gets every value it uses from the program, with no default of its own.
// An optional input is one whose absence means "none" or "off" (no source file, no hooks, no
// secret names), never a tunable value; tunable values have their defaults in the config
// table (components/config/keys.ts) and nowhere else. Operator tools (status.sh), which
// people run on the host without the program, are the exception and say so.
import { AppLayout } from "./layout";
import { renderBundle, ShellVars, stdinScriptCommand, toolCommand } from "./shell";

export type Presence = "required" | "optional";
export type Value = string | number;

export interface EnvInput {
  readonly presence: Presence;
  /** Required only in this case (the header's `required(...)`), for an optional input. */
  readonly requiredWith?: string;
}

export interface SectionInput {
  readonly presence: Presence;
  /** May hold a secret: the whole stdin is then a secret Output. */
  readonly secret?: boolean;
}

export interface ToolSpec {
  /**
   * tool: installed in the tools folder and run by path; stdin: sent on stdin to `bash -s`
   * (before the tools exist, or where `pulumi up` runs); operator: installed, run by people
   * on the host (its optional inputs keep the script's own defaults).
   */
  readonly run: "tool" | "stdin" | "operator";
  readonly env: Readonly<Record<string, EnvInput>>;
  /** Sections on stdin (renderBundle, read_sections); absent: the tool reads none. */
  readonly sections?: Readonly<Record<string, SectionInput>>;
  /** Plain text on stdin (not sections): what it is. */
  readonly stdinText?: string;
  /** Positional arguments, when the tool takes any: what they are. */
  readonly args?: string;
}

const required = { presence: "required" } as const;
const optional = { presence: "optional" } as const;
const requiredWith = <C extends string>(when: C) => ({ presence: "optional", requiredWith: when }) as const;
const secretSection = { presence: "optional", secret: true } as const;

export const TOOLS = {
  "deploy-slot.sh": {
    run: "tool",
    env: {
      SLOT: required,
      VERSION: required,
      SHA256: required,
      LISTEN: required,
      HEALTH_PATH: required,
      HEALTH_TIMEOUT: required,
      KIND: optional,
      BUNDLE_MAX_MB: requiredWith("KIND=bundle"),
      SOURCE_FILE: optional,
    },
    sections: {
      unit: required,
      env: { presence: "required", secret: true },
      sourceUrl: secretSection,
    },
  },
  "stop-slot.sh": { run: "tool", env: { SLOT: required, VERSION: required } },
  "prune.sh": { run: "tool", env: { KEEP: required, PROTECT: required } },
  "switch.sh": {
    run: "tool",
    env: {
      TARGET: required,
      HEALTH_PATH: required,
      CHECK_PORT: required,
      VERIFY_TIMEOUT: required,
      WATCH_SECONDS: required,
      ERROR_PERCENT: required,
      MIN_ERRORS: required,
      HOOKS: optional,
      HOOK_TIMEOUT: requiredWith("HOOKS=yes"),
      POST_SWITCH_FAILURE: requiredWith("postSwitch"),
      SECRET_NAMES: optional,
      COORDINATED: optional,
      PHASE_TIMEOUT: requiredWith("COORDINATED=yes"),
      SWITCH_ID: optional,
    },
    sections: { preSwitch: optional, postSwitch: optional },
  },
  "maintenance.sh": { run: "tool", env: { STATE: required }, stdinText: "the maintenance page (STATE=on)" },
  "drain.sh": {
    run: "tool",
    env: {
      STATE: required,
      CHECK_PORT: required,
      EJECT_SECONDS: required,
      QUIET_SECONDS: required,
      WAIT_SECONDS: required,
    },
  },
  "status.sh": {
    run: "operator",
    env: { HEALTH_PATH: optional, LINES: optional },
    args: "[live]",
  },
  "router-install.sh": { run: "tool", env: {} },
  "haproxy-install.sh": { run: "tool", env: {} },
  "router-config.sh": {
    run: "tool",
    env: { OWNER: required, DOMAINS: required, PORTS: required, BLUE_PORT: required, GREEN_PORT: required },
    // The router's own (components/router/routers.ts): nginx's, then HAProxy's.
    sections: {
      common: optional,
      site: optional,
      main: optional,
      public: optional,
      app: optional,
      route: optional,
      page: optional,
      crt: optional,
    },
  },
  "app-remove.sh": { run: "tool", env: { OWNER: required } },
  "tls-config.sh": {
    run: "tool",
    env: { MODE: required, DOMAINS: required },
    sections: {
      acme: optional,
      dnsEnv: secretSection,
      ca: optional,
      certificate: optional,
      key: secretSection,
      renewService: optional,
      renewTimer: optional,
    },
  },
  "tls-renew.sh": { run: "tool", env: {}, args: "[renew|issue|force]" },
  "host-packages.sh": { run: "tool", env: { PACKAGES: required } },
  "backup-config.sh": {
    run: "tool",
    env: { STATE: required },
    sections: {
      conf: optional,
      service: optional,
      timer: optional,
      remote: secretSection,
      passphrase: secretSection,
    },
  },
  "backup.sh": { run: "operator", env: {}, args: "[run|now|upload|list [--remote]]" },
  "restore.sh": { run: "operator", env: {}, args: "[--remote] ID|latest" },
  "notify-config.sh": {
    run: "tool",
    env: { STATE: required },
    sections: {
      conf: optional,
      urls: secretSection,
      drainService: optional,
      drainPath: optional,
      checkService: optional,
      checkTimer: optional,
    },
  },
  "notify-drain.sh": { run: "tool", env: {} },
  "check.sh": { run: "tool", env: {} },
  "metrics.sh": { run: "tool", env: {}, args: "[serve|textfile]" },
  "metrics-config.sh": {
    run: "tool",
    env: { STATE: required, PORT: requiredWith("STATE=on") },
    sections: { socket: optional, service: optional, textService: optional, textTimer: optional },
  },
  "setup-host.sh": { run: "tool", env: {} },
  "wait-ready.sh": { run: "stdin", env: { EXPECTED_ARCH: required } },
  "local-host-key-scan.sh": {
    run: "stdin",
    env: { HOST: required, PORT: required, WAIT_SECONDS: required, PINNED: optional },
  },
  "local-multipass-launch.sh": {
    run: "stdin",
    env: { NAME: required, CPUS: required, MEMORY: required, DISK: required, IMAGE: required, CLOUD_INIT: required },
  },
} as const satisfies Record<string, ToolSpec>;

export type ToolName = keyof typeof TOOLS;
type EnvOf<N extends ToolName> = (typeof TOOLS)[N]["env"];
/** Names the caller must give: the required ones. */
type MustGive<E> = {
  [K in keyof E]: E[K] extends { presence: "required" } ? K : never;
}[keyof E];
/** A tool's env values: the declared names only, every required one present. */
export type ToolEnv<N extends ToolName> = { [K in MustGive<EnvOf<N>>]: Value } & {
  [K in Exclude<keyof EnvOf<N>, MustGive<EnvOf<N>>>]?: Value | undefined;
};
type SectionsOf<N extends ToolName> = (typeof TOOLS)[N] extends { sections: infer S } ? S : never;
/** A tool's stdin sections: the declared names only; undefined ones are left out. */
export type ToolSections<N extends ToolName> = { [K in keyof SectionsOf<N>]?: string | undefined };

/** The env values in declaration order; throws on an undeclared or missing name. */
export function toolVars<N extends ToolName>(name: N, env: ToolEnv<N>): ShellVars {
  const spec: ToolSpec = TOOLS[name];
  const given = env as Record<string, Value | undefined>;
  for (const k of Object.keys(given))
    if (!(k in spec.env)) throw new Error(`${name} declares no input ${k} (components/host/tools.ts)`);
  const vars: ShellVars = {};
  for (const [k, input] of Object.entries(spec.env)) {
    const v = given[k];
    if (v === undefined) {
      if (input.presence === "required") throw new Error(`${name} needs ${k}`);
      continue;
    }
    vars[k] = v;
  }
  return vars;
}

/** The command line that runs an installed tool with its declared env values (shell.ts toolCommand). */
export function tool<N extends ToolName>(L: AppLayout, name: N, env: ToolEnv<N>, sudo: boolean): string {
  if (TOOLS[name].run === "stdin") throw new Error(`${name} is sent on stdin: use stdinScript`);
  return toolCommand(L, name, toolVars(name, env), sudo);
}

/** The command line for a script sent on stdin (`bash -s`), with its declared env values. */
export function stdinScript<N extends ToolName>(name: N, env: ToolEnv<N>, sudo: boolean): string {
  if (TOOLS[name].run !== "stdin") throw new Error(`${name} is an installed tool: use tool`);
  return stdinScriptCommand(toolVars(name, env), sudo);
}

/**
 * The tools installer (generated: components/host/installer.ts renderToolsInstaller), sent on
 * stdin before the tools exist: the stack that owns the app, checked against the host's claims.
 */
export const INSTALLER = { run: "stdin", env: { OWNER: required } } as const satisfies ToolSpec;

/** The command line for the tools installer (its text goes on stdin). */
export function installerCommand(env: { OWNER: Value }, sudo: boolean): string {
  return stdinScriptCommand({ OWNER: env.OWNER }, sudo);
}

/** A tool's stdin sections (shell.ts renderBundle), only the declared names. */
export function toolStdin<N extends ToolName>(name: N, sections: ToolSections<N>): string {
  const spec: ToolSpec = TOOLS[name];
  for (const k of Object.keys(sections))
    if (!spec.sections || !(k in spec.sections))
      throw new Error(`${name} reads no section ${k} (components/host/tools.ts)`);
  return renderBundle(sections);
}
