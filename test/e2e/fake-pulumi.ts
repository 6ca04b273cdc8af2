// A stand-in for the `pulumi` CLI in e2e tests of the release commands, run as
// ./fake-bin/pulumi. It answers exactly the calls the Automation API
// (@pulumi/pulumi/automation, SDK 3.248) makes for what components/cli uses, with
// their arguments and output formats (components/cli/pulumi.ts cites the automation
// source for each), and refuses anything else with "unsupported", exit 2.
// `up` is done by the replay (./replay.ts) against the host, with engine events
// streamed to the Automation API's gRPC server (--event-log tcp://...) as the
// steps start and end. Stack config, replay state, outputs and history live in
// the JSON file named by FAKE_PULUMI_STATE; the stack is `dev`.
import * as fs from "fs";
import type { ClientWritableStream } from "@grpc/grpc-js";

interface Stack {
  config: Record<string, unknown>;
  state: import("./replay").StateEntry[];
  outputs: Record<string, unknown>;
  secretOutputs?: string[];
  history?: Record<string, unknown>[];
}

const STACK = "dev";
const S = ["--stack", STACK, "--non-interactive"];

const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

type Answer = number | Promise<number>;

/** What one call prints and exits with; undefined for a call the Automation API never makes. */
function answer(args: string[], stack: Stack, save: () => void): Answer | undefined {
  const [a, b, key] = args;
  const print = (v: unknown) => (console.log(JSON.stringify(v, null, 2)), 0);
  if (same(args, ["stack", "ls", "--json", "--non-interactive"]))
    return print([{ name: STACK, current: true, updateInProgress: false, url: "" }]);
  if (a === "stack" && b === "select" && same(args, ["stack", "select", ...S])) return 0;
  // localWorkspace.js getConfig: config get KEY --json --stack NAME; the CLI's configValueJSON.
  if (a === "config" && b === "get" && same(args.slice(3), ["--json", ...S])) {
    const v = stack.config[key];
    if (v === undefined) {
      console.error(`error: configuration key '${key}' not found for stack '${STACK}'`);
      return 255;
    }
    if (typeof v === "string") return print({ value: v, secret: false });
    return print({ value: JSON.stringify(v), objectValue: v, secret: false });
  }
  // localWorkspace.js setConfig: config set KEY --stack NAME --plaintext --non-interactive -- VALUE.
  if (
    a === "config" &&
    b === "set" &&
    args.length === 9 &&
    same(args.slice(3, 8), [...S.slice(0, 2), "--plaintext", "--non-interactive", "--"])
  ) {
    stack.config[key] = args[8];
    save();
    return 0;
  }
  if (a === "config" && b === "rm" && same(args.slice(3), S)) {
    delete stack.config[key];
    save();
    return 0;
  }
  // localWorkspace.js stackOutputs: masked, then with --show-secrets.
  if (
    same(args, ["stack", "output", "--json", ...S]) ||
    same(args, ["stack", "output", "--json", "--show-secrets", ...S])
  ) {
    const show = args.includes("--show-secrets");
    const secret = new Set(stack.secretOutputs ?? []);
    return print(
      Object.fromEntries(Object.entries(stack.outputs).map(([k, v]) => [k, !show && secret.has(k) ? "[secret]" : v])),
    );
  }
  // stack.js history (from info() after up): one page of one.
  if (same(args, ["stack", "history", "--json", "--page-size", "1", "--page", "1", ...S]))
    return print((stack.history ?? []).slice(-1));
  // stack.js up, local program, with onEvent: --event-log names the gRPC events server.
  const upArgs = ["up", "--yes", "--skip-preview", "--exec-kind", "auto.local", "--event-log"];
  if (
    args.length === 10 &&
    same(args.slice(0, 6), upArgs) &&
    /^tcp:\/\/127\.0\.0\.1:\d+$/.test(args[6]) &&
    same(args.slice(7), S)
  )
    return up(stack, save, args[6]);
  return undefined;
}

