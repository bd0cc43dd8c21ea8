/**
 * Which API key a model runs with for a purpose (decision 7, the part the hub decides): the
 * secrets the configuration names for the purpose, the provider's secret, then `<ALIAS>_API_KEY`;
 * after those the core tries the keys file and the model's environment variable.
 */
import {
  type AsyncModelDefinition,
  type Model,
  type ModelRequest,
  newId,
  type StreamPart,
  SwitchboardError,
} from "@switchboard/core";
import { type HubConfig, type ModelRef, refKey, refModel } from "./config.ts";
import { Secrets } from "./secrets.ts";
import type { Actor, Secret } from "./types.ts";

const KEY_OBTAIN_URLS: Record<string, string> = {
  openai: "https://platform.openai.com/api-keys",
  anthropic: "https://console.anthropic.com/settings/keys",
};

/** A model's names: a configuration entry may use any of them. */
export interface NamedModel {
  id: string;
  aliases: readonly string[];
}

/** `echo-needs-key` → `ECHO_NEEDS_KEY_API_KEY`: a name every shell can set as an env var. */
export function providerSecretName(keyAlias: string): string {
  return `${keyAlias.toUpperCase().replace(/[^A-Z0-9]/g, "_")}_API_KEY`;
}

/** Whether a configuration entry (an id or an alias) names this model. */
export function namesModel(name: string, model: NamedModel): boolean {
  return name === model.id || model.aliases.includes(name);
}

/**
 * Decision 7, the configured part: the secret named by the purpose's `models` entry for this model,
 * then by the purpose's `model` ref, then by `default_model` — each only when it names this model.
 */
export function configuredKeySecrets(
  config: HubConfig,
  model: NamedModel,
  purpose: string | undefined,
): string[] {
  const names: string[] = [];
  const consider = (ref: ModelRef | undefined) => {
    const key = refKey(ref);
    if (ref && key && namesModel(refModel(ref), model)) names.push(key);
  };
  const purposeConfig = purpose ? config.purposes[purpose] : undefined;
  for (const ref of purposeConfig?.models ?? []) consider(ref);
  consider(purposeConfig?.model);
  consider(config.default_model);
  return names;
}

/** Every secret name the configuration mentions (custom keys of refs and providers). */
export function configSecretNames(config: HubConfig): string[] {
  const names = new Set<string>();
  const add = (ref: ModelRef | undefined) => {
    const key = refKey(ref);
    if (key) names.add(key);
  };
  add(config.default_model);
  for (const purpose of Object.values(config.purposes)) {
    add(purpose.model);
    for (const ref of purpose.models ?? []) add(ref);
    for (const ref of purpose.fallbacks ?? []) add(ref);
  }
  for (const provider of Object.values(config.providers)) if (provider.key) names.add(provider.key);
  return [...names];
}

/** One `<ALIAS>_API_KEY` secret per key alias of the registered models, for listings. */
export function modelKeySecrets(models: readonly Model[]): Secret[] {
  const secrets = new Map<string, Secret>();
  for (const model of models) {
    const alias = model.needsKey;
    if (!alias) continue;
    const name = providerSecretName(alias);
    if (secrets.has(name)) continue;
    const obtainUrl = KEY_OBTAIN_URLS[alias];
    secrets.set(name, {
      name,
      description: `API key for ${alias} models`,
      ...(obtainUrl ? { obtainUrl } : {}),
    });
  }
  return [...secrets.values()];
}

/** Where a model's key comes from, for one purpose. */
export type KeyLookup =
  | { kind: "not-needed" }
  | { kind: "secret"; secret: string; value: string }
  /** The keys file or the model's environment variable has one; the core reads it. */
  | { kind: "core" }
  /** Nowhere. `secret` is the secret the configuration named for it, if any. */
  | { kind: "missing"; secret: string | undefined };

/** A model ready to be governed, with the key its requests run with. */
export interface KeyedModel {
  model: Model;
  key?: string;
  lookup: KeyLookup;
}

export class KeyResolver {
  readonly #config: HubConfig;
  readonly #secrets: Secrets;
  readonly #describe: (model: Model) => NamedModel;
  /** Builds a model from a definition with the registry's keys file and environment. */
  readonly #build: (definition: AsyncModelDefinition) => Model;

