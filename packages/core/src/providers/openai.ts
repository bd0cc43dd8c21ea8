/**
 * The OpenAI Chat Completions wire format over fetch, for OpenAI itself and for every compatible
 * endpoint (Ollama, vLLM, llama.cpp server, OpenRouter, Groq…), which are configuration, not code.
 */
import { z } from "zod";
import { SwitchboardError } from "../errors.ts";
import type { CorePlugin } from "../plugin.ts";
import type {
  AsyncModelDefinition,
  Attachment,
  Exchange,
  ModelRequest,
  PromptInput,
  StreamPart,
  Usage,
} from "../types.ts";
import {
  attachmentBase64,
  bodyReadError,
  type CompatibleEndpointConfig,
  DEFAULT_TIMEOUT_MS,
  endpointModelConfig,
  type HttpModelConfig,
  type HttpSettings,
  httpModelDefinition,
  isRecord,
  type ProviderContext,
  parseEventJson,
  parseToolArguments,
  postJson,
  providerContextFor,
  readJsonBody,
  readServerSentEvents,
  requestSignal,
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
  const { signal, dispose } = requestSignal(request.signal, context.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  try {
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
  } finally {
    dispose();
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

async function buildMessages(request: ModelRequest, context: ProviderContext): Promise<Message[]> {
  const messages: Message[] = [];
  // A conversation's system prompt is usually given on its first turn only.
  const system =
    request.system || request.history.findLast((exchange) => exchange.input.system)?.input.system;
  if (system) messages.push({ role: "system", content: system });
  for (const exchange of request.history) {
    await pushInput(messages, exchange.input, context);
    messages.push(assistantMessage(exchange));
  }
  await pushInput(messages, request, context);
  return messages;
}

/** Tool results answer the previous turn's calls, so they come before this turn's user message. */
async function pushInput(messages: Message[], input: PromptInput, context: ProviderContext): Promise<void> {
  for (const result of input.toolResults) {
    messages.push({ role: "tool", tool_call_id: result.toolCallId, content: result.output });
  }
  if (input.prompt || input.attachments.length > 0 || input.toolResults.length === 0) {
    messages.push({ role: "user", content: await userContent(input, context) });
  }
}

async function userContent(input: PromptInput, context: ProviderContext): Promise<string | Message[]> {
  if (input.attachments.length === 0) return input.prompt;
  const parts: Message[] = [];
  if (input.prompt) parts.push({ type: "text", text: input.prompt });
  for (const attachment of input.attachments) parts.push(await attachmentPart(attachment, context));
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

function assistantMessage(exchange: Exchange): Message {
  if (exchange.toolCalls.length === 0) return { role: "assistant", content: exchange.text };
  return {
    role: "assistant",
    content: exchange.text || null,
    tool_calls: exchange.toolCalls.map((call) => ({
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
      if (chunk.error !== undefined) throw streamedError(chunk.error, context, status);
      if (!resolvedModel && typeof chunk.model === "string" && chunk.model) {
        resolvedModel = true;
        yield { type: "resolved-model", model: chunk.model };
      }
      const choice = Array.isArray(chunk.choices) ? chunk.choices[0] : undefined;
      if (isRecord(choice)) {
        const delta = choice.delta;
        if (isRecord(delta)) {
          if (typeof delta.content === "string" && delta.content) yield { type: "text", text: delta.content };
          if (Array.isArray(delta.tool_calls)) collectToolCallDeltas(toolCalls, delta.tool_calls);
        }
        if (typeof choice.finish_reason === "string") finishReason = choice.finish_reason;
      }
      if (isRecord(chunk.usage)) usage = openaiUsage(chunk.usage);
    }
  } catch (error) {
    throw bodyReadError(error, signal, context, status);
  }
  // The usage chunk follows the finish_reason chunk, so either marks a complete answer.
  if (!sawDone && finishReason === undefined) throw streamInterrupted(context, status);
  for (const call of toolCalls) {
    if (!call) continue;
    const name = call.name ?? "";
    yield {
      type: "tool-call",
      ...(call.id ? { id: call.id } : {}),
      name,
      arguments: parseToolArguments(call.arguments, name, context),
    };
  }
  if (usage) yield { type: "usage", usage };
  yield { type: "finish", reason: finishReason ?? "stop" };
}

/** The id and name come in a call's first delta, its arguments as JSON fragments over later ones. */
function collectToolCallDeltas(toolCalls: PendingToolCall[], deltas: unknown[]): void {
  for (const [position, delta] of deltas.entries()) {
    if (!isRecord(delta)) continue;
    const index = typeof delta.index === "number" ? delta.index : position;
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
}

function* completionParts(json: Record<string, unknown>, context: ProviderContext): Generator<StreamPart> {
  if (json.error !== undefined) throw streamedError(json.error, context, 200);
  if (typeof json.model === "string" && json.model) yield { type: "resolved-model", model: json.model };
  const choice = Array.isArray(json.choices) ? json.choices[0] : undefined;
  const message = isRecord(choice) ? choice.message : undefined;
  if (!isRecord(choice) || !isRecord(message)) {
    throw new SwitchboardError(
      "PROVIDER_ERROR",
      `${context.provider} returned no answer for model ${context.model}.`,
      {
        status: 200,
        retryable: true,
        provider: context.provider,
        model: context.model,
      },
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
  yield { type: "finish", reason: typeof choice.finish_reason === "string" ? choice.finish_reason : "stop" };
}

/** Some compatible servers (OpenRouter, vLLM) report an upstream failure as an `error` in a 200 stream. */
function streamedError(error: unknown, context: ProviderContext, status: number): SwitchboardError {
  const message = isRecord(error) && typeof error.message === "string" ? error.message : "unknown error";
  return new SwitchboardError(
    "PROVIDER_ERROR",
    `${context.provider} reported an error for model ${context.model}: ${message.slice(0, 300)}.`,
    { status, retryable: true, provider: context.provider, model: context.model },
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

// gpt-5.4-pro is left out on purpose: the pro models are served by the Responses API only, and a
// Chat Completions request for them fails.
const OPENAI_MODELS: readonly OpenAIModelEntry[] = [
  { id: "gpt-5.4", reasoning: true },
  { id: "gpt-5.4-mini", reasoning: true },
  { id: "gpt-5.4-nano", reasoning: true },
  { id: "gpt-5.4-pro", reasoning: true },
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
