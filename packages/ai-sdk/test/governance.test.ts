/**
 * Governance inside the AI SDK: budgets, allowlists, fallbacks, the usage log, actors and groups
 * hold for every step of a `generateText`/`streamText` call, and Switchboard's refusals reach the
 * SDK as errors it does not retry.
 */
import type { LanguageModelV4 } from "@ai-sdk/provider";
import { type FakeServer, startFakeOpenAI } from "@switchboard/core/testing";
import type { Accountant, HubConfigInput, SwitchboardPlugin } from "@switchboard/hub";
import { generateText, jsonSchema, RetryError, stepCountIs, streamText, tool } from "ai";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { createSwitchboard, SwitchboardAPIError } from "../src/index.ts";
import { testHub } from "./helpers.ts";

let fake: FakeServer;
beforeAll(async () => {
  fake = await startFakeOpenAI();
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => {
  fake.reset();
});

/** Each call costs exactly $0.01 at this price; each reserves $0.01. */
const ONE_CENT_CALL = { input: 1000, output: 1000 };
const governed = (extra: HubConfigInput = {}): HubConfigInput => ({
  providers: {
    fake: { type: "openai", base_url: fake.url, max_retries: 0, models: ["gpt-fake", "gpt-backup"] },
  },
  accounting: {
    pricing: { "gpt-fake": { input: 5, output: 5 }, "gpt-backup": { input: 5, output: 5 } },
    reservations: { models: { "gpt-fake": 0.01 } },
  },
  purposes: {
    agent: { model: "gpt-fake" },
    resilient: { model: "gpt-fake", fallbacks: ["gpt-backup"] },
    locked: { model: "gpt-fake", models: ["gpt-fake"] },
  },
  ...extra,
});

/** Counts every doGenerate/doStream the AI SDK makes, refused ones included. */
function counted(model: LanguageModelV4): { model: LanguageModelV4; calls: () => number } {
  let calls = 0;
  const generate = model.doGenerate.bind(model);
  const stream = model.doStream.bind(model);
  model.doGenerate = (options) => {
    calls++;
    return generate(options);
  };
  model.doStream = (options) => {
    calls++;
    return stream(options);
  };
  return { model, calls: () => calls };
}

const stepTool = tool({
  inputSchema: jsonSchema<{ step: number }>({ type: "object", properties: { step: { type: "number" } } }),
  execute: async ({ step }) => `step ${step} done`,
});

function toolCallReply(step: number) {
  return { toolCalls: [{ name: "step", arguments: { step } }], usage: ONE_CENT_CALL };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.unreachable("expected a failure"),
    (error: unknown) => error,
  );
}

