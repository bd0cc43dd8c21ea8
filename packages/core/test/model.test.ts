import { describe, expect, it } from "vitest";
import {
  CancelToolCall,
  type ExecutionOutcome,
  isSwitchboardError,
  type ModelResponse,
  SwitchboardError,
  type Tool,
} from "../src/index.ts";
import { deferred, echoRegistry, pluginOf, scriptedModel } from "./helpers.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("responses", () => {
  it("sends nothing until iterated or awaited", async () => {
    const model = scriptedModel("lazy", async function* () {
      yield { type: "text", text: "ok" };
    });
    const registry = await echoRegistry(pluginOf("test", model));
    const response = registry.get("lazy").prompt("hi");
    await sleep(10);
    expect(model.requests).toHaveLength(0);
    expect(await response.text()).toBe("ok");
    expect(model.requests).toHaveLength(1);
    // Awaiting again does not send again.
    await response.text();
    expect(model.requests).toHaveLength(1);
  });

  it("streams chunks to the caller before the response completes", async () => {
    const release = deferred();
    const model = scriptedModel("slow", async function* () {
      yield { type: "text", text: "first " };
      await release.promise;
      yield { type: "text", text: "second" };
    });
    const registry = await echoRegistry(pluginOf("test", model));
    const response = registry.get("slow").prompt("hi");
    const iterator = response[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toBe("first ");
    expect(response.status).toBe("running");
    release.resolve();
    expect((await iterator.next()).value).toBe("second");
    expect((await iterator.next()).done).toBe(true);
    // A second iteration replays the stored chunks.
    const replay: string[] = [];
    for await (const chunk of response) replay.push(chunk);
    expect(replay).toEqual(["first ", "second"]);
  });

  it("reports usage the provider did not give as undefined, never 0", async () => {
    const model = scriptedModel("nousage", async function* () {
      yield { type: "text", text: "x" };
      yield { type: "usage", usage: { output: 1 } };
    });
    const registry = await echoRegistry(pluginOf("test", model));
    const usage = await registry.get("nousage").prompt("hi").usage();
    expect(usage.input).toBeUndefined();
    expect(usage.cachedInput).toBeUndefined();
    expect(usage.output).toBe(1);
  });

  it("runs onDone callbacks on completion, and at once when already complete", async () => {
    const registry = await echoRegistry();
    const response = registry.get("echo").prompt("hi");
    const seen: string[] = [];
    response.onDone(() => seen.push("queued"));
    await response.text();
    expect(seen).toEqual(["queued"]);
    response.onDone(() => seen.push("immediate"));
    expect(seen).toEqual(["queued", "immediate"]);
  });

  it("rejects an unknown option before any request, naming it and the valid ones", async () => {
    const model = scriptedModel(
      "opts",
      async function* () {
        yield { type: "text", text: "x" };
      },
      {},
    );
    const registry = await echoRegistry(pluginOf("test", model));
    expect(() => registry.get("echo").prompt("hi", { options: { no_such_option: 1 } })).toThrow(
      /no option "no_such_option".*example_bool/,
    );
    expect(() => registry.get("opts").prompt("hi", { options: { temperature: 1 } })).toThrow(
      /has no option "temperature"\. It takes only max_tokens\./,
    );
    expect(model.requests).toHaveLength(0);
  });

  it("rejects a badly typed option", async () => {
    const registry = await echoRegistry();
    try {
      registry.get("echo").prompt("hi", { options: { example_bool: "yes" } });
      expect.unreachable();
    } catch (error) {
      expect(isSwitchboardError(error, "INVALID_OPTION")).toBe(true);
      expect((error as Error).message).toContain("example_bool");
    }
  });

  it("rejects capabilities the model lacks before any request", async () => {
    const registry = await echoRegistry();
    expect(() => registry.get("echo").prompt("hi", { schema: { type: "object" } })).toThrow(
      /does not support schemas/,
    );
    expect(() => registry.get("echo").prompt("hi", { attachments: [{ url: "https://x/a.pdf" }] })).toThrow(
      /application\/pdf/,
    );
    expect(() => registry.get("echo").prompt("hi", { attachments: [{ path: "/no/such/file.png" }] })).toThrow(
      /no file at/,
    );
  });

  it("resolves aliases and reports unknown models with a hint", async () => {
    const model = scriptedModel(
      "aliased",
      async function* () {
        yield { type: "text", text: "x" };
      },
      { aliases: ["short"] },
    );
    const registry = await echoRegistry(pluginOf("test", model));
    expect(registry.get("short").id).toBe("aliased");
    expect(() => registry.get("nope")).toThrow(/Unknown model: nope.*switchboard models/);
  });

  it("lets a later plugin see earlier models and replace one", async () => {
    const registry = await echoRegistry({
      name: "inspector",
      registerModels({ register, models }) {
        expect(models.map((entry) => entry.definition.id)).toEqual(["echo", "echo-needs-key"]);
        const echo = models[0];
        if (echo) register(echo.definition, { aliases: ["parrot"] });
      },
    });
    expect(registry.models().map((model) => model.id)).toEqual(["echo", "echo-needs-key"]);
    expect(registry.get("parrot").id).toBe("echo");
  });

  it("aborts a request through the caller's signal", async () => {
    const model = scriptedModel("hang", async function* (request) {
      yield { type: "text", text: "partial" };
      await new Promise((_, reject) =>
        request.signal.addEventListener("abort", () => reject(request.signal.reason)),
      );
    });
    const registry = await echoRegistry(pluginOf("test", model));
    const controller = new AbortController();
    const response = registry.get("hang").prompt("hi", { signal: controller.signal });
    const iterator = response[Symbol.asyncIterator]();
    await iterator.next();
    controller.abort();
    const error = await response.text().catch((caught: unknown) => caught);
    expect(isSwitchboardError(error, "ABORTED")).toBe(true);
  });

  it("times out a request", async () => {
    const model = scriptedModel("stall", async function* (request) {
      await new Promise((_, reject) =>
        request.signal.addEventListener("abort", () => reject(request.signal.reason)),
      );
      yield { type: "text", text: "never" };
    });
    const registry = await echoRegistry(pluginOf("test", model));
    const error = await registry
      .get("stall")
      .prompt("hi", { timeoutMs: 30 })
      .text()
      .catch((caught: unknown) => caught);
    expect(isSwitchboardError(error, "TIMEOUT")).toBe(true);
  });
});

