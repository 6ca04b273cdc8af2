// Keys the table does not know are refused, with the nearest known key when one is close (a typo).

import { isKey, KEYS, PROJECT } from "./keys";
import { key } from "./reader";
import { ConfigSource } from "./source";

/** Edit distance with adjacent transpositions (optimal string alignment), case-insensitive. */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  const d: number[][] = Array.from({ length: s.length + 1 }, (_, i) => [i, ...Array<number>(t.length).fill(0)]);
  for (let j = 1; j <= t.length; j++) d[0][j] = j;
  for (let i = 1; i <= s.length; i++) {
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1])
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[s.length][t.length];
}

/** The known key nearest to `k`, when it is close enough to be a typo of it (a third of its length). */
export function suggestKey(k: string): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const known of Object.keys(KEYS)) {
    const distance = editDistance(k, known);
    if (distance < bestDistance) [best, bestDistance] = [known, distance];
  }
  return bestDistance <= Math.max(1, Math.floor(k.length / 3)) ? best : undefined;
}

/** The problem for a key the table does not know. */
export function unknownKeyProblem(k: string): string {
  const near = suggestKey(k);
  return near
    ? `${key(k)} is not a bluegreen key; did you mean ${near}?`
    : `${key(k)} is not a bluegreen key; the keys are listed in docs/configuration.md`;
}

/** Problems for every bluegreen:* key the source lists that the table does not know (other namespaces are not ours). */
export function unknownKeys(source: ConfigSource): string[] {
  const prefix = `${PROJECT}:`;
  return (source.keys?.() ?? [])
    .filter((full) => full.startsWith(prefix) && !isKey(full.slice(prefix.length)))
    .map((full) => unknownKeyProblem(full.slice(prefix.length)));
}
