/**
 * PostgreSQL backend (pg Pool). Several processes may share one database, so every check-then-write
 * is either one statement whose WHERE re-checks under the row lock (allowances), or a transaction
 * serialised by transaction-scoped advisory locks taken before reading (capped holds, secret
 * versions). Batches go in one statement through unnest(): one round trip, whatever the size.
 */

import { SwitchboardError } from "@switchboard/core";
import pg from "pg";
import { CREATE_MIGRATIONS_TABLE, MIGRATIONS, MIGRATIONS_TABLE } from "./migrations.ts";
import {
  bucketOf,
  bucketSql,
  clampLimit,
  duplicateTxError,
  firstWholeBucket,
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
  USAGE_COLUMNS,
  usageParams,
} from "./shared.ts";
import { TokenTable } from "./tokens.ts";
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

/** First key of the two-part advisory locks, so ours never collide with an application's own. */
const LOCK_MIGRATIONS = 0x53570001;
const LOCK_HOLDS = 0x53570002;
const LOCK_SECRETS = 0x53570003;

/** Postgres array type of each usage column, in USAGE_COLUMNS order, for the unnest() insert. */
const USAGE_ARRAY_TYPES: Record<(typeof USAGE_COLUMNS)[number], string> = {
  id: "text",
  created_at: "bigint",
  model_requested: "text",
  model_answered: "text",
  purpose: "text",
  actor_id: "text",
  input_tokens: "integer",
  output_tokens: "integer",
  cached_tokens: "integer",
  cost_nanocents: "bigint",
  duration_ms: "integer",
  chain_id: "text",
  group_id: "text",
  conversation_id: "text",
  status: "text",
  error: "text",
  prompt: "text",
  system: "text",
  response: "text",
  tool_calls: "text",
  tool_results: "text",
};

const INSERT_USAGE_SQL = `INSERT INTO switchboard_usage (${USAGE_COLUMNS.join(", ")})
  SELECT * FROM unnest(${USAGE_COLUMNS.map((c, i) => `$${i + 1}::${USAGE_ARRAY_TYPES[c]}[]`).join(", ")})
  ON CONFLICT (id) DO NOTHING`;

/**
 * Locks every ledger key of a reservation. Distinct hashes in ascending order: all transactions take
 * locks in the same order, so they cannot deadlock (even when two keys share a hash). The schema is
 * part of the hashed text so separate schemas do not contend.
 */
const LOCK_KEYS_SQL = `SELECT pg_advisory_xact_lock(${LOCK_HOLDS}, h) FROM (
  SELECT DISTINCT hashtext(current_schema() || '/' || k) AS h FROM unnest($1::text[]) AS k ORDER BY h) AS locks`;

/** Locks the keys of a tx's open holds, in the same global order as LOCK_KEYS_SQL. */
const LOCK_TX_KEYS_SQL = `SELECT pg_advisory_xact_lock(${LOCK_HOLDS}, h) FROM (
  SELECT DISTINCT hashtext(current_schema() || '/' || ledger_key) AS h FROM switchboard_holds
  WHERE tx_id = $1 AND status = 'held' ORDER BY h) AS locks`;

const positional = (n: number) => `$${n}`;

/**
 * Runs after the key locks, in a new statement so its snapshot sees every commit made before the
 * locks were granted. Returns the first cap (in the caller's order) that would be exceeded; only when
 * none is, inserts one hold per key and adds the amount to each key's current bucket total.
 */
const CHECK_AND_HOLD_SQL = `
  WITH caps AS (
    SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[])
      WITH ORDINALITY AS c(ledger_key, cap, window_start, whole_from, ord)
  ), used AS (
    SELECT caps.ledger_key, caps.cap, caps.ord,
      ${spentSql((n) => ["caps.ledger_key", "caps.whole_from", "caps.window_start", "caps.whole_from"][n - 1] ?? "")} AS used
    FROM caps
  ), refused AS (
    SELECT ledger_key, used, cap FROM used WHERE used + $5::bigint > cap ORDER BY ord LIMIT 1
  ), held AS (
    INSERT INTO switchboard_holds (tx_id, ledger_key, reserved_nanocents, status, created_at, actor_id, purpose, model)
    SELECT $6, ledger_key, $5::bigint, 'held', $7::bigint, $8, $9, $10 FROM caps WHERE NOT EXISTS (SELECT 1 FROM refused)
  ), totals AS (
    INSERT INTO switchboard_hold_totals AS t (ledger_key, bucket_start, amount_nanocents)
    SELECT ledger_key, $11::bigint, $5::bigint FROM caps WHERE NOT EXISTS (SELECT 1 FROM refused)
    ON CONFLICT (ledger_key, bucket_start) DO UPDATE SET amount_nanocents = t.amount_nanocents + EXCLUDED.amount_nanocents
  )
  SELECT ledger_key, used::text AS used, cap::text AS cap FROM refused`;

