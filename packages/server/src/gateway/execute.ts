/**
 * The gateway's one bridge to the hub: a wire-neutral `ChatRequest` from an authenticated token
 * becomes an untrusted prompt through `hub.model()` for the token's actor, and its response
 * becomes `ChatPart`s. Routing, allowlists, hooks, budgets and the usage log all apply, because
 * the prompt goes through the same hub as a library call.
 */
import {
  type AttachmentInput,
  type HistoryMessage,
  type ModelResponse,
  type PromptOptions,
  SwitchboardError,
  type ToolDefinition,
  type Usage,
} from "@switchboard/core";
import type { GatewayToken, Hub, HubModel } from "@switchboard/hub";
import type { ChatAttachment, ChatPart, ChatRequest, ChatToolResult, ChatTurn } from "./chat.ts";

export const PURPOSE_PREFIX = "purpose:";

export interface GatewaySettings {
  allowUrlAttachments: boolean;
  dropUnsupportedOptions: boolean;
}

export interface GatewayPrompt {
  response: ModelResponse;
  model: HubModel;
  purpose: string | undefined;
  /** Options the operator lets the gateway drop because the model does not take them. */
  droppedOptions: string[];
}

/** Options that mean the same under another name on the other wire. */
const OPTION_SYNONYMS: Record<string, string> = { stop: "stop_sequences", stop_sequences: "stop" };

/**
 * `purpose:<name>` routes by purpose, which the token must hold; a plain model id is resolved for
 * the token's default purpose (its first) and must be allowed there.
 */
export async function resolveModel(hub: Hub, token: GatewayToken, requested: string): Promise<HubModel> {
  const actor = { id: token.actor };
  if (requested.startsWith(PURPOSE_PREFIX)) {
    const purpose = requested.slice(PURPOSE_PREFIX.length);
    if (!token.purposes.includes(purpose)) {
      const held = token.purposes.length > 0 ? token.purposes.join(", ") : "none";
      throw new SwitchboardError(
        "MODEL_NOT_ALLOWED",
        `Token ${token.name} may not use purpose "${purpose}" (its purposes: ${held}); ask for a token with --purpose ${purpose}.`,
        { purpose, token: token.name },
      );
    }
    return hub.model({ purpose, actor });
  }
  return hub.model({ model: requested, purpose: token.purposes[0], actor });
}

function modelOptions(
  request: ChatRequest,
  model: HubModel,
  settings: GatewaySettings,
): { options: Record<string, unknown>; dropped: string[] } {
  const accepted = new Set(model.optionNames);
  const options: Record<string, unknown> = {};
  const dropped: string[] = [];
  for (const [given, value] of Object.entries(request.options)) {
    const synonym = OPTION_SYNONYMS[given];
    const name = !accepted.has(given) && synonym !== undefined && accepted.has(synonym) ? synonym : given;
    if (!accepted.has(name) && settings.dropUnsupportedOptions) dropped.push(given);
    else options[name] = value;
  }
  if (request.toolChoice !== undefined && request.toolChoice !== "auto" && request.toolChoice !== "none") {
    if (accepted.has("tool_choice") || !settings.dropUnsupportedOptions)
      options.tool_choice = request.toolChoice;
    else dropped.push("tool_choice");
  }
  if (request.maxTokens !== undefined) options.max_tokens = request.maxTokens;
  return { options, dropped };
}

function attachmentInput(attachment: ChatAttachment): AttachmentInput {
  return attachment;
}

function toolMessage(result: ChatToolResult): HistoryMessage {
  return {
    role: "tool",
    toolCallId: result.toolCallId,
    name: result.name,
    output: result.output,
    ...(result.isError ? { error: result.output } : {}),
  };
}

/** Earlier turns as core history: a user turn's tool results first, then its text and attachments. */
function historyOf(turns: readonly ChatTurn[]): HistoryMessage[] {
  const history: HistoryMessage[] = [];
  for (const turn of turns) {
    if (turn.role === "assistant") {
      history.push({ role: "assistant", content: turn.text, toolCalls: turn.toolCalls });
      continue;
    }
    history.push(...turn.toolResults.map(toolMessage));
    if (turn.text !== "" || turn.attachments.length > 0 || turn.toolResults.length === 0) {
      history.push({ role: "user", content: turn.text, attachments: turn.attachments.map(attachmentInput) });
    }
  }
  return history;
}

/**
 * Starts the prompt (lazily: nothing is sent until the response is consumed). It is untrusted:
 * it can never make the server read its own files, and URL attachments need the operator's consent.
 */
export async function startPrompt(
  hub: Hub,
  token: GatewayToken,
  request: ChatRequest,
  settings: GatewaySettings,
  signal: AbortSignal,
): Promise<GatewayPrompt> {
  const model = await resolveModel(hub, token, request.model);
  const { options, dropped } = modelOptions(request, model, settings);
  const current = request.turns.at(-1);
  if (current?.role !== "user") {
    throw new SwitchboardError("INVALID_INPUT", "messages: the last message must be the user's.", {
      param: "messages",
    });
  }
  const tools: ToolDefinition[] = request.toolChoice === "none" ? [] : request.tools;
  const promptOptions: PromptOptions = {
    history: historyOf(request.turns.slice(0, -1)),
    attachments: current.attachments.map(attachmentInput),
    tools,
    toolResults: current.toolResults.map((result) => ({
      toolCallId: result.toolCallId,
      name: result.name,
      output: result.output,
      ...(result.isError ? { error: result.output } : {}),
    })),
    options,
    stream: request.stream,
    signal,
    untrusted: true,
    allowUrlAttachments: settings.allowUrlAttachments,
  };
  if (request.system !== undefined) promptOptions.system = request.system;
  if (request.schema !== undefined) promptOptions.schema = request.schema;
  const response = model.prompt(current.text, promptOptions);
  return { response, model, purpose: model.purpose, droppedOptions: dropped };
}

/** The response as the gateway re-emits it: text and tool calls as they come, then the finish with usage. */
export async function* answerParts(response: ModelResponse): AsyncGenerator<ChatPart> {
  let usage: Usage = {};
  for await (const part of response.parts()) {
    switch (part.type) {
      case "text":
        yield part;
        break;
      case "tool-call":
        yield { type: "tool-call", toolCall: { id: part.id, name: part.name, arguments: part.arguments } };
        break;
      case "usage":
        usage = part.usage;
        break;
      case "finish":
        yield { type: "finish", reason: part.reason, usage };
        break;
    }
  }
}

/** The model that answered (a fallback may have answered instead of the one asked for). */
export function answeringModel(prompt: GatewayPrompt): string {
  return prompt.response.answeredBy ?? prompt.model.id;
}
