/**
 * One Switchboard model as an AI SDK `LanguageModelV4`. Each `doGenerate`/`doStream` is one hub
 * prompt for the actor, so purpose routing, allowlists, fallbacks, budgets and the usage log apply
 * to every step of an AI SDK tool loop. The AI SDK runs the tools: tool calls are returned, never
 * executed here.
 */
import {
  InvalidArgumentError,
  type LanguageModelV4,
  type LanguageModelV4CallOptions,
  type LanguageModelV4Content,
  type LanguageModelV4GenerateResult,
  type LanguageModelV4StreamPart,
  type LanguageModelV4StreamResult,
  type SharedV4Warning,
} from "@ai-sdk/provider";
import {
  isRecord,
  type ModelResponse,
  type PromptOptions,
  type ResponsePart,
  SwitchboardError,
  type Usage,
} from "@switchboard/core";
import type { Actor, GroupInfo, Hub, HubModel } from "@switchboard/hub";
import { mapCallOptions } from "./call-options.ts";
import { toAISDKError } from "./errors.ts";
import { convertPrompt } from "./prompt.ts";
import { PROVIDER_KEY, switchboardMetadata, toFinishReason, toUsage } from "./results.ts";

/** What `switchboard(id)` resolves to: a purpose, or a model id used for the configured purpose. */
export interface ModelTarget {
  purpose: string | undefined;
  model: string | undefined;
}

export interface SwitchboardModelInit {
  hub: Hub;
  /** The id the caller gave (`purpose:<name>` or a model id), reported as the AI SDK `modelId`. */
  id: string;
  target: ModelTarget;
  actor: Actor | undefined;
  /** Inside `switchboard.group(...)`: the group's model, which every call uses. */
  group?: { model: HubModel; info: GroupInfo } | undefined;
}

/** `providerOptions.switchboard` of one call. */
export interface SwitchboardCallOptions {
  /** Who is asking for this call: an actor object or an actor id. Wins over the provider's actor. */
  actor?: Actor | string;
  /** Model options by their Switchboard names (e.g. `{reasoning_effort: "low"}`), validated by the model. */
  options?: Record<string, unknown>;
}

interface PreparedCall {
  model: HubModel;
  actor: Actor | undefined;
  prompt: string;
  options: PromptOptions;
}

export class SwitchboardLanguageModel implements LanguageModelV4 {
  readonly specificationVersion = "v4";
  readonly provider = PROVIDER_KEY;
  readonly modelId: string;
  /** Empty: the AI SDK downloads URL files, so every model receives their bytes. */
  readonly supportedUrls: Record<string, RegExp[]> = {};
  readonly #init: SwitchboardModelInit;

  constructor(init: SwitchboardModelInit) {
    this.#init = init;
    this.modelId = init.id;
  }

  async doGenerate(call: LanguageModelV4CallOptions): Promise<LanguageModelV4GenerateResult> {
    const warnings: SharedV4Warning[] = [];
    try {
      const prepared = await this.#prepare(call, warnings);
      const response = prepared.model.prompt(prepared.prompt, { ...prepared.options, stream: false });
      const content: LanguageModelV4Content[] = [];
      let usage: Usage | undefined;
      let finish: Extract<ResponsePart, { type: "finish" }> | undefined;
      for await (const part of response.parts()) {
        switch (part.type) {
          case "text": {
            const last = content.at(-1);
            if (last?.type === "text") last.text += part.text;
            else content.push({ type: "text", text: part.text });
            break;
          }
          case "tool-call":
            content.push({
              type: "tool-call",
              toolCallId: part.id,
              toolName: part.name,
              input: JSON.stringify(part.arguments),
            });
            break;
          case "usage":
            usage = part.usage;
            break;
          case "finish":
            finish = part;
            break;
        }
      }
      return {
        content,
        finishReason: toFinishReason(finish?.reason ?? "stop", finish?.rawReason),
        usage: toUsage(usage),
        providerMetadata: this.#metadata(response, prepared),
        warnings,
        response: responseInfo(response),
      };
    } catch (error) {
      throw toAISDKError(error, this.modelId, call.abortSignal);
    }
  }

  async doStream(call: LanguageModelV4CallOptions): Promise<LanguageModelV4StreamResult> {
    const warnings: SharedV4Warning[] = [];
    const cancel = new AbortController();
    let prepared: PreparedCall;
    let response: ModelResponse;
    let parts: AsyncGenerator<ResponsePart, void, undefined>;
    let first: IteratorResult<ResponsePart, void>;
    try {
      prepared = await this.#prepare(call, warnings);
      const signal = call.abortSignal ? AbortSignal.any([call.abortSignal, cancel.signal]) : cancel.signal;
      response = prepared.model.prompt(prepared.prompt, { ...prepared.options, stream: true, signal });
      parts = response.parts();
      // A refusal or a failure before any output (fallbacks included) throws here, where the AI
      // SDK's retry logic sees it; later failures become an error part of the stream.
      first = await parts.next();
    } catch (error) {
      throw toAISDKError(error, this.modelId, call.abortSignal);
    }
    const source = this.#streamParts(call, warnings, prepared, response, parts, first);
    const stream = new ReadableStream<LanguageModelV4StreamPart>({
      async pull(controller) {
        const next = await source.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      },
      async cancel() {
        cancel.abort();
        await source.return(undefined);
      },
    });
    return { stream };
  }

