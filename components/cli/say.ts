// What the CLI prints: `==> ` step lines on stdout, and the one error that stops it.

/** A failure the CLI explains itself: printed as `==> stopped: <message>`, exit 1. */
export class Stop extends Error {}

/** A usage error: printed with the usage hint, exit 2. */
export class Usage extends Error {}

export const say = (line: string) => console.log(`==> ${line}`);

/** Milliseconds as seconds with one decimal: 48213 -> "48.2 s". */
export const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
