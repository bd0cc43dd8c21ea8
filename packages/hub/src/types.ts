/**
 * The hub's contract types: what applications, plugins and the hub hand each other. Plain types
 * only, imported by every other hub module, so that no two modules import each other.
 */
import type { ModelResponse, PromptInput } from "@switchboard/core";
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

/** A registered model as plain data: what `filterModels` hooks narrow. */
export interface ModelDescription {
  id: string;
  /** Every other name the model answers to: its definition's aliases and those given at registration. */
  aliases: readonly string[];
  provider: string | undefined;
  needsKey: string | undefined;
  keyEnvVar: string | undefined;
  capabilities: { streaming: boolean; tools: boolean; schema: boolean; attachmentTypes: readonly string[] };
}

/** A model as listings (`hub.models()`) show it. */
export interface ModelListing extends ModelDescription {
  /** Whether a key resolves for this purpose (always true for key-less models). */
  hasKey: boolean;
}

/** What `hub.model()` and friends are asked. */
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

/** A configured fallback the hub left out for this purpose and actor, and why. */
export interface SkippedFallback {
  model: string;
  reason: string;
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
