import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isSwitchboardError } from "../src/errors.ts";
import type { PromptOptions } from "../src/model.ts";
import { createAnthropicModel } from "../src/providers/anthropic.ts";
import { createOpenAIModel } from "../src/providers/openai.ts";
import type { HistoryMessage, ToolCall, ToolResult } from "../src/types.ts";
import { startFakeAnthropic } from "./fakes/anthropic-server.ts";
import type { FakeServer } from "./fakes/fake-server.ts";
import { startFakeOpenAI } from "./fakes/openai-server.ts";
import { echoRegistry, registeredModel } from "./helpers.ts";

const KEY = "sk-history-0123456789";

// biome-ignore lint/suspicious/noExplicitAny: OpenAI and Anthropic messages as they arrive in JSON.
type WireMessage = any;

/**
 * An OpenAI `messages` array mapped onto a prompt as `HistoryMessage` documents it: a leading
 * system message is the system prompt, the last user message the prompt, trailing tool messages
 * the tool results, everything else history.
 */
function fromOpenAI(messages: WireMessage[]): { prompt: string; options: PromptOptions } {
  const rest = [...messages];
  const options: PromptOptions = {};
  if (rest[0]?.role === "system") options.system = rest.shift().content;
  const names = new Map<string, string>();
  const history: HistoryMessage[] = rest.map((message): HistoryMessage => {
    switch (message.role) {
      case "system":
        return { role: "system", content: message.content };
      case "user":
        return { role: "user", content: message.content };
      case "assistant": {
        const toolCalls: ToolCall[] = (message.tool_calls ?? []).map((call: WireMessage) => {
          names.set(call.id, call.function.name);
          return { id: call.id, name: call.function.name, arguments: JSON.parse(call.function.arguments) };
        });
        return { role: "assistant", content: message.content ?? "", toolCalls };
      }
      default:
        return {
          role: "tool",
          toolCallId: message.tool_call_id,
          name: names.get(message.tool_call_id),
          output: message.content,
        };
    }
  });
  const toolResults: ToolResult[] = [];
  while (history.at(-1)?.role === "tool") {
    const tool = history.pop() as Extract<HistoryMessage, { role: "tool" }>;
    toolResults.unshift({ toolCallId: tool.toolCallId, name: tool.name ?? "", output: tool.output });
  }
  const last = history.at(-1);
  let prompt = "";
  if (toolResults.length === 0 && last?.role === "user") {
    history.pop();
    prompt = last.content;
  }
  return { prompt, options: { ...options, history, toolResults } };
}

/** An Anthropic conversation mapped the same way: tool_result blocks become tool messages. */
function fromAnthropic(system: string, messages: WireMessage[]): { prompt: string; options: PromptOptions } {
  const history: HistoryMessage[] = [];
  for (const message of messages) {
    const blocks: WireMessage[] = message.content;
    const text = blocks
      .filter((block) => block.type === "text")
      .map((block) => block.text)
      .join("");
    if (message.role === "assistant") {
      const toolCalls = blocks
        .filter((block) => block.type === "tool_use")
        .map((block) => ({ id: block.id, name: block.name, arguments: block.input }));
      history.push({ role: "assistant", content: text, toolCalls });
      continue;
    }
    for (const block of blocks.filter((candidate) => candidate.type === "tool_result")) {
      history.push({
        role: "tool",
        toolCallId: block.tool_use_id,
        output: block.content,
        ...(block.is_error ? { error: block.content } : {}),
      });
    }
    if (blocks.some((block) => block.type === "text")) history.push({ role: "user", content: text });
  }
  const toolResults: ToolResult[] = [];
  let prompt = "";
  const last = history.at(-1);
  if (last?.role === "user") {
    history.pop();
    prompt = last.content;
  }
  while (history.at(-1)?.role === "tool") {
    const tool = history.pop() as Extract<HistoryMessage, { role: "tool" }>;
    toolResults.unshift({
      toolCallId: tool.toolCallId,
      name: "",
      output: tool.output,
      ...(tool.error === undefined ? {} : { error: tool.error }),
    });
  }
  return { prompt, options: { system, history, toolResults } };
}

const weatherTool = {
  name: "get_weather",
  description: "Weather for a city",
  inputSchema: { type: "object", properties: { city: { type: "string" } } },
};

