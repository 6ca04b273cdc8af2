// The config reader's face: what the program, the components and library users import.
// Every bluegreen:* key is in the table (keys.ts), and is read and validated behind this face.
export * from "./keys";
export * from "./types";
export * from "./errors";
export * from "./source";
export { parseJsonExact } from "./reader";
export * from "./files";
export * from "./commandLine";
export { autoPorts } from "./ports";
export { defaultArch, HETZNER_LOCATIONS, HETZNER_US_LOCATIONS } from "./host";
export { BUNDLE_RE } from "./releases";
export { ACME_DIRECTORIES, publicUrl } from "./tls";
export { BALANCER_KEYS, balancerTlsMode, readBalancer } from "./balancer";
export type { BalancerContext } from "./balancer";
export { unknownKeyProblem } from "./unknownKeys";
export * from "./load";
