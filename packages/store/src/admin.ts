/**
 * What the admin UI keeps: purpose overrides, the audit log, one-time login links, sessions and the
 * key that signs session cookies. Every statement is written once with `$n` placeholders; each
 * backend supplies how to run a read and a transaction (`AdminSql`).
 */

import { SwitchboardError } from "@switchboard/core";
import type { Dialect } from "./queries.ts";
import { clampLimit, type Row, requireText, toMs } from "./shared.ts";
import { DAY_MS, HOUR_MS, ROLLUPS, type Rollup, type RollupKey } from "./usage-rollups.ts";

export type AuditTargetType = "purpose" | "secret" | "token" | "allowance";

/** One audit entry as stored: `before` and `after` are JSON text. */
export interface StoredAuditEntry {
  id: string;
  createdAt: Date;
  actor: string;
  action: string;
  targetType: AuditTargetType;
  target: string;
  before: string | undefined;
  after: string | undefined;
  instance: string;
}

export interface AuditQuery {
  actor?: string | undefined;
  targetType?: AuditTargetType | undefined;
  target?: string | undefined;
  since?: Date | undefined;
  /** Continues a previous page: entries strictly older than this one (newest first). */
  before?: { createdAt: Date; id: string } | undefined;
  /** Default 100. */
  limit?: number | undefined;
}

export interface StoredPurposeOverride {
  purpose: string;
  /** The override as JSON text. */
  settings: string;
  updatedAt: Date;
  updatedBy: string;
}

export interface PurposeOverrideChange {
  purpose: string;
  /** The new override as JSON text; undefined removes it. */
  settings: string | undefined;
  at: Date;
  actor: string;
  /** Written in the same transaction as the change. */
  audit: StoredAuditEntry;
}

export interface StoredLoginLink {
  hash: string;
  actor: string;
  createdAt: Date;
  expiresAt: Date;
}

export interface StoredSession {
  hash: string;
  actor: string;
  createdAt: Date;
  expiresAt: Date;
  endedAt: Date | undefined;
}

export type UsageSeriesBy = "purpose" | "model" | "actor";

/** Usage over time, in whole UTC hours or days. */
export interface UsageSeriesQuery {
  /** Hour or day (UTC) buckets. */
  bucket: "hour" | "day";
  /** Splits each bucket by this; none: one series. */
  by?: UsageSeriesBy | undefined;
  since?: Date | undefined;
  until?: Date | undefined;
  purpose?: string | undefined;
  /** The model that answered. */
  model?: string | undefined;
  actorId?: string | undefined;
  /** With `by`: only these purposes, models or actors (null: responses without one). */
  keys?: readonly (string | null)[] | undefined;
  /**
   * With `by`: only the keys with the largest cost over the range (then most responses) get rows
   * of their own; every other key is summed into rows marked `other`.
   */
  top?: number | undefined;
}

export interface UsageSeriesRow {
  bucketStart: Date;
  /** The purpose, model or actor (null for responses without one); null too when not split. */
  key: string | null;
  responses: number;
  errors: number;
  inputTokens: number;
  outputTokens: number;
  cachedTokens: number;
  costNanocents: bigint;
  /** The sum of the keys outside `top` (its `key` is then null). */
  other: boolean;
}

/** The purposes, models and actors with usage in a range (for filter choices). */
export interface UsageKeys {
  purposes: string[];
  models: string[];
  actors: string[];
}

/** The admin part of the store contract (both backends implement it). */
export interface AdminStore {
  insertAuditEntry(entry: StoredAuditEntry): Promise<void>;
  /** Newest first on `(createdAt, id)`. */
  listAuditEntries(query?: AuditQuery): Promise<StoredAuditEntry[]>;
  listPurposeOverrides(): Promise<StoredPurposeOverride[]>;
  /** Writes or removes the override and its audit entry in one transaction, then tells other instances. */
  writePurposeOverride(change: PurposeOverrideChange): Promise<void>;
  /**
   * Calls `onChange` whenever any instance changes a purpose override; resolves to a function that
   * stops listening. Only backends that can notify (PostgreSQL) have it.
   */
  watchPurposeOverrides?(onChange: () => void): Promise<() => Promise<void>>;
  insertLoginLink(link: StoredLoginLink): Promise<void>;
  /** Marks an unused, unexpired link used and returns its actor, atomically; else undefined. */
  consumeLoginLink(hash: string, at: Date): Promise<string | undefined>;
  insertSession(session: StoredSession): Promise<void>;
  findSession(hash: string): Promise<StoredSession | undefined>;
  endSession(hash: string, at: Date): Promise<void>;
  /** The stored cookie-signing key; stores `candidate` first when there is none (first caller wins). */
  adminSigningKey(candidate: string): Promise<string>;
  /** Usage per bucket (and key), oldest first; `since`/`until` widen to whole buckets. */
  usageSeries(query: UsageSeriesQuery): Promise<UsageSeriesRow[]>;
  usageKeys(query: { since?: Date | undefined; until?: Date | undefined }): Promise<UsageKeys>;
}

