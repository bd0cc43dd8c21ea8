import { isSwitchboardError, SwitchboardError } from "@switchboard/core";
import { describe, expect, it } from "vitest";
import { toProblem } from "../src/errors.ts";
import { AnthropicEventEncoder, anthropicMessage, parseAnthropicRequest } from "../src/gateway/anthropic.ts";
import { OpenAIChunkEncoder, openaiCompletion, parseOpenAIRequest } from "../src/gateway/openai.ts";
import { parseSse } from "./helpers.ts";

function invalidInput(run: () => unknown): { message: string; param: unknown } {
  try {
    run();
  } catch (error) {
    if (isSwitchboardError(error)) {
      expect(error.code).toBe("INVALID_INPUT");
      return { message: error.message, param: error.details.param };
    }
    throw error;
  }
  throw new Error("expected INVALID_INPUT");
}

describe("OpenAI request → chat request", () => {
  it("replays system, user, assistant tool calls and tool results as turns", () => {
    const request = parseOpenAIRequest({
      model: "purpose:extract",
      messages: [
        { role: "system", content: "Be terse." },
        {
          role: "user",
          content: [
            { type: "text", text: "How big is README.md?" },
            { type: "image_url", image_url: { url: "data:image/png;base64,aGVsbG8=", detail: "auto" } },
          ],
        },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            {
              id: "call_1",
              type: "function",
              function: { name: "read_file", arguments: '{"path":"README.md"}' },
            },
          ],
        },
        { role: "tool", tool_call_id: "call_1", content: "42 bytes" },
      ],
      tools: [
        {
          type: "function",
          function: { name: "read_file", description: "Read a file", parameters: { type: "object" } },
        },
      ],
      tool_choice: "auto",
      response_format: { type: "json_schema", json_schema: { name: "answer", schema: { type: "object" } } },
      max_completion_tokens: 256,
      temperature: 0.2,
      stop: ["\n\n"],
      user: "user-123",
      n: 1,
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(request.model).toBe("purpose:extract");
    expect(request.system).toBe("Be terse.");
    expect(request.turns).toEqual([
      {
        role: "user",
        text: "How big is README.md?",
        attachments: [{ content: new Uint8Array(Buffer.from("hello")), type: "image/png" }],
        toolResults: [],
      },
      {
        role: "assistant",
        text: "",
        toolCalls: [{ id: "call_1", name: "read_file", arguments: { path: "README.md" } }],
      },
      {
        role: "user",
        text: "",
        attachments: [],
        toolResults: [{ toolCallId: "call_1", name: "read_file", output: "42 bytes" }],
      },
    ]);
    expect(request.tools).toEqual([
      { name: "read_file", description: "Read a file", inputSchema: { type: "object" } },
    ]);
    expect(request.toolChoice).toBe("auto");
    expect(request.schema).toEqual({ type: "object" });
    expect(request.maxTokens).toBe(256);
    expect(request.options).toEqual({ temperature: 0.2, stop: ["\n\n"] });
    expect(request.stream).toBe(true);
    expect(request.includeUsage).toBe(true);
  });

  it("takes max_tokens when max_completion_tokens is absent, and json_object as an object schema", () => {
    const request = parseOpenAIRequest({
      model: "echo",
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 5,
      response_format: { type: "json_object" },
    });
    expect(request.maxTokens).toBe(5);
    expect(request.schema).toEqual({ type: "object" });
    expect(request.stream).toBe(false);
  });

  it("refuses n > 1 clearly", () => {
    const { message, param } = invalidInput(() =>
      parseOpenAIRequest({ model: "echo", n: 2, messages: [{ role: "user", content: "hi" }] }),
    );
    expect(param).toBe("n");
    expect(message).toMatch(/one choice/);
  });

  it("names the field at fault", () => {
    expect(invalidInput(() => parseOpenAIRequest({ messages: [] })).param).toBe("model");
    expect(invalidInput(() => parseOpenAIRequest({ model: "echo", messages: [] })).param).toBe("messages");
    expect(
      invalidInput(() => parseOpenAIRequest({ model: "echo", messages: [{ role: "robot", content: "x" }] }))
        .param,
    ).toBe("messages[0].role");
    expect(
      invalidInput(() =>
        parseOpenAIRequest({
          model: "echo",
          messages: [
            { role: "user", content: "x" },
            { role: "assistant", tool_calls: [{ id: "c", function: { name: "f", arguments: "{oops" } }] },
            { role: "tool", tool_call_id: "c", content: "r" },
          ],
        }),
      ).param,
    ).toBe("messages[1].tool_calls[0].function.arguments");
    expect(
      invalidInput(() =>
        parseOpenAIRequest({
          model: "echo",
          messages: [{ role: "tool", tool_call_id: "nope", content: "r" }],
        }),
      ).param,
    ).toBe("messages[0].tool_call_id");
    expect(
      invalidInput(() =>
        parseOpenAIRequest({
          model: "echo",
          messages: [
            { role: "user", content: "x" },
            { role: "assistant", content: "y" },
          ],
        }),
      ).param,
    ).toBe("messages");
  });

  it("keeps http image URLs as URLs (the operator decides whether they are fetched)", () => {
    const request = parseOpenAIRequest({
      model: "echo",
      messages: [
        { role: "user", content: [{ type: "image_url", image_url: { url: "https://example.com/cat.png" } }] },
      ],
    });
    expect(request.turns[0]).toMatchObject({ attachments: [{ url: "https://example.com/cat.png" }] });
    expect(
      invalidInput(() =>
        parseOpenAIRequest({
          model: "echo",
          messages: [
            { role: "user", content: [{ type: "image_url", image_url: { url: "file:///etc/passwd" } }] },
          ],
        }),
      ).param,
    ).toBe("messages[0].content[0].image_url.url");
  });
});

