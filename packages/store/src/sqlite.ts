/**
 * Embedded SQLite backend (better-sqlite3). The driver is synchronous, so each transaction runs to
 * completion without yielding to the event loop — atomic within the process. Across processes,
 * every write transaction uses BEGIN IMMEDIATE (the write lock is taken before reading) and
 * busy_timeout makes the other writers wait instead of failing.
 */

import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { Worker } from "node:worker_threads";
import Database from "better-sqlite3";
import { CREATE_MIGRATIONS_TABLE, MIGRATIONS, MIGRATIONS_TABLE } from "./migrations.ts";
import {
  bucketOf,
  clampLimit,
  duplicateTxError,
  firstWholeBucket,
  INSERT_USAGE_SQLITE,
  isUniqueViolation,
  LIST_SECRETS_SQL,
  mapAllowance,
  mapHold,
  mapLedgerEntry,
  mapSecret,
  mapSecretSummary,
  mapSummary,
  mapUsage,
  normalizeReserve,
  type Row,
  requireText,
  sortSummary,
  spentByKeySql,
  spentSql,
  storageError,
  summaryColumn,
  toBigint,
  toBuffer,
  toMs,
  toNanocents,
  usageParams,
} from "./shared.ts";
import type { UsageWriteReply, UsageWriteRequest } from "./sqlite-usage-writer.ts";
import { TokenTable } from "./tokens.ts";

/** `$n` placeholders bind by number: better-sqlite3 takes them as an object keyed 1, 2, …. */
function numbered(values: readonly unknown[]): Record<number, unknown> {
  const bound: Record<number, unknown> = {};
  values.forEach((value, index) => {
    bound[index + 1] = value;
  });
  return bound;
}

import type {
  Allowance,
  AllowanceLedgerEntry,
  AppliedMigration,
  Hold,
  HoldQuery,
  KeySpend,
  OpenStoreOptions,
  PutSecretInput,
  ReserveAgainstCapsInput,
  ReserveAgainstCapsResult,
  ReserveAllowanceInput,
  ReserveAllowanceResult,
  SecretSummary,
  Store,
  StoredSecret,
  StoredToken,
  UsageQuery,
  UsageRecord,
  UsageRecordInput,
  UsageSummaryQuery,
  UsageSummaryRow,
} from "./types.ts";

export const MEMORY_PATH = ":memory:";

/** better-sqlite3 has no reusable positional parameters, so the shared window SQL uses @p1…@p4 here. */
const named = (n: number) => `@p${n}`;

function spentParams(keyOrPrefix: string, windowStartMs: number): Record<string, string | number> {
  const whole = firstWholeBucket(windowStartMs);
  return { p1: keyOrPrefix, p2: whole, p3: windowStartMs, p4: whole };
}

