/**
 * Opening storage: data written before hold expiry existed survives the migration; SQLite files
 * are private; storage that cannot be opened, or a PostgreSQL server that does not answer, fails
 * with one line that names the place (never a password) and the fix.
 */
import { mkdirSync, mkdtempSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isSwitchboardError } from "@switchboard/core";
import Database from "better-sqlite3";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { MIGRATIONS, openStore } from "../src/index.ts";
import { numbered } from "../src/shared.ts";
import { postgresBackend, postgresTestUrl, sqliteBackend } from "./backends.ts";

const USD = 100_000_000_000n;
const CREATED = Date.UTC(2020, 0, 1);
/** What stores held before 0004: one hold, one allowance reservation, one usage row. */
const LEGACY_ROWS = [
  [
    `INSERT INTO switchboard_holds (tx_id, ledger_key, reserved_nanocents, status, created_at)
     VALUES ('old-tx', 'limit:old', $1, 'held', $2)`,
    [USD, CREATED],
  ],
  [
    "INSERT INTO switchboard_hold_totals (ledger_key, bucket_start, amount_nanocents) VALUES ('limit:old', $1, $2)",
    [CREATED, USD],
  ],
  [
    `INSERT INTO switchboard_allowance_holds (tx_id, actor_id, reserved_nanocents, status, created_at)
     VALUES ('old-tx', 'ada', $1, 'held', $2)`,
    [USD, CREATED],
  ],
  [
    `INSERT INTO switchboard_usage (id, created_at, model_requested, model_answered, status)
     VALUES ('old-row', $1, 'echo', 'echo', 'ok')`,
    [CREATED],
  ],
] as const;
const EARLIER = MIGRATIONS.slice(0, 3);

describe("migrating stores written before holds expired", () => {
  it("keeps every row on SQLite and gives old holds an expiry", async () => {
    const backend = sqliteBackend();
    const { url } = await backend.connection();
    const path = url.slice("sqlite:".length);
    mkdirSync(join(path, ".."), { recursive: true });
    const db = new Database(path);
    db.exec(
      "CREATE TABLE switchboard_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT",
    );
    for (const migration of EARLIER) {
      db.exec(migration.sqlite);
      db.prepare("INSERT INTO switchboard_migrations VALUES (?, ?)").run(migration.name, 1);
    }
    for (const [sql, params] of LEGACY_ROWS) db.prepare(sql).run(numbered(params));
    db.close();
    await expectMigrated(await backend.open());
    await backend.cleanup();
  });

  it("keeps every row on PostgreSQL and gives old holds an expiry", async () => {
    const backend = postgresBackend();
    if (backend.skip) return;
    const { url, schema } = await backend.connection();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(`CREATE SCHEMA ${schema}; SET search_path = ${schema}`);
      await client.query(
        "CREATE TABLE switchboard_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)",
      );
      for (const migration of EARLIER) {
        await client.query(migration.postgres);
        await client.query("INSERT INTO switchboard_migrations VALUES ($1, $2)", [migration.name, 1]);
      }
      for (const [sql, params] of LEGACY_ROWS) await client.query(sql, params.map(String));
    } finally {
      await client.end();
    }
    await expectMigrated(await backend.open());
    await backend.cleanup();
  });

  async function expectMigrated(store: Awaited<ReturnType<typeof openStore>>): Promise<void> {
    expect((await store.migrations()).map((m) => m.name)).toEqual(MIGRATIONS.map((m) => m.name));
    expect((await store.listHolds({ txId: "old-tx" }))[0]).toMatchObject({
      key: "limit:old",
      status: "held",
      expiresAt: new Date(CREATED + 15 * 60_000),
    });
    expect((await store.listUsage())[0]).toMatchObject({ id: "old-row", status: "ok" });
    await store.insertUsage([
      {
        id: "new-row",
        createdAt: CREATED + 1,
        modelRequested: "echo",
        modelAnswered: "echo",
        status: "aborted",
      },
    ]);
    // Long past its expiry: the old hold stops counting, and its reservation is refunded.
    expect(await store.spentInWindow("limit:old", new Date(0))).toBe(USD);
    expect(await store.expireHolds()).toBe(2);
    expect(await store.spentInWindow("limit:old", new Date(0))).toBe(0n);
  }
});

