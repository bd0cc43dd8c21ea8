/**
 * The one query layer: every statement that reads the same on both backends is written here once,
 * with PostgreSQL-style `$n` placeholders (SQLite binds them by number too). A tiny dialect covers
 * the few spellings that differ (casts, byte-wise ordering, list parameters); the backends keep
 * only what truly differs — locking, upserts inside one statement, batch inserts, migrations.
 */

import { SwitchboardError } from "@switchboard/core";
import { clampLimit, HOLD_BUCKET_MS, requireText, toMs, USAGE_STATUSES } from "./shared.ts";
import type {
  AllowanceHistoryQuery,
  HoldQuery,
  HoldStatus,
  StoreKind,
  UsageFilter,
  UsageQuery,
  UsageSummaryBy,
  UsageSummaryQuery,
} from "./types.ts";

export interface Dialect {
  readonly kind: StoreKind;
  /** A parameter whose type the server cannot infer from the statement (PostgreSQL needs a cast). */
  typed(placeholder: string, type: "bigint" | "text"): string;
  /** Text compared and ordered byte by byte, the same on both backends (PostgreSQL's default is the locale's). */
  bytewise(column: string): string;
  /** `column` equals one of the strings passed as one parameter (see `list`). */
  oneOf(column: string, placeholder: string): string;
  /** The parameter value `oneOf` takes. */
  list(values: readonly string[]): unknown;
}

export const SQLITE_DIALECT: Dialect = {
  kind: "sqlite",
  typed: (placeholder) => placeholder,
  bytewise: (column) => column,
  oneOf: (column, placeholder) => `${column} IN (SELECT value FROM json_each(${placeholder}))`,
  list: (values) => JSON.stringify(values),
};

export const POSTGRES_DIALECT: Dialect = {
  kind: "postgres",
  typed: (placeholder, type) => `${placeholder}::${type}`,
  bytewise: (column) => `${column} COLLATE "C"`,
  oneOf: (column, placeholder) => `${column} = ANY(${placeholder}::text[])`,
  list: (values) => [...values],
};

/** One statement with its parameter values, in placeholder order. */
export interface Query {
  sql: string;
  params: unknown[];
}

