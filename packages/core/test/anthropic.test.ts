import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { isSwitchboardError } from "../src/errors.ts";
import type { RegisteredModel } from "../src/plugin.ts";
import {
  type AnthropicModelConfig,
  anthropicCompatiblePlugin,
  anthropicPlugin,
  createAnthropicModel,
} from "../src/providers/anthropic.ts";
import type { AsyncModelDefinition, ModelDefinition, ModelRequest, StreamPart } from "../src/types.ts";
import { type FakeServer, startFakeAnthropic } from "./fakes/anthropic-server.ts";
import {
  collectParts,
  partsFailure,
  providerRequest,
  registeredModel,
  responseFailure,
  textOfParts,
} from "./helpers.ts";

const KEY = "sk-ant-api03-secretsecretsecret";
const FAST_RETRIES = { retryBaseDelayMs: 5, maxRetryDelayMs: 50 };

let fake: FakeServer;
beforeAll(async () => {
  fake = await startFakeAnthropic();
});
afterEach(() => fake.reset());
afterAll(() => fake.close());

function model(config: Partial<AnthropicModelConfig> = {}): AsyncModelDefinition {
  return createAnthropicModel({
    id: "claude-test",
    upstreamName: "claude-test-1-0",
    baseUrl: fake.url,
    needsKey: "anthropic",
    keyEnvVar: "ANTHROPIC_API_KEY",
    http: FAST_RETRIES,
    ...config,
  });
}

function request(overrides: Partial<ModelRequest> = {}): ModelRequest {
  return providerRequest("claude-test", KEY, overrides);
}

const collect = collectParts;
const textOf = textOfParts;
const failure = partsFailure;

describe("Anthropic provider: answers", () => {
  it("streams text deltas and sends the API's headers and required fields", async () => {
    fake.enqueue({ text: "Hello from Claude", model: "claude-test-1-0-20260101" });
    const parts = await collect(model().execute(request({ system: "Be kind" })));

    expect(parts[0]).toEqual({ type: "resolved-model", model: "claude-test-1-0-20260101" });
    expect(parts.filter((part) => part.type === "text").map((part) => part.text)).toEqual([
      "Hello ",
      "from ",
      "Claude",
    ]);
    expect(parts.at(-1)).toEqual({ type: "finish", reason: "stop", rawReason: "end_turn" });
    const sent = fake.requests[0]!;
    expect(sent.path).toBe("/v1/messages");
    expect(sent.headers["x-api-key"]).toBe(KEY);
    expect(sent.headers["anthropic-version"]).toBe("2023-06-01");
    expect(sent.headers.authorization).toBeUndefined();
    expect(sent.body).toEqual({
      model: "claude-test-1-0",
      max_tokens: 8192,
      system: "Be kind",
      messages: [{ role: "user", content: [{ type: "text", text: "Hello" }] }],
      stream: true,
    });
  });

  it("answers without streaming from one JSON message", async () => {
    fake.enqueue({ text: "Complete answer", usage: { input: 10, output: 2 } });
    const parts = await collect(model().execute(request({ stream: false })));
    expect(parts).toEqual([
      { type: "resolved-model", model: "claude-test-1-0" },
      { type: "text", text: "Complete answer" },
      { type: "usage", usage: { input: 10, output: 2, cachedInput: 0, details: { cacheWrite: 0 } } },
      { type: "finish", reason: "stop", rawReason: "end_turn" },
    ]);
    expect(fake.requests[0]!.body.stream).toBeUndefined();
  });

  it("assembles tool_use blocks from input_json_delta fragments", async () => {
    fake.enqueue({
      text: "Let me check.",
      toolCalls: [
        { id: "toolu_1", name: "get_weather", arguments: { city: "Paris", days: [1, 2] } },
        { id: "toolu_2", name: "get_time", arguments: {} },
      ],
    });
    const parts = await collect(
      model().execute(request({ tools: [{ name: "get_weather" }, { name: "get_time" }] })),
    );

    expect(textOf(parts)).toBe("Let me check.");
    expect(parts.filter((part) => part.type === "tool-call")).toEqual([
      { type: "tool-call", id: "toolu_1", name: "get_weather", arguments: { city: "Paris", days: [1, 2] } },
      { type: "tool-call", id: "toolu_2", name: "get_time", arguments: {} },
    ]);
    expect(parts.at(-1)).toEqual({ type: "finish", reason: "tool-calls", rawReason: "tool_use" });
  });

  it("parses tool_use blocks of a non-streamed message", async () => {
    fake.enqueue({ toolCalls: [{ id: "toolu_9", name: "lookup", arguments: { q: "x" } }] });
    const parts = await collect(model().execute(request({ stream: false, tools: [{ name: "lookup" }] })));
    expect(parts).toContainEqual({ type: "tool-call", id: "toolu_9", name: "lookup", arguments: { q: "x" } });
  });

  it("reports total input including cache reads and writes, with the cached subset", async () => {
    fake.enqueue({ text: "ok", usage: { input: 5000, output: 30, cachedInput: 4000, cacheWrite: 900 } });
    const parts = await collect(model().execute(request()));
    expect(parts).toContainEqual({
      type: "usage",
      usage: { input: 5000, output: 30, cachedInput: 4000, details: { cacheWrite: 900 } },
    });
    expect(fake.requests).toHaveLength(1);
  });

  it("returns structured output through a forced tool, streamed as text", async () => {
    const schema = { type: "object", properties: { name: { type: "string" } }, required: ["name"] };
    fake.enqueue({ toolCalls: [{ name: "output", arguments: { name: "Ada" } }] });
    const parts = await collect(model().execute(request({ schema })));

    expect(JSON.parse(textOf(parts))).toEqual({ name: "Ada" });
    expect(parts.filter((part) => part.type === "text").length).toBeGreaterThan(1);
    expect(parts.some((part) => part.type === "tool-call")).toBe(false);
    expect(parts.at(-1)).toEqual({ type: "finish", reason: "stop", rawReason: "tool_use" });
    const body = fake.requests[0]!.body;
    expect(body.tools).toEqual([{ name: "output", description: expect.any(String), input_schema: schema }]);
    expect(body.tool_choice).toEqual({ type: "tool", name: "output" });
  });

  it("returns non-streamed structured output as the tool input's JSON", async () => {
    fake.enqueue({ toolCalls: [{ name: "output", arguments: { name: "Grace" } }] });
    const parts = await collect(model().execute(request({ stream: false, schema: { type: "object" } })));
    expect(textOf(parts)).toBe('{"name":"Grace"}');
  });

  it("lets the model call other tools before answering through the output tool", async () => {
    await collect(model().execute(request({ schema: { type: "object" }, tools: [{ name: "search" }] })));
    const body = fake.requests[0]!.body;
    expect(body.tools.map((tool: { name: string }) => tool.name)).toEqual(["search", "output"]);
    expect(body.tool_choice).toEqual({ type: "any" });
  });
});