describe("budgets", () => {
  it("refuses the third call of a tool loop, and the AI SDK does not retry the refusal", async () => {
    const { hub, store } = await testHub(
      governed({
        limits: { "loop-cap": { scope: "actor", window: "calendar-day", amount_usd: 0.025 } },
      }),
    );
    fake.enqueue(toolCallReply(1), toolCallReply(2), { text: "never sent", usage: ONE_CENT_CALL });
    const switchboard = createSwitchboard({ hub, actor: { id: "ada" } });
    const { model, calls } = counted(switchboard("purpose:agent"));
    const error = await rejection(
      generateText({
        model,
        prompt: "work",
        tools: { step: stepTool },
        stopWhen: stepCountIs(10),
        maxRetries: 2,
      }),
    );
    expect(RetryError.isInstance(error)).toBe(false);
    expect(SwitchboardAPIError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ code: "LIMIT_EXCEEDED", isRetryable: false, statusCode: 429 });
    expect((error as Error).message).toMatch(/Limit "loop-cap" reached/);
    expect(calls()).toBe(3);
    expect(fake.requestCount).toBe(2);
    await hub.flush();
    expect((await store.listUsage()).map((row) => row.actorId)).toEqual(["ada", "ada"]);
    await hub.close();
  });

  it("refuses a stream before its first part, without a retry", async () => {
    const { hub } = await testHub(
      governed({ limits: { tiny: { scope: "instance", window: "calendar-day", amount_usd: 0.001 } } }),
    );
    const switchboard = createSwitchboard({ hub });
    const { model, calls } = counted(switchboard("purpose:agent"));
    const errors: unknown[] = [];
    const result = streamText({ model, prompt: "hi", onError: ({ error }) => void errors.push(error) });
    const types: string[] = [];
    for await (const part of result.fullStream) types.push(part.type);
    expect(types).not.toContain("text-delta");
    expect(errors).toEqual([expect.objectContaining({ code: "LIMIT_EXCEEDED", isRetryable: false })]);
    expect(calls()).toBe(1);
    expect(fake.requestCount).toBe(0);
    await hub.close();
  });

  it("makes a whole tool loop one group: one reservation before it, one settlement after", async () => {
    const books: string[] = [];
    const spy: SwitchboardPlugin = {
      name: "spy-accountant",
      registerAccountants: (): Accountant[] => [
        {
          name: "spy",
          reserve: async ({ txId, amount }) => void books.push(`reserve ${txId.slice(0, 4)} ${amount}`),
          settle: async (txId, actual) => void books.push(`settle ${txId.slice(0, 4)} ${actual}`),
          rollback: async (txId) => void books.push(`rollback ${txId.slice(0, 4)}`),
        },
      ],
    };
    const { hub } = await testHub(
      governed({ accounting: { ...governed().accounting, group_reservation_usd: 1 } }),
      [spy],
    );
    const switchboard = createSwitchboard({ hub, actor: { id: "ada" } });

    fake.enqueue(toolCallReply(1), toolCallReply(2), { text: "finished", usage: ONE_CENT_CALL });
    const grouped = await switchboard.group("purpose:agent", (model, group) =>
      generateText({ model, prompt: "work", tools: { step: stepTool }, stopWhen: stepCountIs(10) }).then(
        (result) => ({ result, group }),
      ),
    );
    expect(grouped.result.text).toBe("finished");
    expect(grouped.result.providerMetadata?.switchboard).toMatchObject({ groupId: grouped.group.id });
    // $1 held once for the group, the three calls' $0.03 settled once.
    expect(books).toEqual(["reserve grp_ 100000000000", "settle grp_ 3000000000"]);

    books.length = 0;
    fake.enqueue(toolCallReply(1), toolCallReply(2), { text: "finished", usage: ONE_CENT_CALL });
    await generateText({
      model: switchboard("purpose:agent"),
      prompt: "work",
      tools: { step: stepTool },
      stopWhen: stepCountIs(10),
    });
    expect(books.filter((entry) => entry.startsWith("reserve"))).toHaveLength(3);
    await hub.close();
  });

  it("refuses a group for a model the purpose does not allow, as an error the AI SDK understands", async () => {
    const { hub } = await testHub(governed());
    const switchboard = createSwitchboard({ hub, purpose: "locked" });
    let entered = false;
    const error = await rejection(
      switchboard.group("gpt-backup", async () => {
        entered = true;
      }),
    );
    expect(entered).toBe(false);
    expect(SwitchboardAPIError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ code: "MODEL_NOT_ALLOWED", isRetryable: false });
    await hub.close();
  });

  it("refuses a call inside a group that names another actor", async () => {
    const { hub } = await testHub(governed());
    const switchboard = createSwitchboard({ hub, actor: { id: "ada" } });
    const error = await rejection(
      switchboard.group("purpose:agent", (model) =>
        generateText({ model, prompt: "hi", providerOptions: { switchboard: { actor: "bob" } } }),
      ),
    );
    expect(error).toMatchObject({ code: "INVALID_INPUT", isRetryable: false });
    expect(fake.requestCount).toBe(0);
    await hub.close();
  });
});

describe("allowlists and errors", () => {
  it("refuses a model id the provider's purpose does not allow, without a retry", async () => {
    const { hub } = await testHub(governed());
    const switchboard = createSwitchboard({ hub, purpose: "locked" });
    const { model, calls } = counted(switchboard("gpt-backup"));
    const error = await rejection(generateText({ model, prompt: "hi", maxRetries: 2 }));
    expect(error).toMatchObject({
      code: "MODEL_NOT_ALLOWED",
      isRetryable: false,
      statusCode: 403,
      details: expect.objectContaining({ model: "gpt-backup", purpose: "locked" }),
    });
    expect((error as Error).message).toMatch(/not allowed for purpose "locked"/);
    expect(calls()).toBe(1);
    expect(fake.requestCount).toBe(0);

    const allowed = await generateText({ model: switchboard("gpt-fake"), prompt: "hello" });
    expect(allowed.text).toBe("hello");
    await hub.close();
  });

  it("marks an upstream 5xx retryable, and the AI SDK's retry then succeeds", async () => {
    const { hub } = await testHub(governed());
    const switchboard = createSwitchboard({ hub });
    fake.enqueue({ status: 503, message: "overloaded" });
    const error = await rejection(
      generateText({ model: switchboard("purpose:agent"), prompt: "hi", maxRetries: 0 }),
    );
    expect(error).toMatchObject({ code: "PROVIDER_ERROR", isRetryable: true, statusCode: 502 });
    expect((error as Error).message).toMatch(/HTTP 503/);

    fake.enqueue({ status: 503, message: "overloaded" });
    const result = await generateText({
      model: switchboard("purpose:agent"),
      prompt: "second try",
      maxRetries: 1,
    });
    expect(result.text).toBe("second try");
    expect(fake.requestCount).toBe(3);
    await hub.close();
  });

  it("throws the caller's abort reason when the call is aborted", async () => {
    const { hub } = await testHub(governed());
    const switchboard = createSwitchboard({ hub });
    fake.enqueue({ text: "too late", delayMs: 5_000 });
    const controller = new AbortController();
    const pending = generateText({
      model: switchboard("purpose:agent"),
      prompt: "hi",
      abortSignal: controller.signal,
    });
    setTimeout(() => controller.abort(), 20);
    const error = await rejection(pending);
    expect((error as Error).name).toBe("AbortError");
    await hub.close();
  });
});

