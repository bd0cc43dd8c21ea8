/**
 * Test helper shared by every package whose tests need storage (imported as
 * "@switchboard/store/testing"): one entry per backend, each opening stores on its own fresh
 * database — a temp SQLite file, or a fresh PostgreSQL schema dropped by cleanup().
 *
 * PostgreSQL comes from SWITCHBOARD_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test).
 * When it cannot be reached, open() fails with a clear message; set SWITCHBOARD_SKIP_POSTGRES=1 to
 * skip those tests instead (each backend's `skip` then says why).
 */

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { openStore } from "../src/index.ts";
import type { OpenStoreOptions, Store } from "../src/types.ts";

export const DEFAULT_TEST_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/test";

export function postgresTestUrl(): string {
  return process.env.SWITCHBOARD_TEST_POSTGRES_URL || DEFAULT_TEST_POSTGRES_URL;
}

export interface StoreBackend {
  name: "sqlite" | "postgres";
  /** Set when this backend's tests must be skipped; the reason to show. */
  skip: string | undefined;
  /** A new Store on this backend's database (the same database on every call). */
  open(options?: Omit<OpenStoreOptions, "schema">): Promise<Store>;
  /** Where this backend's database is, for handing to a child process (`openStore(url, {schema})`). */
  connection(): Promise<{ url: string; schema: string | undefined }>;
  /** Closes every store opened here and removes the database (temp dir or schema). */
  cleanup(): Promise<void>;
}

export function storeBackends(): StoreBackend[] {
  return [sqliteBackend(), postgresBackend()];
}

export function sqliteBackend(): StoreBackend {
  let dir: string | undefined;
  const opened: Store[] = [];
  const url = async () => {
    dir ??= await mkdtemp(join(tmpdir(), "switchboard-store-"));
    return `sqlite:${join(dir, "nested", "switchboard.db")}`;
  };
  return {
    name: "sqlite",
    skip: undefined,
    async open(options = {}) {
      const store = await openStore(await url(), options);
      opened.push(store);
      return store;
    },
    async connection() {
      return { url: await url(), schema: undefined };
    },
    async cleanup() {
      await Promise.all(opened.splice(0).map((s) => s.close()));
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
      dir = undefined;
    },
  };
}

export function postgresBackend(): StoreBackend {
  const url = postgresTestUrl();
  const schema = `sb_test_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const opened: Store[] = [];
  let reachable: Promise<void> | undefined;
  let schemaMayExist = false;
  const skip =
    process.env.SWITCHBOARD_SKIP_POSTGRES === "1"
      ? "PostgreSQL tests skipped because SWITCHBOARD_SKIP_POSTGRES=1"
      : undefined;
  return {
    name: "postgres",
    skip,
    async open(options = {}) {
      reachable ??= checkReachable(url);
      await reachable;
      schemaMayExist = true;
      const store = await openStore(url, { ...options, schema });
      opened.push(store);
      return store;
    },
    async connection() {
      reachable ??= checkReachable(url);
      await reachable;
      return { url, schema };
    },
    async cleanup() {
      await Promise.all(opened.splice(0).map((s) => s.close()));
      if (!schemaMayExist) return;
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}

async function checkReachable(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    await client.query("SELECT 1");
  } catch (error) {
    const reason =
      error instanceof Error ? error.message || String((error as { code?: string }).code) : String(error);
    throw new Error(
      `PostgreSQL is not reachable at ${url.replace(/:[^:@/]*@/, ":***@")} (${reason}). Start it, point ` +
        "SWITCHBOARD_TEST_POSTGRES_URL at a server, or set SWITCHBOARD_SKIP_POSTGRES=1 to skip the PostgreSQL tests.",
    );
  } finally {
    await client.end().catch(() => {});
  }
}
