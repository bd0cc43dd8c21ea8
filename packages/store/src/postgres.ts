/**
 * PostgreSQL backend (pg Pool). Several processes may share one database, so every check-then-write
 * is either one statement whose WHERE re-checks under the row lock (allowances), or a transaction
 * serialised by transaction-scoped advisory locks taken before reading (capped holds, secret
 * versions). Batches go in one statement through unnest(): one round trip, whatever the size.
 * Every connection has a connect timeout and a statement timeout, so a server that stops
 * answering fails a call with one clear line instead of hanging it.
 */

import { createRequire } from "node:module";
import { SwitchboardError } from "@switchboard/core";
import pg from "pg";
import { overridesChannel, type Statement } from "./admin.ts";
import type { ExitStorage } from "./exit-writer.ts";
import { CREATE_MIGRATIONS_TABLE, MIGRATIONS } from "./migrations.ts";
import {
  ADD_HOLD_TO_TOTAL_ON_CONFLICT,
  bucketSql,
  expireAllowanceHoldsSql,
  INSERT_SECRET_VERSION_SQL,
  IS_MIGRATION_APPLIED_SQL,
  nextExpirySql,
  POSTGRES_DIALECT,
  RECORD_MIGRATION_SQL,
  releaseFromTotalSet,
  spentSql,
  USAGE_COLUMNS,
} from "./queries.ts";
import type { NormalizedAllowanceReserve, NormalizedReserve, Row, UsageValues } from "./shared.ts";
import { bucketOf, HOLD_BUCKET_MS, storageError, toBigint } from "./shared.ts";
import { type ClosingStatus, SqlStore } from "./sql-store.ts";
import type {
  OpenStoreOptions,
  ReserveAgainstCapsResult,
  ReserveAllowanceResult,
  UsageRecordInput,
} from "./types.ts";

/** First key of the two-part advisory locks, so ours never collide with an application's own. */
const LOCK_MIGRATIONS = 0x53570001;
const LOCK_HOLDS = 0x53570002;
const LOCK_SECRETS = 0x53570003;

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_QUERY_TIMEOUT_MS = 30_000;
/** The client gives up a little after the server's statement timeout, for a server that no longer answers at all. */
const CLIENT_TIMEOUT_GRACE_MS = 2_000;

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
 * Locks ledger keys: distinct hashes in ascending order, so all transactions take locks in the same
 * order and cannot deadlock (even when two keys share a hash). The schema is part of the hashed
 * text so separate schemas do not contend.
 */
function lockKeysSql(keysFrom: string): string {
  return `SELECT pg_advisory_xact_lock(${LOCK_HOLDS}, h) FROM (
    SELECT DISTINCT hashtext(current_schema() || '/' || k) AS h FROM (${keysFrom}) AS keys ORDER BY h) AS locks`;
}

