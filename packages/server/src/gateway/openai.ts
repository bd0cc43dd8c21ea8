/**
 * OpenAI Chat Completions on the wire: request JSON → `ChatRequest`, and `ChatPart`s → a completion
 * object or `chat.completion.chunk` server-sent events that the SDK's `stream()` helper accepts.
 */
import type { FinishReason, ToolCall, ToolDefinition, Usage } from "@switchboard/core";
import { type HttpProblem, wireErrorObject } from "../errors.ts";
import type {
  ChatAttachment,
  ChatRequest,
  ChatToolResult,
  ChatTurn,
  StreamEncoder,
  ToolChoice,
} from "./chat.ts";
import {
  attachmentFromUrl,
  invalid,
  isRecord,
  optionalBoolean,
  positiveInteger,
  requireArray,
  requireRecord,
  requireString,
  toolArguments,
} from "./wire-input.ts";

/** Fields read by the parser itself; every other non-null field is a generation option. */
const HANDLED_FIELDS = new Set([
  "model",
  "messages",
  "tools",
  "tool_choice",
  "response_format",
  "max_tokens",
  "max_completion_tokens",
  "n",
  "stream",
  "stream_options",
  "parallel_tool_calls",
  "logprobs",
]);

/** Fields that only label or route the request upstream; they change nothing about the answer. */
const IGNORED_FIELDS = new Set([
  "user",
  "metadata",
  "store",
  "safety_identifier",
  "prompt_cache_key",
  "service_tier",
]);

export function parseOpenAIRequest(body: unknown): ChatRequest {
  const root = requireRecord(body, "body");
  const model = requireString(root.model, "model");
  if (root.n !== undefined && root.n !== null && root.n !== 1) {
    throw invalid("n", "Switchboard returns one choice per request; send n: 1 (or leave it out).");
  }
  const { system, turns } = parseMessages(requireArray(root.messages, "messages"));
  const request: ChatRequest = {
    model,
    turns,
    tools: root.tools === undefined || root.tools === null ? [] : parseTools(root.tools),
    options: {},
    stream: optionalBoolean(root.stream, "stream") ?? false,
    includeUsage: false,
  };
  if (system !== undefined) request.system = system;
  if (request.stream && isRecord(root.stream_options)) {
    request.includeUsage =
      optionalBoolean(root.stream_options.include_usage, "stream_options.include_usage") ?? false;
  }
  const toolChoice = parseToolChoice(root.tool_choice);
  if (toolChoice !== undefined) request.toolChoice = toolChoice;
  const schema = parseResponseFormat(root.response_format);
  if (schema !== undefined) request.schema = schema;
  const maxTokens = root.max_completion_tokens ?? root.max_tokens;
  if (maxTokens !== undefined && maxTokens !== null) {
    const field = root.max_completion_tokens == null ? "max_tokens" : "max_completion_tokens";
    request.maxTokens = positiveInteger(maxTokens, field);
  }
  if (root.parallel_tool_calls === false) request.options.parallel_tool_calls = false;
  if (root.logprobs === true) request.options.logprobs = true;
  for (const [name, value] of Object.entries(root)) {
    if (value === null || value === undefined || HANDLED_FIELDS.has(name) || IGNORED_FIELDS.has(name))
      continue;
    request.options[name] = value;
  }
  return request;
}

function textOf(content: unknown, param: string): string {
  if (content === null || content === undefined) return "";
  if (typeof content === "string") return content;
  const parts = requireArray(content, param);
  let text = "";
  for (const [index, part] of parts.entries()) {
    const record = requireRecord(part, `${param}[${index}]`);
    if (record.type === "text") text += requireString(record.text, `${param}[${index}].text`);
    else if (record.type === "refusal") text += requireString(record.refusal, `${param}[${index}].refusal`);
    else
      throw invalid(`${param}[${index}].type`, `expected "text" here (got ${JSON.stringify(record.type)}).`);
  }
  return text;
}

function userContent(content: unknown, param: string): { text: string; attachments: ChatAttachment[] } {
  if (typeof content === "string") return { text: content, attachments: [] };
  const parts = requireArray(content, param);
  const texts: string[] = [];
  const attachments: ChatAttachment[] = [];
  for (const [index, part] of parts.entries()) {
    const where = `${param}[${index}]`;
    const record = requireRecord(part, where);
    switch (record.type) {
      case "text":
        texts.push(requireString(record.text, `${where}.text`));
        break;
      case "image_url": {
        const image = requireRecord(record.image_url, `${where}.image_url`);
        attachments.push(
          attachmentFromUrl(requireString(image.url, `${where}.image_url.url`), `${where}.image_url.url`),
        );
        break;
      }
      case "input_audio": {
        const audio = requireRecord(record.input_audio, `${where}.input_audio`);
        const format = requireString(audio.format, `${where}.input_audio.format`);
        const data = requireString(audio.data, `${where}.input_audio.data`);
        const type = format === "mp3" ? "audio/mpeg" : `audio/${format}`;
        attachments.push(attachmentFromUrl(`data:${type};base64,${data}`, `${where}.input_audio.data`));
        break;
      }
      case "file": {
        const file = requireRecord(record.file, `${where}.file`);
        if (typeof file.file_data !== "string") {
          throw invalid(
            `${where}.file`,
            "send the file inline as file_data (a data: URL); file ids are not supported.",
          );
        }
        attachments.push(attachmentFromUrl(file.file_data, `${where}.file.file_data`));
        break;
      }
      default:
        throw invalid(`${where}.type`, `unsupported content part ${JSON.stringify(record.type)}.`);
    }
  }
  return { text: texts.join("\n"), attachments };
}

