/**
 * The two mappings on their own: the AI SDK prompt onto Switchboard's explicit history, and the
 * call settings onto model options, with a warning for whatever cannot be honoured.
 */
import {
  InvalidPromptError,
  type LanguageModelV4CallOptions,
  type LanguageModelV4Prompt,
  type LanguageModelV4ToolResultOutput,
  type SharedV4Warning,
  UnsupportedFunctionalityError,
} from "@ai-sdk/provider";
import { describe, expect, it } from "vitest";
import { mapCallOptions } from "../src/call-options.ts";
import { convertPrompt } from "../src/prompt.ts";

function convert(prompt: LanguageModelV4Prompt) {
  const warnings: SharedV4Warning[] = [];
  return { ...convertPrompt(prompt, warnings), warnings };
}

describe("the prompt as explicit history", () => {
  it("takes leading system messages as the system prompt and the last user message as the prompt", () => {
    const converted = convert([
      { role: "system", content: "Be brief." },
      { role: "system", content: "Answer in English." },
      { role: "user", content: [{ type: "text", text: "one" }] },
      { role: "assistant", content: [{ type: "text", text: "answer one" }] },
      { role: "system", content: "Now be formal." },
      {
        role: "user",
        content: [
          { type: "text", text: "two" },
          { type: "text", text: "and a half" },
        ],
      },
    ]);
    expect(converted).toEqual({
      prompt: "two\nand a half",
      system: "Be brief.\n\nAnswer in English.",
      attachments: [],
      toolResults: [],
      history: [
        { role: "user", content: "one" },
        { role: "assistant", content: "answer one" },
        { role: "system", content: "Now be formal." },
      ],
      warnings: [],
    });
  });

  it("maps file parts onto attachments: bytes, base64, URLs and inline text", () => {
    const bytes = new Uint8Array([1, 2, 3]);
    const converted = convert([
      {
        role: "user",
        content: [
          { type: "text", text: "look" },
          { type: "file", mediaType: "image/png", data: { type: "data", data: bytes } },
          { type: "file", mediaType: "image/jpeg", data: { type: "data", data: "AQID" } },
          {
            type: "file",
            mediaType: "image",
            data: { type: "url", url: new URL("https://example.com/a.gif") },
          },
          { type: "file", mediaType: "text/plain", data: { type: "text", text: "notes" } },
        ],
      },
    ]);
    expect(converted.prompt).toBe("look");
    expect(converted.attachments).toEqual([
      { content: bytes, type: "image/png" },
      { content: new Uint8Array([1, 2, 3]), type: "image/jpeg" },
      { url: "https://example.com/a.gif" },
      { content: new TextEncoder().encode("notes"), type: "text/plain" },
    ]);
    expect(converted.warnings).toEqual([]);
  });

  it("leaves out a provider file reference with a warning", () => {
    const converted = convert([
      {
        role: "user",
        content: [
          { type: "text", text: "summarise" },
          {
            type: "file",
            mediaType: "application/pdf",
            data: { type: "reference", reference: { openai: "file-1" } },
          },
        ],
      },
    ]);
    expect(converted.attachments).toEqual([]);
    expect(converted.warnings).toEqual([
      expect.objectContaining({ type: "unsupported", feature: "file reference" }),
    ]);
  });

  it("turns a loop's trailing tool results into the prompt's tool results, with the earlier call in history", () => {
    const converted = convert([
      { role: "user", content: [{ type: "text", text: "weather?" }] },
      {
        role: "assistant",
        content: [
          { type: "reasoning", text: "I should look it up" },
          { type: "text", text: "Checking." },
          { type: "tool-call", toolCallId: "c1", toolName: "weather", input: { city: "Oslo" } },
          { type: "tool-call", toolCallId: "c2", toolName: "time", input: '{"zone":"CET"}' },
        ],
      },
      {
        role: "tool",
        content: [
          {
            type: "tool-result",
            toolCallId: "c1",
            toolName: "weather",
            output: { type: "json", value: { t: 3 } },
          },
          {
            type: "tool-result",
            toolCallId: "c2",
            toolName: "time",
            output: { type: "error-text", value: "down" },
          },
        ],
      },
    ]);
    expect(converted.prompt).toBe("");
    expect(converted.history).toEqual([
      { role: "user", content: "weather?" },
      {
        role: "assistant",
        content: "Checking.",
        toolCalls: [
          { id: "c1", name: "weather", arguments: { city: "Oslo" } },
          { id: "c2", name: "time", arguments: { zone: "CET" } },
        ],
      },
    ]);
    expect(converted.toolResults).toEqual([
      { toolCallId: "c1", name: "weather", output: '{"t":3}' },
      { toolCallId: "c2", name: "time", output: "down", error: "down" },
    ]);
    expect(converted.warnings).toEqual([
      expect.objectContaining({ type: "unsupported", feature: "reasoning in the prompt" }),
    ]);
  });

  it("maps every kind of tool output onto text, errors included", () => {
    const result = (output: LanguageModelV4ToolResultOutput) =>
      convert([
        { role: "user", content: [{ type: "text", text: "go" }] },
        { role: "assistant", content: [{ type: "tool-call", toolCallId: "c", toolName: "t", input: {} }] },
        { role: "tool", content: [{ type: "tool-result", toolCallId: "c", toolName: "t", output }] },
      ]);
    expect(result({ type: "text", value: "plain" }).toolResults[0]).toEqual({
      toolCallId: "c",
      name: "t",
      output: "plain",
    });
    expect(result({ type: "error-json", value: { code: 1 } }).toolResults[0]).toMatchObject({
      output: '{"code":1}',
      error: '{"code":1}',
    });
    expect(result({ type: "execution-denied", reason: "not today" }).toolResults[0]).toMatchObject({
      output: "Tool execution denied: not today",
      error: "Tool execution denied: not today",
    });
    const content = result({
      type: "content",
      value: [
        { type: "text", text: "a" },
        { type: "file", mediaType: "image/png", data: { type: "data", data: "AA==" } },
        { type: "text", text: "b" },
      ],
    });
    expect(content.toolResults[0]?.output).toBe("a\nb");
    expect(content.warnings).toEqual([expect.objectContaining({ feature: "files in tool results" })]);
  });

  it("keeps tool results in history when a user message follows them", () => {
    const converted = convert([
      { role: "user", content: [{ type: "text", text: "go" }] },
      { role: "assistant", content: [{ type: "tool-call", toolCallId: "c", toolName: "t", input: {} }] },
      {
        role: "tool",
        content: [
          { type: "tool-result", toolCallId: "c", toolName: "t", output: { type: "text", value: "ok" } },
        ],
      },
      { role: "user", content: [{ type: "text", text: "and now?" }] },
    ]);
    expect(converted.prompt).toBe("and now?");
    expect(converted.toolResults).toEqual([]);
    expect(converted.history.at(-1)).toEqual({ role: "tool", toolCallId: "c", name: "t", output: "ok" });
  });

  it("refuses a prompt that ends with an assistant message, or has no message", () => {
    expect(() =>
      convert([
        { role: "user", content: [{ type: "text", text: "hi" }] },
        { role: "assistant", content: [{ type: "text", text: "Sure, " }] },
      ]),
    ).toThrow(UnsupportedFunctionalityError);
    expect(() => convert([{ role: "system", content: "alone" }])).toThrow(InvalidPromptError);
  });
});