/** Params: the keys of a reservation. */
const LOCK_KEYS_SQL = lockKeysSql("SELECT unnest($1::text[]) AS k");
/** Params: a tx id; its holds that settling may still change. */
const LOCK_TX_KEYS_SQL = lockKeysSql(
  "SELECT ledger_key AS k FROM switchboard_holds WHERE tx_id = $1 AND status IN ('held', 'expired')",
);
/** Buckets that may hold an expired hold (their earliest expiry has passed). Params: now. */
const DUE_BUCKETS = "FROM switchboard_hold_totals WHERE held_count > 0 AND next_expiry <= $1";
/** Params: now; every key with such a bucket. */
const LOCK_EXPIRING_KEYS_SQL = lockKeysSql(`SELECT ledger_key AS k ${DUE_BUCKETS}`);

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
      ${spentSql("caps.ledger_key", "caps.whole_from", "caps.window_start")} AS used
    FROM caps
  ), refused AS (
    SELECT ledger_key, used, cap FROM used WHERE used + $5::bigint > cap ORDER BY ord LIMIT 1
  ), held AS (
    INSERT INTO switchboard_holds (tx_id, ledger_key, reserved_nanocents, status, created_at, expires_at, actor_id, purpose, model)
    SELECT $6, ledger_key, $5::bigint, 'held', $7::bigint, $12::bigint, $8, $9, $10 FROM caps
    WHERE NOT EXISTS (SELECT 1 FROM refused)
  ), totals AS (
    INSERT INTO switchboard_hold_totals AS t (ledger_key, bucket_start, amount_nanocents, held_count, next_expiry)
    SELECT ledger_key, $11::bigint, $5::bigint, 1, $12::bigint FROM caps WHERE NOT EXISTS (SELECT 1 FROM refused)
    ${ADD_HOLD_TO_TOTAL_ON_CONFLICT}
  )
  SELECT ledger_key, used::text AS used, cap::text AS cap FROM refused`;

/**
 * Marks held holds past their expiry as expired, in the due buckets of the keys given (already
 * locked), and takes them off those totals, whose earliest expiry is then recomputed from the
 * holds still held (this statement's snapshot still sees the expiring ones as held, hence
 * "expires after now"). Params: now, keys.
 */
const EXPIRE_HOLDS_SQL = `
  WITH due AS (
    SELECT ledger_key, bucket_start ${DUE_BUCKETS} AND ledger_key = ANY($2::text[])
  ), expired AS (
    UPDATE switchboard_holds h SET status = 'expired', settled_at = $1::bigint
    FROM due WHERE h.ledger_key = due.ledger_key AND h.created_at >= due.bucket_start
      AND h.created_at < due.bucket_start + ${HOLD_BUCKET_MS} AND h.status = 'held' AND h.expires_at <= $1::bigint
    RETURNING h.ledger_key, h.created_at, h.reserved_nanocents
  ), per_bucket AS (
    SELECT ledger_key, ${bucketSql("created_at")} AS bucket_start, SUM(reserved_nanocents) AS amount, COUNT(*) AS holds
    FROM expired GROUP BY 1, 2
  ), adjusted AS (
    UPDATE switchboard_hold_totals t SET amount_nanocents = t.amount_nanocents - COALESCE(p.amount, 0),
      held_count = t.held_count - COALESCE(p.holds, 0), next_expiry = ${nextExpirySql("$1::bigint")}
    FROM due LEFT JOIN per_bucket p ON p.ledger_key = due.ledger_key AND p.bucket_start = due.bucket_start
    WHERE t.ledger_key = due.ledger_key AND t.bucket_start = due.bucket_start
  )
  SELECT count(*)::int AS expired FROM expired`;

/**
 * Settles a tx's held or expired holds ($1 = 'settled'), or rolls back its held ones, and moves
 * each key's bucket total by what the hold counts now minus what it counted before (its
 * reservation while held, nothing once expired). Params: status, actual, now, tx id.
 */
const CLOSE_HOLDS_SQL = `
  WITH target AS (
    SELECT id, status AS was FROM switchboard_holds
    WHERE tx_id = $4 AND (status = 'held' OR (status = 'expired' AND $1 = 'settled'))
  ), closed AS (
    UPDATE switchboard_holds h SET status = $1, settled_nanocents = $2::bigint, settled_at = $3::bigint
    FROM target WHERE h.id = target.id
    RETURNING h.ledger_key, h.created_at,
      CASE target.was WHEN 'held' THEN h.reserved_nanocents ELSE 0 END AS counted,
      CASE target.was WHEN 'held' THEN 1 ELSE 0 END AS released
  ), adjusted AS (
    UPDATE switchboard_hold_totals t SET ${releaseFromTotalSet("$2::bigint - closed.counted", "closed.released")}
    FROM closed WHERE t.ledger_key = closed.ledger_key AND t.bucket_start = ${bucketSql("closed.created_at")}
  )
  SELECT count(*)::int AS closed FROM closed`;

/**
 * Refunds expired reservations in one statement: the refunds are summed per actor, as one
 * statement may update a balance only once. Params: now (and the actor for one actor's).
 */
function refundExpiredSql(oneActor: boolean): string {
  return `
  WITH expired AS (${expireAllowanceHoldsSql(oneActor)}),
  refunds AS (SELECT actor_id, SUM(reserved_nanocents) AS amount FROM expired GROUP BY actor_id),
  refunded AS (
    UPDATE switchboard_allowances a SET balance_nanocents = a.balance_nanocents + refunds.amount, updated_at = $1
    FROM refunds WHERE a.actor_id = refunds.actor_id)
  SELECT count(*)::int AS expired FROM expired`;
}

const SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

interface ConnectionSettings {
  connectionString: string;
  schema?: string;
  connectTimeoutMs: number;
  queryTimeoutMs: number;
}

export async function openPostgresStore(url: string, options: OpenStoreOptions = {}): Promise<PostgresStore> {
  const settings = connectionSettings(url, options);
  const pool = new pg.Pool({
    connectionString: settings.connectionString,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: settings.connectTimeoutMs,
    statement_timeout: settings.queryTimeoutMs,
    query_timeout: settings.queryTimeoutMs + CLIENT_TIMEOUT_GRACE_MS,
    // Every pooled connection resolves unqualified table names in our schema, so the SQL stays schema-free.
    ...(settings.schema === undefined ? {} : { options: `-c search_path=${settings.schema}` }),
  });
  // An idle client losing its server connection emits on the pool; without a listener that crashes the process.
  pool.on("error", () => {});
  const { clock, ...plainOptions } = options;
  const store = new PostgresStore(pool, clock ?? Date.now, describeServer(url), settings, {
    url,
    options: plainOptions,
  });
  try {
    await store.migrate(settings.schema);
  } catch (error) {
    await pool.end().catch(() => {});
    throw store.describeFailure("opening", error, "Cannot open");
  }
  return store;
}

function positiveNumber(value: string | null, name: string, url: string): number | undefined {
  if (value === null) return undefined;
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0) {
    throw new SwitchboardError(
      "INVALID_CONFIG",
      `Storage URL ${describeServer(url)}: ${name} must be a positive number (got "${value}").`,
    );
  }
  return number;
}

/**
 * Our parameters come from options or the URL (`schema`, `connect_timeout` in seconds as in libpq,
 * `statement_timeout` in ms); pg itself must not see them.
 */
function connectionSettings(url: string, options: OpenStoreOptions): ConnectionSettings {
  let connectionString = url;
  let schema = options.schema;
  let connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  let queryTimeoutMs = options.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS;
  const parsed = URL.canParse(url) ? new URL(url) : undefined;
  if (parsed) {
    const search = parsed.searchParams;
    schema ??= search.get("schema") ?? undefined;
    const connectSeconds = positiveNumber(search.get("connect_timeout"), "connect_timeout", url);
    if (connectSeconds !== undefined) connectTimeoutMs = connectSeconds * 1000;
    queryTimeoutMs =
      positiveNumber(search.get("statement_timeout"), "statement_timeout", url) ?? queryTimeoutMs;
    for (const name of ["schema", "connect_timeout", "statement_timeout"]) search.delete(name);
    connectionString = parsed.toString();
  }
  if (schema !== undefined && !SCHEMA_PATTERN.test(schema)) {
    throw new SwitchboardError(
      "INVALID_CONFIG",
      `PostgreSQL schema "${schema}" is not allowed: use lower-case letters, digits and underscores, starting with a letter or underscore.`,
      { schema },
    );
  }
  const settings: ConnectionSettings = { connectionString, connectTimeoutMs, queryTimeoutMs };
  if (schema !== undefined) settings.schema = schema;
  return settings;
}

/** The storage URL without its password (which it may carry), for messages. */
export function describeServer(url: string): string {
  if (!URL.canParse(url)) return "the configured PostgreSQL server";
  const parsed = new URL(url);
  const user = parsed.username ? `${decodeURIComponent(parsed.username)}@` : "";
  return `${parsed.protocol}//${user}${parsed.host}${parsed.pathname}`;
}

