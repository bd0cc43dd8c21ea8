/**
 * Writes usage rows from a `process.on("exit")` handler, where nothing asynchronous runs: through a
 * short-lived child process that opens the storage and inserts them, waited for synchronously.
 * For the cases an in-thread synchronous write cannot cover — PostgreSQL (an asynchronous driver)
 * and storage not opened yet when the process ends. It costs a process start (a few hundred ms),
 * so it is only for the end of a process. This module loads no database driver itself.
 */
import { spawnSync } from "node:child_process";
import type { OpenStoreOptions, UsageRecordInput } from "./types.ts";

/** Where the rows go: what `openStore` takes (options that are plain data only). */
export interface ExitStorage {
  url: string;
  options?: Omit<OpenStoreOptions, "clock"> | undefined;
}

/** What the child process reads on stdin. Money travels as a decimal string, times as ms. */
export interface ExitWriteRequest {
  url: string;
  options: Omit<OpenStoreOptions, "clock">;
  rows: (Omit<UsageRecordInput, "createdAt" | "costNanocents"> & {
    createdAt: number;
    costNanocents?: string;
  })[];
}

const CHILD_TIMEOUT_MS = 20_000;

/** Inserts the rows (ids already stored are skipped) before returning; throws with one line when it could not. */
export function insertUsageBeforeExit(storage: ExitStorage, rows: readonly UsageRecordInput[]): void {
  if (rows.length === 0) return;
  const { clock: _clock, ...options } = { ...storage.options } as OpenStoreOptions;
  const request: ExitWriteRequest = {
    url: storage.url,
    // The child writes its few rows itself; a writer thread would only slow its start.
    options: { ...options, usageWriterThread: false },
    rows: rows.map(({ createdAt, costNanocents, ...row }) => ({
      ...row,
      createdAt: createdAt instanceof Date ? createdAt.getTime() : createdAt,
      ...(costNanocents === undefined || costNanocents === null
        ? {}
        : { costNanocents: String(costNanocents) }),
    })),
  };
  const script = import.meta.url.endsWith(".ts") ? "./exit-writer-process.ts" : "./exit-writer-process.js";
  const child = spawnSync(process.execPath, [new URL(script, import.meta.url).pathname], {
    input: JSON.stringify(request),
    timeout: CHILD_TIMEOUT_MS,
    stdio: ["pipe", "ignore", "pipe"],
    env: process.env,
  });
  if (child.status !== 0) {
    const reason = child.error?.message ?? child.stderr?.toString().trim().split("\n").at(-1) ?? "";
    throw new Error(
      `the writing process failed${reason ? `: ${reason}` : ` (${child.signal ?? child.status})`}`,
    );
  }
}
