/**
 * Extraction: text or an image plus column definitions → a JSON schema `{items: [{…}]}` → a
 * schema-capable model of the `extract` purpose → rows inserted into a table as the reply streams
 * in (deduplicated, NUL bytes removed). Each run is recorded in the database, so its outcome is
 * known after a restart.
 */

import { describeError, type JsonSchema, newId, SwitchboardError, scrubSecrets } from "@switchboard/core";
import type { Actor, Hub, HubModel, ModelListing } from "@switchboard/hub";
import { allowAll, type PermissionCheck, requirePermission } from "../access.ts";
import { ownerIsGone, processOwnerId } from "../owner.ts";
import { EXTRACT_PURPOSE } from "../purposes.ts";
import {
  existingDatabase,
  INTERNAL_TABLE_PREFIX,
  openDatabase,
  quoteIdentifier,
  type SqliteDatabase,
  tableExists,
  tableInfo,
} from "../sqlite.ts";
import { ItemStreamParser } from "./item-stream.ts";

export const EXTRACT_RUNS_TABLE = `${INTERNAL_TABLE_PREFIX}extract_runs`;

const RUNS_SCHEMA = `
CREATE TABLE IF NOT EXISTS ${EXTRACT_RUNS_TABLE} (
  id TEXT PRIMARY KEY,
  table_name TEXT NOT NULL,
  status TEXT NOT NULL,
  model TEXT NOT NULL,
  instructions TEXT,
  fields TEXT NOT NULL,
  source TEXT,
  item_count INTEGER NOT NULL DEFAULT 0,
  error TEXT,
  actor_id TEXT,
  owner TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  finished_at TEXT
);
CREATE INDEX IF NOT EXISTS ${EXTRACT_RUNS_TABLE}_table ON ${EXTRACT_RUNS_TABLE}(table_name, created_at);
`;

export type FieldType = "string" | "integer" | "number" | "boolean";

export interface ExtractField {
  name: string;
  type: FieldType;
  /** A hint for the model about what goes in this column. */
  description?: string | undefined;
}

export type ExtractionStatus = "running" | "finished" | "failed" | "interrupted";

export interface ExtractionRun {
  id: string;
  table: string;
  status: ExtractionStatus;
  model: string;
  instructions: string | undefined;
  fields: ExtractField[];
  /** Where the input came from (a file name, `stdin`, `text`). */
  source: string | undefined;
  /** Rows inserted. */
  itemCount: number;
  error: string | undefined;
  actorId: string | undefined;
  createdAt: string;
  finishedAt: string | undefined;
}

export interface ExtractInput {
  text?: string | undefined;
  /** Images (bytes, never paths: a server must not read its own files for a caller). */
  attachments?: readonly { content: Uint8Array; type?: string }[] | undefined;
  source?: string | undefined;
}

export interface ExtractRequest {
  table: string;
  /** The columns to extract; default: the existing table's columns. */
  fields?: readonly ExtractField[] | undefined;
  instructions?: string | undefined;
  /** A schema-capable model id; default: the first one the purpose allows. */
  model?: string | undefined;
  signal?: AbortSignal | undefined;
  /** Called after each row is inserted. */
  onItem?: ((item: Record<string, unknown>) => void) | undefined;
}

export interface ExtractionOptions {
  hub: Hub;
  database: string;
  can?: PermissionCheck | undefined;
}

const FIELD_TYPES: Record<string, FieldType> = {
  string: "string",
  str: "string",
  text: "string",
  integer: "integer",
  int: "integer",
  number: "number",
  float: "number",
  real: "number",
  boolean: "boolean",
  bool: "boolean",
};

const SQL_TYPES: Record<FieldType, string> = {
  string: "TEXT",
  integer: "INTEGER",
  number: "REAL",
  boolean: "INTEGER",
};

const DEFAULT_SYSTEM =
  "Extract every record the input holds that fits the schema, in the order they appear. Use only information from the input; leave out records you cannot fill.";

/** `name:type` or `name:type:description` (type one of string, integer, number, boolean). */
export function parseField(spec: string): ExtractField {
  const [name = "", type = "string", ...rest] = spec.split(":");
  const fieldType = FIELD_TYPES[type.trim().toLowerCase()];
  if (!name.trim() || !fieldType) {
    throw new SwitchboardError(
      "INVALID_INPUT",
      `Field "${spec}" must be NAME:TYPE or NAME:TYPE:DESCRIPTION with TYPE one of string, integer, number, boolean.`,
      { field: spec },
    );
  }
  const description = rest.join(":").trim();
  return { name: name.trim(), type: fieldType, ...(description ? { description } : {}) };
}