/** Closes a tx's open holds and moves each key's bucket total by actual − reserved; returns how many. */
const CLOSE_HOLDS_SQL = `
  WITH closed AS (
    UPDATE switchboard_holds SET status = $1, settled_nanocents = $2::bigint, settled_at = $3::bigint
    WHERE tx_id = $4 AND status = 'held'
    RETURNING ledger_key, created_at, reserved_nanocents
  ), adjusted AS (
    UPDATE switchboard_hold_totals t SET amount_nanocents = t.amount_nanocents + ($2::bigint - closed.reserved_nanocents)
    FROM closed WHERE t.ledger_key = closed.ledger_key AND t.bucket_start = ${bucketSql("closed.created_at")}
  )
  SELECT count(*)::int AS closed FROM closed`;

const SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

export async function openPostgresStore(url: string, options: OpenStoreOptions = {}): Promise<PostgresStore> {
  const { connectionString, schema } = splitSchema(url, options.schema);
  const pool = new pg.Pool({
    connectionString,
    max: options.poolSize ?? 10,
    // Every pooled connection resolves unqualified table names in our schema, so the SQL stays schema-free.
    ...(schema === undefined ? {} : { options: `-c search_path=${schema}` }),
  });
  // An idle client losing its server connection emits on the pool; without a listener that crashes the process.
  pool.on("error", () => {});
  const store = new PostgresStore(pool, options.clock ?? Date.now);
  try {
    await store.migrate(schema);
  } catch (error) {
    await pool.end().catch(() => {});
    throw connectError(url, error);
  }
  return store;
}

/** The schema comes from options or a `?schema=` URL parameter; pg itself must not see that parameter. */
function splitSchema(
  url: string,
  optionSchema: string | undefined,
): { connectionString: string; schema?: string } {
  let connectionString = url;
  let schema = optionSchema;
  const parsed = URL.canParse(url) ? new URL(url) : undefined;
  if (parsed?.searchParams.has("schema")) {
    schema ??= parsed.searchParams.get("schema") ?? undefined;
    parsed.searchParams.delete("schema");
    connectionString = parsed.toString();
  }
  if (schema !== undefined && !SCHEMA_PATTERN.test(schema)) {
    throw new SwitchboardError(
      "INVALID_CONFIG",
      `PostgreSQL schema "${schema}" is not allowed: use lower-case letters, digits and underscores, starting with a letter or underscore.`,
      { schema },
    );
  }
  return schema === undefined ? { connectionString } : { connectionString, schema };
}

/** Describes the server without the password, which may be in the URL. */
function describeServer(url: string): string {
  if (!URL.canParse(url)) return "the configured PostgreSQL server";
  const parsed = new URL(url);
  return `${parsed.username ? `${decodeURIComponent(parsed.username)}@` : ""}${parsed.host}${parsed.pathname}`;
}

function connectError(url: string, error: unknown): SwitchboardError {
  if (error instanceof SwitchboardError) return error;
  const message = error instanceof Error ? error.message || (error as { code?: string }).code : String(error);
  return new SwitchboardError(
    "STORAGE_ERROR",
    `Cannot open PostgreSQL storage at ${describeServer(url)}: ${message}. Check the storage URL and that the server accepts connections.`,
    { backend: "postgres" },
    { cause: error },
  );
}

export class PostgresStore implements Store {
  readonly kind = "postgres" as const;
  readonly #tokens = new TokenTable({
    all: async (operation, sql, params) => (await this.#query(operation, sql, [...params])).rows,
    run: async (operation, sql, params) => (await this.#query(operation, sql, [...params])).rowCount ?? 0,
  });
  readonly #pool: pg.Pool;
  readonly #now: () => number;
  #closed = false;

  constructor(pool: pg.Pool, now: () => number) {
    this.#pool = pool;
    this.#now = now;
  }

