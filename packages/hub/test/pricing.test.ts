/**
 * The cost arithmetic of the price book: exact nanocents, cached input at its own price, rounding
 * up, and the same answer however often a model is priced (rates are converted once per model).
 */
import { describe, expect, it } from "vitest";
import { PriceBook } from "../src/accounting/pricing.ts";
import { parseConfig } from "../src/index.ts";

function book(pricing: Record<string, { input: number; output: number; cached_input?: number }>) {
  return new PriceBook(parseConfig({ accounting: { pricing } }));
}

describe("PriceBook.cost", () => {
  it("charges uncached input, cached input and output each at its own price", () => {
    const prices = book({ m: { input: 2, output: 8, cached_input: 0.5 } });
    // 600 uncached × $2 + 400 cached × $0.50 + 100 output × $8 per million = $0.0022
    const cost = prices.cost("m", { input: 1000, cachedInput: 400, output: 100 });
    expect(cost).toBe(220_000_000n);
    // Asked again (rates now cached), the answer is the same.
    expect(prices.cost("m", { input: 1000, cachedInput: 400, output: 100 })).toBe(cost);
  });

  it("prices cached input at the input price when the model has no cached price", () => {
    const prices = book({ m: { input: 2, output: 8 } });
    expect(prices.cost("m", { input: 1000, cachedInput: 400 })).toBe(200_000_000n);
  });

  it("rounds a fraction of a nanocent up, so a budget is never under-charged", () => {
    // $0.0000000001 per million tokens is 10 nanocents per million: one token is 0.00001 → 1.
    expect(book({ m: { input: 0.0000000001, output: 0 } }).cost("m", { input: 1, output: 0 })).toBe(1n);
    // 100,001 tokens is 1.00001 nanocents → 2.
    expect(book({ m: { input: 0.0000000001, output: 0 } }).cost("m", { input: 100_001 })).toBe(2n);
  });

  it("converts decimal prices exactly", () => {
    // 3 tokens at $0.3 per million: 0.3 × 1e11 × 3 / 1e6 = 90,000 nanocents, with no float drift.
    expect(book({ m: { input: 0.3, output: 0 } }).cost("m", { input: 3 })).toBe(90_000n);
  });

  it("uses the config's price over the shipped one, and knows no price for an unknown model", () => {
    const prices = book({ "gpt-4o": { input: 1, output: 1 } });
    expect(prices.cost("gpt-4o", { input: 1_000_000, output: 0 })).toBe(100_000_000_000n);
    expect(prices.cost("no-such-model", { input: 1, output: 1 })).toBeUndefined();
  });
});
