// The commands and their arguments (node:util parseArgs, strict): each has --help
// (usage on stdout, exit 0); a wrong argument prints parseArgs' own message and
// the usage line on stderr, exit 2. A Stop prints `==> stopped: ...`, exit 1.
import { parseArgs, ParseArgsConfig } from "util";
import { logs, LogsOptions } from "./logs";
import { release, rollback } from "./release";
import { BACKUP_ID_RE, restore } from "./restore";
import { Stop, Usage } from "./say";
import { status } from "./status";

type Options = NonNullable<ParseArgsConfig["options"]>;
const STACK: Options = { stack: { type: "string" }, help: { type: "boolean", short: "h" } };

interface Command {
  readonly usage: string;
  readonly about: string;
  readonly options: Options;
  readonly run: (positionals: string[], values: Values) => Promise<unknown>;
}

type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;
const str = (v: Values[string]) => (typeof v === "string" ? v : undefined);

const COMMANDS: Record<string, Command> = {
  release: {
    usage: "npm run release -- <version> [--artifact PATH|URL] [--sha256 HEX] [--smoke CMD] [--stack NAME]",
    about: `Deploys <version> to the idle slot (pulumi up: its health gate must pass), runs the smoke
command against the preview listener through an SSH tunnel, then switches traffic to it
(pulumi up: the post-switch watch must pass). It stops at the first failure with the live
slot untouched, says what to do next, and prints where the time went.

  <version>            1-64 letters, digits, '.', '_', '+' or '-'
  --artifact PATH|URL  sets the idle slot's <colour>Artifact (default: keep it; "build", the
                       default, has buildCommand build <version>)
  --sha256 HEX         sets <colour>Sha256, the artifact's sha256 (a URL needs one)
  --smoke CMD          a shell command run with BLUEGREEN_PREVIEW_URL set (default: $BLUEGREEN_SMOKE)
  --stack NAME         the stack (default: the selected one)
  -h, --help           this text`,
    options: { ...STACK, artifact: { type: "string" }, sha256: { type: "string" }, smoke: { type: "string" } },
    run: ([version, ...extra], v) => {
      if (version === undefined || extra.length) throw new Usage(version ? `unexpected argument '${extra[0]}'` : "");
      return release(version, {
        stack: str(v.stack),
        artifact: str(v.artifact),
        sha256: str(v.sha256),
        smoke: str(v.smoke),
      });
    },
  },
  rollback: {
    usage: "npm run rollback [-- --stack NAME]",
    about: `Switches traffic back to the other slot, whose version is still running (pulumi up with
the other colour active; the post-switch watch runs).

  --stack NAME  the stack (default: the selected one)
  -h, --help    this text`,
    options: STACK,
    run: (p, v) => (p.length ? usage(`unexpected argument '${p[0]}'`) : rollback({ stack: str(v.stack) })),
  },
  status: {
    usage: "npm run status [-- --json] [--stack NAME]",
    about: `What is live and where: the deployed colour and versions, config changes not yet
deployed, and the host's own report (health, maintenance, pending settings, TLS, the audit
tail) over SSH.

  --json        one JSON object instead of text
  --stack NAME  the stack (default: the selected one)
  -h, --help    this text`,
    options: { ...STACK, json: { type: "boolean" } },
    run: (p, v) =>
      p.length ? usage(`unexpected argument '${p[0]}'`) : status({ stack: str(v.stack), json: !!v.json }),
  },
  logs: {
    usage: "npm run logs [-- blue|green|live|idle] [-f|--follow] [-n LINES] [--stack NAME]",
    about: `The slots' journal on the host (journalctl -u <ns>@<colour> over SSH): both slots, or
the one named; live and idle are asked of the host (bluegreen-status live).

  -f, --follow    keep printing new lines
  -n LINES        how many lines to start with (journalctl's default: all, or 10 with -f)
  --stack NAME    the stack (default: the selected one)
  -h, --help      this text`,
    options: { ...STACK, follow: { type: "boolean", short: "f" }, lines: { type: "string", short: "n" } },
    run: ([which, ...extra], v) => {
      if (extra.length) usage(`unexpected argument '${extra[0]}'`);
      if (which !== undefined && !["blue", "green", "live", "idle"].includes(which))
        usage(`'${which}' is not a slot: use blue, green, live or idle`);
      const lines = str(v.lines);
      if (lines !== undefined && !/^\d{1,7}$/.test(lines)) usage(`-n takes a number of lines, not '${lines}'`);
      return logs({ stack: str(v.stack), which: which as LogsOptions["which"], follow: !!v.follow, lines });
    },
  },
  restore: {
    usage: "npm run restore -- <id>|latest [--remote] [--stack NAME] | --list [--remote]",
    about: `Puts a backup or snapshot of the app's databases (bluegreen:backupDatabases) back, with
the host's own command (bluegreen-restore over SSH). The backup is checked first: it must
belong to this app, match its checksums and pass PRAGMA integrity_check, or nothing changes.
Then maintenance goes on (the public gets the maintenance page), both slots stop, the data as
it is now is kept as a backup of its own (restoring that one undoes the restore), the files
are put back and checked, the slots start again and pass their readiness gate, and
maintenance goes off (unless it was on). A snapshot is taken before every preSwitch hook; its
id is in that switch's audit line and output.

  <id>|latest   a backup id from --list (e.g. 20261207T120000Z-snapshot), or the newest one
  --remote      fetch it from the off-host remote (bluegreen:backupRemote); with --list: list those
  --list        the backups (id, kind, size, sent off the host, why)
  --stack NAME  the stack (default: the selected one)
  -h, --help    this text`,
    options: { ...STACK, remote: { type: "boolean" }, list: { type: "boolean" } },
    run: ([id, ...extra], v) => {
      if (extra.length) usage(`unexpected argument '${extra[0]}'`);
      if (v.list && id !== undefined) usage("--list takes no backup id");
      if (!v.list && id === undefined) usage("which backup? an id from --list, or latest");
      if (id !== undefined && !BACKUP_ID_RE.test(id))
        usage(`'${id}' is not a backup id (like 20261207T120000Z-snapshot) or latest`);
      return restore({ stack: str(v.stack), id, remote: !!v.remote, list: !!v.list });
    },
  },
};

