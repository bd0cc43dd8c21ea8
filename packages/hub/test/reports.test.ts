/**
 * `hub.reports`, the read models the CLI and the admin UI show: limits per limit and actor, usage
 * summaries with totals, the log with chains grouped and paged, allowances. On SQLite and PostgreSQL.
 */
import { KeyStore } from "@switchboard/core";
import { type StoreBackend, storeBackends } from "@switchboard/store/testing";
import { afterEach, describe, expect, it } from "vitest";
import { Hub, type HubConfigInput, type LogEntry, reportJson } from "../src/index.ts";
import { sleep, temporaryDirectory } from "./helpers.ts";

/** Each echo reply `a b c d` is 4 output tokens; at $250 per million that is exactly $0.001. */
const PROMPT = JSON.stringify({ raw: "a b c d" });
const COST = 100_000_000n;
const config: HubConfigInput = {
  default_model: "echo",
  purposes: { sql: { model: "echo" }, notes: { model: "echo" } },
  accounting: { pricing: { echo: { input: 0, output: 250 } }, reservations: { models: { echo: 0.001 } } },
  limits: {
    daily: { scope: "instance", window: "calendar-day", amount_usd: 1 },
    each: { scope: "actor", window: "rolling-24h", amount_usd: 0.5, purpose: "sql" },
  },
  allowance: { enabled: true },
};

