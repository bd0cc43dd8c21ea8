/**
 * Enrichments: a prompt template run over the rows of a SQLite table, each answer written into an
 * output column, as durable jobs that can be paused, resumed and cancelled. This is the API the
 * CLI uses and the server's pages call.
 */
import { describeError, SwitchboardError } from "@switchboard/core";
import { type Actor, type Hub, type HubModel, type ModelListing, usdToNanocents } from "@switchboard/hub";
import { allowAll, type PermissionCheck, requirePermission } from "../access.ts";
import { ENRICHMENTS_PURPOSE } from "../purposes.ts";
import {
  existingDatabase,
  keyList,
  openDatabase,
  quoteIdentifier,
  type SqliteDatabase,
  tableInfo,
} from "../sqlite.ts";
import {
  type EnrichmentJob,
  ensureJobTables,
  FINAL,
  JOBS_TABLE,
  type JobError,
  type JobProgressRecord,
  type JobStatus,
  leaseIsLive,
  listJobErrors,
  listJobProgress,
  listJobs,
  newLeaseOwner,
  nowIso,
  readJob,
  recordProgress,
  requireJob,
} from "./jobs.ts";
import { type JobProgress, JobRunner } from "./runner.ts";
import { checkTemplateColumns, fillTemplate } from "./template.ts";

export interface EnrichmentSpec {
  table: string;
  /** The prompt template: `{{ column }}` takes the row's value. */
  prompt: string;
  /** The column the answers go to; created (TEXT) when missing. */
  outputColumn: string;
  /** A system prompt; may use placeholders too. */
  system?: string | undefined;
  /** An SQL condition selecting the rows. */
  where?: string | undefined;
  /** Default `enrichments`. */
  purpose?: string | undefined;
  /** A model id; default: the purpose's model. */
  model?: string | undefined;
  /** Rows prompted at the same time (default 8). */
  concurrency?: number | undefined;
  /** The job fails once this many rows failed (default 5; 0: never). */
  maxErrors?: number | undefined;
  /** The job stops with status `budget` before spending more than this. */
  maxCostUsd?: number | undefined;
  /** Replace outputs rows already have (default: skip those rows). */
  overwrite?: boolean | undefined;
}

export interface EnrichmentsOptions {
  hub: Hub;
  /** The SQLite database file holding the table (and the job tables). */
  database: string;
  /** Asked before every change; default: everyone may (the CLI's case). */
  can?: PermissionCheck | undefined;
  /** How long a run's claim on a job lasts without renewal (default 30 s). */
  leaseMs?: number | undefined;
  /** Batch tuning for tests and benchmarks. */
  batchRows?: number | undefined;
  batchIntervalMs?: number | undefined;
  pageSize?: number | undefined;
}

export interface StartOptions {
  onProgress?: ((progress: JobProgress) => void) | undefined;
  /** Raise the job's caps when resuming one that stopped on them. */
  maxErrors?: number | undefined;
  maxCostUsd?: number | undefined;
}

/** A job running in this process. */
export interface JobRun {
  readonly jobId: number;
  /** Resolves with the job once the run stopped (finished, paused, failed…). */
  readonly done: Promise<EnrichmentJob>;
  /** Stop taking rows; rows already prompted are written. */
  pause(message?: string): void;
  /** Stop now, aborting running prompts. */
  cancel(message?: string): void;
  /** Abort the prompts still running (after `pause`, to stop without waiting). */
  abortRunning(): void;
}

export interface PromptPreview {
  /** The first selected row's key. */
  key: Record<string, unknown>;
  prompt: string;
  system: string | undefined;
}

const DEFAULT_LEASE_MS = 30_000;
const MAX_CONCURRENCY = 256;

/** Runs in this process, by database file and job id, so every `Enrichments` over a file sees them. */
const activeRuns = new Map<string, { runner: JobRunner; run: JobRun }>();

function runKey(database: string, jobId: number): string {
  return `${database}#${jobId}`;
}

/** `a, b or c` */
function orList(words: readonly string[]): string {
  return words.length > 1 ? `${words.slice(0, -1).join(", ")} or ${words.at(-1)}` : (words[0] ?? "");
}