function parseMessages(messages: unknown[]): { system: string | undefined; turns: ChatTurn[] } {
  if (messages.length === 0) throw invalid("messages", "send at least one message.");
  const systems: string[] = [];
  const turns: ChatTurn[] = [];
  const toolNames = new Map<string, string>();
  const userTurn = () => {
    const last = turns.at(-1);
    if (last?.role === "user") return last;
    const turn: ChatTurn = { role: "user", text: "", attachments: [], toolResults: [] };
    turns.push(turn);
    return turn;
  };
  for (const [index, raw] of messages.entries()) {
    const where = `messages[${index}]`;
    const message = requireRecord(raw, where);
    switch (message.role) {
      case "system":
      case "developer":
        systems.push(textOf(message.content, `${where}.content`));
        break;
      case "user": {
        const { text, attachments } = userContent(message.content, `${where}.content`);
        const turn = userTurn();
        turn.text = turn.text ? `${turn.text}\n${text}` : text;
        turn.attachments.push(...attachments);
        break;
      }
      case "assistant": {
        const toolCalls: ToolCall[] = [];
        if (message.tool_calls !== undefined && message.tool_calls !== null) {
          for (const [callIndex, rawCall] of requireArray(
            message.tool_calls,
            `${where}.tool_calls`,
          ).entries()) {
            const callWhere = `${where}.tool_calls[${callIndex}]`;
            const call = requireRecord(rawCall, callWhere);
            const fn = requireRecord(call.function, `${callWhere}.function`);
            const toolCall: ToolCall = {
              id: requireString(call.id, `${callWhere}.id`),
              name: requireString(fn.name, `${callWhere}.function.name`),
              arguments: toolArguments(fn.arguments, `${callWhere}.function.arguments`),
            };
            toolNames.set(toolCall.id, toolCall.name);
            toolCalls.push(toolCall);
          }
        }
        const text = textOf(message.content, `${where}.content`);
        const last = turns.at(-1);
        if (last?.role === "assistant") {
          last.text += text;
          last.toolCalls.push(...toolCalls);
        } else {
          turns.push({ role: "assistant", text, toolCalls });
        }
        break;
      }
      case "tool": {
        const toolCallId = requireString(message.tool_call_id, `${where}.tool_call_id`);
        const name = toolNames.get(toolCallId);
        if (name === undefined) {
          throw invalid(
            `${where}.tool_call_id`,
            `no earlier assistant message has a tool call with id ${toolCallId}.`,
          );
        }
        const result: ChatToolResult = {
          toolCallId,
          name,
          output: textOf(message.content, `${where}.content`),
        };
        userTurn().toolResults.push(result);
        break;
      }
      default:
        throw invalid(
          `${where}.role`,
          `expected system, developer, user, assistant or tool (got ${JSON.stringify(message.role)}).`,
        );
    }
  }
  if (turns.at(-1)?.role !== "user") {
    throw invalid(
      "messages",
      "the last message must be a user or tool message: it is what the model answers.",
    );
  }
  return { system: systems.length > 0 ? systems.join("\n\n") : undefined, turns };
}

function parseTools(raw: unknown): ToolDefinition[] {
  return requireArray(raw, "tools").map((entry, index) => {
    const where = `tools[${index}]`;
    const tool = requireRecord(entry, where);
    if (tool.type !== "function") throw invalid(`${where}.type`, 'only "function" tools are supported.');
    const fn = requireRecord(tool.function, `${where}.function`);
    const definition: ToolDefinition = { name: requireString(fn.name, `${where}.function.name`) };
    if (typeof fn.description === "string") definition.description = fn.description;
    if (fn.parameters !== undefined && fn.parameters !== null) {
      definition.inputSchema = requireRecord(fn.parameters, `${where}.function.parameters`);
    }
    return definition;
  });
}

function parseToolChoice(raw: unknown): ToolChoice | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (raw === "auto" || raw === "none" || raw === "required") return raw;
  const choice = requireRecord(raw, "tool_choice");
  if (choice.type === "function") {
    const fn = requireRecord(choice.function, "tool_choice.function");
    return { name: requireString(fn.name, "tool_choice.function.name") };
  }
  throw invalid(
    "tool_choice",
    'expected "auto", "none", "required" or {"type": "function", "function": {"name"}}.',
  );
}