export interface Statement {
  sql: string;
  params: unknown[];
}

/** How a backend runs the admin statements. */
export interface AdminSql {
  /** The backend's spellings (byte-wise ordering, its kind). */
  readonly dialect: Dialect;
  all(operation: string, statement: Statement): Promise<Row[]>;
  /** Runs the statements in order in one transaction. */
  transaction(operation: string, statements: readonly Statement[]): Promise<void>;
}

export const AUDIT_TARGET_TYPES: readonly AuditTargetType[] = ["purpose", "secret", "token", "allowance"];

/** The notification channel of purpose override changes, per schema (NOTIFY is database-wide). */
export function overridesChannel(schema: string | undefined): string {
  return `switchboard_overrides_${schema ?? "public"}`;
}

const AUDIT_COLUMNS =
  "id, created_at, actor_id, action, target_type, target, before_state, after_state, instance";

function optionalText(value: unknown): string | undefined {
  return value === null || value === undefined ? undefined : String(value);
}

function mapAudit(row: Row): StoredAuditEntry {
  return {
    id: String(row.id),
    createdAt: new Date(Number(row.created_at)),
    actor: String(row.actor_id),
    action: String(row.action),
    targetType: String(row.target_type) as AuditTargetType,
    target: String(row.target),
    before: optionalText(row.before_state),
    after: optionalText(row.after_state),
    instance: String(row.instance),
  };
}

