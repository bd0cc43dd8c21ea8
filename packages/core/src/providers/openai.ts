/**
 * The OpenAI Chat Completions wire format over fetch, for OpenAI itself and for every compatible
 * endpoint (Ollama, vLLM, llama.cpp server, OpenRouter, Groq…), which are configuration, not code.
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
  HistoryMessage,
  ModelRequest,
  StreamPart,
  ToolResult,
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

const tokenCount = z.coerce.number().int().positive();

/** Sampling options of chat models (and of most compatible servers). */
export const openaiChatOptions = z.object({
  temperature: z.coerce.number().min(0).max(2).optional().describe("Sampling temperature, 0 to 2"),
  top_p: z.coerce.number().min(0).max(1).optional().describe("Nucleus sampling probability mass"),
  max_tokens: tokenCount.optional().describe("Maximum number of tokens to generate"),
  seed: z.coerce.number().int().optional().describe("Seed for best-effort deterministic sampling"),
  stop: z
    .union([z.string(), z.array(z.string())])
    .optional()
    .describe("Sequence(s) that end generation"),
  frequency_penalty: z.coerce.number().min(-2).max(2).optional().describe("Penalise frequent tokens"),
  presence_penalty: z.coerce.number().min(-2).max(2).optional().describe("Penalise tokens already present"),
});

/** Reasoning models (o-series, GPT-5 family) reject sampling options and take an effort level. */
export const openaiReasoningOptions = z.object({
  max_tokens: tokenCount.optional().describe("Maximum number of tokens to generate, reasoning included"),
  seed: z.coerce.number().int().optional().describe("Seed for best-effort deterministic sampling"),
  reasoning_effort: z
    .enum(["none", "minimal", "low", "medium", "high", "xhigh"])
    .optional()
    .describe("How much the model reasons before answering (supported levels vary by model)"),
});

export interface OpenAIModelConfig extends HttpModelConfig {
  /** Base URL including the version path, e.g. `https://api.openai.com/v1`. */
  baseUrl: string;
  /** OpenAI itself renamed `max_tokens`; most compatible servers only know the old name. */
  maxTokensField?: "max_tokens" | "max_completion_tokens";
}

export function createOpenAIModel(config: OpenAIModelConfig): AsyncModelDefinition {
  const url = `${config.baseUrl.replace(/\/+$/, "")}/chat/completions`;
  return httpModelDefinition(config, { provider: "openai", options: openaiChatOptions }, (request) =>
    executeChatCompletion(config, url, request),
  );
}

async function* executeChatCompletion(
  config: OpenAIModelConfig,
  url: string,
  request: ModelRequest,
): AsyncGenerator<StreamPart> {
  const context = providerContextFor(config, "openai", request);
  const { signal } = request;
  const body = await buildRequestBody(config, request, context);
  const headers: Record<string, string> = { ...config.headers };
  if (request.key) headers.authorization = `Bearer ${request.key}`;
  if (request.stream) headers.accept = "text/event-stream";
  const response = await postJson(url, body, context, { ...config.http, headers, signal });

  if (request.stream) {
    yield* streamedParts(response, signal, context);
  } else {
    yield* completionParts(await readJsonBody(response, signal, context), context);
  }
}

async function buildRequestBody(
  config: OpenAIModelConfig,
  request: ModelRequest,
  context: ProviderContext,
): Promise<Record<string, unknown>> {
  const body: Record<string, unknown> = {
    model: config.upstreamName ?? config.id,
    messages: await buildMessages(request, context),
  };
  if (request.tools.length > 0) {
    body.tools = request.tools.map((tool) => ({
      type: "function",
      function: {
        name: tool.name,
        ...(tool.description ? { description: tool.description } : {}),
        parameters: tool.inputSchema ?? { type: "object", properties: {} },
      },
    }));
  }
  if (request.schema) {
    // Not `strict`: strict mode rejects schemas that leave properties optional or open.
    body.response_format = { type: "json_schema", json_schema: { name: "output", schema: request.schema } };
  }
  const maxTokensField = config.maxTokensField ?? "max_tokens";
  for (const [name, value] of Object.entries(request.options)) {
    if (value !== undefined) body[name === "max_tokens" ? maxTokensField : name] = value;
  }
  if (request.stream) {
    body.stream = true;
    body.stream_options = { include_usage: true };
  }
  return body;
}

type Message = Record<string, unknown>;

