/**
 * What a usage row holds: every text field passes the one secret scrubber before it is queued,
 * and a response the caller aborted is logged with status `aborted` (not `error`).
 */
import { rememberSecret } from "@switchboard/core";
import { type FakeServer, startFakeOpenAI } from "@switchboard/core/testing";
import { openStore, type Store } from "@switchboard/store";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testHub } from "./helpers.ts";

const SECRET = "sk-planted-0123456789abcdef";

describe("usage rows", () => {
  let fake: FakeServer;
  beforeAll(async () => {
    fake = await startFakeOpenAI();
    rememberSecret(SECRET);
  });
  afterAll(() => fake.close());

  async function loggedRows(run: (store: Store) => Promise<void>) {
    const store = await openStore("sqlite::memory:");
    await run(store);
    const rows = await store.listUsage();
    await store.close();
    return rows;
  }

  it("never hold a known secret: prompt, system, response, tool calls, tool results and error are scrubbed", async () => {
    const rows = await loggedRows(async (store) => {
      const hub = await testHub({ default_model: "echo", usage: { log_prompts: true } }, { store });
      const model = await hub.model();
      await model
        .chain(
          JSON.stringify({
            prompt: `use ${SECRET}`,
            tool_calls: [{ name: "lookup", arguments: { key: SECRET } }],
          }),
          {
            system: `the key is ${SECRET}`,
            tools: [{ name: "lookup", execute: () => `found ${SECRET}` }],
          },
        )
        .text();
      fake.reset();
      fake.enqueue({ text: `echoing ${SECRET}`, usage: { input: 1, output: 1 } });
      const upstream = await testHub(
        {
          default_model: "fake-model",
          usage: { log_prompts: true },
          providers: { fake: { type: "openai", base_url: fake.url, max_retries: 0, models: ["fake-model"] } },
        },
        { store },
      );
      await (await upstream.model()).prompt("hi", { key: SECRET }).text();
      fake.enqueue({ status: 400, message: `invalid key ${SECRET}` });
      await (await upstream.model())
        .prompt("again", { key: SECRET })
        .text()
        .catch(() => undefined);
      await hub.close();
      await upstream.close();
    });
    expect(rows.length).toBeGreaterThanOrEqual(4);
    expect(
      JSON.stringify(rows, (_key, value) => (typeof value === "bigint" ? String(value) : value)),
    ).not.toContain(SECRET);
    const texts = rows.flatMap((row) => [
      row.prompt,
      row.system,
      row.response,
      row.toolCalls,
      row.toolResults,
      row.error,
    ]);
    expect(texts.filter((text) => text?.includes("[redacted]")).length).toBeGreaterThanOrEqual(5);
    expect(rows.find((row) => row.status === "error")?.error).toBeDefined();
  });

  it("are aborted, not error, when the caller aborts", async () => {
    const rows = await loggedRows(async (store) => {
      fake.reset();
      fake.enqueue({ text: "slow answer", delayMs: 5_000 });
      const hub = await testHub(
        {
          default_model: "fake-model",
          providers: { fake: { type: "openai", base_url: fake.url, max_retries: 0, models: ["fake-model"] } },
        },
        { store },
      );
      const controller = new AbortController();
      const answer = (await hub.model()).prompt("hi", { signal: controller.signal }).text();
      setTimeout(() => controller.abort(), 50);
      await expect(answer).rejects.toMatchObject({ code: "ABORTED" });
      await hub.close();
    });
    expect(rows.map((row) => row.status)).toEqual(["aborted"]);
  });
});
