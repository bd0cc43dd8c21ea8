/**
 * Prices and cost arithmetic. Money is integer nanocents (1 USD = 100,000,000,000 nanocents) held in
 * `bigint`, so sums never drift. Prices are USD per million tokens.
 */
import type { Usage } from "@switchboard/core";
import { SwitchboardError } from "@switchboard/core";
import type { HubConfig } from "../config.ts";

export const NANOCENTS_PER_USD = 100_000_000_000n;

export interface Price {
  /** USD per million input tokens. */
  input: number;
  output: number;
  /** USD per million cached input tokens; without it cached tokens cost the input price. */
  cachedInput?: number;
}

/** The date the shipped prices were checked against the vendors' published prices. */
export const PRICES_AS_OF = "2026-11-01";

/**
 * Shipped prices (USD per million tokens: input, output, cached input), from the vendors'
 * published price lists as collected by the public llm-prices data. Local models cost nothing.
 */
export const DEFAULT_PRICES: Readonly<Record<string, Price>> = {
  // Local, in-process models.
  echo: { input: 0, output: 0 },
  "echo-needs-key": { input: 0, output: 0 },
  markov: { input: 0, output: 0 },
  // OpenAI (prompts ≤ 272k tokens for the 5.4 family).
  "gpt-5.4": { input: 2.5, output: 15, cachedInput: 0.25 },
  "gpt-5.4-mini": { input: 0.75, output: 4.5, cachedInput: 0.075 },
  "gpt-5.4-nano": { input: 0.2, output: 1.25, cachedInput: 0.02 },
  "gpt-5.4-pro": { input: 30, output: 180 },
  "gpt-5": { input: 1.25, output: 10, cachedInput: 0.125 },
  "gpt-5-mini": { input: 0.25, output: 2, cachedInput: 0.025 },
  "gpt-5-nano": { input: 0.05, output: 0.4, cachedInput: 0.005 },
  "gpt-4.1": { input: 2, output: 8, cachedInput: 0.5 },
  "gpt-4.1-mini": { input: 0.4, output: 1.6, cachedInput: 0.1 },
  "gpt-4.1-nano": { input: 0.1, output: 0.4, cachedInput: 0.025 },
  "gpt-4o": { input: 2.5, output: 10, cachedInput: 1.25 },
  "gpt-4o-mini": { input: 0.15, output: 0.6, cachedInput: 0.075 },
  o3: { input: 10, output: 40, cachedInput: 0.5 },
  "o4-mini": { input: 1.1, output: 4.4, cachedInput: 0.275 },
  // Anthropic (prompts ≤ 200k tokens).
  "claude-opus-4.6": { input: 5, output: 25, cachedInput: 0.5 },
  "claude-opus-4.5": { input: 5, output: 25, cachedInput: 0.5 },
  "claude-opus-4.1": { input: 15, output: 75, cachedInput: 1.5 },
  "claude-sonnet-4.6": { input: 3, output: 15, cachedInput: 0.3 },
  "claude-sonnet-4.5": { input: 3, output: 15, cachedInput: 0.3 },
  "claude-sonnet-4": { input: 3, output: 15, cachedInput: 0.3 },
  "claude-haiku-4.5": { input: 1, output: 5, cachedInput: 0.1 },
  // Google, for OpenAI-compatible Gemini endpoints configured under `providers:`.
  "gemini-3.1-pro-preview": { input: 2, output: 12 },
  "gemini-3-flash-preview": { input: 0.5, output: 3 },
  "gemini-2.5-pro": { input: 1.25, output: 10, cachedInput: 0.125 },
  "gemini-2.5-flash": { input: 0.3, output: 2.5, cachedInput: 0.03 },
  "gemini-2.5-flash-lite": { input: 0.1, output: 0.4, cachedInput: 0.01 },
};