function actorLabel(actor: Actor | undefined): string {
  return actor ? actor.id : "an anonymous user";
}

function checkInteger(value: number, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new SwitchboardError(
      "INVALID_INPUT",
      `${name} must be a whole number from ${min} to ${max} (got ${value}).`,
      {
        option: name,
      },
    );
  }
  return value;
}

function costCap(maxCostUsd: number | undefined): bigint | undefined {
  if (maxCostUsd === undefined) return undefined;
  if (!Number.isFinite(maxCostUsd) || maxCostUsd < 0) {
    throw new SwitchboardError(
      "INVALID_INPUT",
      `max-cost must be an amount in USD, 0 or more (got ${maxCostUsd}).`,
      {
        option: "max-cost",
      },
    );
  }
  return usdToNanocents(maxCostUsd);
}

export class Enrichments {
  readonly #hub: Hub;
  readonly #path: string;
  readonly #can: PermissionCheck;
  readonly #options: EnrichmentsOptions;
  #db: SqliteDatabase | undefined;

  constructor(options: EnrichmentsOptions) {
    this.#hub = options.hub;
    this.#options = options;
    this.#can = options.can ?? allowAll;
    this.#path = existingDatabase(options.database);
  }

  /** The database file (resolved). */
  get database(): string {
    return this.#path;
  }

