/**
 * Budget leases on SQLite (budget-leases.ts): with room to spare under a cap, a reservation that
 * reaches the database also reserves a lease, and the next reservations of the same keys are
 * admitted from it without a transaction. Other connections count the whole lease, so no cap is
 * overrun; reads through the same store, flush, close and process exit give the lease back, so
 * what is reported is exact; a refusal waits for other stores' leases to be given back.
 */
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Store } from "../src/types.ts";
import { type StoreBackend, sqliteBackend } from "./backends.ts";
import { withWarnings, withWriteLock } from "./helpers.ts";

const CHILD = fileURLToPath(new URL("./fixtures/reserve-until-refused.ts", import.meta.url));
const windowStart = new Date(Date.UTC(2020, 0, 1));
const uid = (prefix: string) => `${prefix}-${randomUUID()}`;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// The batch that writes what leases admitted runs on the usage writer thread when the store has one.
describe.each([
  { writer: "the writer thread", usageWriterThread: true },
  { writer: "the prompting thread", usageWriterThread: false },
])("budget leases on SQLite, batches written by $writer", ({ usageWriterThread }) => {
  let backend: StoreBackend;
  let raw: Database.Database | undefined;
  afterEach(async () => {
    raw?.close();
    raw = undefined;
    await backend.cleanup();
  });

  /** Two stores on one file (two processes, as far as SQLite can tell) and a raw connection to it. */
  async function setUp(): Promise<{ store: Store; other: Store; committed: () => boolean }> {
    backend = sqliteBackend();
    const store = await backend.open({ usageWriterThread });
    const other = await backend.open({ usageWriterThread });
    const { url } = await backend.connection();
    const connection = new Database(url.slice("sqlite:".length));
    raw = connection;
    // data_version changes whenever another connection commits to the file.
    const version = () => Number(connection.pragma("data_version", { simple: true }));
    let seen = version();
    return {
      store,
      other,
      /** Whether another connection committed since the last call. */
      committed: () => {
        const changed = version() !== seen;
        seen = version();
        return changed;
      },
    };
  }

  const reserve = (store: Store, key: string, amount: bigint, cap: bigint, txId = uid("tx")) =>
    store.reserveAgainstCaps({ txId, amount, caps: [{ key, cap, windowStart }] }).then((result) => ({
      result,
      txId,
    }));

  it("admits the next reservations from a lease without a transaction; other stores count the lease", async () => {
    const { store, other, committed } = await setUp();
    const key = uid("limit");
    const first = await reserve(store, key, 1000n, 1_000_000n);
    expect(first.result).toEqual({ ok: true });
    // The lease: an eighth of what is left above the cap's last tenth, (1,000,000 − 1,000 − 100,000) / 8.
    const lease = (1_000_000n - 1000n - 100_000n) / 8n;
    expect(await other.spentInWindow(key, windowStart)).toBe(1000n + lease);
    const held = await other.listHolds({ key, status: "held" });
    expect(held.map((hold) => hold.txId).sort()).toEqual(
      [first.txId, expect.stringMatching(/^lease:/)].sort(),
    );
    committed();
    const txIds: string[] = [];
    for (let i = 0; i < 50; i++) {
      const next = await reserve(store, key, 1000n, 1_000_000n);
      expect(next.result).toEqual({ ok: true });
      await store.closeReservation({ book: "caps", txId: next.txId, actual: 10n, reserved: 1000n });
      txIds.push(next.txId);
    }
    expect(committed()).toBe(false);
    // Never less than was admitted: the lease still counts in full for the other store.
    expect(await other.spentInWindow(key, windowStart)).toBe(1000n + lease);
    // A read through the same store writes what it admitted and gives the lease back first: exact.
    expect(await store.spentInWindow(key, windowStart)).toBe(1000n + 50n * 10n);
    expect(await other.spentInWindow(key, windowStart)).toBe(1000n + 50n * 10n);
    const holds = await other.listHolds({ key, limit: 100 });
    expect(holds.filter((hold) => hold.txId.startsWith("lease:"))).toEqual([]);
    expect(
      holds
        .filter((hold) => hold.status === "settled")
        .map((hold) => hold.txId)
        .sort(),
    ).toEqual([...txIds].sort());
    expect(holds.find((hold) => hold.txId === first.txId)?.status).toBe("held");
  });

  it("writes what a lease admitted and gives an unused lease back a moment later", async () => {
    const { store, other } = await setUp();
    const key = uid("limit");
    const first = await reserve(store, key, 1000n, 1_000_000n);
    const admitted = await reserve(store, key, 1000n, 1_000_000n);
    // The next batch writes the admitted hold; the one after it gives the unused lease back.
    await vi.waitFor(async () => expect(await other.spentInWindow(key, windowStart)).toBe(2000n), {
      timeout: 5_000,
      interval: 20,
    });
    const held = await other.listHolds({ key, status: "held" });
    expect(held.map((hold) => hold.txId).sort()).toEqual([first.txId, admitted.txId].sort());
    expect((await other.listHolds({ txId: admitted.txId }))[0]).toMatchObject({ reserved: 1000n });
  });

  it("never overruns a cap shared by two stores, and refuses only what really does not fit", async () => {
    const { store, other } = await setUp();
    const key = uid("limit");
    const cap = 100_000n;
    let admitted = 0n;
    let refused = 0;
    // Alternate between the stores until both are refused; each prompt costs what it reserved.
    for (let turn = 0; refused < 2 && turn < 500; turn++) {
      const by = turn % 2 === 0 ? store : other;
      const { result, txId } = await reserve(by, key, 1000n, cap);
      if (!result.ok) {
        refused += 1;
        // The refusal counts what was really spent: the other store's lease was given back first.
        expect(result).toEqual({ ok: false, key, used: admitted, cap });
        continue;
      }
      admitted += 1000n;
      await by.closeReservation({ book: "caps", txId, actual: 1000n, reserved: 1000n });
    }
    expect(admitted).toBe(cap);
    await store.flushSettlements();
    await other.flushSettlements();
    expect(await other.spentInWindow(key, windowStart)).toBe(cap);
    expect(await store.listHolds({ key, status: "held" })).toEqual([]);
  });

  it("waits for another store's lease to be given back before refusing", async () => {
    const { store, other } = await setUp();
    const key = uid("limit");
    const cap = 100_000n;
    await reserve(store, key, 1000n, cap);
    // store now holds a lease of (100,000 − 1,000 − 10,000) / 8 = 11,125: 88,875 seemed left.
    const started = Date.now();
    const big = await reserve(other, key, 99_500n, cap);
    expect(big.result).toEqual({ ok: false, key, used: 1000n, cap });
    expect(Date.now() - started).toBeGreaterThanOrEqual(20);
    const fits = await reserve(other, key, 99_000n, cap);
    expect(fits.result).toEqual({ ok: true });
  });

  it("reserves every prompt on its own in the last tenth of a cap", async () => {
    const { store, committed } = await setUp();
    const key = uid("limit");
    await reserve(store, key, 90_000n, 100_000n);
    for (let i = 0; i < 5; i++) {
      committed();
      expect((await reserve(store, key, 1000n, 100_000n)).result).toEqual({ ok: true });
      expect(committed()).toBe(true);
    }
  });

  it("takes no lease across a window start: a new window is checked in the database", async () => {
    backend = sqliteBackend();
    let now = Date.UTC(2030, 0, 1, 23, 59, 0);
    const store = await backend.open({ usageWriterThread, clock: () => now });
    const key = uid("limit");
    const cap = 1_000_000n;
    const day = (ms: number) => new Date(ms - (ms % 86_400_000));
    const at = (txId: string) =>
      store.reserveAgainstCaps({ txId, amount: 1000n, caps: [{ key, cap, windowStart: day(now) }] });
    expect(await at(uid("tx"))).toEqual({ ok: true });
    now += 60_000; // 00:00:00 the next day: the lease was taken in yesterday's window.
    expect(await at(uid("tx"))).toEqual({ ok: true });
    now += 20_000;
    expect(await at(uid("tx"))).toEqual({ ok: true });
    // Since yesterday: all three (the first prompt's lease was given back when the window moved on).
    // Today: the second, reserved on its own (too early in the window for a lease), and the third
    // (which took a new lease, given back by this read).
    expect(await store.spentInWindow(key, day(now - 86_400_000))).toBe(3000n);
    expect(await store.spentInWindow(key, day(now))).toBe(2000n);
  });

  it("refuses a caller's tx id that looks like a lease, and a tx id admitted twice", async () => {
    const { store } = await setUp();
    const key = uid("limit");
    await expect(reserve(store, key, 1n, 1000n, "lease:mine")).rejects.toThrow(/may not start with "lease:"/);
    await reserve(store, key, 1000n, 1_000_000n);
    const twice = uid("tx");
    expect((await reserve(store, key, 1000n, 1_000_000n, twice)).result).toEqual({ ok: true });
    await expect(reserve(store, key, 1000n, 1_000_000n, twice)).rejects.toThrow(/already/);
  });

  it("reports a tx id reused after its hold was written, counting it once", async () => {
    const { store } = await setUp();
    const key = uid("limit");
    await withWarnings(async (warnings) => {
      const first = await reserve(store, key, 1000n, 1_000_000n);
      // Admitted from the lease the first reservation took; its hold cannot be written twice.
      expect((await reserve(store, key, 1000n, 1_000_000n, first.txId)).result).toEqual({ ok: true });
      await store.flushSettlements();
      await pause(10);
      expect(warnings).toEqual([
        expect.stringMatching(/^1 hold\(s\) of reservations admitted from a budget lease were not written/),
      ]);
      expect(await store.spentInWindow(key, windowStart)).toBe(1000n);
      expect(await store.listHolds({ key })).toHaveLength(1);
    });
  });

  it("keeps what leases admitted while the database is locked, warns once, and writes it when it can", async () => {
    backend = sqliteBackend();
    const store = await backend.open({ usageWriterThread, busyTimeoutMs: 50 });
    const key = uid("limit");
    await reserve(store, key, 1000n, 1_000_000n);
    const { url } = await backend.connection();
    await withWarnings((warnings) =>
      withWriteLock(url, async (release) => {
        // Admitted from the lease: no database needed.
        for (let i = 0; i < 5; i++) {
          const admitted = await reserve(store, key, 1000n, 1_000_000n);
          expect(admitted.result).toEqual({ ok: true });
          await store.closeReservation({ book: "caps", txId: admitted.txId, actual: 100n, reserved: 1000n });
        }
        await vi.waitFor(() => expect(warnings).toHaveLength(1), { timeout: 5_000, interval: 20 });
        expect(warnings[0]).toMatch(
          /^Settling 5 reservation\(s\) in SQLite failed; kept for retry: .*locked/,
        );
        release();
        expect(await store.spentInWindow(key, windowStart)).toBe(1000n + 5n * 100n);
        expect(await store.listHolds({ key, status: "settled" })).toHaveLength(5);
        expect(warnings).toHaveLength(1);
      }),
    );
  });
});

describe("budget leases across processes", () => {
  const backend = sqliteBackend();
  afterEach(() => backend.cleanup());

  /** Runs the child to its first refusal; how many reservations it was admitted. */
  const child = (url: string, key: string, cap: bigint, amount: bigint) =>
    new Promise<number>((resolve, reject) => {
      execFile(
        process.execPath,
        [CHILD, url, key, String(cap), String(amount)],
        { timeout: 60_000 },
        (error, stdout, stderr) =>
          error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(Number(stdout)),
      );
    });

  it("lets three processes spend a shared cap exactly, to the last reservation", async () => {
    const { url } = await backend.connection();
    const store = await backend.open();
    const key = uid("limit");
    const cap = 3_000_000n;
    const amount = 1000n;
    const admitted = await Promise.all([1, 2, 3].map(() => child(url, key, cap, amount)));
    // Every process stopped at its first refusal, with the cap spent to the last nanocent.
    expect(admitted.reduce((sum, count) => sum + count, 0)).toBe(3000);
    expect(await store.spentInWindow(key, windowStart)).toBe(cap);
    expect(await store.listHolds({ key, status: "held" })).toEqual([]);
  });
});
