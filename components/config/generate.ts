// Writes what the key table (keys.ts) decides into the files that must say the same:
// Pulumi.yaml's config block (from `config:` to the end; the comments above it stay) and
// docs/configuration.md. `npm run config:gen`; test/unit/config-generated.test.ts holds the
// committed files equal to what this makes.

import * as fs from "fs";
import * as path from "path";
import { AREAS, KeyRow, ROWS } from "./keys";

export const ROOT = path.resolve(__dirname, "..", "..");
export const PROJECT_FILE = path.join(ROOT, "Pulumi.yaml");
export const DOC_FILE = path.join(ROOT, "docs", "configuration.md");

/** A YAML value: strings double-quoted (JSON's escapes are YAML's), lists and maps in flow style. */
function yamlValue(v: unknown): string {
  return Array.isArray(v) ? `[${v.map(yamlValue).join(", ")}]` : JSON.stringify(v);
}

/** Comment lines of at most `width` characters. */
function comment(text: string, width = 100): string[] {
  const lines: string[] = [];
  let line = "#";
  for (const word of text.split(/\s+/)) {
    if (line.length + 1 + word.length > width && line !== "#") {
      lines.push(line);
      line = "#";
    }
    line += ` ${word}`;
  }
  return [...lines, line];
}

/** One declared key, as the engine reads it (an optional key has a default, "" when it has none of its own). */
function declaration(name: string, r: KeyRow): string[] {
  const out = [`  ${name}:`, `    type: ${r.type}`];
  if (r.type === "array") out.push("    items:", "      type: string");
  if (r.required && r.secret) out.push("    secret: true");
  if (!r.required) out.push(`    default: ${yamlValue(r.default)}`);
  out.push(`    description: ${JSON.stringify(r.description)}`);
  return out;
}

/** Pulumi.yaml from `config:` on: every declared key, then why the others are not declared. */
export function projectConfigBlock(): string {
  const lines = ["config:"];
  for (const [name, r] of ROWS) if (!r.undeclared) lines.push(...declaration(name, r));
  const undeclared = ROWS.filter(([, r]) => r.undeclared);
  lines.push(
    ...comment(
      "Keys not declared here, which are keys all the same (components/config/keys.ts; docs/configuration.md):",
    ),
  );
  for (const [name, r] of undeclared) lines.push(...comment(`${name}: ${r.description}. ${r.undeclared}`));
  return lines.join("\n") + "\n";
}

/** Pulumi.yaml with its config block made from the table; what comes before `config:` is kept. */
export function projectFile(current: string): string {
  const at = current.search(/^config:/m);
  if (at < 0) throw new Error("Pulumi.yaml has no config: block");
  return current.slice(0, at) + projectConfigBlock();
}

const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\n/g, " ");
const code = (text: string) => (text.includes("`") ? `\`\` ${text} \`\`` : `\`${text}\``);

function typeCell(r: KeyRow): string {
  if (r.values) return `${r.type}: ${r.values.join(", ")}`;
  if (r.type === "integer") return `integer, ${r.min} to ${r.max}`;
  if (r.type === "array") return "list of strings";
  if (r.type === "object") return "map of NAME: string";
  return r.pattern ? `string: ${r.pattern.what}` : r.type;
}

function defaultCell(r: KeyRow): string {
  if (r.required) return "required";
  if (r.default === undefined || r.default === "") return "none";
  return code(typeof r.default === "string" ? r.default : JSON.stringify(r.default));
}

function secretCell(r: KeyRow): string {
  if (!r.secret) return "no";
  return `${r.secret.kind === "always" ? "always secret" : "may be set with --secret"}: ${r.secret.why}`;
}

function descriptionCell(r: KeyRow): string {
  return r.undeclared ? `${r.description}. Not declared in Pulumi.yaml: ${r.undeclared}` : r.description;
}

/** docs/configuration.md: one table per area. */
export function configurationDoc(): string {
  const out = [
    "# Configuration",
    "",
    "<!-- Generated from components/config/keys.ts by `npm run config:gen`: edit the table there, not this file. -->",
    "",
    "Every `bluegreen:*` key, by area. A stack sets them with `pulumi config set KEY VALUE` (lists and maps with",
    "`--path`, e.g. `pulumi config set --path 'domains[0]' example.com`); a program that uses bluegreen as a",
    "library passes the same keys to `configFrom`. Each value is checked before anything reaches the host, and",
    "an error names the key and what it allows. A key that is not listed here is refused, with the nearest",
    "key when it looks like a typo of one.",
    "",
    'Secret: "always secret" keys never appear in plain text (set them with `--secret`); "may be set with',
    '--secret" keys stay secret end to end when they are; any other key set with `--secret` is refused, as its',
    "value lands in plain text on the host or in the stack's outputs.",
  ];
  for (const [area, title] of Object.entries(AREAS)) {
    out.push(
      "",
      `## ${title}`,
      "",
      "| Key | Type | Default | Secret | Description |",
      "| --- | --- | --- | --- | --- |",
    );
    for (const [name, r] of ROWS.filter(([, r]) => r.area === area))
      out.push(
        `| \`${name}\` | ${[typeCell(r), defaultCell(r), secretCell(r), descriptionCell(r)].map(cell).join(" | ")} |`,
      );
  }
  return out.join("\n") + "\n";
}

/** Rewrites both files; returns the ones that changed. */
export function generate(): string[] {
  const changed: string[] = [];
  const write = (file: string, text: string) => {
    if (fs.existsSync(file) && fs.readFileSync(file, "utf8") === text) return;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
    changed.push(path.relative(ROOT, file));
  };
  write(PROJECT_FILE, projectFile(fs.readFileSync(PROJECT_FILE, "utf8")));
  write(DOC_FILE, configurationDoc());
  return changed;
}

if (require.main === module) {
  const changed = generate();
  console.log(
    changed.length ? `rewrote ${changed.join(" and ")}` : "Pulumi.yaml and docs/configuration.md are up to date",
  );
}
