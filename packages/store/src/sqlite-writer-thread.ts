/**
 * Worker thread beside a SQLite store, with its own connection to the file, so that the slow
 * writes cost the prompting thread almost nothing:
 * - usage rows: the prompting thread only copies them here (WAL mode lets the main connection
 *   keep reading and writing while this one writes; BEGIN IMMEDIATE + busy_timeout order them);
 * - checkpoints: copying the write-ahead log back into the database file fsyncs what the log
 *   gained and takes up to milliseconds. This thread runs a passive checkpoint (it never waits
 *   for, nor blocks, other connections) every CHECKPOINT_INTERVAL_MS, so the prompting
 *   connection seldom has one to run itself (see sqlite.ts).
 */
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";
import { INSERT_USAGE_ROW_SQL } from "./queries.ts";

export interface UsageWriteRequest {
  id: number;
  /** Rows as column values in `USAGE_COLUMNS` order, already validated. */
  rows: readonly (readonly (string | number | bigint | null)[])[];
}
export type UsageWriteReply = { id: number; inserted: number } | { id: number; error: string; code?: string };

/** Often enough that each checkpoint has little to copy and sync under a steady stream of prompts. */
const CHECKPOINT_INTERVAL_MS = 50;

const { path, busyTimeoutMs } = workerData as { path: string; busyTimeoutMs: number };
const db = new Database(path);
db.pragma(`busy_timeout = ${busyTimeoutMs}`);
db.pragma("synchronous = NORMAL");
const insert = db.prepare(INSERT_USAGE_ROW_SQL);
const insertAll = db.transaction((rows: UsageWriteRequest["rows"]) => {
  let inserted = 0;
  for (const row of rows) inserted += insert.run(...row).changes;
  return inserted;
});

setInterval(() => {
  try {
    db.pragma("wal_checkpoint(PASSIVE)");
  } catch {
    // Busy or failing now: the next round tries again, and the prompting connection still
    // checkpoints itself should the log ever grow far (see sqlite.ts).
  }
}, CHECKPOINT_INTERVAL_MS);

parentPort?.on("message", (request: UsageWriteRequest) => {
  let reply: UsageWriteReply;
  try {
    reply = { id: request.id, inserted: insertAll.immediate(request.rows) };
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
