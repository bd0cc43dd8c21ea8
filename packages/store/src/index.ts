/**
 * @switchboard/store — one storage interface, two backends: embedded SQLite (the default) and
 * PostgreSQL for deployments shared by several processes. Both run the same named migrations and
 * the same query layer.
 */

import { SwitchboardError } from "@switchboard/core";
import { MEMORY_PATH, openSqliteStore } from "./sqlite.ts";
import type { OpenStoreOptions, Store } from "./types.ts";

export type { ExitStorage } from "./exit-writer.ts";
export { MIGRATIONS, type Migration } from "./migrations.ts";
export type * from "./types.ts";
export { DEFAULT_HOLD_TTL_MS } from "./types.ts";

const ACCEPTED_FORMS =
  "sqlite:PATH, sqlite::memory:, a plain file path, or postgres://user@host:port/database (postgresql:// also works)";

/**
 * Opens storage by URL and brings its schema up to date:
 * `sqlite:PATH` / `sqlite::memory:` / a bare path → SQLite; `postgres://…` / `postgresql://…` → PostgreSQL.
 */
export async function openStore(url: string, options: OpenStoreOptions = {}): Promise<Store> {
  const target = parseStorageUrl(url);
  // The PostgreSQL driver loads only for a PostgreSQL URL.
  if (target.kind === "postgres")
    return (await import("./postgres.ts")).openPostgresStore(target.url, options);
  return openSqliteStore(target.path, options);
}

export type StorageTarget = { kind: "sqlite"; path: string } | { kind: "postgres"; url: string };

/** Decides the backend without touching it; exported so config validation can report errors early. */
export function parseStorageUrl(url: string): StorageTarget {
  if (typeof url !== "string" || url.trim() === "") {
    throw new SwitchboardError("INVALID_CONFIG", `Storage URL is empty. Use ${ACCEPTED_FORMS}.`);
  }
  const value = url.trim();
  if (/^postgres(ql)?:\/\//i.test(value)) return { kind: "postgres", url: value };
  if (value === MEMORY_PATH) return { kind: "sqlite", path: MEMORY_PATH };
  const sqlite = /^sqlite:(\/\/)?(.*)$/i.exec(value);
  if (sqlite) {
    const path = sqlite[2] ?? "";
    if (path === "")
      throw new SwitchboardError(
        "INVALID_CONFIG",
        `Storage URL "${value}" has no path. Use ${ACCEPTED_FORMS}.`,
      );
    return { kind: "sqlite", path };
  }
  // A scheme is two or more letters before ":" ("C:\…" is a Windows drive, i.e. a path).
  const scheme = /^([a-z][a-z0-9+.-]+):/i.exec(value)?.[1];
  if (scheme !== undefined) {
    // Only the scheme is echoed: the rest of a URL may carry a password.
    throw new SwitchboardError(
      "INVALID_CONFIG",
      `Unknown storage URL scheme "${scheme}:". Use ${ACCEPTED_FORMS}.`,
      { scheme },
    );
  }
  return { kind: "sqlite", path: value };
}
