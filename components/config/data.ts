// Backups: the app's SQLite files under its data directory, copied on a timer and before every
// preSwitch, kept in hourly, daily and snapshot generations, and sent off the host with rclone.

import * as pulumi from "@pulumi/pulumi";
import { Key } from "./keys";
import { key, q, Reader } from "./reader";
import { BackupRemoteConfig, BackupsConfig } from "./types";

/** A path under the data directory: no absolute path, no segment starting with "." (so no ".."). */
const DB_PATH_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]*(\/[A-Za-z0-9_][A-Za-z0-9._-]*)*$/;
/** rclone option names, as its config file has them. */
const OPTION_RE = /^[a-z][a-z0-9_]*$/;
/** What each remote type needs, at least (rclone's own names). */
const REMOTE_NEEDS: Readonly<Record<BackupRemoteConfig["type"], readonly (readonly string[])[]>> = {
  s3: [["access_key_id"], ["secret_access_key"], ["endpoint", "region"]],
  sftp: [["host"], ["user"], ["key_pem", "pass", "key_file"]],
};
const REMOTE_KEYS: readonly Key[] = ["backupRemote", "backupRemotePath", "backupPassphrase"];
const KEEP_KEYS: readonly Key[] = ["backupKeepHourly", "backupKeepDaily", "backupKeepSnapshots"];

export function readBackups(r: Reader): BackupsConfig | undefined {
  const databases = readDatabases(r);
  const keep = { keepHourly: r.int("backupKeepHourly"), keepDaily: r.int("backupKeepDaily") };
  const keepSnapshots = r.int("backupKeepSnapshots");
  if (databases.length === 0) {
    for (const k of [...KEEP_KEYS, ...REMOTE_KEYS].filter((k) => r.setToNonDefault(k)))
      r.problem(
        `${key(k)} is set but ${key("backupDatabases")} is empty, so nothing is backed up; it would be ignored`,
      );
    return undefined;
  }
  const remote = readRemote(r);
  return { databases, ...keep, keepSnapshots, ...(remote ? { remote } : {}) };
}

function readDatabases(r: Reader): string[] {
  const out: string[] = [];
  for (const entry of r.list("backupDatabases", "database files under the data directory, e.g. app.db") ?? []) {
    if (typeof entry !== "string" || !DB_PATH_RE.test(entry) || /-(wal|shm|journal)$/.test(entry))
      r.problem(
        `${key("backupDatabases")} entry ${q(entry)} is not a database file under the data directory: a relative path of letters, digits, . _ - and /, no part starting with "." and not a -wal, -shm or -journal file, e.g. app.db`,
      );
    else if (out.includes(entry)) r.problem(`${key("backupDatabases")} lists ${q(entry)} twice`);
    else out.push(entry);
  }
  return out;
}

function readRemote(r: Reader): BackupRemoteConfig | undefined {
  const settings = r.map("backupRemote");
  const path = r.raw("backupRemotePath");
  const passphrase = r.raw("backupPassphrase");
  if (Object.keys(settings).length === 0) {
    for (const k of ["backupRemotePath", "backupPassphrase"] as const)
      if (r.raw(k) !== undefined)
        r.problem(`${key(k)} is set but ${key("backupRemote")} is empty; it would be ignored`);
    return undefined;
  }
  if (!r.secretKeys.has("backupRemote"))
    r.problem(
      `${key("backupRemote")} must be set with --secret, or the remote's credentials sit in Pulumi.<stack>.yaml in plain text: pulumi config set --secret --path 'backupRemote.NAME' value`,
    );
  const type = settings.type;
  if (type !== "s3" && type !== "sftp") {
    r.problem(
      `${key("backupRemote")}.type must be s3 (any S3-compatible store: AWS, Hetzner Object Storage, R2, B2, MinIO) or sftp (got ${type === undefined ? "none" : q(type)})`,
    );
  } else {
    for (const any of REMOTE_NEEDS[type])
      if (!any.some((o) => settings[o]))
        r.problem(
          `${key("backupRemote")} of type ${type} needs ${any.map((o) => `${key("backupRemote")}.${o}`).join(" or ")}`,
        );
  }
  for (const name of Object.keys(settings))
    if (!OPTION_RE.test(name))
      r.problem(`${key("backupRemote")}.${name} is not an rclone option name (lowercase letters, digits and _)`);
  if (path === undefined)
    r.problem(
      `${key("backupRemotePath")} is required with ${key("backupRemote")}: the bucket and folder (s3) or directory (sftp), e.g. pulumi config set backupRemotePath my-bucket/backups`,
    );
  else r.checked("backupRemotePath", path);
  if (passphrase === undefined)
    r.problem(
      `${key("backupPassphrase")} is required with ${key("backupRemote")}: copies are encrypted before they leave the host: pulumi config set --secret backupPassphrase "$(openssl rand -base64 24)"`,
    );
  else if (!r.secretKeys.has("backupPassphrase"))
    r.problem(
      `${key("backupPassphrase")} must be set with --secret, or it sits in Pulumi.<stack>.yaml in plain text: pulumi config set --secret backupPassphrase ...`,
    );
  else if (passphrase.length < 12 || /[\n\r\0]/.test(passphrase))
    r.problem(
      `${key("backupPassphrase")} must be one line of at least 12 characters (the value is secret and not shown)`,
    );
  return {
    type: type === "sftp" ? "sftp" : "s3",
    settings: pulumi.secret(settings),
    path: path ?? "",
    passphrase: pulumi.secret(passphrase ?? ""),
  };
}
