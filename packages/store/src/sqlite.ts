/**
 * Embedded SQLite backend (better-sqlite3). The driver is synchronous, so each transaction runs to
 * completion without yielding to the event loop — atomic within the process. Across processes,
 * every write transaction uses BEGIN IMMEDIATE (the write lock is taken before reading) and
 * busy_timeout makes the other writers wait instead of failing. Statements and transaction
 * wrappers are built once per connection: on the hot path (reserve, settle) a prompt pays only
 * for the statements themselves and two small commits.
 */

import { closeSync, existsSync, mkdirSync, openSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { Worker } from "node:worker_threads";
import { describeError, SwitchboardError } from "@switchboard/core";
import { exitGuard, type PendingWrites } from "@switchboard/core/internal";
import Database from "better-sqlite3";
import type { Statement } from "./admin.ts";
import {
  BudgetLeases,
  FOREIGN_LEASE_POLL_MS,
  FOREIGN_LEASE_WAIT_MS,
  isLeaseStale,
  LEASE_PREFIX,
  type Lease,
  leaseSize,
  leasesAllowed,
} from "./budget-leases.ts";
import {
  type AdmittedHold,
  closeHolds,
  type HoldClosing,
  type LeaseChange,
  type LedgerBatch,
  type LedgerBatchResult,
  writeLedgerBatch,
} from "./ledger-batch.ts";
import { CREATE_MIGRATIONS_TABLE, MIGRATIONS } from "./migrations.ts";
import {
  ADD_HOLD_TO_TOTAL_ON_CONFLICT,
  ADD_TO_BALANCE_SQL,
  expireAllowanceHoldsSql,
  INSERT_SECRET_VERSION_SQL,
  INSERT_USAGE_ROW_SQL,
  IS_MIGRATION_APPLIED_SQL,
  nextExpirySql,
  RECORD_MIGRATION_SQL,
  SPENT_IN_WINDOW_SQL,
  SQLITE_DIALECT,
} from "./queries.ts";
import {
  bucketOf,
  HOLD_BUCKET_MS,
  type NormalizedAllowanceReserve,
  type NormalizedReserve,
  numbered,
  type Row,
  storageError,
  toBigint,
  toNanocents,
  type UsageValues,
  usageParams,
} from "./shared.ts";
import { type ClosingStatus, SqlStore } from "./sql-store.ts";
import type { UsageWriteRequest, WriterReply, WriterRequest } from "./sqlite-usage-writer.ts";
import type {
  OpenStoreOptions,
  ReservationClosing,
  ReserveAgainstCapsResult,
  ReserveAllowanceResult,
  UsageRecordInput,
} from "./types.ts";

export const MEMORY_PATH = ":memory:";
const PROMPT_CONNECTION_CHECKPOINT_PAGES = 4000;
/** How long settlements wait to be committed together. */
const QUEUED_CLOSING_BATCH_MS = 50;
/** How long a queued settlement whose write failed waits before the next try. */
const QUEUED_CLOSING_RETRY_MS = 1000;
/** A reservation commits the queue with it once this many wait (a loop that never yields to I/O). */
const MAX_QUEUED_CLOSINGS = 4096;
/**
 * Operations that neither read nor write budgets, some on every request (secret and token look-ups,
 * usage rows): they keep this store's leases. Every other operation gives them back first, so what
 * it reads about budgets is exact.
 */
const KEEPS_LEASES = new Set([
  "getSecret",
  "markSecretUsed",
  "insertUsage",
  "findTokenByHash",
  "markTokenUsed",
  "findSession",
  "insertAuditEntry",
  "migrations",
  "listPurposeOverrides",
]);

/** A store's queued settlements as the exit guard sees them (core's exit-guard.ts). */
class QueueAtExit implements PendingWrites {
  readonly writesInThread = true;
  readonly #size: () => number;
  readonly #failing: () => boolean;
  readonly #write: () => void;

  constructor(size: () => number, failing: () => boolean, write: () => void) {
    this.#size = size;
    this.#failing = failing;
    this.#write = write;
  }

  get pending(): number {
    return this.#size();
  }

  get failing(): boolean {
    return this.#failing();
  }

  async flush(): Promise<void> {
    this.#write();
  }

  writeAtExit(): number {
    try {
      this.#write();
      return 0;
    } catch {
      return this.#size();
    }
  }

  describeLost(count: number): string {
    return `${count} settlement${count === 1 ? " (a hold that expires instead) was" : "s (holds that expire instead) were"}`;
  }
}

/** A reservation checked in the database, and the leases of other processes on a key that refused it. */
interface CheckedReservation {
  verdict: ReserveAgainstCapsResult;
  otherLeases: string[];
}

/**
 * Ledger writes taken out of memory into a batch (ledger-batch.ts) and not yet known to be
 * committed: handed to the writer thread (`inFlight`), or kept to be tried again after a failure.
 */
interface PendingBatch {
  batch: LedgerBatch;
  inFlight: Promise<void> | undefined;
}

/** A settlement or release taken by closeReservation and not yet committed. */
interface QueuedClosing extends HoldClosing {
  book: ReservationClosing["book"];
}

const giveBackAll = (): boolean => true;

// Statements of every reservation and settlement, built once (a statement is looked up by its text).
const INSERT_HOLD_SQL = `INSERT INTO switchboard_holds (tx_id, ledger_key, reserved_nanocents, status, created_at,
    expires_at, actor_id, purpose, model) VALUES ($1, $2, $3, 'held', $4, $5, $6, $7, $8)`;
const ADD_HOLD_TO_TOTAL_SQL = `INSERT INTO switchboard_hold_totals AS t (ledger_key, bucket_start, amount_nanocents,
    held_count, next_expiry) VALUES ($1, $2, $3, 1, $4) ${ADD_HOLD_TO_TOTAL_ON_CONFLICT}`;
/** Leases on a key still held (by other processes: this one gave its own back first). */
const LEASES_ON_KEY_SQL = `SELECT tx_id FROM switchboard_holds WHERE tx_id >= '${LEASE_PREFIX}'
  AND tx_id < '${LEASE_PREFIX.slice(0, -1)};' AND ledger_key = $1 AND status = 'held' AND expires_at > $2`;
/** How many of the given (JSON array of) tx ids are still held. */
const STILL_HELD_SQL = `SELECT COUNT(*) AS held FROM switchboard_holds
  WHERE tx_id IN (SELECT value FROM json_each($1)) AND status = 'held'`;

/**
 * Creates the folder (0700, as it may hold prompts) and the file (0600) when missing, so the
 * database, its WAL and shared-memory files (SQLite gives them the file's mode) are private.
 */
function prepareFile(path: string): void {
  const folder = dirname(path);
  if (!existsSync(folder)) mkdirSync(folder, { recursive: true, mode: 0o700 });
  if (!existsSync(path)) closeSync(openSync(path, "a", 0o600));
}

/** The first existing ancestor of `path` that is a file, where a folder should be. */
function fileInTheWay(path: string): string | undefined {
  for (let folder = dirname(path); folder !== dirname(folder); folder = dirname(folder)) {
    if (existsSync(folder)) return statSync(folder).isDirectory() ? undefined : folder;
  }
  return undefined;
}

const STORAGE_FIX =
  "set storage: sqlite:PATH in switchboard.yaml (or SWITCHBOARD_USER_PATH for the default database)";

/** One line that names the path and the fix; never a stack or a driver dump. */
function openError(path: string, error: unknown): SwitchboardError {
  const code = (error as { code?: unknown } | null)?.code;
  const blocking = fileInTheWay(path);
  let reason: string;
  if (blocking !== undefined) reason = `${blocking} is a file, not a folder; move it or ${STORAGE_FIX}`;
  else if (existsSync(path) && statSync(path).isDirectory())
    reason = `it is a folder; name a database file in it, e.g. sqlite:${join(path, "switchboard.db")}`;
  else if (code === "EACCES" || code === "EPERM" || code === "SQLITE_READONLY" || code === "SQLITE_PERM")
    reason = `permission denied; let this user write there or ${STORAGE_FIX}`;
  else if (code === "SQLITE_NOTADB" || code === "SQLITE_CORRUPT")
    reason = `the file is not a SQLite database; ${STORAGE_FIX}`;
  else reason = `${error instanceof Error ? error.message : String(error)}; ${STORAGE_FIX}`;
  return new SwitchboardError(
    "STORAGE_ERROR",
    `Cannot open SQLite storage at ${path}: ${reason}.`.replace(/\s*\n\s*/g, " "),
    { backend: "sqlite", path, ...(typeof code === "string" ? { driverCode: code } : {}) },
    { cause: error },
  );
}

export function openSqliteStore(path: string, options: OpenStoreOptions = {}): SqliteStore {
  const busyTimeoutMs = Math.max(0, Math.trunc(options.busyTimeoutMs ?? 5000));
  let db: Database.Database;
  try {
    if (path !== MEMORY_PATH) prepareFile(path);
    db = new Database(path);
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    if (path !== MEMORY_PATH) {
      db.pragma("journal_mode = WAL");
      // NORMAL is durable against application crashes in WAL mode and much faster than FULL.
      db.pragma("synchronous = NORMAL");
      // A checkpoint costs two fsyncs however few pages it copies; on this connection (the one that
      // serves prompts) let the WAL reach 4000 pages (16 MB) first. The usage writer thread keeps
      // SQLite's default, so with logging on most checkpoints run there, off the event loop.
      db.pragma(`wal_autocheckpoint = ${PROMPT_CONNECTION_CHECKPOINT_PAGES}`);
    }
  } catch (error) {
    throw openError(path, error);
  }
  try {
    // Money and timestamps are 64-bit: read every integer as bigint so nothing rounds silently.
    db.defaultSafeIntegers(true);
    const writerFile =
      path === MEMORY_PATH || options.usageWriterThread === false ? undefined : { path, busyTimeoutMs };
    const store = new SqliteStore(db, options.clock ?? Date.now, writerFile);
    store.migrate();
    return store;
  } catch (error) {
    db.close();
    throw storageError("sqlite", `opening ${path}`, error);
  }
}

export class SqliteStore extends SqlStore {
  readonly kind = "sqlite" as const;
  protected readonly dialect = SQLITE_DIALECT;
  readonly #db: Database.Database;
  readonly #clock: () => number;
  readonly #statements = new Map<string, Database.Statement>();
  readonly #writerFile: { path: string; busyTimeoutMs: number } | undefined;
  readonly #reserve: Database.Transaction<(r: NormalizedReserve) => CheckedReservation>;
  readonly #closeHolds: Database.Transaction<(txId: string, actual: bigint, status: ClosingStatus) => number>;
  readonly #takeAllowance: Database.Transaction<(r: NormalizedAllowanceReserve) => ReserveAllowanceResult>;
  readonly #finishAllowance: Database.Transaction<
    (txId: string, actual: bigint, status: ClosingStatus) => bigint | undefined
  >;
  /** One transaction that commits what closeReservation queued and what leases admitted. */
  readonly #writeQueuedTransaction: Database.Transaction<(giveBack: (lease: Lease) => boolean) => void>;
  #writer: WriterThread | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** Settlements taken by closeReservation, committed with this store's next write or soon after. */
  #queued: QueuedClosing[] = [];
  #queuedWrite: NodeJS.Timeout | undefined;
  /** Why the last write of the queue failed, while it waits for a retry (warned once per streak). */
  #queueFailure: unknown;
  /** Set when the running transaction applied the queue: emptied once it commits. */
  #queueApplied = false;
  /** Leases and the reservations admitted from them (budget-leases.ts). */
  readonly #budget = new BudgetLeases();
  /** What the running transaction changed in memory, applied once it commits (dropped if it rolls back). */
  #onCommit: (() => void)[] = [];
  #duplicatesReported = false;
  /** Ledger writes out of memory and not yet committed (see PendingBatch). */
  #unacked: PendingBatch | undefined;
  readonly #statementOf = (sql: string): Database.Statement => this.#statement(sql);

  /** `writerFile`: the database file, for writing usage rows on a separate thread (files only). */
  constructor(
    db: Database.Database,
    clock: () => number,
    writerFile?: { path: string; busyTimeoutMs: number },
  ) {
    super();
    this.#db = db;
    this.#clock = clock;
    this.#writerFile = writerFile;
    // Reservations commit queued settlements only when they would refuse (or too many wait); the
    // other ledger writes commit them first. Either way in their own transaction: one commit.
    this.#reserve = db.transaction((r) => this.#reserveInTransaction(r));
    this.#closeHolds = db.transaction((txId, actual, status) => {
      this.#applyQueued();
      return closeHolds(this.#statementOf, [{ txId, actual, status, at: this.#clock() }]);
    });
    this.#takeAllowance = db.transaction((r) => this.#takeAllowanceInTransaction(r));
    this.#finishAllowance = db.transaction((txId, actual, status) => {
      this.#applyQueued();
      return this.#finishAllowanceInTransaction(txId, actual, status, this.#clock());
    });
    this.#writeQueuedTransaction = db.transaction((giveBack) => this.#applyQueued(giveBack));
  }

  // --- settlements off the caller's path -----------------------------------------------------------

  /**
   * A release, or a settlement at or below what was reserved, only lowers what the reservation
   * counts: it is queued and the prompt that ends does not wait for a commit (a reservation
   * admitted from a lease and not written yet is simply written closed). The queue is written in
   * one transaction every QUEUED_CLOSING_BATCH_MS, or earlier: by a reservation that reaches the
   * database, by any other operation of this store, at close or however the process ends.
   * Meanwhile the reservation counts in full, so no cap can be overrun; a refusal is only ever made
   * with the queue committed. A settlement above the reservation is written at once.
   */
  override closeReservation(closing: ReservationClosing): Promise<void> {
    const { actual, reserved } = closing;
    try {
      if (this.#closed) throw new Error("the store is closed");
      const ending = {
        actual: actual === undefined ? 0n : toNanocents(actual, "actual"),
        status: actual === undefined ? ("rolled_back" as const) : ("settled" as const),
        at: this.#clock(),
      };
      if (closing.book === "caps" && this.#budget.close(closing.txId, ending)) return Promise.resolve();
      if (
        actual !== undefined &&
        (reserved === undefined || ending.actual > toNanocents(reserved, "reserved"))
      )
        return super.closeReservation(closing);
      this.#queued.push({ book: closing.book, txId: closing.txId, ...ending });
    } catch (error) {
      return Promise.reject(storageError("sqlite", "closeReservation", error));
    }
    this.#pendingAdded();
    return Promise.resolve();
  }

  /** Every operation commits the queue first: this one does nothing else. */
  override flushSettlements(): Promise<void> {
    return this.#async("flushSettlements", () => undefined);
  }

  #hasPending(): boolean {
    return this.#queued.length > 0 || this.#budget.size > 0 || this.#unacked !== undefined;
  }

  /** How many settlements and admitted reservations wait to be written. */
  #waiting(): number {
    const unacked = this.#unacked?.batch;
    const admittedTxs = new Set(unacked?.holds.map((hold) => hold.txId));
    return (
      this.#queued.length + this.#budget.admitted.size + admittedTxs.size + (unacked?.closings.length ?? 0)
    );
  }

  /** However the process ends, what waits is written first (core's exit-guard.ts); else soon. */
  #pendingAdded(): void {
    exitGuard.watch(this.#queueAtExit);
    if (this.#queuedWrite === undefined) {
      this.#queuedWrite = setTimeout(this.#writeQueuedInBackground, QUEUED_CLOSING_BATCH_MS);
      this.#queuedWrite.unref();
    }
  }

  /** The queue as the exit guard sees it: written (and leases given back) however the process ends. */
  readonly #queueAtExit = new QueueAtExit(
    () => this.#waiting(),
    () => this.#queueFailure !== undefined,
    () => {
      if (!this.#closed) this.#writeQueued(giveBackAll);
    },
  );

  /**
   * The batch: writes what waits and gives back leases no prompt used since the last batch or
   * that are too old — on the usage writer thread when the store has one, so the prompting thread
   * only copies the batch; in this thread otherwise, or while allowance settlements wait.
   */
  readonly #writeQueuedInBackground = (): void => {
    this.#queuedWrite = undefined;
    if (this.#closed || !this.#hasPending()) return;
    if (this.#unacked?.inFlight !== undefined) {
      this.#pendingAdded();
      return;
    }
    const now = this.#clock();
    const giveBack = (lease: Lease) => !lease.used || isLeaseStale(lease, now);
    const writer = this.#writerThread();
    if (writer !== undefined && !this.#queued.some((closing) => closing.book === "allowance")) {
      const pending = this.#take(giveBack);
      pending.inFlight = writer.writeLedger(pending.batch).then(
        (result) => {
          pending.inFlight = undefined;
          this.#acked(pending, result, false);
          if (this.#hasPending()) this.#pendingAdded();
          else exitGuard.forget(this.#queueAtExit);
        },
        (error) => {
          pending.inFlight = undefined;
          this.#batchFailed(error);
        },
      );
      return;
    }
    try {
      this.#writeQueued(giveBack);
    } catch (error) {
      this.#batchFailed(error);
      return;
    }
    if (this.#hasPending()) this.#pendingAdded();
  };

  /** A batch that failed stays out of memory and is tried again first, in a second (warned once per streak). */
  #batchFailed(error: unknown): void {
    if (this.#queueFailure === undefined) {
      const count = this.#waiting();
      process.emitWarning(
        `Settling ${count} reservation(s) in SQLite failed; kept for retry: ${describeError(error)}`,
      );
    }
    this.#queueFailure = error;
    clearTimeout(this.#queuedWrite);
    this.#queuedWrite = setTimeout(this.#writeQueuedInBackground, QUEUED_CLOSING_RETRY_MS);
    this.#queuedWrite.unref();
  }

  #writeQueued(giveBack: (lease: Lease) => boolean): void {
    try {
      this.#writeQueuedTransaction.immediate(giveBack);
      this.#committed();
    } finally {
      this.#queueApplied = false;
      this.#onCommit = [];
    }
  }

  /** The running transaction committed: memory follows it. */
  #committed(): void {
    const changes = this.#onCommit;
    this.#onCommit = [];
    for (const change of changes) change();
    if (!this.#hasPending()) exitGuard.forget(this.#queueAtExit);
  }

  /**
   * Takes what waits in memory — reservations admitted from leases, lease changes (`giveBack`
   * picks the leases to give back), queued settlements of holds — into the pending batch, merged
   * with one that failed before. Given-back leases admit nothing more from here on.
   */
  #take(giveBack: ((lease: Lease) => boolean) | undefined): PendingBatch {
    const pending = this.#unacked ?? {
      batch: { holds: [], leases: [], closings: [] },
      inFlight: undefined,
    };
    this.#unacked = pending;
    const holds: AdmittedHold[] = pending.batch.holds;
    for (const a of this.#budget.admitted.values()) {
      for (const key of a.keys) {
        holds.push({
          txId: a.txId,
          key,
          amount: a.amount,
          createdAt: a.createdAt,
          expiresAt: a.expiresAt,
          actorId: a.actorId,
          purpose: a.purpose,
          model: a.model,
          closing: a.closing,
        });
      }
    }
    this.#budget.admitted.clear();
    // One change per lease: a lease shrunk by the failed batch and given back now is given back.
    const changes = new Map<string, LeaseChange>(pending.batch.leases.map((change) => [change.txId, change]));
    for (const lease of [...this.#budget.leases.values()]) {
      const back = giveBack?.(lease) ?? false;
      changes.set(lease.txId, { txId: lease.txId, key: lease.key, giveBack: back });
      if (back) this.#budget.leases.delete(lease.key);
      else lease.used = false;
    }
    pending.batch.leases = [...changes.values()];
    if (this.#queued.some((closing) => closing.book === "caps")) {
      for (const closing of this.#queued) if (closing.book === "caps") pending.batch.closings.push(closing);
      this.#queued = this.#queued.filter((closing) => closing.book !== "caps");
    }
    return pending;
  }

  /** A pending batch committed. */
  #acked(pending: PendingBatch, result: LedgerBatchResult, replayed: boolean): void {
    if (this.#unacked === pending) this.#unacked = undefined;
    this.#queueFailure = undefined;
    // A batch the writer thread may have committed already, written again at exit, skips its holds.
    if (result.skipped > 0 && !replayed && !this.#duplicatesReported) {
      this.#duplicatesReported = true;
      process.emitWarning(
        `${result.skipped} hold(s) of reservations admitted from a budget lease were not written: ` +
          "their tx id had been used before (each reservation needs its own tx id). Their amount stayed held by the lease until it was given back.",
      );
    }
  }

  /**
   * Inside the current transaction: writes what waits (the pending batch: admitted reservations,
   * lease changes — `giveBack` picks the leases to give back — and queued settlements of holds),
   * then queued allowance settlements. Memory follows once the transaction commits; if it rolls
   * back, the batch is kept and tried again first.
   */
  #applyQueued(giveBack?: (lease: Lease) => boolean): void {
    if (this.#queueApplied) return;
    this.#queueApplied = true;
    if (this.#budget.size > 0 || this.#unacked !== undefined || this.#queued.some((c) => c.book === "caps")) {
      // At exit a batch may still be with the writer thread: written again here, idempotently.
      const replayed = this.#unacked?.inFlight !== undefined;
      const pending = this.#take(giveBack);
      const result = writeLedgerBatch(this.#statementOf, pending.batch);
      this.#onCommit.push(() => this.#acked(pending, result, replayed));
    }
    const allowances = this.#queued;
    if (allowances.length === 0) return;
    for (const closing of allowances)
      this.#finishAllowanceInTransaction(closing.txId, closing.actual, closing.status, closing.at);
    this.#onCommit.push(() => {
      this.#queued = this.#queued.slice(allowances.length);
      this.#queueFailure = undefined;
    });
  }

  protected now(): number {
    return this.#clock();
  }

  /** Each missing migration in its own IMMEDIATE transaction, re-checked inside it so two processes opening at once apply it once. */
  migrate(): void {
    const db = this.#db;
    db.exec(CREATE_MIGRATIONS_TABLE.sqlite);
    const isApplied = (name: string) => this.#get(IS_MIGRATION_APPLIED_SQL, { 1: name }) !== undefined;
    for (const migration of MIGRATIONS) {
      if (isApplied(migration.name)) continue;
      db.transaction(() => {
        if (isApplied(migration.name)) return;
        db.exec(migration.sqlite);
        this.#statement(RECORD_MIGRATION_SQL).run({ 1: migration.name, 2: this.#clock() });
      }).immediate();
    }
  }

  /** Statements are compiled once per SQL text (a bounded set) and reused. */
  #statement(sql: string): Database.Statement {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  #get(sql: string, params: Record<number, unknown>): Row | undefined {
    return this.#statement(sql).get(params) as Row | undefined;
  }

  #rows(sql: string, params: Record<number, unknown>): Row[] {
    return this.#statement(sql).all(params) as Row[];
  }

  /**
   * Runs synchronous work, mapping driver failures to STORAGE_ERROR. Queued settlements and
   * admitted reservations are written and leases given back first, so every operation sees exact
   * budgets — unless the work `appliesQueued` itself, inside its own transaction (the ledger
   * writes), or never looks at budgets (KEEPS_LEASES).
   */
  #sync<T>(operation: string, work: () => T, appliesQueued = false): T {
    try {
      if (this.#closed) throw new Error("the store is closed");
      if (!appliesQueued && this.#hasPending() && !KEEPS_LEASES.has(operation))
        this.#writeQueued(giveBackAll);
      const result = work();
      this.#committed();
      return result;
    } catch (error) {
      throw storageError("sqlite", operation, error);
    } finally {
      this.#queueApplied = false;
      this.#onCommit = [];
    }
  }

  /** #sync, once a batch with the writer thread has committed (unless the operation keeps leases). */
  #async<T>(operation: string, work: () => T, appliesQueued = false): Promise<T> {
    const inFlight = KEEPS_LEASES.has(operation) ? undefined : this.#unacked?.inFlight;
    if (inFlight !== undefined) return inFlight.then(() => this.#async(operation, work, appliesQueued));
    try {
      return Promise.resolve(this.#sync(operation, work, appliesQueued));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** The usage writer thread, which also writes ledger batches (file stores only). */
  #writerThread(): WriterThread | undefined {
    if (this.#writerFile === undefined || this.#closed) return undefined;
    // A thread that died (its error was reported to what it was writing) is replaced.
    if (this.#writer === undefined || this.#writer.dead)
      this.#writer = new WriterThread(this.#writerFile.path, this.#writerFile.busyTimeoutMs);
    return this.#writer;
  }

  protected all(operation: string, sql: string, params: readonly unknown[] = []): Promise<Row[]> {
    return this.#async(operation, () => this.#rows(sql, numbered(params)));
  }

  protected run(operation: string, sql: string, params: readonly unknown[] = []): Promise<number> {
    return this.#async(operation, () => this.#statement(sql).run(numbered(params)).changes);
  }

  protected runStatements(operation: string, statements: readonly Statement[]): Promise<void> {
    return this.#async(operation, () =>
      this.#db
        .transaction(() => {
          for (const statement of statements) this.#statement(statement.sql).run(numbered(statement.params));
        })
        .immediate(),
    );
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    await this.#unacked?.inFlight;
    let unsettled: unknown;
    try {
      if (this.#hasPending()) this.#writeQueued(giveBackAll);
    } catch (error) {
      unsettled = storageError(
        "sqlite",
        `settling ${this.#queued.length} queued reservation(s) at close`,
        error,
      );
    }
    clearTimeout(this.#queuedWrite);
    exitGuard.forget(this.#queueAtExit);
    this.#closed = true;
    await this.#writer?.close();
    this.#db.close();
    if (unsettled !== undefined) throw unsettled;
  }

  // --- secrets -------------------------------------------------------------------------------------

  /** One statement: SQLite holds the write lock for it, so max+1 cannot race. */
  protected insertSecretVersion(_name: string, params: readonly unknown[]): Promise<number> {
    return this.#async("putSecret", () =>
      Number(this.#get(INSERT_SECRET_VERSION_SQL, numbered(params))?.version),
    );
  }

  // --- usage log -----------------------------------------------------------------------------------

  protected insertUsageRows(rows: readonly UsageValues[]): Promise<number> {
    const writer = this.#writerThread();
    if (writer !== undefined) return writer.insert(rows);
    return this.#async("insertUsage", () => this.#insertUsageNow(rows));
  }

  /** Writes on this thread before returning: what an exit handler can still do. */
  insertUsageSync(rows: readonly UsageRecordInput[]): void {
    this.#sync("insertUsage", () => this.#insertUsageNow(rows.map(usageParams)));
  }

  #insertUsageNow(rows: readonly UsageValues[]): number {
    if (rows.length === 0) return 0;
    const insert = this.#statement(INSERT_USAGE_ROW_SQL);
    return this.#db
      .transaction(() => {
        let inserted = 0;
        for (const values of rows) inserted += insert.run(...values).changes;
        return inserted;
      })
      .immediate();
  }

  // --- accounting: windowed holds ------------------------------------------------------------------

  /**
   * From this store's leases when they have room (no transaction: budget-leases.ts), else in the
   * database. A refusal while other processes hold leases on the key waits for those leases to be
   * given back (they last LEASE_MAX_AGE_MS at most) and checks once more.
   */
  protected async reserveCaps(reservation: NormalizedReserve): Promise<ReserveAgainstCapsResult> {
    if (!this.#closed && this.#budget.admit(reservation, this.#clock())) {
      this.#pendingAdded();
      return { ok: true };
    }
    const first = await this.#async("reserveAgainstCaps", () => this.#reserve.immediate(reservation), true);
    if (first.otherLeases.length === 0) return first.verdict;
    await this.#leasesGivenBack(first.otherLeases);
    return (await this.#async("reserveAgainstCaps", () => this.#reserve.immediate(reservation), true))
      .verdict;
  }

  /** Waits until none of the leases is held any more, or FOREIGN_LEASE_WAIT_MS passed. */
  async #leasesGivenBack(txIds: readonly string[]): Promise<void> {
    const until = Date.now() + FOREIGN_LEASE_WAIT_MS;
    const ids = JSON.stringify(txIds);
    while (Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, FOREIGN_LEASE_POLL_MS));
      const held = await this.#async("reserveAgainstCaps", () => this.#get(STILL_HELD_SQL, { 1: ids })?.held);
      if (toBigint(held) === 0n) return;
    }
  }

  /** The first cap the reservation would exceed (in the given order), and what each cap has spent. */
  #check(r: NormalizedReserve): { verdict: ReserveAgainstCapsResult; used: bigint[] } {
    const used: bigint[] = [];
    for (const cap of r.caps) {
      const spent = toBigint(
        this.#get(SPENT_IN_WINDOW_SQL, { 1: cap.key, 2: cap.wholeFromMs, 3: cap.windowStartMs })?.spent,
      );
      if (spent + r.amount > cap.cap)
        return { verdict: { ok: false, key: cap.key, used: spent, cap: cap.cap }, used };
      used.push(spent);
    }
    return { verdict: { ok: true }, used };
  }

  #reserveInTransaction(r: NormalizedReserve): CheckedReservation {
    const now = this.#clock();
    // This store's leases on these keys are given back first (with what they admitted written), so
    // the check below counts what was really spent; so are stale ones elsewhere.
    const keys = new Set(r.caps.map((cap) => cap.key));
    if (this.#budget.size > 0 || this.#unacked !== undefined || this.#queued.length >= MAX_QUEUED_CLOSINGS)
      this.#applyQueued((lease) => keys.has(lease.key) || isLeaseStale(lease, now));
    let check = this.#check(r);
    // Queued settlements and expired holds matter only when they would refuse: look at them then, not on every prompt.
    if (!check.verdict.ok && this.#queued.length > 0 && !this.#queueApplied) {
      this.#applyQueued();
      check = this.#check(r);
    }
    if (!check.verdict.ok && this.#expire(now, r.caps) > 0) check = this.#check(r);
    const { verdict, used } = check;
    if (!verdict.ok) {
      const leases = this.#rows(LEASES_ON_KEY_SQL, { 1: verdict.key, 2: now });
      const otherLeases = leases.map((row) => String(row.tx_id)).filter((id) => !this.#budget.isOwn(id));
      return { verdict, otherLeases };
    }
    const insert = this.#statement(INSERT_HOLD_SQL);
    const addToTotal = this.#statement(ADD_HOLD_TO_TOTAL_SQL);
    const expiresAt = now + r.ttlMs;
    const hold = (txId: string, key: string, amount: bigint, owner: NormalizedReserve | undefined) => {
      insert.run({
        1: txId,
        2: key,
        3: amount,
        4: now,
        5: expiresAt,
        6: owner?.actorId ?? null,
        7: owner?.purpose ?? null,
        8: owner?.model ?? null,
      });
      addToTotal.run({ 1: key, 2: bucketOf(now), 3: amount, 4: expiresAt });
    };
    for (const cap of r.caps) hold(r.txId, cap.key, r.amount, r);
    // Room to spare on every key: lease some for the next prompts (budget-leases.ts).
    const sizes = leasesAllowed(r, now)
      ? r.caps.map((cap, i) => leaseSize(cap.cap, used[i] ?? 0n, r.amount))
      : [];
    if (sizes.length > 0 && sizes.every((size) => size !== undefined)) {
      const leases = r.caps.map((cap, i): Lease => {
        const size = sizes[i] as bigint;
        const txId = this.#budget.nextTxId();
        hold(txId, cap.key, size, undefined);
        return { key: cap.key, txId, createdAt: now, cap: cap.cap, free: size, used: false };
      });
      this.#onCommit.push(() => {
        for (const lease of leases) this.#budget.leases.set(lease.key, lease);
        this.#pendingAdded();
      });
    }
    return { verdict, otherLeases: [] };
  }

  /**
   * Marks held holds past their expiry as expired — of the given keys, or of all — and takes them
   * off their buckets' totals. Only buckets whose earliest expiry has passed are looked into.
   * Returns how many holds expired.
   */
  #expire(now: number, keys?: readonly { key: string }[]): number {
    const due =
      keys === undefined
        ? this.#rows(
            `SELECT ledger_key, bucket_start FROM switchboard_hold_totals
             WHERE held_count > 0 AND next_expiry <= $1`,
            { 1: now },
          )
        : keys.flatMap(({ key }) =>
            this.#rows(
              `SELECT ledger_key, bucket_start FROM switchboard_hold_totals
               WHERE ledger_key = $1 AND held_count > 0 AND next_expiry <= $2`,
              { 1: key, 2: now },
            ),
          );
    let expired = 0;
    for (const bucket of due) {
      const start = Number(bucket.bucket_start);
      const holds = this.#rows(
        `UPDATE switchboard_holds SET status = 'expired', settled_at = $4
         WHERE ledger_key = $1 AND created_at >= $2 AND created_at < $3 AND status = 'held' AND expires_at <= $4
         RETURNING reserved_nanocents`,
        { 1: bucket.ledger_key, 2: start, 3: start + HOLD_BUCKET_MS, 4: now },
      );
      const released = holds.reduce((sum, hold) => sum + toBigint(hold.reserved_nanocents), 0n);
      this.#statement(
        `UPDATE switchboard_hold_totals AS t SET amount_nanocents = t.amount_nanocents - $1,
           held_count = t.held_count - $2, next_expiry = ${nextExpirySql("$5")}
         WHERE ledger_key = $3 AND bucket_start = $4`,
      ).run({ 1: released, 2: holds.length, 3: bucket.ledger_key, 4: start, 5: now });
      expired += holds.length;
    }
    return expired;
  }

  protected closeHolds(txId: string, actual: bigint, status: ClosingStatus): Promise<number> {
    const operation = status === "settled" ? "settleHolds" : "rollbackHolds";
    return this.#async(operation, () => this.#closeHolds.immediate(txId, actual, status), true);
  }

  expireHolds(): Promise<number> {
    return this.#async("expireHolds", () =>
      this.#db
        .transaction(() => {
          const now = this.#clock();
          return this.#expire(now) + this.#refundExpired(now, undefined);
        })
        .immediate(),
    );
  }

  // --- accounting: allowances ----------------------------------------------------------------------

  protected addToAllowance(
    actor: string,
    delta: bigint,
    note: string | null,
    by: string | null,
  ): Promise<bigint> {
    return this.#async("topUpAllowance", () =>
      this.#db
        .transaction(() => {
          const now = this.#clock();
          const balance = toBigint(
            this.#get(
              `INSERT INTO switchboard_allowances AS a (actor_id, balance_nanocents, created_at, updated_at)
               VALUES ($1, $2, $3, $3)
               ON CONFLICT (actor_id) DO UPDATE SET balance_nanocents = a.balance_nanocents + excluded.balance_nanocents,
                 updated_at = excluded.updated_at
               RETURNING balance_nanocents`,
              { 1: actor, 2: delta, 3: now },
            )?.balance_nanocents,
          );
          this.#statement(
            `INSERT INTO switchboard_allowance_ledger (actor_id, kind, amount_nanocents, balance_after_nanocents, note, created_at, created_by)
             VALUES ($1, 'top_up', $2, $3, $4, $5, $6)`,
          ).run({ 1: actor, 2: delta, 3: balance, 4: note, 5: now, 6: by });
          return balance;
        })
        .immediate(),
    );
  }

  protected takeAllowance(reservation: NormalizedAllowanceReserve): Promise<ReserveAllowanceResult> {
    return this.#async("reserveAllowance", () => this.#takeAllowance.immediate(reservation), true);
  }

  #decrement(r: NormalizedAllowanceReserve, now: number): Row | undefined {
    return this.#get(
      `UPDATE switchboard_allowances SET balance_nanocents = balance_nanocents - $1, updated_at = $2
       WHERE actor_id = $3 AND balance_nanocents >= $1 RETURNING balance_nanocents`,
      { 1: r.amount, 2: now, 3: r.actorId },
    );
  }

  #takeAllowanceInTransaction(r: NormalizedAllowanceReserve): ReserveAllowanceResult {
    const now = this.#clock();
    if (this.#queued.length >= MAX_QUEUED_CLOSINGS) this.#applyQueued();
    let after = this.#decrement(r, now);
    if (after === undefined && this.#queued.length > 0 && !this.#queueApplied) {
      this.#applyQueued();
      after = this.#decrement(r, now);
    }
    if (after === undefined && this.#refundExpired(now, r.actorId) > 0) after = this.#decrement(r, now);
    if (after === undefined) {
      const balance = this.#get("SELECT balance_nanocents FROM switchboard_allowances WHERE actor_id = $1", {
        1: r.actorId,
      })?.balance_nanocents;
      return { ok: false, balance: balance === undefined ? undefined : toBigint(balance) };
    }
    this.#statement(
      `INSERT INTO switchboard_allowance_holds (tx_id, actor_id, reserved_nanocents, status, created_at, expires_at, purpose, model)
       VALUES ($1, $2, $3, 'held', $4, $5, $6, $7)`,
    ).run({ 1: r.txId, 2: r.actorId, 3: r.amount, 4: now, 5: now + r.ttlMs, 6: r.purpose, 7: r.model });
    return { ok: true, balance: toBigint(after.balance_nanocents) };
  }

  /** Marks expired reservations (of one actor, or all) and refunds them; returns how many. */
  #refundExpired(now: number, actorId: string | undefined): number {
    const expired =
      actorId === undefined
        ? this.#rows(expireAllowanceHoldsSql(false), { 1: now })
        : this.#rows(expireAllowanceHoldsSql(true), { 1: now, 2: actorId });
    for (const hold of expired) {
      this.#get(ADD_TO_BALANCE_SQL, { 1: hold.reserved_nanocents, 2: now, 3: hold.actor_id });
    }
    return expired.length;
  }

  protected finishAllowance(
    txId: string,
    actual: bigint,
    status: ClosingStatus,
  ): Promise<bigint | undefined> {
    const operation = status === "settled" ? "settleAllowance" : "rollbackAllowance";
    return this.#async(operation, () => this.#finishAllowance.immediate(txId, actual, status), true);
  }

  /** Refunds reserved − actual (negative = extra charge), or charges `actual` for an expired (refunded) reservation. */
  #finishAllowanceInTransaction(
    txId: string,
    actual: bigint,
    status: ClosingStatus,
    now: number,
  ): bigint | undefined {
    const params = { 1: status, 2: actual, 3: now, 4: txId };
    let closed = this.#get(
      `UPDATE switchboard_allowance_holds SET status = $1, settled_nanocents = $2, settled_at = $3
       WHERE tx_id = $4 AND status = 'held' RETURNING actor_id, reserved_nanocents`,
      params,
    );
    let refund = closed === undefined ? 0n : toBigint(closed.reserved_nanocents) - actual;
    if (closed === undefined && status === "settled") {
      // Expiry already refunded the reservation: charge the real cost now.
      closed = this.#get(
        `UPDATE switchboard_allowance_holds SET status = $1, settled_nanocents = $2, settled_at = $3
         WHERE tx_id = $4 AND status = 'expired' RETURNING actor_id`,
        params,
      );
      refund = -actual;
    }
    if (closed === undefined) return undefined;
    const balance = toBigint(
      this.#get(ADD_TO_BALANCE_SQL, { 1: refund, 2: now, 3: closed.actor_id })?.balance_nanocents,
    );
    if (status === "settled") {
      this.#statement(
        `INSERT INTO switchboard_allowance_ledger (actor_id, kind, amount_nanocents, balance_after_nanocents, tx_id, created_at)
         VALUES ($1, 'charge', $2, $3, $4, $5)`,
      ).run({ 1: closed.actor_id, 2: -actual, 3: balance, 4: txId, 5: now });
    }
    return balance;
  }
}

