// A stand-in for the `pulumi` CLI in e2e tests of the release commands:
// `config get|set`, `stack output` and `up`, with `up` done by the replay
// (./replay.ts) against the VM. Stack config, replay state and outputs live in
// the JSON file named by FAKE_PULUMI_STATE.
import * as fs from "fs";
import { runProgram } from "../support/harness";
import { resourcesOf, StateEntry, up } from "./replay";

interface Stack {
  config: Record<string, unknown>;
  state: StateEntry[];
  outputs: Record<string, unknown>;
}

const file = process.env.FAKE_PULUMI_STATE;
if (!file) throw new Error("FAKE_PULUMI_STATE is not set");
const stack: Stack = JSON.parse(fs.readFileSync(file, "utf8"));
const save = () => fs.writeFileSync(file, JSON.stringify(stack));
const args = process.argv
  .slice(2)
  .filter(
    (a, i, all) =>
      a !== "--yes" && a !== "--skip-preview" && a !== "--secret" && all[i - 1] !== "--stack" && a !== "--stack",
  );

async function main(): Promise<number> {
  const [a, b, key, value] = args;
  if (a === "config" && b === "get") {
    const v = stack.config[key];
    if (v === undefined) {
      console.error(`error: configuration key '${key}' not found for stack 'dev'`);
      return 1;
    }
    console.log(typeof v === "string" ? v : JSON.stringify(v));
    return 0;
  }
  if (a === "config" && b === "set") {
    stack.config[key] = value;
    save();
    return 0;
  }
  if (a === "stack" && b === "output") {
    const out = stack.outputs[key] ?? "";
    console.log(typeof out === "string" ? out : JSON.stringify(out));
    return 0;
  }
  if (a === "up") {
    const run = await runProgram(stack.config);
    const result = await up(stack.state, resourcesOf(run), (l) => console.log(`    ${l}`));
    stack.state = result.state;
    if (!result.error) stack.outputs = run.outputs;
    save();
    if (result.error) {
      console.error(`error: ${result.error}`);
      return 1;
    }
    return 0;
  }
  console.error(`fake pulumi: unsupported command: ${args.join(" ")}`);
  return 2;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
