// Where a `pulumi up` spent its time, from the engine events it streamed: each
// changed resource from its resourcePreEvent to its resOutputsEvent (or
// resOpFailedEvent), timed as they arrived here. Sames are left out.
import { EngineEvent } from "@pulumi/pulumi/automation";
import { secs } from "./say";
import type { UpRun } from "./pulumi";

export interface Step {
  readonly name: string;
  readonly op: string;
  readonly ms: number;
  readonly ok: boolean;
}

/** What each step does, where one resource holds two phases that no event separates. */
const PHASES: [RegExp, string][] = [
  [/^(blue|green)-service$/, "starts the slot and waits for its health gate: one step, the gate is not timed apart"],
  [/^switch-link$/, "moves traffic and runs the post-switch watch: one step, the watch is not timed apart"],
];

const nameOf = (urn: string) => urn.slice(urn.lastIndexOf("::") + 2);

export function stepsOf(run: UpRun): Step[] {
  const started = new Map<string, { at: number; op: string }>();
  const steps: Step[] = [];
  const end = (e: EngineEvent, at: number, ok: boolean) => {
    const m = (e.resOutputsEvent ?? e.resOpFailedEvent)?.metadata;
    const s = m && started.get(m.urn);
    if (!m || !s) return;
    started.delete(m.urn);
    steps.push({ name: nameOf(m.urn), op: s.op, ms: at - s.at, ok });
  };
  for (const { at, event } of run.events) {
    const pre = event.resourcePreEvent;
    if (pre && !pre.planning && pre.metadata.op !== "same" && pre.metadata.type !== "pulumi:pulumi:Stack")
      started.set(pre.metadata.urn, { at, op: pre.metadata.op });
    if (event.resOutputsEvent) end(event, at, true);
    if (event.resOpFailedEvent) end(event, at, false);
  }
  return steps;
}

/** Time from the start of the up to its first changed step: the CLI, the program and any build. */
export function beforeFirstStep(run: UpRun): number | undefined {
  const first = run.events.find(
    (e) =>
      e.event.resourcePreEvent && e.event.resourcePreEvent.metadata.op !== "same" && !e.event.resourcePreEvent.planning,
  );
  return first ? first.at - run.startedAt : undefined;
}

/** `deploy to green 31.0 s (pulumi up): ...; green-service 25.2 s (what it covers)`. */
export function describeUp(what: string, run: UpRun): string {
  const parts: string[] = [];
  const before = beforeFirstStep(run);
  if (before !== undefined) parts.push(`${secs(before)} before the first step (the program run, with any build)`);
  for (const s of stepsOf(run)) {
    const phase = PHASES.find(([re]) => re.test(s.name))?.[1];
    parts.push(`${s.name} ${s.op}${s.ok ? "" : " FAILED"} ${secs(s.ms)}${phase ? ` (${phase})` : ""}`);
  }
  if (run.events.length === 0) parts.push("no engine events came, so no steps are timed");
  return `${what} ${secs(run.ms)} (pulumi up): ${parts.join("; ")}`;
}
