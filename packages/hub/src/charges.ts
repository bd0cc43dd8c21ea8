/**
 * What one response is charged (what was delivered is paid for): the usage the provider reported,
 * with any figure it did not report counted from the prompt and from what reached the caller, at
 * the price of the model that answered. Only a response that failed before any output is free.
 */
import type { ModelResponse, PromptInput, Usage } from "@switchboard/core";
import type { PriceBook } from "./accounting/pricing.ts";

/** Without a tokenizer, about 3 characters a token: on the high side for English, so budgets hold. */
const CHARACTERS_PER_TOKEN = 3;
/** The per-message overhead providers add around a prompt. */
const PROMPT_OVERHEAD_TOKENS = 16;

/**
 * A rough upper bound of a prompt's input tokens: its text, system prompt, tool results and the
 * history a stateless caller sent with it (a gateway request replays the whole conversation).
 */
export function estimateInputTokens(input: PromptInput): number {
  let characters =
    input.prompt.length +
    (input.system?.length ?? 0) +
    input.toolResults.reduce((total, result) => total + result.output.length, 0);
  for (const message of input.history ?? []) {
    if (message.role === "tool") characters += message.output.length;
    else characters += message.content.length;
    if (message.role === "assistant")
      for (const call of message.toolCalls ?? [])
        characters += call.name.length + JSON.stringify(call.arguments).length;
  }
  return Math.ceil(characters / CHARACTERS_PER_TOKEN) + PROMPT_OVERHEAD_TOKENS;
}

/** Output tokens counted from what reached the caller: the text and the tool calls. */
export function estimateOutputTokens(response: ModelResponse): number {
  const characters =
    response.textSoFar.length +
    response.toolCallsSoFar.reduce(
      (total, call) => total + call.name.length + JSON.stringify(call.arguments).length,
      0,
    );
  return Math.ceil(characters / CHARACTERS_PER_TOKEN);
}

/** Whether any output (text or a tool call) reached the caller. */
export function deliveredOutput(response: ModelResponse): boolean {
  return response.textSoFar.length > 0 || response.toolCallsSoFar.length > 0;
}

/**
 * The token counts a response is charged for, or undefined when it failed before any output
 * (nothing was delivered, so nothing is owed — whatever the provider reported).
 */
export function chargedUsage(response: ModelResponse): Usage | undefined {
  if (response.status === "failed" && !deliveredOutput(response)) return undefined;
  const reported = response.usageSoFar;
  if (reported.input !== undefined && reported.output !== undefined) return reported;
  return {
    ...reported,
    input: reported.input ?? estimateInputTokens(response.input),
    output: reported.output ?? estimateOutputTokens(response),
  };
}

/**
 * The cost a response is charged, in nanocents: 0 when it failed before any output, undefined when
 * the model that answered has no price (and unpriced models are not declared free).
 */
export function chargedCost(response: ModelResponse, prices: PriceBook): bigint | undefined {
  const usage = chargedUsage(response);
  if (usage === undefined) return 0n;
  return prices.cost(response.answeredBy ?? response.modelId, usage);
}
