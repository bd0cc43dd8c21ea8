import { UnknownModelError } from "./errors.ts";
import { KeyStore } from "./keys.ts";
import { Model } from "./model.ts";
import type { CorePlugin, RegisteredModel } from "./plugin.ts";
import type { AsyncModelDefinition, ModelDefinition } from "./types.ts";
import { runSyncModel } from "./workers/pool.ts";

/** Every model is usable async: a sync (blocking) model is run in the worker pool. */
function toAsyncDefinition(definition: ModelDefinition): AsyncModelDefinition {
  if ("execute" in definition) return definition;
  return { ...definition, execute: (request) => runSyncModel(definition, request) };
}

export interface RegistryOptions {
  /** Where stored keys are read from (default: `keys.json` under the user directory). */
  keys?: KeyStore;
  /** Where models' key environment variables are read (default: `process.env`). */
  env?: NodeJS.ProcessEnv;
}

/** The models contributed by plugins, looked up by id or alias. */
export class Registry {
  readonly keys: KeyStore;
  readonly #models: Model[];
  readonly #byName: Map<string, Model>;
  readonly #entries: readonly RegisteredModel[];

  private constructor(entries: readonly RegisteredModel[], keys: KeyStore, env: NodeJS.ProcessEnv) {
    this.keys = keys;
    this.#entries = entries;
    this.#models = entries.map((entry) => new Model(toAsyncDefinition(entry.definition), keys, env));
    this.#byName = new Map();
    // Aliases first, then ids, so a model id always wins over another model's alias.
    for (const [index, entry] of entries.entries()) {
      for (const alias of entry.aliases) this.#byName.set(alias, this.#models[index] as Model);
    }
    for (const model of this.#models) this.#byName.set(model.id, model);
  }

  /** Runs each plugin's `registerModels` in order; a later registration of an id replaces the earlier one. */
  static async create(plugins: readonly CorePlugin[], options: RegistryOptions = {}): Promise<Registry> {
    const entries: RegisteredModel[] = [];
    for (const plugin of plugins) {
      if (!plugin.registerModels) continue;
      await plugin.registerModels({
        register: (definition, registration) => {
          const aliases = [...(definition.aliases ?? []), ...(registration?.aliases ?? [])];
          const entry: RegisteredModel = { definition, aliases, plugin: plugin.name };
          const existing = entries.findIndex((candidate) => candidate.definition.id === definition.id);
          if (existing >= 0) entries[existing] = entry;
          else entries.push(entry);
        },
        models: entries,
      });
    }
    return new Registry(entries, options.keys ?? new KeyStore(), options.env ?? process.env);
  }

  /** All models in registration order. */
  models(): readonly Model[] {
    return this.#models;
  }

  entries(): readonly RegisteredModel[] {
    return this.#entries;
  }

  find(idOrAlias: string): Model | undefined {
    return this.#byName.get(idOrAlias);
  }

  /** The model with this id or alias; throws `UnknownModelError` naming the known ones. */
  get(idOrAlias: string): Model {
    const model = this.#byName.get(idOrAlias);
    if (!model)
      throw new UnknownModelError(
        idOrAlias,
        this.#models.map((candidate) => candidate.id),
      );
    return model;
  }
}
