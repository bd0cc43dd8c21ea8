/**
 * The Anthropic Messages API over fetch (POST {baseUrl}/v1/messages), for Anthropic itself and for
 * compatible endpoints, which are configuration, not code.
 */
import { z } from "zod";
import { SwitchboardError } from "../errors.ts";
import { isRecord } from "../json.ts";
import type { CorePlugin } from "../plugin.ts";
import type {
  AsyncModelDefinition,
  Attachment,
  FinishReason,
  HistoryAssistantMessage,
  ModelRequest,
  StreamPart,
  Usage,
} from "../types.ts";
import {
  attachmentBase64,
  bodyReadError,
  type CompatibleEndpointConfig,
  endpointModelConfig,
  type HttpModelConfig,
  type HttpSettings,
  httpModelDefinition,
  type ProviderContext,
  parseEventJson,
  parseToolArguments,
  postJson,
  providerContextFor,
  providerErrorMessage,
  readJsonBody,
  readServerSentEvents,
  streamInterrupted,
} from "./http.ts";

export const ANTHROPIC_VERSION = "2023-06-01";

/** The API requires `max_tokens`; this fits every current model's output limit. */
export const ANTHROPIC_DEFAULT_MAX_TOKENS = 8192;

/**
 * Structured output is implemented as a forced tool call: the schema becomes the input schema of a
 * tool with this name, `tool_choice` forces it, and its input JSON is emitted as the response text.
 * This works on every Claude model and endpoint, unlike the newer, model-dependent output formats.
 */
export const STRUCTURED_OUTPUT_TOOL = "output";

export const anthropicOptions = z.object({
  max_tokens: z.coerce
    .number()
    .int()
    .positive()
    .optional()
    .describe(`Maximum number of tokens to generate (default ${ANTHROPIC_DEFAULT_MAX_TOKENS})`),
  temperature: z.coerce.number().min(0).max(1).optional().describe("Sampling temperature, 0 to 1"),
  top_p: z.coerce.number().min(0).max(1).optional().describe("Nucleus sampling probability mass"),
  top_k: z.coerce.number().int().positive().optional().describe("Sample only from the top K tokens"),
  stop_sequences: z
    .union([z.string(), z.array(z.string())])
    .optional()
    .describe("Sequence(s) that end generation"),
});

export interface AnthropicModelConfig extends HttpModelConfig {
  /** Base URL without the version path, e.g. `https://api.anthropic.com`. */
  baseUrl: string;
  defaultMaxTokens?: number;
}

export function createAnthropicModel(config: AnthropicModelConfig): AsyncModelDefinition {
  const url = `${config.baseUrl.replace(/\/+$/, "")}/v1/messages`;
  return httpModelDefinition(config, { provider: "anthropic", options: anthropicOptions }, (request) =>
    executeMessages(config, url, request),
  );
}

async function* executeMessages(
  config: AnthropicModelConfig,
  url: string,
  request: ModelRequest,
): AsyncGenerator<StreamPart> {
  const context = providerContextFor(config, "anthropic", request);
  const { signal } = request;
  const body = await buildRequestBody(config, request, context);
  const headers: Record<string, string> = { "anthropic-version": ANTHROPIC_VERSION, ...config.headers };
  if (request.key) headers["x-api-key"] = request.key;
  if (request.stream) headers.accept = "text/event-stream";
  const response = await postJson(url, body, context, { ...config.http, headers, signal });

  const structured = request.schema !== undefined;
  if (request.stream) {
    yield* streamedParts(response, signal, context, structured);
  } else {
    yield* messageParts(await readJsonBody(response, signal, context), context, structured);
  }
}