describe("Anthropic provider: request body", () => {
  it("renders history as alternating messages with tool_use and tool_result blocks", async () => {
    const weather = { name: "get_weather", description: "Weather", inputSchema: { type: "object" } };
    await collect(
      model().execute(
        request({
          prompt: "And tomorrow?",
          tools: [weather],
          history: [
            { role: "system", content: "Be brief" },
            { role: "user", content: "Weather in Paris?" },
            {
              role: "assistant",
              content: "Checking.",
              toolCalls: [{ id: "toolu_1", name: "get_weather", arguments: { city: "Paris" } }],
            },
            { role: "tool", toolCallId: "toolu_1", name: "get_weather", output: "18C" },
            { role: "assistant", content: "It is 18C." },
          ],
        }),
      ),
    );
    const body = fake.requests[0]!.body;
    expect(body.system).toBe("Be brief");
    expect(body.messages).toEqual([
      { role: "user", content: [{ type: "text", text: "Weather in Paris?" }] },
      {
        role: "assistant",
        content: [
          { type: "text", text: "Checking." },
          { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } },
        ],
      },
      { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "18C" }] },
      { role: "assistant", content: [{ type: "text", text: "It is 18C." }] },
      { role: "user", content: [{ type: "text", text: "And tomorrow?" }] },
    ]);
    expect(body.tools).toEqual([
      { name: "get_weather", description: "Weather", input_schema: { type: "object" } },
    ]);
  });

  it("marks failed tool results as errors", async () => {
    await collect(
      model().execute(
        request({
          prompt: "",
          toolResults: [{ toolCallId: "toolu_2", name: "x", output: "Error: boom", error: "boom" }],
        }),
      ),
    );
    expect(fake.requests[0]!.body.messages).toEqual([
      {
        role: "user",
        content: [{ type: "tool_result", tool_use_id: "toolu_2", content: "Error: boom", is_error: true }],
      },
    ]);
  });

  it("maps options, normalising a single stop sequence", async () => {
    await collect(
      model().execute(
        request({ options: { max_tokens: 256, temperature: 0.3, top_k: 40, stop_sequences: "END" } }),
      ),
    );
    expect(fake.requests[0]!.body).toMatchObject({
      max_tokens: 256,
      temperature: 0.3,
      top_k: 40,
      stop_sequences: ["END"],
    });
  });

  it("sends images and PDFs as base64 or URL source blocks", async () => {
    await collect(
      model().execute(
        request({
          prompt: "Compare",
          attachments: [
            { type: "image/png", content: new Uint8Array([1, 2, 3]) },
            { type: "image/jpeg", url: "https://example.com/cat.jpg" },
            { type: "application/pdf", content: new Uint8Array([37, 80, 68, 70]) },
          ],
        }),
      ),
    );
    expect(fake.requests[0]!.body.messages[0].content).toEqual([
      { type: "image", source: { type: "base64", media_type: "image/png", data: "AQID" } },
      { type: "image", source: { type: "url", url: "https://example.com/cat.jpg" } },
      { type: "document", source: { type: "base64", media_type: "application/pdf", data: "JVBERg==" } },
      { type: "text", text: "Compare" },
    ]);
  });
});