/** The JSON schema the model must follow: an object with an `items` array of records. */
export function extractionSchema(fields: readonly ExtractField[]): JsonSchema {
  const properties = Object.fromEntries(
    fields.map((field) => [
      field.name,
      { type: field.type, ...(field.description ? { description: field.description } : {}) },
    ]),
  );
  return {
    type: "object",
    description: "Extracted records",
    properties: {
      items: {
        type: "array",
        items: { type: "object", properties, required: fields.map((field) => field.name) },
      },
    },
    required: ["items"],
  };
}

/** Removes NUL characters from every string (keys included), which SQLite text and most tools choke on. */
export function removeNulBytes(value: unknown): unknown {
  if (typeof value === "string") return value.replaceAll("\u0000", "");
  if (Array.isArray(value)) return value.map(removeNulBytes);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, inner]) => [key.replaceAll("\u0000", ""), removeNulBytes(inner)]),
    );
  }
  return value;
}

function toSqlValue(value: unknown): string | number | null {
  if (value === null || value === undefined) return null;
  if (typeof value === "boolean") return value ? 1 : 0;
  if (typeof value === "number" || typeof value === "string") return value;
  return JSON.stringify(value);
}

function fieldTypeOfColumn(declared: string): FieldType {
  const type = declared.toUpperCase();
  if (type.includes("INT")) return "integer";
  if (type.includes("REAL") || type.includes("FLOA") || type.includes("DOUB") || type.includes("NUM"))
    return "number";
  return "string";
}

/** A run that wrote nothing for this long outlived any request timeout: its process is gone. */
const STALE_AFTER_MS = 15 * 60 * 1000;

type Raw = Record<string, unknown>;

function toRun(row: Raw): ExtractionRun {
  const text = (value: unknown) => (value === null ? undefined : String(value));
  return {
    id: String(row.id),
    table: String(row.table_name),
    status: row.status as ExtractionStatus,
    model: String(row.model),
    instructions: text(row.instructions),
    fields: JSON.parse(String(row.fields)) as ExtractField[],
    source: text(row.source),
    itemCount: Number(row.item_count),
    error: text(row.error),
    actorId: text(row.actor_id),
    createdAt: String(row.created_at),
    finishedAt: text(row.finished_at),
  };
}

export class Extraction {
  readonly #hub: Hub;
  readonly #path: string;
  readonly #can: PermissionCheck;
  #db: SqliteDatabase | undefined;

  constructor(options: ExtractionOptions) {
    this.#hub = options.hub;
    this.#can = options.can ?? allowAll;
    this.#path = existingDatabase(options.database);
  }