  /**
   * A session advisory lock (per schema) serialises concurrent openers: the schema and each missing
   * migration are created by exactly one of them; each migration commits in its own transaction.
   */
  async migrate(schema: string | undefined): Promise<void> {
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    try {
      const lockKey = schema ?? "";
      await client.query(`SELECT pg_advisory_lock(${LOCK_MIGRATIONS}, hashtext($1))`, [lockKey]);
      try {
        if (schema !== undefined) await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
        await client.query(CREATE_MIGRATIONS_TABLE.postgres);
        const applied = new Set(
          (await client.query<{ name: string }>(`SELECT name FROM ${MIGRATIONS_TABLE}`)).rows.map(
            (r) => r.name,
          ),
        );
        for (const migration of MIGRATIONS) {
          if (applied.has(migration.name)) continue;
          await client.query("BEGIN");
          try {
            await client.query(migration.postgres);
            await client.query(`INSERT INTO ${MIGRATIONS_TABLE} (name, applied_at) VALUES ($1, $2)`, [
              migration.name,
              this.#now(),
            ]);
            await client.query("COMMIT");
          } catch (error) {
            await client.query("ROLLBACK").catch(() => {});
            throw new SwitchboardError(
              "STORAGE_ERROR",
              `Migration ${migration.name} failed: ${error instanceof Error ? error.message : String(error)}`,
              { backend: "postgres", migration: migration.name },
              { cause: error },
            );
          }
        }
      } finally {
        await client.query(`SELECT pg_advisory_unlock(${LOCK_MIGRATIONS}, hashtext($1))`, [lockKey]);
      }
    } catch (error) {
      broken = error instanceof Error ? error : new Error(String(error));
      throw error;
    } finally {
      client.release(broken);
    }
  }

  async #query(operation: string, sql: string, params: unknown[] = []): Promise<pg.QueryResult<Row>> {
    if (this.#closed) throw storageError("postgres", operation, new Error("the store is closed"));
    try {
      return await this.#pool.query<Row>(sql, params);
    } catch (error) {
      throw storageError("postgres", operation, error);
    }
  }

