import { afterEach, describe, expect, it, vi } from "vitest";
import { echoPlugin, isSwitchboardError, KeyStore, MissingKeyError, Registry } from "../src/index.ts";
import { echoRegistry, temporaryKeyStore } from "./helpers.ts";

afterEach(() => {
  vi.unstubAllEnvs();
});

describe("echo model", () => {
  it("echoes the prompt as JSON with the contract's key order", async () => {
    const registry = await echoRegistry();
    const text = await registry.get("echo").prompt("hello world").text();
    const parsed = JSON.parse(text);
    expect(Object.keys(parsed)).toEqual(["prompt", "system", "attachments", "stream", "previous"]);
    expect(parsed).toEqual({
      prompt: "hello world",
      system: "",
      attachments: [],
      stream: true,
      previous: [],
    });
    expect(text).toBe(JSON.stringify(parsed, null, 2));
  });

  it("carries the system prompt, options and stream flag", async () => {
    const registry = await echoRegistry();
    const parsed = JSON.parse(
      await registry
        .get("echo")
        .prompt("hi", { system: "sys", stream: false, options: { example_bool: true } })
        .text(),
    );
    expect(parsed.system).toBe("sys");
    expect(parsed.stream).toBe(false);
    expect(parsed.options).toEqual({ example_bool: true });
    expect(Object.keys(parsed)).toEqual(["prompt", "system", "attachments", "stream", "previous", "options"]);
  });

  it("returns `raw` exactly and counts words as tokens", async () => {
    const registry = await echoRegistry();
    const prompt = '{"raw": "exact text"}';
    const response = registry.get("echo").prompt(prompt);
    expect(await response.text()).toBe("exact text");
    // Input tokens count the words of the prompt as sent, JSON included.
    expect(await response.usage()).toEqual({ input: 3, output: 2 });
  });

  it("counts input tokens as words of the prompt", async () => {
    const registry = await echoRegistry();
    const usage = await registry.get("echo").prompt("hello world").usage();
    expect(usage.input).toBe(2);
    expect(usage.output).toBeGreaterThan(5);
  });

  it("streams several chunks", async () => {
    const registry = await echoRegistry();
    const chunks: string[] = [];
    for await (const chunk of registry.get("echo").prompt("streaming please")) chunks.push(chunk);
    expect(chunks.length).toBeGreaterThan(3);
    expect(JSON.parse(chunks.join("")).prompt).toBe("streaming please");
  });

  it("lists earlier turns of a conversation in `previous`", async () => {
    const registry = await echoRegistry();
    const conversation = registry.get("echo").conversation();
    await conversation.prompt("first").text();
    await conversation.prompt("second").text();
    const third = JSON.parse(await conversation.prompt("third").text());
    expect(third.previous).toEqual([{ prompt: "first" }, { prompt: "second" }]);
    expect(conversation.responses).toHaveLength(3);
  });

  it("emits scripted tool calls, each with an id", async () => {
    const registry = await echoRegistry();
    const response = registry.get("echo").prompt(
      JSON.stringify({
        prompt: "use tools",
        tool_calls: [{ name: "lookup", arguments: { q: 1 } }, { name: "noargs" }],
      }),
    );
    const calls = await response.toolCalls();
    expect(calls.map((call) => [call.name, call.arguments])).toEqual([
      ["lookup", { q: 1 }],
      ["noargs", {}],
    ]);
    for (const call of calls) expect(call.id).toMatch(/^tc_/);
    expect(JSON.parse(await response.text()).prompt).toBe("use tools");
  });

  it("shows attachments with their type, path and url", async () => {
    const registry = await echoRegistry();
    const parsed = JSON.parse(
      await registry
        .get("echo")
        .prompt("look", { attachments: [{ url: "https://example.com/cat.png" }] })
        .text(),
    );
    expect(parsed.attachments).toEqual([
      { type: "image/png", path: null, url: "https://example.com/cat.png" },
    ]);
  });
});

describe("echo-needs-key and key resolution", () => {
  it("uses the environment variable", async () => {
    vi.stubEnv("ECHO_NEEDS_KEY_KEY", "k1");
    const registry = await echoRegistry();
    expect(JSON.parse(await registry.get("echo-needs-key").prompt("hi").text()).key).toBe("k1");
  });

  it("prefers the keys file over the environment, and an explicit key over both", async () => {
    vi.stubEnv("ECHO_NEEDS_KEY_KEY", "from-env");
    const keys = temporaryKeyStore();
    keys.set("echo-needs-key", "from-file");
    const registry = await Registry.create([echoPlugin()], { keys });
    const model = registry.get("echo-needs-key");
    expect(JSON.parse(await model.prompt("hi").text()).key).toBe("from-file");
    expect(JSON.parse(await model.prompt("hi", { key: "explicit" }).text()).key).toBe("explicit");
  });

  it("fails with a message naming both ways to set the key", async () => {
    vi.stubEnv("ECHO_NEEDS_KEY_KEY", "");
    const registry = await echoRegistry();
    const error = await registry
      .get("echo-needs-key")
      .prompt("hi")
      .text()
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(MissingKeyError);
    expect(isSwitchboardError(error, "MISSING_KEY")).toBe(true);
    expect((error as Error).message).toContain("switchboard keys set echo-needs-key");
    expect((error as Error).message).toContain("ECHO_NEEDS_KEY_KEY");
  });

  it("stores keys with mode 0600", async () => {
    const keys = temporaryKeyStore();
    keys.set("openai", "sk-test");
    const { statSync } = await import("node:fs");
    expect(statSync(keys.path).mode & 0o777).toBe(0o600);
    expect(new KeyStore(keys.path).get("openai")).toBe("sk-test");
  });
});

describe("echo chains", () => {
  it("continues a script found in the last tool result", async () => {
    const registry = await echoRegistry();
    let step = 0;
    const chain = registry
      .get("echo")
      .chain(JSON.stringify({ prompt: "start", tool_calls: [{ name: "next" }] }), {
        tools: [
          {
            name: "next",
            execute: () => (++step < 2 ? JSON.stringify({ tool_calls: [{ name: "next" }] }) : "finished"),
          },
        ],
      });
    await chain.done();
    expect(chain.responsesSoFar).toHaveLength(3);
    const last = JSON.parse(await chain.responsesSoFar[2]!.text());
    expect(last.tool_results[0].output).toBe("finished");
  });
});