describe("fallbacks", () => {
  it("answers from the fallback after a 503, visible in providerMetadata", async () => {
    const { hub } = await testHub(governed());
    const switchboard = createSwitchboard({ hub });
    fake.enqueue({ status: 503, message: "overloaded" });
    const result = await generateText({ model: switchboard("purpose:resilient"), prompt: "hello" });
    expect(result.text).toBe("hello");
    expect(result.providerMetadata?.switchboard).toMatchObject({
      model: "gpt-backup",
      requestedModel: "gpt-fake",
      fallbackAttempts: [{ model: "gpt-fake", error: expect.stringContaining("HTTP 503") }],
    });
    expect(result.response.modelId).toBe("gpt-backup");
    expect(fake.requests.map((request) => request.body.model)).toEqual(["gpt-fake", "gpt-backup"]);
    await hub.close();
  });

  it("falls back before the first streamed part", async () => {
    const { hub } = await testHub(governed());
    const switchboard = createSwitchboard({ hub });
    fake.enqueue({ status: 503, message: "overloaded" });
    const result = streamText({ model: switchboard("purpose:resilient"), prompt: "streamed hello" });
    expect(await result.text).toBe("streamed hello");
    expect((await result.providerMetadata)?.switchboard).toMatchObject({
      model: "gpt-backup",
      fallbackAttempts: [{ model: "gpt-fake" }],
    });
    await hub.close();
  });
});

describe("usage log and actors", () => {
  it("logs one row per step of a tool loop, for the actor given per request", async () => {
    const { hub, store } = await testHub(governed());
    const switchboard = createSwitchboard({ hub, actor: { id: "service" } });
    fake.enqueue(toolCallReply(1), toolCallReply(2), { text: "all done", usage: ONE_CENT_CALL });
    const result = await generateText({
      model: switchboard("purpose:agent"),
      prompt: "work",
      tools: { step: stepTool },
      stopWhen: stepCountIs(10),
      providerOptions: { switchboard: { actor: { id: "bob", team: "data" } } },
    });
    expect(result.steps).toHaveLength(3);
    expect(result.steps.map((step) => step.providerMetadata?.switchboard?.actor)).toEqual([
      "bob",
      "bob",
      "bob",
    ]);
    expect(result.steps.map((step) => step.providerMetadata?.switchboard?.costUsd)).toEqual([
      0.01, 0.01, 0.01,
    ]);
    await hub.flush();
    const rows = await store.listUsage();
    expect(rows).toHaveLength(3);
    for (const row of rows) {
      expect(row).toMatchObject({
        actorId: "bob",
        purpose: "agent",
        modelAnswered: "gpt-fake",
        inputTokens: 1000,
        outputTokens: 1000,
        costNanocents: 1_000_000_000n,
        status: "ok",
      });
    }
    const ids = result.steps.map((step) => step.providerMetadata?.switchboard?.responseId);
    expect(rows.map((row) => row.id).sort()).toEqual([...ids].sort());
    await hub.close();
  });

  it("aborts the upstream request when the stream is cancelled, and logs what was delivered", async () => {
    const { hub, store } = await testHub(governed());
    const switchboard = createSwitchboard({ hub, actor: { id: "ada" } });
    const words = Array.from({ length: 200 }, (_, index) => `word${index} `);
    fake.enqueue({ text: words, chunkDelayMs: 20 });
    const { stream } = await switchboard("purpose:agent").doStream({
      prompt: [{ role: "user", content: [{ type: "text", text: "long story" }] }],
    });
    const reader = stream.getReader();
    for (let part = await reader.read(); part.value?.type !== "text-delta"; part = await reader.read());
    await reader.cancel();
    const row = await vi.waitFor(
      async () => {
        await hub.flush();
        const [logged] = await store.listUsage();
        if (!logged) throw new Error("no usage row yet");
        return logged;
      },
      { timeout: 5_000 },
    );
    expect(row).toMatchObject({ actorId: "ada", status: "aborted", error: expect.stringMatching(/aborted/) });
    expect(row.outputTokens ?? 0).toBeLessThan(200);
    await hub.close();
  });

  it("rejects a misspelt providerOptions.switchboard field instead of ignoring it", async () => {
    const { hub } = await testHub(governed());
    const switchboard = createSwitchboard({ hub });
    const error = await rejection(
      generateText({
        model: switchboard("purpose:agent"),
        prompt: "hi",
        providerOptions: { switchboard: { actorId: "bob" } },
      }),
    );
    expect((error as Error).message).toMatch(/no field "actorId"/);
    expect(fake.requestCount).toBe(0);
    await hub.close();
  });
});
