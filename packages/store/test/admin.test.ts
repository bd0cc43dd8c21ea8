/**
 * The admin UI's storage on both backends: hourly usage sums kept by the insert trigger (equal to
 * the rows they sum), audit paging, one-use login links, and override change notifications.
 */
import { afterAll, describe, expect, it } from "vitest";
import type { StoredAuditEntry, UsageRecordInput } from "../src/index.ts";
import { type StoreBackend, storeBackends } from "./backends.ts";

const HOUR = 3_600_000;
const T0 = Date.parse("2026-11-30T00:00:00Z");

function usageRow(index: number, createdAt: number, extra: Partial<UsageRecordInput> = {}): UsageRecordInput {
  return {
    id: `u${String(index).padStart(5, "0")}`,
    createdAt,
    modelRequested: "echo",
    modelAnswered: index % 2 ? "echo" : "markov",
    purpose: index % 3 ? "summaries" : undefined,
    actorId: `actor${index % 4}`,
    inputTokens: 10,
    outputTokens: index,
    costNanocents: 1000n * BigInt(index),
    status: index % 5 ? "ok" : "error",
    ...extra,
  };
}

function auditEntry(id: string, createdAt: number, target = "summaries"): StoredAuditEntry {
  return {
    id,
    createdAt: new Date(createdAt),
    actor: "root",
    action: "purpose.override",
    targetType: "purpose",
    target,
    before: undefined,
    after: JSON.stringify({ model: "echo" }),
    instance: "test",
  };
}