async function up(stack: Stack, save: () => void, eventLog: string): Promise<number> {
  const { runProgram } = await import("../support/harness");
  const { resourcesOf, up: replay } = await import("./replay");
  const events = await eventStream(eventLog);
  const startTime = new Date().toISOString();
  events.send({ preludeEvent: { config: {} } });
  const run = await runProgram(stack.config);
  const resources = resourcesOf(run);
  const meta = (action: string, name: string) => {
    const type = resources.find((r) => r.name === name)?.type ?? stack.state.find((r) => r.name === name)?.type ?? "";
    const urn = `urn:pulumi:${STACK}::bluegreen::${type}::${name}`;
    return { op: action, urn, type, provider: "" };
  };
  let open: ReturnType<typeof meta> | undefined;
  const result = await replay(stack.state, resources, (line) => {
    console.log(`    ${line}`);
    const [action, name] = line.split(" ");
    if (open) events.send({ resOutputsEvent: { metadata: open } });
    open = meta(action, name);
    events.send({ resourcePreEvent: { metadata: open } });
  });
  if (open) {
    const last = result.steps[result.steps.length - 1];
    events.send(
      last?.ok === false
        ? { resOpFailedEvent: { metadata: open, status: 1, steps: 0 } }
        : { resOutputsEvent: { metadata: open } },
    );
  }
  const changes: Record<string, number> = {};
  for (const s of result.steps) changes[s.action] = (changes[s.action] ?? 0) + 1;
  if (result.error)
    events.send({ diagnosticEvent: { message: `error: ${result.error}\n`, color: "never", severity: "error" } });
  events.send({ summaryEvent: { maybeCorrupt: false, durationSeconds: 0, resourceChanges: changes, policyPacks: {} } });
  events.send({ cancelEvent: {} });
  await events.end();
  stack.state = result.state;
  if (!result.error) {
    stack.outputs = run.outputs;
    stack.secretOutputs = run.secretOutputs;
  }
  const history = stack.history ?? [];
  history.push({
    version: history.length + 1,
    kind: "update",
    startTime,
    endTime: new Date().toISOString(),
    message: "",
    environment: {},
    config: {},
    result: result.error ? "failed" : "succeeded",
    resourceChanges: changes,
  });
  stack.history = history;
  save();
  if (result.error) {
    console.error(`error: ${result.error}`);
    return 255;
  }
  return 0;
}

/** A client stream of EngineEvents to the Automation API's EventsServer (stack.js setupEventLog). */
async function eventStream(address: string) {
  const grpc = await import("@grpc/grpc-js");
  const rpc = await import("@pulumi/pulumi/proto/events_grpc_pb");
  const pb = await import("@pulumi/pulumi/proto/events_pb");
  const client = new rpc.EventsClient(address.replace(/^tcp:\/\//, ""), grpc.credentials.createInsecure());
  let done!: Promise<void>;
  const call = (() => {
    let c!: ClientWritableStream<import("@pulumi/pulumi/proto/events_pb").EventRequest>;
    done = new Promise((resolve, reject) => {
      c = client.streamEvents((err: Error | null) => (err ? reject(err) : resolve()));
    });
    return c;
  })();
  let sequence = 0;
  return {
    send(e: Record<string, unknown>) {
      const r = new pb.EventRequest();
      r.setEvent(JSON.stringify({ sequence: sequence++, timestamp: Math.floor(Date.now() / 1000), ...e }));
      call.write(r);
    },
    async end() {
      call.end();
      await done;
      client.close();
    },
  };
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (same(args, ["version"])) {
    // cmd.js PulumiCommand.get: `version`, with PULUMI_SKIP_UPDATE_CHECK=true, parsed as semver.
    if (process.env.PULUMI_SKIP_UPDATE_CHECK !== "true")
      return unsupported(args, "without PULUMI_SKIP_UPDATE_CHECK=true");
    console.log("v3.265.0");
    return 0;
  }
  // cmd.js PulumiCommand.run: every other call.
  if (process.env.PULUMI_AUTOMATION_API !== "true") return unsupported(args, "without PULUMI_AUTOMATION_API=true");
  const file = process.env.FAKE_PULUMI_STATE;
  if (!file) throw new Error("FAKE_PULUMI_STATE is not set");
  const stack = JSON.parse(fs.readFileSync(file, "utf8")) as Stack;
  const result = answer(args, stack, () => fs.writeFileSync(file, JSON.stringify(stack)));
  return result === undefined ? unsupported(args) : await result;
}

function unsupported(args: string[], why = ""): number {
  console.error(`fake pulumi: unsupported: ${args.join(" ")}${why ? ` (${why})` : ""}`);
  return 2;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
