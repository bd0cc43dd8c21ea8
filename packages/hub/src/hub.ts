import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import {
  builtinPlugins,
  describeError,
  type ExecutionObserver,
  type ExecutionStart,
  type FallbackModel,
  isSwitchboardError,
  KeyStore,
  Model,
  type ModelResponse,
  newId,
  Registry,
  SwitchboardError,
  userDirectory,
} from "@switchboard/core";
import type { ExitStorage, OpenStoreOptions, Store } from "@switchboard/store";
import type { Accountant } from "./accounting/accountants.ts";
import { PriceBook } from "./accounting/pricing.ts";
import { Audit } from "./audit.ts";
import {
  findConfigPath,
  type HubConfig,
  type HubConfigInput,
  loadConfigFile,
  parseConfig,
  refKey,
  refModel,
} from "./config.ts";
import type { HookSpecs, SwitchboardPlugin } from "./hooks.ts";
import { describeModel, describeModels, HubModel } from "./hub-model.ts";
import { KeyResolver, type KeySource, modelKeySecrets } from "./keys.ts";
import { Logins } from "./logins.ts";
import { PurposeOverrides } from "./overrides.ts";
import { Permissions } from "./permissions.ts";
import { loadConfiguredPlugins } from "./plugin-loading.ts";
import { accountingPlugin, budgetsPlugin } from "./plugins/accounting.ts";
import { configPolicyPlugin, configProvidersPlugin } from "./plugins/config.ts";
import { usageLogPlugin } from "./plugins/usage-log.ts";
import { describePurposes, type PurposeDetail } from "./purpose-details.ts";
import { Reports } from "./reports.ts";
import { defaultModelFor, sortModels } from "./routing.ts";
import { Secrets } from "./secrets.ts";
import { Tokens } from "./tokens.ts";
import type {
  Actor,
  GroupInfo,
  ModelDescription,
  ModelListing,
  ModelQuery,
  PromptContext,
  PromptContextArgs,
  Purpose,
  PurposeListing,
  Secret,
  SkippedFallback,
} from "./types.ts";

export { HubModel } from "./hub-model.ts";
export type { ModelQuery, PurposeListing } from "./types.ts";

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
  /** How long secret values read from the store are reused (default 5000 ms). */
  secretsCacheTtlMs?: number;
  /** How the configured store is opened (e.g. no usage writer thread for a one-shot command). */
  storeOptions?: OpenStoreOptions;
  /** Where relative `plugins:` paths in the config are found (default: the config file's folder, else the cwd). */
  baseDir?: string;
}

/**
 * Without any configuration, the echo model answers (Switchboard runs with no keys at all) and
 * every model is listed, each with its key status, so a newcomer sees what there is.
 */
