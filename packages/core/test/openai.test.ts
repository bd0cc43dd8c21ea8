import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { isSwitchboardError, type SwitchboardError } from "../src/errors.ts";
import type { RegisteredModel } from "../src/plugin.ts";
import { readServerSentEvents } from "../src/providers/http.ts";
import {
  createOpenAIModel,
  type OpenAIModelConfig,
  openaiCompatiblePlugin,
  openaiPlugin,
} from "../src/providers/openai.ts";
import type { AsyncModelDefinition, ModelDefinition, ModelRequest, StreamPart } from "../src/types.ts";
import { type FakeServer, startFakeOpenAI } from "./fakes/openai-server.ts";
import {
  collectParts,
  partsFailure,
  providerRequest,
  registeredModel,
  responseFailure,
  textOfParts,
} from "./helpers.ts";

const KEY = "sk-test-0123456789abcdef";
const FAST_RETRIES = { retryBaseDelayMs: 5, maxRetryDelayMs: 50 };

let fake: FakeServer;
beforeAll(async () => {
  fake = await startFakeOpenAI();
});
afterEach(() => fake.reset());
afterAll(() => fake.close());

function model(config: Partial<OpenAIModelConfig> = {}): AsyncModelDefinition {
  return createOpenAIModel({
    id: "gpt-test",
    baseUrl: fake.url,
    needsKey: "openai",
    keyEnvVar: "OPENAI_API_KEY",
    http: FAST_RETRIES,
    ...config,
  });
}

function request(overrides: Partial<ModelRequest> = {}): ModelRequest {
  return providerRequest("gpt-test", KEY, overrides);
}

const collect = collectParts;
const textOf = textOfParts;
const failure = partsFailure;

describe("OpenAI provider: answers", () => {
  it("streams text chunk by chunk and reports the resolved model", async () => {
    fake.enqueue({ text: "Hello brave new world", model: "gpt-test-2026-01-01" });
    const parts = await collect(model().execute(request()));

    expect(parts.filter((part) => part.type === "text").map((part) => part.text)).toEqual([
      "Hello ",
      "brave ",
      "new ",
      "world",
    ]);
    expect(parts[0]).toEqual({ type: "resolved-model", model: "gpt-test-2026-01-01" });
    expect(parts.at(-1)).toEqual({ type: "finish", reason: "stop", rawReason: "stop" });
    const sent = fake.requests[0]!;
    expect(sent.path).toBe("/v1/chat/completions");
    expect(sent.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(sent.body).toMatchObject({
      model: "gpt-test",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "Hello" }],
    });
  });

  it("answers without streaming from one JSON response", async () => {
    fake.enqueue({ text: "A complete answer", usage: { input: 3, output: 3 } });
    const parts = await collect(model().execute(request({ stream: false })));

    expect(parts).toEqual([
      { type: "resolved-model", model: "gpt-test" },
      { type: "text", text: "A complete answer" },
      { type: "usage", usage: { input: 3, output: 3, cachedInput: 0, details: { reasoning: 0 } } },
      { type: "finish", reason: "stop", rawReason: "stop" },
    ]);
    expect(fake.requests[0]!.body.stream).toBeUndefined();
  });

  it("sends no Authorization header when there is no key", async () => {
    const keyless = createOpenAIModel({ id: "gpt-test", baseUrl: fake.url, http: FAST_RETRIES });
    await collect(keyless.execute(request({ key: undefined })));
    expect(fake.requests[0]!.headers.authorization).toBeUndefined();
  });

  it("uses the upstream name and extra headers", async () => {
    await collect(
      model({ upstreamName: "llama3.2:3b", headers: { "x-title": "switchboard" } }).execute(request()),
    );
    expect(fake.requests[0]!.body.model).toBe("llama3.2:3b");
    expect(fake.requests[0]!.headers["x-title"]).toBe("switchboard");
  });

  it("assembles streamed tool-call deltas into tool calls with parsed arguments", async () => {
    fake.enqueue({
      toolCalls: [
        {
          id: "call_weather",
          name: "get_weather",
          arguments: { city: "Paris", units: "metric", days: [1, 2] },
        },
        { id: "call_time", name: "get_time", arguments: { zone: "Europe/Paris" } },
      ],
    });
    const parts = await collect(
      model().execute(request({ tools: [{ name: "get_weather" }, { name: "get_time" }] })),
    );

    expect(parts.filter((part) => part.type === "tool-call")).toEqual([
      {
        type: "tool-call",
        id: "call_weather",
        name: "get_weather",
        arguments: { city: "Paris", units: "metric", days: [1, 2] },
      },
      { type: "tool-call", id: "call_time", name: "get_time", arguments: { zone: "Europe/Paris" } },
    ]);
    expect(parts.at(-1)).toEqual({ type: "finish", reason: "tool-calls", rawReason: "tool_calls" });
  });

  it("parses tool calls of a non-streamed response", async () => {
    fake.enqueue({ text: "Checking.", toolCalls: [{ id: "call_1", name: "lookup", arguments: { q: "x" } }] });
    const parts = await collect(model().execute(request({ stream: false, tools: [{ name: "lookup" }] })));
    expect(textOf(parts)).toBe("Checking.");
    expect(parts).toContainEqual({ type: "tool-call", id: "call_1", name: "lookup", arguments: { q: "x" } });
  });

  it("reports usage with cached and reasoning tokens from the final chunk", async () => {
    fake.enqueue({ text: "ok", usage: { input: 1200, output: 40, cachedInput: 1024, reasoning: 12 } });
    const parts = await collect(model().execute(request()));
    expect(parts).toContainEqual({
      type: "usage",
      usage: { input: 1200, output: 40, cachedInput: 1024, details: { reasoning: 12 } },
    });
  });

  it("reports no usage part when the server sends none", async () => {
    fake.enqueue({ text: "ok", usage: null });
    const parts = await collect(model().execute(request()));
    expect(parts.some((part) => part.type === "usage")).toBe(false);
  });
});