describe.each(storeBackends())("admin storage on $name", (backend: StoreBackend) => {
  afterAll(() => backend.cleanup());

  it.skipIf(backend.skip)("keeps hourly usage sums that add up to the rows, split by a key", async () => {
    const store = await backend.open();
    const rows = Array.from({ length: 60 }, (_, index) => usageRow(index, T0 + index * 20 * 60_000));
    // Two batches, and a retried row that must not count twice.
    await store.insertUsage(rows.slice(0, 30));
    await store.insertUsage([...rows.slice(25, 60)]);
    const byHour = await store.usageSeries({ bucket: "hour" });
    expect(byHour).toHaveLength(20);
    expect(byHour.reduce((sum, row) => sum + row.responses, 0)).toBe(60);
    expect(byHour.reduce((sum, row) => sum + row.costNanocents, 0n)).toBe(
      rows.reduce((sum, row) => sum + BigInt(row.costNanocents ?? 0), 0n),
    );
    expect(byHour.reduce((sum, row) => sum + row.errors, 0)).toBe(12);

    const byDayAndModel = await store.usageSeries({ bucket: "day", by: "model" });
    expect(byDayAndModel.map((row) => [row.bucketStart.toISOString(), row.key, row.responses])).toEqual([
      ["2026-11-30T00:00:00.000Z", "echo", 30],
      ["2026-11-30T00:00:00.000Z", "markov", 30],
    ]);
    const byPurpose = await store.usageSeries({ bucket: "day", by: "purpose" });
    expect(byPurpose.map((row) => [row.key, row.responses])).toEqual([
      [null, 20],
      ["summaries", 40],
    ]);
    // Whole hours: 00:30 to 02:10 covers the hours starting 00:00, 01:00 and 02:00.
    const window = await store.usageSeries({
      bucket: "hour",
      since: new Date(T0 + 30 * 60_000),
      until: new Date(T0 + 2 * HOUR + 10 * 60_000),
    });
    expect(window.map((row) => row.bucketStart.getTime())).toEqual([T0, T0 + HOUR, T0 + 2 * HOUR]);
    expect(await store.usageKeys({})).toEqual({
      purposes: ["summaries"],
      models: ["echo", "markov"],
      actors: ["actor0", "actor1", "actor2", "actor3"],
    });
  });

  it.skipIf(backend.skip)(
    "gives the sums of the rows, whichever rollup or the log itself answers",
    async () => {
      const store = await backend.open();
      const start = T0 + 10 * 86_400_000;
      const rows = Array.from({ length: 90 }, (_, index) =>
        usageRow(index, start + index * 47 * 60_000, { id: `mix${index}` }),
      );
      await store.insertUsage(rows);
      const range = { since: new Date(start), until: new Date(start + 3 * 86_400_000) };
      const expected = (
        bucketMs: number,
        key: (row: UsageRecordInput) => string | undefined,
        keep = (_row: UsageRecordInput) => true,
      ) => {
        const sums = new Map<string, number>();
        for (const row of rows.filter(keep)) {
          const at = Number(row.createdAt);
          const name = `${at - (at % bucketMs)}|${key(row) ?? ""}`;
          sums.set(name, (sums.get(name) ?? 0) + (row.outputTokens ?? 0));
        }
        return Object.fromEntries(sums);
      };
      const actual = (series: Awaited<ReturnType<typeof store.usageSeries>>) =>
        Object.fromEntries(
          series.map((row) => [`${row.bucketStart.getTime()}|${row.key ?? ""}`, row.outputTokens]),
        );
      const DAY = 86_400_000;
      // Daily rollups by purpose and by actor; the hourly one by model; the log for the rest.
      expect(actual(await store.usageSeries({ bucket: "day", by: "purpose", ...range }))).toEqual(
        expected(DAY, (row) => row.purpose),
      );
      expect(actual(await store.usageSeries({ bucket: "day", by: "actor", ...range }))).toEqual(
        expected(DAY, (row) => row.actorId),
      );
      expect(actual(await store.usageSeries({ bucket: "hour", by: "model", ...range }))).toEqual(
        expected(HOUR, (row) => row.modelAnswered),
      );
      expect(
        actual(await store.usageSeries({ bucket: "day", by: "actor", purpose: "summaries", ...range })),
      ).toEqual(
        expected(
          DAY,
          (row) => row.actorId,
          (row) => row.purpose === "summaries",
        ),
      );
      expect(actual(await store.usageSeries({ bucket: "hour", by: "actor", ...range }))).toEqual(
        expected(HOUR, (row) => row.actorId),
      );
      // Only some keys, null (no purpose) among them: from a rollup, and from the log.
      expect(
        actual(await store.usageSeries({ bucket: "day", by: "purpose", keys: [null], ...range })),
      ).toEqual(
        expected(
          DAY,
          (row) => row.purpose,
          (row) => row.purpose === undefined,
        ),
      );
      expect(
        actual(
          await store.usageSeries({ bucket: "hour", by: "actor", keys: ["actor1", "actor3"], ...range }),
        ),
      ).toEqual(
        expected(
          HOUR,
          (row) => row.actorId,
          (row) => ["actor1", "actor3"].includes(row.actorId ?? ""),
        ),
      );
      expect(
        actual(await store.usageSeries({ bucket: "day", actorId: "actor2", model: "echo", ...range })),
      ).toEqual(
        expected(
          DAY,
          () => undefined,
          (row) => row.actorId === "actor2" && row.modelAnswered === "echo",
        ),
      );
    },
  );

  it.skipIf(backend.skip)(
    "keeps the top keys apart and folds the rest into other, bucket by bucket",
    async () => {
      const store = await backend.open();
      const start = T0 + 20 * 86_400_000;
      const rows = Array.from({ length: 60 }, (_, index) =>
        usageRow(index, start + index * 31 * 60_000, {
          id: `top${index}`,
          costNanocents: BigInt(1000 * (index % 4)),
        }),
      );
      await store.insertUsage(rows);
      const range = { since: new Date(start), until: new Date(start + 2 * 86_400_000) };
      // Through a rollup (days by actor), and ranked on one then read from the log (hours by actor).
      for (const bucket of ["day", "hour"] as const) {
        const series = await store.usageSeries({ ...range, bucket, by: "actor", top: 2 });
        expect([...new Set(series.filter((row) => !row.other).map((row) => row.key))].sort()).toEqual([
          "actor2",
          "actor3",
        ]);
        const plain = await store.usageSeries({ ...range, bucket });
        const sum = (list: typeof series) => list.reduce((total, row) => total + row.outputTokens, 0);
        expect(sum(series)).toBe(sum(plain));
        const others = series.filter((row) => row.other);
        expect(sum(others)).toBe(
          rows
            .filter((row) => ["actor0", "actor1"].includes(row.actorId ?? ""))
            .reduce((t, r) => t + (r.outputTokens ?? 0), 0),
        );
        expect(others.every((row) => row.key === null)).toBe(true);
      }
    },
  );

  it.skipIf(backend.skip)(
    "pages the audit log newest first without skipping entries of one millisecond",
    async () => {
      const store = await backend.open();
      await store.insertAuditEntry(auditEntry("aud_a", T0));
      await store.insertAuditEntry(auditEntry("aud_b", T0 + 1));
      await store.insertAuditEntry(auditEntry("aud_c", T0 + 1, "extract"));
      const first = await store.listAuditEntries({ limit: 2 });
      expect(first.map((entry) => entry.id)).toEqual(["aud_c", "aud_b"]);
      const last = first.at(-1);
      const next = await store.listAuditEntries({
        limit: 2,
        ...(last ? { before: { createdAt: last.createdAt, id: last.id } } : {}),
      });
      expect(next.map((entry) => entry.id)).toEqual(["aud_a"]);
      expect((await store.listAuditEntries({ target: "extract" })).map((entry) => entry.id)).toEqual([
        "aud_c",
      ]);
      expect(first[0]).toMatchObject({ actor: "root", before: undefined, after: '{"model":"echo"}' });
    },
  );

  it.skipIf(backend.skip)("lets a login link open one session even when used twice at once", async () => {
    const store = await backend.open();
    const at = new Date(T0);
    await store.insertLoginLink({
      hash: "h1",
      actor: "alice",
      createdAt: at,
      expiresAt: new Date(T0 + HOUR),
    });
    const results = await Promise.all([store.consumeLoginLink("h1", at), store.consumeLoginLink("h1", at)]);
    expect(results.filter((actor) => actor === "alice")).toHaveLength(1);
    expect(await store.consumeLoginLink("h1", at)).toBeUndefined();
  });

  it.skipIf(backend.skip)("keeps the first signing key any instance stored", async () => {
    const store = await backend.open();
    const first = await store.adminSigningKey("first");
    expect(await (await backend.open()).adminSigningKey("second")).toBe(first);
  });
});
