/**
 * Usage log and budgets, run against both storage backends (SQLite and PostgreSQL).
 */

import { isSwitchboardError, KeyStore } from "@switchboard/core";
import { type FakeServer, startFakeOpenAI } from "@switchboard/core/testing";
import type { Store } from "@switchboard/store";
import { postgresBackend, type StoreBackend, storeBackends } from "@switchboard/store/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Hub, type HubConfigInput, type HubOptions } from "../src/index.ts";
import { temporaryDirectory } from "./helpers.ts";

/** Each echo reply `a b c d` is 4 output tokens; at $250 per million that is exactly $0.001. */
const PROMPT = JSON.stringify({ raw: "a b c d" });
const COST_PER_PROMPT = 100_000_000n; // $0.001 in nanocents
const pricedEcho: HubConfigInput["accounting"] = {
  pricing: { echo: { input: 0, output: 250 } },
  reservations: { models: { echo: 0.001 } },
};

async function hubOn(store: Store, config: HubConfigInput, options: Partial<HubOptions> = {}): Promise<Hub> {
  return Hub.create({
    config,
    store,
    env: {},
    keys: new KeyStore(`${temporaryDirectory()}/keys.json`),
    ...options,
  });
}

async function outcome(promise: Promise<unknown>): Promise<"ok" | unknown> {
  return promise.then(
    () => "ok",
    (error: unknown) => error,
  );
}

