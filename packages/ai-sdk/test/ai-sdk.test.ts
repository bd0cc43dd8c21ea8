/**
 * The provider driven by the AI SDK itself (`ai` 7): generateText, streamText, tool loops and
 * structured output, against the echo model and the fake OpenAI and Anthropic servers.
 */
import { type FakeServer, startFakeAnthropic, startFakeOpenAI } from "@switchboard/core/testing";
import type { Hub } from "@switchboard/hub";
import { generateObject, generateText, jsonSchema, Output, stepCountIs, streamText, tool } from "ai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSwitchboard } from "../src/index.ts";
import { testHub } from "./helpers.ts";

let openai: FakeServer;
let anthropic: FakeServer;
let hub: Hub;

beforeAll(async () => {
  openai = await startFakeOpenAI();
  anthropic = await startFakeAnthropic();
  ({ hub } = await testHub({
    default_model: "echo",
    providers: {
      fake: { type: "openai", base_url: openai.url, max_retries: 0, models: ["gpt-fake"] },
      claude: { type: "anthropic", base_url: anthropic.url, max_retries: 0, models: ["claude-fake"] },
    },
    purposes: {
      enrichments: { model: "echo" },
      chat: { model: "gpt-fake", models: ["gpt-fake", "echo"] },
      claude: { model: "claude-fake" },
    },
  }));
});

afterAll(async () => {
  await hub.close();
  await openai.close();
  await anthropic.close();
});

const weatherTool = tool({
  description: "The weather in a city",
  inputSchema: jsonSchema<{ city: string }>({
    type: "object",
    properties: { city: { type: "string" } },
    required: ["city"],
  }),
  execute: async ({ city }) => ({ city, forecast: "sunny" }),
});

describe("generateText", () => {
  it("answers by purpose with the echo model, reporting usage and the answering model", async () => {
    const switchboard = createSwitchboard({ hub, actor: { id: "ada" } });
    const result = await generateText({
      model: switchboard("purpose:enrichments"),
      instructions: "Be brief.",
      prompt: "hello there",
    });
    const echoed = JSON.parse(result.text);
    expect(echoed).toMatchObject({ prompt: "hello there", system: "Be brief.", stream: false, previous: [] });
    expect(result.finishReason).toBe("stop");
    expect(result.usage.inputTokens).toBe(2);
    expect(result.usage.outputTokens).toBe(result.text.trim().split(/\s+/).length);
    expect(result.providerMetadata?.switchboard).toMatchObject({
      model: "echo",
      requestedModel: "echo",
      purpose: "enrichments",
      actor: "ada",
      costUsd: 0,
      fallbackAttempts: [],
    });
    expect(result.response.modelId).toBe("echo");
  });

  it("replays a conversation as explicit history and maps maxOutputTokens onto max_tokens", async () => {
    const switchboard = createSwitchboard({ hub });
    const result = await generateText({
      model: switchboard("purpose:chat"),
      maxOutputTokens: 50,
      temperature: 0.2,
      topP: 0.9,
      stopSequences: ["END"],
      instructions: "You are terse.",
      allowSystemInMessages: true,
      messages: [
        { role: "user", content: "first question" },
        { role: "assistant", content: "first answer" },
        { role: "system", content: "Now answer in French." },
        { role: "user", content: [{ type: "text", text: "second question" }] },
      ],
    });
    expect(result.text).toBe("second question");
    const body = openai.requests.at(-1)?.body;
    expect(body.messages).toEqual([
      { role: "system", content: "You are terse." },
      { role: "user", content: "first question" },
      { role: "assistant", content: "first answer" },
      { role: "system", content: "Now answer in French." },
      { role: "user", content: "second question" },
    ]);
    expect(body).toMatchObject({
      model: "gpt-fake",
      max_tokens: 50,
      temperature: 0.2,
      top_p: 0.9,
      stop: ["END"],
    });
    expect(result.warnings).toEqual([]);
  });

  it("turns a setting the model has no option for into a warning, not a silent drop", async () => {
    const switchboard = createSwitchboard({ hub });
    const result = await generateText({ model: switchboard("purpose:enrichments"), prompt: "hi", topK: 3 });
    expect(result.warnings).toEqual([
      expect.objectContaining({
        type: "unsupported",
        feature: "topK",
        details: expect.stringContaining("echo"),
      }),
    ]);
    expect(JSON.parse(result.text).options).toBeUndefined();
  });

  it("passes model options given by name in providerOptions, and refuses an unknown one before any request", async () => {
    const switchboard = createSwitchboard({ hub });
    const result = await generateText({
      model: switchboard("purpose:enrichments"),
      prompt: "hi",
      providerOptions: { switchboard: { options: { example_bool: true } } },
    });
    expect(JSON.parse(result.text).options).toEqual({ example_bool: true });

    const before = openai.requestCount;
    const error = await generateText({
      model: switchboard("purpose:chat"),
      prompt: "hi",
      maxRetries: 2,
      providerOptions: { switchboard: { options: { no_such_option: 1 } } },
    }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: "INVALID_OPTION", isRetryable: false, statusCode: 400 });
    expect((error as Error).message).toMatch(/no option "no_such_option"/);
    expect(openai.requestCount).toBe(before);
  });

  it("sends images as attachments", async () => {
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0]);
    const switchboard = createSwitchboard({ hub });
    const result = await generateText({
      model: switchboard("purpose:enrichments"),
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "what is this" },
            { type: "file", data: png, mediaType: "image/png" },
          ],
        },
      ],
    });
    expect(JSON.parse(result.text)).toMatchObject({
      prompt: "what is this",
      attachments: [{ type: "image/png", path: null, url: null }],
    });
  });
});