describe("OpenAI answers", () => {
  it("builds a completion object with tool calls and usage", () => {
    const body = openaiCompletion(
      { id: "chatcmpl-1", created: 1700000000, model: "echo" },
      {
        text: "",
        toolCalls: [{ id: "call_1", name: "read_file", arguments: { path: "README.md" } }],
        finish: "tool-calls",
        usage: { input: 60, output: 15, cachedInput: 10 },
      },
    );
    expect(body).toEqual({
      id: "chatcmpl-1",
      object: "chat.completion",
      created: 1700000000,
      model: "echo",
      choices: [
        {
          index: 0,
          logprobs: null,
          finish_reason: "tool_calls",
          message: {
            role: "assistant",
            content: null,
            refusal: null,
            tool_calls: [
              {
                id: "call_1",
                type: "function",
                function: { name: "read_file", arguments: '{"path":"README.md"}' },
              },
            ],
          },
        },
      ],
      usage: {
        prompt_tokens: 60,
        completion_tokens: 15,
        total_tokens: 75,
        prompt_tokens_details: { cached_tokens: 10 },
      },
    });
  });

  it("streams chunks the SDK helper accepts: role first, typed tool call, finish, usage, [DONE]", () => {
    const encoder = new OpenAIChunkEncoder({ id: "chatcmpl-1", created: 1, model: "echo" }, true);
    const text =
      encoder.text("Hel") +
      encoder.text("lo") +
      encoder.toolCall({ id: "call_1", name: "f", arguments: { a: 1 } }) +
      encoder.finish("tool-calls", { input: 2, output: 3 });
    const events = parseSse(text);
    expect(events.at(-1)?.data).toBe("[DONE]");
    const chunks = events.slice(0, -1).map((event) => JSON.parse(event.data));
    for (const chunk of chunks) {
      expect(chunk).toMatchObject({
        id: "chatcmpl-1",
        object: "chat.completion.chunk",
        created: 1,
        model: "echo",
      });
    }
    expect(chunks[0].choices[0].delta).toEqual({ role: "assistant", content: "Hel" });
    expect(chunks[0].usage).toBeNull();
    expect(chunks[1].choices[0].delta).toEqual({ content: "lo" });
    expect(chunks[2].choices[0].delta.tool_calls).toEqual([
      { index: 0, id: "call_1", type: "function", function: { name: "f", arguments: '{"a":1}' } },
    ]);
    expect(chunks[3].choices[0]).toEqual({
      index: 0,
      delta: {},
      logprobs: null,
      finish_reason: "tool_calls",
    });
    expect(chunks[4]).toMatchObject({
      choices: [],
      usage: { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 },
    });
    expect(chunks).toHaveLength(5);
  });

  it("leaves the usage chunk (and usage: null) out unless asked for", () => {
    const encoder = new OpenAIChunkEncoder({ id: "c", created: 1, model: "m" }, false);
    const events = parseSse(encoder.text("x") + encoder.finish("stop", { input: 1, output: 1 }));
    expect(events.map((event) => event.data.startsWith("{"))).toEqual([true, true, false]);
    expect(JSON.parse(events[0]?.data ?? "")).not.toHaveProperty("usage");
    expect(JSON.parse(events[1]?.data ?? "").choices[0].finish_reason).toBe("stop");
  });

  it("ends a failed stream with an error event nested under error, never [DONE]", () => {
    const encoder = new OpenAIChunkEncoder({ id: "c", created: 1, model: "m" }, false);
    const out = encoder.error(
      toProblem(new SwitchboardError("STREAM_INTERRUPTED", "The upstream stream was cut.")),
    );
    expect(out).not.toContain("[DONE]");
    const [event] = parseSse(out);
    expect(JSON.parse(event?.data ?? "")).toEqual({
      error: {
        message: "The upstream stream was cut.",
        type: "server_error",
        param: null,
        code: "stream_interrupted",
      },
    });
  });
});

