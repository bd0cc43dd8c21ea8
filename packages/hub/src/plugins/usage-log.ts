/**
 * The usage log as a plugin: one row per response (each step of a chain), every text in it
 * scrubbed of secrets, written in batches off the hot path. No row is lost: while rows wait, an
 * exit guard watches the process (see below), and a write that finally fails makes `flush()` and
 * `close()` reject, saying how many rows were not written.
 */
import { writeSync } from "node:fs";
import { inspect } from "node:util";
import {
  describeError,
  isSwitchboardError,
  type ModelResponse,
  SwitchboardError,
  scrubSecrets,
} from "@switchboard/core";
import type { Store, UsageRecordInput, UsageStatus } from "@switchboard/store";
import type { PriceBook } from "../accounting/pricing.ts";
import type { HubConfig } from "../config.ts";
import type { PromptContextArgs, SwitchboardPlugin } from "../hooks.ts";

const DAY_MS = 24 * 3_600_000;
/** How long a signal or a crash waits for rows to reach an asynchronous store before the process ends. */
const FLUSH_BEFORE_EXIT_MS = 10_000;

function rowsText(count: number): string {
  return count === 1 ? "1 usage row was" : `${count} usage rows were`;
}

/** Collects rows and writes them in one statement per batch; at most one write in flight. */
export class UsageWriter {
  readonly #store: () => Promise<Store>;
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
    options: { maxBatch?: number; flushIntervalMs?: number; retentionDays?: number | undefined } = {},
  ) {
    this.#store = store;
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
        exitGuard.refresh();
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
   * At process exit: writes every pending row synchronously when the store can (SQLite). Returns
   * how many rows could not be written (those when it cannot).
   */
  writeAtExit(): number {
    const rows = [...this.#inflight, ...this.#queue];
    if (rows.length === 0) return 0;
    const insertNow = this.#opened?.insertUsageSync;
    if (insertNow === undefined) return rows.length;
    try {
      insertNow(rows);
      this.#queue = [];
      this.#inflight = [];
      return 0;
    } catch {
      return rows.length;
    }
  }

  /** Whether `writeAtExit` can write (the store writes synchronously), so no asynchronous flush is needed. */
  get writesAtExit(): boolean {
    return this.#opened?.insertUsageSync !== undefined;
  }

  /** Whether the last write failed (rows wait for a retry). */
  get failing(): boolean {
    return this.#failure !== undefined;
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

/**
 * Watches the process while any writer has rows waiting, so they are stored however it ends:
 * - `process.exit()` and uncaught exceptions: the `exit` event writes them synchronously (SQLite);
 * - SIGTERM and SIGINT: written (synchronously, or awaited for an asynchronous store, bounded),
 *   then the signal is raised again, so the process ends as it would have — unless the
 *   application listens to that signal itself, which then decides;
 * - an uncaught exception with an asynchronous store (PostgreSQL): awaited, then the error is
 *   printed and the process exits with 1, as Node would — unless the application handles those;
 * - an emptied event loop (`beforeExit`): flushed.
 * With nothing waiting, no listener is installed and the process behaves as if we were not here.
 * What cannot be saved: `process.exit()` with an asynchronous store (nothing asynchronous runs at
 * `exit`), and SIGKILL. Those print how many rows were lost.
 */
class ExitGuard {
  readonly #writers = new Set<UsageWriter>();
  #installed = false;
  #crashListener = false;
  #exiting = false;

  watch(writer: UsageWriter): void {
    if (this.#writers.has(writer)) return;
    this.#writers.add(writer);
    if (!this.#installed) this.#install();
    this.refresh();
  }

  /**
   * Crashes need an `uncaughtException` listener only while some writer's store cannot write at
   * `exit` (or is still opening); otherwise the `exit` event is enough and Node's own crash
   * behaviour stays untouched.
   */
  refresh(): void {
    let needed = false;
    for (const writer of this.#writers) if (!writer.writesAtExit) needed = true;
    if (needed === this.#crashListener || !this.#installed) return;
    this.#crashListener = needed;
    if (needed) process.on("uncaughtException", this.#onUncaught);
    else process.off("uncaughtException", this.#onUncaught);
  }

  /** A writer stored everything it had. */
  settled(writer: UsageWriter): void {
    if (writer.pending > 0) return;
    this.forget(writer);
  }

  forget(writer: UsageWriter): void {
    this.#writers.delete(writer);
    if (this.#writers.size === 0 && !this.#exiting) this.#uninstall();
  }

  readonly #onExit = (): void => {
    let lost = 0;
    for (const writer of this.#writers) lost += writer.writeAtExit();
    if (lost > 0) {
      reportLost(
        lost,
        "the process exited before they reached storage that cannot be written synchronously; await hub.close() before exiting",
      );
    }
  };

  /** One more try for a writer whose last write failed happens at `exit`: no retry loop here. */
  readonly #onBeforeExit = (): void => {
    for (const writer of this.#writers) if (!writer.failing) writer.flush().catch(() => {});
  };

  readonly #onSignal = (signal: NodeJS.Signals): void => {
    this.#exiting = true;
    void this.#saveAll().finally(() => {
      this.#exiting = false;
      // Our listener is the only one: end the process the way the signal would have.
      if (process.listenerCount(signal) === 1) {
        this.#uninstall();
        process.kill(process.pid, signal);
      } else if (this.#writers.size === 0) this.#uninstall();
    });
  };

  readonly #onUncaught = (error: unknown): void => {
    const alone = process.listenerCount("uncaughtException") === 1;
    if (alone) writeSync(2, `${inspect(error)}\n`);
    this.#exiting = true;
    void this.#saveAll().finally(() => {
      this.#exiting = false;
      if (alone) process.exit(1);
      if (this.#writers.size === 0) this.#uninstall();
    });
  };

  /** Writes synchronously where possible, awaits (bounded) the rest, and says what could not be saved. */
  async #saveAll(): Promise<void> {
    const waiting: Promise<void>[] = [];
    for (const writer of this.#writers) {
      if (writer.writesAtExit) writer.writeAtExit();
      else waiting.push(writer.flush().catch(() => {}));
    }
    if (waiting.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(waiting),
        new Promise((resolve) => {
          timer = setTimeout(resolve, FLUSH_BEFORE_EXIT_MS);
        }),
      ]);
      clearTimeout(timer);
    }
    let lost = 0;
    for (const writer of this.#writers) lost += writer.pending;
    if (lost > 0) reportLost(lost, "the storage could not be written before the process ended");
  }

  #install(): void {
    this.#installed = true;
    process.on("exit", this.#onExit);
    process.on("beforeExit", this.#onBeforeExit);
    process.on("SIGTERM", this.#onSignal);
    process.on("SIGINT", this.#onSignal);
  }

  #uninstall(): void {
    if (!this.#installed) return;
    this.#installed = false;
    this.#crashListener = false;
    process.off("exit", this.#onExit);
    process.off("beforeExit", this.#onBeforeExit);
    process.off("SIGTERM", this.#onSignal);
    process.off("SIGINT", this.#onSignal);
    process.off("uncaughtException", this.#onUncaught);
  }
}

/** At the very end of a process only a synchronous write to stderr is sure to appear. */
function reportLost(count: number, why: string): void {
  writeSync(2, `Switchboard: ${rowsText(count)} lost: ${why}.\n`);
}

const exitGuard = new ExitGuard();

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
    costNanocents: prices.cost(answeredBy, usage),
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
