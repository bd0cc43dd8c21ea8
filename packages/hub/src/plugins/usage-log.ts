/**
 * The usage log as a plugin: one row per response (each step of a chain), every text in it
 * scrubbed of secrets, written in batches off the hot path. No row is lost: while rows wait, the
 * process's exit guard (core's exit-guard.ts) watches the process, and a write that finally fails
 * makes `flush()` and `close()` reject, saying how many rows were not written.
 */
import { createRequire } from "node:module";
import {
  describeError,
  isSwitchboardError,
  type ModelResponse,
  SwitchboardError,
  scrubSecrets,
} from "@switchboard/core";
import { exitGuard, type PendingWrites } from "@switchboard/core/internal";
import type { ExitStorage, Store, UsageRecordInput, UsageStatus } from "@switchboard/store";

import type { PriceBook } from "../accounting/pricing.ts";
import { chargedCost } from "../charges.ts";
import type { HubConfig } from "../config.ts";
import type { PromptContextArgs, SwitchboardPlugin } from "../hooks.ts";

/**
 * The store's exit writer, loaded (synchronously: at `exit` nothing else runs) only when a process
 * ends with rows its storage never opened for: no other path loads it, and no import of it can be
 * half done at that moment.
 */
function insertUsageBeforeExit(storage: ExitStorage, rows: readonly UsageRecordInput[]): void {
  const load = createRequire(import.meta.url);
  const writer = load("@switchboard/store/exit-writer") as typeof import("@switchboard/store/exit-writer");
  writer.insertUsageBeforeExit(storage, rows);
}

const DAY_MS = 24 * 3_600_000;

function rowsText(count: number): string {
  return count === 1 ? "1 usage row was" : `${count} usage rows were`;
}

/** Collects rows and writes them in one statement per batch; at most one write in flight. */
export class UsageWriter implements PendingWrites {
  readonly #store: () => Promise<Store>;
  /** Where the storage is, for a write at exit before it was ever opened. */
  readonly #exitStorage: (() => ExitStorage | undefined) | undefined;
  readonly #maxBatch: number;
  readonly #flushIntervalMs: number;
  readonly #retentionDays: number | undefined;
  #queue: UsageRecordInput[] = [];
  /** Handed to the store, not yet confirmed written: written again at exit (stored ids are skipped). */
  #inflight: readonly UsageRecordInput[] = [];
  /** The store once open, for the synchronous write at exit. */
  #opened: Store | undefined;
  #opening: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();
  #pruned = false;
  /** Why the last write failed, while rows wait for a retry. */
  #failure: unknown;

  constructor(
    store: () => Promise<Store>,
    options: {
      maxBatch?: number;
      flushIntervalMs?: number;
      retentionDays?: number | undefined;
      exitStorage?: (() => ExitStorage | undefined) | undefined;
    } = {},
  ) {
    this.#store = store;
    this.#exitStorage = options.exitStorage;
    this.#maxBatch = options.maxBatch ?? 500;
    this.#flushIntervalMs = options.flushIntervalMs ?? 100;
    this.#retentionDays = options.retentionDays;
  }

  /** Rows not yet stored: queued, or handed to the store and not confirmed. */
  get pending(): number {
    return this.#queue.length + this.#inflight.length;
  }

  add(row: UsageRecordInput): void {
    this.#queue.push(row);
    exitGuard.watch(this);
    // Opened now, so that an exit right after the first prompts still finds the store.
    this.#opening ??= this.#store().then(
      (store) => {
        this.#opened = store;
      },
      () => {
        this.#opening = undefined;
      },
    );
    if (this.#queue.length >= this.#maxBatch) this.#flushInBackground();
    else if (!this.#timer) {
      this.#timer = setTimeout(() => this.#flushInBackground(), this.#flushIntervalMs);
      this.#timer.unref();
    }
  }