  constructor(options: {
    config: HubConfig;
    secrets: Secrets;
    describe: (model: Model) => NamedModel;
    build: (definition: AsyncModelDefinition) => Model;
  }) {
    this.#config = options.config;
    this.#secrets = options.secrets;
    this.#describe = options.describe;
    this.#build = options.build;
  }

  /** The secrets tried for a model and purpose, most specific first (`preferred` before all). */
  secretNames(model: Model, purpose: string | undefined, preferred?: string): string[] {
    const alias = model.needsKey;
    if (!alias) return [];
    const names = preferred ? [preferred] : [];
    names.push(...configuredKeySecrets(this.#config, this.#describe(model), purpose));
    const providerKey = this.#config.providers[alias]?.key;
    if (providerKey) names.push(providerKey);
    names.push(providerSecretName(alias));
    return [...new Set(names)];
  }

  /** Finds the key without recording a use: secrets (cached reads), then the core's sources. */
  async lookup(model: Model, purpose: string | undefined, preferred?: string): Promise<KeyLookup> {
    if (!model.needsKey) return { kind: "not-needed" };
    const names = this.secretNames(model, purpose, preferred);
    for (const secret of names) {
      const value = await this.#secrets.peek(secret);
      if (value) return { kind: "secret", secret, value };
    }
    if (model.hasKey()) return { kind: "core" };
    // The last name is always `<ALIAS>_API_KEY`; any before it were named on purpose.
    return { kind: "missing", secret: names.length > 1 ? names[0] : undefined };
  }

  /** For listings (decision 5): whether any key resolves for this purpose. */
  async hasKey(model: Model, purpose: string | undefined): Promise<boolean> {
    if (!model.needsKey || model.hasKey()) return true;
    for (const secret of this.secretNames(model, purpose)) {
      if (await this.#secrets.peek(secret)) return true;
    }
    return false;
  }

  /**
   * The model with its key for one purpose and actor. A key from a secret records the secret's
   * use when a request is sent with it; a secret the configuration names but that is set nowhere
   * fails the request with an error naming it (an explicit key from the caller still works).
   */
  async keyed(
    model: Model,
    purpose: string | undefined,
    actor: Actor | undefined,
    preferred?: string,
  ): Promise<KeyedModel> {
    const lookup = await this.lookup(model, purpose, preferred);
    if (lookup.kind === "secret") {
      const { secret, value } = lookup;
      const recordUse = () => void this.#secrets.recordUse(secret, actor?.id);
      const definition = wrapExecute(model.definition, (request, execute) => {
        if (request.key === value) recordUse();
        return execute(request);
      });
      return { model: this.#build(definition), key: value, lookup };
    }
    if (lookup.kind === "missing" && lookup.secret !== undefined) {
      const secret = lookup.secret;
      // Stands in for the key so the core sends nothing and this model's own error names the secret.
      const placeholder = newId("missing-key");
      const definition = wrapExecute(model.definition, (request, execute) =>
        request.key === placeholder
          ? failWith(missingSecretError(model.id, secret, purpose))
          : execute(request),
      );
      return { model: this.#build(definition), key: placeholder, lookup };
    }
    return { model, lookup };
  }
}

/** The error for a secret the configuration names for a model that is set nowhere. */
export function missingSecretError(
  modelId: string,
  secret: string,
  purpose: string | undefined,
): SwitchboardError {
  const where = purpose ? ` for purpose "${purpose}"` : "";
  return new SwitchboardError(
    "MISSING_KEY",
    `No key found for model ${modelId}${where}: the configuration names the secret ${secret}, which is not set. ` +
      `Set it with 'switchboard secrets set ${secret}' or the ${Secrets.envVar(secret)} environment variable.`,
    { model: modelId, secret, purpose },
  );
}

function wrapExecute(
  definition: AsyncModelDefinition,
  wrapper: (
    request: ModelRequest,
    execute: (request: ModelRequest) => AsyncIterable<StreamPart>,
  ) => AsyncIterable<StreamPart>,
): AsyncModelDefinition {
  const execute = definition.execute.bind(definition);
  // Inherit rather than copy, so a definition built as a class instance keeps its methods.
  const wrapped = Object.create(definition) as AsyncModelDefinition;
  wrapped.execute = (request) => wrapper(request, execute);
  return wrapped;
}

function failWith(error: unknown): AsyncIterable<StreamPart> {
  return { [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(error) }) };
}
