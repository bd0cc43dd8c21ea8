/**
 * What was delivered is paid for: a response that streamed output and then failed or was aborted
 * is charged, each chain step pays for its own tokens, and only a failure before any output is
 * released. Run on SQLite and PostgreSQL.
 */

import { type AsyncModelDefinition, isSwitchboardError, KeyStore, SwitchboardError } from "@switchboard/core";
import { type FakeServer, startFakeOpenAI } from "@switchboard/core/testing";
import type { Store } from "@switchboard/store";
import { type StoreBackend, storeBackends } from "@switchboard/store/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Hub, type HubConfigInput, type SwitchboardPlugin } from "../src/index.ts";
import { temporaryDirectory } from "./helpers.ts";

/** $1000 per million tokens each way: one token costs exactly 100,000,000 nanocents. */
const NANOCENTS_PER_TOKEN = 100_000_000n;
/** The reservation estimate of the prompt "hi": ceil(2 / 3) + 16 tokens. */
const HI_INPUT_TOKENS = 17n;

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.unreachable("expected a failure"),
    (error: unknown) => error,
  );
}

/** Output tokens the hub counts for text it streamed: about 3 characters a token. */
const countedTokens = (text: string) => BigInt(Math.ceil(text.length / 3));

describe.each(storeBackends())("what was delivered is paid for, on $name", (backend: StoreBackend) => {
  let openai: FakeServer;
  const hubs: Hub[] = [];
  const open = async (
    config: HubConfigInput,
    plugins: SwitchboardPlugin[] = [],
  ): Promise<{ hub: Hub; store: Store }> => {
    const store = await backend.open();
    const hub = await Hub.create({
      config,
      store,
      env: {},
      keys: new KeyStore(`${temporaryDirectory()}/keys.json`),
      plugins,
    });
    hubs.push(hub);
    return { hub, store };
  };
  /** A limit sized for exactly one $0.10 prompt. */
  const oneDollarTenth = (): HubConfigInput => ({
    default_model: "fake-model",
    providers: { fake: { type: "openai", base_url: openai.url, max_retries: 0, models: ["fake-model"] } },
    accounting: {
      pricing: { "fake-model": { input: 1000, output: 1000 }, "cut-model": { input: 1000, output: 1000 } },
      auto_reservation_usd: 0.1,
    },
    limits: { one: { scope: "instance", window: "calendar-day", amount_usd: 0.1 } },
  });

  beforeAll(async () => {
    if (backend.skip) return;
    openai = await startFakeOpenAI();
  });
  afterEach(async () => {
    await Promise.all(hubs.splice(0).map((hub) => hub.close()));
    await backend.cleanup();
  });
  afterAll(async () => {
    await openai?.close();
  });

  it.skipIf(backend.skip)(
    "charges a stream cut after output for its prompt and streamed text, so the limit holds",
    async () => {
      openai.reset();
      const cut = { text: ["PARTIAL-ONE ", "PARTIAL-TWO ", "PARTIAL-THREE"], usage: null, cutAfter: 3 };
      openai.enqueue(cut, cut, cut, cut);
      const { hub, store } = await open(oneDollarTenth());
      const model = await hub.model();
      const first = model.prompt("hi");
      expect(isSwitchboardError(await failure(first.text()))).toBe(true);
      expect(first.textSoFar).toBe("PARTIAL-ONE PARTIAL-TWO ");
      const charged = (HI_INPUT_TOKENS + countedTokens("PARTIAL-ONE PARTIAL-TWO ")) * NANOCENTS_PER_TOKEN;
      expect(charged).toBe(2_500_000_000n); // $0.025
      expect(await store.listHolds({ key: "limit:one" })).toMatchObject([
        { status: "settled", settled: charged },
      ]);
      // The usage row shows the same charge as the hold, not a free failure.
      await hub.flush();
      expect(await store.listUsage()).toMatchObject([{ status: "error", costNanocents: charged }]);
      // The $0.025 delivered leaves less than the next prompt's $0.10 reservation.
      for (let attempt = 0; attempt < 3; attempt++) {
        const refused = await failure(model.prompt("hi").text());
        expect(isSwitchboardError(refused, "LIMIT_EXCEEDED")).toBe(true);
        expect((refused as Error).message).toContain("$0.025 of $0.10 used");
      }
      expect(openai.requestCount).toBe(1);
    },
  );

  it.skipIf(backend.skip)("charges a prompt the caller aborted after output", async () => {
    openai.reset();
    openai.enqueue({ text: ["PARTIAL-ONE ", "PARTIAL-TWO ", "LATE"], usage: null, chunkDelayMs: 300 });
    const { hub, store } = await open(oneDollarTenth());
    const abort = new AbortController();
    const response = (await hub.model()).prompt("hi", { signal: abort.signal });
    const iterator = response[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toBe("PARTIAL-ONE ");
    abort.abort();
    const error = await failure(response.text());
    expect(isSwitchboardError(error, "ABORTED")).toBe(true);
    expect(response.textSoFar.startsWith("PARTIAL-ONE ")).toBe(true);
    const [hold] = await store.listHolds({ key: "limit:one" });
    expect(hold).toMatchObject({
      status: "settled",
      settled: (HI_INPUT_TOKENS + countedTokens(response.textSoFar)) * NANOCENTS_PER_TOKEN,
    });
  });

  it.skipIf(backend.skip)(
    "charges reported input plus counted output when the stream fails before its output count",
    async () => {
      // Like Anthropic's wire: input tokens come first, output tokens only at the end.
      const cutModel: AsyncModelDefinition = {
        id: "cut-model",
        async *execute() {
          yield { type: "usage", usage: { input: 40 } };
          yield { type: "text", text: "PARTIAL-ONE PARTIAL-TWO " };
          throw new SwitchboardError("PROVIDER_ERROR", "The connection was cut.");
        },
      };
      const { hub, store } = await open({ ...oneDollarTenth(), default_model: "cut-model" }, [
        { name: "cut", registerModels: ({ register }) => register(cutModel) },
      ]);
      await failure((await hub.model()).prompt("hi").text());
      expect(await store.listHolds({ key: "limit:one" })).toMatchObject([
        {
          status: "settled",
          settled: (40n + countedTokens("PARTIAL-ONE PARTIAL-TWO ")) * NANOCENTS_PER_TOKEN,
        },
      ]);
    },
  );

  it.skipIf(backend.skip)("releases the hold of a stream cut before any output", async () => {
    openai.reset();
    openai.enqueue({ text: ["never sent"], usage: null, cutAfter: 1 });
    const { hub, store } = await open(oneDollarTenth());
    const response = (await hub.model()).prompt("hi");
    await failure(response.text());
    expect(response.textSoFar).toBe("");
    expect(await store.listHolds({ key: "limit:one" })).toMatchObject([{ status: "rolled_back" }]);
    expect(await store.spentInWindow("limit:one", new Date(0))).toBe(0n);
  });

  it.skipIf(backend.skip)(
    "charges each chain step without usage its own tokens, not the whole reservation",
    async () => {
      openai.reset();
      openai.enqueue(
        { toolCalls: [{ name: "step", arguments: {} }], usage: null },
        { toolCalls: [{ name: "step", arguments: {} }], usage: null },
        { text: "done", usage: null },
      );
      const { hub, store } = await open({
        ...oneDollarTenth(),
        accounting: { pricing: { "fake-model": { input: 1000, output: 1000 } }, auto_reservation_usd: 1 },
        limits: { roomy: { scope: "instance", window: "calendar-day", amount_usd: 100 } },
      });
      const chain = (await hub.model()).chain("hi", { tools: [{ name: "step", execute: () => "ok" }] });
      expect(await chain.text()).toBe("done");
      // Step 1: "hi" (17) in, `step{}` (2) out. Steps 2 and 3: the tool result "ok" (17) in;
      // `step{}` (2) and "done" (2) out. 57 tokens, where the whole reservation ($1) is 1,000.
      expect(await store.listHolds({ key: "limit:roomy" })).toMatchObject([
        { status: "settled", reserved: 1_000n * NANOCENTS_PER_TOKEN, settled: 57n * NANOCENTS_PER_TOKEN },
      ]);
    },
  );
});