describe.each(storeBackends())("hub.reports on $name", (backend: StoreBackend) => {
  const hubs: Hub[] = [];
  const open = async () => {
    const hub = await Hub.create({
      config,
      store: await backend.open(),
      env: {},
      keys: new KeyStore(`${temporaryDirectory()}/keys.json`),
    });
    hubs.push(hub);
    return hub;
  };
  afterEach(async () => {
    await Promise.all(hubs.splice(0).map((hub) => hub.close()));
    await backend.cleanup();
  });

  it.skipIf(backend.skip)("reports each limit per actor: used, held, left, window and reset", async () => {
    const hub = await open();
    await hub.reports.topUpAllowance("ada", 10n * COST);
    await hub.reports.topUpAllowance("bob", 10n * COST);
    for (const [actor, count] of [
      ["ada", 2],
      ["bob", 1],
    ] as const) {
      const model = await hub.model({ purpose: "sql", actor: { id: actor } });
      for (let i = 0; i < count; i++) await model.prompt(PROMPT).text();
    }
    await (await hub.model({ purpose: "notes", actor: { id: "ada" } })).prompt(PROMPT).text();
    const report = await hub.reports.limits();
    expect(report.map((row) => [row.limit, row.actorId, row.used, row.held, row.left])).toEqual([
      ["daily", undefined, 4n * COST, 0n, 100_000_000_000n - 4n * COST],
      ["each", "ada", 2n * COST, 0n, 50_000_000_000n - 2n * COST],
      ["each", "bob", COST, 0n, 50_000_000_000n - COST],
    ]);
    const [daily, each] = report;
    expect(daily).toMatchObject({ scope: "instance", window: "calendar-day", cap: 100_000_000_000n });
    expect(daily?.resetsAt?.getTime()).toBe((daily?.windowStart.getTime() ?? 0) + 86_400_000);
    expect(daily?.reset).toBe(`resets at ${daily?.resetsAt?.toISOString()}`);
    expect(each).toMatchObject({ scope: "actor", purpose: "sql", resetsAt: undefined });
    expect(each?.reset).toContain("as it ages");
    // One actor's standing, also in a limit they have not used.
    expect(
      (await hub.reports.limits({ actorId: "cy" })).map((row) => [row.limit, row.actorId, row.used]),
    ).toEqual([
      ["daily", undefined, 4n * COST],
      ["each", "cy", 0n],
    ]);
    expect(await hub.reports.allowance("ada")).toMatchObject({ balance: 7n * COST, held: 0n });
    expect((await hub.reports.allowances()).map((a) => [a.actorId, a.balance])).toEqual([
      ["ada", 7n * COST],
      ["bob", 9n * COST],
    ]);
    expect((await hub.reports.allowanceHistory({ actorId: "bob" })).map((e) => e.kind)).toEqual([
      "charge",
      "top_up",
    ]);
  });

  it.skipIf(backend.skip)("shows an actor-scoped limit nobody has used yet as one row", async () => {
    const hub = await open();
    const report = await hub.reports.limits();
    expect(report.map((row) => [row.limit, row.actorId, row.used, row.left])).toEqual([
      ["daily", undefined, 0n, 100_000_000_000n],
      ["each", undefined, 0n, 50_000_000_000n],
    ]);
  });

  it.skipIf(backend.skip)(
    "summarizes usage with the grouping field named after the grouping, and totals",
    async () => {
      const hub = await open();
      await hub.reports.topUpAllowance("ada", 10n * COST);
      const sql = await hub.model({ purpose: "sql", actor: { id: "ada" } });
      await sql.prompt(PROMPT).text();
      await sql.prompt(PROMPT).text();
      await (await hub.model({ purpose: "notes" })).prompt(PROMPT).text();
      await hub.flush();
      const byPurpose = await hub.reports.usage({ by: "purpose" });
      expect(byPurpose.groups).toEqual([
        {
          purpose: "sql",
          responses: 2,
          failed: 0,
          inputTokens: 8,
          outputTokens: 8,
          cachedTokens: undefined,
          costNanocents: 2n * COST,
        },
        {
          purpose: "notes",
          responses: 1,
          failed: 0,
          inputTokens: 4,
          outputTokens: 4,
          cachedTokens: undefined,
          costNanocents: COST,
        },
      ]);
      expect(byPurpose.totals).toEqual({
        responses: 3,
        failed: 0,
        inputTokens: 12,
        outputTokens: 12,
        cachedTokens: undefined,
        costNanocents: 3n * COST,
      });
      const byActor = await hub.reports.usage({ by: "actor", purpose: "sql" });
      expect(byActor.groups.map((group) => [group.actor, group.responses])).toEqual([["ada", 2]]);
      const byDay = await hub.reports.usage({ by: "day", since: new Date(Date.now() - 3_600_000) });
      expect(byDay.groups.map((group) => group.day)).toEqual([
        `${new Date(Date.now() - (Date.now() % 86_400_000)).toISOString()}`,
      ]);
      expect(reportJson(byPurpose.totals)).toEqual({
        responses: 3,
        failed: 0,
        inputTokens: 12,
        outputTokens: 12,
        costNanocents: "300000000",
      });
    },
  );

  it.skipIf(backend.skip)("pages the log newest first, each chain one entry with all its steps", async () => {
    const hub = await open();
    const model = await hub.model();
    await model.prompt(JSON.stringify({ raw: "first" })).text();
    // Log order is by start time in ms: keep the prompts apart so the expected order is certain.
    await sleep(5);
    let step = 0;
    await model
      .chain(JSON.stringify({ tool_calls: [{ name: "next" }] }), {
        tools: [
          {
            name: "next",
            execute: () => (++step < 2 ? JSON.stringify({ tool_calls: [{ name: "next" }] }) : "done"),
          },
        ],
      })
      .text();
    for (const word of ["second", "third"]) {
      await sleep(5);
      await model.prompt(JSON.stringify({ raw: word })).text();
    }
    await hub.flush();
    const describe = (entry: LogEntry) =>
      entry.kind === "chain"
        ? `chain of ${entry.steps.length}`
        : (entry.response.response ?? entry.response.id);
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 5; page++) {
      const { entries, nextCursor } = await hub.reports.log({ limit: 2, cursor });
      seen.push(
        ...entries.map((entry) =>
          entry.kind === "chain" ? describe(entry) : String(entry.response.outputTokens),
        ),
      );
      cursor = nextCursor;
      if (cursor === undefined) break;
    }
    // third, second (1 output token each), the chain (3 steps), first.
    expect(seen).toEqual(["1", "1", "chain of 3", "1"]);
    const [chain] = (await hub.reports.log({ limit: 3 })).entries.filter((entry) => entry.kind === "chain");
    expect(chain?.kind === "chain" && chain.steps.map((s) => s.createdAt.getTime())).toEqual(
      chain?.kind === "chain" && [...chain.steps].map((s) => s.createdAt.getTime()).sort((a, b) => a - b),
    );
    expect(chain?.kind === "chain" && chain.totals.responses).toBe(3);
    await expect(hub.reports.log({ cursor: "not-a-cursor" })).rejects.toMatchObject({
      code: "INVALID_INPUT",
    });
    await expect(hub.reports.log({ limit: 0 })).rejects.toMatchObject({ code: "INVALID_INPUT" });
  });
});
