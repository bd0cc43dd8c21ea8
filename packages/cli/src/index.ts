export type { CliIO } from "./io.ts";
export { main } from "./main.ts";