function parseResponseFormat(raw: unknown): Record<string, unknown> | undefined {
  if (raw === undefined || raw === null) return undefined;
  const format = requireRecord(raw, "response_format");
  switch (format.type) {
    case "text":
      return undefined;
    case "json_object":
      return { type: "object" };
    case "json_schema": {
      const spec = requireRecord(format.json_schema, "response_format.json_schema");
      return spec.schema === undefined
        ? { type: "object" }
        : requireRecord(spec.schema, "response_format.json_schema.schema");
    }
    default:
      throw invalid("response_format.type", 'expected "text", "json_object" or "json_schema".');
  }
}

// ---------------------------------------------------------------------------------------------
// Responses

const FINISH_REASONS: Record<FinishReason, string> = {
  stop: "stop",
  length: "length",
  "tool-calls": "tool_calls",
  "content-filter": "content_filter",
  error: "stop",
  other: "stop",
};

export function openaiFinishReason(reason: FinishReason): string {
  return FINISH_REASONS[reason];
}

/** OpenAI's usage object, or undefined when the model reported no token counts at all. */
export function openaiUsage(usage: Usage): Record<string, unknown> | undefined {
  if (usage.input === undefined && usage.output === undefined) return undefined;
  const input = usage.input ?? 0;
  const output = usage.output ?? 0;
  return {
    prompt_tokens: input,
    completion_tokens: output,
    total_tokens: input + output,
    prompt_tokens_details: { cached_tokens: usage.cachedInput ?? 0 },
  };
}

function wireToolCall(call: ToolCall) {
  return {
    id: call.id,
    type: "function",
    function: { name: call.name, arguments: JSON.stringify(call.arguments) },
  };
}

export interface CompletionMeta {
  id: string;
  created: number;
  model: string;
}

export function openaiCompletion(
  meta: CompletionMeta,
  answer: { text: string; toolCalls: readonly ToolCall[]; finish: FinishReason; usage: Usage },
): Record<string, unknown> {
  const message: Record<string, unknown> = {
    role: "assistant",
    content: answer.text === "" && answer.toolCalls.length > 0 ? null : answer.text,
    refusal: null,
  };
  if (answer.toolCalls.length > 0) message.tool_calls = answer.toolCalls.map(wireToolCall);
  const completion: Record<string, unknown> = {
    id: meta.id,
    object: "chat.completion",
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: openaiFinishReason(answer.finish) }],
  };
  const usage = openaiUsage(answer.usage);
  if (usage) completion.usage = usage;
  return completion;
}

/**
 * Encodes one streamed completion as `chat.completion.chunk` events: the role in the first chunk,
 * `type: "function"` on each tool call's first (here: only) fragment, a finish chunk, the usage
 * chunk only when asked for, then `[DONE]`.
 */
export class OpenAIChunkEncoder implements StreamEncoder {
  /** The opening shared by every chunk: id, object, created and model, serialised once. */
  readonly #head: string;
  readonly #prefix: string;
  readonly #includeUsage: boolean;
  #started = false;
  #toolIndex = 0;

  constructor(meta: CompletionMeta, includeUsage: boolean) {
    this.#includeUsage = includeUsage;
    this.#head = `data: {"id":${JSON.stringify(meta.id)},"object":"chat.completion.chunk","created":${meta.created},"model":${JSON.stringify(meta.model)},`;
    this.#prefix = `${this.#head}"choices":[{"index":0,"delta":`;
  }

  #chunk(delta: Record<string, unknown>, finishReason: string | null): string {
    const usage = this.#includeUsage ? ',"usage":null' : "";
    return `${this.#prefix}${JSON.stringify(delta)},"logprobs":null,"finish_reason":${finishReason === null ? "null" : JSON.stringify(finishReason)}}]${usage}}\n\n`;
  }

  #withRole(delta: Record<string, unknown>): Record<string, unknown> {
    if (this.#started) return delta;
    this.#started = true;
    return { role: "assistant", ...delta };
  }

  text(text: string): string {
    return this.#chunk(this.#withRole({ content: text }), null);
  }

  toolCall(call: ToolCall): string {
    const index = this.#toolIndex++;
    const fragment = { index, ...wireToolCall(call) };
    return this.#chunk(this.#withRole({ tool_calls: [fragment] }), null);
  }

  /** The finish chunk, the usage chunk when asked for, and `[DONE]`. */
  finish(reason: FinishReason, usage: Usage): string {
    let out = this.#chunk(this.#withRole({}), openaiFinishReason(reason));
    if (this.#includeUsage) {
      const wireUsage = openaiUsage(usage) ?? { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
      out += `${this.#head}"choices":[],"usage":${JSON.stringify(wireUsage)}}\n\n`;
    }
    return `${out}data: [DONE]\n\n`;
  }

  /** A failure after the stream began: an explicit error event (never `[DONE]`), then the stream closes. */
  error(problem: HttpProblem): string {
    return `data: ${JSON.stringify({ error: wireErrorObject("openai", problem) })}\n\n`;
  }
}