describe("OpenAI provider: request body", () => {
  it("renders history with tool calls and tool results into the right messages", async () => {
    const weather = {
      name: "get_weather",
      description: "Weather for a city",
      inputSchema: { type: "object" },
    };
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
              content: "",
              toolCalls: [{ id: "call_1", name: "get_weather", arguments: { city: "Paris" } }],
            },
            { role: "tool", toolCallId: "call_1", name: "get_weather", output: "18C" },
            { role: "assistant", content: "It is 18C." },
          ],
        }),
      ),
    );
    const body = fake.requests[0]!.body;
    expect(body.messages).toEqual([
      { role: "system", content: "Be brief" },
      { role: "user", content: "Weather in Paris?" },
      {
        role: "assistant",
        content: null,
        tool_calls: [
          {
            id: "call_1",
            type: "function",
            function: { name: "get_weather", arguments: '{"city":"Paris"}' },
          },
        ],
      },
      { role: "tool", tool_call_id: "call_1", content: "18C" },
      { role: "assistant", content: "It is 18C." },
      { role: "user", content: "And tomorrow?" },
    ]);
    expect(body.tools).toEqual([
      {
        type: "function",
        function: { name: "get_weather", description: "Weather for a city", parameters: { type: "object" } },
      },
    ]);
  });

  it("sends the current tool results as tool messages without an empty user message", async () => {
    await collect(
      model().execute(
        request({
          prompt: "",
          system: "sys",
          toolResults: [
            { toolCallId: "call_a", name: "a", output: "1" },
            { toolCallId: "call_b", name: "b", output: "Error: boom", error: "boom" },
          ],
        }),
      ),
    );
    expect(fake.requests[0]!.body.messages).toEqual([
      { role: "system", content: "sys" },
      { role: "tool", tool_call_id: "call_a", content: "1" },
      { role: "tool", tool_call_id: "call_b", content: "Error: boom" },
    ]);
  });

  it("requests a JSON schema and maps options, max_tokens renamed for OpenAI proper", async () => {
    const schema = { type: "object", properties: { name: { type: "string" } }, required: ["name"] };
    await collect(
      model({ maxTokensField: "max_completion_tokens" }).execute(
        request({ schema, options: { temperature: 0.2, max_tokens: 100, seed: 7, stop: ["END"] } }),
      ),
    );
    const body = fake.requests[0]!.body;
    expect(body.response_format).toEqual({ type: "json_schema", json_schema: { name: "output", schema } });
    expect(body).toMatchObject({ temperature: 0.2, max_completion_tokens: 100, seed: 7, stop: ["END"] });
    expect(body.max_tokens).toBeUndefined();
  });

  it("keeps max_tokens for compatible endpoints", async () => {
    await collect(model().execute(request({ options: { max_tokens: 50 } })));
    expect(fake.requests[0]!.body.max_tokens).toBe(50);
  });

  it("sends image attachments as data URLs (bytes or a file read at execute time) or URLs", async () => {
    const dir = await mkdtemp(join(tmpdir(), "switchboard-openai-"));
    const path = join(dir, "pixel.png");
    await writeFile(path, Buffer.from([1, 2, 3]));
    await collect(
      model().execute(
        request({
          prompt: "Describe",
          attachments: [
            { type: "image/png", content: new Uint8Array([0x89, 0x50, 0x4e, 0x47]) },
            { type: "image/jpeg", url: "https://example.com/cat.jpg" },
            { type: "image/png", path },
          ],
        }),
      ),
    );
    expect(fake.requests[0]!.body.messages[0].content).toEqual([
      { type: "text", text: "Describe" },
      { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw==" } },
      { type: "image_url", image_url: { url: "https://example.com/cat.jpg" } },
      { type: "image_url", image_url: { url: "data:image/png;base64,AQID" } },
    ]);
  });

  it("fails with INVALID_ATTACHMENT for a missing file, before any request", async () => {
    const error = await failure(
      model().execute(
        request({ attachments: [{ type: "image/png", path: "/nonexistent/switchboard.png" }] }),
      ),
    );
    expect(error.code).toBe("INVALID_ATTACHMENT");
    expect(fake.requestCount).toBe(0);
  });
});