describe.each(storeBackends())("usage and budgets on $name", (backend: StoreBackend) => {
  const hubs: Hub[] = [];
  const open = async (config: HubConfigInput, options: Partial<HubOptions> = {}, store?: Store) => {
    const hub = await hubOn(store ?? (await backend.open()), config, options);
    hubs.push(hub);
    return hub;
  };
  let fake: FakeServer;

  beforeAll(async () => {
    if (backend.skip) return;
    fake = await startFakeOpenAI();
  });
  afterEach(async () => {
    await Promise.all(hubs.splice(0).map((hub) => hub.close()));
    await backend.cleanup();
  });
  afterAll(async () => {
    await fake?.close();
  });

  it.skipIf(backend.skip)(
    "logs one row per chain response under one chain id and charges the chain once",
    async () => {
      const hub = await open({
        default_model: "echo",
        usage: { log_prompts: true },
        accounting: { pricing: { echo: { input: 1000, output: 1000 } }, auto_reservation_usd: 1 },
        limits: { cap: { scope: "instance", window: "rolling-24h", amount_usd: 100 } },
      });
      let step = 0;
      const chain = (await hub.model()).chain(JSON.stringify({ tool_calls: [{ name: "next" }] }), {
        tools: [
          {
            name: "next",
            execute: () => (++step < 2 ? JSON.stringify({ tool_calls: [{ name: "next" }] }) : "done"),
          },
        ],
      });
      await chain.text();
      await hub.close();
      const reader = await backend.open();
      const rows = await reader.listUsage({ limit: 10 });
      expect(rows).toHaveLength(3);
      expect(new Set(rows.map((row) => row.chainId)).size).toBe(1);
      expect(rows[0]?.chainId).toMatch(/^chain_/);
      const sum = rows.reduce((total, row) => total + (row.costNanocents ?? 0n), 0n);
      expect(sum).toBeGreaterThan(0n);
      const holds = await reader.listHolds({ key: "limit:cap" });
      expect(holds).toHaveLength(1);
      expect(holds[0]).toMatchObject({ status: "settled", settled: sum });
      // log_prompts: prompt, response and tool traffic are kept.
      const first = rows.find((row) => row.prompt?.startsWith("{"));
      expect(first?.toolCalls).toContain('"name":"next"');
      expect(JSON.parse(first?.response ?? "{}")).toMatchObject({ prompt: "", stream: true });
      expect(rows.some((row) => row.toolResults?.includes("done"))).toBe(true);
    },
  );

  it.skipIf(backend.skip)(
    "lets exactly 100 of 500 concurrent prompts through an instance limit",
    async () => {
      const config: HubConfigInput = {
        default_model: "echo",
        accounting: pricedEcho,
        limits: { hundred: { scope: "instance", window: "rolling-24h", amount_usd: 0.1 } },
      };
      const hub = await open(config);
      const model = await hub.model();
      const results = await Promise.all(
        Array.from({ length: 500 }, () => outcome(model.prompt(PROMPT).text())),
      );
      const refused = results.filter((result) => result !== "ok");
      expect(results.filter((result) => result === "ok")).toHaveLength(100);
      expect(refused).toHaveLength(400);
      for (const error of refused) expect(isSwitchboardError(error, "LIMIT_EXCEEDED")).toBe(true);
      expect((refused[0] as Error).message).toMatch(
        /Limit "hundred" reached for this instance: \$0\.10 of \$0\.10 used/,
      );
      await hub.close();
      const store = await backend.open();
      expect(await store.spentInWindow("limit:hundred", new Date(Date.now() - 3_600_000))).toBe(
        100n * COST_PER_PROMPT,
      );
      expect(await store.listUsage({ limit: 1000 })).toHaveLength(100);
    },
  );

  it.skipIf(backend.skip)("sends no request for a prompt an accountant refuses", async () => {
    fake.reset();
    const hub = await open({
      default_model: "fake-model",
      providers: { fake: { type: "openai", base_url: fake.url, models: ["fake-model"] } },
      accounting: { pricing: { "fake-model": { input: 1, output: 1 } }, auto_reservation_usd: 1 },
      limits: { tiny: { scope: "actor", window: "calendar-day", amount_usd: 0.5 } },
    });
    const error = await outcome((await hub.model({ actor: { id: "ada" } })).prompt("hi").text());
    expect(isSwitchboardError(error, "LIMIT_EXCEEDED")).toBe(true);
    expect((error as Error).message).toMatch(/for ada.*resets at \d{4}-\d\d-\d\dT00:00:00\.000Z/);
    expect(fake.requestCount).toBe(0);
  });

  it.skipIf(backend.skip)("rolls the reservation back when the provider fails", async () => {
    fake.reset();
    fake.enqueue({ status: 400, message: "bad request" });
    const hub = await open({
      default_model: "fake-model",
      providers: { fake: { type: "openai", base_url: fake.url, max_retries: 0, models: ["fake-model"] } },
      accounting: { pricing: { "fake-model": { input: 1, output: 1 } }, auto_reservation_usd: 0.2 },
      limits: { daily: { scope: "actor", window: "rolling-24h", amount_usd: 1 } },
      allowance: { enabled: true },
    });
    const store = await hub.store();
    await store.topUpAllowance("ada", 1_000_000_000_000n);
    const error = await outcome((await hub.model({ actor: { id: "ada" } })).prompt("hi").text());
    expect(isSwitchboardError(error, "PROVIDER_ERROR")).toBe(true);
    expect(await store.spentInWindow("limit:daily:actor:ada", new Date(0))).toBe(0n);
    expect((await store.getAllowance("ada"))?.balance).toBe(1_000_000_000_000n);
    expect((await store.listHolds({ key: "limit:daily:actor:ada" }))[0]?.status).toBe("rolled_back");
  });

  it.skipIf(backend.skip)("rolls back the first accountant when the second refuses", async () => {
    const hub = await open({
      default_model: "echo",
      accounting: pricedEcho,
      limits: { roomy: { scope: "instance", window: "rolling-24h", amount_usd: 10 } },
      allowance: { enabled: true },
    });
    const error = await outcome((await hub.model({ actor: { id: "broke" } })).prompt(PROMPT).text());
    expect(isSwitchboardError(error, "INSUFFICIENT_BALANCE")).toBe(true);
    expect((error as Error).message).toContain("switchboard allowance topup broke USD");
    const store = await hub.store();
    expect(await store.spentInWindow("limit:roomy", new Date(0))).toBe(0n);
    expect(await store.listUsage()).toHaveLength(0);
  });

  it.skipIf(backend.skip)("spends an allowance until it is empty", async () => {
    const hub = await open({ default_model: "echo", accounting: pricedEcho, allowance: { enabled: true } });
    const store = await hub.store();
    await store.topUpAllowance("ada", 3n * COST_PER_PROMPT);
    const model = await hub.model({ actor: { id: "ada" } });
    const results = await Promise.all(Array.from({ length: 5 }, () => outcome(model.prompt(PROMPT).text())));
    expect(results.filter((result) => result === "ok")).toHaveLength(3);
    expect((await store.getAllowance("ada"))?.balance).toBe(0n);
  });

  it.skipIf(backend.skip)("reserves once per group and settles once with the group's total", async () => {
    const hub = await open({
      default_model: "echo",
      accounting: { ...pricedEcho, group_reservation_usd: 0.05 },
      limits: { cap: { scope: "instance", window: "rolling-24h", amount_usd: 1 } },
    });
    await hub.group({}, async (model) => {
      await Promise.all([
        model.prompt(PROMPT).text(),
        model.prompt(PROMPT).text(),
        model.prompt(PROMPT).text(),
      ]);
    });
    const store = await hub.store();
    const holds = await store.listHolds({ key: "limit:cap" });
    expect(holds).toHaveLength(1);
    expect(holds[0]).toMatchObject({
      reserved: 5_000_000_000n,
      settled: 3n * COST_PER_PROMPT,
      status: "settled",
    });
  });

  it.skipIf(backend.skip)(
    "writes exactly one row per prompt under concurrency, tokens NULL when unknown",
    async () => {
      fake.reset();
      const hub = await open({
        default_model: "echo",
        providers: { fake: { type: "openai", base_url: fake.url, models: ["fake-model"] } },
      });
      const model = await hub.model();
      await Promise.all(Array.from({ length: 200 }, (_, index) => model.prompt(`prompt ${index}`).text()));
      fake.enqueue({ text: "no usage here", usage: null });
      await (await hub.model({ model: "fake-model" })).prompt("hi").text();
      await hub.close();
      const rows = await (await backend.open()).listUsage({ limit: 1000 });
      expect(rows).toHaveLength(201);
      expect(new Set(rows.map((row) => row.id)).size).toBe(201);
      const fakeRow = rows.find((row) => row.modelAnswered === "fake-model");
      expect(fakeRow).toMatchObject({
        inputTokens: undefined,
        outputTokens: undefined,
        costNanocents: undefined,
        status: "ok",
      });
      const echoRow = rows.find((row) => row.modelAnswered === "echo");
      expect(echoRow?.inputTokens).toBe(2);
      expect(echoRow?.costNanocents).toBe(0n);
      expect(echoRow?.prompt).toBeUndefined(); // log_prompts is off
    },
  );

  it.skipIf(backend.skip)(
    "settles once text() resolves as this hub sees it, and for every connection after hub.flush()",
    async () => {
      const hub = await open({
        default_model: "echo",
        // No usage log: hub.flush() then has only the settlements to write, and no time passes.
        usage: { enabled: false },
        accounting: { ...pricedEcho, reservations: { models: { echo: 0.01 } } },
        limits: { daily: { scope: "instance", window: "calendar-day", amount_usd: 1 } },
      });
      const other = await backend.open({ usageWriterThread: false });
      const today = new Date(
        Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate()),
      );
      await (await hub.model()).prompt(PROMPT).text();
      // SQLite queues a settlement below its reservation a moment: another connection still counts
      // $0.01, and the budget lease taken for the next prompts: an eighth of what was left above
      // the cap's last tenth, ($1 − $0.01 − $0.10) / 8.
      const seenElsewhere = await other.spentInWindow("limit:daily", today);
      expect(seenElsewhere).toBe(
        backend.name === "sqlite" ? 1_000_000_000n + 11_125_000_000n : COST_PER_PROMPT,
      );
      await hub.flush();
      expect(await other.spentInWindow("limit:daily", today)).toBe(COST_PER_PROMPT);
      // The hub's own reports read through its store, which commits what it queued first.
      await (await hub.model()).prompt(PROMPT).text();
      expect((await hub.reports.limits())[0]).toMatchObject({ used: 2n * COST_PER_PROMPT, held: 0n });
    },
  );

  it.skipIf(backend.skip)("prunes usage rows older than the retention setting", async () => {
    const store = await backend.open();
    const old = { modelRequested: "echo", modelAnswered: "echo", status: "ok" as const };
    await store.insertUsage([
      { ...old, id: "resp_old", createdAt: Date.now() - 3 * 86_400_000 },
      { ...old, id: "resp_recent", createdAt: Date.now() - 3_600_000 },
    ]);
    const hub = await open({ default_model: "echo", usage: { retention_days: 2 } }, {}, store);
    await (await hub.model()).prompt("hi").text();
    await hub.flush();
    const ids = (await store.listUsage({ limit: 10 })).map((row) => row.id);
    expect(ids).toContain("resp_recent");
    expect(ids).not.toContain("resp_old");
    expect(ids).toHaveLength(2);
  });

  it.skipIf(backend.skip)("estimates the reservation from the prompt and max_tokens", async () => {
    fake.reset();
    const hub = await open({
      default_model: "fake-model",
      providers: { fake: { type: "openai", base_url: fake.url, models: ["fake-model"] } },
      accounting: { pricing: { "fake-model": { input: 3, output: 15 } } },
      limits: { cap: { scope: "instance", window: "rolling-24h", amount_usd: 10 } },
    });
    const prompt = "x".repeat(300); // about 100 tokens by the estimate (3 characters a token, plus 16)
    await (await hub.model()).prompt(prompt, { options: { max_tokens: 1000 } }).text();
    const [hold] = await (await hub.store()).listHolds({ key: "limit:cap" });
    // (100 + 16) input tokens at $3/M + 1000 output tokens at $15/M = $0.000348 + $0.015
    expect(hold?.reserved).toBe(1_534_800_000n);
    expect(hold?.status).toBe("settled");
    expect(fake.requests[0]?.body.max_tokens).toBe(1000);
  });

  it.skipIf(backend.skip)("refuses an unpriced model while budgets apply, unless declared free", async () => {
    fake.reset();
    const config: HubConfigInput = {
      default_model: "fake-model",
      providers: { fake: { type: "openai", base_url: fake.url, models: ["fake-model"] } },
      limits: { cap: { scope: "instance", window: "rolling-24h", amount_usd: 1 } },
    };
    const strict = await open(config);
    const error = await outcome((await strict.model()).prompt("hi").text());
    expect(isSwitchboardError(error, "PRICING_MISSING")).toBe(true);
    expect((error as Error).message).toContain("accounting.pricing.fake-model");
    expect(fake.requestCount).toBe(0);
    const lenient = await open({ ...config, accounting: { unpriced: "free" } });
    expect(await (await lenient.model()).prompt("hi").text()).toContain("hi");
  });
});

