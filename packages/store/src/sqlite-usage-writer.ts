/**
 * Worker thread that writes usage rows to a SQLite file through its own connection, so logging
 * costs the prompting thread only the message copy. WAL mode lets the main connection keep reading
 * while this one writes; BEGIN IMMEDIATE + busy_timeout order the writers.
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