describe("Anthropic provider: failures and retries", () => {
  it("maps 401 to PROVIDER_AUTH without retrying and without leaking the key", async () => {
    fake.enqueue({ status: 401, message: `invalid x-api-key ${KEY}` });
    const error = await failure(model().execute(request()));
    expect(error.code).toBe("PROVIDER_AUTH");
    expect(error.details).toEqual({
      status: 401,
      provider: "anthropic",
      model: "claude-test",
    });
    expect(error.retryable).toBe(false);
    expect(error.message).not.toContain(KEY);
    expect(error.message).not.toContain("secretsecret");
    expect(error.message).toContain("ANTHROPIC_API_KEY");
    expect(fake.requestCount).toBe(1);
  });

  it("honours retry-after on 429", async () => {
    fake.enqueue({ status: 429, headers: { "retry-after": "1" } }, { text: "after the wait" });
    const started = performance.now();
    const parts = await collect(model({ http: { retryBaseDelayMs: 5 } }).execute(request()));
    expect(performance.now() - started).toBeGreaterThanOrEqual(950);
    expect(textOf(parts)).toBe("after the wait");
    expect(fake.requestCount).toBe(2);
  });

  it("honours retry-after-ms", async () => {
    fake.enqueue({ status: 429, headers: { "retry-after-ms": "200" } }, { text: "ok" });
    const started = performance.now();
    await collect(model({ http: { retryBaseDelayMs: 5, maxRetryDelayMs: 1000 } }).execute(request()));
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
  });

  it("retries 500 and 529 overloaded, then succeeds", async () => {
    fake.enqueue({ status: 500 }, { status: 529, message: "Overloaded" }, { text: "made it" });
    const parts = await collect(model().execute(request()));
    expect(textOf(parts)).toBe("made it");
    expect(fake.requestCount).toBe(3);
  });

  it("fails with a retryable PROVIDER_ERROR once retries of a 503 are exhausted", async () => {
    fake.enqueue({ status: 503 }, { status: 503 }, { status: 503, message: "upstream unavailable" });
    const error = await failure(model().execute(request()));
    expect(error.code).toBe("PROVIDER_ERROR");
    expect(error.details).toEqual({
      status: 503,
      provider: "anthropic",
      model: "claude-test",
    });
    expect(error.retryable).toBe(true);
    expect(error.message).toContain("upstream unavailable");
    expect(fake.requestCount).toBe(3);
  });

  it("turns an overloaded_error event mid-stream into a retryable PROVIDER_ERROR", async () => {
    fake.enqueue({
      text: "partial answer",
      streamError: { type: "overloaded_error", message: "Overloaded" },
    });
    const error = await failure(model().execute(request()));
    expect(error.code).toBe("PROVIDER_ERROR");
    expect(error.retryable).toBe(true);
    expect(error.details.errorType).toBe("overloaded_error");
  });

  it("turns a dropped connection mid-stream into STREAM_INTERRUPTED", async () => {
    fake.enqueue({ text: "one two three four", cutAfter: 5 });
    const parts: StreamPart[] = [];
    let caught: unknown;
    try {
      for await (const part of model().execute(request())) parts.push(part);
    } catch (error) {
      caught = error;
    }
    expect(isSwitchboardError(caught, "STREAM_INTERRUPTED")).toBe(true);
    expect(textOf(parts)).toBe("one two ");
  });

  it("treats a stream that ends without message_stop as interrupted", async () => {
    fake.enqueue({ text: "one two", cutAfter: 6, cutMode: "end" });
    const error = await failure(model().execute(request()));
    expect(error.code).toBe("STREAM_INTERRUPTED");
  });

  it("stops with ABORTED when the caller aborts", async () => {
    fake.enqueue({ text: "a b c d e f", chunkDelayMs: 100 });
    const controller = new AbortController();
    let caught: unknown;
    try {
      for await (const part of model().execute(request({ signal: controller.signal }))) {
        if (part.type === "text") controller.abort();
      }
    } catch (error) {
      caught = error;
    }
    expect(isSwitchboardError(caught, "ABORTED")).toBe(true);
  });

  it("fails with TIMEOUT when the model's timeout elapses mid-stream", async () => {
    fake.enqueue({ text: "slow slow slow slow", chunkDelayMs: 100 });
    const slow = await registeredModel(model({ timeoutMs: 250 }));
    const response = slow.prompt("Hello", { key: KEY });
    const error = await responseFailure(response);
    expect(error.code).toBe("TIMEOUT");
    expect(error.message).toContain("after 250 ms");
  });

  it("treats an aborted caller signal whose reason is a timeout as TIMEOUT", async () => {
    fake.enqueue({ text: "never", delayMs: 1000 });
    const error = await failure(model().execute(request({ signal: AbortSignal.timeout(100) })));
    expect(error.code).toBe("TIMEOUT");
  });
});

