/**
 * Every plugin hook of Switchboard, in one file. A plugin is an object with a `name` and any of
 * these hooks; each hook takes one named-argument object. Hooks run in plugin registration order
 * (built-ins first, then plugins in the order given); for "first wins" hooks, that order decides.
 * `docs/plugins.md` documents each hook with an example; a test keeps the two in step.
 */
import type { CorePlugin, ModelResponse, PromptInput, RegisterModelsArgs } from "@switchboard/core";
import type { Store } from "@switchboard/store";
import type { Accountant } from "./accounting/accountants.ts";
import type { HubConfig } from "./config.ts";

/** Who is asking: an authenticated user, a service, or nobody (`undefined`). */
export interface Actor {
  id: string;
  [field: string]: unknown;
}

export interface Purpose {
  name: string;
  description?: string;
}

export interface Secret {
  name: string;
  description?: string;
  /** Where to obtain a value, shown in listings. */
  obtainUrl?: string;
}

/** A model as listings show it (plain data). */
export interface ModelListing {
  id: string;
  aliases: readonly string[];
  provider: string | undefined;
  needsKey: string | undefined;
  keyEnvVar: string | undefined;
  capabilities: { streaming: boolean; tools: boolean; schema: boolean; attachmentTypes: readonly string[] };
  /** Whether a key resolves for this purpose (always true for key-less models). */
  hasKey: boolean;
}

/** A group of prompts that share tagging and accounting (see `hub.group`). */
export interface GroupInfo {
  id: string;
  modelId: string;
  purpose: string | undefined;
  actor: Actor | undefined;
}

export interface PromptContextArgs {
  /** Whether this is one prompt or a whole tool-call chain. */
  kind: "prompt" | "chain";
  /** The id asked for (fallbacks may answer instead; see `response.answeredBy`). */
  modelId: string;
  input: PromptInput;
  purpose: string | undefined;
  actor: Actor | undefined;
  group: GroupInfo | undefined;
  /** Shared by every response of a chain. */
  executionId: string;
  config: HubConfig;
}

/** What a prompt ended with; `error` is set on failure. */
export interface PromptOutcome {
  responses: readonly ModelResponse[];
  error?: unknown;
}

/**
 * Wraps one prompt or one whole chain. `before` runs before any request (throw to refuse: the
 * prompt fails with that error and nothing is sent); `onResponse` sees each response as it
 * completes (also failed ones); `after` runs once at the end, on success or failure. Chunks still
 * stream to the caller while a context is active.
 */
export interface PromptContext {
  before?: () => void | Promise<void>;
  onResponse?: (response: ModelResponse) => void | Promise<void>;
  after?: (outcome: PromptOutcome) => void | Promise<void>;
}

type MaybePromise<T> = T | Promise<T>;

export interface HookSpecs {
  /** Adds models to the registry; sees the models registered by earlier plugins. */
  registerModels: (args: RegisterModelsArgs) => MaybePromise<void>;
  /** Declares purposes application code may ask for; the first registration of a name wins. */
  registerPurposes: (args: { config: HubConfig }) => MaybePromise<readonly Purpose[]>;
  /** Narrows the models allowed for a purpose and actor; each hook sees the previous hook's output. */
  filterModels: (args: {
    models: readonly ModelListing[];
    purpose: string | undefined;
    actor: Actor | undefined;
    config: HubConfig;
  }) => MaybePromise<readonly ModelListing[] | undefined>;
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
  /** Writes buffered data (such as usage rows) now; runs on `hub.flush()`. */
  flush: () => MaybePromise<void>;
  /** Called when the hub closes: flush buffers, close connections. */
  shutdown: () => MaybePromise<void>;
}

export type HookName = keyof HookSpecs;

/** Every hook name; the documentation test checks each one is documented. */
export const HOOK_NAMES = [
  "registerModels",
  "registerPurposes",
  "filterModels",
  "defaultModel",
  "promptContext",
  "groupExit",
  "registerAccountants",
  "registerSecrets",
  "flush",
  "shutdown",
] as const satisfies readonly HookName[];

/** A Switchboard plugin: a name plus any hooks. Core plugins (model providers) are plugins too. */
export type SwitchboardPlugin = CorePlugin & Partial<HookSpecs> & { name: string };
