/**
 * The official SDKs as clients of a gateway listening on a loopback port, fronting echo and the
 * fake OpenAI and Anthropic servers (which speak the real wire formats).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import Anthropic from "@anthropic-ai/sdk";
import { type FakeServer, startFakeAnthropic, startFakeOpenAI } from "@switchboard/core/testing";
import type { HubConfigInput } from "@switchboard/hub";
import type { UsageRecord } from "@switchboard/store";
import { generateText, jsonSchema, streamText, tool } from "ai";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./helpers.ts";

let fakeOpenAI: FakeServer;
let fakeAnthropic: FakeServer;
let slowUpstream: SlowUpstream;
let gateway: TestServer;
let token: string;

/** An OpenAI-compatible upstream that streams one word every 50 ms and notes a client that hangs up. */
interface SlowUpstream {
  url: string;
  /** Resolves when a client closed its connection before the stream ended. */
  disconnected: Promise<void>;
  close(): Promise<void>;
}

async function startSlowUpstream(): Promise<SlowUpstream> {
  let noteDisconnect: () => void = () => undefined;
  const disconnected = new Promise<void>((resolve) => {
    noteDisconnect = resolve;
  });
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { "content-type": "text/event-stream" });
    let sent = 0;
    const chunk = (delta: Record<string, unknown>) =>
      `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: "slow", choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`;
    res.write(chunk({ role: "assistant", content: "" }));
    const timer = setInterval(() => {
      sent += 1;
      res.write(chunk({ content: `word${sent} ` }));
      if (sent === 200) {
        clearInterval(timer);
        res.end("data: [DONE]\n\n");
      }
    }, 50);
    res.on("close", () => {
      clearInterval(timer);
      if (sent < 200) noteDisconnect();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    disconnected,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

beforeAll(async () => {
  fakeOpenAI = await startFakeOpenAI();
  fakeAnthropic = await startFakeAnthropic();
  slowUpstream = await startSlowUpstream();
  const config: HubConfigInput = {
    default_model: "echo",
    require_keys: false,
    providers: {
      upstream: {
        type: "openai",
        base_url: fakeOpenAI.url,
        max_retries: 0,
        models: [{ id: "up-gpt", name: "gpt-4.1", tools: true, schema: true }],
      },
      claude: {
        type: "anthropic",
        base_url: fakeAnthropic.url,
        max_retries: 0,
        models: [{ id: "up-claude", name: "claude-sonnet-4", tools: true, schema: true }],
      },
      slow: { type: "openai", base_url: slowUpstream.url, max_retries: 0, models: ["slow-model"] },
    },
    purposes: {
      chat: { model: "up-gpt", models: ["up-gpt", "echo"] },
      claude: { model: "up-claude" },
      slow: { model: "slow-model" },
      capped: { model: "echo" },
      resilient: { model: "up-gpt", models: ["up-gpt", "echo"], fallbacks: ["echo"] },
    },
    usage: { log_prompts: true },
    accounting: {
      pricing: {
        echo: { input: 0, output: 250 },
        "up-gpt": { input: 1, output: 1 },
        "up-claude": { input: 1, output: 1 },
        "slow-model": { input: 1, output: 1 },
      },
      reservations: { purposes: { capped: 0.01 } },
    },
    limits: {
      "capped-daily": { scope: "actor", window: "calendar-day", amount_usd: 0.001, purpose: "capped" },
      "slow-cap": { scope: "instance", window: "rolling-24h", amount_usd: 10, purpose: "slow" },
    },
  };
  gateway = await startTestServer(config);
  token = await gateway.token("sdk-app", {
    actor: "sdk-app",
    purposes: ["chat", "claude", "slow", "capped", "resilient"],
  });
});

afterAll(async () => {
  await gateway?.close();
  await Promise.all([fakeOpenAI?.close(), fakeAnthropic?.close(), slowUpstream?.close()]);
});

beforeEach(() => {
  fakeOpenAI.reset();
  fakeAnthropic.reset();
});

function openai(apiKey = token): OpenAI {
  return new OpenAI({ apiKey, baseURL: `${gateway.url}/v1`, maxRetries: 0 });
}

function anthropic(apiKey = token): Anthropic {
  return new Anthropic({ apiKey, baseURL: gateway.url, maxRetries: 0 });
}

describe("the openai SDK", () => {
  it("gets a non-streamed answer routed by purpose, with the answering model", async () => {
    fakeOpenAI.enqueue({ text: "Hello from upstream", usage: { input: 7, output: 3 } });
    const completion = await openai().chat.completions.create({
      model: "purpose:chat",
      messages: [{ role: "user", content: "Say hello" }],
    });
    expect(completion.choices[0]?.message.content).toBe("Hello from upstream");
    expect(completion.model).toBe("up-gpt");
    expect(completion.usage).toMatchObject({ prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 });
    expect(fakeOpenAI.requests[0]?.body.messages.at(-1)).toEqual({ role: "user", content: "Say hello" });
  });

  it("streams through the chat.completions.stream() helper", async () => {
    fakeOpenAI.enqueue({ text: "one two three", usage: { input: 2, output: 3 } });
    const stream = openai().chat.completions.stream({
      model: "purpose:chat",
      messages: [{ role: "user", content: "count" }],
      stream_options: { include_usage: true },
    });
    const deltas: string[] = [];
    stream.on("content", (delta) => deltas.push(delta));
    const final = await stream.finalChatCompletion();
    expect(final.choices[0]?.message.content).toBe("one two three");
    expect(final.choices[0]?.finish_reason).toBe("stop");
    expect(deltas.join("")).toBe("one two three");
    expect(final.usage).toMatchObject({ prompt_tokens: 2, completion_tokens: 3 });
  });

  it("runs a full tool-call round trip", async () => {
    fakeOpenAI.enqueue({
      toolCalls: [{ id: "call_7", name: "read_file", arguments: { path: "README.md" } }],
    });
    const client = openai();
    const tools = [
      {
        type: "function" as const,
        function: {
          name: "read_file",
          description: "Read a file",
          parameters: { type: "object", properties: { path: { type: "string" } }, required: ["path"] },
        },
      },
    ];
    const first = await client.chat.completions.create({
      model: "purpose:chat",
      messages: [{ role: "user", content: "How big is README.md?" }],
      tools,
    });
    const call = first.choices[0]?.message.tool_calls?.[0];
    expect(first.choices[0]?.finish_reason).toBe("tool_calls");
    expect(call).toMatchObject({ id: "call_7", type: "function", function: { name: "read_file" } });
    expect(JSON.parse(call?.type === "function" ? call.function.arguments : "")).toEqual({
      path: "README.md",
    });

    fakeOpenAI.enqueue({ text: "It is 42 bytes." });
    const second = await client.chat.completions.create({
      model: "purpose:chat",
      messages: [
        { role: "user", content: "How big is README.md?" },
        first.choices[0]?.message as OpenAI.ChatCompletionMessageParam,
        { role: "tool", tool_call_id: "call_7", content: "42 bytes" },
      ],
      tools,
    });
    expect(second.choices[0]?.message.content).toBe("It is 42 bytes.");
    const upstream = fakeOpenAI.requests[1]?.body.messages;
    expect(upstream.slice(-2)).toEqual([
      {
        role: "assistant",
        content: null,
        tool_calls: [
          {
            id: "call_7",
            type: "function",
            function: { name: "read_file", arguments: '{"path":"README.md"}' },
          },
        ],
      },
      { role: "tool", tool_call_id: "call_7", content: "42 bytes" },
    ]);
  });

  it("streams a tool call that the stream() helper assembles", async () => {
    fakeOpenAI.enqueue({ toolCalls: [{ id: "call_8", name: "read_file", arguments: { path: "a.txt" } }] });
    const stream = openai().chat.completions.stream({
      model: "purpose:chat",
      messages: [{ role: "user", content: "Read a.txt" }],
      tools: [{ type: "function", function: { name: "read_file", parameters: { type: "object" } } }],
    });
    const final = await stream.finalChatCompletion();
    expect(final.choices[0]?.finish_reason).toBe("tool_calls");
    expect(final.choices[0]?.message.tool_calls).toEqual([
      { id: "call_8", type: "function", function: { name: "read_file", arguments: '{"path":"a.txt"}' } },
    ]);
  });

  it("passes a json_schema response format and parses the answer", async () => {
    fakeOpenAI.enqueue({ text: '{"bytes": 42}' });
    const schema = {
      type: "object",
      properties: { bytes: { type: "integer" } },
      required: ["bytes"],
      additionalProperties: false,
    };
    const completion = await openai().chat.completions.parse({
      model: "purpose:chat",
      messages: [{ role: "user", content: "How big?" }],
      response_format: { type: "json_schema", json_schema: { name: "answer", strict: true, schema } },
    });
    expect(completion.choices[0]?.message.parsed).toEqual({ bytes: 42 });
    expect(fakeOpenAI.requests[0]?.body.response_format).toMatchObject({
      type: "json_schema",
      json_schema: { schema },
    });
  });

  it("gets 401, 403 and 429 as the SDK's own error classes", async () => {
    await expect(
      openai("sb_wrong").chat.completions.create({
        model: "echo",
        messages: [{ role: "user", content: "x" }],
      }),
    ).rejects.toBeInstanceOf(OpenAI.AuthenticationError);

    const forbidden = openai().chat.completions.create({
      model: "up-claude",
      messages: [{ role: "user", content: "x" }],
    });
    await expect(forbidden).rejects.toBeInstanceOf(OpenAI.PermissionDeniedError);

    const capped = await openai()
      .chat.completions.create({ model: "purpose:capped", messages: [{ role: "user", content: "x" }] })
      .catch((error: unknown) => error);
    expect(capped).toBeInstanceOf(OpenAI.RateLimitError);
    expect((capped as InstanceType<typeof OpenAI.RateLimitError>).message).toMatch(
      /Limit "capped-daily" reached/,
    );
    expect((capped as InstanceType<typeof OpenAI.RateLimitError>).headers.get("x-should-retry")).toBe(
      "false",
    );
  });

  it("falls back when the first model fails before answering, and names the model that answered", async () => {
    fakeOpenAI.enqueue({ status: 503, message: "Overloaded" }, { status: 503, message: "Overloaded" });
    const { data, response } = await openai()
      .chat.completions.create({ model: "purpose:resilient", messages: [{ role: "user", content: "hi" }] })
      .withResponse();
    expect(data.model).toBe("echo");
    expect(response.headers.get("x-switchboard-model")).toBe("echo");
    const stream = await openai()
      .chat.completions.create({
        model: "purpose:resilient",
        messages: [{ role: "user", content: "hi" }],
        stream: true,
      })
      .withResponse();
    expect(stream.response.headers.get("x-switchboard-model")).toBe("echo");
    const models = new Set<string>();
    for await (const chunk of stream.data) models.add(chunk.model);
    expect([...models]).toEqual(["echo"]);
    expect(fakeOpenAI.requestCount).toBe(2);
  });

  it("raises an error when the upstream stream is cut mid-answer", async () => {
    fakeOpenAI.enqueue({ text: "one two three four five", cutAfter: 3 });
    const stream = await openai().chat.completions.create({
      model: "purpose:chat",
      messages: [{ role: "user", content: "count" }],
      stream: true,
    });
    const received: string[] = [];
    const failure = await (async () => {
      for await (const chunk of stream) received.push(chunk.choices[0]?.delta.content ?? "");
    })().catch((error: unknown) => error);
    expect(received.join("")).toBe("one two ");
    expect(failure).toBeInstanceOf(OpenAI.APIError);
    expect((failure as Error).message).toMatch(/stream|connection|terminated/i);
  });

  it("aborts the upstream request when the client goes away", async () => {
    const controller = new AbortController();
    const stream = await openai().chat.completions.create(
      { model: "purpose:slow", messages: [{ role: "user", content: "talk" }], stream: true },
      { signal: controller.signal },
    );
    const received: string[] = [];
    await (async () => {
      for await (const chunk of stream) {
        received.push(chunk.choices[0]?.delta.content ?? "");
        if (received.join("")) controller.abort();
      }
    })().catch(() => undefined);
    expect(received.join("")).toBe("word1 ");
    await slowUpstream.disconnected;
    // The usage row records what was delivered, as an aborted response.
    await gateway.hub.flush();
    let row: UsageRecord | undefined;
    for (let attempt = 0; attempt < 50 && !row; attempt++) {
      const rows = await (await gateway.hub.store()).listUsage({ limit: 20 });
      row = rows.find((candidate) => candidate.modelAnswered === "slow-model");
      if (!row) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(row?.actorId).toBe("sdk-app");
    // The gateway may have received a word or two more than the client read before it hung up.
    expect(row?.response).toMatch(/^word1 /);
    // What was delivered is paid for: the limit holds a charge, not a rollback.
    const spent = await (await gateway.hub.store()).spentInWindow(
      "limit:slow-cap",
      new Date(Date.now() - 60_000),
    );
    expect(spent).toBeGreaterThan(0n);
    expect(row?.costNanocents).toBe(spent);
    expect(row?.status).toBe("aborted");
  });
});

describe("the Anthropic SDK", () => {
  it("gets a non-streamed message routed by purpose", async () => {
    fakeAnthropic.enqueue({ text: "Hello from Claude", usage: { input: 5, output: 3 } });
    const message = await anthropic().messages.create({
      model: "purpose:claude",
      max_tokens: 100,
      system: "Be terse.",
      messages: [{ role: "user", content: "Say hello" }],
    });
    expect(message.content).toEqual([{ type: "text", text: "Hello from Claude" }]);
    expect(message.model).toBe("up-claude");
    expect(message.stop_reason).toBe("end_turn");
    expect(message.usage).toMatchObject({ input_tokens: 5, output_tokens: 3 });
    expect(fakeAnthropic.requests[0]?.body).toMatchObject({ system: "Be terse.", max_tokens: 100 });
  });

  it("streams through messages.stream()", async () => {
    fakeAnthropic.enqueue({ text: "one two three", usage: { input: 2, output: 3 } });
    const stream = anthropic().messages.stream({
      model: "purpose:claude",
      max_tokens: 100,
      messages: [{ role: "user", content: "count" }],
    });
    const final = await stream.finalMessage();
    expect(final.content).toEqual([{ type: "text", text: "one two three" }]);
    expect(final.usage).toMatchObject({ input_tokens: 2, output_tokens: 3 });
  });

  it("runs a full tool-call round trip", async () => {
    fakeAnthropic.enqueue({
      toolCalls: [{ id: "toolu_7", name: "read_file", arguments: { path: "README.md" } }],
    });
    const client = anthropic();
    const tools = [
      {
        name: "read_file",
        description: "Read a file",
        input_schema: { type: "object" as const, properties: { path: { type: "string" } } },
      },
    ];
    const first = await client.messages.create({
      model: "purpose:claude",
      max_tokens: 100,
      messages: [{ role: "user", content: "How big is README.md?" }],
      tools,
    });
    expect(first.stop_reason).toBe("tool_use");
    expect(first.content).toContainEqual({
      type: "tool_use",
      id: "toolu_7",
      name: "read_file",
      input: { path: "README.md" },
    });
    fakeAnthropic.enqueue({ text: "It is 42 bytes." });
    const second = await client.messages.create({
      model: "purpose:claude",
      max_tokens: 100,
      tools,
      messages: [
        { role: "user", content: "How big is README.md?" },
        { role: "assistant", content: first.content },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_7", content: "42 bytes" }] },
      ],
    });
    expect(second.content).toEqual([{ type: "text", text: "It is 42 bytes." }]);
    const upstream = fakeAnthropic.requests[1]?.body.messages;
    expect(upstream.at(-1)).toMatchObject({
      role: "user",
      content: [{ type: "tool_result", tool_use_id: "toolu_7", content: "42 bytes" }],
    });
  });

  it("reaches a model behind the OpenAI wire; stop_sequences becomes that model's stop", async () => {
    fakeOpenAI.enqueue({ text: "Crossed over", usage: { input: 2, output: 2 } });
    const message = await anthropic().messages.create({
      model: "purpose:chat",
      max_tokens: 50,
      stop_sequences: ["END"],
      system: "Be terse.",
      messages: [{ role: "user", content: "Hello" }],
    });
    expect(message.content).toEqual([{ type: "text", text: "Crossed over" }]);
    expect(message.model).toBe("up-gpt");
    expect(fakeOpenAI.requests[0]?.body).toMatchObject({
      stop: ["END"],
      max_tokens: 50,
      messages: [
        { role: "system", content: "Be terse." },
        { role: "user", content: "Hello" },
      ],
    });
  });

  it("streams a tool call that messages.stream() assembles", async () => {
    fakeAnthropic.enqueue({
      text: "Reading.",
      toolCalls: [{ id: "toolu_8", name: "read_file", arguments: { path: "a.txt" } }],
    });
    const final = await anthropic()
      .messages.stream({
        model: "purpose:claude",
        max_tokens: 100,
        messages: [{ role: "user", content: "Read a.txt" }],
        tools: [{ name: "read_file", input_schema: { type: "object" } }],
      })
      .finalMessage();
    expect(final.stop_reason).toBe("tool_use");
    expect(final.content).toEqual([
      { type: "text", text: "Reading." },
      { type: "tool_use", id: "toolu_8", name: "read_file", input: { path: "a.txt" } },
    ]);
  });

  it("gets 401, 403 and 429 as the SDK's own error classes", async () => {
    const request = { max_tokens: 10, messages: [{ role: "user" as const, content: "x" }] };
    await expect(anthropic("sb_wrong").messages.create({ model: "echo", ...request })).rejects.toBeInstanceOf(
      Anthropic.AuthenticationError,
    );
    await expect(anthropic().messages.create({ model: "up-claude", ...request })).rejects.toBeInstanceOf(
      Anthropic.PermissionDeniedError,
    );
    const capped = await anthropic()
      .messages.create({ model: "purpose:capped", ...request })
      .catch((error: unknown) => error);
    expect(capped).toBeInstanceOf(Anthropic.RateLimitError);
    expect((capped as Error).message).toMatch(/Limit \\"capped-daily\\" reached/);
  });

  it("raises an error when the upstream stream is cut mid-answer", async () => {
    fakeAnthropic.enqueue({ text: "one two three four five", cutAfter: 4 });
    const stream = anthropic().messages.stream({
      model: "purpose:claude",
      max_tokens: 100,
      messages: [{ role: "user", content: "count" }],
    });
    const failure = await stream.finalMessage().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(Anthropic.APIError);
  });
});

describe("the AI SDK's OpenAI-compatible provider", () => {
  function provider() {
    return createOpenAICompatible({
      name: "switchboard",
      baseURL: `${gateway.url}/v1`,
      apiKey: token,
      includeUsage: true,
    });
  }

  it("generates and streams text", async () => {
    fakeOpenAI.enqueue({ text: "Hello there" }, { text: "one two three" });
    const generated = await generateText({
      model: provider()("purpose:chat"),
      prompt: "Say hello",
      maxRetries: 0,
    });
    expect(generated.text).toBe("Hello there");
    const streamed = streamText({ model: provider()("purpose:chat"), prompt: "count", maxRetries: 0 });
    let text = "";
    for await (const delta of streamed.textStream) text += delta;
    expect(text).toBe("one two three");
    expect(await streamed.finishReason).toBe("stop");
  });

  it("returns tool calls for the caller to run", async () => {
    fakeOpenAI.enqueue({ toolCalls: [{ id: "call_9", name: "weather", arguments: { city: "Paris" } }] });
    const result = await generateText({
      model: provider()("purpose:chat"),
      prompt: "Weather in Paris?",
      maxRetries: 0,
      tools: {
        weather: tool({
          description: "Weather in a city",
          inputSchema: jsonSchema<{ city: string }>({
            type: "object",
            properties: { city: { type: "string" } },
          }),
        }),
      },
    });
    expect(result.toolCalls).toMatchObject([
      { toolCallId: "call_9", toolName: "weather", input: { city: "Paris" } },
    ]);
    expect(result.finishReason).toBe("tool-calls");
  });

  it("reports a cut upstream stream as an error", async () => {
    fakeOpenAI.enqueue({ text: "one two three four five", cutAfter: 3 });
    const errors: unknown[] = [];
    const streamed = streamText({
      model: provider()("purpose:chat"),
      prompt: "count",
      maxRetries: 0,
      onError: ({ error }) => {
        errors.push(error);
      },
    });
    for await (const _delta of streamed.textStream) {
      // Drain.
    }
    expect(await streamed.finishReason).toBe("error");
    expect(errors).toHaveLength(1);
  });
});
