/**
 * Worker thread that writes usage rows and ledger batches (ledger-batch.ts) to a SQLite file
 * through its own connection, so logging and settling cost the prompting thread only the message
 * copy. WAL mode lets the main connection keep reading while this one writes; BEGIN IMMEDIATE +
 * busy_timeout order the writers.
 */
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";
import { type LedgerBatch, type LedgerBatchResult, writeLedgerBatch } from "./ledger-batch.ts";
import { INSERT_USAGE_ROW_SQL } from "./queries.ts";

export interface UsageWriteRequest {
  id: number;
  /** Rows as column values in `USAGE_COLUMNS` order, already validated. */
  rows: readonly (readonly (string | number | bigint | null)[])[];
}
export interface LedgerWriteRequest {
  id: number;
  ledger: LedgerBatch;
}
export type WriterRequest = UsageWriteRequest | LedgerWriteRequest;
export type WriterReply =
  | { id: number; inserted: number }
  | { id: number; ledger: LedgerBatchResult }
  | { id: number; error: string; code?: string };

const { path, busyTimeoutMs } = workerData as { path: string; busyTimeoutMs: number };
const db = new Database(path);
db.pragma(`busy_timeout = ${busyTimeoutMs}`);
db.pragma("synchronous = NORMAL");
// Money is 64-bit: what the ledger batch reads back stays exact.
db.defaultSafeIntegers(true);
const insert = db.prepare(INSERT_USAGE_ROW_SQL);
const insertAll = db.transaction((rows: UsageWriteRequest["rows"]) => {
  let inserted = 0;
  for (const row of rows) inserted += insert.run(...row).changes;
  return inserted;
});
const statements = new Map<string, Database.Statement>();
const statementOf = (sql: string): Database.Statement => {
  let statement = statements.get(sql);
  if (statement === undefined) {
    statement = db.prepare(sql);
    statements.set(sql, statement);
  }
  return statement;
};
const writeLedger = db.transaction((batch: LedgerBatch) => writeLedgerBatch(statementOf, batch));

parentPort?.on("message", (request: WriterRequest) => {
  let reply: WriterReply;
  try {
    reply =
      "ledger" in request
        ? { id: request.id, ledger: writeLedger.immediate(request.ledger) }
        : { id: request.id, inserted: insertAll.immediate(request.rows) };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    reply = {
      id: request.id,
      error: (error as Error).message,
      ...(typeof code === "string" ? { code } : {}),
    };
  }
  parentPort?.postMessage(reply);
});
