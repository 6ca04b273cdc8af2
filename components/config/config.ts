// The module the components and the program have always imported; the config reader lives
// in the files of this folder, behind its face (index.ts).
export * from "./index";