/** The history's messages map one to one onto the wire's; the current prompt comes last. */
async function buildMessages(request: ModelRequest, context: ProviderContext): Promise<Message[]> {
  const messages: Message[] = [];
  if (request.system) messages.push({ role: "system", content: request.system });
  for (const message of request.history) messages.push(await historyMessage(message, context));
  // Tool results answer the previous turn's calls, so they come before this turn's user message.
  for (const result of request.toolResults) messages.push(toolMessage(result));
  if (request.prompt || request.attachments.length > 0 || request.toolResults.length === 0) {
    messages.push({ role: "user", content: await userContent(request.prompt, request.attachments, context) });
  }
  return messages;
}

async function historyMessage(
  message: HistoryMessage<Attachment>,
  context: ProviderContext,
): Promise<Message> {
  switch (message.role) {
    case "system":
      return { role: "system", content: message.content };
    case "user":
      return {
        role: "user",
        content: await userContent(message.content, message.attachments ?? [], context),
      };
    case "assistant":
      return assistantMessage(message);
    case "tool":
      return toolMessage(message);
  }
}

function toolMessage(result: Pick<ToolResult, "toolCallId" | "output">): Message {
  return { role: "tool", tool_call_id: result.toolCallId, content: result.output };
}

async function userContent(
  text: string,
  attachments: readonly Attachment[],
  context: ProviderContext,
): Promise<string | Message[]> {
  if (attachments.length === 0) return text;
  const parts: Message[] = [];
  if (text) parts.push({ type: "text", text });
  for (const attachment of attachments) parts.push(await attachmentPart(attachment, context));
  return parts;
}

const AUDIO_FORMATS: Record<string, string> = {
  "audio/wav": "wav",
  "audio/x-wav": "wav",
  "audio/mpeg": "mp3",
};

async function attachmentPart(attachment: Attachment, context: ProviderContext): Promise<Message> {
  if (attachment.type.startsWith("image/")) {
    const url =
      attachment.url !== undefined && !attachment.content
        ? attachment.url
        : `data:${attachment.type};base64,${await attachmentBase64(attachment, context)}`;
    return { type: "image_url", image_url: { url } };
  }
  const audioFormat = AUDIO_FORMATS[attachment.type];
  if (audioFormat && attachment.url === undefined) {
    return {
      type: "input_audio",
      input_audio: { data: await attachmentBase64(attachment, context), format: audioFormat },
    };
  }
  throw new SwitchboardError(
    "UNSUPPORTED",
    `Model ${context.model} cannot take ${attachment.type} attachments${attachment.url ? " by URL" : ""}.`,
    { provider: context.provider, model: context.model, type: attachment.type },
  );
}

function assistantMessage(message: HistoryAssistantMessage): Message {
  const toolCalls = message.toolCalls ?? [];
  if (toolCalls.length === 0) return { role: "assistant", content: message.content };
  return {
    role: "assistant",
    content: message.content || null,
    tool_calls: toolCalls.map((call) => ({
      id: call.id,
      type: "function",
      function: { name: call.name, arguments: JSON.stringify(call.arguments) },
    })),
  };
}

interface PendingToolCall {
  id?: string;
  name?: string;
  arguments: string;
}

async function* streamedParts(
  response: Response,
  signal: AbortSignal,
  context: ProviderContext,
): AsyncGenerator<StreamPart> {
  const status = response.status;
  if (!response.body) throw streamInterrupted(context, status);
  const toolCalls: PendingToolCall[] = [];
  // Calls stream one after another: a call is complete once the next one starts or the answer ends.
  let toolCallsYielded = 0;
  const completedToolCalls = function* (upTo: number): Generator<StreamPart> {
    for (; toolCallsYielded < upTo; toolCallsYielded++) {
      const call = toolCalls[toolCallsYielded];
      if (call) yield toolCallPart(call, context);
    }
  };
  let resolvedModel = false;
  let finishReason: string | undefined;
  let usage: Usage | undefined;
  let sawDone = false;
  try {
    for await (const event of readServerSentEvents(response.body)) {
      if (event.data === "[DONE]") {
        sawDone = true;
        break;
      }
      const chunk = parseEventJson(event.data, context, status);
      if (chunk.error !== undefined && chunk.error !== null)
        throw streamedError(chunk.error, context, status);
      if (!resolvedModel && typeof chunk.model === "string" && chunk.model) {
        resolvedModel = true;
        yield { type: "resolved-model", model: chunk.model };
      }
      const choice = Array.isArray(chunk.choices) ? chunk.choices[0] : undefined;
      if (isRecord(choice)) {
        const delta = choice.delta;
        if (isRecord(delta)) {
          if (typeof delta.content === "string" && delta.content) yield { type: "text", text: delta.content };
          if (Array.isArray(delta.tool_calls)) {
            yield* completedToolCalls(collectToolCallDeltas(toolCalls, delta.tool_calls));
          }
        }
        if (typeof choice.finish_reason === "string") {
          finishReason = choice.finish_reason;
          yield* completedToolCalls(toolCalls.length);
        }
      }
      if (isRecord(chunk.usage)) usage = openaiUsage(chunk.usage);
    }
  } catch (error) {
    throw bodyReadError(error, signal, context, status);
  }
  // The usage chunk follows the finish_reason chunk, so either marks a complete answer.
  if (!sawDone && finishReason === undefined) throw streamInterrupted(context, status);
  yield* completedToolCalls(toolCalls.length);
  if (usage) yield { type: "usage", usage };
  yield finishPart(finishReason);
}

