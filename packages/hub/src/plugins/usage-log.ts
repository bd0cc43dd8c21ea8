/**
 * The usage log as a plugin: one row per response (each step of a chain), written in batches off
 * the hot path and flushed on shutdown, so no row is lost.
 */
import { describeError, type ModelResponse } from "@switchboard/core";
import type { Store, UsageRecordInput } from "@switchboard/store";
import type { PriceBook } from "../accounting/pricing.ts";
import type { HubConfig } from "../config.ts";
import type { PromptContextArgs, SwitchboardPlugin } from "../hooks.ts";

const DAY_MS = 24 * 3_600_000;

/** Collects rows and writes them in one statement per batch; at most one write in flight. */
export class UsageWriter {
  readonly #store: () => Promise<Store>;
  readonly #maxBatch: number;
  readonly #flushIntervalMs: number;
  readonly #retentionDays: number | undefined;
  #queue: UsageRecordInput[] = [];
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();
  #pruned = false;
  #failing = false;
  #exitHook: (() => void) | undefined;

  constructor(
    store: () => Promise<Store>,
    options: { maxBatch?: number; flushIntervalMs?: number; retentionDays?: number | undefined } = {},
  ) {
    this.#store = store;
    this.#maxBatch = options.maxBatch ?? 500;
    this.#flushIntervalMs = options.flushIntervalMs ?? 100;
    this.#retentionDays = options.retentionDays;
  }

  add(row: UsageRecordInput): void {
    this.#queue.push(row);
    if (!this.#exitHook) {
      // A process that ends without closing the hub still writes what it logged.
      this.#exitHook = () => void this.flush();
      process.once("beforeExit", this.#exitHook);
    }
    if (this.#queue.length >= this.#maxBatch) void this.flush();
    else if (!this.#timer) {
      this.#timer = setTimeout(() => void this.flush(), this.#flushIntervalMs);
      this.#timer.unref();
    }
  }

  /** Writes everything queued so far; resolves when it is stored. */
  flush(): Promise<void> {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#writing = this.#writing.then(() => this.#writeQueued());
    return this.#writing;
  }

  async close(): Promise<void> {
    await this.flush();
    if (this.#exitHook) process.removeListener("beforeExit", this.#exitHook);
    this.#exitHook = undefined;
  }

  async #writeQueued(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#maxBatch);
      try {
        const store = await this.#store();
        await store.insertUsage(batch);
        this.#failing = false;
        if (!this.#pruned && this.#retentionDays !== undefined) {
          this.#pruned = true;
          await store.pruneUsage(new Date(Date.now() - this.#retentionDays * DAY_MS));
        }
      } catch (error) {
        // Keep the rows for the next flush rather than dropping them; warn once per failing streak.
        this.#queue.unshift(...batch);
        if (!this.#failing) {
          process.emitWarning(
            `Usage log write failed; ${this.#queue.length} rows kept for retry: ${describeError(error)}`,
          );
        }
        this.#failing = true;
        return;
      }
    }
  }
}

export function usageRecord(
  response: ModelResponse,
  args: PromptContextArgs,
  prices: PriceBook,
  logPrompts: boolean,
): UsageRecordInput {
  const usage = response.usageSoFar;
  const answeredBy = response.answeredBy ?? response.modelId;
  const record: UsageRecordInput = {
    id: response.id,
    createdAt: response.startedAt ?? Date.now(),
    modelRequested: response.modelId,
    modelAnswered: answeredBy,
    purpose: args.purpose,
    actorId: args.actor?.id,
    inputTokens: usage.input,
    outputTokens: usage.output,
    cachedTokens: usage.cachedInput,
    costNanocents: prices.cost(answeredBy, usage),
    durationMs: response.durationMs === undefined ? undefined : Math.round(response.durationMs),
    chainId: response.chainId,
    groupId: args.group?.id,
    conversationId: response.conversationId,
    status: response.status === "failed" ? "error" : "ok",
    error: response.status === "failed" ? describeError(response.error) : undefined,
  };
  if (logPrompts) {
    record.prompt = response.input.prompt;
    record.system = response.input.system;
    record.response = response.textSoFar;
    record.toolCalls =
      response.toolCallsSoFar.length > 0 ? JSON.stringify(response.toolCallsSoFar) : undefined;
    record.toolResults =
      response.input.toolResults.length > 0 ? JSON.stringify(response.input.toolResults) : undefined;
  }
  return record;
}

export function usageLogPlugin(options: {
  config: HubConfig;
  prices: PriceBook;
  store: () => Promise<Store>;
}): SwitchboardPlugin & {
  writer: UsageWriter;
} {
  const settings = options.config.usage;
  const logPrompts = settings?.log_prompts ?? false;
  const writer = new UsageWriter(options.store, { retentionDays: settings?.retention_days });
  return {
    name: "usage-log",
    writer,
    promptContext(args) {
      if (settings?.enabled === false) return undefined;
      return {
        onResponse: (response) => writer.add(usageRecord(response, args, options.prices, logPrompts)),
      };
    },
    flush: () => writer.flush(),
    shutdown: () => writer.close(),
  };
}
