"use strict";
// Applies the demo app's schema migrations to $BLUEGREEN_DATA_DIR/app.db (created if
// missing): every migrations/*.sql, in name order, that table schema_migrations does not
// record yet. Each file runs in one transaction together with its schema_migrations row,
// through the sqlite3 shell with -bail: a failing file leaves the database as it was
// before that file, and the run stops there with exit status 1. A second run applies
// nothing. Run it as the app's user (the file's owner is whoever creates it).
//
// Migrations must be backward compatible with the release still serving (expand first,
// contract a release later): both colours run against the same database during a deploy.
// A file holds SQL statements only (no sqlite3 dot-commands, no BEGIN/COMMIT of its own).
//
// Environment: BLUEGREEN_DATA_DIR (default: working directory); BLUEGREEN_MIGRATIONS_DIR
// (default: migrations/ beside this file).
// Node.js standard library only (CommonJS, Node >= 18.19); needs the sqlite3 shell.

const fs = require("fs");
const path = require("path");
const { spawnSync } = require("child_process");

const dataDir = process.env.BLUEGREEN_DATA_DIR || process.cwd();
const migrationsDir = process.env.BLUEGREEN_MIGRATIONS_DIR || path.join(__dirname, "migrations");
const dbPath = path.join(dataDir, "app.db");

function fail(msg) {
  process.stderr.write(`migrate: ${msg}\n`);
  process.exit(1);
}

const quote = (s) => `'${String(s).replace(/'/g, "''")}'`;

/** Runs a script through `sqlite3 -bail`: it stops at the first error, rolling back an open transaction. */
function sqlite(script) {
  const args = ["-batch", "-bail", "-init", "/dev/null", "-noheader", "-list", "-cmd", ".timeout 5000", dbPath];
  const r = spawnSync("sqlite3", args, { input: script, encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.error) {
    fail(r.error.code === "ENOENT" ? "sqlite3 not found: install the sqlite3 package" : `sqlite3: ${r.error.message}`);
  }
  const err = r.stderr.trim();
  return { ok: r.status === 0 && err === "", out: r.stdout, err: err || `sqlite3 exited with ${r.signal || r.status}` };
}

function main() {
  if (!fs.statSync(dataDir, { throwIfNoEntry: false })?.isDirectory()) {
    fail(`data directory ${dataDir} does not exist`);
  }
  let files;
  try {
    files = fs
      .readdirSync(migrationsDir)
      .filter((f) => f.endsWith(".sql"))
      .sort();
  } catch (e) {
    fail(`cannot read ${migrationsDir}: ${e.message}`);
  }

  // WAL lets one colour read while the other writes. It is a property of the file, set
  // once here, outside any transaction (journal_mode cannot change inside one).
  const setup = sqlite(
    "PRAGMA journal_mode = WAL;\n" +
      "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL);\n" +
      "SELECT 'applied:' || hex(name) FROM schema_migrations ORDER BY name;\n",
  );
  if (!setup.ok) fail(`cannot open ${dbPath}: ${setup.err}`);
  const applied = new Set(
    setup.out
      .split("\n")
      .filter((l) => l.startsWith("applied:"))
      .map((l) => Buffer.from(l.slice("applied:".length), "hex").toString("utf8")),
  );

  for (const name of files) {
    if (applied.has(name)) continue;
    const sql = fs.readFileSync(path.join(migrationsDir, name), "utf8").replace(/^\uFEFF/, "");
    // BEGIN and the bookkeeping row share the file's first line, so sqlite's "near line N"
    // is the file's line N. BEGIN IMMEDIATE takes the write lock up front (waiting up to
    // the busy timeout), and the row goes in first: a concurrent run that applied the
    // same file first makes this one fail on the primary key, before any of the file runs.
    const script =
      `BEGIN IMMEDIATE; INSERT INTO schema_migrations (name, applied_at) VALUES (${quote(name)}, ${quote(new Date().toISOString())}); ` +
      `${sql}\n;\nCOMMIT;\n`;
    const r = sqlite(script);
    if (!r.ok && /UNIQUE constraint failed: schema_migrations\.name/.test(r.err)) {
      process.stdout.write(`migrate: ${name} was applied by another run\n`);
    } else if (!r.ok) {
      fail(`${name} failed: ${r.err}`);
    } else {
      process.stdout.write(`migrate: applied ${name}\n`);
    }
    applied.add(name);
  }
  const n = applied.size;
  process.stdout.write(`migrate: schema up to date (${n} migration${n === 1 ? "" : "s"})\n`);
}

main();