  async *#streamParts(
    call: LanguageModelV4CallOptions,
    warnings: SharedV4Warning[],
    prepared: PreparedCall,
    response: ModelResponse,
    parts: AsyncGenerator<ResponsePart, void, undefined>,
    first: IteratorResult<ResponsePart, void>,
  ): AsyncGenerator<LanguageModelV4StreamPart, void, undefined> {
    yield { type: "stream-start", warnings };
    let textId: string | undefined;
    let textBlocks = 0;
    let usage: Usage | undefined;
    let finish: Extract<ResponsePart, { type: "finish" }> | undefined;
    let failure: unknown;
    try {
      for (let next = first; !next.done; next = await parts.next()) {
        const part = next.value;
        switch (part.type) {
          case "text":
            if (textId === undefined) {
              textId = `text-${textBlocks++}`;
              yield { type: "text-start", id: textId };
            }
            yield { type: "text-delta", id: textId, delta: part.text };
            break;
          case "tool-call": {
            if (textId !== undefined) {
              yield { type: "text-end", id: textId };
              textId = undefined;
            }
            // Switchboard delivers each tool call complete: its input streams as one delta.
            const input = JSON.stringify(part.arguments);
            yield { type: "tool-input-start", id: part.id, toolName: part.name };
            yield { type: "tool-input-delta", id: part.id, delta: input };
            yield { type: "tool-input-end", id: part.id };
            yield { type: "tool-call", toolCallId: part.id, toolName: part.name, input };
            break;
          }
          case "usage":
            usage = part.usage;
            break;
          case "finish":
            finish = part;
            break;
        }
      }
    } catch (error) {
      failure = error;
    }
    if (textId !== undefined) yield { type: "text-end", id: textId };
    yield { type: "response-metadata", ...responseInfo(response) };
    if (failure !== undefined)
      yield { type: "error", error: toAISDKError(failure, this.modelId, call.abortSignal) };
    yield {
      type: "finish",
      usage: toUsage(failure === undefined ? usage : response.usageSoFar),
      finishReason:
        failure === undefined
          ? toFinishReason(finish?.reason ?? "stop", finish?.rawReason)
          : toFinishReason("error", undefined),
      providerMetadata: this.#metadata(response, prepared),
    };
  }

  async #prepare(call: LanguageModelV4CallOptions, warnings: SharedV4Warning[]): Promise<PreparedCall> {
    const own = readCallOptions(call.providerOptions?.[PROVIDER_KEY]);
    const actor = own.actor ?? this.#init.actor;
    const model = await this.#model(actor);
    const converted = convertPrompt(call.prompt, warnings);
    const mapped = mapCallOptions(
      call,
      { id: model.id, optionNames: model.optionNames, capabilities: model.capabilities },
      own.options,
      warnings,
    );
    const options: PromptOptions = { options: mapped.options };
    if (converted.system !== undefined) options.system = converted.system;
    if (converted.history.length > 0) options.history = converted.history;
    if (converted.attachments.length > 0) options.attachments = converted.attachments;
    if (converted.toolResults.length > 0) options.toolResults = converted.toolResults;
    if (mapped.tools.length > 0) options.tools = mapped.tools;
    if (mapped.schema !== undefined) options.schema = mapped.schema;
    if (call.abortSignal) options.signal = call.abortSignal;
    return { model, actor, prompt: converted.prompt, options };
  }

  /** The hub model for this call: the group's, or the one the hub resolves for the purpose and actor. */
  async #model(actor: Actor | undefined): Promise<HubModel> {
    const { hub, target, group } = this.#init;
    if (!group) return hub.model({ purpose: target.purpose, model: target.model, actor });
    if (actor?.id !== group.info.actor?.id) {
      throw new SwitchboardError(
        "INVALID_INPUT",
        `This model belongs to a group for actor ${group.info.actor?.id ?? "(none)"}; a call inside it cannot act for ${actor?.id ?? "(none)"}. Give the actor to switchboard.group() instead.`,
        { group: group.info.id },
      );
    }
    return group.model;
  }

  #metadata(response: ModelResponse, prepared: PreparedCall) {
    return switchboardMetadata(response, {
      hub: this.#init.hub,
      purpose: prepared.model.purpose,
      actorId: prepared.actor?.id,
      groupId: this.#init.group?.info.id,
    });
  }
}

function responseInfo(response: ModelResponse): { id: string; modelId: string; timestamp?: Date } {
  const info = { id: response.id, modelId: response.answeredBy ?? response.modelId };
  return response.startedAt === undefined ? info : { ...info, timestamp: new Date(response.startedAt) };
}

const CALL_OPTION_NAMES = new Set(["actor", "options"]);

/** Reads and checks `providerOptions.switchboard`, so that a misspelt field fails instead of being ignored. */
function readCallOptions(value: unknown): { actor?: Actor; options?: Record<string, unknown> } {
  if (value === undefined) return {};
  const invalid = (message: string) =>
    new InvalidArgumentError({ argument: `providerOptions.${PROVIDER_KEY}`, message });
  if (!isRecord(value)) throw invalid(`providerOptions.${PROVIDER_KEY} must be an object.`);
  const unknown = Object.keys(value).find((name) => !CALL_OPTION_NAMES.has(name));
  if (unknown !== undefined) {
    throw invalid(`providerOptions.${PROVIDER_KEY} has no field "${unknown}"; it takes actor and options.`);
  }
  const result: { actor?: Actor; options?: Record<string, unknown> } = {};
  const actor = value.actor;
  if (typeof actor === "string" && actor !== "") result.actor = { id: actor };
  else if (isRecord(actor) && typeof actor.id === "string" && actor.id !== "") result.actor = actor as Actor;
  else if (actor !== undefined) {
    throw invalid(`providerOptions.${PROVIDER_KEY}.actor must be an actor id or an object with an id.`);
  }
  if (isRecord(value.options)) result.options = value.options;
  else if (value.options !== undefined) {
    throw invalid(`providerOptions.${PROVIDER_KEY}.options must be an object of model options.`);
  }
  return result;
}