const EMBEDDED_DEFAULT_CONFIG: HubConfigInput = { default_model: "echo", require_keys: false };

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
  /** The configuration as loaded (YAML or object), before purpose overrides from the database. */
  readonly baseConfig: HubConfig;
  readonly secrets: Secrets;
  /** Purpose overrides stored in the database over the YAML (the admin UI edits them). */
  readonly overrides: PurposeOverrides;
  /** Every change made through the admin UI, who made it and when. */
  readonly audit: Audit;
  /** Who may do what in the admin UI and the data tools (`permissions:`; `root` may do everything). */
  readonly permissions: Permissions;
  /** One-time login links and admin sessions. */
  readonly logins: Logins;
  /** Gateway tokens (`switchboard tokens`, `switchboard serve`), kept hashed in the store. */
  readonly tokens: Tokens;
  /** Shipped prices with the config's overrides. */
  readonly prices: PriceBook;
  /** Read models: limits, usage summaries, the log, allowances. */
  readonly reports: Reports;
  readonly #plugins: readonly SwitchboardPlugin[];
  readonly #registry: Registry;
  readonly #env: NodeJS.ProcessEnv;
  readonly #promptContexts: HookRunner<"promptContext">[];
  readonly #filters: HookRunner<"filterModels">[];
  readonly #defaultModelHooks: HookRunner<"defaultModel">[];
  readonly #keys: KeyResolver;
  /** Every registered model as plain data, in registration order (the registry never changes). */
  readonly #descriptions: readonly ModelDescription[];
  readonly #descriptionsById: ReadonlyMap<string, ModelDescription>;
  /** Skipped-fallback warnings already given, so a busy hub warns once per cause. */
  readonly #fallbackWarnings = new Set<string>();
  #store: Promise<Store> | undefined;
  readonly #ownsStore: boolean;
  readonly #storeOptions: OpenStoreOptions;
  #purposes: Promise<(Purpose & { registeredBy: string })[]> | undefined;
  #overridesFailing = false;
  #accountants: Promise<Accountant[]> | undefined;
  #closed = false;

  private constructor(
    config: HubConfig,
    plugins: SwitchboardPlugin[],
    registry: Registry,
    options: HubOptions,
    prices: PriceBook,
  ) {
    this.baseConfig = config;
    this.prices = prices;
    this.#plugins = plugins;
    this.#registry = registry;
    this.#env = options.env ?? process.env;
    this.#ownsStore = !options.store;
    this.#storeOptions = options.storeOptions ?? {};
    if (options.store) this.#store = Promise.resolve(options.store);
    this.#promptContexts = this.#hooks("promptContext");
    this.#filters = this.#hooks("filterModels");
    this.#defaultModelHooks = this.#hooks("defaultModel");
    this.reports = new Reports({ config, store: () => this.store() });
    this.secrets = new Secrets({
      env: this.#env,
      store: () => this.store(),
      registered: () => this.#registeredSecrets(),
      ...(options.secretsCacheTtlMs === undefined ? {} : { cacheTtlMs: options.secretsCacheTtlMs }),
    });
    this.tokens = new Tokens(() => this.store());
    this.#descriptions = describeModels(registry);
    this.#descriptionsById = new Map(this.#descriptions.map((description) => [description.id, description]));
    this.audit = new Audit(() => this.store());
    this.overrides = new PurposeOverrides({
      store: () => this.store(),
      audit: this.audit,
      base: config,
      purposes: async () => (await this.#registeredPurposes()).map((purpose) => purpose.name),
      isModel: (name) => registry.find(name) !== undefined,
      storeMayHoldOverrides: () => this.#storeMayHoldOverrides(),
    });
    this.permissions = new Permissions(() => this.config.permissions);
    this.logins = new Logins(() => this.store());
    this.#keys = new KeyResolver({
      config: () => this.config,
      secrets: this.secrets,
      describe: (model) => this.#describe(model),
      build: (definition) => new Model(definition, registry.keys, this.#env),
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

  /** The configuration routing uses: the YAML with the database's purpose overrides applied. */
  get config(): HubConfig {
    return this.overrides.effectiveConfig;
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
    // Imported here, not at the top: a hub that never stores anything never loads the drivers.
    this.#store ??= import("@switchboard/store").then(({ openStore }) =>
      openStore(this.#storageUrl(), this.#storeOptions),
    );
    return this.#store;
  }

  /** Where `store()` opens (undefined when a Store was handed in): usage rows are written there at exit. */
  storageTarget(): ExitStorage | undefined {
    if (!this.#ownsStore) return undefined;
    const { clock: _clock, ...options } = this.#storeOptions;
    return { url: this.#storageUrl(), options };
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
    await this.#refreshOverrides();
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
    const allowed = await this.#allowedModels(purpose, actor);
    if (!allowed.some((description) => description.id === core.id)) {
      const scope = purpose ? `purpose "${purpose}"` : "this configuration";
      throw new SwitchboardError(
        "MODEL_NOT_ALLOWED",
        `Model ${core.id} is not allowed for ${scope}; allowed: ${allowed.map((description) => description.id).join(", ") || "none"}.`,
        { model: core.id, purpose, actor: actor?.id },
      );
    }
    const primary = await this.#keys.keyed(core, purpose, actor);
    const { fallbacks, skipped } = await this.#governedFallbacks(purpose, actor, allowed);
    const governed = primary.model.withContext({
      ...(primary.key === undefined ? {} : { key: primary.key }),
      fallbacks,
      observe: (start) => this.#observe(start, purpose, actor, group),
    });
    return new HubModel(governed, purpose, actor, skipped);
  }

  /**
   * Decision 16: a fallback must pass the same allowlists, block lists and `filterModels` hooks as
   * the first model, and have a key; one that does not is skipped, with a warning (once per hub
   * and cause) and in `HubModel.skippedFallbacks`.
   */
  async #governedFallbacks(
    purpose: string | undefined,
    actor: Actor | undefined,
    allowed: readonly ModelDescription[],
  ): Promise<{ fallbacks: FallbackModel[]; skipped: SkippedFallback[] }> {
    const fallbacks: FallbackModel[] = [];
    const skipped: SkippedFallback[] = [];
    for (const ref of (purpose ? this.config.purposes[purpose]?.fallbacks : undefined) ?? []) {
      const fallback = this.#registry.get(refModel(ref));
      let reason: string;
      if (!allowed.some((description) => description.id === fallback.id)) {
        reason = "not allowed for this purpose and actor (allowlist, block list or a filterModels hook)";
      } else {
        const keyed = await this.#keys.keyed(fallback, purpose, actor, refKey(ref));
        if (keyed.lookup.kind === "missing") {
          reason = keyed.lookup.secret ? `its key secret ${keyed.lookup.secret} is not set` : "it has no key";
        } else {
          fallbacks.push(
            keyed.key === undefined ? { model: keyed.model } : { model: keyed.model, key: keyed.key },
          );
          continue;
        }
      }
      skipped.push({ model: fallback.id, reason });
      const warning = `Fallback ${fallback.id} of purpose "${purpose}" skipped: ${reason}.`;
      if (!this.#fallbackWarnings.has(warning)) {
        this.#fallbackWarnings.add(warning);
        process.emitWarning(warning, { code: "SWITCHBOARD_FALLBACK_SKIPPED" });
      }
    }
    return { fallbacks, skipped };
  }

  /**
   * Models allowed for the purpose and actor, in decision 6's order, each with its key status;
   * keyless ones hidden under `require_keys`. Checking keys reads secrets but never counts as using them.
   */
  async models(
    options: { purpose?: string | undefined; actor?: Actor | undefined } = {},
  ): Promise<ModelListing[]> {
    await this.#refreshOverrides();
    const allowed = await this.#allowedModels(options.purpose, options.actor);
    const listings = await Promise.all(
      allowed.map(
        async (description): Promise<ModelListing> => ({
          ...description,
          hasKey: await this.#keys.hasKey(this.#registry.get(description.id), options.purpose),
        }),
      ),
    );
    return sortModels(
      this.config.require_keys ? listings.filter((listing) => listing.hasKey) : listings,
      this.config,
      options.purpose,
    );
  }

  /** Every registered model as plain data, in registration order, whatever the allowlists say. */
  registeredModels(): readonly ModelDescription[] {
    return this.#descriptions;
  }

  /** Registered and configured purposes with their effective model and allowlist (decision 13). */
  async purposes(): Promise<PurposeListing[]> {
    await this.#refreshOverrides();
    const purposes = await this.#registeredPurposes();
    return Promise.all(
      purposes.map(async (purpose) => ({
        name: purpose.name,
        description: purpose.description,
        model: this.#canonicalId(
          (await this.#hookDefault(purpose.name, undefined)) ?? defaultModelFor(this.config, purpose.name),
        ),
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
    await this.secrets.settled();
    await this.overrides.close();
    this.#closed = true;
    if (this.#store && this.#ownsStore) await (await this.#store).close();
    if (unstored !== undefined) throw unstored;
  }

  /**
   * Every purpose as the admin UI shows it: where each routing value comes from (plugin, YAML,
   * database override, global setting), the models allowed and those hidden for want of a key.
   */
  async purposeDetails(): Promise<PurposeDetail[]> {
    await this.#refreshOverrides();
    return describePurposes({
      purposes: await this.#registeredPurposes(),
      base: this.baseConfig,
      config: this.config,
      overrides: this.overrides.loaded,
      hookDefault: (purpose) => this.#hookDefault(purpose, undefined),
      allowed: async (purpose) => (await this.#allowedModels(purpose, undefined)).map((model) => model.id),
      listed: async (purpose) => (await this.models({ purpose })).map((model) => model.id),
      canonicalId: (name) => this.#canonicalId(name),
      keySource: (model, purpose) => this.keySource(model, purpose),
    });
  }

  /** Where a model's key comes from for a purpose: a secret's name, an env var's name, the keys file; never the value. */
  async keySource(modelId: string, purpose?: string): Promise<KeySource> {
    const model = this.#registry.get(modelId);
    return this.#keys.source(model, purpose, { keys: this.#registry.keys, env: this.#env });
  }

  async #refreshOverrides(): Promise<void> {
    try {
      await this.overrides.refresh();
      this.#overridesFailing = false;
    } catch (error) {
      // Routing goes on with the overrides last read; the storage problem is reported once.
      if (!this.#overridesFailing) {
        process.emitWarning(`Could not read purpose overrides: ${describeError(error)}`, {
          code: "SWITCHBOARD_OVERRIDES",
        });
      }
      this.#overridesFailing = true;
    }
  }

  /**
   * A SQLite file not created yet holds no overrides: reading them must neither create it nor
   * load the drivers (the store's own parser is not imported here for that reason).
   */
  #storeMayHoldOverrides(): boolean {
    if (this.#store) return true;
    const url = this.#storageUrl().trim();
    if (/^postgres(ql)?:\/\//i.test(url)) return true;
    const path = url.replace(/^sqlite:(\/\/)?/i, "");
    return path !== ":memory:" && existsSync(path);
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
    for (const { hook } of this.#defaultModelHooks) {
      const id = await hook({ purpose, actor, config: this.config });
      if (id) return id;
    }
    return undefined;
  }

  /**
   * Every registered model through the `filterModels` hooks, each seeing the previous output
   * (decision 4). Needs no keys, so resolving a model reads no secret but its own.
   */
  async #allowedModels(purpose: string | undefined, actor: Actor | undefined): Promise<ModelDescription[]> {
    let models: readonly ModelDescription[] = this.#descriptions;
    for (const { hook } of this.#filters) {
      const filtered = await hook({ models, purpose, actor, config: this.config });
      if (filtered) models = filtered;
    }
    return [...models];
  }

  #describe(model: Model): ModelDescription {
    return this.#descriptionsById.get(model.id) ?? describeModel(model, model.aliases);
  }

  /** A configured name (id or alias) as the model's id; unknown names stay as they are. */
  #canonicalId(name: string | undefined): string | undefined {
    return name === undefined ? undefined : (this.#registry.find(name)?.id ?? name);
  }

  async #registeredPurposes(): Promise<(Purpose & { registeredBy: string })[]> {
    this.#purposes ??= (async () => {
      const purposes = new Map<string, Purpose & { registeredBy: string }>();
      for (const { hook, plugin } of this.#hooks("registerPurposes")) {
        // The YAML declares purposes; an override only changes how an existing one routes.
        for (const purpose of await hook({ config: this.baseConfig })) {
          if (!purposes.has(purpose.name))
            purposes.set(purpose.name, { ...purpose, registeredBy: plugin.name });
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
    for (const secret of modelKeySecrets(this.#registry.models())) add(secret);
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
      before: async () => {
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
      onResponse: async (response) => {
        group?.responses.push(response);
        for (const context of active) await runContextHook(() => context.onResponse?.(response));
      },
      after: async (outcome) => {
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
