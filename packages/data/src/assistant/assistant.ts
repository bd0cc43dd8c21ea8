/**
 * The SQL assistant: a question about a database → its schema (all of it, or one table and every
 * table related to it by foreign keys) → a model of the `sql-assistant` purpose → one query that
 * can only read, checked with EXPLAIN and sent back with the error when it fails.
 */
import { describeError, isSwitchboardError, SwitchboardError } from "@switchboard/core";
import type { Actor, Hub } from "@switchboard/hub";
import { allowAll, type PermissionCheck, requirePermission } from "../access.ts";
import { SQL_ASSISTANT_PURPOSE } from "../purposes.ts";
import {
  existingDatabase,
  INTERNAL_TABLE_PREFIX,
  openDatabaseReadOnly,
  quoteIdentifier,
  type SqliteDatabase,
  tableInfo,
} from "../sqlite.ts";

export interface SqlAssistantOptions {
  hub: Hub;
  database: string;
  can?: PermissionCheck | undefined;
}

export interface AskRequest {
  question: string;
  /** Limit the schema to this table and the tables related to it by foreign keys. */
  table?: string | undefined;
  model?: string | undefined;
  /** Corrections asked for after an invalid query (default 3). */
  maxRetries?: number | undefined;
  signal?: AbortSignal | undefined;
}

export interface AskAttempt {
  sql: string;
  /** Why the query was refused; undefined for the accepted one. */
  error?: string;
}

export interface AssistantAnswer {
  question: string;
  /** The last query proposed (the accepted one when `valid`). */
  sql: string;
  explanation: string;
  valid: boolean;
  /** Why the last query was refused, when none was accepted. */
  error?: string;
  attempts: AskAttempt[];
  model: string;
  /** The tables whose schema the model saw. */
  tables: string[];
}

export interface QueryResult {
  columns: string[];
  /** One array of values per row, in `columns` order (names may repeat in a join). */
  rows: unknown[][];
  /** Whether rows beyond `limit` were left out. */
  truncated: boolean;
}

const SYSTEM_PROMPT = `You write SQLite queries that answer questions about the database below.
Reply with exactly one read-only query (SELECT, or WITH … SELECT) in a \`\`\`sql fenced block, then one or two sentences explaining what it does.
Never write a statement that changes data, the schema or the connection (no INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, ATTACH, PRAGMA).

The schema:
`;

const READ_KEYWORDS = new Set(["SELECT", "WITH"]);