describe("streamText", () => {
  it("streams text deltas as they arrive and finishes with usage and provider metadata", async () => {
    const switchboard = createSwitchboard({ hub, actor: { id: "ada" } });
    const result = streamText({ model: switchboard("purpose:enrichments"), prompt: "stream this" });
    const deltas: string[] = [];
    for await (const delta of result.textStream) deltas.push(delta);
    expect(deltas.length).toBeGreaterThan(1);
    expect(JSON.parse(deltas.join(""))).toMatchObject({ prompt: "stream this", stream: true });
    expect(await result.finishReason).toBe("stop");
    expect((await result.usage).inputTokens).toBe(2);
    expect((await result.providerMetadata)?.switchboard).toMatchObject({ model: "echo", actor: "ada" });
  });

  it("streams from the fake OpenAI server with cached input tokens in the usage", async () => {
    openai.enqueue({ text: "Hello from upstream", usage: { input: 40, output: 3, cachedInput: 30 } });
    const switchboard = createSwitchboard({ hub });
    const result = streamText({ model: switchboard("purpose:chat"), prompt: "hi" });
    expect(await result.text).toBe("Hello from upstream");
    const usage = await result.usage;
    expect(usage).toMatchObject({
      inputTokens: 40,
      outputTokens: 3,
      inputTokenDetails: { cacheReadTokens: 30, noCacheTokens: 10 },
    });
    expect(openai.requests.at(-1)?.body.stream).toBe(true);
  });

  it("streams tool calls as tool-input parts and a tool call with the provider's id", async () => {
    openai.enqueue({ toolCalls: [{ id: "call_weather_1", name: "weather", arguments: { city: "Oslo" } }] });
    const switchboard = createSwitchboard({ hub });
    const result = streamText({
      model: switchboard("purpose:chat"),
      prompt: "weather in Oslo?",
      // No execute: the SDK returns the call to the application instead of running it.
      tools: {
        weather: tool({ description: "The weather in a city", inputSchema: weatherTool.inputSchema }),
      },
    });
    const types: string[] = [];
    let input = "";
    for await (const part of result.fullStream) {
      types.push(part.type);
      if (part.type === "tool-input-delta") input += part.delta;
    }
    expect(types).toEqual(
      expect.arrayContaining(["tool-input-start", "tool-input-delta", "tool-input-end", "tool-call"]),
    );
    expect(JSON.parse(input)).toEqual({ city: "Oslo" });
    expect(await result.toolCalls).toEqual([
      expect.objectContaining({ toolCallId: "call_weather_1", toolName: "weather", input: { city: "Oslo" } }),
    ]);
    expect(await result.finishReason).toBe("tool-calls");
  });

  it("ends with an error part, not a clean finish, when the upstream fails mid-stream", async () => {
    openai.enqueue({
      text: "partial answer that breaks",
      streamError: { type: "server_error", message: "boom" },
    });
    const switchboard = createSwitchboard({ hub });
    const errors: unknown[] = [];
    const result = streamText({
      model: switchboard("purpose:chat"),
      prompt: "hi",
      onError: ({ error }) => {
        errors.push(error);
      },
    });
    const types: string[] = [];
    for await (const part of result.fullStream) types.push(part.type);
    expect(types).toContain("text-delta");
    expect(types).toContain("error");
    expect(errors[0]).toMatchObject({ code: "PROVIDER_ERROR" });
    expect(await result.finishReason).toBe("error");
  });
});

