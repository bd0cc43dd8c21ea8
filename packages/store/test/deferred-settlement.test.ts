/**
 * closeReservation: a release, or a settlement at or below what was reserved, does not keep the
 * prompt waiting on SQLite. It is queued and committed in one transaction a moment later; until
 * then the reservation counts in full for other connections (never less than was spent), every
 * read through the same store sees it, and a reservation that would refuse commits it first.
 * A settlement above the reservation, and PostgreSQL, write before resolving.
 */
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Store } from "../src/types.ts";
import { postgresBackend, type StoreBackend, sqliteBackend } from "./backends.ts";
import { withWarnings, withWriteLock } from "./helpers.ts";

const CHILD = fileURLToPath(new URL("./fixtures/settle-then-exit.ts", import.meta.url));
const windowStart = new Date(Date.UTC(2020, 0, 1));
const uid = (prefix: string) => `${prefix}-${randomUUID()}`;
/** The queue is committed 50 ms after it starts, by the writer thread (which may still be starting). */
const BATCH_COMMITTED = { timeout: 5_000, interval: 20 };
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/**
 * Holds that expire within a minute never get a budget lease, so these tests see the settlement
 * queue alone (budget-leases.test.ts covers leases).
 */
const NO_LEASE_TTL_MS = 30_000;