function toolCallPart(call: PendingToolCall, context: ProviderContext): StreamPart {
  const name = call.name ?? "";
  return {
    type: "tool-call",
    ...(call.id ? { id: call.id } : {}),
    name,
    arguments: parseToolArguments(call.arguments, name, context),
  };
}

/** OpenAI's finish reasons in the closed set every provider maps onto; the raw value is kept. */
export function openaiFinishReason(raw: string | undefined): FinishReason {
  switch (raw) {
    case undefined:
    case "stop":
      return "stop";
    case "length":
      return "length";
    case "tool_calls":
    case "function_call":
      return "tool-calls";
    case "content_filter":
      return "content-filter";
    default:
      return "other";
  }
}

function finishPart(raw: string | undefined): StreamPart {
  return {
    type: "finish",
    reason: openaiFinishReason(raw),
    ...(raw === undefined ? {} : { rawReason: raw }),
  };
}

/**
 * The id and name come in a call's first delta, its arguments as JSON fragments over later ones.
 * Returns the lowest call index this batch touched: every call before it is complete.
 */
function collectToolCallDeltas(toolCalls: PendingToolCall[], deltas: unknown[]): number {
  let lowest = Number.POSITIVE_INFINITY;
  for (const [position, delta] of deltas.entries()) {
    if (!isRecord(delta)) continue;
    const index = typeof delta.index === "number" ? delta.index : position;
    lowest = Math.min(lowest, index);
    let call = toolCalls[index];
    if (!call) {
      call = { arguments: "" };
      toolCalls[index] = call;
    }
    if (typeof delta.id === "string" && delta.id && !call.id) call.id = delta.id;
    const fn = delta.function;
    if (!isRecord(fn)) continue;
    if (typeof fn.name === "string" && fn.name && !call.name) call.name = fn.name;
    if (typeof fn.arguments === "string") call.arguments += fn.arguments;
  }
  return Number.isFinite(lowest) ? lowest : 0;
}

function* completionParts(json: Record<string, unknown>, context: ProviderContext): Generator<StreamPart> {
  if (json.error !== undefined && json.error !== null) throw streamedError(json.error, context, 200);
  if (typeof json.model === "string" && json.model) yield { type: "resolved-model", model: json.model };
  const choice = Array.isArray(json.choices) ? json.choices[0] : undefined;
  const message = isRecord(choice) ? choice.message : undefined;
  if (!isRecord(choice) || !isRecord(message)) {
    throw new SwitchboardError(
      "PROVIDER_ERROR",
      `${context.provider} returned no answer for model ${context.model}.`,
      { status: 200, provider: context.provider, model: context.model },
      { retryable: true },
    );
  }
  // A refusal replaces the content when the model declines a structured-output request.
  const text = typeof message.content === "string" ? message.content : message.refusal;
  if (typeof text === "string" && text) yield { type: "text", text };
  if (Array.isArray(message.tool_calls)) {
    for (const call of message.tool_calls) {
      if (!isRecord(call) || !isRecord(call.function)) continue;
      const name = typeof call.function.name === "string" ? call.function.name : "";
      const args = typeof call.function.arguments === "string" ? call.function.arguments : "";
      yield {
        type: "tool-call",
        ...(typeof call.id === "string" && call.id ? { id: call.id } : {}),
        name,
        arguments: parseToolArguments(args, name, context),
      };
    }
  }
  if (isRecord(json.usage)) yield { type: "usage", usage: openaiUsage(json.usage) };
  yield finishPart(typeof choice.finish_reason === "string" ? choice.finish_reason : undefined);
}

