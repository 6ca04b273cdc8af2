// preSwitch and postSwitch: shell run on the host as a slot around a switch (components/scripts/hook.sh).

import { key, Reader } from "./reader";
import { HooksConfig } from "./types";

function hook(r: Reader, k: "preSwitch" | "postSwitch"): string {
  const v = r.raw(k)?.trim() ?? "";
  // eslint-disable-next-line no-control-regex -- refusing control characters is the point
  if (/[\x00-\x08\x0b-\x1f\x7f]/.test(v))
    r.problem(`${key(k)} must be shell text without control characters other than newline and tab`);
  return v;
}

export function readHooks(r: Reader): HooksConfig {
  const preSwitch = hook(r, "preSwitch");
  const postSwitch = hook(r, "postSwitch");
  const postSwitchFailure = r.oneOf("postSwitchFailure");
  if (!postSwitch && r.setToNonDefault("postSwitchFailure"))
    r.problem(`${key("postSwitchFailure")} is set but ${key("postSwitch")} is empty; it would be ignored`);
  return { preSwitch, postSwitch, postSwitchFailure, timeoutSeconds: r.int("hookTimeout") };
}