describe("opening SQLite storage", () => {
  const root = mkdtempSync(join(tmpdir(), "switchboard-open-"));

  it("creates the database 0600 (with its WAL) and the folders it makes 0700", async () => {
    const path = join(root, "made", "for", "it", "switchboard.db");
    const store = await openStore(`sqlite:${path}`);
    await store.insertUsage([
      { id: "r", createdAt: Date.now(), modelRequested: "echo", modelAnswered: "echo", status: "ok" },
    ]);
    const mode = (file: string) => (statSync(file).mode & 0o777).toString(8);
    expect(mode(path)).toBe("600");
    expect(mode(`${path}-wal`)).toBe("600");
    expect(mode(join(root, "made"))).toBe("700");
    expect(mode(join(root, "made", "for", "it"))).toBe("700");
    await store.close();
  });

  async function openFailure(path: string): Promise<Error> {
    const error = await openStore(`sqlite:${path}`).catch((e: unknown) => e);
    expect(isSwitchboardError(error, "STORAGE_ERROR"), String(error)).toBe(true);
    const message = (error as Error).message;
    expect(message).not.toContain("\n");
    expect(message).toContain(path);
    return error as Error;
  }

  it("says which file stands where a folder should be, in one line", async () => {
    const file = join(root, "not-a-folder");
    writeFileSync(file, "x");
    const error = await openFailure(join(file, "deeper", "switchboard.db"));
    expect(error.message).toBe(
      `Cannot open SQLite storage at ${join(file, "deeper", "switchboard.db")}: ${file} is a file, not a folder; ` +
        "move it or set storage: sqlite:PATH in switchboard.yaml (or SWITCHBOARD_USER_PATH for the default database).",
    );
  });

  it("says when the database path is a folder, and what to name instead", async () => {
    const folder = join(root, "a-folder");
    mkdirSync(folder);
    const error = await openFailure(folder);
    expect(error.message).toContain(
      `it is a folder; name a database file in it, e.g. sqlite:${join(folder, "switchboard.db")}`,
    );
  });

  it("says when the file is not a database", async () => {
    const file = join(root, "notes.txt");
    writeFileSync(file, "these are not the pages you are looking for ".repeat(200));
    expect((await openFailure(file)).message).toContain("the file is not a SQLite database");
  });
});

describe("PostgreSQL that does not answer", () => {
  const sockets = new Set<Socket>();
  let silent: Server | undefined;
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent?.close(resolve));
  });

  it("fails to open within the connect timeout, naming the URL without its password", async () => {
    silent = createServer((socket) => {
      sockets.add(socket); // accepts, reads, never answers
    });
    await new Promise<void>((resolve) => silent?.listen(0, "127.0.0.1", resolve));
    const port = (silent.address() as { port: number }).port;
    const started = Date.now();
    const error = await openStore(`postgres://app:s3cret-pass@127.0.0.1:${port}/db`, {
      connectTimeoutMs: 300,
    }).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(isSwitchboardError(error, "STORAGE_ERROR"), String(error)).toBe(true);
    const message = (error as Error).message;
    expect(message).toBe(
      `Cannot open PostgreSQL storage at postgres://app@127.0.0.1:${port}/db did not answer within 300 ms (opening). ` +
        "Check that the server is up and not overloaded or locked, or allow longer with ?connect_timeout=SECONDS in the storage URL.",
    );
    expect(message).not.toContain("s3cret");
  });

  it("fails a statement that waits past the statement timeout, in one line", async () => {
    const backend = postgresBackend();
    if (backend.skip) return;
    const store = await backend.open({ queryTimeoutMs: 300 });
    const { url, schema } = await backend.connection();
    const blocker = new pg.Client({ connectionString: url });
    await blocker.connect();
    try {
      await blocker.query(`BEGIN; LOCK TABLE ${schema}.switchboard_allowances IN ACCESS EXCLUSIVE MODE`);
      const error = await store.getAllowance("ada").catch((e: unknown) => e);
      expect(isSwitchboardError(error, "STORAGE_ERROR"), String(error)).toBe(true);
      expect((error as Error).message).toBe(
        `Storage failed: PostgreSQL storage at ${postgresTestUrl().replace(/:[^:@/]*@/, "@")} did not answer within 300 ms (getAllowance). ` +
          "Check that the server is up and not overloaded or locked, or allow longer with ?statement_timeout=MS in the storage URL.",
      );
    } finally {
      await blocker.query("ROLLBACK").catch(() => {});
      await blocker.end();
      await backend.cleanup();
    }
  });
});
