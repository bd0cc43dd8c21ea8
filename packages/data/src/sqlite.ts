import { realpathSync } from "node:fs";
/**
 * SQLite plumbing shared by the data tools: opening a database file, quoting names, reading a
 * table's columns and primary key, and turning row keys into JSON and back.
 */
import { SwitchboardError } from "@switchboard/core";
import Database from "better-sqlite3";

export type SqliteDatabase = Database.Database;
export type SqlValue = string | number | bigint | Buffer | null;

/** Tables the data tools keep in the user's database; listings and the assistant leave them out. */
export const INTERNAL_TABLE_PREFIX = "_switchboard_";

/** How long a write waits for another connection's lock before failing. */
const BUSY_TIMEOUT_MS = 5_000;

/** Opens an existing database file for reading and writing. */
/** The canonical path of a database file that must exist (a data tool never creates one by accident). */
export function existingDatabase(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    throw new SwitchboardError("NOT_FOUND", `Database ${path} does not exist; check the path.`, {
      database: path,
    });
  }
}

function openExisting(path: string, readonly: boolean): SqliteDatabase {
  let db: SqliteDatabase;
  try {
    db = new Database(path, { readonly, fileMustExist: true });
  } catch (error) {
    throw new SwitchboardError(
      "NOT_FOUND",
      `Cannot open the database ${path}: ${(error as Error).message}. Check the path (the file must exist).`,
      { database: path },
    );
  }
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  return db;
}

export function openDatabase(path: string): SqliteDatabase {
  return openExisting(path, false);
}

/** Opens a database file so that no statement can change it. */
export function openDatabaseReadOnly(path: string): SqliteDatabase {
  const db = openExisting(path, true);
  db.pragma("query_only = ON");
  return db;
}

export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export interface ColumnInfo {
  name: string;
  /** The declared type as written (`INTEGER`, `text`, ``). */
  type: string;
  notNull: boolean;
  /** 1-based position in the primary key; 0 when not part of it. */
  primaryKey: number;
}

export interface TableInfo {
  name: string;
  columns: ColumnInfo[];
  /** Primary key columns in key order; `["rowid"]` for a table without a declared key. */
  primaryKey: string[];
  /** Whether rows are addressed by the implicit rowid. */
  usesRowid: boolean;
}

export function tableExists(db: SqliteDatabase, table: string): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined;
}

export function listTableNames(db: SqliteDatabase): string[] {
  return (
    db
      .prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
      )
      .all() as { name: string }[]
  ).map((row) => row.name);
}

/** A table's columns and key; `NOT_FOUND` (listing the tables there are) when it does not exist. */
export function tableInfo(db: SqliteDatabase, table: string): TableInfo {
  if (!tableExists(db, table)) {
    const tables = listTableNames(db).filter((name) => !name.startsWith(INTERNAL_TABLE_PREFIX));
    throw new SwitchboardError(
      "NOT_FOUND",
      `Table "${table}" does not exist; tables: ${tables.join(", ") || "none"}.`,
      { table },
    );
  }
  const rows = db.prepare(`PRAGMA table_info(${quoteIdentifier(table)})`).all() as {
    name: string;
    type: string;
    notnull: number;
    pk: number;
  }[];
  const columns = rows.map((row) => ({
    name: row.name,
    type: row.type,
    notNull: row.notnull === 1,
    primaryKey: row.pk,
  }));
  const keyed = columns.filter((column) => column.primaryKey > 0).sort((a, b) => a.primaryKey - b.primaryKey);
  return {
    name: table,
    columns,
    primaryKey: keyed.length > 0 ? keyed.map((column) => column.name) : ["rowid"],
    usesRowid: keyed.length === 0,
  };
}

/** `"a", "b"` — the key columns for ORDER BY. */
export function keyList(primaryKey: readonly string[]): string {
  return primaryKey.map(quoteIdentifier).join(", ");
}

/** `("a", "b")` — the key columns as a row value, for ordering and comparing composite keys. */
export function keyTuple(primaryKey: readonly string[]): string {
  return `(${primaryKey.map(quoteIdentifier).join(", ")})`;
}

/**
 * JSON for a key value. Integers beyond 2^53 and blobs do not survive plain JSON, so they are
 * tagged; everything else stays readable (`{"id": 5}`).
 */
export function encodeKeyValue(value: unknown): unknown {
  if (typeof value === "bigint") {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : { $int: value.toString() };
  }
  if (Buffer.isBuffer(value)) return { $blob: value.toString("base64") };
  return value;
}

export function decodeKeyValue(value: unknown): SqlValue {
  if (value && typeof value === "object") {
    const tagged = value as { $int?: string; $blob?: string };
    if (typeof tagged.$int === "string") return BigInt(tagged.$int);
    if (typeof tagged.$blob === "string") return Buffer.from(tagged.$blob, "base64");
  }
  return value as SqlValue;
}

/** Text as a prompt shows it: NULL is empty, numbers as written, blobs described. */
export function valueAsText(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (Buffer.isBuffer(value)) return `[${value.length} bytes of binary data]`;
  return String(value);
}