describe("Anthropic request → chat request", () => {
  it("maps system blocks, images, tool_use and tool_result blocks", () => {
    const request = parseAnthropicRequest({
      model: "purpose:extract",
      max_tokens: 1024,
      system: [{ type: "text", text: "Be terse." }],
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "How big is README.md?" },
            { type: "image", source: { type: "base64", media_type: "image/png", data: "aGVsbG8=" } },
          ],
        },
        {
          role: "assistant",
          content: [
            { type: "text", text: "Reading it." },
            { type: "tool_use", id: "toolu_01", name: "read_file", input: { path: "README.md" } },
          ],
        },
        {
          role: "user",
          content: [{ type: "tool_result", tool_use_id: "toolu_01", content: "42 bytes", is_error: false }],
        },
      ],
      tools: [{ name: "read_file", description: "Read a file", input_schema: { type: "object" } }],
      tool_choice: { type: "any" },
      stop_sequences: ["END"],
      temperature: 0.2,
      metadata: { user_id: "user-123" },
      output_config: { format: { type: "json_schema", schema: { type: "object" } } },
      stream: true,
    });
    expect(request.system).toBe("Be terse.");
    expect(request.maxTokens).toBe(1024);
    expect(request.turns).toEqual([
      {
        role: "user",
        text: "How big is README.md?",
        attachments: [{ content: new Uint8Array(Buffer.from("hello")), type: "image/png" }],
        toolResults: [],
      },
      {
        role: "assistant",
        text: "Reading it.",
        toolCalls: [{ id: "toolu_01", name: "read_file", arguments: { path: "README.md" } }],
      },
      {
        role: "user",
        text: "",
        attachments: [],
        toolResults: [{ toolCallId: "toolu_01", name: "read_file", output: "42 bytes" }],
      },
    ]);
    expect(request.tools).toEqual([
      { name: "read_file", description: "Read a file", inputSchema: { type: "object" } },
    ]);
    expect(request.toolChoice).toBe("required");
    expect(request.schema).toEqual({ type: "object" });
    expect(request.options).toEqual({ stop_sequences: ["END"], temperature: 0.2 });
    expect(request.stream).toBe(true);
  });

  it("requires max_tokens, as Anthropic does", () => {
    expect(
      invalidInput(() =>
        parseAnthropicRequest({ model: "echo", messages: [{ role: "user", content: "hi" }] }),
      ).param,
    ).toBe("max_tokens");
  });

  it("refuses a tool_result that answers no earlier tool_use", () => {
    const { param, message } = invalidInput(() =>
      parseAnthropicRequest({
        model: "echo",
        max_tokens: 10,
        messages: [
          { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_x", content: "r" }] },
        ],
      }),
    );
    expect(param).toBe("messages[0].content[0].tool_use_id");
    expect(message).toMatch(/tool_use/);
  });
});