async function buildRequestBody(
  config: AnthropicModelConfig,
  request: ModelRequest,
  context: ProviderContext,
): Promise<Record<string, unknown>> {
  const { max_tokens: maxTokens, stop_sequences: stopSequences, ...sampling } = request.options;
  const body: Record<string, unknown> = {
    model: config.upstreamName ?? config.id,
    max_tokens: maxTokens ?? config.defaultMaxTokens ?? ANTHROPIC_DEFAULT_MAX_TOKENS,
  };
  // The API has one system prompt: instructions given mid-conversation are added to it.
  const systems = [
    request.system,
    ...request.history.map((message) => (message.role === "system" ? message.content : undefined)),
  ];
  const system = systems.filter((text) => text).join("\n\n");
  if (system) body.system = system;
  body.messages = await buildMessages(request, context);

  const tools: Record<string, unknown>[] = request.tools.map((tool) => ({
    name: tool.name,
    ...(tool.description ? { description: tool.description } : {}),
    input_schema: tool.inputSchema ?? { type: "object", properties: {} },
  }));
  if (request.schema) {
    if (request.tools.some((tool) => tool.name === STRUCTURED_OUTPUT_TOOL)) {
      throw new SwitchboardError(
        "UNSUPPORTED",
        `Model ${context.model} uses a tool named "${STRUCTURED_OUTPUT_TOOL}" for structured output; rename your tool.`,
        { provider: context.provider, model: context.model },
      );
    }
    tools.push({
      name: STRUCTURED_OUTPUT_TOOL,
      description: "Give your final answer by calling this tool with it as the input.",
      input_schema: request.schema,
    });
    // With other tools too, "any" lets the model call them first and answer through the output tool.
    body.tool_choice =
      request.tools.length > 0 ? { type: "any" } : { type: "tool", name: STRUCTURED_OUTPUT_TOOL };
  }
  if (tools.length > 0) body.tools = tools;

  for (const [name, value] of Object.entries(sampling)) {
    if (value !== undefined) body[name] = value;
  }
  if (stopSequences !== undefined) {
    body.stop_sequences = typeof stopSequences === "string" ? [stopSequences] : stopSequences;
  }
  if (request.stream) body.stream = true;
  return body;
}

type Block = Record<string, unknown>;
interface Message {
  role: "user" | "assistant";
  content: Block[];
}

/** Tool results and user turns are user messages; answers are assistant messages. */
async function buildMessages(request: ModelRequest, context: ProviderContext): Promise<Message[]> {
  const messages: Message[] = [];
  for (const message of request.history) {
    switch (message.role) {
      case "user":
        pushMessage(messages, "user", await userBlocks(message.content, message.attachments ?? [], context));
        break;
      case "assistant":
        pushMessage(messages, "assistant", assistantBlocks(message));
        break;
      case "tool":
        pushMessage(messages, "user", [toolResultBlock(message)]);
        break;
      case "system":
        break;
    }
  }
  // Tool results answer the previous turn's calls, so they lead the next user message.
  pushMessage(messages, "user", request.toolResults.map(toolResultBlock));
  if (request.prompt || request.attachments.length > 0 || request.toolResults.length === 0) {
    pushMessage(messages, "user", await userBlocks(request.prompt, request.attachments, context));
  }
  return messages;
}

/** The API wants strictly alternating roles, so consecutive turns of one role are merged. */
function pushMessage(messages: Message[], role: Message["role"], blocks: Block[]): void {
  if (blocks.length === 0) return;
  const last = messages.at(-1);
  if (last?.role === role) last.content.push(...blocks);
  else messages.push({ role, content: blocks });
}

function toolResultBlock(result: { toolCallId: string; output: string; error?: string | undefined }): Block {
  return {
    type: "tool_result",
    tool_use_id: result.toolCallId,
    content: result.output,
    ...(result.error !== undefined ? { is_error: true } : {}),
  };
}

async function userBlocks(
  text: string,
  attachments: readonly Attachment[],
  context: ProviderContext,
): Promise<Block[]> {
  const blocks: Block[] = [];
  for (const attachment of attachments) blocks.push(await attachmentBlock(attachment, context));
  if (text || blocks.length === 0) blocks.push({ type: "text", text });
  return blocks;
}

