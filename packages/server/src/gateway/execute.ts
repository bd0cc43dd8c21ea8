/**
 * The gateway's one bridge to the hub: a wire-neutral `ChatRequest` from an authenticated token
 * becomes an untrusted prompt through `hub.model()` for the token's actor, and its response
 * becomes `ChatPart`s. Routing, allowlists, hooks, budgets and the usage log all apply, because
 * the prompt goes through the same hub as a library call.
 */
import {
  type AttachmentInput,
  type ModelResponse,
  type PromptOptions,
  SwitchboardError,
  type ToolDefinition,
} from "@switchboard/core";
import type { GatewayToken, Hub, HubModel } from "@switchboard/hub";
import type { ChatAttachment, ChatPart, ChatRequest, FinishReason } from "./chat.ts";

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

/** Starts the prompt (lazily: nothing is sent until the response is consumed). */
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
  if (current?.role !== "user")
    throw new SwitchboardError("INVALID_INPUT", "The last message must be the user's.");
  if (request.turns.length > 1) {
    throw new SwitchboardError("UNSUPPORTED", "Earlier turns are not supported yet.", { param: "messages" });
  }
  const tools: ToolDefinition[] = request.toolChoice === "none" ? [] : request.tools;
  const promptOptions: PromptOptions = {
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
  };
  if (request.system !== undefined) promptOptions.system = request.system;
  if (request.schema !== undefined) promptOptions.schema = request.schema;
  const response = model.prompt(current.text, promptOptions);
  return { response, model, purpose: model.purpose, droppedOptions: dropped };
}

const RAW_FINISH_REASONS: Record<string, FinishReason> = {
  stop: "stop",
  end_turn: "stop",
  stop_sequence: "stop",
  length: "length",
  max_tokens: "length",
  model_context_window_exceeded: "length",
  tool_calls: "tool-calls",
  tool_use: "tool-calls",
  content_filter: "content-filter",
  refusal: "content-filter",
};

export function finishReasonOf(response: ModelResponse): FinishReason {
  const raw = response.finishReason;
  const mapped = raw === undefined ? undefined : RAW_FINISH_REASONS[raw];
  if (response.toolCallsSoFar.length > 0 && (mapped === undefined || mapped === "stop")) return "tool-calls";
  return mapped ?? "stop";
}

/** The response as parts: text as it streams, then tool calls, then the finish with usage. */
export async function* answerParts(response: ModelResponse): AsyncGenerator<ChatPart> {
  for await (const text of response) yield { type: "text", text };
  await response.done();
  for (const toolCall of response.toolCallsSoFar) yield { type: "tool-call", toolCall };
  yield { type: "finish", reason: finishReasonOf(response), usage: response.usageSoFar };
}

/** The model that answered (a fallback may have answered instead of the one asked for). */
export function answeringModel(prompt: GatewayPrompt): string {
  return prompt.response.answeredBy ?? prompt.model.id;
}
