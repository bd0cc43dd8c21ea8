/**
 * Usage rollups: running sums of the usage log per period and key, kept by an insert trigger, so
 * usage charts read a few thousand rows whatever the size of the log. Each rollup keys on few
 * columns on purpose: a rollup keyed on every dimension would have nearly a row per response.
 * Queries that need another combination (an actor together with a purpose or model, or hourly
 * actors) read the log itself through its indexes. Pruning old usage rows leaves the sums.
 */

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

/** A rollup's key columns, named as in the usage log's own filters. */
export type RollupKey = "purpose" | "model" | "actor_id";

export interface Rollup {
  table: string;
  periodMs: number;
  keys: readonly RollupKey[];
}

export const ROLLUPS: readonly Rollup[] = [
  { table: "switchboard_usage_hourly", periodMs: HOUR_MS, keys: ["purpose", "model"] },
  { table: "switchboard_usage_daily", periodMs: DAY_MS, keys: ["purpose", "model"] },
  { table: "switchboard_usage_daily_actors", periodMs: DAY_MS, keys: ["actor_id"] },
];

/** How each key is read from a usage row (`NEW.` or a table alias as prefix); NULL becomes ''. */
function source(key: RollupKey, row: string): string {
  if (key === "model") return `${row}model_answered`;
  return `COALESCE(${row}${key}, '')`;
}

const SUMS = [
  "responses",
  "errors",
  "input_tokens",
  "output_tokens",
  "cached_tokens",
  "cost_nanocents",
] as const;

function createTable(rollup: Rollup, integer: "INTEGER" | "BIGINT"): string {
  const keys = rollup.keys.map((key) => `${key} TEXT NOT NULL`).join(", ");
  const sums = SUMS.map((sum) => `${sum} ${integer} NOT NULL`).join(", ");
  const strict = integer === "INTEGER" ? " STRICT, WITHOUT ROWID" : "";
  return `CREATE TABLE ${rollup.table} (bucket_start ${integer} NOT NULL, ${keys}, ${sums},
    PRIMARY KEY (bucket_start, ${rollup.keys.join(", ")}))${strict};`;
}

function upsertTail(rollup: Rollup, alias: string): string {
  return `ON CONFLICT (bucket_start, ${rollup.keys.join(", ")}) DO UPDATE SET
    ${SUMS.map((sum) => `${sum} = ${alias}.${sum} + excluded.${sum}`).join(", ")}`;
}

/** Sums of a set of usage rows grouped by bucket and keys (PostgreSQL casts the sums back to bigint). */
function groupedSums(rollup: Rollup, from: string, cast: string): string {
  const keys = rollup.keys.map((key) => source(key, ""));
  return `SELECT created_at - created_at % ${rollup.periodMs}, ${keys.join(", ")},
      count(*), count(*) FILTER (WHERE status = 'error'),
      COALESCE(sum(input_tokens), 0)${cast}, COALESCE(sum(output_tokens), 0)${cast},
      COALESCE(sum(cached_tokens), 0)${cast}, COALESCE(sum(cost_nanocents), 0)${cast}
    FROM ${from} GROUP BY ${[1, ...rollup.keys.map((_, index) => index + 2)].join(", ")}`;
}

/** The rollup tables, filled from the rows already logged, and the trigger that keeps them. */
export const ROLLUPS_SQL = {
  sqlite: [
    ...ROLLUPS.map((rollup) => createTable(rollup, "INTEGER")),
    ...ROLLUPS.map(
      (rollup) => `INSERT INTO ${rollup.table} ${groupedSums(rollup, "switchboard_usage", "")};`,
    ),
    `CREATE TRIGGER switchboard_usage_rollups AFTER INSERT ON switchboard_usage BEGIN
      ${ROLLUPS.map(
        (
          rollup,
        ) => `INSERT INTO ${rollup.table} AS r VALUES (NEW.created_at - NEW.created_at % ${rollup.periodMs},
          ${rollup.keys.map((key) => source(key, "NEW.")).join(", ")}, 1, NEW.status = 'error',
          COALESCE(NEW.input_tokens, 0), COALESCE(NEW.output_tokens, 0), COALESCE(NEW.cached_tokens, 0),
          COALESCE(NEW.cost_nanocents, 0))
        ${upsertTail(rollup, "r")};`,
      ).join("\n")}
    END;`,
  ].join("\n"),
  postgres: [
    ...ROLLUPS.map((rollup) => createTable(rollup, "BIGINT")),
    ...ROLLUPS.map(
      (rollup) => `INSERT INTO ${rollup.table} ${groupedSums(rollup, "switchboard_usage", "::bigint")};`,
    ),
    // One statement-level trigger: a batch of 500 rows costs one upsert per rollup, not 500.
    `CREATE FUNCTION switchboard_usage_rollups() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
      ${ROLLUPS.map(
        // Sorted, so concurrent batches lock the bucket rows in one order and cannot deadlock.
        (rollup) => `INSERT INTO ${rollup.table} AS r ${groupedSums(rollup, "inserted", "::bigint")}
          ORDER BY ${[1, ...rollup.keys.map((_, index) => index + 2)].join(", ")}
        ${upsertTail(rollup, "r")};`,
      ).join("\n")}
      RETURN NULL;
    END $fn$;`,
    `CREATE TRIGGER switchboard_usage_rollups AFTER INSERT ON switchboard_usage
      REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION switchboard_usage_rollups();`,
  ].join("\n"),
};
