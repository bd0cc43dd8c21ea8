import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { isSwitchboardError } from "../src/errors.ts";
import { createAnthropicModel } from "../src/providers/anthropic.ts";
import { markovPlugin } from "../src/providers/markov.ts";
import { createOpenAIModel } from "../src/providers/openai.ts";
import { Registry } from "../src/registry.ts";
import { startFakeAnthropic } from "./fakes/anthropic-server.ts";
import type { FakeServer } from "./fakes/fake-server.ts";
import { startFakeOpenAI } from "./fakes/openai-server.ts";
import { echoRegistry, pluginOf, registeredModel, scriptedModel, temporaryKeyStore } from "./helpers.ts";

describe("max_tokens, the option every model takes", () => {
  it("is accepted by a model that declares no options, validated as a positive whole number", async () => {
    const bare = scriptedModel("bare", async function* (request) {
      yield { type: "text", text: JSON.stringify(request.options) };
    });
    const registry = await echoRegistry(pluginOf("test", bare));
    const model = registry.get("bare");
    expect(model.optionNames).toEqual(["max_tokens"]);
    expect(await model.prompt("hi", { options: { max_tokens: 5 } }).text()).toBe('{"max_tokens":5}');
    // Text from a command line is a number too.
    expect(await model.prompt("hi", { options: { max_tokens: "7" } }).text()).toBe('{"max_tokens":7}');
    for (const invalid of [0, -3, 1.5, "many", true, ""]) {
      let caught: unknown;
      try {
        model.prompt("hi", { options: { max_tokens: invalid } });
      } catch (error) {
        caught = error;
      }
      expect(isSwitchboardError(caught, "INVALID_OPTION")).toBe(true);
      expect((caught as Error).message).toBe(
        'Option "max_tokens" of model bare must be a whole number of 1 or more.',
      );
    }
    expect(bare.requests).toHaveLength(2);
  });

  it("is listed beside a model's declared options", async () => {
    const registry = await echoRegistry();
    expect(registry.get("echo").optionNames).toEqual(["example_bool", "max_tokens"]);
  });

  it("cuts echo's output to that many words, counted as the output tokens, finishing with length", async () => {
    const registry = await echoRegistry();
    const response = registry.get("echo").prompt("hello there", { options: { max_tokens: 3 } });
    const text = await response.text();
    expect(text).toBe('{\n  "prompt": "hello');
    expect((await response.usage()).output).toBe(3);
    expect(response.finishReason).toBe("length");
    const whole = registry.get("echo").prompt("hello there", { options: { max_tokens: 1000 } });
    expect(JSON.parse(await whole.text()).options).toEqual({ max_tokens: 1000 });
    expect(whole.finishReason).toBe("stop");
  });

  it("caps markov's length", async () => {
    const registry = await Registry.create([markovPlugin()], { keys: temporaryKeyStore() });
    const response = registry
      .get("markov")
      .prompt("alpha beta gamma delta alpha beta gamma", { options: { length: 50, max_tokens: 4, seed: 3 } });
    expect((await response.text()).trim().split(/\s+/)).toHaveLength(4);
    expect(response.finishReason).toBe("length");
  });

  describe("on the wire", () => {
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

    it("is sent by OpenAI-compatible and Anthropic models whose configured options leave it out", async () => {
      const onlyTemperature = z.object({ temperature: z.number().optional() });
      const local = await registeredModel(
        createOpenAIModel({ id: "local", baseUrl: openai.url, options: onlyTemperature }),
      );
      await local.prompt("hi", { options: { max_tokens: 42 } }).text();
      expect(openai.requests[0]!.body.max_tokens).toBe(42);
      const proper = await registeredModel(
        createOpenAIModel({
          id: "gpt-x",
          baseUrl: openai.url,
          options: onlyTemperature,
          maxTokensField: "max_completion_tokens",
        }),
      );
      await proper.prompt("hi", { options: { max_tokens: 43 } }).text();
      expect(openai.requests[1]!.body).toMatchObject({ max_completion_tokens: 43 });
      expect(openai.requests[1]!.body.max_tokens).toBeUndefined();
      const claude = await registeredModel(
        createAnthropicModel({ id: "claude-x", baseUrl: anthropic.url, options: onlyTemperature }),
      );
      await claude.prompt("hi", { options: { max_tokens: 44 } }).text();
      expect(anthropic.requests[0]!.body.max_tokens).toBe(44);
    });
  });
});
