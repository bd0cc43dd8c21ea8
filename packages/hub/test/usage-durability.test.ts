/**
 * No usage row is lost: a library process that logs 200 prompts and ends without `hub.close()` —
 * by process.exit(0), SIGTERM, SIGINT or an uncaught exception — still stores all 200, and
 * settles all 200 reservations (SQLite queues settlements a moment; they are written too). SQLite
 * writes them in-thread at `exit`; PostgreSQL's driver is asynchronous, so signals await the
 * flush, and at `exit` (process.exit, crashes) a short-lived child process writes them. A write
 * that finally fails makes `hub.flush()` and `hub.close()` reject, saying how many rows were not
 * written.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { isSwitchboardError, KeyStore } from "@switchboard/core";
import { openStore } from "@switchboard/store";
import { postgresBackend, sqliteBackend, storeBackends } from "@switchboard/store/testing";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { Hub } from "../src/index.ts";
import { UsageWriter } from "../src/internal.ts";
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

/** Holds of the child's limit still held, and settled. */
async function storedHolds(storage: string): Promise<{ held: number; settled: number }> {
  const store = await openStore(storage);
  try {
    return {
      held: (await store.listHolds({ keyPrefix: "limit:daily", status: "held", limit: 1000 })).length,
      settled: (await store.listHolds({ keyPrefix: "limit:daily", status: "settled", limit: 1000 })).length,
    };
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
      expect(await storedHolds(url)).toEqual({ held: 0, settled: PROMPTS });
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

  it.skipIf(backend.skip).each(ENDINGS)(
    "$mode: all 200 rows, and the process ends as it would have",
    async ({ mode, expect: ending }) => {
      const storage = await storageUrl();
      const before = await storedRows(storage);
      const result = await runChild(storage, mode);
      expect({ code: result.code, signal: result.signal }).toEqual(ending);
      expect(result.stderr).not.toContain("lost");
      expect((await storedRows(storage)) - before).toBe(PROMPTS);
      expect((await storedHolds(storage)).held).toBe(0);
    },
  );
});

describe("rows queued before the storage ever opened", () => {
  it.each(storeBackends())("are written at exit on $name, through a child process", async (backend) => {
    if (backend.skip) return;
    const { url, schema } = await backend.connection();
    await (await backend.open()).close(); // migrated, as a running deployment's database is
    const storage = schema === undefined ? url : `${url}${url.includes("?") ? "&" : "?"}schema=${schema}`;
    const writer = new UsageWriter(() => new Promise<never>(() => {}), {
      exitStorage: () => ({ url: storage }),
    });
    const at = Date.now();
    for (const id of ["resp_early_1", "resp_early_2"]) {
      writer.add({
        id,
        createdAt: at,
        modelRequested: "echo",
        modelAnswered: "echo",
        status: "ok",
        costNanocents: 7n,
      });
    }
    expect(writer.writeAtExit()).toBe(0);
    expect(writer.pending).toBe(0);
    const store = await openStore(storage);
    expect((await store.listUsage()).map((row) => [row.id, row.costNanocents])).toEqual([
      ["resp_early_2", 7n],
      ["resp_early_1", 7n],
    ]);
    await store.close();
    await backend.cleanup();
  });
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
