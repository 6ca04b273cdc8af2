// Notifications: where bluegreen's events go (webhooks, Slack, Discord, ntfy, mail) and which.

import * as pulumi from "@pulumi/pulumi";
import { DEFAULTS, Key, NOTIFY_EVENTS } from "./keys";
import { key, q, Reader } from "./reader";
import { NotifyConfig } from "./types";

/** A URL curl reads from its config file: no whitespace, quote, backslash or control character. */
const URL_RE = /^https?:\/\/[^\s"'\\]+$/;
const EMAIL_RE = /^[^\s@"'`$\\,;<>()]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$/;
const TARGETS = {
  webhook: "notifyWebhook",
  slack: "notifySlack",
  discord: "notifyDiscord",
  ntfy: "notifyNtfy",
} as const;
type Kind = keyof typeof TARGETS;

export function readNotify(r: Reader): NotifyConfig | undefined {
  const urls: Partial<Record<Kind, string>> = {};
  for (const [kind, k] of Object.entries(TARGETS) as [Kind, (typeof TARGETS)[Kind]][]) {
    const v = r.raw(k)?.trim();
    if (v === undefined) continue;
    if (!r.secretKeys.has(k))
      r.problem(
        `${key(k)} must be set with --secret: a webhook URL is its own credential, and would sit in Pulumi.<stack>.yaml in plain text: pulumi config set --secret ${k} https://...`,
      );
    if (!URL_RE.test(v))
      r.problem(
        `${key(k)} must be an http:// or https:// URL without spaces, quotes or backslashes (the value is secret and not shown)`,
      );
    urls[kind] = v;
  }
  const email = readEmail(r);
  const events = readEvents(r);
  const diskFreePercent = r.int("notifyDiskFreePercent");
  const kinds = Object.keys(urls) as Kind[];
  if (kinds.length === 0 && email.length === 0) {
    for (const k of ["notifyEvents", "notifyDiskFreePercent"] as const satisfies readonly Key[])
      if (r.setToNonDefault(k))
        r.problem(
          `${key(k)} is set but no notification target is (${Object.values(TARGETS).map(key).join(", ")}, ${key("notifyEmail")}); it would be ignored`,
        );
    return undefined;
  }
  return {
    kinds,
    ...(kinds.length ? { urls: pulumi.secret(urls as Record<string, string>) } : {}),
    email,
    events,
    diskFreePercent,
  };
}

function readEmail(r: Reader): string[] {
  const out: string[] = [];
  for (const entry of r.list(
    "notifyEmail",
    "email addresses, e.g. pulumi config set --path 'notifyEmail[0]' ops@example.com",
  ) ?? []) {
    if (typeof entry !== "string" || !EMAIL_RE.test(entry))
      r.problem(`${key("notifyEmail")} entry ${q(entry)} is not an email address`);
    else if (out.includes(entry)) r.problem(`${key("notifyEmail")} lists ${q(entry)} twice`);
    else out.push(entry);
  }
  return out;
}

function readEvents(r: Reader): string[] {
  const list = r.list("notifyEvents", `event names: ${NOTIFY_EVENTS.join(", ")}`);
  if (list === undefined) return [...DEFAULTS.notifyEvents];
  const out: string[] = [];
  for (const entry of list) {
    if (typeof entry !== "string" || !(NOTIFY_EVENTS as readonly string[]).includes(entry))
      r.problem(`${key("notifyEvents")} entry ${q(entry)} is not an event; the events are ${NOTIFY_EVENTS.join(", ")}`);
    else if (out.includes(entry)) r.problem(`${key("notifyEvents")} lists ${q(entry)} twice`);
    else out.push(entry);
  }
  return out;
}