async function attachmentBlock(attachment: Attachment, context: ProviderContext): Promise<Block> {
  const blockType = attachment.type.startsWith("image/")
    ? "image"
    : attachment.type === "application/pdf"
      ? "document"
      : undefined;
  if (!blockType) {
    throw new SwitchboardError(
      "UNSUPPORTED",
      `Model ${context.model} cannot take ${attachment.type} attachments.`,
      {
        provider: context.provider,
        model: context.model,
        type: attachment.type,
      },
    );
  }
  const source =
    attachment.url !== undefined && !attachment.content
      ? { type: "url", url: attachment.url }
      : { type: "base64", media_type: attachment.type, data: await attachmentBase64(attachment, context) };
  return { type: blockType, source };
}

function assistantBlocks(message: HistoryAssistantMessage): Block[] {
  const blocks: Block[] = [];
  if (message.content) blocks.push({ type: "text", text: message.content });
  for (const call of message.toolCalls ?? []) {
    blocks.push({ type: "tool_use", id: call.id, name: call.name, input: call.arguments });
  }
  return blocks;
}

interface RawUsage {
  input_tokens?: number;
  output_tokens?: number;
  cache_read_input_tokens?: number;
  cache_creation_input_tokens?: number;
}

const USAGE_FIELDS = [
  "input_tokens",
  "output_tokens",
  "cache_read_input_tokens",
  "cache_creation_input_tokens",
] as const;

/** `message_start` carries the input counts and `message_delta` the cumulative output counts. */
function mergeUsage(into: RawUsage, raw: unknown): void {
  if (!isRecord(raw)) return;
  for (const field of USAGE_FIELDS) {
    const value = raw[field];
    if (typeof value === "number") into[field] = value;
  }
}

/**
 * Anthropic's `input_tokens` excludes tokens read from or written to the prompt cache. Switchboard's
 * `input` is the total input and `cachedInput` a subset of it, so the three counts are added up.
 */
function anthropicUsage(raw: RawUsage): Usage | undefined {
  const usage: Usage = {};
  const cacheRead = raw.cache_read_input_tokens;
  const cacheWrite = raw.cache_creation_input_tokens;
  if (raw.input_tokens !== undefined) usage.input = raw.input_tokens + (cacheRead ?? 0) + (cacheWrite ?? 0);
  if (raw.output_tokens !== undefined) usage.output = raw.output_tokens;
  if (cacheRead !== undefined) usage.cachedInput = cacheRead;
  if (cacheWrite !== undefined) usage.details = { cacheWrite };
  return Object.keys(usage).length > 0 ? usage : undefined;
}

/** Anthropic's stop reasons in the closed set every provider maps onto. */
export function anthropicFinishReason(stopReason: unknown, answeredThroughOutputTool = false): FinishReason {
  switch (stopReason) {
    case "end_turn":
    case "stop_sequence":
    case undefined:
    case null:
      return "stop";
    case "max_tokens":
    case "model_context_window_exceeded":
      return "length";
    case "tool_use":
      // Structured output arrives through a forced tool call, but it is the answer.
      return answeredThroughOutputTool ? "stop" : "tool-calls";
    case "refusal":
      return "content-filter";
    default:
      return "other";
  }
}

function finishPart(stopReason: unknown, answeredThroughOutputTool: boolean): StreamPart {
  return {
    type: "finish",
    reason: anthropicFinishReason(stopReason, answeredThroughOutputTool),
    ...(typeof stopReason === "string" ? { rawReason: stopReason } : {}),
  };
}

type BlockState =
  | { kind: "text" }
  | { kind: "tool"; id: string; name: string; json: string; input: unknown }
  | { kind: "output"; json: string; input: unknown }
  | { kind: "other" };