  /** BEGIN … COMMIT on one pooled client; a failed client is discarded rather than reused. */
  async #transaction<T>(operation: string, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    if (this.#closed) throw storageError("postgres", operation, new Error("the store is closed"));
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw storageError("postgres", operation, error);
    }
    let broken: Error | undefined;
    try {
      await client.query("BEGIN");
      const result = await work(client);
      await client.query("COMMIT");
      return result;
    } catch (error) {
      try {
        await client.query("ROLLBACK");
      } catch (rollbackError) {
        broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
      }
      throw storageError("postgres", operation, error);
    } finally {
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }

  async migrations(): Promise<AppliedMigration[]> {
    const result = await this.#query(
      "migrations",
      `SELECT name, applied_at FROM ${MIGRATIONS_TABLE} ORDER BY applied_at, name`,
    );
    return result.rows.map((row) => ({
      name: String(row.name),
      appliedAt: new Date(Number(row.applied_at)),
    }));
  }

  // --- secrets -----------------------------------------------------------------------------------

  async putSecret(input: PutSecretInput): Promise<{ version: number }> {
    const name = requireText(input.name, "name");
    const params = [name, toBuffer(input.ciphertext), requireText(input.keyId, "keyId"), input.note ?? null];
    return this.#transaction("putSecret", async (client) => {
      // Serialise writers of one name so max+1 never collides on (name, version).
      await client.query(
        `SELECT pg_advisory_xact_lock(${LOCK_SECRETS}, hashtext(current_schema() || '/' || $1))`,
        [name],
      );
      const result = await client.query<{ version: number }>(
        `INSERT INTO switchboard_secrets (name, version, ciphertext, key_id, note, created_at, created_by)
         SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $4, $5, $6 FROM switchboard_secrets WHERE name = $1
         RETURNING version`,
        [...params, this.#now(), input.actorId ?? null],
      );
      return { version: Number(result.rows[0]?.version) };
    });
  }

  async getSecret(name: string): Promise<StoredSecret | undefined> {
    const result = await this.#query(
      "getSecret",
      `SELECT name, version, ciphertext, key_id, note, created_at, created_by FROM switchboard_secrets
       WHERE name = $1 AND deleted_at IS NULL ORDER BY version DESC LIMIT 1`,
      [name],
    );
    const row = result.rows[0];
    return row === undefined ? undefined : mapSecret(row);
  }

  async markSecretUsed(name: string, version: number, actorId: string | undefined): Promise<void> {
    await this.#query(
      "markSecretUsed",
      "UPDATE switchboard_secrets SET last_used_at = $1, last_used_by = $2 WHERE name = $3 AND version = $4",
      [this.#now(), actorId ?? null, name, version],
    );
  }

  async listSecrets(): Promise<SecretSummary[]> {
    return (await this.#query("listSecrets", LIST_SECRETS_SQL)).rows.map(mapSecretSummary);
  }

  async deleteSecret(name: string, actorId: string | undefined): Promise<boolean> {
    const result = await this.#query(
      "deleteSecret",
      "UPDATE switchboard_secrets SET deleted_at = $1, deleted_by = $2 WHERE name = $3 AND deleted_at IS NULL",
      [this.#now(), actorId ?? null, name],
    );
    return (result.rowCount ?? 0) > 0;
  }

  // --- usage log ---------------------------------------------------------------------------------

  async insertUsage(rows: readonly UsageRecordInput[]): Promise<number> {
    if (rows.length === 0) return 0;
    // Column-major arrays: one array parameter per column, so the batch is one statement.
    const columns: unknown[][] = USAGE_COLUMNS.map(() => []);
    for (const row of rows) {
      usageParams(row).forEach((value, i) => {
        columns[i]?.push(typeof value === "bigint" ? value.toString() : value);
      });
    }
    const result = await this.#query("insertUsage", INSERT_USAGE_SQL, columns);
    return result.rowCount ?? 0;
  }

  async listUsage(query: UsageQuery = {}): Promise<UsageRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (query.since !== undefined) {
      params.push(toMs(query.since, "since"));
      where.push(`created_at >= $${params.length}`);
    }
    if (query.purpose !== undefined) {
      params.push(query.purpose);
      where.push(`purpose = $${params.length}`);
    }
    if (query.actorId !== undefined) {
      params.push(query.actorId);
      where.push(`actor_id = $${params.length}`);
    }
    params.push(clampLimit(query.limit, 100));
    const sql = `SELECT * FROM switchboard_usage ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
      ORDER BY created_at DESC, id DESC LIMIT $${params.length}`;
    return (await this.#query("listUsage", sql, params)).rows.map(mapUsage);
  }

  async summarizeUsage(query: UsageSummaryQuery): Promise<UsageSummaryRow[]> {
    const column = summaryColumn(query.by);
    const since = query.since === undefined ? undefined : toMs(query.since, "since");
    const sql = `SELECT ${column} AS key, COUNT(*) AS responses, SUM(input_tokens) AS input_tokens,
        SUM(output_tokens) AS output_tokens, SUM(cached_tokens) AS cached_tokens, SUM(cost_nanocents)::text AS cost_nanocents
      FROM switchboard_usage ${since === undefined ? "" : "WHERE created_at >= $1"} GROUP BY ${column}`;
    const result = await this.#query("summarizeUsage", sql, since === undefined ? [] : [since]);
    return sortSummary(result.rows.map(mapSummary));
  }

  async pruneUsage(olderThan: Date): Promise<number> {
    const result = await this.#query("pruneUsage", "DELETE FROM switchboard_usage WHERE created_at < $1", [
      toMs(olderThan, "olderThan"),
    ]);
    return result.rowCount ?? 0;
  }

  // --- accounting: windowed holds ----------------------------------------------------------------

  async reserveAgainstCaps(input: ReserveAgainstCapsInput): Promise<ReserveAgainstCapsResult> {
    const r = normalizeReserve(input);
    if (r.caps.length === 0) return { ok: true };
    try {
      return await this.#transaction("reserveAgainstCaps", async (client) => {
        await client.query(LOCK_KEYS_SQL, [r.caps.map((c) => c.key)]);
        const now = this.#now();
        const result = await client.query<{ ledger_key: string; used: string; cap: string }>(
          CHECK_AND_HOLD_SQL,
          [
            r.caps.map((c) => c.key),
            r.caps.map((c) => c.cap.toString()),
            r.caps.map((c) => c.windowStartMs),
            r.caps.map((c) => firstWholeBucket(c.windowStartMs)),
            r.amount.toString(),
            r.txId,
            now,
            r.actorId,
            r.purpose,
            r.model,
            bucketOf(now),
          ],
        );
        const refused = result.rows[0];
        if (refused === undefined) return { ok: true } as const;
        return {
          ok: false,
          key: refused.ledger_key,
          used: BigInt(refused.used),
          cap: BigInt(refused.cap),
        } as const;
      });
    } catch (error) {
      throw isUniqueViolation((error as { cause?: unknown }).cause) ? duplicateTxError(r.txId, error) : error;
    }
  }

  settleHolds(txId: string, actual: bigint): Promise<number> {
    return this.#closeHolds("settleHolds", txId, toNanocents(actual, "actual"), "settled");
  }

  rollbackHolds(txId: string): Promise<number> {
    return this.#closeHolds("rollbackHolds", txId, 0n, "rolled_back");
  }

  /**
   * Takes the same key locks as a reservation: every change to a key's bucket totals then happens
   * under that key's lock, so row locks on the totals can never deadlock.
   */
  #closeHolds(
    operation: string,
    txId: string,
    actual: bigint,
    status: "settled" | "rolled_back",
  ): Promise<number> {
    return this.#transaction(operation, async (client) => {
      await client.query(LOCK_TX_KEYS_SQL, [txId]);
      const result = await client.query<{ closed: number }>(CLOSE_HOLDS_SQL, [
        status,
        actual.toString(),
        this.#now(),
        txId,
      ]);
      return result.rows[0]?.closed ?? 0;
    });
  }

  async spentInWindow(key: string, windowStart: Date): Promise<bigint> {
    const start = toMs(windowStart, "windowStart");
    const whole = firstWholeBucket(start);
    const result = await this.#query("spentInWindow", `SELECT (${spentSql(positional)})::text AS spent`, [
      key,
      whole,
      start,
      whole,
    ]);
    return toBigint(result.rows[0]?.spent ?? "0");
  }

  async spentByKey(prefix: string, windowStart: Date): Promise<KeySpend[]> {
    const start = toMs(windowStart, "windowStart");
    const whole = firstWholeBucket(start);
    const result = await this.#query(
      "spentByKey",
      `${spentByKeySql(positional)} ORDER BY ledger_key COLLATE "C"`,
      [prefix, whole, start, whole],
    );
    return result.rows.map((row) => ({ key: String(row.ledger_key), spent: toBigint(row.spent) }));
  }

  async listHolds(query: HoldQuery = {}): Promise<Hold[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (query.key !== undefined) {
      params.push(query.key);
      where.push(`ledger_key = $${params.length}`);
    }
    if (query.txId !== undefined) {
      params.push(query.txId);
      where.push(`tx_id = $${params.length}`);
    }
    if (query.since !== undefined) {
      params.push(toMs(query.since, "since"));
      where.push(`created_at >= $${params.length}`);
    }
    params.push(clampLimit(query.limit, 50));
    const sql = `SELECT * FROM switchboard_holds ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
      ORDER BY created_at DESC, id DESC LIMIT $${params.length}`;
    return (await this.#query("listHolds", sql, params)).rows.map(mapHold);
  }

  // --- accounting: allowances --------------------------------------------------------------------

  async topUpAllowance(actorId: string, amount: bigint, note?: string, by?: string): Promise<bigint> {
    const actor = requireText(actorId, "actorId");
    const delta = toNanocents(amount, "amount", { allowNegative: true });
    const now = this.#now();
    // Upsert and ledger entry in one statement: atomic without an explicit transaction.
    const result = await this.#query(
      "topUpAllowance",
      `WITH balance AS (
         INSERT INTO switchboard_allowances AS a (actor_id, balance_nanocents, created_at, updated_at)
         VALUES ($1, $2, $3, $3)
         ON CONFLICT (actor_id) DO UPDATE SET balance_nanocents = a.balance_nanocents + EXCLUDED.balance_nanocents,
           updated_at = EXCLUDED.updated_at
         RETURNING balance_nanocents)
       INSERT INTO switchboard_allowance_ledger (actor_id, kind, amount_nanocents, balance_after_nanocents, note, created_at, created_by)
       SELECT $1, 'top_up', $2, balance_nanocents, $4, $3, $5 FROM balance
       RETURNING balance_after_nanocents`,
      [actor, delta.toString(), now, note ?? null, by ?? null],
    );
    return toBigint(result.rows[0]?.balance_after_nanocents);
  }

  async getAllowance(actorId: string): Promise<Allowance | undefined> {
    const result = await this.#query(
      "getAllowance",
      "SELECT actor_id, balance_nanocents, updated_at FROM switchboard_allowances WHERE actor_id = $1",
      [actorId],
    );
    const row = result.rows[0];
    return row === undefined ? undefined : mapAllowance(row);
  }

  async listAllowances(): Promise<Allowance[]> {
    const result = await this.#query(
      "listAllowances",
      `SELECT actor_id, balance_nanocents, updated_at FROM switchboard_allowances ORDER BY actor_id COLLATE "C"`,
    );
    return result.rows.map(mapAllowance);
  }

  async reserveAllowance(input: ReserveAllowanceInput): Promise<ReserveAllowanceResult> {
    const txId = requireText(input.txId, "txId");
    const actor = requireText(input.actorId, "actorId");
    const amount = toNanocents(input.amount, "amount");
    const now = this.#now();
    let result: pg.QueryResult<Row>;
    try {
      // The UPDATE's WHERE is re-evaluated after waiting for the row lock, so concurrent
      // reservations can never take the balance below zero; the hold is written in the same statement.
      result = await this.#query(
        "reserveAllowance",
        `WITH taken AS (
           UPDATE switchboard_allowances SET balance_nanocents = balance_nanocents - $1, updated_at = $2
           WHERE actor_id = $3 AND balance_nanocents >= $1
           RETURNING balance_nanocents),
         held AS (
           INSERT INTO switchboard_allowance_holds (tx_id, actor_id, reserved_nanocents, status, created_at, purpose, model)
           SELECT $4, $3, $1, 'held', $2, $5, $6 FROM taken)
         SELECT balance_nanocents FROM taken`,
        [amount.toString(), now, actor, txId, input.purpose ?? null, input.model ?? null],
      );
    } catch (error) {
      throw isUniqueViolation((error as { cause?: unknown }).cause) ? duplicateTxError(txId, error) : error;
    }
    const after = result.rows[0];
    if (after !== undefined) return { ok: true, balance: toBigint(after.balance_nanocents) };
    const current = await this.getAllowance(actor);
    return { ok: false, balance: current?.balance };
  }

  settleAllowance(txId: string, actual: bigint): Promise<bigint | undefined> {
    return this.#finishAllowance("settleAllowance", txId, toNanocents(actual, "actual"), "settled");
  }

  rollbackAllowance(txId: string): Promise<bigint | undefined> {
    return this.#finishAllowance("rollbackAllowance", txId, 0n, "rolled_back");
  }

  /**
   * One statement: closing the hold (only if still held — a concurrent second settle finds nothing),
   * refunding reserved − actual (negative = extra charge) and recording the charge.
   */
  async #finishAllowance(
    operation: string,
    txId: string,
    actual: bigint,
    status: "settled" | "rolled_back",
  ): Promise<bigint | undefined> {
    const result = await this.#query(
      operation,
      `WITH closed AS (
         UPDATE switchboard_allowance_holds SET status = $1, settled_nanocents = $2, settled_at = $3
         WHERE tx_id = $4 AND status = 'held'
         RETURNING actor_id, reserved_nanocents),
       refunded AS (
         UPDATE switchboard_allowances a SET balance_nanocents = a.balance_nanocents + (closed.reserved_nanocents - $2),
           updated_at = $3
         FROM closed WHERE a.actor_id = closed.actor_id
         RETURNING a.actor_id, a.balance_nanocents),
       charged AS (
         INSERT INTO switchboard_allowance_ledger (actor_id, kind, amount_nanocents, balance_after_nanocents, tx_id, created_at)
         SELECT actor_id, 'charge', -$2::bigint, balance_nanocents, $4, $3 FROM refunded WHERE $1 = 'settled')
       SELECT balance_nanocents FROM refunded`,
      [status, actual.toString(), this.#now(), txId],
    );
    const row = result.rows[0];
    return row === undefined ? undefined : toBigint(row.balance_nanocents);
  }

  async allowanceHistory(query: { actorId?: string; limit?: number } = {}): Promise<AllowanceLedgerEntry[]> {
    const limit = clampLimit(query.limit, 100);
    const result =
      query.actorId === undefined
        ? await this.#query(
            "allowanceHistory",
            "SELECT * FROM switchboard_allowance_ledger ORDER BY created_at DESC, id DESC LIMIT $1",
            [limit],
          )
        : await this.#query(
            "allowanceHistory",
            "SELECT * FROM switchboard_allowance_ledger WHERE actor_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
            [query.actorId, limit],
          );
    return result.rows.map(mapLedgerEntry);
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
