/**
 * Runs one enrichment job: pages through the table by primary key, prompts a bounded pool of rows
 * at a time, and writes finished rows in batches. Each batch writes the outputs, the errors, the
 * counters and the resume cursor in one transaction, so a run killed at any point resumes where it
 * stopped and writes every row exactly once.
 */
import { describeError, isSwitchboardError, SwitchboardError, scrubSecrets } from "@switchboard/core";
import type { HubModel, PriceBook } from "@switchboard/hub";
import type { Statement } from "better-sqlite3";
import {
  decodeKeyValue,
  encodeKeyValue,
  keyList,
  keyTuple,
  quoteIdentifier,
  type SqliteDatabase,
  type SqlValue,
  tableInfo,
} from "../sqlite.ts";
import {
  type EnrichmentJob,
  ERRORS_TABLE,
  FINAL,
  JOBS_TABLE,
  type JobCursor,
  type JobStatus,
  nowIso,
  readJob,
  readJobCursor,
  recordProgress,
} from "./jobs.ts";
import { fillTemplate, templateColumns } from "./template.ts";

/** What a progress callback receives: several times a second while the run goes on, and when it ends. */
export interface JobProgress {
  jobId: number;
  status: JobStatus;
  /** Rows selected when the job was created. */
  total: number;
  done: number;
  errors: number;
  costNanocents: bigint;
  /** Since this run started. */
  elapsedMs: number;
  /** Rows finished per second in this run. */
  rowsPerSecond: number;
  /** Seconds left at the current rate; undefined until a row has finished. */
  etaSeconds: number | undefined;
}

export interface RunnerOptions {
  /** A connection of the runner's own. */
  db: SqliteDatabase;
  job: EnrichmentJob;
  model: HubModel;
  prices: PriceBook;
  owner: string;
  leaseMs: number;
  onProgress?: ((progress: JobProgress) => void) | undefined;
  /** Rows read per query (default: 8 per concurrent prompt, at least 64). */
  pageSize?: number | undefined;
  /** Write a batch once this many rows finished (default 500)… */
  batchRows?: number | undefined;
  /**
   * …or once this long passed (default 1 s). Each batch costs a commit (an fsync that blocks the
   * event loop for milliseconds), so batches are few; a crash only redoes the rows of one batch.
   */
  batchIntervalMs?: number | undefined;
}

type StopReason = "paused" | "cancelled" | "failed" | "budget" | "limited";

/** One row handed to the pool, kept until the cursor moves past it. */
interface Slot {
  key: SqlValue[];
  /** The row's values for the template; dropped once the prompt is built. */
  values: Record<string, unknown> | undefined;
  state: "running" | "finished" | "written" | "abandoned";
  output?: string;
  error?: string;
}

/** Errors no other row would get past: the run stops instead of failing row after row. */
const JOB_FATAL = new Set([
  "MISSING_KEY",
  "PROVIDER_AUTH",
  "PRICING_MISSING",
  "MODEL_NOT_ALLOWED",
  "NO_MODEL",
  "UNKNOWN_MODEL",
  "INVALID_OPTION",
  "UNSUPPORTED",
]);
/** A spent budget of the hub: nothing was sent, and later rows would be refused too. */
const BUDGET_REFUSALS = new Set(["LIMIT_EXCEEDED", "INSUFFICIENT_BALANCE"]);

const PROGRESS_ROW_INTERVAL_MS = 1_000;
/** How often a run reports progress, looks for a pause or cancel made elsewhere, and writes a due batch. */
const TICK_MS = 250;

class LeaseLost extends SwitchboardError {
  constructor(jobId: number, holder: string | undefined) {
    super(
      "INVALID_INPUT",
      `Enrichment job ${jobId} is now run by ${holder ?? "no one"}; this run stopped without writing more rows.`,
      { job: jobId },
    );
  }
}

export class JobRunner {
  readonly jobId: number;
  readonly #options: RunnerOptions;
  readonly #db: SqliteDatabase;
  readonly #job: EnrichmentJob;
  /** One controller per running prompt (a shared long-lived signal would gather a dependent signal for every row). */
  readonly #runningPrompts = new Set<AbortController>();
  #aborted = false;
  readonly #concurrency: number;
  readonly #pageSize: number;
  readonly #windowLimit: number;
  readonly #batchRows: number;
  readonly #batchIntervalMs: number;
  readonly #keyColumns: string[];
  readonly #valueColumns: string[];
  readonly #fetchPage: (after: SqlValue[] | null) => Record<string, unknown>[];
  readonly #writeOutput: (output: string, key: SqlValue[]) => void;
  readonly #insertError: Statement<[number, string, string, string]>;