function isTimeout(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : "";
  return code === "57014" || /timeout|timed out/i.test(message);
}

function isUnreachable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return (
    code === "ECONNREFUSED" ||
    code === "ENOTFOUND" ||
    code === "EHOSTUNREACH" ||
    code === "ECONNRESET" ||
    /Connection terminated/i.test(error instanceof Error ? error.message : "")
  );
}

export class PostgresStore extends SqlStore {
  readonly kind = "postgres" as const;
  protected readonly dialect = POSTGRES_DIALECT;
  readonly #pool: pg.Pool;
  readonly #clock: () => number;
  readonly #server: string;
  readonly #settings: ConnectionSettings;
  /** How this store was opened, for the child process that writes at exit. */
  readonly #opened: ExitStorage;
  /** Connections listening for purpose override changes, ended with the store. */
  readonly #listeners = new Set<pg.Client>();
  #closed = false;

  constructor(
    pool: pg.Pool,
    clock: () => number,
    server: string,
    settings: ConnectionSettings,
    opened: ExitStorage,
  ) {
    super();
    this.#pool = pool;
    this.#clock = clock;
    this.#server = server;
    this.#settings = settings;
    this.#opened = opened;
  }

  protected now(): number {
    return this.#clock();
  }

  /**
   * One line naming the server (never its password) and what to do: for a server that does not
   * answer, cannot be reached, or a driver failure. Our own errors pass through.
   */
  describeFailure(operation: string, error: unknown, lead = "Storage failed:"): SwitchboardError {
    if (error instanceof SwitchboardError) return error;
    const where = `PostgreSQL storage at ${this.#server}`;
    const details = { backend: "postgres", operation, server: this.#server };
    if (isTimeout(error)) {
      const connecting = /connect/i.test(error instanceof Error ? error.message : "");
      const waited = connecting ? this.#settings.connectTimeoutMs : this.#settings.queryTimeoutMs;
      const knob = connecting ? "?connect_timeout=SECONDS" : "?statement_timeout=MS";
      return new SwitchboardError(
        "STORAGE_ERROR",
        `${lead} ${where} did not answer within ${waited} ms (${operation}). Check that the server is up and not overloaded or locked, or allow longer with ${knob} in the storage URL.`,
        { ...details, timeoutMs: waited },
        { cause: error },
      );
    }
    if (isUnreachable(error) || lead === "Cannot open") {
      const message =
        error instanceof Error ? error.message || String((error as { code?: unknown }).code) : String(error);
      return new SwitchboardError(
        "STORAGE_ERROR",
        `${lead} ${where} (${operation}): ${message.replace(/\s*\n\s*/g, " ")}. Check the storage URL and that the server accepts connections.`,
        details,
        { cause: error },
      );
    }
    return storageError("postgres", operation, error);
  }

  #checkOpen(operation: string): void {
    if (this.#closed) throw storageError("postgres", operation, new Error("the store is closed"));
  }

  /** pg has no bigint parameters: money goes as decimal text. */
  #values(params: readonly unknown[]): unknown[] {
    return params.map((value) => (typeof value === "bigint" ? value.toString() : value));
  }

