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

/**
 * An earlier message of a conversation, given explicitly with `PromptOptions.history` by a caller
 * that keeps no `Conversation` (the gateway, a stateless API). `A` is the attachment form: what the
 * caller gives (`AttachmentInput`), or after validation what a provider receives (`Attachment`).
 *
 * Mapping an OpenAI Chat Completions `messages` array (one message each, in order):
 * - `system` / `developer` → `{role: "system", content}` (text parts joined); a leading one may go
 *   to `PromptOptions.system` instead.
 * - `user` → `{role: "user", content, attachments}`: text parts joined into `content`; `image_url`
 *   and `input_audio` parts become attachments (a `data:` URL decoded into `{content, type}`).
 * - `assistant` → `{role: "assistant", content: content ?? "", toolCalls}` with each
 *   `tool_calls[i]` as `{id, name: function.name, arguments: JSON.parse(function.arguments)}`.
 * - `tool` → `{role: "tool", toolCallId: tool_call_id, output: content, name}` (the name is the
 *   one of the assistant's call with that id).
 * The last message becomes the prompt: a `user` message is the prompt text (and attachments); if
 * the conversation ends in `tool` messages, they are `PromptOptions.toolResults` and the prompt is `""`.
 *
 * Mapping an Anthropic Messages conversation (`system` is `PromptOptions.system`):
 * - a `user` message: its `tool_result` blocks → one `{role: "tool", toolCallId: tool_use_id,
 *   output, error}` each (text content joined; `is_error: true` sets `error` to the output), then
 *   its text and `image`/`document` blocks → one `{role: "user", content, attachments}` (omitted
 *   when the message held only tool results).
 * - an `assistant` message → `{role: "assistant", content: text blocks joined, toolCalls}` with each
 *   `tool_use` block as `{id, name, arguments: input}`.
 * Providers replay the messages in this order. Images inside tool results are not supported.
 */
export type HistoryMessage<A extends AttachmentInput | Attachment = AttachmentInput> =
  | HistorySystemMessage
  | HistoryUserMessage<A>
  | HistoryAssistantMessage
  | HistoryToolMessage;

/** Instructions given mid-conversation (OpenAI replays them in place; Anthropic adds them to `system`). */
export interface HistorySystemMessage {
  role: "system";
  content: string;
}

export interface HistoryUserMessage<A extends AttachmentInput | Attachment = AttachmentInput> {
  role: "user";
  content: string;
  attachments?: readonly A[] | undefined;
}

/** What the model answered: its text, and the tool calls it asked for (each with its id). */
export interface HistoryAssistantMessage {
  role: "assistant";
  content: string;
  toolCalls?: readonly ToolCall[] | undefined;
}

/** The result of one earlier tool call, answering the assistant's call with the same id. */
export interface HistoryToolMessage {
  role: "tool";
  toolCallId: string;
  /** The tool's name, when known (OpenAI's tool messages do not carry it). */
  name?: string | undefined;
  output: string;
  /** Set when the tool failed: a description of the failure. */
  error?: string | undefined;
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
  /** Earlier messages the caller passed explicitly (`PromptOptions.history`), validated. */
  history?: readonly HistoryMessage<Attachment>[];
}

/** What a provider receives for one request. */
export interface ModelRequest extends PromptInput {
  /** The id this request is made for (fallbacks make it differ from the id asked for). */
  modelId: string;
  stream: boolean;
  /**
   * Every earlier message to replay, oldest first: the explicit history, then the turns of the
   * conversation or chain this prompt belongs to. The current prompt and tool results come after.
   */
  history: readonly HistoryMessage<Attachment>[];
  /** The resolved API key, when the model needs one. */
  key: string | undefined;
  /** Aborted on caller abort or timeout; providers pass it to every request they make. */
  signal: AbortSignal;
}

/**
 * Why a response ended, in a closed set every provider maps its own vocabulary onto:
 * `stop` (a natural end or a stop sequence), `length` (the token limit), `tool-calls` (the model
 * waits for tool results), `content-filter` (a refusal or a filtered answer), `error` (the
 * response failed), `other` (anything else; the provider's value is kept as `rawReason`).
 */
export type FinishReason = "stop" | "length" | "tool-calls" | "content-filter" | "error" | "other";

/** What a provider yields. */
export type StreamPart =
  | { type: "text"; text: string }
  | { type: "tool-call"; id?: string; name: string; arguments: Record<string, unknown> }
  | { type: "usage"; usage: Usage }
  /** The exact upstream model that answered (e.g. a dated snapshot). */
  | { type: "resolved-model"; model: string }
  /** `rawReason` is the provider's own value (`end_turn`, `tool_calls`…), when it had one. */
  | { type: "finish"; reason: FinishReason; rawReason?: string };

/**
 * What `ModelResponse.parts()` yields, in order: text and tool calls as they arrive (each tool
 * call once it is complete), then at the end one `usage` part (when the provider reported any)
 * and one `finish` part. A failed response yields no `finish`: the iteration throws its error.
 */
export type ResponsePart =
  | { type: "text"; text: string }
  | ({ type: "tool-call" } & ToolCall)
  | { type: "usage"; usage: Usage }
  | { type: "finish"; reason: FinishReason; rawReason?: string };

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
  /** Timeout of a whole response in ms (default 10 minutes); a prompt's `timeoutMs` wins over it. */
  timeoutMs?: number;
  /**
   * How long one attempt may wait for its first output (text or a tool call) before it fails with
   * a retryable `TIMEOUT`, so that a hung model fails over to a fallback. Default: no such limit;
   * a prompt's `firstChunkTimeoutMs` wins over it.
   */
  firstChunkTimeoutMs?: number;
  /**
   * Options whose value names a file the model reads (e.g. markov's `file`). A prompt from outside
   * (`untrusted`) may not set them.
   */
  fileOptions?: readonly string[];
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

/**
 * What the core needs of a model to run a request on it, e.g. as a fallback. A `Model` is one;
 * the interface keeps these contract types free of the classes that implement them.
 */
export interface RunnableModel {
  readonly id: string;
  readonly definition: AsyncModelDefinition;
  /** The key a request runs with; throws `MissingKeyError` when one is needed and absent. */
  resolveKey(explicit?: string): string | undefined;
}

/** A model tried after the first one fails before any output, with the key it runs with. */
export interface FallbackModel {
  model: RunnableModel;
  key?: string;
}

/** What an observer learns when a top-level prompt or chain is created. */
export interface ExecutionStart {
  kind: "prompt" | "chain";
  modelId: string;
  input: PromptInput;
  /** The chain's id for a chain; a fresh `exec_…` id for a single prompt. */
  executionId: string;
  conversationId: string | undefined;
  /** The timeout of each response of this execution, in ms (the prompt's, else the model's). */
  timeoutMs: number;
  /** Drives the execution to completion (errors are left to its consumer); used by groups. */
  complete: () => Promise<void>;
}
