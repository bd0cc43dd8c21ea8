import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isSwitchboardError, SwitchboardError } from "../src/errors.ts";
import { anthropicFinishReason, createAnthropicModel } from "../src/providers/anthropic.ts";
import { createOpenAIModel, openaiFinishReason } from "../src/providers/openai.ts";
import type { ModelResponse } from "../src/response.ts";
import type { ResponsePart } from "../src/types.ts";
import { startFakeAnthropic } from "./fakes/anthropic-server.ts";
import type { FakeServer } from "./fakes/fake-server.ts";
import { startFakeOpenAI } from "./fakes/openai-server.ts";
import { echoRegistry, pluginOf, registeredModel, scriptedModel } from "./helpers.ts";

const KEY = "sk-parts-0123456789";
const weather = { name: "get_weather", inputSchema: { type: "object" } };
const TOOL_CALLS = [
  { id: "call_paris", name: "get_weather", arguments: { city: "Paris" } },
  { id: "call_lyon", name: "get_weather", arguments: { city: "Lyon" } },
];

/** Every part, and the error the iteration ended with (if any). */
async function drain(response: ModelResponse): Promise<{ parts: ResponsePart[]; error: unknown }> {
  const parts: ResponsePart[] = [];
  try {
    for await (const part of response.parts()) parts.push(part);
  } catch (error) {
    return { parts, error };
  }
  return { parts, error: undefined };
}

let openai: FakeServer;
let anthropic: FakeServer;
beforeAll(async () => {
  openai = await startFakeOpenAI();
  anthropic = await startFakeAnthropic();
});
afterAll(async () => {
  await openai.close();
  await anthropic.close();
});

const gpt = () =>
  registeredModel(createOpenAIModel({ id: "gpt-test", baseUrl: openai.url, http: { maxRetries: 0 } }));
const claude = () =>
  registeredModel(
    createAnthropicModel({ id: "claude-test", baseUrl: anthropic.url, http: { maxRetries: 0 } }),
  );

