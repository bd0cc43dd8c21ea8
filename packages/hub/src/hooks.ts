/**
 * Every plugin hook of Switchboard, in one file. A plugin is an object with a `name` and any of
 * these hooks; each hook takes one named-argument object. Hooks run in plugin registration order
 * (built-ins first, then plugins in the order given); for "first wins" hooks, that order decides.
 * `docs/plugins.md` documents each hook with an example; a test keeps the two in step.
 */
import type { CorePlugin, ModelResponse, RegisterModelsArgs } from "@switchboard/core";
import type { Store } from "@switchboard/store";
import type { Accountant } from "./accounting/accountants.ts";
import type { HubConfig } from "./config.ts";
import type {
  Actor,
  GroupInfo,
  ModelDescription,
  PromptContext,
  PromptContextArgs,
  Purpose,
  Secret,
} from "./types.ts";

// The contract types live in types.ts; plugins may keep importing them from here.
export type {
  Actor,
  GroupInfo,
  ModelDescription,
  ModelListing,
  PromptContext,
  PromptContextArgs,
  PromptOutcome,
  Purpose,
  Secret,
} from "./types.ts";

type MaybePromise<T> = T | Promise<T>;

export interface HookSpecs {
  /** Adds models to the registry; sees the models registered by earlier plugins. */
  registerModels: (args: RegisterModelsArgs) => MaybePromise<void>;
  /** Declares purposes application code may ask for; the first registration of a name wins. */
  registerPurposes: (args: { config: HubConfig }) => MaybePromise<readonly Purpose[]>;
  /** Narrows the models allowed for a purpose and actor; each hook sees the previous hook's output. */
  filterModels: (args: {
    models: readonly ModelDescription[];
    purpose: string | undefined;
    actor: Actor | undefined;
    config: HubConfig;
  }) => MaybePromise<readonly ModelDescription[] | undefined>;
  /** Picks the model when the caller named none; the first non-empty answer wins. */
  defaultModel: (args: {
    purpose: string | undefined;
    actor: Actor | undefined;
    config: HubConfig;
  }) => MaybePromise<string | undefined>;
  /** Wraps every prompt and chain; may refuse before any request (see `PromptContext`). */
  promptContext: (args: PromptContextArgs) => MaybePromise<PromptContext | undefined>;
  /** Runs when a group ends, after every response in it completed, also when its body threw. */
  groupExit: (args: {
    group: GroupInfo;
    responses: readonly ModelResponse[];
    error?: unknown;
  }) => MaybePromise<void>;
  /** Adds accountants that hold money before each prompt, chain or group and settle the real cost after. */
  registerAccountants: (args: {
    config: HubConfig;
    store: () => Promise<Store>;
  }) => MaybePromise<readonly Accountant[]>;
  /** Declares named secrets, so listings show them and where each is set. */
  registerSecrets: (args: { config: HubConfig }) => MaybePromise<readonly Secret[]>;
  /** Writes buffered data (usage rows, queued settlements) now; runs on `hub.flush()`. */
  flush: () => MaybePromise<void>;
  /** Called when the hub closes: flush buffers, close connections. */
  shutdown: () => MaybePromise<void>;
}

export type HookName = keyof HookSpecs;

/**
 * Every hook, as a record over `HookName`: a hook added to `HookSpecs` but not here fails to
 * compile, and the documentation test then checks it is documented.
 */
const EVERY_HOOK: Readonly<Record<HookName, true>> = {
  registerModels: true,
  registerPurposes: true,
  filterModels: true,
  defaultModel: true,
  promptContext: true,
  groupExit: true,
  registerAccountants: true,
  registerSecrets: true,
  flush: true,
  shutdown: true,
};

/** Every hook name, in the order `docs/plugins.md` documents them. */
export const HOOK_NAMES: readonly HookName[] = Object.keys(EVERY_HOOK) as HookName[];

/** A Switchboard plugin: a name plus any hooks. Core plugins (model providers) are plugins too. */
export type SwitchboardPlugin = CorePlugin & Partial<HookSpecs> & { name: string };