  async #query(
    operation: string,
    sql: string,
    params: readonly unknown[] = [],
  ): Promise<pg.QueryResult<Row>> {
    this.#checkOpen(operation);
    try {
      return await this.#pool.query<Row>(sql, this.#values(params));
    } catch (error) {
      throw this.describeFailure(operation, error);
    }
  }

  protected async all(operation: string, sql: string, params: readonly unknown[] = []): Promise<Row[]> {
    return (await this.#query(operation, sql, params)).rows;
  }

  protected async run(operation: string, sql: string, params: readonly unknown[] = []): Promise<number> {
    return (await this.#query(operation, sql, params)).rowCount ?? 0;
  }

  protected runStatements(operation: string, statements: readonly Statement[]): Promise<void> {
    return this.#transaction(operation, async (client) => {
      for (const statement of statements) await client.query(statement.sql, this.#values(statement.params));
    });
  }

  protected override overridesChannel(): string {
    return overridesChannel(this.#settings.schema);
  }

  /**
   * LISTEN on a connection of its own (a pooled one would be handed to other queries). A lost
   * connection is re-opened after a second, and `onChange` is called then too, since changes made
   * while it was down were not heard.
   */
  async watchPurposeOverrides(onChange: () => void): Promise<() => Promise<void>> {
    const channel = this.overridesChannel();
    let stopped = false;
    let client: pg.Client | undefined;
    const connect = async (): Promise<void> => {
      const next = new pg.Client({
        connectionString: this.#settings.connectionString,
        connectionTimeoutMillis: this.#settings.connectTimeoutMs,
      });
      next.on("notification", (message) => {
        if (message.channel === channel) onChange();
      });
      next.on("error", () => {
        this.#listeners.delete(next);
        next.end().catch(() => {});
        if (stopped || this.#closed) return;
        setTimeout(() => {
          if (stopped || this.#closed) return;
          connect().then(onChange, () => {});
        }, 1_000).unref();
      });
      await next.connect();
      await next.query(`LISTEN "${channel}"`);
      this.#listeners.add(next);
      client = next;
    };
    this.#checkOpen("watchPurposeOverrides");
    try {
      await connect();
    } catch (error) {
      throw this.describeFailure("watchPurposeOverrides", error);
    }
    return async () => {
      stopped = true;
      if (client) {
        this.#listeners.delete(client);
        await client.end().catch(() => {});
      }
    };
  }

  /** BEGIN … COMMIT on one pooled client; a failed client is discarded rather than reused. */
  async #transaction<T>(operation: string, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    this.#checkOpen(operation);
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw this.describeFailure(operation, error);
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
      throw this.describeFailure(operation, error);
    } finally {
      client.release(broken);
    }
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
        for (const migration of MIGRATIONS) {
          if ((await client.query(IS_MIGRATION_APPLIED_SQL, [migration.name])).rows.length > 0) continue;
          await client.query("BEGIN");
          try {
            await client.query(migration.postgres);
            await client.query(RECORD_MIGRATION_SQL, [migration.name, this.#clock()]);
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

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#listeners].map((listener) => listener.end().catch(() => {})));
    await this.#pool.end();
  }

  // --- secrets -------------------------------------------------------------------------------------

  protected insertSecretVersion(name: string, params: readonly unknown[]): Promise<number> {
    return this.#transaction("putSecret", async (client) => {
      // Serialise writers of one name so max+1 never collides on (name, version).
      await client.query(
        `SELECT pg_advisory_xact_lock(${LOCK_SECRETS}, hashtext(current_schema() || '/' || $1))`,
        [name],
      );
      const result = await client.query<{ version: number }>(INSERT_SECRET_VERSION_SQL, [...params]);
      return Number(result.rows[0]?.version);
    });
  }

  // --- usage log -----------------------------------------------------------------------------------

  /**
   * At the end of a process nothing asynchronous runs: a child process writes the rows, awaited
   * synchronously. Its module is loaded (synchronously) only now, and by no static import, so it
   * is never half-loaded by a concurrent import when an exit handler needs it.
   */
  insertUsageSync(rows: readonly UsageRecordInput[]): void {
    try {
      const file = import.meta.url.endsWith(".ts") ? "./exit-writer.ts" : "./exit-writer.js";
      const writer = createRequire(import.meta.url)(file) as typeof import("./exit-writer.ts");
      writer.insertUsageBeforeExit(this.#opened, rows);
    } catch (error) {
      throw storageError("postgres", "insertUsageSync", error);
    }
  }

  protected insertUsageRows(rows: readonly UsageValues[]): Promise<number> {
    // Column-major arrays: one array parameter per column, so the batch is one statement.
    const columns: unknown[][] = USAGE_COLUMNS.map(() => []);
    for (const row of rows) {
      row.forEach((value, i) => {
        columns[i]?.push(typeof value === "bigint" ? value.toString() : value);
      });
    }
    return this.run("insertUsage", INSERT_USAGE_SQL, columns);
  }

  // --- accounting: windowed holds ------------------------------------------------------------------

  protected reserveCaps(r: NormalizedReserve): Promise<ReserveAgainstCapsResult> {
    const keys = r.caps.map((c) => c.key);
    return this.#transaction("reserveAgainstCaps", async (client) => {
      await client.query(LOCK_KEYS_SQL, [keys]);
      const now = this.#clock();
      const checkAndHold = async () => {
        const result = await client.query<{ ledger_key: string; used: string; cap: string }>(
          CHECK_AND_HOLD_SQL,
          [
            keys,
            r.caps.map((c) => c.cap.toString()),
            r.caps.map((c) => c.windowStartMs),
            r.caps.map((c) => c.wholeFromMs),
            r.amount.toString(),
            r.txId,
            now,
            r.actorId,
            r.purpose,
            r.model,
            bucketOf(now),
            now + r.ttlMs,
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
      };
      const verdict = await checkAndHold();
      // Expired holds matter only when they would refuse: look for them then, not on every prompt.
      if (verdict.ok) return verdict;
      const expired = await client.query<{ expired: number }>(EXPIRE_HOLDS_SQL, [now, keys]);
      return (expired.rows[0]?.expired ?? 0) > 0 ? checkAndHold() : verdict;
    });
  }

  /**
   * Takes the same key locks as a reservation: every change to a key's bucket totals then happens
   * under that key's lock, so row locks on the totals can never deadlock.
   */
  protected closeHolds(txId: string, actual: bigint, status: ClosingStatus): Promise<number> {
    const operation = status === "settled" ? "settleHolds" : "rollbackHolds";
    return this.#transaction(operation, async (client) => {
      await client.query(LOCK_TX_KEYS_SQL, [txId]);
      const result = await client.query<{ closed: number }>(CLOSE_HOLDS_SQL, [
        status,
        actual.toString(),
        this.#clock(),
        txId,
      ]);
      return result.rows[0]?.closed ?? 0;
    });
  }

  expireHolds(): Promise<number> {
    return this.#transaction("expireHolds", async (client) => {
      const now = this.#clock();
      await client.query(LOCK_EXPIRING_KEYS_SQL, [now]);
      // Only the keys locked above: a bucket falling due in between waits for the next call.
      const keys = await client.query<{ ledger_key: string }>(`SELECT DISTINCT ledger_key ${DUE_BUCKETS}`, [
        now,
      ]);
      const holds = await client.query<{ expired: number }>(EXPIRE_HOLDS_SQL, [
        now,
        keys.rows.map((row) => row.ledger_key),
      ]);
      const reservations = await client.query<{ expired: number }>(refundExpiredSql(false), [now]);
      return (holds.rows[0]?.expired ?? 0) + (reservations.rows[0]?.expired ?? 0);
    });
  }

  // --- accounting: allowances ----------------------------------------------------------------------

  protected async addToAllowance(
    actor: string,
    delta: bigint,
    note: string | null,
    by: string | null,
  ): Promise<bigint> {
    // Upsert and ledger entry in one statement: atomic without an explicit transaction.
    const [row] = await this.all(
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
      [actor, delta, this.#clock(), note, by],
    );
    return toBigint(row?.balance_after_nanocents);
  }

  /**
   * One statement: the UPDATE's WHERE is re-evaluated after waiting for the row lock, so concurrent
   * reservations can never take the balance below zero; the reservation is written alongside.
   */
  protected async takeAllowance(r: NormalizedAllowanceReserve): Promise<ReserveAllowanceResult> {
    const take = async () => {
      const now = this.#clock();
      const [row] = await this.all(
        "reserveAllowance",
        `WITH taken AS (
           UPDATE switchboard_allowances SET balance_nanocents = balance_nanocents - $1, updated_at = $2
           WHERE actor_id = $3 AND balance_nanocents >= $1
           RETURNING balance_nanocents),
         held AS (
           INSERT INTO switchboard_allowance_holds (tx_id, actor_id, reserved_nanocents, status, created_at, expires_at, purpose, model)
           SELECT $4, $3, $1, 'held', $2, $7, $5, $6 FROM taken)
         SELECT balance_nanocents FROM taken`,
        [r.amount, now, r.actorId, r.txId, r.purpose, r.model, now + r.ttlMs],
      );
      return row;
    };
    let taken = await take();
    if (taken === undefined) {
      const [refunded] = await this.all("reserveAllowance", refundExpiredSql(true), [
        this.#clock(),
        r.actorId,
      ]);
      if (Number(refunded?.expired ?? 0) > 0) taken = await take();
    }
    if (taken !== undefined) return { ok: true, balance: toBigint(taken.balance_nanocents) };
    const current = await this.getAllowance(r.actorId);
    return { ok: false, balance: current?.balance };
  }

  /**
   * One statement: closing the reservation (only if still held — a concurrent second settle finds
   * nothing — or expired, when settling), refunding what it held minus the cost, and recording the
   * charge. An expired reservation was already refunded, so it holds nothing any more.
   */
  protected async finishAllowance(
    txId: string,
    actual: bigint,
    status: ClosingStatus,
  ): Promise<bigint | undefined> {
    const [row] = await this.all(
      status === "settled" ? "settleAllowance" : "rollbackAllowance",
      `WITH target AS (
         SELECT tx_id, status AS was FROM switchboard_allowance_holds
         WHERE tx_id = $4 AND (status = 'held' OR (status = 'expired' AND $1 = 'settled'))
         FOR UPDATE),
       closed AS (
         UPDATE switchboard_allowance_holds h SET status = $1, settled_nanocents = $2, settled_at = $3
         FROM target WHERE h.tx_id = target.tx_id
         RETURNING h.actor_id, CASE target.was WHEN 'held' THEN h.reserved_nanocents ELSE 0 END AS holding),
       refunded AS (
         UPDATE switchboard_allowances a SET balance_nanocents = a.balance_nanocents + (closed.holding - $2),
           updated_at = $3
         FROM closed WHERE a.actor_id = closed.actor_id
         RETURNING a.actor_id, a.balance_nanocents),
       charged AS (
         INSERT INTO switchboard_allowance_ledger (actor_id, kind, amount_nanocents, balance_after_nanocents, tx_id, created_at)
         SELECT actor_id, 'charge', -$2::bigint, balance_nanocents, $4, $3 FROM refunded WHERE $1 = 'settled')
       SELECT balance_nanocents FROM refunded`,
      [status, actual, this.#clock(), txId],
    );
    return row === undefined ? undefined : toBigint(row.balance_nanocents);
  }
}