describe("ModelResponse.parts()", () => {
  it("yields text, each tool call with its id, usage and a mapped finish from a streamed OpenAI response", async () => {
    openai.enqueue({ text: "Let me check.", toolCalls: TOOL_CALLS, usage: { input: 12, output: 20 } });
    const response = (await gpt()).prompt("Weather?", { tools: [weather], key: KEY });
    const { parts, error } = await drain(response);
    expect(error).toBeUndefined();
    expect(parts).toEqual([
      { type: "text", text: "Let " },
      { type: "text", text: "me " },
      { type: "text", text: "check." },
      { type: "tool-call", ...TOOL_CALLS[0] },
      { type: "tool-call", ...TOOL_CALLS[1] },
      { type: "usage", usage: { input: 12, output: 20, cachedInput: 0, details: { reasoning: 0 } } },
      { type: "finish", reason: "tool-calls", rawReason: "tool_calls" },
    ]);
    expect(response.finishReason).toBe("tool-calls");
    expect(response.rawFinishReason).toBe("tool_calls");
    // Text iteration still works on the same response.
    const chunks: string[] = [];
    for await (const chunk of response) chunks.push(chunk);
    expect(chunks).toEqual(["Let ", "me ", "check."]);
  });

  it("yields the same sequence from a streamed Anthropic response", async () => {
    anthropic.enqueue({ text: "Let me check.", toolCalls: TOOL_CALLS, usage: { input: 12, output: 20 } });
    const response = (await claude()).prompt("Weather?", { tools: [weather], key: KEY });
    const { parts, error } = await drain(response);
    expect(error).toBeUndefined();
    expect(parts).toEqual([
      { type: "text", text: "Let " },
      { type: "text", text: "me " },
      { type: "text", text: "check." },
      { type: "tool-call", ...TOOL_CALLS[0] },
      { type: "tool-call", ...TOOL_CALLS[1] },
      { type: "usage", usage: { input: 12, output: 20, cachedInput: 0, details: { cacheWrite: 0 } } },
      { type: "finish", reason: "tool-calls", rawReason: "tool_use" },
    ]);
    expect(response.finishReason).toBe("tool-calls");
  });

  it("yields each OpenAI tool call once complete: a stream cut inside the second still delivered the first", async () => {
    // Events: the role chunk, the first call's start and 3 argument fragments, the second call's start.
    openai.enqueue({ toolCalls: TOOL_CALLS, cutAfter: 6 });
    const { parts, error } = await drain((await gpt()).prompt("Weather?", { tools: [weather], key: KEY }));
    expect(parts).toEqual([{ type: "tool-call", ...TOOL_CALLS[0] }]);
    expect(isSwitchboardError(error, "STREAM_INTERRUPTED")).toBe(true);
  });

  it("yields each Anthropic tool call once its block stops", async () => {
    // Events: message_start, ping, the first tool_use block (start, 4 deltas, stop), the second's start.
    anthropic.enqueue({ toolCalls: TOOL_CALLS, cutAfter: 9 });
    const { parts, error } = await drain((await claude()).prompt("Weather?", { tools: [weather], key: KEY }));
    expect(parts).toEqual([{ type: "tool-call", ...TOOL_CALLS[0] }]);
    expect(isSwitchboardError(error, "STREAM_INTERRUPTED")).toBe(true);
  });

  it("throws a failed response's error after its parts, and reports the finish reason as error", async () => {
    openai.enqueue({
      text: "partial answer",
      streamError: { type: "server_error", message: "upstream died" },
    });
    const response = (await gpt()).prompt("Hi", { key: KEY });
    const { parts, error } = await drain(response);
    expect(parts).toEqual([
      { type: "text", text: "partial " },
      { type: "text", text: "answer" },
    ]);
    expect(isSwitchboardError(error, "PROVIDER_ERROR")).toBe(true);
    expect(response.finishReason).toBe("error");
  });

  it("maps each provider's finish vocabulary onto the closed set, keeping the raw value", async () => {
    const cases: [string, string][] = [
      ["length", "length"],
      ["content_filter", "content-filter"],
      ["function_call", "tool-calls"],
      ["something_new", "other"],
    ];
    for (const [raw, mapped] of cases) {
      openai.enqueue({ text: "x", finishReason: raw });
      const response = (await gpt()).prompt("Hi", { key: KEY });
      await response.done();
      expect([response.finishReason, response.rawFinishReason]).toEqual([mapped, raw]);
    }
    anthropic.enqueue({ text: "x", finishReason: "max_tokens" });
    const cut = (await claude()).prompt("Hi", { key: KEY, stream: false });
    await cut.done();
    expect([cut.finishReason, cut.rawFinishReason]).toEqual(["length", "max_tokens"]);

    expect(openaiFinishReason("stop")).toBe("stop");
    expect(anthropicFinishReason("end_turn")).toBe("stop");
    expect(anthropicFinishReason("stop_sequence")).toBe("stop");
    expect(anthropicFinishReason("refusal")).toBe("content-filter");
    expect(anthropicFinishReason("model_context_window_exceeded")).toBe("length");
    expect(anthropicFinishReason("pause_turn")).toBe("other");
    expect(anthropicFinishReason("tool_use", true)).toBe("stop");
  });

  it("keeps a plugin's own finish value as raw, under other; and infers the finish when none is given", async () => {
    const legacy = scriptedModel("legacy", async function* () {
      yield { type: "text", text: "x" };
      // A plugin written against a provider's own vocabulary.
      yield { type: "finish", reason: "end_turn" as "stop" };
    });
    const silent = scriptedModel("silent", async function* () {
      yield { type: "tool-call", name: "t", arguments: {} };
    });
    const registry = await echoRegistry(pluginOf("test", legacy, silent));
    const legacyResponse = await registry.get("legacy").prompt("hi").done();
    expect([legacyResponse.finishReason, legacyResponse.rawFinishReason]).toEqual(["other", "end_turn"]);
    const silentResponse = await registry.get("silent").prompt("hi").done();
    expect(silentResponse.finishReason).toBe("tool-calls");
    const { parts } = await drain(silentResponse);
    expect(parts.at(-1)).toEqual({ type: "finish", reason: "tool-calls" });
    expect(parts.some((part) => part.type === "usage")).toBe(false);
  });

  it("shows only the answering model's usage after a fallback", async () => {
    const flaky = scriptedModel("flaky", async function* () {
      yield { type: "usage", usage: { input: 999 } };
      throw new SwitchboardError("PROVIDER_ERROR", "overloaded", {}, { retryable: true });
    });
    const registry = await echoRegistry(pluginOf("test", flaky));
    const response = registry
      .get("flaky")
      .withContext({ fallbacks: [{ model: registry.get("echo") }] })
      .prompt("two words");
    const { parts } = await drain(response);
    const usage = parts.filter((part) => part.type === "usage");
    expect(usage).toHaveLength(1);
    expect(usage[0]).toMatchObject({ usage: { input: 2 } });
    expect(parts.at(-1)).toEqual({ type: "finish", reason: "stop" });
    expect(response.answeredBy).toBe("echo");
  });
});