  /** Writes everything queued so far; rejects with STORAGE_ERROR when rows could not be written (they stay queued). */
  async flush(): Promise<void> {
    await this.#flushQueued();
    if (this.#queue.length > 0) throw this.#unwritten("They stay queued and are written at the next flush.");
  }

  /** Flushes and stops watching the process; rejects, naming how many rows are lost, when the write failed. */
  async close(): Promise<void> {
    try {
      await this.#flushQueued();
      if (this.#queue.length > 0) throw this.#unwritten("Retry when the storage is writable again.");
    } finally {
      exitGuard.forget(this);
    }
  }

  /**
   * At process exit: writes every pending row before returning — in this thread on SQLite, else
   * through a short-lived child process (PostgreSQL, or storage not opened yet). Returns how many
   * rows could not be written.
   */
  writeAtExit(): number {
    const rows = [...this.#inflight, ...this.#queue];
    if (rows.length === 0) return 0;
    try {
      if (this.#opened) this.#opened.insertUsageSync(rows);
      else {
        const storage = this.#exitStorage?.();
        if (storage === undefined) return rows.length;
        insertUsageBeforeExit(storage, rows);
      }
    } catch {
      return rows.length;
    }
    this.#queue = [];
    this.#inflight = [];
    return 0;
  }

  /** Whether the open store writes synchronously in this thread (SQLite), so a signal need not await anything. */
  get writesInThread(): boolean {
    return this.#opened?.kind === "sqlite";
  }

  /** Whether the last write failed (rows wait for a retry). */
  get failing(): boolean {
    return this.#failure !== undefined;
  }

  describeLost(count: number): string {
    return rowsText(count);
  }

  #flushInBackground(): void {
    this.#flushQueued().catch(() => {});
  }

  #flushQueued(): Promise<void> {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#writing = this.#writing.then(() => this.#writeQueued());
    return this.#writing;
  }

  #unwritten(outcome: string): SwitchboardError {
    const cause = this.#failure;
    return new SwitchboardError(
      "STORAGE_ERROR",
      `${rowsText(this.#queue.length)} not written: ${scrubSecrets(describeError(cause)).replace(/\.$/, "")}. ${outcome}`,
      { unwrittenRows: this.#queue.length },
      { cause },
    );
  }

  async #writeQueued(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#maxBatch);
      this.#inflight = batch;
      try {
        const store = await this.#store();
        this.#opened = store;
        await store.insertUsage(batch);
        this.#inflight = [];
        this.#failure = undefined;
        if (!this.#pruned && this.#retentionDays !== undefined) {
          this.#pruned = true;
          await store.pruneUsage(new Date(Date.now() - this.#retentionDays * DAY_MS));
        }
      } catch (error) {
        // Keep the rows for the next flush rather than dropping them; warn once per failing streak.
        this.#inflight = [];
        this.#queue.unshift(...batch);
        if (this.#failure === undefined) {
          process.emitWarning(
            `Usage log write failed; ${this.#queue.length} rows kept for retry: ${scrubSecrets(describeError(error))}`,
          );
        }
        this.#failure = error;
        return;
      }
    }
    exitGuard.settled(this);
  }
}

function usageStatus(response: ModelResponse): UsageStatus {
  if (response.status !== "failed") return "ok";
  return isSwitchboardError(response.error, "ABORTED") ? "aborted" : "error";
}

/** Every text field passes the one secret scrubber before the row is queued. */
function scrubbed(text: string | undefined): string | undefined {
  return text === undefined ? undefined : scrubSecrets(text);
}

export function usageRecord(
  response: ModelResponse,
  args: PromptContextArgs,
  prices: PriceBook,
  logPrompts: boolean,
): UsageRecordInput {
  const usage = response.usageSoFar;
  const answeredBy = response.answeredBy ?? response.modelId;
  const status = usageStatus(response);
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
    // The row shows what the response was charged: delivered output is paid for even when it failed.
    costNanocents: chargedCost(response, prices),
    durationMs: response.durationMs === undefined ? undefined : Math.round(response.durationMs),
    chainId: response.chainId,
    groupId: args.group?.id,
    conversationId: response.conversationId,
    status,
    error: status === "ok" ? undefined : scrubSecrets(describeError(response.error)),
  };
  if (logPrompts) {
    record.prompt = scrubbed(response.input.prompt);
    record.system = scrubbed(response.input.system);
    record.response = scrubbed(response.textSoFar);
    record.toolCalls =
      response.toolCallsSoFar.length > 0 ? scrubbed(JSON.stringify(response.toolCallsSoFar)) : undefined;
    record.toolResults =
      response.input.toolResults.length > 0
        ? scrubbed(JSON.stringify(response.input.toolResults))
        : undefined;
  }
  return record;
}

export function usageLogPlugin(options: {
  config: HubConfig;
  prices: PriceBook;
  store: () => Promise<Store>;
  /** Where the storage is (undefined for a Store object handed in), for rows written at exit before it opened. */
  storage?: () => ExitStorage | undefined;
}): SwitchboardPlugin & {
  writer: UsageWriter;
} {
  const settings = options.config.usage;
  const logPrompts = settings?.log_prompts ?? false;
  const writer = new UsageWriter(options.store, {
    retentionDays: settings?.retention_days,
    exitStorage: options.storage,
  });
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
