/**
 * The durable side of enrichment jobs: three tables in the target database (the job, its
 * progress, its row errors) and the lease that keeps two processes from running one job.
 */
import { newId, SwitchboardError } from "@switchboard/core";
import { ownerIsGone, processOwnerId } from "../owner.ts";
import { INTERNAL_TABLE_PREFIX, type SqliteDatabase, tableExists } from "../sqlite.ts";

export const JOBS_TABLE = `${INTERNAL_TABLE_PREFIX}enrich_jobs`;
export const PROGRESS_TABLE = `${INTERNAL_TABLE_PREFIX}enrich_progress`;
export const ERRORS_TABLE = `${INTERNAL_TABLE_PREFIX}enrich_errors`;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS ${JOBS_TABLE} (
  id INTEGER PRIMARY KEY,
  status TEXT NOT NULL,
  table_name TEXT NOT NULL,
  prompt TEXT NOT NULL,
  system_prompt TEXT,
  output_column TEXT NOT NULL,
  where_sql TEXT,
  purpose TEXT NOT NULL,
  model TEXT NOT NULL,
  concurrency INTEGER NOT NULL,
  max_errors INTEGER NOT NULL,
  max_cost_nanocents INTEGER,
  overwrite INTEGER NOT NULL,
  created_by TEXT,
  actor_id TEXT,
  row_count INTEGER NOT NULL,
  done_count INTEGER NOT NULL DEFAULT 0,
  error_count INTEGER NOT NULL DEFAULT 0,
  cost_nanocents INTEGER NOT NULL DEFAULT 0,
  cursor TEXT,
  status_message TEXT,
  created_at TEXT NOT NULL,
  started_at TEXT,
  finished_at TEXT,
  updated_at TEXT NOT NULL,
  lease_owner TEXT,
  lease_expires_at INTEGER
);
CREATE TABLE IF NOT EXISTS ${PROGRESS_TABLE} (
  id INTEGER PRIMARY KEY,
  job_id INTEGER NOT NULL REFERENCES ${JOBS_TABLE}(id),
  created_at TEXT NOT NULL,
  status TEXT NOT NULL,
  done_count INTEGER NOT NULL,
  error_count INTEGER NOT NULL,
  cost_nanocents INTEGER NOT NULL,
  message TEXT
);
CREATE INDEX IF NOT EXISTS ${PROGRESS_TABLE}_job ON ${PROGRESS_TABLE}(job_id);
CREATE TABLE IF NOT EXISTS ${ERRORS_TABLE} (
  id INTEGER PRIMARY KEY,
  job_id INTEGER NOT NULL REFERENCES ${JOBS_TABLE}(id),
  created_at TEXT NOT NULL,
  row_key TEXT NOT NULL,
  error TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ${ERRORS_TABLE}_job ON ${ERRORS_TABLE}(job_id);
`;

/**
 * `pending` (created) → `running` → `finished`; a run can also end `paused` (asked to), `cancelled`,
 * `failed` (max-errors reached, or an error no row can get past), `budget` (max-cost reached) or
 * `limited` (a hub limit or allowance refused the next prompt).
 */
export type JobStatus =
  | "pending"
  | "running"
  | "paused"
  | "finished"
  | "cancelled"
  | "failed"
  | "budget"
  | "limited";

/** Statuses from which `resume` starts the job again. */
export const RESUMABLE: readonly JobStatus[] = ["pending", "paused", "failed", "budget", "limited"];
/** Statuses that never change again. */
export const FINAL: readonly JobStatus[] = ["finished", "cancelled"];

export interface EnrichmentJob {
  id: number;
  status: JobStatus;
  table: string;
  prompt: string;
  system: string | undefined;
  outputColumn: string;
  where: string | undefined;
  purpose: string;
  /** The model resolved when the job was created; every run uses it. */
  model: string;
  concurrency: number;
  /** 0: no limit. */
  maxErrors: number;
  maxCostNanocents: bigint | undefined;
  overwrite: boolean;
  createdBy: string | undefined;
  /** The actor the prompts of the latest run carried. */
  actorId: string | undefined;
  /** Rows selected when the job was created. */
  rowCount: number;
  doneCount: number;
  errorCount: number;
  costNanocents: bigint;
  /** Why the job is in its status (who paused it, which limit stopped it…). */
  message: string | undefined;
  createdAt: string;
  startedAt: string | undefined;
  finishedAt: string | undefined;
  updatedAt: string;
  lease: { owner: string; expiresAt: number } | undefined;
}

export interface JobError {
  id: number;
  jobId: number;
  createdAt: string;
  /** The row's primary key, column → value. */
  rowKey: Record<string, unknown>;
  error: string;
}

export interface JobProgressRecord {
  id: number;
  createdAt: string;
  status: JobStatus;
  doneCount: number;
  errorCount: number;
  costNanocents: bigint;
  message: string | undefined;
}

/** Where a run got to: every row up to `after` is done, and so are the rows in `done` beyond it. */
export interface JobCursor {
  after: unknown[] | null;
  done: unknown[][];
}

export function ensureJobTables(db: SqliteDatabase): void {
  db.exec(SCHEMA);
}

/** Reading needs no tables: a database where no job ever ran simply has none. */
export function jobTablesExist(db: SqliteDatabase): boolean {
  return tableExists(db, JOBS_TABLE);
}

export function nowIso(): string {
  return new Date().toISOString();
}

type Raw = Record<string, unknown>;

const optionalText = (value: unknown): string | undefined => (value === null ? undefined : String(value));

function toJob(row: Raw): EnrichmentJob {
  return {
    id: Number(row.id),
    status: row.status as JobStatus,
    table: String(row.table_name),
    prompt: String(row.prompt),
    system: optionalText(row.system_prompt),
    outputColumn: String(row.output_column),
    where: optionalText(row.where_sql),
    purpose: String(row.purpose),
    model: String(row.model),
    concurrency: Number(row.concurrency),
    maxErrors: Number(row.max_errors),
    maxCostNanocents: row.max_cost_nanocents === null ? undefined : BigInt(row.max_cost_nanocents as bigint),
    overwrite: Number(row.overwrite) === 1,
    createdBy: optionalText(row.created_by),
    actorId: optionalText(row.actor_id),
    rowCount: Number(row.row_count),
    doneCount: Number(row.done_count),
    errorCount: Number(row.error_count),
    costNanocents: BigInt(row.cost_nanocents as bigint),
    message: optionalText(row.status_message),
    createdAt: String(row.created_at),
    startedAt: optionalText(row.started_at),
    finishedAt: optionalText(row.finished_at),
    updatedAt: String(row.updated_at),
    lease:
      row.lease_owner === null
        ? undefined
        : { owner: String(row.lease_owner), expiresAt: Number(row.lease_expires_at) },
  };
}

export function readJob(db: SqliteDatabase, id: number): EnrichmentJob | undefined {
  if (!jobTablesExist(db)) return undefined;
  const row = db.prepare(`SELECT * FROM ${JOBS_TABLE} WHERE id = ?`).safeIntegers(true).get(id) as
    | Raw
    | undefined;
  return row ? toJob(row) : undefined;
}

export function requireJob(db: SqliteDatabase, id: number): EnrichmentJob {
  const job = readJob(db, id);
  if (!job) {
    throw new SwitchboardError(
      "NOT_FOUND",
      `No enrichment job ${id} in this database; list them with 'switchboard jobs DB'.`,
      {
        job: id,
      },
    );
  }
  return job;
}

export function readJobCursor(db: SqliteDatabase, id: number): JobCursor {
  const row = db.prepare(`SELECT cursor FROM ${JOBS_TABLE} WHERE id = ?`).get(id) as
    | { cursor: string | null }
    | undefined;
  if (!row?.cursor) return { after: null, done: [] };
  return JSON.parse(row.cursor) as JobCursor;
}

export function listJobs(db: SqliteDatabase, options: { table?: string | undefined } = {}): EnrichmentJob[] {
  if (!jobTablesExist(db)) return [];
  const rows = (
    options.table === undefined
      ? db.prepare(`SELECT * FROM ${JOBS_TABLE} ORDER BY id DESC`).safeIntegers(true).all()
      : db
          .prepare(`SELECT * FROM ${JOBS_TABLE} WHERE table_name = ? ORDER BY id DESC`)
          .safeIntegers(true)
          .all(options.table)
  ) as Raw[];
  return rows.map(toJob);
}

export function listJobErrors(
  db: SqliteDatabase,
  jobId: number,
  options: { limit?: number; offset?: number } = {},
): JobError[] {
  if (!jobTablesExist(db)) return [];
  const rows = db
    .prepare(`SELECT * FROM ${ERRORS_TABLE} WHERE job_id = ? ORDER BY id LIMIT ? OFFSET ?`)
    .all(jobId, options.limit ?? 100, options.offset ?? 0) as Raw[];
  return rows.map((row) => ({
    id: Number(row.id),
    jobId: Number(row.job_id),
    createdAt: String(row.created_at),
    rowKey: JSON.parse(String(row.row_key)) as Record<string, unknown>,
    error: String(row.error),
  }));
}

export function listJobProgress(
  db: SqliteDatabase,
  jobId: number,
  options: { limit?: number } = {},
): JobProgressRecord[] {
  if (!jobTablesExist(db)) return [];
  const rows = db
    .prepare(`SELECT * FROM ${PROGRESS_TABLE} WHERE job_id = ? ORDER BY id DESC LIMIT ?`)
    .safeIntegers(true)
    .all(jobId, options.limit ?? 100) as Raw[];
  return rows.reverse().map((row) => ({
    id: Number(row.id),
    createdAt: String(row.created_at),
    status: row.status as JobStatus,
    doneCount: Number(row.done_count),
    errorCount: Number(row.error_count),
    costNanocents: BigInt(row.cost_nanocents as bigint),
    message: optionalText(row.message),
  }));
}

export function recordProgress(db: SqliteDatabase, job: EnrichmentJob, message?: string): void {
  db.prepare(
    `INSERT INTO ${PROGRESS_TABLE} (job_id, created_at, status, done_count, error_count, cost_nanocents, message)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
  ).run(job.id, nowIso(), job.status, job.doneCount, job.errorCount, job.costNanocents, message ?? null);
}

/** Identifies this process as a lease holder: host, pid, and a random part for each runner. */
export function newLeaseOwner(): string {
  return `${processOwnerId()}:${newId("run").slice(-8)}`;
}

/** The lease is held by someone alive: not expired, and its process (when on this host) still runs. */
export function leaseIsLive(job: EnrichmentJob, now = Date.now()): boolean {
  return job.lease !== undefined && job.lease.expiresAt > now && !ownerIsGone(job.lease.owner);
}

/** A job whose run died: `running`, but no live process holds it. `resume` (or a server's start) continues it. */
export function isInterrupted(job: EnrichmentJob, now = Date.now()): boolean {
  return job.status === "running" && !leaseIsLive(job, now);
}