async function* streamedParts(
  response: Response,
  signal: AbortSignal,
  context: ProviderContext,
  structured: boolean,
): AsyncGenerator<StreamPart> {
  const status = response.status;
  if (!response.body) throw streamInterrupted(context, status);
  const blocks: BlockState[] = [];
  const rawUsage: RawUsage = {};
  let stopReason: unknown;
  let answeredThroughOutputTool = false;
  let sawStop = false;
  try {
    for await (const event of readServerSentEvents(response.body)) {
      const data = parseEventJson(event.data, context, status);
      switch (data.type) {
        case "message_start": {
          const message = data.message;
          if (isRecord(message)) {
            if (typeof message.model === "string" && message.model) {
              yield { type: "resolved-model", model: message.model };
            }
            mergeUsage(rawUsage, message.usage);
          }
          break;
        }
        case "content_block_start": {
          const block = data.content_block;
          const index = typeof data.index === "number" ? data.index : blocks.length;
          if (!isRecord(block)) break;
          if (block.type === "text") {
            blocks[index] = { kind: "text" };
            if (typeof block.text === "string" && block.text) yield { type: "text", text: block.text };
          } else if (block.type === "tool_use") {
            const name = typeof block.name === "string" ? block.name : "";
            blocks[index] =
              structured && name === STRUCTURED_OUTPUT_TOOL
                ? { kind: "output", json: "", input: block.input }
                : {
                    kind: "tool",
                    id: typeof block.id === "string" ? block.id : "",
                    name,
                    json: "",
                    input: block.input,
                  };
          } else {
            // Thinking and server-tool blocks carry nothing Switchboard reports.
            blocks[index] = { kind: "other" };
          }
          break;
        }
        case "content_block_delta": {
          const delta = data.delta;
          const state = typeof data.index === "number" ? blocks[data.index] : undefined;
          if (!isRecord(delta) || !state) break;
          if (delta.type === "text_delta" && typeof delta.text === "string" && delta.text) {
            yield { type: "text", text: delta.text };
          } else if (delta.type === "input_json_delta" && typeof delta.partial_json === "string") {
            if (state.kind === "output") {
              state.json += delta.partial_json;
              // The structured answer streams as text while the model writes it.
              if (delta.partial_json) yield { type: "text", text: delta.partial_json };
            } else if (state.kind === "tool") {
              state.json += delta.partial_json;
            }
          }
          break;
        }
        case "content_block_stop": {
          const state = typeof data.index === "number" ? blocks[data.index] : undefined;
          if (state?.kind === "tool") {
            yield {
              type: "tool-call",
              ...(state.id ? { id: state.id } : {}),
              name: state.name,
              arguments: state.json
                ? parseToolArguments(state.json, state.name, context)
                : inputObject(state.input),
            };
          } else if (state?.kind === "output") {
            answeredThroughOutputTool = true;
            if (!state.json) yield { type: "text", text: JSON.stringify(inputObject(state.input)) };
          }
          break;
        }
        case "message_delta": {
          if (isRecord(data.delta) && data.delta.stop_reason != null) stopReason = data.delta.stop_reason;
          mergeUsage(rawUsage, data.usage);
          break;
        }
        case "message_stop":
          sawStop = true;
          break;
        case "error":
          throw streamedError(data.error, context, status);
      }
      if (sawStop) break;
    }
  } catch (error) {
    throw bodyReadError(error, signal, context, status);
  }
  if (!sawStop) throw streamInterrupted(context, status);
  const usage = anthropicUsage(rawUsage);
  if (usage) yield { type: "usage", usage };
  yield finishPart(stopReason, answeredThroughOutputTool);
}

function inputObject(input: unknown): Record<string, unknown> {
  return isRecord(input) ? input : {};
}

function* messageParts(
  json: Record<string, unknown>,
  context: ProviderContext,
  structured: boolean,
): Generator<StreamPart> {
  if (json.type === "error") throw streamedError(json.error, context, 200);
  if (typeof json.model === "string" && json.model) yield { type: "resolved-model", model: json.model };
  let answeredThroughOutputTool = false;
  for (const block of Array.isArray(json.content) ? json.content : []) {
    if (!isRecord(block)) continue;
    if (block.type === "text" && typeof block.text === "string" && block.text) {
      yield { type: "text", text: block.text };
    } else if (block.type === "tool_use") {
      const name = typeof block.name === "string" ? block.name : "";
      if (structured && name === STRUCTURED_OUTPUT_TOOL) {
        answeredThroughOutputTool = true;
        yield { type: "text", text: JSON.stringify(inputObject(block.input)) };
      } else {
        yield {
          type: "tool-call",
          ...(typeof block.id === "string" && block.id ? { id: block.id } : {}),
          name,
          arguments: inputObject(block.input),
        };
      }
    }
  }
  const rawUsage: RawUsage = {};
  mergeUsage(rawUsage, json.usage);
  const usage = anthropicUsage(rawUsage);
  if (usage) yield { type: "usage", usage };
  yield finishPart(json.stop_reason, answeredThroughOutputTool);
}

