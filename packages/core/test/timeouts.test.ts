import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { isSwitchboardError } from "../src/errors.ts";
import type { Model } from "../src/model.ts";
import { createAnthropicModel } from "../src/providers/anthropic.ts";
import { createOpenAIModel, type OpenAIModelConfig } from "../src/providers/openai.ts";
import { DEFAULT_TIMEOUT_MS } from "../src/response.ts";
import type { ExecutionStart } from "../src/types.ts";
import { startFakeAnthropic } from "./fakes/anthropic-server.ts";
import type { FakeServer } from "./fakes/fake-server.ts";
import { startFakeOpenAI } from "./fakes/openai-server.ts";
import { echoRegistry, registeredModel, responseFailure } from "./helpers.ts";

let openai: FakeServer;
let anthropic: FakeServer;
beforeAll(async () => {
  openai = await startFakeOpenAI();
  anthropic = await startFakeAnthropic();
});
afterEach(() => {
  openai.reset();
  anthropic.reset();
});
afterAll(async () => {
  await openai.close();
  await anthropic.close();
});

function gpt(config: Partial<OpenAIModelConfig> = {}): Promise<Model> {
  return registeredModel(
    createOpenAIModel({ id: "gpt-test", baseUrl: openai.url, http: { maxRetries: 0 }, ...config }),
  );
}

describe("one owner of the response timeout", () => {
  it("honours a caller's longer timeout over the model's shorter one", async () => {
    openai.enqueue({ text: "worth the wait", delayMs: 400 });
    const model = await gpt({ timeoutMs: 200 });
    expect(await model.prompt("Hi", { timeoutMs: 5000 }).text()).toBe("worth the wait");
  });

  it("honours a caller's shorter timeout, and names that value", async () => {
    openai.enqueue({ text: "too late", delayMs: 2000 });
    const model = await gpt();
    const response = model.prompt("Hi", { timeoutMs: 100 });
    expect(response.timeoutMs).toBe(100);
    const error = await responseFailure(response);
    expect(error.code).toBe("TIMEOUT");
    expect(error.message).toBe(
      "The request to openai for model gpt-test timed out after 100 ms (the timeoutMs given with the prompt).",
    );
    expect(error.message).not.toContain(String(DEFAULT_TIMEOUT_MS));
  });

  it("tells observers the timeout that applies: the prompt's, else the model's, else the default", async () => {
    const starts: ExecutionStart[] = [];
    const model = (await gpt({ timeoutMs: 7000 })).withContext({
      observe: (start) => {
        starts.push(start);
        return undefined;
      },
    });
    model.prompt("a", { timeoutMs: 1234 });
    model.prompt("b");
    const registry = await echoRegistry();
    expect(registry.get("echo").prompt("c").timeoutMs).toBe(DEFAULT_TIMEOUT_MS);
    expect(starts.map((start) => start.timeoutMs)).toEqual([1234, 7000]);
  });

  it("refuses a timeout that is not a usable number of milliseconds", async () => {
    const registry = await echoRegistry();
    for (const timeoutMs of [0, -5, Number.NaN, 2 ** 31]) {
      let caught: unknown;
      try {
        registry.get("echo").prompt("hi", { timeoutMs });
      } catch (error) {
        caught = error;
      }
      expect(isSwitchboardError(caught, "INVALID_INPUT")).toBe(true);
    }
    expect(() => registry.get("echo").prompt("hi", { firstChunkTimeoutMs: -1 })).toThrow(
      /firstChunkTimeoutMs/,
    );
  });
});

describe("first-chunk timeout", () => {
  async function withFallback(primary: Model): Promise<Model> {
    const claude = await registeredModel(createAnthropicModel({ id: "claude-test", baseUrl: anthropic.url }));
    return primary.withContext({ fallbacks: [{ model: claude }] });
  }

  it("fails a hung model over to the next fallback (the model's own first-chunk timeout)", async () => {
    openai.enqueue({ text: "never seen", delayMs: 3000 });
    anthropic.enqueue({ text: "fallback answer" });
    const model = await withFallback(await gpt({ firstChunkTimeoutMs: 100 }));
    const response = model.prompt("Hi");
    expect(await response.text()).toBe("fallback answer");
    expect(response.answeredBy).toBe("claude-test");
    expect(response.fallbackAttempts).toEqual([
      {
        model: "gpt-test",
        error:
          "Model gpt-test sent no output within 100 ms (the model's first-chunk timeout; pass firstChunkTimeoutMs to change it).",
      },
    ]);
  });

  it("takes the caller's first-chunk timeout over the model's, in both directions", async () => {
    openai.enqueue({ text: "never seen", delayMs: 3000 });
    anthropic.enqueue({ text: "fallback answer" });
    const patient = await withFallback(await gpt({ firstChunkTimeoutMs: 60_000 }));
    const hurried = patient.prompt("Hi", { firstChunkTimeoutMs: 100 });
    expect(await hurried.text()).toBe("fallback answer");
    expect(hurried.fallbackAttempts[0]?.error).toContain(
      "within 100 ms (the firstChunkTimeoutMs given with the prompt)",
    );

    openai.enqueue({ text: "slow but fine", delayMs: 300 });
    const impatient = await withFallback(await gpt({ firstChunkTimeoutMs: 50 }));
    const relaxed = impatient.prompt("Hi", { firstChunkTimeoutMs: 5000 });
    expect(await relaxed.text()).toBe("slow but fine");
    expect(relaxed.answeredBy).toBe("gpt-test");
  });

  it("stops counting once output arrives: a slow stream is not cut", async () => {
    openai.enqueue({ text: "one two three four five six seven eight nine ten", chunkDelayMs: 40 });
    const model = await gpt({ firstChunkTimeoutMs: 300 });
    expect(await model.prompt("Hi").text()).toBe("one two three four five six seven eight nine ten");
  });

  it("is a retryable TIMEOUT when no fallback is left", async () => {
    openai.enqueue({ text: "never seen", delayMs: 3000 });
    const model = await gpt({ firstChunkTimeoutMs: 100 });
    const error = await responseFailure(model.prompt("Hi"));
    expect(error.code).toBe("TIMEOUT");
    expect(error.retryable).toBe(true);
    expect(error.details).toMatchObject({ timeout: "first-chunk", timeoutMs: 100 });
  });
});
