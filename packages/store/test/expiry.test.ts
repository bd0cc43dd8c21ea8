/**
 * Holds and allowance reservations expire: one left by a process that died stops counting once
 * its expiry passes, is marked `expired` (never deleted), and settling it later still records the
 * real cost. Run on SQLite and PostgreSQL.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Store } from "../src/types.ts";
import { storeBackends } from "./backends.ts";

const USD = 100_000_000_000n;
const MINUTE = 60_000;
const uid = (prefix: string) => `${prefix}-${randomUUID()}`;

describe.each(storeBackends())("hold expiry on $name", (backend) => {
  if (backend.skip !== undefined) {
    // Only with SWITCHBOARD_SKIP_POSTGRES=1; the test's name says so in the report.
    it.skip(backend.skip, () => {});
    return;
  }
  let now = Date.UTC(2033, 2, 1, 9);
  let store: Store;
  beforeAll(async () => {
    store = await backend.open({ clock: () => now });
  });
  afterAll(() => backend.cleanup());

  const windowStart = () => new Date(now - 24 * 60 * MINUTE);

  it("frees the budget once a hold expires, marks it expired and keeps it", async () => {
    const key = uid("limit");
    const caps = () => [{ key, cap: USD, windowStart: windowStart() }];
    const abandoned = uid("tx");
    expect(
      await store.reserveAgainstCaps({ txId: abandoned, amount: USD, caps: caps(), ttlMs: MINUTE }),
    ).toEqual({ ok: true });
    expect((await store.listHolds({ txId: abandoned }))[0]).toMatchObject({
      status: "held",
      expiresAt: new Date(now + MINUTE),
    });
    // Before the expiry the budget stays taken.
    now += MINUTE - 1;
    expect(await store.reserveAgainstCaps({ txId: uid("tx"), amount: USD, caps: caps() })).toMatchObject({
      ok: false,
      used: USD,
    });
    now += 1;
    const next = uid("tx");
    expect(await store.reserveAgainstCaps({ txId: next, amount: USD, caps: caps() })).toEqual({ ok: true });
    expect((await store.listHolds({ txId: abandoned }))[0]).toMatchObject({
      status: "expired",
      settledAt: new Date(now),
    });
    expect(await store.spentInWindow(key, windowStart())).toBe(USD);
    expect(await store.listHolds({ key, status: "expired" })).toHaveLength(1);
  });

  it("settles an expired hold at its real cost and does not roll it back", async () => {
    const key = uid("limit");
    const caps = [{ key, cap: 10n * USD, windowStart: windowStart() }];
    const slow = uid("tx");
    await store.reserveAgainstCaps({ txId: slow, amount: 4n * USD, caps, ttlMs: MINUTE });
    now += 2 * MINUTE;
    expect(await store.expireHolds()).toBeGreaterThanOrEqual(1);
    expect(await store.spentInWindow(key, windowStart())).toBe(0n);
    expect(await store.rollbackHolds(slow)).toBe(0);
    expect((await store.listHolds({ txId: slow }))[0]?.status).toBe("expired");
    // The request finished after all: what it cost is recorded and counts again.
    expect(await store.settleHolds(slow, 3n * USD)).toBe(1);
    expect((await store.listHolds({ txId: slow }))[0]).toMatchObject({
      status: "settled",
      settled: 3n * USD,
    });
    expect(await store.spentInWindow(key, windowStart())).toBe(3n * USD);
    expect(await store.spentByKey(key, windowStart())).toEqual([{ key, spent: 3n * USD, held: 0n }]);
    expect(await store.settleHolds(slow, 3n * USD)).toBe(0);
  });

  it("expires holds of many keys and buckets at once, leaving live ones alone", async () => {
    const keys = [uid("a"), uid("b")];
    now += 60 * MINUTE;
    await store.expireHolds(); // what earlier tests left held
    const caps = () => keys.map((key) => ({ key, cap: 100n * USD, windowStart: windowStart() }));
    const old: string[] = [];
    for (let i = 0; i < 3; i++) {
      const tx = uid("tx");
      old.push(tx);
      await store.reserveAgainstCaps({ txId: tx, amount: USD, caps: caps(), ttlMs: MINUTE });
      now += 11 * MINUTE; // a new 10-minute bucket each time
    }
    const live = uid("tx");
    await store.reserveAgainstCaps({ txId: live, amount: 2n * USD, caps: caps() });
    expect(await store.expireHolds()).toBe(6);
    for (const key of keys) {
      expect(await store.spentByKey(key, windowStart())).toEqual([{ key, spent: 2n * USD, held: 2n * USD }]);
    }
    expect((await store.listHolds({ txId: live })).map((h) => h.status)).toEqual(["held", "held"]);
    expect(await store.expireHolds()).toBe(0);
  });

  it("finds each hold of a shared bucket when its own expiry passes, not before", async () => {
    now += 60 * MINUTE;
    await store.expireHolds();
    const key = uid("bucket");
    const caps = [{ key, cap: 100n * USD, windowStart: windowStart() }];
    const [short, middle, long] = [uid("tx"), uid("tx"), uid("tx")];
    await store.reserveAgainstCaps({ txId: short, amount: USD, caps, ttlMs: MINUTE });
    await store.reserveAgainstCaps({ txId: middle, amount: 2n * USD, caps, ttlMs: 5 * MINUTE });
    await store.reserveAgainstCaps({ txId: long, amount: 4n * USD, caps, ttlMs: 9 * MINUTE });
    await store.settleHolds(short, USD / 2n);
    now += 2 * MINUTE; // past the settled hold's expiry only: nothing to expire
    expect(await store.expireHolds()).toBe(0);
    now += 4 * MINUTE;
    expect(await store.expireHolds()).toBe(1);
    const statuses = new Map((await store.listHolds({ key })).map((h) => [h.txId, h.status]));
    expect([statuses.get(short), statuses.get(middle), statuses.get(long)]).toEqual([
      "settled",
      "expired",
      "held",
    ]);
    expect(await store.spentByKey(key, windowStart())).toEqual([
      { key, spent: USD / 2n + 4n * USD, held: 4n * USD },
    ]);
    now += 2 * MINUTE;
    expect(await store.expireHolds()).toBe(0);
    now += MINUTE;
    expect(await store.expireHolds()).toBe(1);
    expect(await store.spentInWindow(key, windowStart())).toBe(USD / 2n);
    // Settling the long one late still counts it, in its own bucket.
    expect(await store.settleHolds(long, 3n * USD)).toBe(1);
    expect(await store.spentByKey(key, windowStart())).toEqual([
      { key, spent: USD / 2n + 3n * USD, held: 0n },
    ]);
  });

  it("refunds an expired allowance reservation, and charges it if it settles later", async () => {
    const actor = uid("actor");
    await store.topUpAllowance(actor, 5n * USD);
    const abandoned = uid("tx");
    expect(
      await store.reserveAllowance({ txId: abandoned, actorId: actor, amount: 5n * USD, ttlMs: MINUTE }),
    ).toEqual({ ok: true, balance: 0n });
    expect(await store.getAllowance(actor)).toMatchObject({ balance: 0n, held: 5n * USD });
    expect((await store.reserveAllowance({ txId: uid("tx"), actorId: actor, amount: USD })).ok).toBe(false);
    now += MINUTE;
    // Refused at first, the reservation finds the expired one, refunds it and goes through.
    expect(await store.reserveAllowance({ txId: uid("tx"), actorId: actor, amount: USD })).toEqual({
      ok: true,
      balance: 4n * USD,
    });
    expect(await store.getAllowance(actor)).toMatchObject({ balance: 4n * USD, held: USD });
    expect(await store.rollbackAllowance(abandoned)).toBeUndefined();
    expect(await store.settleAllowance(abandoned, 2n * USD)).toBe(2n * USD);
    const [charge] = await store.allowanceHistory({ actorId: actor, limit: 1 });
    expect(charge).toMatchObject({
      kind: "charge",
      amount: -2n * USD,
      balanceAfter: 2n * USD,
      txId: abandoned,
    });
  });

  it("expireHolds refunds every actor's expired reservations", async () => {
    const actors = [uid("actor"), uid("actor")];
    for (const actor of actors) {
      await store.topUpAllowance(actor, 3n * USD);
      await store.reserveAllowance({ txId: uid("tx"), actorId: actor, amount: USD, ttlMs: MINUTE });
      await store.reserveAllowance({ txId: uid("tx"), actorId: actor, amount: USD, ttlMs: MINUTE });
    }
    now += MINUTE;
    expect(await store.expireHolds()).toBe(4);
    for (const actor of actors) {
      expect(await store.getAllowance(actor)).toMatchObject({ balance: 3n * USD, held: 0n });
    }
  });

  it("stays exact when 300 concurrent reservations race an expiring one", async () => {
    const key = uid("race");
    const caps = () => [{ key, cap: 100n * USD, windowStart: windowStart() }];
    await store.reserveAgainstCaps({ txId: uid("tx"), amount: 50n * USD, caps: caps(), ttlMs: MINUTE });
    now += MINUTE;
    const results = await Promise.all(
      Array.from({ length: 300 }, () =>
        store.reserveAgainstCaps({ txId: uid("tx"), amount: USD, caps: caps() }),
      ),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(100);
    expect(await store.spentInWindow(key, windowStart())).toBe(100n * USD);
  });

  it("refuses a ttl that is not a positive whole number of ms", async () => {
    const error = await store
      .reserveAgainstCaps({
        txId: uid("tx"),
        amount: 1n,
        caps: [{ key: uid("k"), cap: 2n, windowStart: new Date(0) }],
        ttlMs: 0,
      })
      .catch((e: unknown) => e);
    expect((error as { code?: string }).code).toBe("INVALID_INPUT");
  });
});