/** Five messages: system, a question, the tool call it led to, the tool's result, the answer. */
const OPENAI_HISTORY = [
  { role: "system", content: "You are terse." },
  { role: "user", content: "Weather in Paris?" },
  {
    role: "assistant",
    content: null,
    tool_calls: [
      { id: "call_w1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
    ],
  },
  { role: "tool", tool_call_id: "call_w1", content: "18C and sunny" },
  { role: "assistant", content: "It is 18C and sunny." },
];

describe("explicit history: OpenAI", () => {
  let fake: FakeServer;
  beforeAll(async () => {
    fake = await startFakeOpenAI();
  });
  afterAll(() => fake.close());

  async function gpt() {
    return registeredModel(createOpenAIModel({ id: "gpt-test", baseUrl: fake.url, needsKey: "openai" }));
  }

  it("replays a 5-message history with a tool call and its result: the upstream body is the original", async () => {
    fake.reset();
    const messages = [...OPENAI_HISTORY, { role: "user", content: "And tomorrow?" }];
    const { prompt, options } = fromOpenAI(messages);
    const model = await gpt();
    await model.prompt(prompt, { ...options, tools: [weatherTool], key: KEY }).text();
    expect(fake.requests[0]!.body).toEqual({
      model: "gpt-test",
      messages,
      tools: [
        {
          type: "function",
          function: {
            name: "get_weather",
            description: "Weather for a city",
            parameters: weatherTool.inputSchema,
          },
        },
      ],
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  it("sends a prompt that is only tool results as tool messages after the history", async () => {
    fake.reset();
    const messages = OPENAI_HISTORY.slice(0, 4);
    const { prompt, options } = fromOpenAI(messages);
    expect(prompt).toBe("");
    expect(options.toolResults).toEqual([
      { toolCallId: "call_w1", name: "get_weather", output: "18C and sunny" },
    ]);
    const model = await gpt();
    await model.prompt(prompt, { ...options, tools: [weatherTool], key: KEY, stream: false }).text();
    expect(fake.requests[0]!.body.messages).toEqual(messages);
  });

  it("replays system messages in the middle of the history in place", async () => {
    fake.reset();
    const messages = [
      { role: "user", content: "Hi" },
      { role: "assistant", content: "Hello." },
      { role: "system", content: "From now on, answer in French." },
      { role: "user", content: "How are you?" },
    ];
    const { prompt, options } = fromOpenAI(messages);
    const model = await gpt();
    await model.prompt(prompt, { ...options, key: KEY }).text();
    expect(fake.requests[0]!.body.messages).toEqual(messages);
  });
});

describe("explicit history: Anthropic", () => {
  let fake: FakeServer;
  beforeAll(async () => {
    fake = await startFakeAnthropic();
  });
  afterAll(() => fake.close());

  it("replays a conversation with tool_use and tool_result blocks: the upstream messages are the original", async () => {
    const messages = [
      { role: "user", content: [{ type: "text", text: "Weather in Paris?" }] },
      {
        role: "assistant",
        content: [
          { type: "text", text: "Checking." },
          { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } },
          { type: "tool_use", id: "toolu_2", name: "get_weather", input: { city: "Lyon" } },
        ],
      },
      {
        role: "user",
        content: [
          { type: "tool_result", tool_use_id: "toolu_1", content: "18C" },
          { type: "tool_result", tool_use_id: "toolu_2", content: "no station", is_error: true },
          { type: "text", text: "And tomorrow?" },
        ],
      },
    ];
    const { prompt, options } = fromAnthropic("You are terse.", messages);
    expect(prompt).toBe("And tomorrow?");
    const model = await registeredModel(
      createAnthropicModel({ id: "claude-test", baseUrl: fake.url, needsKey: "anthropic" }),
    );
    await model.prompt(prompt, { ...options, key: KEY }).text();
    const body = fake.requests[0]!.body;
    expect(body.system).toBe("You are terse.");
    expect(body.messages).toEqual(messages);
  });
});

describe("explicit history: echo and conversations", () => {
  it("shows the replayed turns, with their tool calls and results, in `previous`", async () => {
    const registry = await echoRegistry();
    const { prompt, options } = fromOpenAI([...OPENAI_HISTORY, { role: "user", content: "And tomorrow?" }]);
    const echoed = JSON.parse(await registry.get("echo").prompt(prompt, options).text());
    expect(echoed).toEqual({
      prompt: "And tomorrow?",
      system: "You are terse.",
      attachments: [],
      stream: true,
      previous: [
        {
          prompt: "Weather in Paris?",
          tool_calls: [{ id: "call_w1", name: "get_weather", arguments: { city: "Paris" } }],
        },
        {
          prompt: "",
          tool_results: [{ name: "get_weather", output: "18C and sunny", tool_call_id: "call_w1" }],
        },
      ],
    });
  });

  it("echoes a prompt that is only tool results", async () => {
    const registry = await echoRegistry();
    const { prompt, options } = fromOpenAI(OPENAI_HISTORY.slice(0, 4));
    const echoed = JSON.parse(await registry.get("echo").prompt(prompt, options).text());
    expect(echoed.prompt).toBe("");
    expect(echoed.previous).toEqual([
      {
        prompt: "Weather in Paris?",
        tool_calls: [{ id: "call_w1", name: "get_weather", arguments: { city: "Paris" } }],
      },
    ]);
    expect(echoed.tool_results).toEqual([
      { name: "get_weather", output: "18C and sunny", tool_call_id: "call_w1" },
    ]);
  });

  it("starts a conversation from the history of its first prompt, and refuses history later", async () => {
    const registry = await echoRegistry();
    const conversation = registry.get("echo").conversation();
    await conversation
      .prompt("third", {
        history: [
          { role: "user", content: "first" },
          { role: "assistant", content: "ok" },
        ],
      })
      .text();
    const echoed = JSON.parse(await conversation.prompt("fourth").text());
    expect(echoed.previous).toEqual([{ prompt: "first" }, { prompt: "third" }]);
    expect(() => conversation.prompt("fifth", { history: [] })).toThrow(/first prompt may carry history/);
  });

  it("gives a chain's every step the explicit history, then the chain's own turns", async () => {
    const registry = await echoRegistry();
    const chain = registry.get("echo").chain(JSON.stringify({ prompt: "go", tool_calls: [{ name: "t" }] }), {
      history: [
        { role: "user", content: "earlier" },
        { role: "assistant", content: "noted" },
      ],
      tools: [{ name: "t", execute: () => "done" }],
    });
    await chain.done();
    const [first, second] = chain.responsesSoFar;
    expect(JSON.parse(await first!.text()).previous).toEqual([{ prompt: "earlier" }]);
    const secondEcho = JSON.parse(await second!.text());
    expect(secondEcho.previous.map((turn: { prompt: string }) => turn.prompt)).toEqual([
      "earlier",
      JSON.stringify({ prompt: "go", tool_calls: [{ name: "t" }] }),
    ]);
    expect(second!.input.history).toBeUndefined();
  });

  it("refuses malformed history before any request, naming the message", async () => {
    const registry = await echoRegistry();
    const echo = registry.get("echo");
    const cases: [unknown, RegExp][] = [
      [[{ role: "robot", content: "x" }], /history\[0\]: "role" must be system, user, assistant or tool/],
      [[{ role: "user" }], /history\[0\]: "content" must be a string/],
      [
        [
          { role: "user", content: "a" },
          { role: "assistant", content: "", toolCalls: [{ name: "t" }] },
        ],
        /history\[1\]: toolCalls\[0\] needs an id, a name and an arguments object/,
      ],
      [[{ role: "tool", output: "x" }], /history\[0\]: "toolCallId" must be a string/],
      ["not an array", /history must be an array/],
    ];
    for (const [history, message] of cases) {
      let caught: unknown;
      try {
        echo.prompt("hi", { history: history as HistoryMessage[] });
      } catch (error) {
        caught = error;
      }
      expect(isSwitchboardError(caught, "INVALID_INPUT")).toBe(true);
      expect((caught as Error).message).toMatch(message);
    }
  });

  it("validates history attachments against the model's accepted types", async () => {
    const registry = await echoRegistry();
    expect(() =>
      registry.get("echo").prompt("hi", {
        history: [{ role: "user", content: "look", attachments: [{ url: "https://example.com/a.pdf" }] }],
      }),
    ).toThrow(/application\/pdf/);
    const echoed = JSON.parse(
      await registry
        .get("echo")
        .prompt("hi", {
          history: [{ role: "user", content: "look", attachments: [{ url: "https://example.com/a.png" }] }],
        })
        .text(),
    );
    expect(echoed.previous).toEqual([{ prompt: "look" }]);
  });
});
