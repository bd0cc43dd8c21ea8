/**
 * No usage row is lost: a library process that logs 200 prompts and ends without `hub.close()` —
 * by process.exit(0), SIGTERM, SIGINT or an uncaught exception — still stores all 200 (SQLite
 * writes them synchronously at exit; PostgreSQL's asynchronous driver is awaited on signals and
 * crashes, and cannot be at process.exit(), which the process then says). A write that finally
 * fails makes `hub.flush()` and `hub.close()` reject, saying how many rows were not written.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { isSwitchboardError, KeyStore } from "@switchboard/core";
import { openStore } from "@switchboard/store";
import { postgresBackend, sqliteBackend } from "@switchboard/store/testing";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { Hub } from "../src/index.ts";
import { temporaryDirectory } from "./helpers.ts";

const CHILD = fileURLToPath(new URL("./fixtures/usage-then-exit.ts", import.meta.url));
const PROMPTS = 200;

interface Ending {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

function runChild(storage: string, mode: string): Promise<Ending> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CHILD, storage, mode, String(PROMPTS)],
      { timeout: 60_000 },
      (error, _out, stderr) => {
        const failed = error as (Error & { code?: number; signal?: NodeJS.Signals }) | null;
        resolve({ code: failed ? (failed.code ?? null) : 0, signal: failed?.signal ?? null, stderr });
      },
    );
  });
}

async function storedRows(storage: string): Promise<number> {
  const store = await openStore(storage);
  try {
    return (await store.listUsage({ limit: 1000 })).length;
  } finally {
    await store.close();
  }
}

/** What the process looks like from outside after each ending. */
const ENDINGS = [
  { mode: "exit", expect: { code: 0, signal: null } },
  { mode: "sigterm", expect: { code: null, signal: "SIGTERM" } },
  { mode: "sigint", expect: { code: null, signal: "SIGINT" } },
  { mode: "uncaught", expect: { code: 1, signal: null } },
] as const;

describe("usage rows survive the process ending without hub.close() on SQLite", () => {
  const backends: ReturnType<typeof sqliteBackend>[] = [];
  afterAll(() => Promise.all(backends.map((backend) => backend.cleanup())));

  it.each(ENDINGS)(
    "$mode: all 200 rows, and the process ends as it would have",
    async ({ mode, expect: ending }) => {
      const backend = sqliteBackend();
      backends.push(backend);
      const { url } = await backend.connection();
      const result = await runChild(url, mode);
      expect({ code: result.code, signal: result.signal }).toEqual(ending);
      if (mode === "uncaught") expect(result.stderr).toContain("boom after the prompts");
      expect(await storedRows(url)).toBe(PROMPTS);
    },
  );
});

describe("usage rows on PostgreSQL when the process ends without hub.close()", () => {
  const backend = postgresBackend();
  afterAll(() => backend.cleanup());
  const storageUrl = async () => {
    const { url, schema } = await backend.connection();
    return `${url}${url.includes("?") ? "&" : "?"}schema=${schema}`;
  };

  it.skipIf(backend.skip).each(ENDINGS.filter((ending) => ending.mode !== "exit"))(
    "$mode: flushed before the process ends, all 200 rows",
    async ({ mode, expect: ending }) => {
      const storage = await storageUrl();
      const before = await storedRows(storage);
      const result = await runChild(storage, mode);
      expect({ code: result.code, signal: result.signal }).toEqual(ending);
      expect((await storedRows(storage)) - before).toBe(PROMPTS);
    },
  );

  it.skipIf(backend.skip)(
    "process.exit(): nothing asynchronous can run, so the rows still queued are lost, and it says so",
    async () => {
      const storage = await storageUrl();
      const before = await storedRows(storage);
      const result = await runChild(storage, "exit");
      expect(result.code).toBe(0);
      const lost = PROMPTS - ((await storedRows(storage)) - before);
      expect(lost).toBeGreaterThan(0);
      expect(result.stderr).toContain(
        `Switchboard: ${lost} usage rows were lost: the process exited before they reached storage that cannot be written synchronously; await hub.close() before exiting.`,
      );
    },
  );
});

describe("a database locked past the busy timeout", () => {
  /** A hub on a fresh SQLite file whose writers give up after 100 ms, and another connection holding the write lock. */
  async function lockedHub() {
    const backend = sqliteBackend();
    const { url } = await backend.connection();
    const store = await openStore(url, { busyTimeoutMs: 100 });
    const hub = await Hub.create({
      config: { default_model: "echo" },
      store,
      env: {},
      keys: new KeyStore(`${temporaryDirectory()}/keys.json`),
    });
    const locker = new Database(url.slice("sqlite:".length));
    locker.exec("BEGIN IMMEDIATE");
    const unlock = () => {
      locker.exec("ROLLBACK");
      locker.close();
    };
    return { backend, store, hub, unlock };
  }

  it("makes hub.flush() and hub.close() reject, saying how many rows were not written", async () => {
    const { backend, store, hub, unlock } = await lockedHub();
    try {
      const model = await hub.model();
      await model.prompt("one").text();
      await model.prompt("two").text();
      const flushed = await hub.flush().then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(isSwitchboardError(flushed, "STORAGE_ERROR"), String(flushed)).toBe(true);
      expect((flushed as Error).message).toMatch(
        /^2 usage rows were not written: .*database is locked.*\. They stay queued and are written at the next flush\.$/,
      );
      await model.prompt("three").text();
      const closed = await hub.close().then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(isSwitchboardError(closed, "STORAGE_ERROR"), String(closed)).toBe(true);
      expect((closed as Error).message).toMatch(
        /^3 usage rows were not written: .*Retry when the storage is writable again\.$/,
      );
    } finally {
      unlock();
      await store.close();
      await backend.cleanup();
    }
  });

  it("writes the rows at the next flush once the lock is gone", async () => {
    const { backend, store, hub, unlock } = await lockedHub();
    await (await hub.model()).prompt("kept").text();
    await expect(hub.flush()).rejects.toMatchObject({ code: "STORAGE_ERROR" });
    unlock();
    await hub.flush();
    expect((await store.listUsage()).map((row) => row.status)).toEqual(["ok"]);
    await hub.close();
    await store.close();
    await backend.cleanup();
  });
});