  /** Rows handed out, in key order, until the cursor passes them. */
  #window: Slot[] = [];
  /** Rows a previous run finished beyond its cursor: skipped when met again. */
  #doneEarlier: Set<string>;
  #cursorAfter: SqlValue[] | null;
  #page: Record<string, unknown>[] = [];
  #lastFetched: SqlValue[] | null;
  #exhausted = false;
  #finishedUnwritten: Slot[] = [];
  #running = 0;
  #waiters: (() => void)[] = [];

  #stop: StopReason | undefined;
  #stopMessage: string | undefined;
  #leaseLost: LeaseLost | undefined;
  #externalStatus: JobStatus | undefined;

  #done: number;
  #errors: number;
  #cost: bigint;
  #maxRowCost: bigint | undefined;
  #finishedThisRun = 0;
  readonly #startedAt = performance.now();
  #lastProgressRow = 0;
  #lastLeaseRenewal = Date.now();
  #timer: NodeJS.Timeout | undefined;
  #lastFlush = Date.now();
  #flushing = false;

  readonly done: Promise<EnrichmentJob>;

  constructor(options: RunnerOptions) {
    this.#options = options;
    this.#db = options.db;
    this.#job = options.job;
    this.jobId = options.job.id;
    const job = options.job;
    this.#concurrency = Math.max(1, job.concurrency);
    this.#pageSize = options.pageSize ?? Math.max(64, this.#concurrency * 8);
    // Finished rows wait here until every row before them is finished too; the bound keeps memory
    // flat while one slow row holds the cursor back.
    this.#windowLimit = Math.max(1024, this.#concurrency * 64);
    this.#batchRows = options.batchRows ?? 500;
    this.#batchIntervalMs = options.batchIntervalMs ?? 1000;
    this.#done = job.doneCount;
    this.#errors = job.errorCount;
    this.#cost = job.costNanocents;

    const info = tableInfo(this.#db, job.table);
    this.#keyColumns = info.primaryKey;
    const columns = new Set(info.columns.map((column) => column.name));
    if (!columns.has(job.outputColumn)) {
      throw new SwitchboardError(
        "INVALID_INPUT",
        `Table "${job.table}" no longer has the output column "${job.outputColumn}" of job ${job.id}.`,
        { job: job.id },
      );
    }
    this.#valueColumns = [...templateColumns(job.prompt), ...templateColumns(job.system ?? "")].filter(
      (name, index, all) => all.indexOf(name) === index,
    );
    for (const name of this.#valueColumns) {
      if (!columns.has(name)) {
        throw new SwitchboardError(
          "INVALID_INPUT",
          `Table "${job.table}" no longer has the column "${name}" that job ${job.id}'s prompt uses.`,
          { job: job.id, column: name },
        );
      }
    }

    const table = quoteIdentifier(job.table);
    const tuple = keyTuple(this.#keyColumns);
    const orderBy = keyList(this.#keyColumns);
    const output = quoteIdentifier(job.outputColumn);
    const selected = [
      ...this.#keyColumns.map((name, index) => `${quoteIdentifier(name)} AS "__key${index}"`),
      ...this.#valueColumns.map(quoteIdentifier),
    ].join(", ");
    const conditions = [
      job.where ? `(${job.where})` : "",
      job.overwrite ? "" : `(${output} IS NULL OR ${output} = '')`,
    ].filter(Boolean);
    const placeholders = `(${this.#keyColumns.map(() => "?").join(", ")})`;
    const firstPage = this.#db
      .prepare(
        `SELECT ${selected} FROM ${table} ${conditions.length ? `WHERE ${conditions.join(" AND ")}` : ""} ORDER BY ${orderBy} LIMIT ?`,
      )
      .safeIntegers(true);
    const nextPage = this.#db
      .prepare(
        `SELECT ${selected} FROM ${table} WHERE ${[...conditions, `${tuple} > ${placeholders}`].join(" AND ")} ORDER BY ${orderBy} LIMIT ?`,
      )
      .safeIntegers(true);
    this.#fetchPage = (after) =>
      (after === null ? firstPage.all(this.#pageSize) : nextPage.all(...after, this.#pageSize)) as Record<
        string,
        unknown
      >[];
    const update = this.#db.prepare(`UPDATE ${table} SET ${output} = ? WHERE ${tuple} = ${placeholders}`);
    this.#writeOutput = (text, key) => update.run(text, ...key);
    this.#insertError = this.#db.prepare(
      `INSERT INTO ${ERRORS_TABLE} (job_id, created_at, row_key, error) VALUES (?, ?, ?, ?)`,
    );

    const cursor = readJobCursor(this.#db, job.id);
    this.#cursorAfter = cursor.after ? cursor.after.map(decodeKeyValue) : null;
    this.#lastFetched = this.#cursorAfter;
    // Rows the selection no longer matches (an output was written) will not be met again; keeping
    // only the others keeps the cursor small however often a job is resumed.
    const stillSelected = this.#db.prepare(
      `SELECT 1 FROM ${table} WHERE ${[...conditions, `${tuple} = ${placeholders}`].join(" AND ")}`,
    );
    this.#doneEarlier = new Set(
      cursor.done
        .filter((key) => stillSelected.get(...key.map(decodeKeyValue)) !== undefined)
        .map((key) => JSON.stringify(key)),
    );

    this.done = this.#run();
  }

  /** Stops handing out rows; rows already running finish and are written. */
  pause(message?: string): void {
    this.#requestStop("paused", message);
  }

  /** Stops at once: running prompts are aborted, rows already finished are written. */
  cancel(message?: string): void {
    this.#requestStop("cancelled", message);
    this.abortRunning();
  }

  /** Aborts the prompts still running (a second Ctrl-C); their rows stay for the next run. */
  abortRunning(): void {
    this.#aborted = true;
    for (const controller of this.#runningPrompts) controller.abort();
  }

  #requestStop(reason: StopReason, message?: string): void {
    if (this.#stop === undefined) {
      this.#stop = reason;
      this.#stopMessage = message;
    }
    this.#wake();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  async #run(): Promise<EnrichmentJob> {
    this.#timer = setInterval(() => this.#tick(), Math.min(TICK_MS, this.#batchIntervalMs));
    try {
      await Promise.all(Array.from({ length: this.#concurrency }, () => this.#worker()));
      if (this.#leaseLost) throw this.#leaseLost;
      this.#flush(true);
    } catch (error) {
      this.abortRunning();
      throw error;
    } finally {
      clearInterval(this.#timer);
    }
    const job = readJob(this.#db, this.jobId) as EnrichmentJob;
    this.#options.onProgress?.(this.#progress(job.status));
    return job;
  }

  async #worker(): Promise<void> {
    for (;;) {
      const slot = await this.#next();
      if (!slot) return;
      await this.#process(slot);
    }
  }

  /** The next row to prompt, or undefined when the run should stop taking rows. */
  async #next(): Promise<Slot | undefined> {
    for (;;) {
      if (this.#stop !== undefined || this.#leaseLost) return undefined;
      if (this.#exhausted && this.#page.length === 0) return undefined;
      if (!this.#budgetAllowsAnotherRow()) {
        if (this.#running === 0) {
          this.#requestStop(
            "budget",
            `Stopped at ${usd(this.#cost)} of the ${usd(this.#job.maxCostNanocents ?? 0n)} max-cost.`,
          );
          return undefined;
        }
        await new Promise<void>((resolve) => this.#waiters.push(resolve));
        continue;
      }
      if (this.#window.length >= this.#windowLimit) {
        await new Promise<void>((resolve) => this.#waiters.push(resolve));
        continue;
      }
      const values = this.#takeRow();
      if (!values) return undefined;
      const key = this.#keyColumns.map((_, index) => values[`__key${index}`] as SqlValue);
      const keyJson = JSON.stringify(key.map(encodeKeyValue));
      if (this.#doneEarlier.delete(keyJson)) {
        this.#window.push({ key, values: undefined, state: "written" });
        continue;
      }
      const slot: Slot = { key, values, state: "running" };
      this.#window.push(slot);
      this.#running++;
      return slot;
    }
  }

  #takeRow(): Record<string, unknown> | undefined {
    if (this.#page.length === 0 && !this.#exhausted) {
      this.#page = this.#fetchPage(this.#lastFetched);
      if (this.#page.length < this.#pageSize) this.#exhausted = true;
      const last = this.#page.at(-1);
      if (last) this.#lastFetched = this.#keyColumns.map((_, index) => last[`__key${index}`] as SqlValue);
    }
    return this.#page.shift();
  }

  /**
   * With a max-cost, a row starts only if it fits even when every running row costs as much as
   * the dearest row so far; until one row's cost is known, one row runs at a time.
   */
  #budgetAllowsAnotherRow(): boolean {
    const cap = this.#job.maxCostNanocents;
    if (cap === undefined) return true;
    if (this.#cost >= cap) return false;
    if (this.#maxRowCost === undefined) return this.#running === 0;
    return this.#cost + BigInt(this.#running + 1) * this.#maxRowCost <= cap;
  }

  async #process(slot: Slot): Promise<void> {
    const job = this.#job;
    const { model, prices } = this.#options;
    let response: ReturnType<HubModel["prompt"]> | undefined;
    const controller = new AbortController();
    if (this.#aborted) controller.abort();
    this.#runningPrompts.add(controller);
    try {
      const values = slot.values ?? {};
      slot.values = undefined;
      response = model.prompt(fillTemplate(job.prompt, values), {
        ...(job.system === undefined ? {} : { system: fillTemplate(job.system, values) }),
        signal: controller.signal,
      });
      slot.output = await response.text();
    } catch (error) {
      if (controller.signal.aborted) {
        slot.state = "abandoned";
      } else if (isSwitchboardError(error) && BUDGET_REFUSALS.has(error.code)) {
        slot.state = "abandoned";
        this.#requestStop("limited", scrubSecrets(describeError(error)));
      } else if (isSwitchboardError(error) && JOB_FATAL.has(error.code)) {
        slot.state = "abandoned";
        this.#requestStop("failed", scrubSecrets(describeError(error)));
      } else {
        slot.error = scrubSecrets(describeError(error)) || "Unknown error";
      }
    }
    if (response) {
      const cost = prices.cost(response.answeredBy ?? model.id, response.usageSoFar);
      if (cost !== undefined) {
        this.#cost += cost;
        if (this.#maxRowCost === undefined || cost > this.#maxRowCost) this.#maxRowCost = cost;
      }
    }
    this.#runningPrompts.delete(controller);
    this.#running--;
    if (slot.state !== "abandoned") {
      slot.state = "finished";
      this.#finishedUnwritten.push(slot);
      this.#finishedThisRun++;
      if (slot.error !== undefined) {
        this.#errors++;
        if (job.maxErrors > 0 && this.#errors >= job.maxErrors) {
          this.#requestStop(
            "failed",
            `Stopped after ${this.#errors} row errors (max-errors ${job.maxErrors}); see the job's errors.`,
          );
        }
      } else {
        this.#done++;
      }
      if (this.#finishedUnwritten.length >= this.#batchRows) this.#tryFlush();
    }
    this.#wake();
  }

  /** Writes a batch when one is due, else only looks for a pause or cancel made elsewhere; reports progress. */
  #tick(): void {
    const batchDue =
      this.#finishedUnwritten.length > 0 && Date.now() - this.#lastFlush >= this.#batchIntervalMs;
    if (batchDue || Date.now() - this.#lastLeaseRenewal > this.#options.leaseMs / 3) {
      this.#tryFlush();
    } else {
      try {
        this.#checkStatus();
      } catch (error) {
        if (!(error instanceof LeaseLost))
          process.emitWarning(`Enrichment job ${this.jobId}: ${describeError(error)}`);
      }
    }
    if (!this.#leaseLost) this.#options.onProgress?.(this.#progress("running"));
  }

  /** A batch write during the run; a failure (a locked database) leaves the rows for the next one. */
  #tryFlush(): void {
    try {
      this.#flush(false);
    } catch (error) {
      if (error instanceof LeaseLost) return;
      // A locked database: the next tick tries again.
      process.emitWarning(`Enrichment job ${this.jobId}: ${describeError(error)}`);
    }
  }

  /** Notices a pause or cancel made by another process through the job row. */
  #checkStatus(): void {
    const row = this.#db
      .prepare(`SELECT status, lease_owner FROM ${JOBS_TABLE} WHERE id = ?`)
      .get(this.jobId) as { status: JobStatus; lease_owner: string | null } | undefined;
    this.#observe(row);
  }

  #observe(row: { status: JobStatus; lease_owner: string | null } | undefined): void {
    if (!row || row.lease_owner !== this.#options.owner) {
      this.#leaseLost ??= new LeaseLost(this.jobId, row?.lease_owner ?? undefined);
      this.abortRunning();
      this.#wake();
      throw this.#leaseLost;
    }
    if (row.status !== "running" && this.#externalStatus === undefined) {
      this.#externalStatus = row.status;
      if (row.status === "cancelled") this.cancel();
      else this.pause();
    }
  }

  /**
   * Writes the finished rows, the counters and the cursor in one transaction (after checking the
   * lease is still ours); the final batch also records how the run ended and releases the lease.
   * Memory changes only once the transaction committed, so a failed write is simply tried again.
   */
  #flush(final: boolean): void {
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      const batch = this.#finishedUnwritten;
      const inBatch = new Set(batch);
      const isWritten = (slot: Slot) => slot.state === "written" || inBatch.has(slot);
      let passed = 0;
      let after = this.#cursorAfter;
      while (passed < this.#window.length && isWritten(this.#window[passed] as Slot)) {
        after = (this.#window[passed] as Slot).key;
        passed++;
      }
      const cursor: JobCursor = {
        after: after ? after.map(encodeKeyValue) : null,
        done: [
          ...[...this.#doneEarlier].map((json) => JSON.parse(json) as unknown[]),
          ...this.#window
            .slice(passed)
            .filter(isWritten)
            .map((slot) => slot.key.map(encodeKeyValue)),
        ],
      };
      this.#db.transaction(() => this.#writeBatch(batch, cursor, final)).immediate();
      for (const slot of batch) slot.state = "written";
      this.#finishedUnwritten = [];
      this.#window.splice(0, passed);
      this.#cursorAfter = after;
      this.#lastLeaseRenewal = Date.now();
      this.#lastFlush = Date.now();
    } finally {
      this.#flushing = false;
    }
    this.#wake();
    if (!final) this.#options.onProgress?.(this.#progress("running"));
  }

  #writeBatch(batch: readonly Slot[], cursor: JobCursor, final: boolean): void {
    this.#observe(
      this.#db.prepare(`SELECT status, lease_owner FROM ${JOBS_TABLE} WHERE id = ?`).get(this.jobId) as
        | { status: JobStatus; lease_owner: string | null }
        | undefined,
    );
    const now = nowIso();
    for (const slot of batch) {
      if (slot.error === undefined) this.#writeOutput(slot.output ?? "", slot.key);
      else this.#insertError.run(this.jobId, now, JSON.stringify(this.#keyObject(slot.key)), slot.error);
    }
    this.#db
      .prepare(
        `UPDATE ${JOBS_TABLE} SET done_count = ?, error_count = ?, cost_nanocents = ?, cursor = ?, updated_at = ?,
         lease_expires_at = ? WHERE id = ?`,
      )
      .run(
        this.#done,
        this.#errors,
        this.#cost,
        JSON.stringify(cursor),
        now,
        Date.now() + this.#options.leaseMs,
        this.jobId,
      );

    if (final) {
      const status = this.#finalStatus();
      const message = this.#externalStatus ? undefined : this.#finalMessage(status);
      this.#db
        .prepare(
          `UPDATE ${JOBS_TABLE} SET status = CASE WHEN status = 'running' THEN ? ELSE status END,
           status_message = CASE WHEN status = 'running' THEN ? ELSE status_message END,
           finished_at = CASE WHEN ? THEN ? ELSE finished_at END,
           lease_owner = NULL, lease_expires_at = NULL WHERE id = ?`,
        )
        .run(status, message ?? null, FINAL.includes(status) ? 1 : 0, now, this.jobId);
      const job = readJob(this.#db, this.jobId) as EnrichmentJob;
      recordProgress(this.#db, job, job.message ?? job.status);
    } else if (Date.now() - this.#lastProgressRow >= PROGRESS_ROW_INTERVAL_MS) {
      this.#lastProgressRow = Date.now();
      recordProgress(this.#db, {
        ...this.#job,
        status: "running",
        doneCount: this.#done,
        errorCount: this.#errors,
        costNanocents: this.#cost,
      });
    }
  }

  #finalStatus(): JobStatus {
    if (this.#externalStatus) return this.#externalStatus;
    if (this.#stop) return this.#stop;
    return "finished";
  }

  #finalMessage(status: JobStatus): string | undefined {
    if (status === "finished") {
      return `Finished: ${this.#done} rows written, ${this.#errors} errors, cost ${usd(this.#cost)}.`;
    }
    return this.#stopMessage;
  }

  #keyObject(key: SqlValue[]): Record<string, unknown> {
    return Object.fromEntries(this.#keyColumns.map((name, index) => [name, encodeKeyValue(key[index])]));
  }

  #progress(status: JobStatus): JobProgress {
    const elapsedMs = performance.now() - this.#startedAt;
    const rowsPerSecond = elapsedMs > 0 ? (this.#finishedThisRun * 1000) / elapsedMs : 0;
    const left = Math.max(0, this.#job.rowCount - this.#done - this.#errors);
    return {
      jobId: this.jobId,
      status,
      total: this.#job.rowCount,
      done: this.#done,
      errors: this.#errors,
      costNanocents: this.#cost,
      elapsedMs,
      rowsPerSecond,
      etaSeconds: rowsPerSecond > 0 ? left / rowsPerSecond : undefined,
    };
  }
}

/** `$0.0123`: enough digits to see small costs. */
export function usd(nanocents: bigint): string {
  const value = Number(nanocents) / 1e11;
  return `$${value >= 1 ? value.toFixed(2) : value.toFixed(4)}`;
}