  #connection(): SqliteDatabase {
    this.#db ??= openDatabase(this.#path);
    return this.#db;
  }

  #runsTableExists(): boolean {
    return tableExists(this.#connection(), EXTRACT_RUNS_TABLE);
  }

  /**
   * The models an extraction may use for this actor: allowed for `extract`, able to follow a
   * schema, and with a key to call them.
   */
  async models(actor: Actor | undefined): Promise<ModelListing[]> {
    const listed = await this.#hub.models({ purpose: EXTRACT_PURPOSE, actor });
    return listed.filter((listing) => listing.capabilities.schema && listing.hasKey);
  }

  /** The columns an extraction into an existing table starts from (its own key column left out). */
  fieldsOf(table: string): ExtractField[] {
    const info = tableInfo(this.#connection(), table);
    const ownKey =
      info.primaryKey.length === 1 && !info.usesRowid
        ? info.columns.find((column) => column.name === info.primaryKey[0])
        : undefined;
    const generatedKey = ownKey && ownKey.type.toUpperCase() === "INTEGER" ? ownKey.name : undefined;
    return info.columns
      .filter((column) => column.name !== generatedKey)
      .map((column) => ({ name: column.name, type: fieldTypeOfColumn(column.type) }));
  }

  async #chooseModel(actor: Actor | undefined, modelId: string | undefined): Promise<HubModel> {
    if (modelId) {
      const model = await this.#hub.model({ purpose: EXTRACT_PURPOSE, model: modelId, actor });
      if (model.capabilities.schema) return model;
      const usable = (await this.models(actor)).map((listing) => listing.id);
      throw new SwitchboardError(
        "UNSUPPORTED",
        `Model ${model.id} cannot follow a JSON schema, which extraction needs; use one of: ${usable.join(", ") || "(none configured)"}.`,
        { model: model.id, purpose: EXTRACT_PURPOSE },
      );
    }
    const [first] = await this.models(actor);
    if (!first) {
      const allowed = (await this.#hub.models({ purpose: EXTRACT_PURPOSE, actor })).map(
        (listing) => listing.id,
      );
      throw new SwitchboardError(
        "UNSUPPORTED",
        `No model allowed for purpose "${EXTRACT_PURPOSE}" supports JSON schemas (allowed: ${allowed.join(", ") || "none"}). ` +
          `Configure one in switchboard.yaml, e.g. purposes: {${EXTRACT_PURPOSE}: {model: gpt-4.1-mini}}, ` +
          "or mark a model of a configured provider with schema: true.",
        { purpose: EXTRACT_PURPOSE },
      );
    }
    return this.#hub.model({ purpose: EXTRACT_PURPOSE, model: first.id, actor });
  }

  /**
   * Runs one extraction. Rows are inserted as the reply streams in; the returned record says how
   * it ended (`finished`, or `failed` with the error, keeping the rows inserted before it).
   */
  async run(request: ExtractRequest, input: ExtractInput, actor: Actor | undefined): Promise<ExtractionRun> {
    await requirePermission(this.#can, "extract", actor);
    const db = this.#connection();
    db.exec(RUNS_SCHEMA);
    const table = request.table.trim();
    if (!table) throw new SwitchboardError("INVALID_INPUT", "Name the table the extracted rows go to.");
    if (table.startsWith(INTERNAL_TABLE_PREFIX)) {
      throw new SwitchboardError(
        "INVALID_INPUT",
        `Table names starting ${INTERNAL_TABLE_PREFIX} are reserved.`,
      );
    }
    const exists = tableExists(db, table);
    const fields = [...(request.fields?.length ? request.fields : exists ? this.fieldsOf(table) : [])];
    if (fields.length === 0) {
      throw new SwitchboardError(
        "INVALID_INPUT",
        `Table "${table}" does not exist yet: give its columns with --field NAME:TYPE (e.g. --field name:string --field age:integer).`,
        { table },
      );
    }
    const names = new Set<string>();
    for (const field of fields) {
      if (names.has(field.name))
        throw new SwitchboardError("INVALID_INPUT", `Field "${field.name}" is given twice.`);
      names.add(field.name);
    }
    const text = input.text ?? "";
    const attachments = input.attachments ?? [];
    if (!text.trim() && attachments.length === 0 && !request.instructions?.trim()) {
      throw new SwitchboardError(
        "INVALID_INPUT",
        "Nothing to extract from: give text, an image or instructions.",
      );
    }
    const model = await this.#chooseModel(actor, request.model);
    const instructions = request.instructions?.trim() || undefined;

    const runId = newId("ext");
    const now = new Date().toISOString();
    db.transaction(() => {
      this.#prepareTable(db, table, fields, exists);
      db.prepare(
        `INSERT INTO ${EXTRACT_RUNS_TABLE} (id, table_name, status, model, instructions, fields, source, actor_id, owner, created_at, updated_at)
         VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        runId,
        table,
        model.id,
        instructions ?? null,
        JSON.stringify(fields),
        input.source ?? null,
        actor?.id ?? null,
        processOwnerId(),
        now,
        now,
      );
    }).immediate();

    const columns = fields.map((field) => field.name);
    const insertRow = db.prepare(
      `INSERT INTO ${quoteIdentifier(table)} (${columns.map(quoteIdentifier).join(", ")}) VALUES (${columns.map(() => "?").join(", ")})`,
    );
    const countItem = db.prepare(
      `UPDATE ${EXTRACT_RUNS_TABLE} SET item_count = item_count + 1, updated_at = ? WHERE id = ?`,
    );
    const insertItem = db.transaction((values: (string | number | null)[]) => {
      insertRow.run(...values);
      countItem.run(new Date().toISOString(), runId);
    });

    const seen = new Set<string>();
    let error: string | undefined;
    try {
      const response = model.prompt(text.trim() ? text : "Extract the records from the attached image.", {
        system: instructions ? `${DEFAULT_SYSTEM}\n\n${instructions}` : DEFAULT_SYSTEM,
        schema: extractionSchema(fields),
        attachments: attachments.map((attachment) =>
          attachment.type
            ? { content: attachment.content, type: attachment.type }
            : { content: attachment.content },
        ),
        ...(request.signal ? { signal: request.signal } : {}),
      });
      const parser = new ItemStreamParser();
      for await (const chunk of response) {
        for (const raw of parser.push(chunk)) {
          if (!raw || typeof raw !== "object" || Array.isArray(raw)) continue;
          const item = removeNulBytes(raw) as Record<string, unknown>;
          const values = columns.map((name) => toSqlValue(item[name]));
          const identity = JSON.stringify(values);
          if (seen.has(identity)) continue;
          seen.add(identity);
          insertItem(values);
          request.onItem?.(item);
        }
      }
      if (!parser.complete) {
        error = `The reply of ${model.id} ended before its JSON was complete; the ${seen.size} records read so far were saved.`;
      }
    } catch (caught) {
      error = scrubSecrets(describeError(caught));
    }
    db.prepare(
      `UPDATE ${EXTRACT_RUNS_TABLE} SET status = ?, error = ?, finished_at = ?, updated_at = ?, owner = NULL WHERE id = ?`,
    ).run(
      error ? "failed" : "finished",
      error ?? null,
      new Date().toISOString(),
      new Date().toISOString(),
      runId,
    );
    return this.runRecord(runId) as ExtractionRun;
  }

  /** Creates the table, or adds the columns it lacks. */
  #prepareTable(db: SqliteDatabase, table: string, fields: readonly ExtractField[], exists: boolean): void {
    if (!exists) {
      const columns = fields
        .map((field) => `${quoteIdentifier(field.name)} ${SQL_TYPES[field.type]}`)
        .join(", ");
      db.exec(`CREATE TABLE ${quoteIdentifier(table)} (${columns})`);
      return;
    }
    const present = new Set(tableInfo(db, table).columns.map((column) => column.name));
    for (const field of fields) {
      if (!present.has(field.name)) {
        db.exec(
          `ALTER TABLE ${quoteIdentifier(table)} ADD COLUMN ${quoteIdentifier(field.name)} ${SQL_TYPES[field.type]}`,
        );
      }
    }
  }

  runRecord(id: string): ExtractionRun | undefined {
    if (!this.#runsTableExists()) return undefined;
    const row = this.#connection().prepare(`SELECT * FROM ${EXTRACT_RUNS_TABLE} WHERE id = ?`).get(id) as
      | Raw
      | undefined;
    return row ? toRun(row) : undefined;
  }

  /** Runs, newest first; optionally into one table. */
  runs(options: { table?: string | undefined; limit?: number } = {}): ExtractionRun[] {
    if (!this.#runsTableExists()) return [];
    const db = this.#connection();
    const rows = (
      options.table === undefined
        ? db
            .prepare(`SELECT * FROM ${EXTRACT_RUNS_TABLE} ORDER BY created_at DESC, rowid DESC LIMIT ?`)
            .all(options.limit ?? 100)
        : db
            .prepare(
              `SELECT * FROM ${EXTRACT_RUNS_TABLE} WHERE table_name = ? ORDER BY created_at DESC, rowid DESC LIMIT ?`,
            )
            .all(options.table, options.limit ?? 100)
    ) as Raw[];
    return rows.map(toRun);
  }

  /**
   * Marks runs whose process died mid-reply as `interrupted` (their rows so far stay). A reply
   * cannot be picked up again, so such a run is closed rather than resumed.
   */
  markInterrupted(): ExtractionRun[] {
    if (!this.#runsTableExists()) return [];
    const db = this.#connection();
    const running = db.prepare(`SELECT * FROM ${EXTRACT_RUNS_TABLE} WHERE status = 'running'`).all() as Raw[];
    const stopped = running.filter(
      (row) =>
        row.owner === null ||
        ownerIsGone(String(row.owner)) ||
        Date.now() - Date.parse(String(row.updated_at)) > STALE_AFTER_MS,
    );
    for (const row of stopped) {
      db.prepare(
        `UPDATE ${EXTRACT_RUNS_TABLE} SET status = 'interrupted', owner = NULL, finished_at = ?, error = ? WHERE id = ?`,
      ).run(
        new Date().toISOString(),
        `The process running this extraction stopped before the reply ended; ${row.item_count} rows were saved.`,
        row.id as string,
      );
    }
    return stopped.map((row) => this.runRecord(String(row.id)) as ExtractionRun);
  }

  close(): void {
    this.#db?.close();
    this.#db = undefined;
  }
}