/** Collects parameter values; `add` returns the placeholder to write into the SQL. */
class Params {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

function where(clauses: readonly string[]): string {
  return clauses.length > 0 ? `WHERE ${clauses.join(" AND ")}` : "";
}

// --- migrations ------------------------------------------------------------------------------------

export const LIST_MIGRATIONS_SQL =
  "SELECT name, applied_at FROM switchboard_migrations ORDER BY applied_at, name";
export const IS_MIGRATION_APPLIED_SQL = "SELECT 1 AS applied FROM switchboard_migrations WHERE name = $1";
export const RECORD_MIGRATION_SQL = "INSERT INTO switchboard_migrations (name, applied_at) VALUES ($1, $2)";

// --- secrets ---------------------------------------------------------------------------------------

/** Params: name, ciphertext, key id, note, now, actor. The caller serialises writers of one name. */
export const INSERT_SECRET_VERSION_SQL = `
  INSERT INTO switchboard_secrets (name, version, ciphertext, key_id, note, created_at, created_by)
  SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $4, $5, $6 FROM switchboard_secrets WHERE name = $1
  RETURNING version`;

export const GET_SECRET_SQL = `
  SELECT name, version, ciphertext, key_id, note, created_at, created_by FROM switchboard_secrets
  WHERE name = $1 AND deleted_at IS NULL ORDER BY version DESC LIMIT 1`;

/** Params: now, actor, name, version. */
export const MARK_SECRET_USED_SQL =
  "UPDATE switchboard_secrets SET last_used_at = $1, last_used_by = $2 WHERE name = $3 AND version = $4";

/** Params: now, actor, name. */
export const DELETE_SECRET_SQL =
  "UPDATE switchboard_secrets SET deleted_at = $1, deleted_by = $2 WHERE name = $3 AND deleted_at IS NULL";

/** Live secrets, current version each, with the latest use of any live version of the same name. */
export function listSecretsSql(dialect: Dialect): string {
  return `
  SELECT s.name, s.version, s.note, s.created_at, s.created_by, u.last_used_at, u.last_used_by
  FROM switchboard_secrets s
  LEFT JOIN switchboard_secrets u ON u.id = (
    SELECT x.id FROM switchboard_secrets x
    WHERE x.name = s.name AND x.deleted_at IS NULL AND x.last_used_at IS NOT NULL
    ORDER BY x.last_used_at DESC, x.version DESC LIMIT 1)
  WHERE s.deleted_at IS NULL
    AND s.version = (SELECT MAX(m.version) FROM switchboard_secrets m WHERE m.name = s.name AND m.deleted_at IS NULL)
  ORDER BY ${dialect.bytewise("s.name")}`;
}

// --- usage log -------------------------------------------------------------------------------------

/** Column order for usage inserts; `usageParams` produces values in the same order. */
export const USAGE_COLUMNS = [
  "id",
  "created_at",
  "model_requested",
  "model_answered",
  "purpose",
  "actor_id",
  "input_tokens",
  "output_tokens",
  "cached_tokens",
  "cost_nanocents",
  "duration_ms",
  "chain_id",
  "group_id",
  "conversation_id",
  "status",
  "error",
  "prompt",
  "system",
  "response",
  "tool_calls",
  "tool_results",
] as const;

/**
 * One row; retried ids are skipped. SQLite runs it once per row inside one transaction, binding
 * the values by position (`?`): no object per row on the usage writer's hot path.
 */
export const INSERT_USAGE_ROW_SQL = `INSERT INTO switchboard_usage (${USAGE_COLUMNS.join(", ")})
  VALUES (${USAGE_COLUMNS.map(() => "?").join(", ")}) ON CONFLICT (id) DO NOTHING`;

export const PRUNE_USAGE_SQL = "DELETE FROM switchboard_usage WHERE created_at < $1";

function usageFilter(filter: UsageFilter, params: Params): string[] {
  const clauses: string[] = [];
  if (filter.since !== undefined) clauses.push(`created_at >= ${params.add(toMs(filter.since, "since"))}`);
  if (filter.until !== undefined) clauses.push(`created_at < ${params.add(toMs(filter.until, "until"))}`);
  if (filter.purpose !== undefined) clauses.push(`purpose = ${params.add(filter.purpose)}`);
  if (filter.model !== undefined) clauses.push(`model_answered = ${params.add(filter.model)}`);
  if (filter.actorId !== undefined) clauses.push(`actor_id = ${params.add(filter.actorId)}`);
  if (filter.status !== undefined) {
    if (!USAGE_STATUSES.includes(filter.status)) {
      throw new SwitchboardError(
        "INVALID_INPUT",
        `Usage status must be one of ${USAGE_STATUSES.join(", ")} (got "${filter.status}").`,
      );
    }
    clauses.push(`status = ${params.add(filter.status)}`);
  }
  return clauses;
}

/** Newest first; `before` continues a previous page; `chainIds` picks whole chains. */
export function listUsageQuery(dialect: Dialect, query: UsageQuery): Query {
  const params = new Params();
  const clauses = usageFilter(query, params);
  if (query.before !== undefined) {
    const at = params.add(toMs(query.before.createdAt, "before.createdAt"));
    const id = params.add(requireText(query.before.id, "before.id"));
    clauses.push(`(created_at < ${at} OR (created_at = ${at} AND ${dialect.bytewise("id")} < ${id}))`);
  }
  if (query.chainIds !== undefined) {
    clauses.push(dialect.oneOf("chain_id", params.add(dialect.list(query.chainIds))));
  }
  const limit = params.add(clampLimit(query.limit, 100));
  return {
    sql: `SELECT * FROM switchboard_usage ${where(clauses)}
      ORDER BY created_at DESC, ${dialect.bytewise("id")} DESC LIMIT ${limit}`,
    params: params.values,
  };
}

const PERIOD_MS: Partial<Record<UsageSummaryBy, number>> = { day: 86_400_000, hour: 3_600_000 };
const GROUP_COLUMN: Partial<Record<UsageSummaryBy, string>> = {
  purpose: "purpose",
  model: "model_answered",
  actor: "actor_id",
};

/** Sums per group; the key is the grouped column, or the period's start in ms for `day`/`hour`. */
export function summarizeUsageQuery(query: UsageSummaryQuery): Query {
  const period = PERIOD_MS[query.by];
  const column = period === undefined ? GROUP_COLUMN[query.by] : `(created_at - created_at % ${period})`;
  if (column === undefined) {
    throw new SwitchboardError(
      "INVALID_INPUT",
      `Usage summary "by" must be purpose, model, actor, day or hour (got "${query.by}").`,
    );
  }
  const params = new Params();
  const clauses = usageFilter(query, params);
  return {
    sql: `SELECT ${column} AS group_key, COUNT(*) AS responses,
        SUM(CASE WHEN status = 'ok' THEN 0 ELSE 1 END) AS failed, SUM(input_tokens) AS input_tokens,
        SUM(output_tokens) AS output_tokens, SUM(cached_tokens) AS cached_tokens, SUM(cost_nanocents) AS cost_nanocents
      FROM switchboard_usage ${where(clauses)} GROUP BY ${column}`,
    params: params.values,
  };
}

// --- accounting: windowed holds -------------------------------------------------------------------

/** What a hold counts against its key's cap: settled amount, reserved while held, 0 when rolled back or expired. */
export const HOLD_AMOUNT_SQL =
  "CASE status WHEN 'held' THEN reserved_nanocents WHEN 'settled' THEN settled_nanocents ELSE 0 END";

/** bucketOf in SQL (the same floor on both backends, whose % truncates toward zero). */
export function bucketSql(column: string): string {
  return `(${column} - (((${column} % ${HOLD_BUCKET_MS}) + ${HOLD_BUCKET_MS}) % ${HOLD_BUCKET_MS}))`;
}

/**
 * What a key has spent since a window start: whole buckets from the totals plus the holds of the
 * partial bucket. The three arguments are SQL expressions (placeholders or columns): the key, the
 * first whole bucket, and the window start.
 */
export function spentSql(key: string, wholeFrom: string, windowStart: string): string {
  return `COALESCE((SELECT SUM(amount_nanocents) FROM switchboard_hold_totals
      WHERE ledger_key = ${key} AND bucket_start >= ${wholeFrom}), 0)
    + COALESCE((SELECT SUM(${HOLD_AMOUNT_SQL}) FROM switchboard_holds
      WHERE ledger_key = ${key} AND created_at >= ${windowStart} AND created_at < ${wholeFrom}), 0)`;
}

/** Params: key, first whole bucket, window start. */
export const SPENT_IN_WINDOW_SQL = `SELECT ${spentSql("$1", "$2", "$3")} AS spent`;

/**
 * spentSql and what is still held, for every key with a prefix. Params: prefix, first whole
 * bucket, window start. substr instead of LIKE: keys may contain % or _.
 */
export function spentByKeySql(dialect: Dialect): string {
  const prefixed = "substr(ledger_key, 1, length($1)) = $1";
  return `SELECT ledger_key, SUM(amount) AS spent, SUM(held) AS held FROM (
      SELECT ledger_key, amount_nanocents AS amount, 0 AS held FROM switchboard_hold_totals
      WHERE ${prefixed} AND bucket_start >= $2
      UNION ALL
      SELECT ledger_key, ${HOLD_AMOUNT_SQL} AS amount, 0 AS held FROM switchboard_holds
      WHERE ${prefixed} AND created_at >= $3 AND created_at < $2
      UNION ALL
      SELECT ledger_key, 0 AS amount, reserved_nanocents AS held FROM switchboard_holds
      WHERE ${prefixed} AND status = 'held' AND created_at >= $3
    ) AS spent_parts GROUP BY ledger_key ORDER BY ${dialect.bytewise("ledger_key")}`;
}

export const HOLD_STATUSES: readonly HoldStatus[] = ["held", "settled", "rolled_back", "expired"];

export function listHoldsQuery(dialect: Dialect, query: HoldQuery): Query {
  const params = new Params();
  const clauses: string[] = [];
  if (query.key !== undefined) clauses.push(`ledger_key = ${params.add(query.key)}`);
  if (query.keyPrefix !== undefined) {
    const prefix = params.add(query.keyPrefix);
    clauses.push(`substr(ledger_key, 1, length(${prefix})) = ${prefix}`);
  }
  if (query.txId !== undefined) clauses.push(`tx_id = ${params.add(query.txId)}`);
  if (query.status !== undefined) {
    if (!HOLD_STATUSES.includes(query.status)) {
      throw new SwitchboardError(
        "INVALID_INPUT",
        `Hold status must be one of ${HOLD_STATUSES.join(", ")} (got "${query.status}").`,
      );
    }
    clauses.push(`status = ${params.add(query.status)}`);
  }
  if (query.since !== undefined) clauses.push(`created_at >= ${params.add(toMs(query.since, "since"))}`);
  const limit = params.add(clampLimit(query.limit, 50));
  return {
    sql: `SELECT * FROM switchboard_holds ${where(clauses)}
      ORDER BY created_at DESC, ${dialect.bytewise("tx_id")} DESC, ${dialect.bytewise("ledger_key")} LIMIT ${limit}`,
    params: params.values,
  };
}

/**
 * Adds a new hold to its bucket's total (the row aliased `t`, the hold's values as `excluded`):
 * its amount, one more hold held, and the earliest expiry among them.
 */
export const ADD_HOLD_TO_TOTAL_ON_CONFLICT = `ON CONFLICT (ledger_key, bucket_start) DO UPDATE SET
    amount_nanocents = t.amount_nanocents + excluded.amount_nanocents,
    held_count = t.held_count + 1,
    next_expiry = CASE WHEN t.next_expiry IS NULL OR excluded.next_expiry < t.next_expiry
      THEN excluded.next_expiry ELSE t.next_expiry END`;

/**
 * The SET clause that moves a bucket total (aliased `t`) by `delta` when `released` of its held
 * holds stop being held. The earliest expiry stays (it may now be early, which only costs a
 * look) until no hold is held.
 */
export function releaseFromTotalSet(delta: string, released: string): string {
  return `amount_nanocents = t.amount_nanocents + (${delta}), held_count = t.held_count - (${released}),
    next_expiry = CASE WHEN t.held_count - (${released}) > 0 THEN t.next_expiry END`;
}

/** The earliest expiry of a bucket's holds still held after `now` ($now), for the total aliased `t`. */
export function nextExpirySql(now: string): string {
  return `(SELECT MIN(h.expires_at) FROM switchboard_holds h WHERE h.ledger_key = t.ledger_key
    AND h.created_at >= t.bucket_start AND h.created_at < t.bucket_start + ${HOLD_BUCKET_MS}
    AND h.status = 'held' AND h.expires_at > ${now})`;
}

// --- accounting: allowances -----------------------------------------------------------------------

/** Every allowance, or one actor's (params: none, or the actor), with what its reservations hold. */
export function allowancesSql(dialect: Dialect, oneActor: boolean): string {
  return `SELECT a.actor_id, a.balance_nanocents, a.updated_at,
      COALESCE((SELECT SUM(h.reserved_nanocents) FROM switchboard_allowance_holds h
        WHERE h.actor_id = a.actor_id AND h.status = 'held'), 0) AS held_nanocents
    FROM switchboard_allowances a ${oneActor ? "WHERE a.actor_id = $1" : ""}
    ORDER BY ${dialect.bytewise("a.actor_id")}`;
}

export function allowanceHistoryQuery(query: AllowanceHistoryQuery): Query {
  const params = new Params();
  const clauses = query.actorId === undefined ? [] : [`actor_id = ${params.add(query.actorId)}`];
  const limit = params.add(clampLimit(query.limit, 100));
  return {
    sql: `SELECT * FROM switchboard_allowance_ledger ${where(clauses)} ORDER BY created_at DESC, id DESC LIMIT ${limit}`,
    params: params.values,
  };
}

/**
 * Marks held reservations whose expiry has passed as expired (params: now, and the actor when
 * `oneActor`) and returns what each reserved, so the caller refunds it.
 */
export function expireAllowanceHoldsSql(oneActor: boolean): string {
  return `UPDATE switchboard_allowance_holds SET status = 'expired', settled_at = $1
    WHERE status = 'held' AND expires_at <= $1 ${oneActor ? "AND actor_id = $2" : ""}
    RETURNING actor_id, reserved_nanocents`;
}

/** Params: amount to add, now, actor. */
export const ADD_TO_BALANCE_SQL = `UPDATE switchboard_allowances
  SET balance_nanocents = balance_nanocents + $1, updated_at = $2 WHERE actor_id = $3 RETURNING balance_nanocents`;

// --- gateway tokens --------------------------------------------------------------------------------

const TOKEN_COLUMNS =
  "name, token_hash, actor_id, purposes, created_at, expires_at, last_used_at, revoked_at";

/** Params: name, hash, actor, purposes (a JSON array), created at, expires at. */
export const INSERT_TOKEN_SQL = `
  INSERT INTO switchboard_tokens (name, token_hash, actor_id, purposes, created_at, expires_at)
  VALUES ($1, $2, $3, $4, $5, $6)`;

export const FIND_TOKEN_SQL = `SELECT ${TOKEN_COLUMNS} FROM switchboard_tokens WHERE token_hash = $1`;

export const LIST_TOKENS_SQL = `SELECT ${TOKEN_COLUMNS} FROM switchboard_tokens ORDER BY created_at, id`;

/** Params: now, name. */
export const REVOKE_TOKEN_SQL =
  "UPDATE switchboard_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL";

/** Params: when, hash. Never moves last use backwards (instances may report out of order). */
export const MARK_TOKEN_USED_SQL = `
  UPDATE switchboard_tokens SET last_used_at = $1
  WHERE token_hash = $2 AND (last_used_at IS NULL OR last_used_at < $1)`;