describe("Anthropic answers", () => {
  it("builds a message with content blocks and Anthropic's input count (cache reads excluded)", () => {
    expect(
      anthropicMessage(
        { id: "msg_1", model: "echo" },
        {
          text: "Let me read it.",
          toolCalls: [{ id: "toolu_1", name: "read_file", arguments: { path: "README.md" } }],
          finish: "tool-calls",
          usage: { input: 100, output: 84, cachedInput: 90, details: { cacheWrite: 5 } },
        },
      ),
    ).toEqual({
      id: "msg_1",
      type: "message",
      role: "assistant",
      model: "echo",
      content: [
        { type: "text", text: "Let me read it." },
        { type: "tool_use", id: "toolu_1", name: "read_file", input: { path: "README.md" } },
      ],
      stop_reason: "tool_use",
      stop_sequence: null,
      usage: {
        input_tokens: 5,
        output_tokens: 84,
        cache_creation_input_tokens: 5,
        cache_read_input_tokens: 90,
      },
    });
  });

  it("streams named events: message_start with usage, blocks, message_delta, message_stop", () => {
    const encoder = new AnthropicEventEncoder({ id: "msg_1", model: "echo" });
    const out =
      encoder.text("Hel") +
      encoder.text("lo") +
      encoder.toolCall({ id: "toolu_1", name: "f", arguments: { a: 1 } }) +
      encoder.finish("tool-calls", { input: 3, output: 4 });
    const events = parseSse(out);
    for (const event of events) expect(JSON.parse(event.data).type).toBe(event.event);
    expect(events.map((event) => event.event)).toEqual([
      "message_start",
      "content_block_start",
      "content_block_delta",
      "content_block_delta",
      "content_block_stop",
      "content_block_start",
      "content_block_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    const data = events.map((event) => JSON.parse(event.data));
    expect(data[0].message).toMatchObject({ id: "msg_1", role: "assistant", content: [], stop_reason: null });
    expect(data[0].message.usage).toMatchObject({ input_tokens: 0, output_tokens: 0 });
    expect(data[1]).toEqual({
      type: "content_block_start",
      index: 0,
      content_block: { type: "text", text: "" },
    });
    expect(data[2].delta).toEqual({ type: "text_delta", text: "Hel" });
    expect(data[5].content_block).toEqual({ type: "tool_use", id: "toolu_1", name: "f", input: {} });
    expect(data[6]).toMatchObject({ index: 1, delta: { type: "input_json_delta", partial_json: '{"a":1}' } });
    expect(data[8]).toMatchObject({
      delta: { stop_reason: "tool_use", stop_sequence: null },
      usage: { input_tokens: 3, output_tokens: 4 },
    });
  });

  it("ends a failed stream with event: error, never message_stop", () => {
    const encoder = new AnthropicEventEncoder({ id: "msg_1", model: "echo" });
    const out =
      encoder.text("partial") +
      encoder.error(toProblem(new SwitchboardError("STREAM_INTERRUPTED", "The upstream stream was cut.")));
    const events = parseSse(out);
    expect(events.map((event) => event.event)).not.toContain("message_stop");
    expect(events.at(-1)).toEqual({
      event: "error",
      data: JSON.stringify({
        type: "error",
        error: { type: "api_error", message: "The upstream stream was cut." },
      }),
    });
  });
});