describe("Anthropic plugins", () => {
  async function registered(plugin: ReturnType<typeof anthropicPlugin>): Promise<ModelDefinition[]> {
    const models: ModelDefinition[] = [];
    const seen: RegisteredModel[] = [];
    await plugin.registerModels?.({ register: (definition) => models.push(definition), models: seen });
    return models;
  }

  it("registers the Claude models with dotted ids and hyphenated API names as aliases", async () => {
    const previous = process.env.ANTHROPIC_BASE_URL;
    process.env.ANTHROPIC_BASE_URL = fake.url;
    let models: ModelDefinition[];
    try {
      models = await registered(anthropicPlugin({ http: FAST_RETRIES }));
    } finally {
      if (previous === undefined) delete process.env.ANTHROPIC_BASE_URL;
      else process.env.ANTHROPIC_BASE_URL = previous;
    }
    expect(models.map((definition) => definition.id)).toEqual([
      "claude-opus-4.6",
      "claude-sonnet-4.6",
      "claude-haiku-4.5",
      "claude-opus-4.5",
      "claude-sonnet-4.5",
      "claude-opus-4.1",
      "claude-sonnet-4",
    ]);
    const sonnet = models[1] as AsyncModelDefinition;
    expect(sonnet).toMatchObject({
      aliases: ["claude-sonnet-4-6"],
      needsKey: "anthropic",
      keyEnvVar: "ANTHROPIC_API_KEY",
      provider: "anthropic",
    });
    expect(sonnet.capabilities?.attachmentTypes).toContain("application/pdf");
    await collect(sonnet.execute(request({ modelId: "claude-sonnet-4.6" })));
    expect(fake.requests[0]!.body.model).toBe("claude-sonnet-4-6");
  });

  it("registers an Anthropic-compatible endpoint from configuration", async () => {
    const models = await registered(
      anthropicCompatiblePlugin({
        name: "proxy",
        baseUrl: fake.url,
        needsKey: "proxy",
        models: [{ id: "proxied-claude", name: "claude-haiku-4-5" }],
      }),
    );
    const proxied = models[0] as AsyncModelDefinition;
    expect(proxied).toMatchObject({ id: "proxied-claude", provider: "proxy", needsKey: "proxy" });
    const parts = await collect(proxied.execute(request({ modelId: "proxied-claude", prompt: "echo me" })));
    expect(textOf(parts)).toBe("echo me");
    expect(fake.requests[0]!.body.model).toBe("claude-haiku-4-5");
  });
});
