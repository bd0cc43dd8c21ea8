/**
 * Anthropic Messages on the wire: request JSON → `ChatRequest`, and `ChatPart`s → a message object
 * or the named server-sent events (`message_start` … `message_stop`) the SDK's helpers expect.
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
  base64Attachment,
  invalid,
  optionalBoolean,
  positiveInteger,
  requireArray,
  requireRecord,
  requireString,
  toolArguments,
} from "./wire-input.ts";

const HANDLED_FIELDS = new Set([
  "model",
  "max_tokens",
  "messages",
  "system",
  "tools",
  "tool_choice",
  "stream",
  "output_config",
]);

/** Fields that only label or route the request upstream; they change nothing about the answer. */
const IGNORED_FIELDS = new Set(["metadata", "service_tier", "container", "mcp_servers"]);

export function parseAnthropicRequest(body: unknown): ChatRequest {
  const root = requireRecord(body, "body");
  const model = requireString(root.model, "model");
  const maxTokens = positiveInteger(root.max_tokens, "max_tokens");
  const systems: string[] = [];
  if (root.system !== undefined && root.system !== null) systems.push(textOf(root.system, "system"));
  const turns = parseMessages(requireArray(root.messages, "messages"), systems);
  const request: ChatRequest = {
    model,
    turns,
    tools: root.tools === undefined || root.tools === null ? [] : parseTools(root.tools),
    maxTokens,
    options: {},
    stream: optionalBoolean(root.stream, "stream") ?? false,
    includeUsage: false,
  };
  if (systems.length > 0) request.system = systems.join("\n\n");
  if (root.tool_choice !== undefined && root.tool_choice !== null) {
    const choice = requireRecord(root.tool_choice, "tool_choice");
    request.toolChoice = parseToolChoice(choice);
    if (choice.disable_parallel_tool_use === true) request.options.disable_parallel_tool_use = true;
  }
  if (root.output_config !== undefined && root.output_config !== null) {
    const { format, ...rest } = requireRecord(root.output_config, "output_config");
    if (format !== undefined && format !== null) {
      const spec = requireRecord(format, "output_config.format");
      if (spec.type !== "json_schema") throw invalid("output_config.format.type", 'expected "json_schema".');
      request.schema = requireRecord(spec.schema, "output_config.format.schema");
    }
    if (Object.keys(rest).length > 0) request.options.output_config = rest;
  }
  for (const [name, value] of Object.entries(root)) {
    if (value === null || value === undefined || HANDLED_FIELDS.has(name) || IGNORED_FIELDS.has(name))
      continue;
    request.options[name] = value;
  }
  return request;
}

function textOf(content: unknown, param: string): string {
  if (typeof content === "string") return content;
  let text = "";
  for (const [index, block] of requireArray(content, param).entries()) {
    const record = requireRecord(block, `${param}[${index}]`);
    if (record.type !== "text") {
      throw invalid(`${param}[${index}].type`, `expected "text" here (got ${JSON.stringify(record.type)}).`);
    }
    text += requireString(record.text, `${param}[${index}].text`);
  }
  return text;
}

function sourceAttachment(raw: unknown, param: string): ChatAttachment {
  const source = requireRecord(raw, param);
  switch (source.type) {
    case "base64":
      return base64Attachment(source.data, source.media_type, param);
    case "url":
      return attachmentFromUrl(requireString(source.url, `${param}.url`), `${param}.url`);
    case "text": {
      const bytes = Buffer.from(requireString(source.data, `${param}.data`), "utf8");
      return {
        content: new Uint8Array(bytes),
        type: typeof source.media_type === "string" ? source.media_type : "text/plain",
      };
    }
    default:
      throw invalid(`${param}.type`, 'expected "base64", "url" or "text".');
  }
}

function toolResultOutput(content: unknown, param: string): string {
  if (content === undefined || content === null) return "";
  if (typeof content === "string") return content;
  const texts: string[] = [];
  for (const [index, block] of requireArray(content, param).entries()) {
    const record = requireRecord(block, `${param}[${index}]`);
    if (record.type !== "text") {
      throw invalid(`${param}[${index}].type`, "tool results can hold text blocks only here.");
    }
    texts.push(requireString(record.text, `${param}[${index}].text`));
  }
  return texts.join("\n");
}

