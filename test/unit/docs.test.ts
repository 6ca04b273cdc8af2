// The README is page one and docs/ holds the rest: page one stays short, every
// relative link lands on a file the repository holds (and a heading that exists),
// and no page in docs/ is an orphan.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { ROOT } from "../support/harness";
import { run } from "../support/tools";

const PAGE_ONE_MAX_LINES = 150;
/** Files the repository holds: a link to an untracked file would break on a fresh clone. */
function tracked(): Set<string> {
  const r = run("git", ["ls-files", "-z"], { cwd: ROOT });
  assert.strictEqual(r.status, 0, `git ls-files: ${r.stderr}`);
  return new Set(r.stdout.split("\0").filter(Boolean));
}

const read = (rel: string) => fs.readFileSync(path.join(ROOT, rel), "utf8");
const docs = () =>
  fs
    .readdirSync(path.join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`)
    .sort();

/** The text outside fenced code blocks, where a `[x](y)` is a link. */
function prose(text: string): string {
  return text.replace(/^```[^\n]*\n[\s\S]*?^```[^\n]*$/gm, "");
}

/** Link targets in markdown: `[text](target)` and `![alt](target)`, no titles. */
function links(text: string): string[] {
  return [...prose(text).matchAll(/!?\[[^\]]*\]\(([^)\s]+)\)/g)].map((m) => m[1]);
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

function anchors(text: string): Set<string> {
  const out = new Set<string>();
  const seen = new Map<string, number>();
  for (const m of prose(text).matchAll(/^#{1,6} (.+)$/gm)) {
    const base = slug(m[1]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

const external = (target: string) => /^[a-z][a-z0-9+.-]*:/i.test(target);

describe("docs: README as page one, docs/ for the rest", () => {
  it(`README.md is at most ${PAGE_ONE_MAX_LINES} lines`, () => {
    const lines = read("README.md").replace(/\n$/, "").split("\n").length;
    assert.ok(lines <= PAGE_ONE_MAX_LINES, `README.md has ${lines} lines; move detail to docs/`);
  });

  it("README keeps the Quick start and states the main caveat before it", () => {
    const readme = read("README.md");
    const quick = readme.indexOf("\n## Quick start\n");
    const caveat = readme.indexOf("not run against the real Pulumi engine");
    assert.ok(quick > 0, "README has a '## Quick start' section");
    assert.ok(caveat > 0 && caveat < quick, "the caveat about the Pulumi engine comes before the Quick start");
  });

  it("every relative link in README.md and docs/*.md points to a tracked file, and a heading it has", () => {
    const files = tracked();
    const problems: string[] = [];
    for (const from of ["README.md", ...docs()]) {
      for (const target of links(read(from))) {
        if (external(target)) continue;
        const [file, anchor] = target.split("#", 2);
        const rel = file === "" ? from : path.posix.normalize(path.posix.join(path.posix.dirname(from), file));
        const isDir = [...files].some((f) => f.startsWith(`${rel.replace(/\/$/, "")}/`));
        if (!files.has(rel) && !isDir) {
          problems.push(`${from}: ${target} (${rel} is not in git ls-files)`);
          continue;
        }
        if (anchor && rel.endsWith(".md") && !anchors(read(rel)).has(anchor)) {
          problems.push(`${from}: ${target} (no heading #${anchor} in ${rel})`);
        }
      }
    }
    assert.deepStrictEqual(problems, []);
  });

  it("every docs/*.md is linked from README.md", () => {
    const linked = new Set(
      links(read("README.md"))
        .filter((t) => !external(t))
        .map((t) => path.posix.normalize(t.split("#")[0])),
    );
    const orphans = docs().filter((d) => !linked.has(d));
    assert.deepStrictEqual(orphans, [], "docs/ pages the README does not link");
  });
});