describe("budgets across processes sharing PostgreSQL", () => {
  const backend = postgresBackend();
  const hubs: Hub[] = [];
  const open = async (config: HubConfigInput) => {
    const hub = await hubOn(await backend.open(), config);
    hubs.push(hub);
    return hub;
  };
  afterAll(async () => {
    await Promise.all(hubs.splice(0).map((hub) => hub.close()));
    await backend.cleanup();
  });

  it.skipIf(backend.skip)(
    "keeps the limit exact across two hubs sharing one PostgreSQL database",
    async () => {
      const config: HubConfigInput = {
        default_model: "echo",
        accounting: pricedEcho,
        limits: { hundred: { scope: "instance", window: "rolling-24h", amount_usd: 0.1 } },
      };
      const [first, second] = [await open(config), await open(config)];
      const [modelA, modelB] = [await first!.model(), await second!.model()];
      const results = await Promise.all(
        Array.from({ length: 500 }, (_, index) =>
          outcome((index % 2 ? modelA : modelB).prompt(PROMPT).text()),
        ),
      );
      expect(results.filter((result) => result === "ok")).toHaveLength(100);
      await Promise.all([first!.close(), second!.close()]);
      const store = await backend.open();
      expect(await store.spentInWindow("limit:hundred", new Date(Date.now() - 3_600_000))).toBe(
        100n * COST_PER_PROMPT,
      );
      expect(await store.listUsage({ limit: 1000 })).toHaveLength(100);
    },
  );
});