export function openSqliteStore(path: string, options: OpenStoreOptions = {}): SqliteStore {
  try {
    if (path !== MEMORY_PATH) mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path);
    try {
      db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeoutMs ?? 5000))}`);
      if (path !== MEMORY_PATH) {
        db.pragma("journal_mode = WAL");
        // NORMAL is durable against application crashes in WAL mode and much faster than FULL.
        db.pragma("synchronous = NORMAL");
      }
      // Money and timestamps are 64-bit: read every integer as bigint so nothing rounds silently.
      db.defaultSafeIntegers(true);
      const busyTimeoutMs = Math.max(0, Math.trunc(options.busyTimeoutMs ?? 5000));
      const store = new SqliteStore(
        db,
        options.clock ?? Date.now,
        path === MEMORY_PATH || options.usageWriterThread === false ? undefined : { path, busyTimeoutMs },
      );
      store.migrate();
      return store;
    } catch (error) {
      db.close();
      throw error;
    }
  } catch (error) {
    throw storageError("sqlite", `open of ${path}`, error);
  }
}

export class SqliteStore implements Store {
  readonly kind = "sqlite" as const;
  readonly #tokens = new TokenTable({
    all: (operation, sql, params) =>
      this.#run(operation, () => this.#prepare(sql).all(numbered(params)) as Row[]),
    run: (operation, sql, params) =>
      this.#run(operation, () => this.#prepare(sql).run(numbered(params)).changes),
  });
  readonly #db: Database.Database;
  readonly #now: () => number;
  readonly #statements = new Map<string, Database.Statement>();
  readonly #writerFile: { path: string; busyTimeoutMs: number } | undefined;
  #writer: UsageWriterThread | undefined;
  #closed = false;

  /** `writerFile`: the database file, for writing usage rows on a separate thread (files only). */
  constructor(
    db: Database.Database,
    now: () => number,
    writerFile?: { path: string; busyTimeoutMs: number },
  ) {
    this.#db = db;
    this.#now = now;
    this.#writerFile = writerFile;
  }

  /** Each missing migration in its own IMMEDIATE transaction, re-checked inside it so two processes opening at once apply it once. */
  migrate(): void {
    const db = this.#db;
    db.exec(CREATE_MIGRATIONS_TABLE.sqlite);
    const isApplied = db.prepare(`SELECT 1 FROM ${MIGRATIONS_TABLE} WHERE name = ?`).pluck();
    const record = db.prepare(`INSERT INTO ${MIGRATIONS_TABLE} (name, applied_at) VALUES (?, ?)`);
    for (const migration of MIGRATIONS) {
      if (isApplied.get(migration.name) !== undefined) continue;
      db.transaction(() => {
        if (isApplied.get(migration.name) !== undefined) return;
        db.exec(migration.sqlite);
        record.run(migration.name, this.#now());
      }).immediate();
    }
  }

  /** Statements are compiled once per SQL text (a bounded set) and reused. */
  #prepare(sql: string): Database.Statement {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  /** Runs synchronous work, mapping driver failures to STORAGE_ERROR. */
  #run<T>(operation: string, work: () => T): Promise<T> {
    try {
      if (this.#closed) throw new Error("the store is closed");
      return Promise.resolve(work());
    } catch (error) {
      return Promise.reject(storageError("sqlite", operation, error));
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#writer?.close();
    this.#db.close();
  }

  migrations(): Promise<AppliedMigration[]> {
    return this.#run("migrations", () =>
      (
        this.#prepare(
          `SELECT name, applied_at FROM ${MIGRATIONS_TABLE} ORDER BY applied_at, name`,
        ).all() as Row[]
      ).map((row) => ({ name: String(row.name), appliedAt: new Date(Number(row.applied_at)) })),
    );
  }

  // --- secrets -----------------------------------------------------------------------------------

  putSecret(input: PutSecretInput): Promise<{ version: number }> {
    return this.#run("putSecret", () => {
      const name = requireText(input.name, "name");
      // One statement: SQLite holds the write lock for it, so max+1 cannot race.
      const version = this.#prepare(
        `INSERT INTO switchboard_secrets (name, version, ciphertext, key_id, note, created_at, created_by)
           SELECT ?, COALESCE(MAX(version), 0) + 1, ?, ?, ?, ?, ? FROM switchboard_secrets WHERE name = ?
           RETURNING version`,
      )
        .pluck()
        .get(
          name,
          toBuffer(input.ciphertext),
          requireText(input.keyId, "keyId"),
          input.note ?? null,
          this.#now(),
          input.actorId ?? null,
          name,
        );
      return { version: Number(version) };
    });
  }

  getSecret(name: string): Promise<StoredSecret | undefined> {
    return this.#run("getSecret", () => {
      const row = this.#prepare(
        `SELECT name, version, ciphertext, key_id, note, created_at, created_by FROM switchboard_secrets
           WHERE name = ? AND deleted_at IS NULL ORDER BY version DESC LIMIT 1`,
      ).get(name) as Row | undefined;
      return row === undefined ? undefined : mapSecret(row);
    });
  }

  markSecretUsed(name: string, version: number, actorId: string | undefined): Promise<void> {
    return this.#run("markSecretUsed", () => {
      this.#prepare(
        "UPDATE switchboard_secrets SET last_used_at = ?, last_used_by = ? WHERE name = ? AND version = ?",
      ).run(this.#now(), actorId ?? null, name, version);
    });
  }

  listSecrets(): Promise<SecretSummary[]> {
    return this.#run("listSecrets", () =>
      (this.#prepare(LIST_SECRETS_SQL).all() as Row[]).map(mapSecretSummary),
    );
  }

  deleteSecret(name: string, actorId: string | undefined): Promise<boolean> {
    return this.#run("deleteSecret", () => {
      const result = this.#prepare(
        "UPDATE switchboard_secrets SET deleted_at = ?, deleted_by = ? WHERE name = ? AND deleted_at IS NULL",
      ).run(this.#now(), actorId ?? null, name);
      return result.changes > 0;
    });
  }

  // --- usage log ---------------------------------------------------------------------------------

  insertUsage(rows: readonly UsageRecordInput[]): Promise<number> {
    if (this.#writerFile && rows.length > 0 && !this.#closed) {
      let params: ReturnType<typeof usageParams>[];
      try {
        params = rows.map(usageParams); // validated here, so bad input fails as it does in-thread
      } catch (error) {
        return Promise.reject(storageError("sqlite", "insertUsage", error));
      }
      this.#writer ??= new UsageWriterThread(this.#writerFile.path, this.#writerFile.busyTimeoutMs);
      return this.#writer.insert(params);
    }
    return this.#run("insertUsage", () => {
      if (rows.length === 0) return 0;
      const params = rows.map(usageParams);
      const insert = this.#prepare(INSERT_USAGE_SQLITE);
      return this.#db
        .transaction(() => {
          let inserted = 0;
          for (const values of params) inserted += insert.run(...values).changes;
          return inserted;
        })
        .immediate();
    });
  }

  listUsage(query: UsageQuery = {}): Promise<UsageRecord[]> {
    return this.#run("listUsage", () => {
      const where: string[] = [];
      const params: unknown[] = [];
      if (query.since !== undefined) {
        where.push("created_at >= ?");
        params.push(toMs(query.since, "since"));
      }
      if (query.purpose !== undefined) {
        where.push("purpose = ?");
        params.push(query.purpose);
      }
      if (query.actorId !== undefined) {
        where.push("actor_id = ?");
        params.push(query.actorId);
      }
      params.push(clampLimit(query.limit, 100));
      const sql = `SELECT * FROM switchboard_usage ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
        ORDER BY created_at DESC, id DESC LIMIT ?`;
      return (this.#prepare(sql).all(...params) as Row[]).map(mapUsage);
    });
  }

  summarizeUsage(query: UsageSummaryQuery): Promise<UsageSummaryRow[]> {
    return this.#run("summarizeUsage", () => {
      const column = summaryColumn(query.by);
      const since = query.since === undefined ? undefined : toMs(query.since, "since");
      const sql = `SELECT ${column} AS key, COUNT(*) AS responses, SUM(input_tokens) AS input_tokens,
          SUM(output_tokens) AS output_tokens, SUM(cached_tokens) AS cached_tokens, SUM(cost_nanocents) AS cost_nanocents
        FROM switchboard_usage ${since === undefined ? "" : "WHERE created_at >= ?"} GROUP BY ${column}`;
      const rows = this.#prepare(sql).all(...(since === undefined ? [] : [since])) as Row[];
      return sortSummary(rows.map(mapSummary));
    });
  }

  pruneUsage(olderThan: Date): Promise<number> {
    return this.#run(
      "pruneUsage",
      () =>
        this.#prepare("DELETE FROM switchboard_usage WHERE created_at < ?").run(toMs(olderThan, "olderThan"))
          .changes,
    );
  }

  // --- accounting: windowed holds ----------------------------------------------------------------

  reserveAgainstCaps(input: ReserveAgainstCapsInput): Promise<ReserveAgainstCapsResult> {
    return this.#run("reserveAgainstCaps", () => {
      const r = normalizeReserve(input);
      const spent = this.#prepare(`SELECT ${spentSql(named)}`).pluck();
      const insert = this.#prepare(
        `INSERT INTO switchboard_holds (tx_id, ledger_key, reserved_nanocents, status, created_at, actor_id, purpose, model)
         VALUES (?, ?, ?, 'held', ?, ?, ?, ?)`,
      );
      const addToTotal = this.#prepare(
        `INSERT INTO switchboard_hold_totals (ledger_key, bucket_start, amount_nanocents) VALUES (?, ?, ?)
         ON CONFLICT (ledger_key, bucket_start) DO UPDATE SET amount_nanocents = amount_nanocents + excluded.amount_nanocents`,
      );
      const reserve = this.#db.transaction((): ReserveAgainstCapsResult => {
        for (const cap of r.caps) {
          const used = toBigint(spent.get(spentParams(cap.key, cap.windowStartMs)));
          if (used + r.amount > cap.cap) return { ok: false, key: cap.key, used, cap: cap.cap };
        }
        const now = this.#now();
        for (const cap of r.caps) {
          insert.run(r.txId, cap.key, r.amount, now, r.actorId, r.purpose, r.model);
          addToTotal.run(cap.key, bucketOf(now), r.amount);
        }
        return { ok: true };
      });
      try {
        return reserve.immediate();
      } catch (error) {
        throw isUniqueViolation(error) ? duplicateTxError(r.txId, error) : error;
      }
    });
  }

  settleHolds(txId: string, actual: bigint): Promise<number> {
    return this.#run("settleHolds", () => this.#closeHolds(txId, toNanocents(actual, "actual"), "settled"));
  }

  rollbackHolds(txId: string): Promise<number> {
    return this.#run("rollbackHolds", () => this.#closeHolds(txId, 0n, "rolled_back"));
  }

  /** Closes every held hold of the tx and moves each key's bucket total by actual − reserved. */
  #closeHolds(txId: string, actual: bigint, status: "settled" | "rolled_back"): number {
    const db = this.#db;
    const close = this.#prepare(
      `UPDATE switchboard_holds SET status = ?, settled_nanocents = ?, settled_at = ?
       WHERE tx_id = ? AND status = 'held' RETURNING ledger_key, created_at, reserved_nanocents`,
    );
    const adjust = this.#prepare(
      `UPDATE switchboard_hold_totals SET amount_nanocents = amount_nanocents + ?
       WHERE ledger_key = ? AND bucket_start = ?`,
    );
    return db
      .transaction(() => {
        const closed = close.all(status, actual, this.#now(), txId) as Row[];
        for (const hold of closed) {
          adjust.run(
            actual - toBigint(hold.reserved_nanocents),
            hold.ledger_key,
            bucketOf(Number(hold.created_at)),
          );
        }
        return closed.length;
      })
      .immediate();
  }

  spentInWindow(key: string, windowStart: Date): Promise<bigint> {
    return this.#run("spentInWindow", () =>
      toBigint(
        this.#prepare(`SELECT ${spentSql(named)}`)
          .pluck()
          .get(spentParams(key, toMs(windowStart, "windowStart"))),
      ),
    );
  }

  spentByKey(prefix: string, windowStart: Date): Promise<KeySpend[]> {
    return this.#run("spentByKey", () => {
      const rows = this.#prepare(`${spentByKeySql(named)} ORDER BY ledger_key`).all(
        spentParams(prefix, toMs(windowStart, "windowStart")),
      ) as Row[];
      return rows.map((row) => ({ key: String(row.ledger_key), spent: toBigint(row.spent) }));
    });
  }

  listHolds(query: HoldQuery = {}): Promise<Hold[]> {
    return this.#run("listHolds", () => {
      const where: string[] = [];
      const params: unknown[] = [];
      if (query.key !== undefined) {
        where.push("ledger_key = ?");
        params.push(query.key);
      }
      if (query.txId !== undefined) {
        where.push("tx_id = ?");
        params.push(query.txId);
      }
      if (query.since !== undefined) {
        where.push("created_at >= ?");
        params.push(toMs(query.since, "since"));
      }
      params.push(clampLimit(query.limit, 50));
      const sql = `SELECT * FROM switchboard_holds ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
        ORDER BY created_at DESC, id DESC LIMIT ?`;
      return (this.#prepare(sql).all(...params) as Row[]).map(mapHold);
    });
  }

  // --- accounting: allowances --------------------------------------------------------------------

  topUpAllowance(actorId: string, amount: bigint, note?: string, by?: string): Promise<bigint> {
    return this.#run("topUpAllowance", () => {
      const actor = requireText(actorId, "actorId");
      const delta = toNanocents(amount, "amount", { allowNegative: true });
      const upsert = this.#prepare(
        `INSERT INTO switchboard_allowances (actor_id, balance_nanocents, created_at, updated_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (actor_id) DO UPDATE SET balance_nanocents = balance_nanocents + excluded.balance_nanocents,
             updated_at = excluded.updated_at
           RETURNING balance_nanocents`,
      ).pluck();
      const record = this.#prepare(
        `INSERT INTO switchboard_allowance_ledger (actor_id, kind, amount_nanocents, balance_after_nanocents, note, created_at, created_by)
         VALUES (?, 'top_up', ?, ?, ?, ?, ?)`,
      );
      return this.#db
        .transaction(() => {
          const now = this.#now();
          const balance = toBigint(upsert.get(actor, delta, now, now));
          record.run(actor, delta, balance, note ?? null, now, by ?? null);
          return balance;
        })
        .immediate();
    });
  }

  getAllowance(actorId: string): Promise<Allowance | undefined> {
    return this.#run("getAllowance", () => {
      const row = this.#prepare(
        "SELECT actor_id, balance_nanocents, updated_at FROM switchboard_allowances WHERE actor_id = ?",
      ).get(actorId) as Row | undefined;
      return row === undefined ? undefined : mapAllowance(row);
    });
  }

  listAllowances(): Promise<Allowance[]> {
    return this.#run("listAllowances", () =>
      (
        this.#prepare(
          "SELECT actor_id, balance_nanocents, updated_at FROM switchboard_allowances ORDER BY actor_id",
        ).all() as Row[]
      ).map(mapAllowance),
    );
  }

  reserveAllowance(input: ReserveAllowanceInput): Promise<ReserveAllowanceResult> {
    return this.#run("reserveAllowance", () => {
      const txId = requireText(input.txId, "txId");
      const actor = requireText(input.actorId, "actorId");
      const amount = toNanocents(input.amount, "amount");
      const decrement = this.#prepare(
        `UPDATE switchboard_allowances SET balance_nanocents = balance_nanocents - ?, updated_at = ?
           WHERE actor_id = ? AND balance_nanocents >= ? RETURNING balance_nanocents`,
      ).pluck();
      const balanceOf = this.#prepare(
        "SELECT balance_nanocents FROM switchboard_allowances WHERE actor_id = ?",
      ).pluck();
      const hold = this.#prepare(
        `INSERT INTO switchboard_allowance_holds (tx_id, actor_id, reserved_nanocents, status, created_at, purpose, model)
         VALUES (?, ?, ?, 'held', ?, ?, ?)`,
      );
      const reserve = this.#db.transaction((): ReserveAllowanceResult => {
        const now = this.#now();
        const after = decrement.get(amount, now, actor, amount);
        if (after === undefined) {
          const balance = balanceOf.get(actor);
          return { ok: false, balance: balance === undefined ? undefined : toBigint(balance) };
        }
        hold.run(txId, actor, amount, now, input.purpose ?? null, input.model ?? null);
        return { ok: true, balance: toBigint(after) };
      });
      try {
        return reserve.immediate();
      } catch (error) {
        throw isUniqueViolation(error) ? duplicateTxError(txId, error) : error;
      }
    });
  }

  settleAllowance(txId: string, actual: bigint): Promise<bigint | undefined> {
    return this.#run("settleAllowance", () =>
      this.#finishAllowance(txId, toNanocents(actual, "actual"), "settled"),
    );
  }

  rollbackAllowance(txId: string): Promise<bigint | undefined> {
    return this.#run("rollbackAllowance", () => this.#finishAllowance(txId, 0n, "rolled_back"));
  }

  /** Closes a held reservation: refunds reserved − actual (negative = extra charge) and records the charge. */
  #finishAllowance(txId: string, actual: bigint, status: "settled" | "rolled_back"): bigint | undefined {
    const db = this.#db;
    const close = this.#prepare(
      `UPDATE switchboard_allowance_holds SET status = ?, settled_nanocents = ?, settled_at = ?
       WHERE tx_id = ? AND status = 'held' RETURNING actor_id, reserved_nanocents`,
    );
    const refund = this.#prepare(
      `UPDATE switchboard_allowances SET balance_nanocents = balance_nanocents + ?, updated_at = ?
         WHERE actor_id = ? RETURNING balance_nanocents`,
    ).pluck();
    const record = this.#prepare(
      `INSERT INTO switchboard_allowance_ledger (actor_id, kind, amount_nanocents, balance_after_nanocents, tx_id, created_at)
       VALUES (?, 'charge', ?, ?, ?, ?)`,
    );
    return db
      .transaction((): bigint | undefined => {
        const now = this.#now();
        const held = close.get(status, actual, now, txId) as Row | undefined;
        if (held === undefined) return undefined;
        const actor = String(held.actor_id);
        const balance = toBigint(refund.get(toBigint(held.reserved_nanocents) - actual, now, actor));
        if (status === "settled") record.run(actor, -actual, balance, txId, now);
        return balance;
      })
      .immediate();
  }

  allowanceHistory(query: { actorId?: string; limit?: number } = {}): Promise<AllowanceLedgerEntry[]> {
    return this.#run("allowanceHistory", () => {
      const limit = clampLimit(query.limit, 100);
      const rows =
        query.actorId === undefined
          ? this.#prepare(
              "SELECT * FROM switchboard_allowance_ledger ORDER BY created_at DESC, id DESC LIMIT ?",
            ).all(limit)
          : this.#prepare(
              "SELECT * FROM switchboard_allowance_ledger WHERE actor_id = ? ORDER BY created_at DESC, id DESC LIMIT ?",
            ).all(query.actorId, limit);
      return (rows as Row[]).map(mapLedgerEntry);
    });
  }

  // --- gateway tokens (SQL in tokens.ts, shared by both backends) ---------------------------------

  insertToken(token: StoredToken): Promise<void> {
    return this.#tokens.insertToken(token);
  }

  findTokenByHash(hash: string): Promise<StoredToken | undefined> {
    return this.#tokens.findTokenByHash(hash);
  }

  listTokens(): Promise<StoredToken[]> {
    return this.#tokens.listTokens();
  }

  revokeToken(name: string, at: Date): Promise<boolean> {
    return this.#tokens.revokeToken(name, at);
  }

  markTokenUsed(hash: string, at: Date): Promise<void> {
    return this.#tokens.markTokenUsed(hash, at);
  }
}

/**
 * The prompting thread only copies usage rows to this writer thread, which inserts them through
 * its own connection. Resolves once the rows are committed, so a read after it sees them.
 */
class UsageWriterThread {
  readonly #worker: Worker;
  readonly #pending = new Map<
    number,
    { resolve: (inserted: number) => void; reject: (error: unknown) => void }
  >();
  readonly #inflight = new Set<Promise<number>>();
  #nextId = 0;

  constructor(path: string, busyTimeoutMs: number) {
    const file = import.meta.url.endsWith(".ts") ? "./sqlite-usage-writer.ts" : "./sqlite-usage-writer.js";
    this.#worker = new Worker(new URL(file, import.meta.url), { workerData: { path, busyTimeoutMs } });
    this.#worker.unref();
    this.#worker.on("message", (reply: UsageWriteReply) => {
      const waiter = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      if (this.#pending.size === 0) this.#worker.unref();
      if (!waiter) return;
      if ("error" in reply)
        waiter.reject(
          storageError("sqlite", "insertUsage", Object.assign(new Error(reply.error), { code: reply.code })),
        );
      else waiter.resolve(reply.inserted);
    });
    this.#worker.on("error", (error) => this.#failAll(error));
    this.#worker.on("exit", (code) =>
      this.#failAll(new Error(`the usage writer thread exited with code ${code}`)),
    );
  }

  insert(rows: UsageWriteRequest["rows"]): Promise<number> {
    const id = this.#nextId++;
    const written = new Promise<number>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      // Held writes keep the process alive until they are committed.
      this.#worker.ref();
      this.#worker.postMessage({ id, rows } satisfies UsageWriteRequest);
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
    for (const waiter of this.#pending.values()) waiter.reject(storageError("sqlite", "insertUsage", error));
    this.#pending.clear();
  }
}