describe("chains and tools", () => {
  const toolCallPrompt = (calls: { name: string; arguments?: Record<string, unknown> }[]) =>
    JSON.stringify({ prompt: "go", tool_calls: calls });

  it("runs async tools concurrently and returns results in call order", async () => {
    const registry = await echoRegistry();
    const started: string[] = [];
    let running = 0;
    let maxRunning = 0;
    const tool = (name: string, delay: number): Tool => ({
      name,
      async execute(args) {
        started.push(name);
        running++;
        maxRunning = Math.max(maxRunning, running);
        await sleep(delay);
        running--;
        return `${name}:${JSON.stringify(args)}`;
      },
    });
    const chain = registry.get("echo").chain(
      toolCallPrompt([
        { name: "slow", arguments: { n: 1 } },
        { name: "fast", arguments: { n: 2 } },
      ]),
      { tools: [tool("slow", 60), tool("fast", 5)] },
    );
    const responses: ModelResponse[] = [];
    for await (const response of chain.responses()) responses.push(response);
    expect(responses).toHaveLength(2);
    expect(maxRunning).toBe(2);
    const second = JSON.parse(await responses[1]!.text());
    expect(second.prompt).toBe("");
    expect(second.tool_results.map((result: { output: string }) => result.output)).toEqual([
      'slow:{"n":1}',
      'fast:{"n":2}',
    ]);
    const calls = await responses[0]!.toolCalls();
    expect(second.tool_results.map((result: { tool_call_id: string }) => result.tool_call_id)).toEqual(
      calls.map((call) => call.id),
    );
    expect(second.previous).toEqual([
      {
        prompt: toolCallPrompt([
          { name: "slow", arguments: { n: 1 } },
          { name: "fast", arguments: { n: 2 } },
        ]),
        tool_calls: calls.map(({ id, name, arguments: args }) => ({ id, name, arguments: args })),
      },
    ]);
  });

  it("turns tool errors, unknown tools, cancellations and objects into outputs", async () => {
    const registry = await echoRegistry();
    const tools: Tool[] = [
      {
        name: "broken",
        execute() {
          throw new Error("disk on fire");
        },
      },
      { name: "object", execute: () => ({ a: [1, 2] }) },
      { name: "guarded", execute: () => "should not run" },
    ];
    const afterCalls: string[] = [];
    const chain = registry
      .get("echo")
      .chain(
        toolCallPrompt([{ name: "broken" }, { name: "missing" }, { name: "object" }, { name: "guarded" }]),
        {
          tools,
          beforeCall(tool) {
            if (tool.name === "guarded") throw new CancelToolCall("not allowed today");
          },
          afterCall(tool, _call, result) {
            afterCalls.push(`${tool.name}=${result.output}`);
          },
        },
      );
    await chain.done();
    const last = chain.responsesSoFar.at(-1)!;
    const outputs = last.input.toolResults.map((result) => result.output);
    expect(outputs).toEqual([
      "Error: disk on fire",
      'Error: tool "missing" does not exist',
      '{"a":[1,2]}',
      "Cancelled: not allowed today",
    ]);
    expect(afterCalls).toEqual(["broken=Error: disk on fire", 'object={"a":[1,2]}']);
  });

  it("concatenates every response's text and sums usage", async () => {
    const registry = await echoRegistry();
    const chain = registry
      .get("echo")
      .chain(toolCallPrompt([{ name: "t" }]), { tools: [{ name: "t", execute: () => "ok" }] });
    const text = await chain.text();
    const [first, second] = chain.responsesSoFar;
    expect(text).toBe((await first!.text()) + (await second!.text()));
    const usage = await chain.usage();
    expect(usage.output).toBe((await first!.usage()).output! + (await second!.usage()).output!);
    const chunks: string[] = [];
    for await (const chunk of chain) chunks.push(chunk);
    expect(chunks.join("")).toBe(text);
  });

  it("stops at the chain limit with a clear error", async () => {
    // A model that always asks for another tool call.
    const model = scriptedModel("looper", async function* () {
      yield { type: "text", text: "again" };
      yield { type: "tool-call", name: "t", arguments: {} };
    });
    const registry = await echoRegistry(pluginOf("test", model));
    const chain = registry
      .get("looper")
      .chain("go", { tools: [{ name: "t", execute: () => "x" }], chainLimit: 3 });
    const error = await chain.text().catch((caught: unknown) => caught);
    expect(isSwitchboardError(error, "CHAIN_LIMIT")).toBe(true);
    expect(model.requests).toHaveLength(3);
  });

  it("sends tool calls and results back through the history", async () => {
    const model = scriptedModel("toolish", async function* (request, call) {
      if (call === 1) yield { type: "tool-call", id: "call_1", name: "t", arguments: { x: 1 } };
      else yield { type: "text", text: `got ${request.toolResults[0]?.output}` };
    });
    const registry = await echoRegistry(pluginOf("test", model));
    const text = await registry
      .get("toolish")
      .chain("go", { tools: [{ name: "t", execute: (args) => `x=${args.x}` }] })
      .text();
    expect(text).toBe("got x=1");
    const second = model.requests[1]!;
    expect(second.history).toEqual([
      { role: "user", content: "go" },
      { role: "assistant", content: "", toolCalls: [{ id: "call_1", name: "t", arguments: { x: 1 } }] },
    ]);
    expect(second.toolResults).toEqual([{ toolCallId: "call_1", name: "t", output: "x=1" }]);
  });
});