/** The first keyword of a statement, past comments, whitespace and opening parentheses. */
function firstKeyword(sql: string): string {
  let rest = sql;
  for (;;) {
    const trimmed = rest.replace(/^[\s(]+/, "");
    if (trimmed.startsWith("--")) rest = trimmed.replace(/^--[^\n]*(\n|$)/, "");
    else if (trimmed.startsWith("/*")) rest = trimmed.replace(/^\/\*[\s\S]*?(\*\/|$)/, "");
    else return (/^[A-Za-z]+/.exec(trimmed)?.[0] ?? "").toUpperCase();
  }
}

/**
 * Throws `INVALID_INPUT` unless `sql` is one statement that only reads: it must start with SELECT
 * or WITH, SQLite must judge it read-only and returning rows, and EXPLAIN must accept it.
 */
export function checkReadOnlySql(db: SqliteDatabase, sql: string): void {
  const keyword = firstKeyword(sql);
  if (!READ_KEYWORDS.has(keyword)) {
    throw new SwitchboardError(
      "INVALID_INPUT",
      `Only a read-only query (SELECT or WITH … SELECT) may run; this statement starts with ${keyword || "nothing"}.`,
      { keyword },
    );
  }
  let statement: ReturnType<SqliteDatabase["prepare"]>;
  try {
    statement = db.prepare(sql);
    db.prepare(`EXPLAIN ${sql}`).all();
  } catch (error) {
    throw new SwitchboardError("INVALID_INPUT", `SQLite refused the query: ${describeError(error)}`);
  }
  if (!statement.reader || !statement.readonly) {
    throw new SwitchboardError("INVALID_INPUT", "Only a read-only query that returns rows may run.");
  }
}

/** The first fenced block is the query and the rest the explanation; without a block, the whole reply is the query. */
export function splitReply(reply: string): { sql: string; explanation: string } {
  const fenced = /```[ \t]*(?:sql|sqlite)?[ \t]*\n?([\s\S]*?)```/i.exec(reply);
  if (!fenced) return { sql: reply.trim(), explanation: "" };
  const explanation = (reply.slice(0, fenced.index) + reply.slice(fenced.index + fenced[0].length)).trim();
  return { sql: (fenced[1] ?? "").trim(), explanation };
}

export class SqlAssistant {
  readonly #hub: Hub;
  readonly #path: string;
  readonly #can: PermissionCheck;
  #db: SqliteDatabase | undefined;

  constructor(options: SqlAssistantOptions) {
    this.#hub = options.hub;
    this.#can = options.can ?? allowAll;
    this.#path = existingDatabase(options.database);
  }

  /** A read-only connection: even a query that slipped past the checks could not write. */
  #connection(): SqliteDatabase {
    this.#db ??= openDatabaseReadOnly(this.#path);
    return this.#db;
  }

  /** `table` and every table reachable from it through foreign keys, in either direction. */
  relatedTables(table: string): string[] {
    const db = this.#connection();
    tableInfo(db, table);
    const neighbours = new Map<string, Set<string>>();
    const link = (a: string, b: string) => {
      if (!neighbours.has(a)) neighbours.set(a, new Set());
      neighbours.get(a)?.add(b);
    };
    for (const name of this.#tableNames()) {
      const keys = db.prepare(`PRAGMA foreign_key_list(${quoteIdentifier(name)})`).all() as {
        table: string;
      }[];
      for (const key of keys) {
        link(name, key.table);
        link(key.table, name);
      }
    }
    const found = new Set([table]);
    const queue = [table];
    while (queue.length > 0) {
      for (const next of neighbours.get(queue.shift() as string) ?? []) {
        if (!found.has(next)) {
          found.add(next);
          queue.push(next);
        }
      }
    }
    return [...found];
  }

  /** The CREATE statements the model sees (the data tools' own tables left out). */
  schema(table?: string): { tables: string[]; sql: string } {
    const names = table === undefined ? this.#tableNames() : this.relatedTables(table);
    const statements = this.#connection()
      .prepare(
        "SELECT name, sql FROM sqlite_master WHERE type IN ('table', 'view') AND sql IS NOT NULL ORDER BY name",
      )
      .all() as { name: string; sql: string }[];
    const wanted = new Set(names);
    const chosen = statements.filter((row) => wanted.has(row.name));
    return { tables: chosen.map((row) => row.name), sql: chosen.map((row) => `${row.sql};`).join("\n") };
  }

  #tableNames(): string[] {
    return (
      this.#connection()
        .prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name")
        .all() as { name: string }[]
    )
      .map((row) => row.name)
      .filter((name) => !name.startsWith("sqlite_") && !name.startsWith(INTERNAL_TABLE_PREFIX));
  }

  /**
   * Asks the model for a query; an invalid one goes back with its error, up to `maxRetries`
   * times. The answer says whether a query was accepted.
   */
  async ask(request: AskRequest, actor: Actor | undefined): Promise<AssistantAnswer> {
    await requirePermission(this.#can, "ask", actor);
    const question = request.question.trim();
    if (!question) throw new SwitchboardError("INVALID_INPUT", "Ask a question about the database.");
    const db = this.#connection();
    const schema = this.schema(request.table);
    const model = await this.#hub.model({ purpose: SQL_ASSISTANT_PURPOSE, model: request.model, actor });
    const conversation = model.conversation();
    const system = `${SYSTEM_PROMPT}${schema.sql}`;
    const maxRetries = request.maxRetries ?? 3;
    const attempts: AskAttempt[] = [];
    let prompt = question;
    let last = { sql: "", explanation: "" };
    let error: string | undefined;
    for (let attempt = 0; attempt <= maxRetries; attempt++) {
      const reply = await conversation
        .prompt(prompt, { system, ...(request.signal ? { signal: request.signal } : {}) })
        .text();
      last = splitReply(reply);
      try {
        checkReadOnlySql(db, last.sql);
        attempts.push({ sql: last.sql });
        return {
          question,
          sql: last.sql,
          explanation: last.explanation,
          valid: true,
          attempts,
          model: model.id,
          tables: schema.tables,
        };
      } catch (caught) {
        if (!isSwitchboardError(caught, "INVALID_INPUT")) throw caught;
        error = caught.message;
        attempts.push({ sql: last.sql, error });
        prompt = `Error: ${error}\nReply with a corrected query in a \`\`\`sql block.`;
      }
    }
    return {
      question,
      sql: last.sql,
      explanation: last.explanation,
      valid: false,
      ...(error === undefined ? {} : { error }),
      attempts,
      model: model.id,
      tables: schema.tables,
    };
  }

  /** Runs a read-only query (checked first) and returns up to `limit` rows. */
  async run(sql: string, actor: Actor | undefined, options: { limit?: number } = {}): Promise<QueryResult> {
    await requirePermission(this.#can, "ask", actor);
    const db = this.#connection();
    checkReadOnlySql(db, sql);
    const statement = db.prepare(sql);
    const columns = statement.columns().map((column) => column.name);
    const limit = options.limit ?? 1000;
    const rows: unknown[][] = [];
    let truncated = false;
    for (const row of statement.raw(true).iterate() as IterableIterator<unknown[]>) {
      if (rows.length >= limit) {
        truncated = true;
        break;
      }
      rows.push(row);
    }
    return { columns, rows, truncated };
  }

  close(): void {
    this.#db?.close();
    this.#db = undefined;
  }
}