function parseMessages(messages: unknown[], systems: string[]): ChatTurn[] {
  if (messages.length === 0) throw invalid("messages", "send at least one message.");
  const turns: ChatTurn[] = [];
  const toolNames = new Map<string, string>();
  for (const [index, raw] of messages.entries()) {
    const where = `messages[${index}]`;
    const message = requireRecord(raw, where);
    const blocks =
      typeof message.content === "string"
        ? [{ type: "text", text: message.content }]
        : requireArray(message.content, `${where}.content`);
    if (message.role === "system") {
      systems.push(textOf(message.content, `${where}.content`));
      continue;
    }
    if (message.role === "assistant") {
      const last = turns.at(-1);
      const turn =
        last?.role === "assistant" ? last : { role: "assistant" as const, text: "", toolCalls: [] };
      if (turn !== last) turns.push(turn);
      for (const [blockIndex, rawBlock] of blocks.entries()) {
        const blockWhere = `${where}.content[${blockIndex}]`;
        const block = requireRecord(rawBlock, blockWhere);
        if (block.type === "text") turn.text += requireString(block.text, `${blockWhere}.text`);
        else if (block.type === "tool_use") {
          const call: ToolCall = {
            id: requireString(block.id, `${blockWhere}.id`),
            name: requireString(block.name, `${blockWhere}.name`),
            arguments: toolArguments(block.input ?? {}, `${blockWhere}.input`),
          };
          toolNames.set(call.id, call.name);
          turn.toolCalls.push(call);
        } else if (block.type !== "thinking" && block.type !== "redacted_thinking") {
          throw invalid(
            `${blockWhere}.type`,
            `unsupported block ${JSON.stringify(block.type)} in an assistant message.`,
          );
        }
      }
      continue;
    }
    if (message.role !== "user") {
      throw invalid(`${where}.role`, `expected user or assistant (got ${JSON.stringify(message.role)}).`);
    }
    const last = turns.at(-1);
    const turn =
      last?.role === "user"
        ? last
        : {
            role: "user" as const,
            text: "",
            attachments: [] as ChatAttachment[],
            toolResults: [] as ChatToolResult[],
          };
    if (turn !== last) turns.push(turn);
    const texts: string[] = turn.text ? [turn.text] : [];
    for (const [blockIndex, rawBlock] of blocks.entries()) {
      const blockWhere = `${where}.content[${blockIndex}]`;
      const block = requireRecord(rawBlock, blockWhere);
      switch (block.type) {
        case "text":
          texts.push(requireString(block.text, `${blockWhere}.text`));
          break;
        case "image":
        case "document":
          turn.attachments.push(sourceAttachment(block.source, `${blockWhere}.source`));
          break;
        case "tool_result": {
          const toolCallId = requireString(block.tool_use_id, `${blockWhere}.tool_use_id`);
          const name = toolNames.get(toolCallId);
          if (name === undefined) {
            throw invalid(
              `${blockWhere}.tool_use_id`,
              `each tool_result block must answer a tool_use block of an earlier assistant message (no tool_use has id ${toolCallId}).`,
            );
          }
          const result: ChatToolResult = {
            toolCallId,
            name,
            output: toolResultOutput(block.content, `${blockWhere}.content`),
          };
          if (block.is_error === true) result.isError = true;
          turn.toolResults.push(result);
          break;
        }
        default:
          throw invalid(
            `${blockWhere}.type`,
            `unsupported block ${JSON.stringify(block.type)} in a user message.`,
          );
      }
    }
    turn.text = texts.join("\n");
  }
  if (turns.at(-1)?.role !== "user") {
    throw invalid("messages", "the last message must be a user message: it is what the model answers.");
  }
  return turns;
}

function parseTools(raw: unknown): ToolDefinition[] {
  return requireArray(raw, "tools").map((entry, index) => {
    const where = `tools[${index}]`;
    const tool = requireRecord(entry, where);
    if (tool.type !== undefined && tool.type !== null && tool.type !== "custom") {
      throw invalid(
        `${where}.type`,
        `server tools (${String(tool.type)}) are not supported; define a custom tool.`,
      );
    }
    const definition: ToolDefinition = { name: requireString(tool.name, `${where}.name`) };
    if (typeof tool.description === "string") definition.description = tool.description;
    if (tool.input_schema !== undefined && tool.input_schema !== null) {
      definition.inputSchema = requireRecord(tool.input_schema, `${where}.input_schema`);
    }
    return definition;
  });
}

function parseToolChoice(choice: Record<string, unknown>): ToolChoice {
  switch (choice.type) {
    case "auto":
      return "auto";
    case "none":
      return "none";
    case "any":
      return "required";
    case "tool":
      return { name: requireString(choice.name, "tool_choice.name") };
    default:
      throw invalid("tool_choice.type", 'expected "auto", "any", "none" or "tool".');
  }
}

