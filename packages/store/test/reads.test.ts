/**
 * The filtered, paginated reads the hub's reports and the admin UI use, written once in the query
 * layer and run here on both backends; plus the usage status `aborted`.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Store, UsageRecord, UsageRecordInput } from "../src/types.ts";
import { storeBackends } from "./backends.ts";

const USD = 100_000_000_000n;
const HOUR = 3_600_000;

describe.each(storeBackends())("usage, hold and allowance reads on $name", (backend) => {
  if (backend.skip !== undefined) {
    // Only with SWITCHBOARD_SKIP_POSTGRES=1; the test's name says so in the report.
    it.skip(backend.skip, () => {});
    return;
  }
  let store: Store;
  const purpose = `reads-${randomUUID()}`;
  const base = Date.UTC(2034, 5, 1, 22, 30);
  // 30 responses an hour apart over two days: models alternate, every third errs, steps 10–12 form one chain.
  const rows: UsageRecordInput[] = Array.from({ length: 30 }, (_, i) => ({
    id: `${purpose}-${String(i).padStart(2, "0")}`,
    createdAt: base + i * HOUR,
    modelRequested: "m",
    modelAnswered: i % 2 === 0 ? "even-model" : "odd-model",
    purpose,
    actorId: i < 15 ? "ada" : "bob",
    inputTokens: 1,
    outputTokens: 2,
    costNanocents: 10n,
    status: i % 3 === 0 ? "error" : i === 29 ? "aborted" : "ok",
    chainId: i >= 10 && i <= 12 ? `${purpose}-chain` : undefined,
  }));
  const ids = (records: UsageRecord[]) => records.map((r) => Number(r.id.slice(-2)));

  beforeAll(async () => {
    store = await backend.open();
    await store.insertUsage(rows);
  });
  afterAll(() => backend.cleanup());

  it("stores and filters the status aborted", async () => {
    const aborted = await store.listUsage({ purpose, status: "aborted" });
    expect(ids(aborted)).toEqual([29]);
    await expect(store.listUsage({ purpose, status: "weird" as "ok" })).rejects.toMatchObject({
      code: "INVALID_INPUT",
    });
  });

  it("filters by time range, model and actor, newest first", async () => {
    const page = await store.listUsage({
      purpose,
      since: new Date(base + 4 * HOUR),
      until: new Date(base + 20 * HOUR),
      model: "even-model",
      actorId: "ada",
    });
    expect(ids(page)).toEqual([14, 12, 10, 8, 6, 4]);
  });

  it("pages with a cursor without skipping or repeating a row", async () => {
    const seen: number[] = [];
    let before: { createdAt: Date; id: string } | undefined;
    for (;;) {
      const page = await store.listUsage({ purpose, limit: 7, before });
      if (page.length === 0) break;
      seen.push(...ids(page));
      const last = page.at(-1) as UsageRecord;
      before = { createdAt: last.createdAt, id: last.id };
    }
    expect(seen).toEqual(Array.from({ length: 30 }, (_, i) => 29 - i));
  });

  it("orders responses created in the same millisecond by id on both backends", async () => {
    const tied = `tied-${randomUUID()}`;
    const at = base - 10 * HOUR;
    await store.insertUsage(
      ["B", "a", "_x", "A"].map((suffix) => ({
        id: `${tied}-${suffix}`,
        createdAt: at,
        modelRequested: "m",
        modelAnswered: "m",
        purpose: tied,
        status: "ok" as const,
      })),
    );
    const first = await store.listUsage({ purpose: tied, limit: 2 });
    const rest = await store.listUsage({
      purpose: tied,
      before: { createdAt: new Date(at), id: first[1]?.id ?? "" },
    });
    expect([...first, ...rest].map((r) => r.id.slice(tied.length + 1))).toEqual(["a", "_x", "B", "A"]);
  });

  it("picks whole chains by id", async () => {
    const chain = await store.listUsage({ chainIds: [`${purpose}-chain`, "no-such-chain"] });
    expect(ids(chain)).toEqual([12, 11, 10]);
    expect(await store.listUsage({ chainIds: [] })).toEqual([]);
  });

  it("summarizes by UTC day and hour with filters, oldest period first", async () => {
    const byDay = await store.summarizeUsage({ by: "day", purpose });
    expect(byDay.map((r) => [r.key, r.responses, r.failed])).toEqual([
      ["2034-06-01T00:00:00.000Z", 2, 1],
      ["2034-06-02T00:00:00.000Z", 24, 8],
      ["2034-06-03T00:00:00.000Z", 4, 2],
    ]);
    expect(byDay[1]?.costNanocents).toBe(240n);
    const byHour = await store.summarizeUsage({
      by: "hour",
      purpose,
      actorId: "bob",
      until: new Date(base + 17 * HOUR),
    });
    expect(byHour.map((r) => r.key)).toEqual(["2034-06-02T13:00:00.000Z", "2034-06-02T14:00:00.000Z"]);
    const byModel = await store.summarizeUsage({ by: "model", purpose, status: "error" });
    expect(byModel.map((r) => [r.key, r.responses])).toEqual([
      ["even-model", 5],
      ["odd-model", 5],
    ]);
  });

  it("lists holds by key prefix and status, newest first", async () => {
    const prefix = `limit:${randomUUID()}:actor:`;
    let now = Date.now();
    const clocked = await backend.open({ clock: () => now++ });
    const windowStart = new Date(now - HOUR);
    const txs: string[] = [];
    for (const actor of ["ada", "bob", "cy"]) {
      const tx = `tx-${randomUUID()}`;
      txs.push(tx);
      await clocked.reserveAgainstCaps({
        txId: tx,
        amount: USD,
        caps: [{ key: `${prefix}${actor}`, cap: 5n * USD, windowStart }],
      });
    }
    await store.settleHolds(txs[1] as string, USD / 2n);
    expect((await store.listHolds({ keyPrefix: prefix })).map((h) => h.key.slice(prefix.length))).toEqual([
      "cy",
      "bob",
      "ada",
    ]);
    expect(
      (await store.listHolds({ keyPrefix: prefix, status: "held", limit: 1 })).map((h) => h.txId),
    ).toEqual([txs[2]]);
    expect(await store.spentByKey(prefix, windowStart)).toEqual([
      { key: `${prefix}ada`, spent: USD, held: USD },
      { key: `${prefix}bob`, spent: USD / 2n, held: 0n },
      { key: `${prefix}cy`, spent: USD, held: USD },
    ]);
  });

  it("lists allowances in byte order with what each reservation holds", async () => {
    const actors = [`Zed-${randomUUID()}`, `ann-${randomUUID()}`];
    for (const actor of actors) await store.topUpAllowance(actor, 3n * USD);
    await store.reserveAllowance({ txId: `tx-${randomUUID()}`, actorId: actors[1] as string, amount: USD });
    const listed = (await store.listAllowances()).filter((a) => actors.includes(a.actorId));
    expect(listed.map((a) => [a.actorId, a.balance, a.held])).toEqual([
      [actors[0], 3n * USD, 0n],
      [actors[1], 2n * USD, USD],
    ]);
  });
});
