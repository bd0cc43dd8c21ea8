/** The model the hub hands out, and registered models as the hub's hooks and listings see them. */
import type {
  ChainOptions,
  ChainResponse,
  Conversation,
  ConversationOptions,
  Model,
  ModelResponse,
  PromptOptions,
  Registry,
} from "@switchboard/core";
import type { Actor, ModelDescription, SkippedFallback } from "./types.ts";

/**
 * A model handed out by the hub. Every way to use it — prompt, chain, conversation, and the
 * objects they return — runs through the hub's hooks; the underlying core model stays private.
 */
export class HubModel {
  readonly #model: Model;
  readonly purpose: string | undefined;
  readonly actor: Actor | undefined;
  /** Configured fallbacks left out for this purpose and actor (not allowed, or without a key). */
  readonly skippedFallbacks: readonly SkippedFallback[];

  constructor(
    model: Model,
    purpose: string | undefined,
    actor: Actor | undefined,
    skippedFallbacks: readonly SkippedFallback[] = [],
  ) {
    this.#model = model;
    this.purpose = purpose;
    this.actor = actor;
    this.skippedFallbacks = skippedFallbacks;
  }

  get id(): string {
    return this.#model.id;
  }
  get capabilities() {
    return this.#model.capabilities;
  }
  get optionNames(): string[] {
    return this.#model.optionNames;
  }

  prompt(prompt: string, options?: PromptOptions): ModelResponse {
    return this.#model.prompt(prompt, options);
  }

  chain(prompt: string, options?: ChainOptions): ChainResponse {
    return this.#model.chain(prompt, options);
  }

  conversation(options?: ConversationOptions): Conversation {
    return this.#model.conversation(options);
  }
}

/**
 * Registered models as plain data. A model's aliases are those of its definition and its
 * registration that really reach it (an alias that is another model's id reaches that model).
 */
export function describeModels(registry: Registry): ModelDescription[] {
  const registeredAliases = new Map(registry.entries().map((entry) => [entry.definition.id, entry.aliases]));
  return registry.models().map((model) => {
    const aliases = new Set(registeredAliases.get(model.id) ?? model.aliases);
    return describeModel(
      model,
      [...aliases].filter((alias) => registry.find(alias) === model),
    );
  });
}

export function describeModel(model: Model, aliases: readonly string[]): ModelDescription {
  const definition = model.definition;
  return {
    id: model.id,
    aliases,
    provider: definition.provider,
    needsKey: definition.needsKey,
    keyEnvVar: definition.keyEnvVar,
    capabilities: model.capabilities,
  };
}