/**
 * An `error` event inside a 200 stream (or an error body with status 200): overload and server
 * errors are worth retrying elsewhere. Its message is scrubbed like an error status's.
 */
function streamedError(error: unknown, context: ProviderContext, status: number): SwitchboardError {
  const errorType = isRecord(error) && typeof error.type === "string" ? error.type : "api_error";
  const message = providerErrorMessage(error) ?? errorType;
  const details = { status, errorType, provider: context.provider, model: context.model };
  if (errorType === "rate_limit_error") {
    return new SwitchboardError(
      "RATE_LIMITED",
      `${context.provider} rate-limited model ${context.model}: ${message}.`,
      details,
      { retryable: true },
    );
  }
  const retryable = errorType === "overloaded_error" || errorType === "api_error";
  return new SwitchboardError(
    "PROVIDER_ERROR",
    `${context.provider} reported ${errorType} for model ${context.model}: ${message}.`,
    details,
    { retryable },
  );
}

export const ANTHROPIC_ATTACHMENT_TYPES = [
  "image/png",
  "image/jpeg",
  "image/gif",
  "image/webp",
  "application/pdf",
] as const;

/** Switchboard ids are dotted; the API's names are hyphenated and answer as aliases too. */
const ANTHROPIC_MODELS: readonly { id: string; upstreamName: string }[] = [
  { id: "claude-opus-4.6", upstreamName: "claude-opus-4-6" },
  { id: "claude-sonnet-4.6", upstreamName: "claude-sonnet-4-6" },
  { id: "claude-haiku-4.5", upstreamName: "claude-haiku-4-5" },
  { id: "claude-opus-4.5", upstreamName: "claude-opus-4-5" },
  { id: "claude-sonnet-4.5", upstreamName: "claude-sonnet-4-5" },
  { id: "claude-opus-4.1", upstreamName: "claude-opus-4-1" },
  { id: "claude-sonnet-4", upstreamName: "claude-sonnet-4-0" },
];

export interface AnthropicPluginOptions {
  /** Overrides the base URL (else `ANTHROPIC_BASE_URL`, else the public API). */
  baseUrl?: string;
  http?: HttpSettings;
}

/** The Claude models. `ANTHROPIC_BASE_URL` is read when models are registered, never at import. */
export function anthropicPlugin(pluginOptions: AnthropicPluginOptions = {}): CorePlugin {
  return {
    name: "anthropic",
    registerModels({ register }) {
      const baseUrl =
        pluginOptions.baseUrl ?? (process.env.ANTHROPIC_BASE_URL || "https://api.anthropic.com");
      for (const entry of ANTHROPIC_MODELS) {
        register(
          createAnthropicModel({
            id: entry.id,
            upstreamName: entry.upstreamName,
            aliases: [entry.upstreamName],
            baseUrl,
            needsKey: "anthropic",
            keyEnvVar: "ANTHROPIC_API_KEY",
            provider: "anthropic",
            capabilities: { attachmentTypes: ANTHROPIC_ATTACHMENT_TYPES },
            ...(pluginOptions.http ? { http: pluginOptions.http } : {}),
          }),
        );
      }
    },
  };
}

/** An extra endpoint speaking the Anthropic Messages API, as configuration. */
export function anthropicCompatiblePlugin(endpoint: CompatibleEndpointConfig): CorePlugin {
  return {
    name: endpoint.name,
    registerModels({ register }) {
      for (const model of endpoint.models)
        register(createAnthropicModel(endpointModelConfig(endpoint, model)));
    },
  };
}
