/**
 * The model specification: what a provider implements and what the core hands it. Providers only
 * turn a `ModelRequest` into a stream of `StreamPart`s; conversations, chains, usage and hooks live
 * once in the core.
 */
import type { z } from "zod";

export type JsonSchema = Record<string, unknown>;

/** Token counts. A count the provider did not report is `undefined`, never 0. */
export interface Usage {
  input?: number;
  output?: number;
  /** Input tokens served from the provider's prompt cache (a subset of `input`). */
  cachedInput?: number;
  /** Provider-specific extra counts (reasoning tokens, cache writes…). */
  details?: Record<string, number>;
}

export interface ToolCall {
  /** Every tool call has an id: the provider's, or a synthesized `tc_…` one. */
  id: string;
  name: string;
  arguments: Record<string, unknown>;
}

export interface ToolResult {
  toolCallId: string;
  name: string;
  output: string;
  /** Set when the tool threw: the error's description. */
  error?: string;
}

/** A tool as the model sees it. */
export interface ToolDefinition {
  name: string;
  description?: string;
  /** JSON schema of the arguments object. */
  inputSchema?: JsonSchema;
}

export interface ToolCallContext {
  toolCall: ToolCall;
  signal: AbortSignal;
}

/** A tool the caller provides: its definition plus the function that runs it. */
export interface Tool extends ToolDefinition {
  /** Sync or async; a non-string result is JSON-serialised. Missing: the call reports an error. */
  execute?: (args: Record<string, unknown>, context: ToolCallContext) => unknown;
}

/** An attachment as given by the caller: a file path, a URL, or bytes with a MIME type. */
export type AttachmentInput =
  | { path: string; type?: string }
  | { url: string; type?: string }
  | { content: Uint8Array; type?: string };

/** An attachment after validation: its MIME type is always known. */
export interface Attachment {
  type: string;
  path?: string;
  url?: string;
  content?: Uint8Array;
}

/** One prompt as the caller gave it (after validation). */
export interface PromptInput {
  prompt: string;
  system?: string;
  attachments: Attachment[];
  schema?: JsonSchema;
  tools: ToolDefinition[];
  toolResults: ToolResult[];
  options: Record<string, unknown>;
}

/** A completed earlier turn of the same conversation, for providers that replay history. */
export interface Exchange {
  input: PromptInput;
  text: string;
  toolCalls: ToolCall[];
}

/** What a provider receives for one request. */
export interface ModelRequest extends PromptInput {
  /** The id this request is made for (fallbacks make it differ from the id asked for). */
  modelId: string;
  stream: boolean;
  history: Exchange[];
  /** The resolved API key, when the model needs one. */
  key: string | undefined;
  /** Aborted on caller abort or timeout; providers pass it to every request they make. */
  signal: AbortSignal;
}

/** What a provider yields. */
export type StreamPart =
  | { type: "text"; text: string }
  | { type: "tool-call"; id?: string; name: string; arguments: Record<string, unknown> }
  | { type: "usage"; usage: Usage }
  /** The exact upstream model that answered (e.g. a dated snapshot). */
  | { type: "resolved-model"; model: string }
  | { type: "finish"; reason: string };

export interface Capabilities {
  streaming: boolean;
  tools: boolean;
  schema: boolean;
  /** MIME types accepted as attachments; empty means no attachments. */
  attachmentTypes: readonly string[];
}

/** The parts of a model definition shared by async and sync (worker) models. */
export interface ModelInfo {
  id: string;
  aliases?: readonly string[];
  /** Key alias (e.g. `openai`) when the model needs an API key. */
  needsKey?: string;
  /** Environment variable consulted for the key (e.g. `OPENAI_API_KEY`). */
  keyEnvVar?: string;
  /** Which provider serves it, for listings (`openai`, `anthropic`, `echo`…). */
  provider?: string;
  capabilities?: Partial<Capabilities>;
  /** Options the model accepts; anything else is rejected before a request is made. */
  options?: z.ZodObject;
  /** Request timeout in ms (default 10 minutes). */
  timeoutMs?: number;
}

/** A model that streams parts asynchronously (every network provider). */
export interface AsyncModelDefinition extends ModelInfo {
  execute(request: ModelRequest): AsyncIterable<StreamPart>;
}

/**
 * A model that only implements a blocking generator. It runs in a worker-thread pool so it never
 * blocks the event loop. `module` must export a generator function named `exportName` (default
 * `generate`) taking a `SyncModelRequest` and yielding text chunks or `StreamPart`s.
 */
export interface SyncModelDefinition extends ModelInfo {
  sync: { module: string | URL; exportName?: string };
}

export type ModelDefinition = AsyncModelDefinition | SyncModelDefinition;

/** The serialisable request a sync model's generator receives inside its worker. */
export type SyncModelRequest = Omit<ModelRequest, "signal">;