// ---------------------------------------------------------------------------------------------
// Responses

const STOP_REASONS: Record<FinishReason, string> = {
  stop: "end_turn",
  length: "max_tokens",
  "tool-calls": "tool_use",
  "content-filter": "refusal",
  error: "end_turn",
  other: "end_turn",
};

export function anthropicStopReason(reason: FinishReason): string {
  return STOP_REASONS[reason];
}

/** Anthropic's `input_tokens` leaves out cache reads and writes, which Switchboard's `input` includes. */
export function anthropicUsage(usage: Usage): Record<string, number> {
  const cacheRead = usage.cachedInput ?? 0;
  const cacheWrite = usage.details?.cacheWrite ?? 0;
  return {
    input_tokens: Math.max(0, (usage.input ?? 0) - cacheRead - cacheWrite),
    output_tokens: usage.output ?? 0,
    cache_creation_input_tokens: cacheWrite,
    cache_read_input_tokens: cacheRead,
  };
}

export interface MessageMeta {
  id: string;
  model: string;
}

export function anthropicMessage(
  meta: MessageMeta,
  answer: { text: string; toolCalls: readonly ToolCall[]; finish: FinishReason; usage: Usage },
): Record<string, unknown> {
  const content: Record<string, unknown>[] = [];
  if (answer.text !== "" || answer.toolCalls.length === 0) content.push({ type: "text", text: answer.text });
  for (const call of answer.toolCalls) {
    content.push({ type: "tool_use", id: call.id, name: call.name, input: call.arguments });
  }
  return {
    id: meta.id,
    type: "message",
    role: "assistant",
    model: meta.model,
    content,
    stop_reason: anthropicStopReason(answer.finish),
    stop_sequence: null,
    usage: anthropicUsage(answer.usage),
  };
}

function event(type: string, data: Record<string, unknown>): string {
  return `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
}

/**
 * Encodes one streamed message as Anthropic's named events. Every event has an `event:` line
 * (the SDK drops those without); usage in `message_delta` is cumulative.
 */
export class AnthropicEventEncoder implements StreamEncoder {
  readonly #meta: MessageMeta;
  #started = false;
  /** Index of the open content block, or -1. */
  #openBlock = -1;
  #openIsText = false;
  #nextBlock = 0;

  constructor(meta: MessageMeta) {
    this.#meta = meta;
  }

  /** `message_start`, sent once before the first content (its usage is refined by `message_delta`). */
  #start(usage: Usage): string {
    if (this.#started) return "";
    this.#started = true;
    return event("message_start", {
      message: {
        id: this.#meta.id,
        type: "message",
        role: "assistant",
        model: this.#meta.model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { ...anthropicUsage(usage), output_tokens: 0 },
      },
    });
  }

  #closeBlock(): string {
    if (this.#openBlock < 0) return "";
    const out = event("content_block_stop", { index: this.#openBlock });
    this.#openBlock = -1;
    return out;
  }

  text(text: string, usage: Usage = {}): string {
    let out = this.#start(usage);
    if (this.#openBlock < 0 || !this.#openIsText) {
      out += this.#closeBlock();
      this.#openBlock = this.#nextBlock++;
      this.#openIsText = true;
      out += event("content_block_start", {
        index: this.#openBlock,
        content_block: { type: "text", text: "" },
      });
    }
    return (
      out + event("content_block_delta", { index: this.#openBlock, delta: { type: "text_delta", text } })
    );
  }

  toolCall(call: ToolCall, usage: Usage = {}): string {
    let out = this.#start(usage) + this.#closeBlock();
    const index = this.#nextBlock++;
    out += event("content_block_start", {
      index,
      content_block: { type: "tool_use", id: call.id, name: call.name, input: {} },
    });
    out += event("content_block_delta", {
      index,
      delta: { type: "input_json_delta", partial_json: JSON.stringify(call.arguments) },
    });
    return out + event("content_block_stop", { index });
  }

  finish(reason: FinishReason, usage: Usage): string {
    let out = this.#start(usage);
    if (this.#nextBlock === 0) out += this.text("");
    out += this.#closeBlock();
    out += event("message_delta", {
      delta: { stop_reason: anthropicStopReason(reason), stop_sequence: null },
      usage: anthropicUsage(usage),
    });
    return out + event("message_stop", {});
  }

  /** A failure after the stream began: an `error` event (never `message_stop`), then the stream closes. */
  error(problem: HttpProblem): string {
    return event("error", { error: wireErrorObject("anthropic", problem) });
  }
}
