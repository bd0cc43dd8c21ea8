/**
 * The wire-neutral shape of one chat request and of what comes back. Each wire parses its JSON
 * into a `ChatRequest` and re-emits `ChatPart`s in its own format; only `execute.ts` talks to the hub.
 */
import type { FinishReason, JsonSchema, ToolCall, ToolDefinition, Usage } from "@switchboard/core";
import type { HttpProblem } from "../errors.ts";

/** An attachment as a client sent it: inline bytes or a URL, never a server path. */
export type ChatAttachment = { content: Uint8Array; type: string } | { url: string; type?: string };

export interface ChatToolResult {
  toolCallId: string;
  /** The tool's name, from the assistant turn that called it (when the wire does not repeat it). */
  name: string;
  output: string;
  isError?: boolean;
}

/** One turn of the conversation: user text, attachments and tool results, or the model's answer. */
export type ChatTurn =
  | { role: "user"; text: string; attachments: ChatAttachment[]; toolResults: ChatToolResult[] }
  | { role: "assistant"; text: string; toolCalls: ToolCall[] };

export type ToolChoice = "auto" | "none" | "required" | { name: string };

export interface ChatRequest {
  /** `purpose:<name>` or a model id. */
  model: string;
  system?: string;
  /** Every turn, oldest first; the last one is a user turn (the prompt being answered). */
  turns: ChatTurn[];
  tools: ToolDefinition[];
  toolChoice?: ToolChoice;
  /** `json_schema` output; `{type: "object"}` stands for OpenAI's `json_object`. */
  schema?: JsonSchema;
  maxTokens?: number;
  /**
   * Every other generation setting, under the name the client used (`temperature`, `stop`,
   * `stop_sequences`…). The model must declare each one (or the operator lets unknown ones drop).
   */
  options: Record<string, unknown>;
  stream: boolean;
  /** OpenAI's `stream_options.include_usage`: a usage chunk before `[DONE]`. */
  includeUsage: boolean;
}

/** What the gateway re-emits, in order: text and tool calls as they come, then usage and the finish. */
export type ChatPart =
  | { type: "text"; text: string }
  | { type: "tool-call"; toolCall: ToolCall }
  | { type: "finish"; reason: FinishReason; usage: Usage };

/** Writes one streamed answer in one wire's server-sent events. */
export interface StreamEncoder {
  text(text: string): string;
  toolCall(call: ToolCall): string;
  /** The closing events: finish (and usage) and the wire's terminal event. */
  finish(reason: FinishReason, usage: Usage): string;
  /** A failure after the stream began: the wire's error event, and nothing after it. */
  error(problem: HttpProblem): string;
}