describe("deferred settlement on SQLite", () => {
  let backend: StoreBackend;
  afterEach(() => backend.cleanup());

  /** The store that settles, and a second connection to the same file: what another process sees. */
  async function twoConnections(): Promise<{ store: Store; other: Store }> {
    backend = sqliteBackend();
    return { store: await backend.open(), other: await backend.open({ usageWriterThread: false }) };
  }

  async function reserve(store: Store, key: string, amount: bigint, cap = 1_000_000n): Promise<string> {
    const txId = uid("tx");
    const caps = [{ key, cap, windowStart }];
    expect(await store.reserveAgainstCaps({ txId, amount, caps, ttlMs: NO_LEASE_TTL_MS })).toEqual({
      ok: true,
    });
    return txId;
  }

  it("counts the reservation for other connections until the batch commits; this store sees it at once", async () => {
    const { store, other } = await twoConnections();
    const key = uid("limit");
    const txId = await reserve(store, key, 1000n);
    await store.closeReservation({ book: "caps", txId, actual: 400n, reserved: 1000n });
    expect(await other.spentInWindow(key, windowStart)).toBe(1000n);
    expect(await store.spentInWindow(key, windowStart)).toBe(400n);
    expect(await other.spentInWindow(key, windowStart)).toBe(400n);
    expect((await other.listHolds({ txId }))[0]).toMatchObject({ status: "settled", settled: 400n });
  });

  it("commits the queue on its own a moment later, many settlements in one go", async () => {
    const { store, other } = await twoConnections();
    const key = uid("limit");
    const txIds: string[] = [];
    for (let i = 0; i < 20; i++) txIds.push(await reserve(store, key, 1000n));
    for (const txId of txIds)
      await store.closeReservation({ book: "caps", txId, actual: 10n, reserved: 1000n });
    expect(await other.spentInWindow(key, windowStart)).toBe(20_000n);
    await vi.waitFor(
      async () => expect(await other.spentInWindow(key, windowStart)).toBe(200n),
      BATCH_COMMITTED,
    );
    expect(await other.listHolds({ key, status: "held" })).toHaveLength(0);
  });

  it("commits the queue on flushSettlements", async () => {
    const { store, other } = await twoConnections();
    const key = uid("limit");
    const txId = await reserve(store, key, 1000n);
    await store.closeReservation({ book: "caps", txId, actual: 40n, reserved: 1000n });
    expect(await other.spentInWindow(key, windowStart)).toBe(1000n);
    await store.flushSettlements();
    expect(await other.spentInWindow(key, windowStart)).toBe(40n);
  });

  it("writes a settlement above the reservation before resolving", async () => {
    const { store, other } = await twoConnections();
    const key = uid("limit");
    const txId = await reserve(store, key, 1000n);
    await store.closeReservation({ book: "caps", txId, actual: 1500n, reserved: 1000n });
    expect(await other.spentInWindow(key, windowStart)).toBe(1500n);
    const unknownReservation = await reserve(store, key, 1000n);
    await store.closeReservation({ book: "caps", txId: unknownReservation, actual: 10n });
    expect(await other.spentInWindow(key, windowStart)).toBe(1510n);
  });

  it("releases a rolled-back reservation the same way", async () => {
    const { store, other } = await twoConnections();
    const key = uid("limit");
    const txId = await reserve(store, key, 1000n);
    await store.closeReservation({ book: "caps", txId });
    expect(await other.spentInWindow(key, windowStart)).toBe(1000n);
    await vi.waitFor(
      async () => expect(await other.spentInWindow(key, windowStart)).toBe(0n),
      BATCH_COMMITTED,
    );
    expect((await other.listHolds({ txId }))[0]?.status).toBe("rolled_back");
  });

  it("never refuses a reservation because of a settlement still queued", async () => {
    const { store, other } = await twoConnections();
    const key = uid("limit");
    const first = await reserve(store, key, 1000n, 1000n);
    await store.closeReservation({ book: "caps", txId: first, actual: 100n, reserved: 1000n });
    // 1000 reserved + 900 would not fit; settled at 100 it does.
    await reserve(store, key, 900n, 1000n);
    expect(await other.spentInWindow(key, windowStart)).toBe(1000n);
    expect((await other.listHolds({ txId: first }))[0]?.status).toBe("settled");
    const refused = await store.reserveAgainstCaps({
      txId: uid("tx"),
      amount: 1n,
      caps: [{ key, cap: 1000n, windowStart }],
    });
    expect(refused).toEqual({ ok: false, key, used: 1000n, cap: 1000n });
  });

  it("settles allowance reservations too, and a refused allowance reservation commits the queue first", async () => {
    const { store, other } = await twoConnections();
    const actorId = uid("actor");
    await store.topUpAllowance(actorId, 1000n);
    const txId = uid("tx");
    expect(await store.reserveAllowance({ txId, actorId, amount: 600n })).toMatchObject({ ok: true });
    await store.closeReservation({ book: "allowance", txId, actual: 100n, reserved: 600n });
    expect((await other.getAllowance(actorId))?.balance).toBe(400n);
    // 800 fits only once the 500 refund is in.
    expect(await store.reserveAllowance({ txId: uid("tx"), actorId, amount: 800n })).toMatchObject({
      ok: true,
      balance: 100n,
    });
    expect((await other.allowanceHistory({ actorId })).map((entry) => entry.kind)).toContain("charge");
  });

  it("commits what is queued at close", async () => {
    const { store, other } = await twoConnections();
    const key = uid("limit");
    const txId = await reserve(store, key, 1000n);
    await store.closeReservation({ book: "caps", txId, actual: 1n, reserved: 1000n });
    await store.close();
    expect(await other.spentInWindow(key, windowStart)).toBe(1n);
    await expect(store.closeReservation({ book: "caps", txId, actual: 1n, reserved: 1000n })).rejects.toThrow(
      /closed/,
    );
  });

  it("refuses a negative amount without queuing anything", async () => {
    const { store } = await twoConnections();
    const key = uid("limit");
    const txId = await reserve(store, key, 1000n);
    await expect(
      store.closeReservation({ book: "caps", txId, actual: -1n, reserved: 1000n }),
    ).rejects.toThrow(/actual/);
    expect(await store.spentInWindow(key, windowStart)).toBe(1000n);
  });

  it("keeps a settlement the database refused to take, warns once, and writes it when it can", async () => {
    backend = sqliteBackend();
    const store = await backend.open({ busyTimeoutMs: 50 });
    const key = uid("limit");
    const txId = await reserve(store, key, 1000n);
    const { url } = await backend.connection();
    await withWarnings((warnings) =>
      withWriteLock(url, async (release) => {
        await store.closeReservation({ book: "caps", txId, actual: 5n, reserved: 1000n });
        for (let waited = 0; warnings.length === 0 && waited < 5_000; waited += 50) await pause(50);
        expect(warnings).toEqual([
          expect.stringMatching(/^Settling 1 reservation\(s\) in SQLite failed; kept for retry: .*locked/),
        ]);
        release();
        // Retried on its own (a second later), or now by the next operation of the store.
        expect(await store.spentInWindow(key, windowStart)).toBe(5n);
        expect((await store.listHolds({ txId }))[0]?.status).toBe("settled");
      }),
    );
  });

  it.each([
    { mode: "exit", ending: { code: 0, signal: null } },
    { mode: "exit-mid-batch", ending: { code: 0, signal: null } },
    { mode: "sigterm", ending: { code: null, signal: "SIGTERM" } },
  ])(
    "commits what is queued when the process ends ($mode) without closing the store",
    async ({ mode, ending }) => {
      backend = sqliteBackend();
      const { url } = await backend.connection();
      const key = uid("limit");
      const ended = await new Promise<{ code: number | null; signal: string | null; stderr: string }>(
        (resolve) => {
          execFile(
            process.execPath,
            [CHILD, url, key, "50", mode],
            { timeout: 60_000 },
            (error, _out, stderr) => {
              const failed = error as (Error & { code?: number; signal?: string }) | null;
              resolve({ code: failed ? (failed.code ?? null) : 0, signal: failed?.signal ?? null, stderr });
            },
          );
        },
      );
      expect(ended).toEqual({ ...ending, stderr: "" });
      const store = await backend.open();
      expect(await store.listHolds({ key, status: "held" })).toHaveLength(0);
      expect(await store.listHolds({ key, status: "settled", limit: 100 })).toHaveLength(50);
      expect(await store.spentInWindow(key, windowStart)).toBe(50n * 7n);
    },
  );
});

describe("closeReservation on PostgreSQL", () => {
  const backend = postgresBackend();
  afterEach(() => backend.cleanup());
  if (backend.skip !== undefined) {
    // Only with SWITCHBOARD_SKIP_POSTGRES=1; the test's name says so in the report.
    it.skip(backend.skip, () => {});
    return;
  }

  it("writes before resolving", async () => {
    const store = await backend.open();
    const other = await backend.open();
    const key = uid("limit");
    const txId = uid("tx");
    await store.reserveAgainstCaps({ txId, amount: 1000n, caps: [{ key, cap: 10_000n, windowStart }] });
    await store.closeReservation({ book: "caps", txId, actual: 300n, reserved: 1000n });
    expect(await other.spentInWindow(key, windowStart)).toBe(300n);
    const released = uid("tx");
    await store.reserveAgainstCaps({
      txId: released,
      amount: 1000n,
      caps: [{ key, cap: 10_000n, windowStart }],
    });
    await store.closeReservation({ book: "caps", txId: released });
    expect(await other.spentInWindow(key, windowStart)).toBe(300n);
  });
});