describe("execution observers and fallbacks", () => {
  it("observes a chain as one execution: one before, one response event each, one after", async () => {
    const registry = await echoRegistry();
    const events: string[] = [];
    const model = registry.get("echo").withContext({
      observe: (start) => {
        events.push(`start:${start.kind}`);
        return {
          before: () => {
            events.push("before");
          },
          onResponse: (response) => {
            events.push(`response:${response.status}`);
          },
          after: (outcome: ExecutionOutcome) => {
            events.push(`after:${outcome.responses.length}:${outcome.error === undefined}`);
          },
        };
      },
    });
    await model
      .chain(JSON.stringify({ tool_calls: [{ name: "t" }] }), { tools: [{ name: "t", execute: () => "ok" }] })
      .text();
    expect(events).toEqual(["start:chain", "before", "response:done", "response:done", "after:2:true"]);
  });

  it("sends no request when an observer refuses in before", async () => {
    const model = scriptedModel("guarded", async function* () {
      yield { type: "text", text: "x" };
    });
    const registry = await echoRegistry(pluginOf("test", model));
    let ended = false;
    const governed = registry.get("guarded").withContext({
      observe: () => ({
        before: () => {
          throw new SwitchboardError("PROMPT_REFUSED", "no budget");
        },
        after: () => {
          ended = true;
        },
      }),
    });
    const error = await governed
      .prompt("hi")
      .text()
      .catch((caught: unknown) => caught);
    expect(isSwitchboardError(error, "PROMPT_REFUSED")).toBe(true);
    expect(model.requests).toHaveLength(0);
    expect(ended).toBe(false);
  });

  it("falls back to the next model on a retryable failure before any output", async () => {
    const failing = scriptedModel("flaky", async function* () {
      yield* [];
      throw new SwitchboardError("PROVIDER_ERROR", "503 from upstream", { status: 503 }, { retryable: true });
    });
    const registry = await echoRegistry(pluginOf("test", failing));
    const response = registry
      .get("flaky")
      .withContext({ fallbacks: [{ model: registry.get("echo") }] })
      .prompt("hi");
    expect(JSON.parse(await response.text()).prompt).toBe("hi");
    expect(response.modelId).toBe("flaky");
    expect(response.answeredBy).toBe("echo");
    expect(response.fallbackAttempts).toEqual([{ model: "flaky", error: "503 from upstream" }]);
  });

  it("does not fall back after output reached the caller, nor on a non-retryable error", async () => {
    const midway = scriptedModel("midway", async function* () {
      yield { type: "text", text: "partial" };
      throw new SwitchboardError("STREAM_INTERRUPTED", "cut", {}, { retryable: true });
    });
    const denied = scriptedModel("denied", async function* () {
      yield* [];
      throw new SwitchboardError("PROVIDER_AUTH", "bad key", { status: 401 });
    });
    const registry = await echoRegistry(pluginOf("test", midway, denied));
    const fallbacks = [{ model: registry.get("echo") }];
    for (const id of ["midway", "denied"]) {
      const error = await registry
        .get(id)
        .withContext({ fallbacks })
        .prompt("hi")
        .text()
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(SwitchboardError);
    }
  });
});
