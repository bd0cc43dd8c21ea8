import type { ModelDefinition } from "./types.ts";

/** A model as the registry holds it: its definition plus every alias it answers to. */
export interface RegisteredModel {
  readonly definition: ModelDefinition;
  readonly aliases: readonly string[];
  /** Name of the plugin that registered it. */
  readonly plugin: string;
}

export interface RegisterModelsArgs {
  /** Adds a model. A later registration of the same id replaces the earlier one. */
  register: (definition: ModelDefinition, options?: { aliases?: readonly string[] }) => void;
  /** The models registered so far by earlier plugins, in registration order. */
  models: readonly RegisteredModel[];
}

/**
 * The core's plugin primitive. The hub extends it with more hooks (see `@switchboard/hub`'s
 * hooks file); every built-in provider is a plugin of this shape.
 */
export interface CorePlugin {
  /** Unique name, used in listings and errors. */
  name: string;
  /** Registers models with the registry; may inspect the models registered before it. */
  registerModels?: (args: RegisterModelsArgs) => void | Promise<void>;
}
