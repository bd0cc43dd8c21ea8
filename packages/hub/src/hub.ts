import { dirname, isAbsolute, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import {
  builtinPlugins,
  type ChainOptions,
  type ChainResponse,
  type Conversation,
  type ConversationOptions,
  describeError,
  type ExecutionObserver,
  type ExecutionStart,
  type FallbackModel,
  isSwitchboardError,
  KeyStore,
  type Model,
  type ModelResponse,
  newId,
  type PromptOptions,
  Registry,
  SwitchboardError,
  userDirectory,
} from "@switchboard/core";
import { type ExitStorage, openStore, type Store } from "@switchboard/store";
import type { Accountant } from "./accounting/accountants.ts";
import { PriceBook } from "./accounting/pricing.ts";
import {
  findConfigPath,
  type HubConfig,
  type HubConfigInput,
  loadConfigFile,
  parseConfig,
} from "./config.ts";
import type {
  Actor,
  GroupInfo,
  HookSpecs,
  ModelListing,
  PromptContext,
  PromptContextArgs,
  Purpose,
  Secret,
  SwitchboardPlugin,
} from "./hooks.ts";
import { accountingPlugin, budgetsPlugin } from "./plugins/accounting.ts";
import { configPolicyPlugin, configProvidersPlugin } from "./plugins/config.ts";
import { usageLogPlugin } from "./plugins/usage-log.ts";
import { Reports } from "./reports.ts";
import { configuredKeySecrets, defaultModelFor, providerSecretName, sortModels } from "./routing.ts";
import { Secrets } from "./secrets.ts";

export interface HubOptions {
  /** The configuration as an object (already parsed or raw); wins over `configPath`. */
  config?: HubConfigInput;
  /** A `switchboard.yaml` to load; default: `$SWITCHBOARD_CONFIG`, then `./switchboard.yaml`. */
  configPath?: string;
  env?: NodeJS.ProcessEnv;
  /** Plugins after the built-ins, in the order their hooks run. */
  plugins?: readonly SwitchboardPlugin[];
  /** Replaces the built-in providers (echo, markov, OpenAI, Anthropic). */
  providers?: readonly SwitchboardPlugin[];
  keys?: KeyStore;
  /** A store to use instead of opening the configured one. */
  store?: Store;
  /** Where relative `plugins:` paths in the config are found (default: the config file's folder, else the cwd). */
  baseDir?: string;
}

/**
 * Loads the config's `plugins:` modules. Each module's default export is a plugin, a list of
 * plugins, or a function (sync or async) returning either.
 */
async function loadConfiguredPlugins(
  specifiers: readonly string[],
  baseDir: string,
): Promise<SwitchboardPlugin[]> {
  const plugins: SwitchboardPlugin[] = [];
  for (const [index, specifier] of specifiers.entries()) {
    const local = specifier.startsWith(".") || isAbsolute(specifier);
    const target = local ? pathToFileURL(resolve(baseDir, specifier)).href : specifier;
    let exported: unknown;
    try {
      exported = ((await import(target)) as { default?: unknown }).default;
      if (typeof exported === "function") exported = await (exported as () => unknown)();
    } catch (error) {
      throw new SwitchboardError(
        "INVALID_CONFIG",
        `plugins[${index}]: cannot load ${specifier}: ${describeError(error)}`,
        {
          plugin: specifier,
        },
      );
    }
    for (const plugin of Array.isArray(exported) ? exported : [exported]) {
      if (!plugin || typeof plugin !== "object" || typeof (plugin as { name?: unknown }).name !== "string") {
        throw new SwitchboardError(
          "INVALID_CONFIG",
          `plugins[${index}]: ${specifier} must default-export a plugin object with a name (or a function returning one).`,
          { plugin: specifier },
        );
      }
      plugins.push(plugin as SwitchboardPlugin);
    }
  }
  return plugins;
}

const KEY_OBTAIN_URLS: Record<string, string> = {
  openai: "https://platform.openai.com/api-keys",
  anthropic: "https://console.anthropic.com/settings/keys",
};

/**
 * Without any configuration, the echo model answers (Switchboard runs with no keys at all) and
 * every model is listed, each with its key status, so a newcomer sees what there is.
 */
const EMBEDDED_DEFAULT_CONFIG: HubConfigInput = { default_model: "echo", require_keys: false };

export interface ModelQuery {
  model?: string | undefined;
  purpose?: string | undefined;
  actor?: Actor | undefined;
}

export interface PurposeListing {
  name: string;
  description: string | undefined;
  /** The model used when the caller names none. */
  model: string | undefined;
  /** The models allowed for this purpose, in listing order. */
  models: string[];
}

/** Tracks the executions of one group so leaving it can wait for all of them. */
interface GroupTracker {
  info: GroupInfo;
  completions: (() => Promise<void>)[];
  responses: ModelResponse[];
}

type HookRunner<K extends keyof HookSpecs> = { plugin: SwitchboardPlugin; hook: HookSpecs[K] };

/**
 * The hub: application code asks it for a model by purpose; it resolves the model, enforces the
 * allowlists, picks the key, and wraps every prompt in the plugins' hooks.
 */
export class Hub {
  readonly config: HubConfig;
  readonly secrets: Secrets;
  /** Shipped prices with the config's overrides. */
  readonly prices: PriceBook;
  /** Read models: limits, usage summaries, the log, allowances. */
  readonly reports: Reports;
  readonly #plugins: readonly SwitchboardPlugin[];
  readonly #registry: Registry;
  readonly #env: NodeJS.ProcessEnv;
  readonly #promptContexts: HookRunner<"promptContext">[];
  #store: Promise<Store> | undefined;
  readonly #ownsStore: boolean;
  #purposes: Promise<Purpose[]> | undefined;
  #accountants: Promise<Accountant[]> | undefined;
  #closed = false;

  private constructor(
    config: HubConfig,
    plugins: SwitchboardPlugin[],
    registry: Registry,
    options: HubOptions,
    prices: PriceBook,
  ) {
    this.config = config;
    this.prices = prices;
    this.#plugins = plugins;
    this.#registry = registry;
    this.#env = options.env ?? process.env;
    this.#ownsStore = !options.store;
    if (options.store) this.#store = Promise.resolve(options.store);
    this.#promptContexts = this.#hooks("promptContext");
    this.reports = new Reports({ config, store: () => this.store() });
    this.secrets = new Secrets({
      env: this.#env,
      store: () => this.store(),
      registered: () => this.#registeredSecrets(),
    });
  }

  /** Builds a hub from a configuration object (or the embedded default: echo, no keys). */
  static async create(options: HubOptions = {}): Promise<Hub> {
    const config = options.config
      ? parseConfig(options.config)
      : options.configPath
        ? loadConfigFile(options.configPath)
        : parseConfig(EMBEDDED_DEFAULT_CONFIG);
    const baseDir =
      options.baseDir ?? (options.configPath ? dirname(resolve(options.configPath)) : process.cwd());
    const configured = await loadConfiguredPlugins(config.plugins, baseDir);
    const prices = new PriceBook(config);
    // Built-in plugins reach the hub (its store, its accountants) only once it exists.
    let hub: Hub | undefined;
    const store = () => (hub as Hub).store();
    const plugins: SwitchboardPlugin[] = [
      ...(options.providers ?? builtinPlugins()),
      configProvidersPlugin(config),
      configPolicyPlugin(),
      budgetsPlugin(),
      accountingPlugin({ config, prices, accountants: () => (hub as Hub).accountants() }),
      usageLogPlugin({ config, prices, store, storage: () => (hub as Hub).storageTarget() }),
      ...configured,
      ...(options.plugins ?? []),
    ];
    const env = options.env ?? process.env;
    const keys = options.keys ?? new KeyStore(join(userDirectory(env), "keys.json"));
    const registry = await Registry.create(plugins, { keys, env });
    hub = new Hub(config, plugins, registry, options, prices);
    return hub;
  }

  /** The accountants every plugin registered, in plugin order (collected once). */
  accountants(): Promise<Accountant[]> {
    this.#accountants ??= (async () => {
      const accountants: Accountant[] = [];
      for (const { hook } of this.#hooks("registerAccountants")) {
        accountants.push(...(await hook({ config: this.config, store: () => this.store() })));
      }
      return accountants;
    })();
    return this.#accountants;
  }

  /** The storage (opened on first use): `storage:` from the config, else SQLite under the user directory. */
  store(): Promise<Store> {
    if (this.#closed) return Promise.reject(new SwitchboardError("STORAGE_ERROR", "The hub is closed."));
    this.#store ??= openStore(this.#storageUrl());
    return this.#store;
  }

  /** Where `store()` opens (undefined when a Store was handed in): usage rows are written there at exit. */
  storageTarget(): ExitStorage | undefined {
    return this.#ownsStore ? { url: this.#storageUrl() } : undefined;
  }

  #storageUrl(): string {
    return this.config.storage ?? `sqlite:${join(userDirectory(this.#env), "switchboard.db")}`;
  }

  /**
   * Decision 1: explicit id → `defaultModel` hooks → the purpose's model → `default_model`.
   * Decision 2: the model must be allowed for the purpose and actor.
   */
  model(options: ModelQuery = {}): Promise<HubModel> {
    return this.#model(options, undefined);
  }

  async #model(options: ModelQuery, group: GroupTracker | undefined): Promise<HubModel> {
    const { purpose, actor } = options;
    const id =
      options.model || (await this.#hookDefault(purpose, actor)) || defaultModelFor(this.config, purpose);
    if (!id) {
      const where = purpose ? `purposes.${purpose}.model or default_model` : "default_model";
      throw new SwitchboardError(
        "NO_MODEL",
        `No model given and none configured: pass a model id (-m) or set ${where} in switchboard.yaml.`,
        { purpose },
      );
    }
    const core = this.#registry.get(id);
    const allowed = await this.#allowedListings(purpose, actor);
    if (!allowed.some((listing) => listing.id === core.id)) {
      const scope = purpose ? `purpose "${purpose}"` : "this configuration";
      throw new SwitchboardError(
        "MODEL_NOT_ALLOWED",
        `Model ${core.id} is not allowed for ${scope}; allowed: ${allowed.map((listing) => listing.id).join(", ") || "none"}.`,
        { model: core.id, purpose, actor: actor?.id },
      );
    }
    const key = await this.#keyFor(core, purpose, actor);
    const fallbacks: FallbackModel[] = [];
    for (const ref of (purpose ? this.config.purposes[purpose]?.fallbacks : undefined) ?? []) {
      const fallback = this.#registry.get(typeof ref === "string" ? ref : ref.model);
      const fallbackKey =
        (typeof ref !== "string" && ref.key ? await this.secrets.get(ref.key, actor?.id) : undefined) ??
        (await this.#keyFor(fallback, purpose, actor));
      fallbacks.push(fallbackKey === undefined ? { model: fallback } : { model: fallback, key: fallbackKey });
    }
    const governed = core.withContext({
      ...(key === undefined ? {} : { key }),
      fallbacks,
      observe: (start) => this.#observe(start, purpose, actor, group),
    });
    return new HubModel(governed, purpose, actor);
  }

  /** Models allowed for the purpose and actor, in decision 6's order; keyless ones hidden under `require_keys`. */
  async models(
    options: { purpose?: string | undefined; actor?: Actor | undefined } = {},
  ): Promise<ModelListing[]> {
    const allowed = await this.#allowedListings(options.purpose, options.actor);
    return sortModels(
      this.config.require_keys ? allowed.filter((listing) => listing.hasKey) : allowed,
      this.config,
      options.purpose,
    );
  }

  /** Registered and configured purposes with their effective model and allowlist (decision 13). */
  async purposes(): Promise<PurposeListing[]> {
    const purposes = await this.#registeredPurposes();
    return Promise.all(
      purposes.map(async (purpose) => ({
        name: purpose.name,
        description: purpose.description,
        model:
          (await this.#hookDefault(purpose.name, undefined)) ?? defaultModelFor(this.config, purpose.name),
        models: (await this.models({ purpose: purpose.name })).map((listing) => listing.id),
      })),
    );
  }

  /**
   * Decision 11: every prompt inside `body` is tagged with the group; leaving waits for all of
   * them to complete, then runs `groupExit` hooks, also when the body threw.
   */
  async group<T>(options: ModelQuery, body: (model: HubModel, group: GroupInfo) => Promise<T>): Promise<T> {
    const tracker: GroupTracker = {
      info: { id: newId("grp"), modelId: "", purpose: options.purpose, actor: options.actor },
      completions: [],
      responses: [],
    };
    const model = await this.#model(options, tracker);
    tracker.info.modelId = model.id;
    let error: unknown;
    try {
      return await body(model, tracker.info);
    } catch (caught) {
      error = caught;
      throw caught;
    } finally {
      // Completions can start more executions (chains), so drain until none is left.
      for (let index = 0; index < tracker.completions.length; index++) await tracker.completions[index]?.();
      for (const { hook, plugin } of this.#hooks("groupExit")) {
        try {
          await hook({
            group: tracker.info,
            responses: tracker.responses,
            ...(error === undefined ? {} : { error }),
          });
        } catch (hookError) {
          process.emitWarning(`groupExit hook of ${plugin.name} failed: ${describeError(hookError)}`);
        }
      }
    }
  }

  /** Waits until plugins have written what they buffered (usage rows). */
  async flush(): Promise<void> {
    for (const { hook } of this.#hooks("flush")) await hook();
  }

  /**
   * Runs shutdown hooks (plugins flush here) and closes the store. Idempotent. Rejects with the
   * STORAGE_ERROR of a hook that could not store what it held (usage rows not written).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    let unstored: unknown;
    for (const { hook, plugin } of this.#hooks("shutdown")) {
      try {
        await hook();
      } catch (error) {
        if (isSwitchboardError(error, "STORAGE_ERROR")) unstored ??= error;
        else process.emitWarning(`shutdown hook of ${plugin.name} failed: ${describeError(error)}`);
      }
    }
    this.#closed = true;
    if (this.#store && this.#ownsStore) await (await this.#store).close();
    if (unstored !== undefined) throw unstored;
  }

  #hooks<K extends keyof HookSpecs>(name: K): HookRunner<K>[] {
    const runners: HookRunner<K>[] = [];
    for (const plugin of this.#plugins) {
      const hook = plugin[name];
      if (hook) runners.push({ plugin, hook: hook.bind(plugin) as HookSpecs[K] });
    }
    return runners;
  }

  async #hookDefault(purpose: string | undefined, actor: Actor | undefined): Promise<string | undefined> {
    for (const { hook } of this.#hooks("defaultModel")) {
      const id = await hook({ purpose, actor, config: this.config });
      if (id) return id;
    }
    return undefined;
  }

  /** Every registered model through the `filterModels` hooks, each seeing the previous output (decision 4). */
  async #allowedListings(purpose: string | undefined, actor: Actor | undefined): Promise<ModelListing[]> {
    let listings: readonly ModelListing[] = await Promise.all(
      this.#registry.models().map((model) => this.#listing(model, purpose, actor)),
    );
    for (const { hook } of this.#hooks("filterModels")) {
      const filtered = await hook({ models: listings, purpose, actor, config: this.config });
      if (filtered) listings = filtered;
    }
    return [...listings];
  }

  async #listing(model: Model, purpose: string | undefined, actor: Actor | undefined): Promise<ModelListing> {
    const definition = model.definition;
    return {
      id: model.id,
      aliases: model.aliases,
      provider: definition.provider,
      needsKey: definition.needsKey,
      keyEnvVar: definition.keyEnvVar,
      capabilities: model.capabilities,
      hasKey:
        !definition.needsKey ||
        model.hasKey() ||
        (await this.#keyFor(model, purpose, actor, false)) !== undefined,
    };
  }

  /**
   * Decision 7, as far as the hub decides: configured per-purpose keys, then the provider's
   * configured secret, then `<ALIAS>_API_KEY`. Undefined leaves the keys file and env var to the core.
   */
  async #keyFor(
    model: Model,
    purpose: string | undefined,
    actor: Actor | undefined,
    recordUse = true,
  ): Promise<string | undefined> {
    const alias = model.needsKey;
    if (!alias) return undefined;
    const names = configuredKeySecrets(this.config, model.id, purpose);
    const providerKey = this.config.providers[alias]?.key;
    if (providerKey) names.push(providerKey);
    names.push(providerSecretName(alias));
    for (const name of names) {
      const value = recordUse ? await this.secrets.get(name, actor?.id) : await this.secrets.peek(name);
      if (value) return value;
    }
    return undefined;
  }

  async #registeredPurposes(): Promise<Purpose[]> {
    this.#purposes ??= (async () => {
      const purposes = new Map<string, Purpose>();
      for (const { hook } of this.#hooks("registerPurposes")) {
        for (const purpose of await hook({ config: this.config })) {
          if (!purposes.has(purpose.name)) purposes.set(purpose.name, purpose);
        }
      }
      return [...purposes.values()];
    })();
    return this.#purposes;
  }

  async #registeredSecrets(): Promise<Secret[]> {
    const secrets = new Map<string, Secret>();
    const add = (secret: Secret) => {
      if (!secrets.has(secret.name)) secrets.set(secret.name, secret);
    };
    for (const { hook } of this.#hooks("registerSecrets"))
      for (const secret of await hook({ config: this.config })) add(secret);
    for (const model of this.#registry.models()) {
      if (!model.needsKey) continue;
      const obtainUrl = KEY_OBTAIN_URLS[model.needsKey];
      add({
        name: providerSecretName(model.needsKey),
        description: `API key for ${model.needsKey} models`,
        ...(obtainUrl ? { obtainUrl } : {}),
      });
    }
    return [...secrets.values()];
  }

  /** Composes the `promptContext` hooks of one prompt or chain into the core's observer. */
  #observe(
    start: ExecutionStart,
    purpose: string | undefined,
    actor: Actor | undefined,
    group: GroupTracker | undefined,
  ): ExecutionObserver | undefined {
    group?.completions.push(start.complete);
    const runners = this.#promptContexts;
    if (runners.length === 0 && !group) return undefined;
    const args: PromptContextArgs = {
      kind: start.kind,
      modelId: start.modelId,
      input: start.input,
      purpose,
      actor,
      group: group?.info,
      executionId: start.executionId,
      config: this.config,
    };
    const active: PromptContext[] = [];
    const unwind = async (error: unknown) => {
      for (const context of active.reverse()) await context.after?.({ responses: [], error });
    };
    return {
      begin: async () => {
        for (const { hook } of runners) {
          let context: PromptContext | undefined;
          try {
            context = await hook(args);
            await context?.before?.();
          } catch (error) {
            await unwind(error);
            throw error;
          }
          if (context) active.push(context);
        }
      },
      responseDone: async (response) => {
        group?.responses.push(response);
        for (const context of active) await runContextHook(() => context.onResponse?.(response));
      },
      end: async (outcome) => {
        // Onion order: the first context to begin is the last to end.
        for (let index = active.length - 1; index >= 0; index--)
          await runContextHook(() => active[index]?.after?.(outcome));
      },
    };
  }
}