function auditInsert(entry: StoredAuditEntry): Statement {
  if (!AUDIT_TARGET_TYPES.includes(entry.targetType)) {
    throw new SwitchboardError(
      "INVALID_INPUT",
      `Audit target type must be one of ${AUDIT_TARGET_TYPES.join(", ")} (got "${entry.targetType}").`,
    );
  }
  return {
    sql: `INSERT INTO switchboard_audit (${AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    params: [
      requireText(entry.id, "id"),
      toMs(entry.createdAt, "createdAt"),
      requireText(entry.actor, "actor"),
      requireText(entry.action, "action"),
      entry.targetType,
      requireText(entry.target, "target"),
      entry.before ?? null,
      entry.after ?? null,
      entry.instance,
    ],
  };
}

const SERIES_KEY: Record<UsageSeriesBy, RollupKey> = {
  purpose: "purpose",
  model: "model",
  actor: "actor_id",
};
/** The usage log's column for each rollup key. */
const LOG_COLUMN: Record<RollupKey, string> = {
  purpose: "purpose",
  model: "model_answered",
  actor_id: "actor_id",
};

/** The start of the period `date` falls in; with `up`, of the first period not before it. */
function wholePeriod(
  date: Date | undefined,
  field: string,
  periodMs: number,
  up = false,
): number | undefined {
  if (date === undefined) return undefined;
  const ms = toMs(date, field);
  const floor = ms - (((ms % periodMs) + periodMs) % periodMs);
  return up && floor < ms ? floor + periodMs : floor;
}

/** The keys a query splits or filters by. */
function keysOf(query: Omit<UsageSeriesQuery, "bucket">): Set<RollupKey> {
  const keys = new Set<RollupKey>();
  if (query.by !== undefined) keys.add(SERIES_KEY[query.by]);
  if (query.purpose !== undefined) keys.add("purpose");
  if (query.model !== undefined) keys.add("model");
  if (query.actorId !== undefined) keys.add("actor_id");
  return keys;
}

/** The smallest rollup that holds the query's buckets and every key it needs; none: read the log. */
function rollupFor(bucketMs: number, keys: ReadonlySet<RollupKey>): Rollup | undefined {
  const fitting = ROLLUPS.filter(
    (rollup) => bucketMs % rollup.periodMs === 0 && [...keys].every((key) => rollup.keys.includes(key)),
  );
  // Coarser periods first: fewer rows to add up.
  return fitting.sort((a, b) => b.periodMs - a.periodMs)[0];
}

/** Oldest first; within a bucket by key in code-unit order (the same on both backends), "other" last. */
function sortSeries(rows: UsageSeriesRow[]): UsageSeriesRow[] {
  return rows.sort((a, b) => {
    const byTime = a.bucketStart.getTime() - b.bucketStart.getTime();
    if (byTime !== 0) return byTime;
    if (a.other !== b.other) return a.other ? 1 : -1;
    const left = a.key ?? "";
    const right = b.key ?? "";
    return left < right ? -1 : left > right ? 1 : 0;
  });
}

/** Keys by their cost over all buckets, then by responses, largest first. */
function rankKeys(rows: readonly UsageSeriesRow[]): (string | null)[] {
  const totals = new Map<string | null, { cost: bigint; responses: number }>();
  for (const row of rows) {
    const total = totals.get(row.key) ?? { cost: 0n, responses: 0 };
    total.cost += row.costNanocents;
    total.responses += row.responses;
    totals.set(row.key, total);
  }
  return [...totals.entries()]
    .sort(([, a], [, b]) => (a.cost === b.cost ? b.responses - a.responses : a.cost < b.cost ? 1 : -1))
    .map(([key]) => key);
}

/** Rows of the chosen keys as they are; all others summed per bucket into "other" rows. */
function foldOthers(rows: readonly UsageSeriesRow[], chosen: ReadonlySet<string | null>): UsageSeriesRow[] {
  const kept: UsageSeriesRow[] = [];
  const others = new Map<number, UsageSeriesRow>();
  for (const row of rows) {
    if (chosen.has(row.key)) {
      kept.push(row);
      continue;
    }
    const at = row.bucketStart.getTime();
    const other = others.get(at);
    if (!other) others.set(at, { ...row, key: null, other: true });
    else {
      other.responses += row.responses;
      other.errors += row.errors;
      other.inputTokens += row.inputTokens;
      other.outputTokens += row.outputTokens;
      other.cachedTokens += row.cachedTokens;
      other.costNanocents += row.costNanocents;
    }
  }
  return sortSeries([...kept, ...others.values()]);
}

/** The admin statements over one backend. */
export class AdminQueries implements Omit<AdminStore, "watchPurposeOverrides"> {
  readonly #sql: AdminSql;
  readonly #channel: string;

  constructor(sql: AdminSql, options: { channel?: string } = {}) {
    this.#sql = sql;
    this.#channel = options.channel ?? overridesChannel(undefined);
  }

  /** Text compared byte by byte on both backends, so keyset pages agree with the order. */
  #bytewise(column: string): string {
    return this.#sql.dialect.bytewise(column);
  }

  insertAuditEntry(entry: StoredAuditEntry): Promise<void> {
    return this.#sql.transaction("insertAuditEntry", [auditInsert(entry)]);
  }

  async listAuditEntries(query: AuditQuery = {}): Promise<StoredAuditEntry[]> {
    const params: unknown[] = [];
    const add = (value: unknown) => {
      params.push(value);
      return `$${params.length}`;
    };
    const clauses: string[] = [];
    if (query.actor !== undefined) clauses.push(`actor_id = ${add(query.actor)}`);
    if (query.targetType !== undefined) clauses.push(`target_type = ${add(query.targetType)}`);
    if (query.target !== undefined) clauses.push(`target = ${add(query.target)}`);
    if (query.since !== undefined) clauses.push(`created_at >= ${add(toMs(query.since, "since"))}`);
    if (query.before !== undefined) {
      const at = add(toMs(query.before.createdAt, "before.createdAt"));
      const id = add(requireText(query.before.id, "before.id"));
      clauses.push(`(created_at < ${at} OR (created_at = ${at} AND ${this.#bytewise("id")} < ${id}))`);
    }
    const limit = add(clampLimit(query.limit, 100));
    const rows = await this.#sql.all("listAuditEntries", {
      sql: `SELECT ${AUDIT_COLUMNS} FROM switchboard_audit ${clauses.length ? `WHERE ${clauses.join(" AND ")}` : ""}
        ORDER BY created_at DESC, ${this.#bytewise("id")} DESC LIMIT ${limit}`,
      params,
    });
    return rows.map(mapAudit);
  }

  async listPurposeOverrides(): Promise<StoredPurposeOverride[]> {
    const rows = await this.#sql.all("listPurposeOverrides", {
      sql: `SELECT purpose, settings, updated_at, updated_by FROM switchboard_purpose_overrides
        ORDER BY ${this.#bytewise("purpose")}`,
      params: [],
    });
    return rows.map((row) => ({
      purpose: String(row.purpose),
      settings: String(row.settings),
      updatedAt: new Date(Number(row.updated_at)),
      updatedBy: String(row.updated_by),
    }));
  }

  writePurposeOverride(change: PurposeOverrideChange): Promise<void> {
    const purpose = requireText(change.purpose, "purpose");
    const statements: Statement[] = [
      change.settings === undefined
        ? { sql: "DELETE FROM switchboard_purpose_overrides WHERE purpose = $1", params: [purpose] }
        : {
            sql: `INSERT INTO switchboard_purpose_overrides (purpose, settings, updated_at, updated_by)
              VALUES ($1, $2, $3, $4)
              ON CONFLICT (purpose) DO UPDATE SET settings = excluded.settings,
                updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
            params: [purpose, change.settings, toMs(change.at, "at"), requireText(change.actor, "actor")],
          },
      auditInsert(change.audit),
    ];
    // Delivered on commit, to every instance listening on this schema's channel.
    if (this.#sql.dialect.kind === "postgres") {
      statements.push({ sql: "SELECT pg_notify($1, $2)", params: [this.#channel, purpose] });
    }
    return this.#sql.transaction("writePurposeOverride", statements);
  }

  insertLoginLink(link: StoredLoginLink): Promise<void> {
    return this.#sql.transaction("insertLoginLink", [
      {
        sql: `INSERT INTO switchboard_login_links (hash, actor_id, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
        params: [
          requireText(link.hash, "hash"),
          requireText(link.actor, "actor"),
          toMs(link.createdAt, "createdAt"),
          toMs(link.expiresAt, "expiresAt"),
        ],
      },
    ]);
  }

  async consumeLoginLink(hash: string, at: Date): Promise<string | undefined> {
    // One statement: the row lock (PostgreSQL) or the write lock (SQLite) lets only one caller win.
    const rows = await this.#sql.all("consumeLoginLink", {
      sql: `UPDATE switchboard_login_links SET used_at = $1
        WHERE hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING actor_id`,
      params: [toMs(at, "at"), hash],
    });
    return rows[0] === undefined ? undefined : String(rows[0].actor_id);
  }

  insertSession(session: StoredSession): Promise<void> {
    return this.#sql.transaction("insertSession", [
      {
        sql: `INSERT INTO switchboard_sessions (hash, actor_id, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
        params: [
          requireText(session.hash, "hash"),
          requireText(session.actor, "actor"),
          toMs(session.createdAt, "createdAt"),
          toMs(session.expiresAt, "expiresAt"),
        ],
      },
      // Expired links and sessions are of no use to anyone: sweep them while writing anyway.
      {
        sql: "DELETE FROM switchboard_login_links WHERE expires_at < $1",
        params: [toMs(session.createdAt, "at")],
      },
      {
        sql: "DELETE FROM switchboard_sessions WHERE expires_at < $1",
        params: [toMs(session.createdAt, "at")],
      },
    ]);
  }

  async findSession(hash: string): Promise<StoredSession | undefined> {
    const rows = await this.#sql.all("findSession", {
      sql: "SELECT hash, actor_id, created_at, expires_at, ended_at FROM switchboard_sessions WHERE hash = $1",
      params: [hash],
    });
    const row = rows[0];
    if (row === undefined) return undefined;
    return {
      hash: String(row.hash),
      actor: String(row.actor_id),
      createdAt: new Date(Number(row.created_at)),
      expiresAt: new Date(Number(row.expires_at)),
      endedAt:
        row.ended_at === null || row.ended_at === undefined ? undefined : new Date(Number(row.ended_at)),
    };
  }

  endSession(hash: string, at: Date): Promise<void> {
    return this.#sql.transaction("endSession", [
      {
        sql: "UPDATE switchboard_sessions SET ended_at = $1 WHERE hash = $2 AND ended_at IS NULL",
        params: [toMs(at, "at"), hash],
      },
    ]);
  }

  /**
   * Reads the rollup that fits the query (see usage-rollups.ts); a combination no rollup holds is
   * summed from the usage log through its indexes. `since`/`until` widen to whole periods.
   */
  async usageSeries(query: UsageSeriesQuery): Promise<UsageSeriesRow[]> {
    const { top, ...plain } = query;
    if (top === undefined || query.by === undefined) return this.#series(plain);
    if (!Number.isInteger(top) || top < 1) {
      throw new SwitchboardError(
        "INVALID_INPUT",
        `Usage top must be a whole number of 1 or more (got ${top}).`,
      );
    }
    const size = query.bucket === "day" ? DAY_MS : HOUR_MS;
    const keys = keysOf(query);
    // One read when a rollup holds the whole answer, or when nothing faster can rank the keys.
    if (rollupFor(size, keys) !== undefined || rollupFor(DAY_MS, keys) === undefined) {
      const rows = await this.#series(plain);
      return foldOthers(rows, new Set(rankKeys(rows).slice(0, top)));
    }
    // Otherwise (actors per hour): rank on a daily rollup, read the buckets of the top keys only
    // (through the log's index), and take "other" as the totals less those.
    const ranked = rankKeys(await this.#series({ ...plain, bucket: "day" }));
    const chosen = ranked.slice(0, top);
    const [topRows, totals] = await Promise.all([
      chosen.length > 0 ? this.#series({ ...plain, keys: chosen }) : Promise.resolve([]),
      ranked.length > top ? this.#series({ ...plain, by: undefined, keys: undefined }) : Promise.resolve([]),
    ]);
    if (ranked.length <= top) return topRows;
    const others = new Map<number, UsageSeriesRow>();
    for (const row of totals) others.set(row.bucketStart.getTime(), { ...row, key: null, other: true });
    for (const row of topRows) {
      const other = others.get(row.bucketStart.getTime());
      if (!other) continue;
      other.responses -= row.responses;
      other.errors -= row.errors;
      other.inputTokens -= row.inputTokens;
      other.outputTokens -= row.outputTokens;
      other.cachedTokens -= row.cachedTokens;
      other.costNanocents -= row.costNanocents;
    }
    return sortSeries([...topRows, ...[...others.values()].filter((row) => row.responses > 0)]);
  }

  async #series(query: Omit<UsageSeriesQuery, "top">): Promise<UsageSeriesRow[]> {
    if (query.by !== undefined && !(query.by in SERIES_KEY)) {
      throw new SwitchboardError(
        "INVALID_INPUT",
        `Usage can be split by purpose, model or actor (got "${query.by}").`,
      );
    }
    const size = query.bucket === "day" ? DAY_MS : HOUR_MS;
    const rollup = rollupFor(size, keysOf(query));
    const params: unknown[] = [];
    const add = (value: unknown) => {
      params.push(value);
      return `$${params.length}`;
    };
    const series = query.by === undefined ? undefined : SERIES_KEY[query.by];
    const clauses: string[] = [];
    let sql: string;
    if (rollup) {
      const since = wholePeriod(query.since, "since", rollup.periodMs);
      const until = wholePeriod(query.until, "until", rollup.periodMs, true);
      if (since !== undefined) clauses.push(`bucket_start >= ${add(since)}`);
      if (until !== undefined) clauses.push(`bucket_start < ${add(until)}`);
      if (query.purpose !== undefined) clauses.push(`purpose = ${add(query.purpose)}`);
      if (query.model !== undefined) clauses.push(`model = ${add(query.model)}`);
      if (query.actorId !== undefined) clauses.push(`actor_id = ${add(query.actorId)}`);
      if (series !== undefined && query.keys !== undefined) {
        const names = query.keys.map((name) => add(name ?? ""));
        clauses.push(names.length ? `${series} IN (${names.join(", ")})` : "1 = 0");
      }
      const key = series ?? "CAST('' AS TEXT)";
      sql = `SELECT bucket_start - bucket_start % ${size} AS bucket, ${key} AS series,
          sum(responses) AS responses, sum(errors) AS errors, sum(input_tokens) AS input_tokens,
          sum(output_tokens) AS output_tokens, sum(cached_tokens) AS cached_tokens, sum(cost_nanocents) AS cost
        FROM ${rollup.table}`;
    } else {
      const since = wholePeriod(query.since, "since", size);
      const until = wholePeriod(query.until, "until", size, true);
      if (since !== undefined) clauses.push(`created_at >= ${add(since)}`);
      if (until !== undefined) clauses.push(`created_at < ${add(until)}`);
      if (query.purpose !== undefined) clauses.push(`purpose = ${add(query.purpose)}`);
      if (query.model !== undefined) clauses.push(`model_answered = ${add(query.model)}`);
      if (query.actorId !== undefined) clauses.push(`actor_id = ${add(query.actorId)}`);
      if (series !== undefined && query.keys !== undefined) {
        // Plain IN (and IS NULL apart), so the column's index can serve it.
        const column = LOG_COLUMN[series];
        const names = query.keys.filter((name): name is string => name !== null).map(add);
        const alternatives = names.length ? [`${column} IN (${names.join(", ")})`] : [];
        if (query.keys.includes(null)) alternatives.push(`${column} IS NULL`);
        clauses.push(alternatives.length ? `(${alternatives.join(" OR ")})` : "1 = 0");
      }
      const key = series === undefined ? "CAST('' AS TEXT)" : `COALESCE(${LOG_COLUMN[series]}, '')`;
      sql = `SELECT created_at - created_at % ${size} AS bucket, ${key} AS series,
          count(*) AS responses, count(*) FILTER (WHERE status = 'error') AS errors,
          COALESCE(sum(input_tokens), 0) AS input_tokens, COALESCE(sum(output_tokens), 0) AS output_tokens,
          COALESCE(sum(cached_tokens), 0) AS cached_tokens, COALESCE(sum(cost_nanocents), 0) AS cost
        FROM switchboard_usage`;
    }
    const rows = await this.#sql.all("usageSeries", {
      sql: `${sql} ${clauses.length ? `WHERE ${clauses.join(" AND ")}` : ""}
        GROUP BY 1, 2`,
      params,
    });
    const mapped = rows.map((row) => ({
      bucketStart: new Date(Number(row.bucket)),
      key: row.series === "" || row.series === null ? null : String(row.series),
      responses: Number(row.responses),
      errors: Number(row.errors),
      inputTokens: Number(row.input_tokens),
      outputTokens: Number(row.output_tokens),
      cachedTokens: Number(row.cached_tokens),
      costNanocents: BigInt(String(row.cost)),
      other: false,
    }));
    return sortSeries(mapped);
  }

  /** From the daily rollups, so whole UTC days around `since` and `until`. */
  async usageKeys(query: { since?: Date | undefined; until?: Date | undefined }): Promise<UsageKeys> {
    const params: unknown[] = [];
    const add = (value: unknown) => {
      params.push(value);
      return `$${params.length}`;
    };
    const clauses: string[] = [];
    const since = wholePeriod(query.since, "since", DAY_MS);
    const until = wholePeriod(query.until, "until", DAY_MS, true);
    if (since !== undefined) clauses.push(`bucket_start >= ${add(since)}`);
    if (until !== undefined) clauses.push(`bucket_start < ${add(until)}`);
    const where = clauses.length ? `WHERE ${clauses.join(" AND ")}` : "";
    const rows = await this.#sql.all("usageKeys", {
      sql: `SELECT DISTINCT 'purpose' AS kind, purpose AS name FROM switchboard_usage_daily ${where}
        UNION SELECT DISTINCT 'model', model FROM switchboard_usage_daily ${where}
        UNION SELECT DISTINCT 'actor', actor_id FROM switchboard_usage_daily_actors ${where}`,
      params,
    });
    const keys: UsageKeys = { purposes: [], models: [], actors: [] };
    for (const row of rows) {
      const name = String(row.name);
      if (name === "") continue;
      if (row.kind === "purpose") keys.purposes.push(name);
      else if (row.kind === "model") keys.models.push(name);
      else keys.actors.push(name);
    }
    for (const list of Object.values(keys)) list.sort();
    return keys;
  }

  async adminSigningKey(candidate: string): Promise<string> {
    const name = "session-signing";
    await this.#sql.transaction("adminSigningKey", [
      {
        sql: `INSERT INTO switchboard_admin_keys (name, value, created_at) VALUES ($1, $2, $3)
          ON CONFLICT (name) DO NOTHING`,
        params: [name, requireText(candidate, "candidate"), Date.now()],
      },
    ]);
    const rows = await this.#sql.all("adminSigningKey", {
      sql: "SELECT value FROM switchboard_admin_keys WHERE name = $1",
      params: [name],
    });
    return String(rows[0]?.value);
  }
}