const usage = (message: string): never => {
  throw new Usage(message);
};

const TOP = `usage: ts-node components/cli/release.ts <command> [options]  (npm run release|rollback|status|logs|restore)

commands:
${Object.values(COMMANDS)
  .map((c) => `  ${c.usage}`)
  .join("\n")}

Each command takes --help.

environment:
  BLUEGREEN_PULUMI  the pulumi executable (default: pulumi on PATH), run through the Automation API
  BLUEGREEN_SSH     the ssh program and options of its own (default: ssh); BatchMode=yes is always added
  BLUEGREEN_SMOKE   release's smoke command when --smoke is not given`;

/** Runs one command line; sets process.exitCode (0, 1 for a stop, 2 for wrong arguments). */
export async function run(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  const command = name !== undefined && Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    if (name === "--help" || name === "-h") return void console.log(TOP);
    console.error(`${name === undefined ? "" : `error: unknown command '${name}'\n`}${TOP}`);
    return void (process.exitCode = 2);
  }
  try {
    let parsed;
    try {
      parsed = parseArgs({ args: rest, options: command.options, allowPositionals: true, strict: true });
    } catch (e) {
      throw new Usage((e as Error).message);
    }
    if (parsed.values.help) return void console.log(`usage: ${command.usage}\n\n${command.about}`);
    if (rest.length === 0 && name === "release") throw new Usage("");
    await command.run(parsed.positionals, parsed.values);
  } catch (e) {
    if (e instanceof Usage) {
      console.error(`${e.message ? `error: ${e.message}\n` : ""}usage: ${command.usage}\n(${helpOf(name)} for more)`);
      process.exitCode = 2;
    } else if (e instanceof Stop) {
      console.error(`==> stopped: ${e.message}`);
      process.exitCode = 1;
    } else {
      console.error(e);
      process.exitCode = 1;
    }
  }
}

const helpOf = (name: string) => (name === "rollback" ? "npm run rollback -- --help" : `npm run ${name} -- --help`);