/** USD (a decimal) → nanocents, exactly for amounts with up to 11 decimals. */
export function usdToNanocents(usd: number): bigint {
  if (!Number.isFinite(usd) || usd < 0) {
    throw new SwitchboardError("INVALID_INPUT", `Not an amount in USD: ${usd}.`);
  }
  const [whole = "0", fraction = ""] = usd.toFixed(11).split(".");
  return BigInt(whole) * NANOCENTS_PER_USD + BigInt(fraction.padEnd(11, "0").slice(0, 11));
}

export function nanocentsToUsd(nanocents: bigint): number {
  return Number(nanocents) / Number(NANOCENTS_PER_USD);
}

/** `$5.00`, `$0.10`, `$0.000125`: cents always, more digits only when they matter. */
export function formatUsd(nanocents: bigint): string {
  const text = nanocentsToUsd(nanocents).toFixed(6).replace(/0+$/, "");
  const [whole, fraction = ""] = text.split(".");
  return `$${whole}.${fraction.padEnd(2, "0")}`;
}

/** Cost of `tokens` at `perMillion` nanocents, rounded up so a budget is never under-charged. */
function tokensCost(tokens: number, perMillion: bigint): bigint {
  if (tokens <= 0 || perMillion === 0n) return 0n;
  const total = BigInt(tokens) * perMillion;
  return (total + 999_999n) / 1_000_000n;
}

/** A price in nanocents per million tokens: converted once per model, not on every response. */
interface Rates {
  input: bigint;
  output: bigint;
  cachedInput: bigint;
}

export type PriceLookup = { price: Price } | { price: undefined; free: boolean };

/** Prices from config override the shipped table, model by model. */
export class PriceBook {
  readonly #prices: Map<string, Price>;
  readonly #rates = new Map<string, Rates>();
  readonly #unpriced: "free" | "refuse" | undefined;

  constructor(config: HubConfig) {
    this.#prices = new Map(Object.entries(DEFAULT_PRICES));
    for (const [model, price] of Object.entries(config.accounting?.pricing ?? {})) {
      this.#prices.set(model, {
        input: price.input,
        output: price.output,
        ...(price.cached_input !== undefined ? { cachedInput: price.cached_input } : {}),
      });
    }
    this.#unpriced = config.accounting?.unpriced;
  }

  priceOf(modelId: string): Price | undefined {
    return this.#prices.get(modelId);
  }

  /**
   * The cost of one response, or undefined when the model has no price (and the operator has not
   * declared unpriced models free) or no token counts were reported.
   */
  cost(modelId: string, usage: Usage): bigint | undefined {
    const rates = this.#ratesOf(modelId);
    if (!rates) return this.#unpriced === "free" ? 0n : undefined;
    if (usage.input === undefined && usage.output === undefined) return undefined;
    const cached = Math.min(usage.cachedInput ?? 0, usage.input ?? 0);
    const uncached = (usage.input ?? 0) - cached;
    return (
      tokensCost(uncached, rates.input) +
      tokensCost(cached, rates.cachedInput) +
      tokensCost(usage.output ?? 0, rates.output)
    );
  }

  #ratesOf(modelId: string): Rates | undefined {
    let rates = this.#rates.get(modelId);
    if (rates === undefined) {
      const price = this.#prices.get(modelId);
      if (!price) return undefined;
      const input = usdToNanocents(price.input);
      rates = {
        input,
        output: usdToNanocents(price.output),
        cachedInput: price.cachedInput === undefined ? input : usdToNanocents(price.cachedInput),
      };
      this.#rates.set(modelId, rates);
    }
    return rates;
  }

  /** Throws when accounting needs a price for this model and the config made no decision about it. */
  requirePrice(modelId: string): void {
    if (this.#prices.has(modelId) || this.#unpriced === "free") return;
    throw new SwitchboardError(
      "PRICING_MISSING",
      this.#unpriced === "refuse"
        ? `Model ${modelId} has no price and accounting.unpriced is "refuse"; add accounting.pricing.${modelId} to switchboard.yaml.`
        : `Model ${modelId} has no price, so budgets cannot be kept: add accounting.pricing.${modelId} ({input, output} USD per million tokens) or set accounting.unpriced: free.`,
      { model: modelId },
    );
  }
}