describe("tool loops", () => {
  it("runs a multi-step loop on the echo model: the SDK executes the tools, each step is a hub prompt", async () => {
    const switchboard = createSwitchboard({ hub });
    const calls: string[] = [];
    const result = await generateText({
      model: switchboard("purpose:enrichments"),
      prompt: JSON.stringify({ prompt: "look up", tool_calls: [{ name: "lookup", arguments: { step: 1 } }] }),
      tools: {
        lookup: tool({
          inputSchema: jsonSchema<{ step: number }>({
            type: "object",
            properties: { step: { type: "number" } },
          }),
          execute: async ({ step }) => {
            calls.push(`lookup ${step}`);
            // Returning a script makes echo call the tool again, until step 3.
            return step < 3 ? { tool_calls: [{ name: "lookup", arguments: { step: step + 1 } }] } : "done";
          },
        }),
      },
      stopWhen: stepCountIs(10),
    });
    expect(calls).toEqual(["lookup 1", "lookup 2", "lookup 3"]);
    expect(result.steps).toHaveLength(4);
    expect(result.steps.slice(0, 3).map((step) => step.finishReason)).toEqual([
      "tool-calls",
      "tool-calls",
      "tool-calls",
    ]);
    const last = JSON.parse(result.text);
    expect(last.tool_results).toEqual([expect.objectContaining({ name: "lookup", output: "done" })]);
    // The earlier steps were replayed as history: each with its tool call and result.
    expect(last.previous).toHaveLength(3);
  });

  it("stops where stopWhen says", async () => {
    const switchboard = createSwitchboard({ hub });
    const result = await generateText({
      model: switchboard("purpose:enrichments"),
      prompt: JSON.stringify({ tool_calls: [{ name: "again", arguments: {} }] }),
      tools: {
        again: tool({
          inputSchema: jsonSchema<Record<string, never>>({ type: "object", properties: {} }),
          execute: async () => ({ tool_calls: [{ name: "again", arguments: {} }] }),
        }),
      },
      stopWhen: stepCountIs(2),
    });
    expect(result.steps).toHaveLength(2);
  });

  it("replays tool calls and results to the OpenAI wire with their ids", async () => {
    openai.enqueue(
      { toolCalls: [{ id: "call_1", name: "weather", arguments: { city: "Oslo" } }] },
      { text: "It is sunny in Oslo." },
    );
    const switchboard = createSwitchboard({ hub });
    const result = await generateText({
      model: switchboard("purpose:chat"),
      prompt: "weather in Oslo?",
      tools: { weather: weatherTool },
      stopWhen: stepCountIs(5),
    });
    expect(result.text).toBe("It is sunny in Oslo.");
    const [first, second] = openai.requests.slice(-2).map((request) => request.body);
    expect(first.tools).toEqual([
      {
        type: "function",
        function: {
          name: "weather",
          description: "The weather in a city",
          parameters: expect.objectContaining({ properties: { city: { type: "string" } } }),
        },
      },
    ]);
    expect(second.messages).toEqual([
      { role: "user", content: "weather in Oslo?" },
      {
        role: "assistant",
        content: null,
        tool_calls: [
          { id: "call_1", type: "function", function: { name: "weather", arguments: '{"city":"Oslo"}' } },
        ],
      },
      { role: "tool", tool_call_id: "call_1", content: '{"city":"Oslo","forecast":"sunny"}' },
    ]);
  });

  it("runs a tool loop against the fake Anthropic server", async () => {
    anthropic.enqueue(
      { toolCalls: [{ id: "toolu_1", name: "weather", arguments: { city: "Rome" } }] },
      { text: "Sunny in Rome." },
    );
    const switchboard = createSwitchboard({ hub });
    const result = await generateText({
      model: switchboard("purpose:claude"),
      prompt: "weather in Rome?",
      tools: { weather: weatherTool },
      stopWhen: stepCountIs(5),
    });
    expect(result.text).toBe("Sunny in Rome.");
    expect(result.steps[0]?.finishReason).toBe("tool-calls");
    expect(result.steps[0]?.response.modelId).toBe("claude-fake");
    const second = anthropic.requests.at(-1)?.body;
    expect(second.messages.at(-1)).toEqual({
      role: "user",
      content: [
        expect.objectContaining({
          type: "tool_result",
          tool_use_id: "toolu_1",
          content: '{"city":"Rome","forecast":"sunny"}',
        }),
      ],
    });
  });
});

