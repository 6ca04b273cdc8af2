// The config reader's face: what the program and the components import.
export * from "./config";