/** One plugin's failing `onResponse`/`after` must not keep the others from running. */
async function runContextHook(hook: () => unknown): Promise<void> {
  try {
    await hook();
  } catch (error) {
    process.emitWarning(`promptContext hook failed: ${describeError(error)}`, { code: "SWITCHBOARD_HOOK" });
  }
}

/**
 * A model handed out by the hub. Every way to use it — prompt, chain, conversation, and the
 * objects they return — runs through the hub's hooks; the underlying core model stays private.
 */
export class HubModel {
  readonly #model: Model;
  readonly purpose: string | undefined;
  readonly actor: Actor | undefined;

  constructor(model: Model, purpose: string | undefined, actor: Actor | undefined) {
    this.#model = model;
    this.purpose = purpose;
    this.actor = actor;
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

/** Opens a hub from `--config`, `$SWITCHBOARD_CONFIG` or `./switchboard.yaml`; the embedded default otherwise. */
export async function openHub(options: HubOptions & { cwd?: string } = {}): Promise<Hub> {
  if (options.config) return Hub.create(options);
  const path = findConfigPath({
    ...(options.configPath ? { configPath: options.configPath } : {}),
    ...(options.env ? { env: options.env } : {}),
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
  return Hub.create(
    path ? { ...options, config: loadConfigFile(path), baseDir: options.baseDir ?? dirname(path) } : options,
  );
}
