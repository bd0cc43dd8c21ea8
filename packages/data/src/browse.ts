/**
 * Read-only views of a database for listings and pages: its tables with row counts, and a table's
 * rows a page at a time.
 */
import { SwitchboardError } from "@switchboard/core";
import {
  INTERNAL_TABLE_PREFIX,
  keyList,
  listTableNames,
  openDatabaseReadOnly,
  quoteIdentifier,
  type SqliteDatabase,
  tableInfo,
} from "./sqlite.ts";

export interface TableSummary {
  name: string;
  rowCount: number;
  columns: string[];
  /** `["rowid"]` for a table without a declared key. */
  primaryKey: string[];
}

export interface RowsPage {
  table: string;
  columns: string[];
  primaryKey: string[];
  rows: Record<string, unknown>[];
  /** Rows in the table (matching `where`). */
  total: number;
  offset: number;
  limit: number;
  sort: string | undefined;
  descending: boolean;
}

export interface RowsQuery {
  /** Rows per page (default 50, at most 1000). */
  limit?: number | undefined;
  offset?: number | undefined;
  /** A column to sort by; default the primary key. */
  sort?: string | undefined;
  descending?: boolean | undefined;
}

function withDatabase<T>(path: string, body: (db: SqliteDatabase) => T): T {
  const db = openDatabaseReadOnly(path);
  try {
    return body(db);
  } finally {
    db.close();
  }
}

/** The database's tables with their row counts (the data tools' own tables only when asked). */
export function listTables(database: string, options: { includeInternal?: boolean } = {}): TableSummary[] {
  return withDatabase(database, (db) =>
    listTableNames(db)
      .filter((name) => options.includeInternal || !name.startsWith(INTERNAL_TABLE_PREFIX))
      .map((name) => {
        const info = tableInfo(db, name);
        const { n } = db.prepare(`SELECT count(*) AS n FROM ${quoteIdentifier(name)}`).get() as { n: number };
        return {
          name,
          rowCount: Number(n),
          columns: info.columns.map((column) => column.name),
          primaryKey: info.primaryKey,
        };
      }),
  );
}

/** One page of a table's rows, sorted by a column or by the primary key. */
export function tableRows(database: string, table: string, query: RowsQuery = {}): RowsPage {
  return withDatabase(database, (db) => {
    const info = tableInfo(db, table);
    const columns = info.columns.map((column) => column.name);
    const limit = Math.min(Math.max(1, Math.floor(query.limit ?? 50)), 1000);
    const offset = Math.max(0, Math.floor(query.offset ?? 0));
    if (query.sort !== undefined && !columns.includes(query.sort)) {
      throw new SwitchboardError(
        "INVALID_INPUT",
        `Cannot sort by "${query.sort}": table "${table}" has no such column; columns: ${columns.join(", ")}.`,
        { table, column: query.sort },
      );
    }
    const direction = query.descending ? "DESC" : "ASC";
    const order =
      query.sort === undefined
        ? info.primaryKey.map((name) => `${quoteIdentifier(name)} ${direction}`).join(", ")
        : `${quoteIdentifier(query.sort)} ${direction}, ${keyList(info.primaryKey)}`;
    const selected = info.usesRowid ? `rowid, *` : "*";
    const rows = db
      .prepare(`SELECT ${selected} FROM ${quoteIdentifier(table)} ORDER BY ${order} LIMIT ? OFFSET ?`)
      .all(limit, offset) as Record<string, unknown>[];
    const { n } = db.prepare(`SELECT count(*) AS n FROM ${quoteIdentifier(table)}`).get() as { n: number };
    return {
      table,
      columns: info.usesRowid ? ["rowid", ...columns] : columns,
      primaryKey: info.primaryKey,
      rows,
      total: Number(n),
      offset,
      limit,
      sort: query.sort,
      descending: query.descending === true,
    };
  });
}
