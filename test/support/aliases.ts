// The engine's alias rules, for tests that check which old resource a new registration takes over.
import { Registration } from "./harness";

const STACK = "dev";
const PROJECT = "bluegreen";
const ROOT_STACK_TYPE = "pulumi:pulumi:Stack";

// The engine's rules, from pulumi/pulumi pkg/resource/deploy/step_generator.go (collapseAliasToUrn,
// inheritedChildAlias, generateAliases, getOldResource) and sdk/go/common/resource/alias.go (CreateURN).
const qualifiedType = (urn: string) => urn.split("::")[2];
const urnName = (urn: string) => urn.split("::").slice(3).join("::");
function createUrn(name: string, type: string, parent: string): string {
  const prefix = parent === "" ? `urn:pulumi:${STACK}::${PROJECT}::` : parent.slice(0, parent.lastIndexOf("::")) + "$";
  return `${prefix}${type}::${name}`;
}

/** Resolves aliases as the engine does, and says which old resource each registration takes over. */
export class AliasResolver {
  /** New URN -> the old URN it was found under (the engine's sg.aliases). */
  private readonly found = new Map<string, string>();
  private readonly claimed = new Map<string, string>();

  constructor(private readonly olds: ReadonlySet<string>) {}

  private collapse(r: Registration, a: Registration["aliases"][number]): string {
    if (a.urn) return a.urn;
    let parent = a.parentUrn ?? r.parent;
    if (a.parentUrn) parent = this.found.get(parent) ?? parent;
    if (a.noParent || (parent !== "" && qualifiedType(parent) === ROOT_STACK_TYPE)) parent = "";
    return createUrn(a.name ?? r.name, a.type ?? r.type, parent);
  }

  private inherited(childType: string, childName: string, parentName: string, parentAlias: string): string {
    const name = childName.startsWith(parentName)
      ? urnName(parentAlias) + childName.slice(parentName.length)
      : childName;
    return `urn:pulumi:${STACK}::${PROJECT}::${qualifiedType(parentAlias)}$${childType}::${name}`;
  }

  aliases(r: Registration): string[] {
    const out = new Set(r.aliases.map((a) => this.collapse(r, a)));
    const parentAlias = r.parent ? this.found.get(r.parent) : undefined;
    if (parentAlias) {
      out.add(this.inherited(r.type, r.name, urnName(r.parent), parentAlias));
      for (const a of r.aliases) {
        const c = this.collapse(r, a);
        out.add(this.inherited(c.split("::")[2].split("$").pop()!, urnName(c), urnName(r.parent), parentAlias));
      }
    }
    return [...out];
  }

  /** The old URN this registration takes over, or undefined (a create). Duplicate claims fail, as in the engine. */
  resolve(r: Registration): string | undefined {
    const match = [r.urn, ...this.aliases(r)].find((u) => this.olds.has(u));
    if (!match) return undefined;
    const before = this.claimed.get(match);
    if (before) throw new Error(`${r.urn} and ${before} both claim ${match} (the engine's duplicate alias error)`);
    this.claimed.set(match, r.urn);
    if (match !== r.urn) this.found.set(r.urn, match);
    return match;
  }
}