/**
 * Some compatible servers (OpenRouter, vLLM) report an upstream failure as an `error` in a 200
 * stream or body. Its message is scrubbed like an error status's: it may quote the key.
 */
function streamedError(error: unknown, context: ProviderContext, status: number): SwitchboardError {
  const message = providerErrorMessage(error) ?? "unknown error";
  return new SwitchboardError(
    "PROVIDER_ERROR",
    `${context.provider} reported an error for model ${context.model}: ${message}.`,
    { status, provider: context.provider, model: context.model },
    { retryable: true },
  );
}

function openaiUsage(raw: Record<string, unknown>): Usage {
  const usage: Usage = {};
  if (typeof raw.prompt_tokens === "number") usage.input = raw.prompt_tokens;
  if (typeof raw.completion_tokens === "number") usage.output = raw.completion_tokens;
  const promptDetails = raw.prompt_tokens_details;
  if (isRecord(promptDetails) && typeof promptDetails.cached_tokens === "number") {
    usage.cachedInput = promptDetails.cached_tokens;
  }
  const completionDetails = raw.completion_tokens_details;
  if (isRecord(completionDetails) && typeof completionDetails.reasoning_tokens === "number") {
    usage.details = { reasoning: completionDetails.reasoning_tokens };
  }
  return usage;
}

export const OPENAI_IMAGE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp"] as const;

interface OpenAIModelEntry {
  id: string;
  reasoning: boolean;
  aliases?: readonly string[];
}

// These models speak Chat Completions. gpt-5.4-pro is not among them: OpenAI serves the pro models
// on the Responses API only, and a Chat Completions request for one fails.
const OPENAI_MODELS: readonly OpenAIModelEntry[] = [
  { id: "gpt-5.4", reasoning: true },
  { id: "gpt-5.4-mini", reasoning: true },
  { id: "gpt-5.4-nano", reasoning: true },
  { id: "gpt-5", reasoning: true },
  { id: "gpt-5-mini", reasoning: true },
  { id: "gpt-5-nano", reasoning: true },
  { id: "gpt-4.1", reasoning: false, aliases: ["4.1"] },
  { id: "gpt-4.1-mini", reasoning: false, aliases: ["4.1-mini"] },
  { id: "gpt-4.1-nano", reasoning: false, aliases: ["4.1-nano"] },
  { id: "gpt-4o", reasoning: false, aliases: ["4o"] },
  { id: "gpt-4o-mini", reasoning: false, aliases: ["4o-mini"] },
  { id: "o3", reasoning: true },
  { id: "o4-mini", reasoning: true },
];

export interface OpenAIPluginOptions {
  /** Overrides the base URL (else `OPENAI_BASE_URL`, else the public API). */
  baseUrl?: string;
  http?: HttpSettings;
}

/** The OpenAI models. `OPENAI_BASE_URL` is read when models are registered, never at import. */
export function openaiPlugin(pluginOptions: OpenAIPluginOptions = {}): CorePlugin {
  return {
    name: "openai",
    registerModels({ register }) {
      const baseUrl = pluginOptions.baseUrl ?? (process.env.OPENAI_BASE_URL || "https://api.openai.com/v1");
      for (const entry of OPENAI_MODELS) {
        register(
          createOpenAIModel({
            id: entry.id,
            baseUrl,
            needsKey: "openai",
            keyEnvVar: "OPENAI_API_KEY",
            provider: "openai",
            capabilities: { attachmentTypes: OPENAI_IMAGE_TYPES },
            options: entry.reasoning ? openaiReasoningOptions : openaiChatOptions,
            maxTokensField: "max_completion_tokens",
            ...(entry.aliases ? { aliases: entry.aliases } : {}),
            ...(pluginOptions.http ? { http: pluginOptions.http } : {}),
          }),
        );
      }
    },
  };
}

/** An OpenAI-compatible endpoint (Ollama, vLLM, llama.cpp server, OpenRouter, Groq…) as configuration. */
export function openaiCompatiblePlugin(endpoint: CompatibleEndpointConfig): CorePlugin {
  return {
    name: endpoint.name,
    registerModels({ register }) {
      for (const model of endpoint.models) {
        register(createOpenAIModel(endpointModelConfig(endpoint, model)));
      }
    },
  };
}