describe("call settings as model options", () => {
  const openaiLike = {
    id: "gpt-x",
    optionNames: [
      "temperature",
      "top_p",
      "max_tokens",
      "seed",
      "stop",
      "frequency_penalty",
      "presence_penalty",
    ],
    capabilities: { tools: true, schema: true },
  };
  const anthropicLike = {
    id: "claude-x",
    optionNames: ["max_tokens", "temperature", "top_p", "top_k", "stop_sequences"],
    capabilities: { tools: true, schema: true },
  };
  const reasoningLike = {
    id: "o-x",
    optionNames: ["max_tokens", "seed", "reasoning_effort"],
    capabilities: { tools: true, schema: true },
  };
  const call = (settings: Partial<LanguageModelV4CallOptions>): LanguageModelV4CallOptions => ({
    prompt: [],
    ...settings,
  });
  const map = (
    settings: Partial<LanguageModelV4CallOptions>,
    model = openaiLike,
    extra?: Record<string, unknown>,
  ) => {
    const warnings: SharedV4Warning[] = [];
    return { ...mapCallOptions(call(settings), model, extra, warnings), warnings };
  };

  it("maps each setting onto the option the model declares for it", () => {
    const settings = { maxOutputTokens: 100, temperature: 0.5, topP: 0.9, stopSequences: ["END"], seed: 7 };
    expect(map(settings).options).toEqual({
      max_tokens: 100,
      temperature: 0.5,
      top_p: 0.9,
      stop: ["END"],
      seed: 7,
    });
    const anthropic = map({ ...settings, topK: 40 }, anthropicLike);
    expect(anthropic.options).toEqual({
      max_tokens: 100,
      temperature: 0.5,
      top_p: 0.9,
      top_k: 40,
      stop_sequences: ["END"],
    });
    expect(anthropic.warnings).toEqual([expect.objectContaining({ type: "unsupported", feature: "seed" })]);
  });

  it("maps reasoning onto reasoning_effort, and asks for nothing with provider-default", () => {
    expect(map({ reasoning: "low" }, reasoningLike).options).toEqual({ reasoning_effort: "low" });
    expect(map({ reasoning: "provider-default" }, reasoningLike)).toMatchObject({
      options: {},
      warnings: [],
    });
    expect(map({ reasoning: "high" }).warnings).toEqual([expect.objectContaining({ feature: "reasoning" })]);
  });

  it("adds model options given by name through providerOptions", () => {
    expect(map({ temperature: 0.1 }, reasoningLike, { reasoning_effort: "minimal" })).toMatchObject({
      options: { reasoning_effort: "minimal" },
      warnings: [expect.objectContaining({ feature: "temperature" })],
    });
  });

  it("maps function tools without execute; provider tools and forced choices become warnings", () => {
    const inputSchema = { type: "object" as const, properties: { q: { type: "string" as const } } };
    const mapped = map({
      tools: [
        { type: "function", name: "search", description: "Search", inputSchema },
        { type: "provider", id: "openai.web_search", name: "web", args: {} },
      ],
      toolChoice: { type: "required" },
    });
    expect(mapped.tools).toEqual([{ name: "search", description: "Search", inputSchema }]);
    expect(mapped.warnings.map((warning) => (warning.type === "unsupported" ? warning.feature : ""))).toEqual(
      ["provider-defined tool web", "toolChoice"],
    );
    const none = map({
      tools: [{ type: "function", name: "search", inputSchema }],
      toolChoice: { type: "none" },
    });
    expect(none).toMatchObject({ tools: [], warnings: [] });
  });

  it("sends a JSON schema as the structured output schema; JSON without one is a warning", () => {
    const schema = { type: "object" as const, properties: { a: { type: "number" as const } } };
    expect(map({ responseFormat: { type: "json", schema } })).toMatchObject({ schema, warnings: [] });
    expect(map({ responseFormat: { type: "json" } })).toMatchObject({
      schema: undefined,
      warnings: [expect.objectContaining({ feature: "responseFormat" })],
    });
    expect(map({ responseFormat: { type: "text" } })).toMatchObject({ schema: undefined, warnings: [] });
  });

  it("warns about headers the caller set, not about the SDK's own user-agent", () => {
    expect(map({ headers: { "user-agent": "ai/7" } }).warnings).toEqual([]);
    expect(map({ headers: { "user-agent": "ai/7", "x-trace": "1" } }).warnings).toEqual([
      expect.objectContaining({ feature: "headers", details: expect.stringContaining("x-trace") }),
    ]);
  });
});