  #connection(): SqliteDatabase {
    this.#db ??= openDatabase(this.#path);
    return this.#db;
  }

  /** The connection, with the job tables created on first use. */
  #writable(): SqliteDatabase {
    const db = this.#connection();
    ensureJobTables(db);
    return db;
  }

  /**
   * Checks the spec (table, placeholders, condition, model, caps), adds the output column when
   * missing, counts the rows and records a `pending` job. Nothing is prompted yet.
   */
  async create(spec: EnrichmentSpec, actor: Actor | undefined): Promise<EnrichmentJob> {
    await requirePermission(this.#can, "enrich", actor);
    const db = this.#writable();
    const info = tableInfo(db, spec.table);
    const columns = info.columns.map((column) => column.name);
    const outputColumn = spec.outputColumn.trim();
    if (!outputColumn)
      throw new SwitchboardError("INVALID_INPUT", "Name the output column the answers go to.");
    if (info.primaryKey.includes(outputColumn)) {
      throw new SwitchboardError(
        "INVALID_INPUT",
        `The output column "${outputColumn}" is part of the primary key of "${spec.table}"; choose another column.`,
        { column: outputColumn },
      );
    }
    if (!spec.prompt.trim()) throw new SwitchboardError("INVALID_INPUT", "The prompt template is empty.");
    checkTemplateColumns({ prompt: spec.prompt, "system prompt": spec.system }, spec.table, columns);
    const concurrency = checkInteger(spec.concurrency ?? 8, "concurrency", 1, MAX_CONCURRENCY);
    const maxErrors = checkInteger(spec.maxErrors ?? 5, "max-errors", 0);
    const maxCost = costCap(spec.maxCostUsd);
    const purpose = spec.purpose ?? ENRICHMENTS_PURPOSE;
    const model = await this.#hub.model({ purpose, model: spec.model, actor });
    if (maxCost !== undefined) this.#requirePrice(model);
    const where = spec.where?.trim() || undefined;
    const overwrite = spec.overwrite === true;

    const create = db.transaction(() => {
      if (!columns.includes(outputColumn)) {
        db.exec(
          `ALTER TABLE ${quoteIdentifier(spec.table)} ADD COLUMN ${quoteIdentifier(outputColumn)} TEXT`,
        );
      }
      const rowCount = this.#countRows(db, spec.table, where, overwrite ? undefined : outputColumn);
      const now = nowIso();
      const { lastInsertRowid } = db
        .prepare(
          `INSERT INTO ${JOBS_TABLE} (status, table_name, prompt, system_prompt, output_column, where_sql, purpose, model,
           concurrency, max_errors, max_cost_nanocents, overwrite, created_by, actor_id, row_count, created_at, updated_at)
           VALUES ('pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          spec.table,
          spec.prompt,
          spec.system ?? null,
          outputColumn,
          where ?? null,
          purpose,
          model.id,
          concurrency,
          maxErrors,
          maxCost ?? null,
          overwrite ? 1 : 0,
          actor?.id ?? null,
          actor?.id ?? null,
          rowCount,
          now,
          now,
        );
      const job = readJob(db, Number(lastInsertRowid)) as EnrichmentJob;
      recordProgress(db, job, `Created by ${actorLabel(actor)} for ${rowCount} rows`);
      return job;
    });
    return create.immediate();
  }

  /** Creates a job and starts it. */
  async enrich(spec: EnrichmentSpec, actor: Actor | undefined, options: StartOptions = {}): Promise<JobRun> {
    const job = await this.create(spec, actor);
    return this.start(job.id, actor, options);
  }

  /**
   * Starts a pending job, or resumes one that stopped (paused, failed, over budget, limited) or
   * whose process died. Refused while another live process holds the job's lease.
   */
  async start(jobId: number, actor: Actor | undefined, options: StartOptions = {}): Promise<JobRun> {
    await requirePermission(this.#can, "enrich", actor);
    return this.#start(jobId, actor, options);
  }

  /** Same as `start`: the name reads better for a job that ran before. */
  resume(jobId: number, actor: Actor | undefined, options: StartOptions = {}): Promise<JobRun> {
    return this.start(jobId, actor, options);
  }

  async #start(jobId: number, actor: Actor | undefined, options: StartOptions): Promise<JobRun> {
    const db = this.#writable();
    const local = activeRuns.get(runKey(this.#path, jobId));
    if (local) {
      // A run of this process that was asked to stop: wait until it has written its last rows.
      const current = requireJob(db, jobId);
      if (current.status === "running") {
        throw new SwitchboardError(
          "INVALID_INPUT",
          `Enrichment job ${jobId} is already running in this process.`,
          {
            job: jobId,
          },
        );
      }
      await local.run.done.catch(() => undefined);
    }
    const job = requireJob(db, jobId);
    this.#checkStartable(job);
    const promptActor = actor ?? (job.actorId ? { id: job.actorId } : undefined);
    const model = await this.#hub.model({ purpose: job.purpose, model: job.model, actor: promptActor });
    const maxCost = options.maxCostUsd === undefined ? job.maxCostNanocents : costCap(options.maxCostUsd);
    if (maxCost !== undefined) this.#requirePrice(model);
    const maxErrors =
      options.maxErrors === undefined ? job.maxErrors : checkInteger(options.maxErrors, "max-errors", 0);

    const owner = newLeaseOwner();
    const leaseMs = this.#options.leaseMs ?? DEFAULT_LEASE_MS;
    const claim = db.transaction(() => {
      const current = requireJob(db, jobId);
      this.#checkStartable(current);
      const resumed = current.startedAt !== undefined;
      db.prepare(
        `UPDATE ${JOBS_TABLE} SET status = 'running', status_message = NULL, lease_owner = ?, lease_expires_at = ?,
         actor_id = ?, max_errors = ?, max_cost_nanocents = ?, started_at = COALESCE(started_at, ?), finished_at = NULL,
         updated_at = ? WHERE id = ?`,
      ).run(
        owner,
        Date.now() + leaseMs,
        promptActor?.id ?? null,
        maxErrors,
        maxCost ?? null,
        nowIso(),
        nowIso(),
        jobId,
      );
      const claimed = readJob(db, jobId) as EnrichmentJob;
      recordProgress(
        db,
        claimed,
        `${resumed ? "Resumed" : "Started"} by ${actorLabel(actor ?? promptActor)}`,
      );
      return claimed;
    });
    const claimed = claim.immediate();

    const runnerDb = openDatabase(this.#path);
    let runner: JobRunner;
    try {
      runner = new JobRunner({
        db: runnerDb,
        job: claimed,
        model,
        prices: this.#hub.prices,
        owner,
        leaseMs,
        onProgress: options.onProgress,
        pageSize: this.#options.pageSize,
        batchRows: this.#options.batchRows,
        batchIntervalMs: this.#options.batchIntervalMs,
      });
    } catch (error) {
      runnerDb.close();
      db.prepare(
        `UPDATE ${JOBS_TABLE} SET status = 'failed', status_message = ?, lease_owner = NULL, lease_expires_at = NULL WHERE id = ?`,
      ).run(describeError(error), jobId);
      throw error;
    }
    const key = runKey(this.#path, jobId);
    const done = runner.done.finally(() => {
      activeRuns.delete(key);
      runnerDb.close();
    });
    // The caller may only look at progress; a run that ends in an error must not crash the process.
    done.catch(() => undefined);
    const run: JobRun = {
      jobId,
      done,
      pause: (message) => runner.pause(message),
      cancel: (message) => runner.cancel(message),
      abortRunning: () => runner.abortRunning(),
    };
    activeRuns.set(key, { runner, run });
    return run;
  }

  #checkStartable(job: EnrichmentJob): void {
    if (FINAL.includes(job.status)) {
      throw new SwitchboardError(
        "INVALID_INPUT",
        `Enrichment job ${job.id} is ${job.status}; start a new job to enrich the rows again.`,
        { job: job.id, status: job.status },
      );
    }
    if (leaseIsLive(job)) {
      const until = new Date(job.lease?.expiresAt ?? 0).toISOString();
      throw new SwitchboardError(
        "INVALID_INPUT",
        job.status === "running"
          ? `Enrichment job ${job.id} is running in another process (${job.lease?.owner}, lease until ${until}); pause it first or wait.`
          : `Enrichment job ${job.id} is still stopping in ${job.lease?.owner}; try again in a moment.`,
        { job: job.id, status: job.status },
      );
    }
  }

  /** A max-cost needs a price for the model; without one the cap could never be kept. */
  #requirePrice(model: HubModel): void {
    if (this.#hub.prices.cost(model.id, { input: 1, output: 1 }) !== undefined) return;
    throw new SwitchboardError(
      "PRICING_MISSING",
      `Model ${model.id} has no price, so max-cost cannot be kept: add accounting.pricing.${model.id} to switchboard.yaml or drop max-cost.`,
      { model: model.id },
    );
  }

  /**
   * Pauses a running or pending job: it takes no more rows, writes those already prompted, and
   * can be resumed later. Works on a job run by another process too (through the job row).
   */
  async pause(jobId: number, actor: Actor | undefined): Promise<EnrichmentJob> {
    return this.#stop(jobId, actor, "paused", ["running", "pending"]);
  }

  /** Cancels a job for good: running prompts are aborted, finished rows stay written. */
  async cancel(jobId: number, actor: Actor | undefined): Promise<EnrichmentJob> {
    return this.#stop(jobId, actor, "cancelled", [
      "running",
      "pending",
      "paused",
      "failed",
      "budget",
      "limited",
    ]);
  }

  async #stop(
    jobId: number,
    actor: Actor | undefined,
    status: "paused" | "cancelled",
    from: readonly JobStatus[],
  ): Promise<EnrichmentJob> {
    await requirePermission(this.#can, "enrich", actor);
    const db = this.#writable();
    const message = `${status === "paused" ? "Paused" : "Cancelled"} by ${actorLabel(actor)}`;
    const stop = db.transaction(() => {
      const job = requireJob(db, jobId);
      if (!from.includes(job.status)) {
        throw new SwitchboardError(
          "INVALID_INPUT",
          `Enrichment job ${jobId} is ${job.status}; only a job that is ${orList(from)} can be ${status}.`,
          { job: jobId, status: job.status },
        );
      }
      // A dead run's claim goes with it; a live run releases its own once its last rows are written.
      const release = leaseIsLive(job) ? "" : ", lease_owner = NULL, lease_expires_at = NULL";
      const now = nowIso();
      db.prepare(
        `UPDATE ${JOBS_TABLE} SET status = ?, status_message = ?, updated_at = ?,
         finished_at = CASE WHEN ? = 'cancelled' THEN ? ELSE finished_at END${release} WHERE id = ?`,
      ).run(status, message, now, status, now, jobId);
      const stopped = readJob(db, jobId) as EnrichmentJob;
      recordProgress(db, stopped, message);
      return stopped;
    });
    const stopped = stop.immediate();
    const local = activeRuns.get(runKey(this.#path, jobId));
    if (local) {
      if (status === "cancelled") local.run.cancel(message);
      else local.run.pause(message);
    }
    return stopped;
  }

  /** The models a job of this purpose may use for this actor (for a model picker). */
  models(actor: Actor | undefined, purpose: string = ENRICHMENTS_PURPOSE): Promise<ModelListing[]> {
    return this.#hub.models({ purpose, actor });
  }

  /** The run of this job in this process, if there is one. */
  running(jobId: number): JobRun | undefined {
    return activeRuns.get(runKey(this.#path, jobId))?.run;
  }

  job(jobId: number): EnrichmentJob | undefined {
    return readJob(this.#connection(), jobId);
  }

  /** Jobs, newest first; optionally of one table. */
  jobs(options: { table?: string | undefined } = {}): EnrichmentJob[] {
    return listJobs(this.#connection(), options);
  }

  /** A job's row errors, each with the row's primary key. */
  errors(jobId: number, options: { limit?: number; offset?: number } = {}): JobError[] {
    return listJobErrors(this.#connection(), jobId, options);
  }

  /** A job's progress records (status changes and periodic counts), oldest first. */
  progress(jobId: number, options: { limit?: number } = {}): JobProgressRecord[] {
    return listJobProgress(this.#connection(), jobId, options);
  }

  /** The first selected row's filled prompt, to show before a job starts. */
  preview(
    spec: Pick<EnrichmentSpec, "table" | "prompt" | "system" | "where" | "outputColumn" | "overwrite">,
  ): PromptPreview | undefined {
    const db = this.#connection();
    const info = tableInfo(db, spec.table);
    const columns = info.columns.map((column) => column.name);
    const used = checkTemplateColumns(
      { prompt: spec.prompt, "system prompt": spec.system },
      spec.table,
      columns,
    );
    const skipFilled = !spec.overwrite && columns.includes(spec.outputColumn) ? spec.outputColumn : undefined;
    const conditions = this.#conditions(spec.where?.trim() || undefined, skipFilled);
    const selected = [
      ...info.primaryKey.map((name, index) => `${quoteIdentifier(name)} AS "__key${index}"`),
      ...used.map(quoteIdentifier),
    ].join(", ");
    const row = this.#prepare(
      db,
      `SELECT ${selected} FROM ${quoteIdentifier(spec.table)}${conditions} ORDER BY ${keyList(info.primaryKey)} LIMIT 1`,
      spec.where,
    ).get() as Record<string, unknown> | undefined;
    if (!row) return undefined;
    return {
      key: Object.fromEntries(info.primaryKey.map((name, index) => [name, row[`__key${index}`]])),
      prompt: fillTemplate(spec.prompt, row),
      system: spec.system === undefined ? undefined : fillTemplate(spec.system, row),
    };
  }

  /** Closes this object's connection; runs keep their own until they stop. */
  close(): void {
    this.#db?.close();
    this.#db = undefined;
  }

  #conditions(where: string | undefined, skipFilledColumn: string | undefined): string {
    const parts: string[] = [];
    if (where) parts.push(`(${where})`);
    if (skipFilledColumn) {
      const output = quoteIdentifier(skipFilledColumn);
      parts.push(`(${output} IS NULL OR ${output} = '')`);
    }
    return parts.length ? ` WHERE ${parts.join(" AND ")}` : "";
  }

  #countRows(
    db: SqliteDatabase,
    table: string,
    where: string | undefined,
    skipFilledColumn: string | undefined,
  ) {
    const sql = `SELECT count(*) AS n FROM ${quoteIdentifier(table)}${this.#conditions(where, skipFilledColumn)}`;
    return Number((this.#prepare(db, sql, where).get() as { n: number }).n);
  }

  /** Prepares a query holding the caller's condition; a bad condition is the caller's error. */
  #prepare(db: SqliteDatabase, sql: string, where: string | undefined) {
    try {
      return db.prepare(sql);
    } catch (error) {
      if (where === undefined) throw error;
      throw new SwitchboardError(
        "INVALID_INPUT",
        `The row condition (--where) is not valid SQL: ${describeError(error)}. Write an expression such as "population > 1000".`,
        { where },
      );
    }
  }
}