describe("OpenAI provider: failures and retries", () => {
  it("maps 401 to PROVIDER_AUTH without retrying and without leaking the key", async () => {
    fake.enqueue({ status: 401, message: `Incorrect API key provided: ${KEY}. Find your key at platform.` });
    const error = await failure(model().execute(request()));

    expect(error.code).toBe("PROVIDER_AUTH");
    expect(error.details).toEqual({ status: 401, provider: "openai", model: "gpt-test" });
    expect(error.retryable).toBe(false);
    expect(error.message).not.toContain(KEY);
    expect(error.message).not.toContain("0123456789abcdef");
    expect(error.message).toContain("Incorrect API key provided");
    expect(error.message).toContain("switchboard keys set openai");
    expect(error.message).toContain("OPENAI_API_KEY");
    expect(fake.requestCount).toBe(1);
  });

  it("waits for retry-after on 429, then succeeds", async () => {
    fake.enqueue(
      { status: 429, message: "Rate limit reached", headers: { "retry-after": "1" } },
      { text: "finally" },
    );
    const started = performance.now();
    const parts = await collect(model({ http: { retryBaseDelayMs: 5 } }).execute(request()));

    expect(performance.now() - started).toBeGreaterThanOrEqual(950);
    expect(textOf(parts)).toBe("finally");
    expect(fake.requestCount).toBe(2);
  });

  it("retries a 500, then succeeds", async () => {
    fake.enqueue({ status: 500, message: "The server had an error" }, { text: "recovered" });
    const parts = await collect(model().execute(request()));
    expect(textOf(parts)).toBe("recovered");
    expect(fake.requestCount).toBe(2);
  });

  it("fails with a retryable PROVIDER_ERROR once retries of a 503 are exhausted", async () => {
    fake.enqueue(
      { status: 503, message: "Overloaded" },
      { status: 503 },
      { status: 503, message: "Still overloaded" },
    );
    const error = await failure(model().execute(request()));

    expect(error.code).toBe("PROVIDER_ERROR");
    expect(error.retryable).toBe(true);
    expect(error.details).toEqual({ status: 503, provider: "openai", model: "gpt-test" });
    expect(error.message).toContain("Still overloaded");
    expect(fake.requestCount).toBe(3);
  });

  it("fails with RATE_LIMITED when 429s persist", async () => {
    fake.enqueue({ status: 429 }, { status: 429 }, { status: 429, message: "quota" });
    const error = await failure(model({ http: { ...FAST_RETRIES, maxRetries: 2 } }).execute(request()));
    expect(error.code).toBe("RATE_LIMITED");
    expect(error.retryable).toBe(true);
    expect(error.httpStatus).toBe(429);
  });

  it("does not wait for a retry-after beyond the longest allowed delay", async () => {
    fake.enqueue({ status: 429, headers: { "retry-after": "3600" } });
    const error = await failure(model().execute(request()));
    expect(error.code).toBe("RATE_LIMITED");
    expect(fake.requestCount).toBe(1);
  });

  it("does not retry a 400 and carries the provider's message", async () => {
    fake.enqueue({ status: 400, message: "Invalid value for 'temperature'" });
    const error = await failure(model().execute(request()));
    expect(error.code).toBe("PROVIDER_ERROR");
    expect(error.retryable).toBe(false);
    expect(error.message).toContain("Invalid value for 'temperature'");
    expect(fake.requestCount).toBe(1);
  });

  it("retries connection errors and then fails with a retryable PROVIDER_ERROR", async () => {
    const closed = await startFakeOpenAI();
    await closed.close();
    const error = await failure(model({ baseUrl: closed.url }).execute(request()));
    expect(error.code).toBe("PROVIDER_ERROR");
    expect(error.retryable).toBe(true);
  });

  it("turns a stream cut mid-way into STREAM_INTERRUPTED after the chunks already received", async () => {
    fake.enqueue({ text: "one two three four five", cutAfter: 3 });
    const parts: StreamPart[] = [];
    let caught: unknown;
    try {
      for await (const part of model().execute(request())) parts.push(part);
    } catch (error) {
      caught = error;
    }
    expect(isSwitchboardError(caught, "STREAM_INTERRUPTED")).toBe(true);
    expect((caught as SwitchboardError).retryable).toBe(true);
    expect(textOf(parts)).toBe("one two ");
    expect(parts.some((part) => part.type === "finish")).toBe(false);
  });

  it("treats a stream that ends cleanly without [DONE] or a finish reason as interrupted", async () => {
    fake.enqueue({ text: "one two three", cutAfter: 2, cutMode: "end" });
    const error = await failure(model().execute(request()));
    expect(error.code).toBe("STREAM_INTERRUPTED");
  });

  it("treats a truncated non-streamed body as interrupted", async () => {
    fake.enqueue({ text: "a long answer", cutAfter: 0 });
    const error = await failure(model().execute(request({ stream: false })));
    expect(error.code).toBe("STREAM_INTERRUPTED");
  });

  it("surfaces an error chunk inside the stream", async () => {
    fake.enqueue({ text: "partial", streamError: { type: "server_error", message: "upstream died" } });
    const error = await failure(model().execute(request()));
    expect(error.code).toBe("PROVIDER_ERROR");
    expect(error.message).toContain("upstream died");
  });

  it("stops with ABORTED when the caller aborts mid-stream", async () => {
    fake.enqueue({ text: "a b c d e f g h", chunkDelayMs: 100 });
    const controller = new AbortController();
    const parts: StreamPart[] = [];
    let caught: unknown;
    try {
      for await (const part of model().execute(request({ signal: controller.signal }))) {
        parts.push(part);
        if (part.type === "text") controller.abort();
      }
    } catch (error) {
      caught = error;
    }
    expect(isSwitchboardError(caught, "ABORTED")).toBe(true);
    expect(textOf(parts)).toBe("a ");
  });

  it("stops waiting for a retry at once when aborted", async () => {
    fake.enqueue({ status: 429, headers: { "retry-after": "20" } });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = performance.now();
    const error = await failure(
      model({ http: { maxRetryDelayMs: 60_000 } }).execute(request({ signal: controller.signal })),
    );
    expect(error.code).toBe("ABORTED");
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it("fails with TIMEOUT when the model's timeout elapses", async () => {
    fake.enqueue({ text: "too late", delayMs: 2000 });
    const slow = await registeredModel(model({ timeoutMs: 150 }));
    const error = await responseFailure(slow.prompt("Hello", { key: KEY }));
    expect(error.code).toBe("TIMEOUT");
    expect(error.message).toBe(
      "The request to openai for model gpt-test timed out after 150 ms (the model's timeout; pass timeoutMs to change it).",
    );
  });
});

describe("OpenAI plugins", () => {
  async function registered(plugin: ReturnType<typeof openaiPlugin>): Promise<ModelDefinition[]> {
    const models: ModelDefinition[] = [];
    const seen: RegisteredModel[] = [];
    await plugin.registerModels?.({ register: (definition) => models.push(definition), models: seen });
    return models;
  }

  it("registers the OpenAI models, reading OPENAI_BASE_URL at registration", async () => {
    const plugin = openaiPlugin({ http: FAST_RETRIES });
    const previous = process.env.OPENAI_BASE_URL;
    process.env.OPENAI_BASE_URL = fake.url;
    let models: ModelDefinition[];
    try {
      models = await registered(plugin);
    } finally {
      if (previous === undefined) delete process.env.OPENAI_BASE_URL;
      else process.env.OPENAI_BASE_URL = previous;
    }
    expect(plugin.name).toBe("openai");
    expect(models.map((definition) => definition.id)).toEqual(
      expect.arrayContaining([
        "gpt-5.4",
        "gpt-5.4-mini",
        "gpt-5.4-nano",
        "gpt-4.1",
        "gpt-4o-mini",
        "o3",
        "o4-mini",
      ]),
    );
    // OpenAI serves the pro models on the Responses API only: not registered on Chat Completions.
    expect(models.map((definition) => definition.id)).not.toContain("gpt-5.4-pro");
    const gpt = models.find((definition) => definition.id === "gpt-4o") as AsyncModelDefinition;
    expect(gpt).toMatchObject({ needsKey: "openai", keyEnvVar: "OPENAI_API_KEY", provider: "openai" });
    expect(gpt.capabilities).toEqual({
      streaming: true,
      tools: true,
      schema: true,
      attachmentTypes: ["image/png", "image/jpeg", "image/gif", "image/webp"],
    });
    expect(gpt.options?.safeParse({ temperature: "0.5" }).data).toEqual({ temperature: 0.5 });

    await collect(gpt.execute(request({ modelId: "gpt-4o", options: { max_tokens: 10 } })));
    expect(fake.requests[0]!.body).toMatchObject({ model: "gpt-4o", max_completion_tokens: 10 });
  });

  it("registers an OpenAI-compatible endpoint from configuration", async () => {
    const models = await registered(
      openaiCompatiblePlugin({
        name: "ollama",
        baseUrl: fake.url,
        models: [{ id: "local-small", name: "llama3.2:3b", aliases: ["small"] }, { id: "qwen3:8b" }],
      }),
    );
    expect(models.map((definition) => [definition.id, definition.provider, definition.aliases])).toEqual([
      ["local-small", "ollama", ["small"]],
      ["qwen3:8b", "ollama", undefined],
    ]);
    expect(models[0]!.needsKey).toBeUndefined();
    const local = models[0] as AsyncModelDefinition;
    const parts = await collect(
      local.execute(request({ modelId: "local-small", key: undefined, prompt: "ping" })),
    );
    expect(textOf(parts)).toBe("ping");
    expect(fake.requests[0]!.body.model).toBe("llama3.2:3b");
  });
});

describe("readServerSentEvents", () => {
  function streamOf(...chunks: string[]): ReadableStream<Uint8Array> {
    const encoder = new TextEncoder();
    return new ReadableStream({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
        controller.close();
      },
    });
  }

  async function events(...chunks: string[]) {
    const result = [];
    for await (const event of readServerSentEvents(streamOf(...chunks))) result.push(event);
    return result;
  }

  it("reassembles events and lines split across chunks", async () => {
    expect(await events('data: {"a"', ":1}\n", "\ndata: two\n\n")).toEqual([
      { data: '{"a":1}' },
      { data: "two" },
    ]);
  });

  it("handles CRLF split between chunks, CR-only lines, names, comments and multi-line data", async () => {
    expect(
      await events(
        ": keep-alive\r\n\r\nevent: ping\r",
        "\ndata: a\r\ndata: b\r\n\r\n",
        "event: x\rdata:c\r\r",
      ),
    ).toEqual([
      { event: "ping", data: "a\nb" },
      { event: "x", data: "c" },
    ]);
  });

  it("splits a multi-byte character across chunks correctly", async () => {
    const bytes = new TextEncoder().encode("data: héllo\n\n");
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.slice(0, 8));
        controller.enqueue(bytes.slice(8));
        controller.close();
      },
    });
    const result = [];
    for await (const event of readServerSentEvents(stream)) result.push(event);
    expect(result).toEqual([{ data: "héllo" }]);
  });

  it("skips events without data, delivers a complete last event, drops a partial last line", async () => {
    expect(await events("event: empty\n\ndata: last\n")).toEqual([{ data: "last" }]);
    expect(await events("data: whole\n\ndata: part")).toEqual([{ data: "whole" }]);
  });
});
