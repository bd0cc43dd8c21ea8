/**
 * `markov`: a word-level Markov-chain text generator. It needs no key and no network; its blocking
 * generator (`markov-generator.ts`) runs in the sync-model worker pool.
 */
import type { CorePlugin } from "../plugin.ts";
import type { SyncModelDefinition } from "../types.ts";
import { markovOptionsSchema } from "./markov-generator.ts";

export function markovModel(): SyncModelDefinition {
  return {
    id: "markov",
    provider: "markov",
    capabilities: { streaming: true, tools: false, schema: false, attachmentTypes: [] },
    options: markovOptionsSchema,
    // Training on a file reads the server's disk: refused for prompts from outside.
    fileOptions: ["file"],
    sync: { module: new URL("./markov-generator.ts", import.meta.url), exportName: "generate" },
  };
}

export function markovPlugin(): CorePlugin {
  return {
    name: "markov",
    registerModels({ register }) {
      register(markovModel());
    },
  };
}