/**
 * The prompting thread only copies usage rows and ledger batches to this writer thread, which
 * writes them through its own connection. Each write resolves once committed, so a read after it
 * sees it.
 */
class WriterThread {
  readonly #worker: Worker;
  readonly #pending = new Map<
    number,
    { resolve: (reply: WriterReply) => void; reject: (error: unknown) => void }
  >();
  readonly #inflight = new Set<Promise<unknown>>();
  #nextId = 0;
  /** Set once the thread failed or ended: nothing sent to it would ever be answered. */
  dead = false;

  constructor(path: string, busyTimeoutMs: number) {
    const file = import.meta.url.endsWith(".ts") ? "./sqlite-usage-writer.ts" : "./sqlite-usage-writer.js";
    this.#worker = new Worker(new URL(file, import.meta.url), { workerData: { path, busyTimeoutMs } });
    this.#worker.unref();
    this.#worker.on("message", (reply: WriterReply) => {
      const waiter = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      if (this.#pending.size === 0) this.#worker.unref();
      if (!waiter) return;
      if ("error" in reply)
        waiter.reject(
          Object.assign(new Error(reply.error), reply.code === undefined ? {} : { code: reply.code }),
        );
      else waiter.resolve(reply);
    });
    this.#worker.on("error", (error) => this.#failAll(error));
    this.#worker.on("exit", (code) =>
      this.#failAll(new Error(`the usage writer thread exited with code ${code}`)),
    );
  }

  async insert(rows: UsageWriteRequest["rows"]): Promise<number> {
    try {
      const reply = await this.#send({ id: 0, rows });
      return "inserted" in reply ? reply.inserted : 0;
    } catch (error) {
      throw storageError("sqlite", "insertUsage", error);
    }
  }

  /** Rejects with the driver's error (the store keeps the batch and retries it). */
  async writeLedger(ledger: LedgerBatch): Promise<LedgerBatchResult> {
    const reply = await this.#send({ id: 0, ledger });
    if (!("ledger" in reply))
      throw new Error("the writer thread answered a ledger batch with something else");
    return reply.ledger;
  }

  #send(request: WriterRequest): Promise<WriterReply> {
    if (this.dead) return Promise.reject(new Error("the usage writer thread has stopped"));
    const id = this.#nextId++;
    const written = new Promise<WriterReply>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      // Held writes keep the process alive until they are committed.
      this.#worker.ref();
      this.#worker.postMessage({ ...request, id } satisfies WriterRequest);
    });
    this.#inflight.add(written);
    const forget = () => this.#inflight.delete(written);
    written.then(forget, forget);
    return written;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#inflight]);
    await this.#worker.terminate();
  }

  #failAll(error: unknown): void {
    this.dead = true;
    for (const waiter of this.#pending.values()) waiter.reject(error);
    this.#pending.clear();
  }
}
