/** Switchboard's response facts as the AI SDK reports them: usage, finish reason, provider metadata. */
import type {
  JSONObject,
  LanguageModelV4FinishReason,
  LanguageModelV4Usage,
  SharedV4ProviderMetadata,
} from "@ai-sdk/provider";
import type { FinishReason, ModelResponse, Usage } from "@switchboard/core";
import { type Hub, nanocentsToUsd } from "@switchboard/hub";

/** The key of Switchboard's entry in `providerMetadata` and `providerOptions`. */
export const PROVIDER_KEY = "switchboard";

export function toUsage(usage: Usage | undefined): LanguageModelV4Usage {
  const input = usage?.input;
  const output = usage?.output;
  const cached = usage?.cachedInput;
  const reasoning = usage?.details?.reasoning;
  const raw: JSONObject = {};
  if (usage) {
    for (const [name, value] of Object.entries(usage)) if (value !== undefined) raw[name] = value;
  }
  return {
    inputTokens: {
      total: input,
      noCache: input === undefined ? undefined : input - (cached ?? 0),
      cacheRead: cached,
      cacheWrite: usage?.details?.cacheWrite,
    },
    outputTokens: {
      total: output,
      text: output === undefined ? undefined : output - (reasoning ?? 0),
      reasoning,
    },
    ...(usage ? { raw } : {}),
  };
}

export function toFinishReason(reason: FinishReason, raw: string | undefined): LanguageModelV4FinishReason {
  return { unified: reason, raw };
}

/** What the caller gets to know about a response: who answered, for whom, and what it cost. */
export interface SwitchboardMetadata {
  /** The model that answered (a fallback's id after a fallback). */
  model: string;
  /** The model asked for first. */
  requestedModel: string;
  /** The exact upstream model, when the provider reported one. */
  upstreamModel?: string;
  purpose?: string;
  actor?: string;
  groupId?: string;
  /** The id of the response's row in the usage log. */
  responseId: string;
  /** Models tried before the one that answered, and why each failed. */
  fallbackAttempts: { model: string; error: string }[];
  /** Cost at the answering model's price, in USD and in integer nanocents (as a string); absent when unpriced. */
  costUsd?: number;
  costNanocents?: string;
}

export function switchboardMetadata(
  response: ModelResponse,
  context: {
    hub: Hub;
    purpose: string | undefined;
    actorId: string | undefined;
    groupId: string | undefined;
  },
): SharedV4ProviderMetadata {
  const model = response.answeredBy ?? response.modelId;
  const metadata: SwitchboardMetadata = {
    model,
    requestedModel: response.modelId,
    responseId: response.id,
    fallbackAttempts: response.fallbackAttempts.map((attempt) => ({ ...attempt })),
  };
  if (response.resolvedModel !== undefined) metadata.upstreamModel = response.resolvedModel;
  if (context.purpose !== undefined) metadata.purpose = context.purpose;
  if (context.actorId !== undefined) metadata.actor = context.actorId;
  if (context.groupId !== undefined) metadata.groupId = context.groupId;
  const cost = context.hub.prices.cost(model, response.usageSoFar);
  if (cost !== undefined) {
    metadata.costUsd = nanocentsToUsd(cost);
    metadata.costNanocents = cost.toString();
  }
  return { [PROVIDER_KEY]: { ...metadata } };
}
