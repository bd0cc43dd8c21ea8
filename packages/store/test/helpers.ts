/**
 * Test helpers shared by the store's tests: the process warnings emitted while some work runs, and
 * a SQLite file's write lock held by another connection (what another process mid-write does).
 */
import Database from "better-sqlite3";

/** Runs `work` with the messages of every process warning emitted meanwhile, in order. */
export async function withWarnings<T>(work: (warnings: string[]) => Promise<T>): Promise<T> {
  const warnings: string[] = [];
  const onWarning = (warning: Error) => warnings.push(warning.message);
  process.on("warning", onWarning);
  try {
    return await work(warnings);
  } finally {
    process.off("warning", onWarning);
  }
}

/**
 * Runs `work` while another connection holds the write lock of the SQLite database at `url`
 * (`sqlite:PATH`); `release` lets it go before `work` ends.
 */
export async function withWriteLock<T>(url: string, work: (release: () => void) => Promise<T>): Promise<T> {
  const locker = new Database(url.slice("sqlite:".length));
  try {
    locker.exec("BEGIN IMMEDIATE");
    return await work(() => locker.exec("ROLLBACK"));
  } finally {
    if (locker.inTransaction) locker.exec("ROLLBACK");
    locker.close();
  }
}
