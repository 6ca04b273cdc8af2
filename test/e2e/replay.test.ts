// The replay's step rules, which stand in for the Pulumi engine in e2e tests.
import * as assert from "assert";
import { plan, ReplayResource, StateEntry } from "./replay";

const cmd = (name: string, inputs: Record<string, unknown>): ReplayResource => ({
  type: "command:remote:Command",
  name,
  inputs,
});
const saved = (r: ReplayResource): StateEntry => ({ ...r, outputs: { stdout: "", stderr: "" } });
const steps = (state: ReplayResource[], next: ReplayResource[]) =>
  plan(state.map(saved), next).map((s) => `${s.action} ${s.resource.name}`);

describe("replay step rules (stand-in for the engine)", () => {
  const a = cmd("a", { create: "echo a" });
  const b = cmd("b", { create: "echo b" });

  it("creates everything on an empty state, in registration order", () => {
    assert.deepStrictEqual(steps([], [a, b]), ["create a", "create b"]);
  });

  it("runs nothing when no input changed", () => {
    assert.deepStrictEqual(steps([a, b], [a, b]), []);
  });

  it("an input change other than triggers is an update", () => {
    assert.deepStrictEqual(steps([a, b], [a, cmd("b", { create: "echo B" })]), ["update b"]);
    assert.deepStrictEqual(steps([a], [cmd("a", { create: "echo a", stdin: "x" })]), ["update a"]);
  });

  it("a triggers change is a replace: the new create in place, the old delete after every other step", () => {
    const old = cmd("a", { create: "echo a", delete: "rm a", triggers: [1] });
    const next = cmd("a", { create: "echo a", delete: "rm a", triggers: [2] });
    const result = plan([saved(old), saved(b)], [next, cmd("b", { create: "echo B" })]);
    assert.deepStrictEqual(
      result.map((s) => `${s.action} ${s.resource.name}`),
      ["replace a", "update b", "delete a"],
    );
    assert.deepStrictEqual(result[2].resource.inputs.triggers, [1], "the delete runs with the old inputs");
  });

  it("deleteBeforeReplace deletes first", () => {
    const old = cmd("a", { create: "echo a", triggers: [1] });
    assert.deepStrictEqual(
      steps([old], [{ ...cmd("a", { create: "echo a", triggers: [2] }), deleteBeforeReplace: true }]),
      ["delete a", "create a"],
    );
  });

  it("a resource that is gone is deleted, last, in reverse order", () => {
    const c = cmd("c", { create: "echo c" });
    assert.deepStrictEqual(steps([a, b, c], [cmd("a", { create: "echo A" })]), ["update a", "delete c", "delete b"]);
  });

  it("a new resource between existing ones is created in place", () => {
    assert.deepStrictEqual(steps([a, b], [a, cmd("n", { create: "x" }), b]), ["create n"]);
  });
});