describe("structured output", () => {
  const schema = jsonSchema<{ name: string; age: number }>({
    type: "object",
    properties: { name: { type: "string" }, age: { type: "number" } },
    required: ["name", "age"],
    additionalProperties: false,
  });

  it("sends the schema as the OpenAI response format (generateText with Output.object)", async () => {
    openai.enqueue({ text: '{"name":"Ada","age":36}' });
    const switchboard = createSwitchboard({ hub });
    const result = await generateText({
      model: switchboard("purpose:chat"),
      prompt: "Who wrote the first program?",
      output: Output.object({ schema }),
    });
    expect(result.output).toEqual({ name: "Ada", age: 36 });
    expect(openai.requests.at(-1)?.body.response_format).toEqual({
      type: "json_schema",
      json_schema: { name: "output", schema: expect.objectContaining({ required: ["name", "age"] }) },
    });
  });

  it("works with generateObject against the fake Anthropic server (forced output tool)", async () => {
    anthropic.enqueue({ toolCalls: [{ name: "output", arguments: { name: "Grace", age: 85 } }] });
    const switchboard = createSwitchboard({ hub });
    const { object } = await generateObject({ model: switchboard("purpose:claude"), schema, prompt: "Who?" });
    expect(object).toEqual({ name: "Grace", age: 85 });
    expect(anthropic.requests.at(-1)?.body.tool_choice).toEqual({ type: "tool", name: "output" });
  });

  it("warns that a model without schema support was not sent the schema", async () => {
    const switchboard = createSwitchboard({ hub });
    const result = await generateText({
      model: switchboard("purpose:enrichments"),
      prompt: JSON.stringify({ raw: '{"name":"Ada","age":36}' }),
      output: Output.object({ schema }),
    });
    expect(result.output).toEqual({ name: "Ada", age: 36 });
    expect(result.warnings).toEqual([
      expect.objectContaining({ type: "unsupported", feature: "responseFormat" }),
    ]);
  });
});
