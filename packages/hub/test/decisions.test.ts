/**
 * One describe block per routing decision (docs/configuration.md, "How routing decides").
 */

import { isSwitchboardError, type ModelResponse } from "@switchboard/core";
import { type FakeServer, startFakeOpenAI } from "@switchboard/core/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PromptContext, SwitchboardPlugin } from "../src/index.ts";
import { testHub } from "./helpers.ts";

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.unreachable("expected a failure"),
    (error: unknown) => error,
  );
}

const ids = (listings: readonly { id: string }[]) => listings.map((listing) => listing.id);

describe("decision 1: resolving the model", () => {
  const config = { default_model: "echo", purposes: { sql: { model: "markov" } } };
  const preferEchoNeedsKey: SwitchboardPlugin = {
    name: "prefers",
    defaultModel: ({ purpose }) => (purpose === "hooked" ? "echo-needs-key" : undefined),
  };

  it("takes an explicit id first", async () => {
    const hub = await testHub(config);
    expect((await hub.model({ model: "echo-needs-key", purpose: "sql" })).id).toBe("echo-needs-key");
  });

  it("then the first non-empty defaultModel hook", async () => {
    const hub = await testHub(config, {
      plugins: [
        { name: "empty", defaultModel: () => undefined },
        preferEchoNeedsKey,
        { name: "late", defaultModel: () => "markov" },
      ],
    });
    expect((await hub.model({ purpose: "hooked" })).id).toBe("echo-needs-key");
  });

  it("then the purpose's model, then default_model", async () => {
    const hub = await testHub(config);
    expect((await hub.model({ purpose: "sql" })).id).toBe("markov");
    expect((await hub.model({ purpose: "other" })).id).toBe("echo");
    expect((await hub.model()).id).toBe("echo");
  });

  it("fails with NO_MODEL saying what to configure", async () => {
    const hub = await testHub({});
    const error = await failure(hub.model({ purpose: "sql" }));
    expect(isSwitchboardError(error, "NO_MODEL")).toBe(true);
    expect((error as Error).message).toContain("purposes.sql.model or default_model");
  });
});

describe("decision 2: the resolved model must be allowed", () => {
  it("refuses an explicit id the purpose's list excludes, naming purpose and model", async () => {
    const hub = await testHub({
      models: ["echo-needs-key"],
      purposes: { sql: { model: "echo", models: ["echo"] } },
    });
    const error = await failure(hub.model({ model: "echo-needs-key", purpose: "sql" }));
    expect(isSwitchboardError(error, "MODEL_NOT_ALLOWED")).toBe(true);
    expect((error as Error).message).toMatch(/echo-needs-key.*"sql"/);
  });

  it("refuses a model an actor filter excludes", async () => {
    const hub = await testHub(
      {},
      {
        plugins: [
          {
            name: "interns-get-echo",
            filterModels: ({ models, actor }) =>
              actor?.role === "intern" ? models.filter((model) => model.id === "echo") : undefined,
          },
        ],
      },
    );
    await expect(hub.model({ model: "markov", actor: { id: "ada", role: "staff" } })).resolves.toBeDefined();
    const error = await failure(hub.model({ model: "markov", actor: { id: "bob", role: "intern" } }));
    expect(isSwitchboardError(error, "MODEL_NOT_ALLOWED")).toBe(true);
  });

  it("refuses a blocked default too", async () => {
    const hub = await testHub({ default_model: "echo", blocked_models: ["echo"] });
    expect(isSwitchboardError(await failure(hub.model()), "MODEL_NOT_ALLOWED")).toBe(true);
  });
});

describe("decision 3: allowlists", () => {
  it("lets a purpose list replace the global list, adding the purpose's own model", async () => {
    const hub = await testHub({
      default_model: "echo",
      models: ["echo-needs-key"],
      require_keys: false,
      purposes: { sql: { model: "markov", models: ["echo"] } },
    });
    expect(ids(await hub.models({ purpose: "sql" })).sort()).toEqual(["echo", "markov"]);
  });

  it("uses the global list (with default_model) for purposes without a list", async () => {
    const hub = await testHub({ default_model: "echo", models: ["markov"], require_keys: false });
    expect(ids(await hub.models({ purpose: "anything" })).sort()).toEqual(["echo", "markov"]);
    expect(ids(await hub.models()).sort()).toEqual(["echo", "markov"]);
  });

  it("allows every registered model when no list exists, minus both block lists", async () => {
    const hub = await testHub({
      require_keys: false,
      blocked_models: ["markov"],
      purposes: { sql: { blocked_models: ["echo-needs-key"] } },
    });
    const all = ids(await hub.models());
    expect(all).toContain("gpt-5.4");
    expect(all).toContain("echo-needs-key");
    expect(all).not.toContain("markov");
    const sql = ids(await hub.models({ purpose: "sql" }));
    expect(sql).not.toContain("echo-needs-key");
    expect(sql).not.toContain("markov");
  });
});

describe("decision 4: filterModels hooks compose", () => {
  it("gives each hook the previous hook's output, in plugin order", async () => {
    const seenBySecond: string[][] = [];
    const hub = await testHub(
      { models: ["echo", "markov", "echo-needs-key"], require_keys: false },
      {
        plugins: [
          { name: "first", filterModels: ({ models }) => models.filter((model) => model.id !== "markov") },
          {
            name: "second",
            filterModels: ({ models }) => {
              seenBySecond.push(ids(models));
              return models.filter((model) => model.id !== "echo-needs-key");
            },
          },
        ],
      },
    );
    expect(ids(await hub.models())).toEqual(["echo"]);
    // The config's own list ran first, as a plugin, then "first".
    expect(seenBySecond[0]).toEqual(["echo", "echo-needs-key"]);
  });
});

describe("decision 5: require_keys", () => {
  it("hides a model without a key, and shows it for a purpose with its own key", async () => {
    const config = {
      models: ["echo", "echo-needs-key"],
      purposes: { keyed: { models: ["echo", { model: "echo-needs-key", key: "KEYED_SECRET" }] } },
    };
    const hub = await testHub(config, { env: { SWITCHBOARD_SECRET_KEYED_SECRET: "s" } });
    expect(ids(await hub.models())).toEqual(["echo"]);
    expect(ids(await hub.models({ purpose: "keyed" }))).toEqual(["echo", "echo-needs-key"]);
    const open = await testHub({ ...config, require_keys: false });
    expect(ids(await open.models())).toEqual(["echo", "echo-needs-key"]);
  });
});

describe("decision 6: order of models()", () => {
  it("puts the default first, then the purpose list, then the global list, then the rest", async () => {
    const hub = await testHub({
      default_model: "gpt-5.4-nano",
      models: ["gpt-5.4-mini", "echo"],
      require_keys: false,
      purposes: { p: { model: "markov", models: ["echo-needs-key", "gpt-4.1"] } },
    });
    expect(ids(await hub.models({ purpose: "p" }))).toEqual(["markov", "echo-needs-key", "gpt-4.1"]);
    expect(ids(await hub.models())).toEqual(["gpt-5.4-nano", "gpt-5.4-mini", "echo"]);
    const unlisted = await testHub({ default_model: "markov", require_keys: false });
    const all = ids(await unlisted.models());
    expect(all.slice(0, 3)).toEqual(["markov", "echo", "echo-needs-key"]);
  });
});

describe("decision 7: key resolution", () => {
  const keyOf = async (response: ModelResponse) => JSON.parse(await response.text()).key;
  const config = {
    default_model: { model: "echo-needs-key", key: "DEFAULT_KEY" },
    purposes: {
      listed: {
        models: [{ model: "echo-needs-key", key: "LISTED_KEY" }],
        model: { model: "echo-needs-key", key: "PURPOSE_KEY" },
      },
      own: { model: { model: "echo-needs-key", key: "PURPOSE_KEY" } },
      plain: {},
    },
  };
  const allSecrets = {
    SWITCHBOARD_SECRET_LISTED_KEY: "listed",
    SWITCHBOARD_SECRET_PURPOSE_KEY: "purpose",
    SWITCHBOARD_SECRET_DEFAULT_KEY: "default",
    SWITCHBOARD_SECRET_ECHO_NEEDS_KEY_API_KEY: "provider",
  };

  it("walks purpose models entry → purpose model → default_model → <ALIAS>_API_KEY → keys file → env", async () => {
    const run = async (env: Record<string, string>, purpose: string) => {
      const hub = await testHub(config, { env: { ...env, ECHO_NEEDS_KEY_KEY: "env" } });
      return hub.model({ purpose }).then((model) => keyOf(model.prompt("hi")));
    };
    expect(await run(allSecrets, "listed")).toBe("listed");
    const { SWITCHBOARD_SECRET_LISTED_KEY: _listed, ...withoutListed } = allSecrets;
    expect(await run(withoutListed, "listed")).toBe("purpose");
    const { SWITCHBOARD_SECRET_PURPOSE_KEY: _purpose, ...defaultAndProvider } = withoutListed;
    expect(await run(defaultAndProvider, "own")).toBe("default");
    expect(await run({ SWITCHBOARD_SECRET_ECHO_NEEDS_KEY_API_KEY: "provider" }, "plain")).toBe("provider");
    expect(await run({}, "plain")).toBe("env");
  });

  it("prefers the keys file over the env var once no secret is set", async () => {
    const env = { ECHO_NEEDS_KEY_KEY: "env" };
    const hub = await testHub({ default_model: "echo-needs-key" }, { env });
    const { KeyStore } = await import("@switchboard/core");
    const keys = new KeyStore(`${(await import("./helpers.ts")).temporaryDirectory()}/keys.json`);
    keys.set("echo-needs-key", "from-file");
    const withFile = await testHub({ default_model: "echo-needs-key" }, { keys, env });
    expect(await keyOf((await hub.model()).prompt("hi"))).toBe("env");
    expect(await keyOf((await withFile.model()).prompt("hi"))).toBe("from-file");
  });
});

describe("decision 8: hook order and first registration wins", () => {
  it("runs hooks in plugin order and keeps the first purpose registration", async () => {
    const order: string[] = [];
    const plugin = (name: string, description: string): SwitchboardPlugin => ({
      name,
      registerPurposes: () => [{ name: "shared", description }],
      promptContext: () => ({
        before: () => {
          order.push(`${name}:before`);
        },
        after: () => {
          order.push(`${name}:after`);
        },
      }),
    });
    const hub = await testHub(
      { default_model: "echo" },
      { plugins: [plugin("a", "from a"), plugin("b", "from b")] },
    );
    const purposes = await hub.purposes();
    expect(purposes.find((purpose) => purpose.name === "shared")?.description).toBe("from a");
    await (await hub.model()).prompt("hi").text();
    expect(order).toEqual(["a:before", "b:before", "b:after", "a:after"]);
  });
});

describe("decision 9: prompt hooks wrap the whole prompt or chain", () => {
  let fake: FakeServer;
  beforeAll(async () => {
    fake = await startFakeOpenAI();
  });
  afterAll(async () => {
    await fake.close();
  });
  const fakeConfig = () => ({
    default_model: "fake-model",
    providers: { fake: { type: "openai" as const, base_url: fake.url, models: ["fake-model"] } },
  });

  it("refusing before the request means no request reaches the provider", async () => {
    fake.reset();
    const observed: string[] = [];
    const hub = await testHub(fakeConfig(), {
      plugins: [
        {
          name: "watcher",
          promptContext: () => ({
            after: ({ error }) => void observed.push(`watcher after: ${(error as Error).message}`),
          }),
        },
        {
          name: "gate",
          promptContext: () => ({
            before: () => {
              throw new Error("over budget");
            },
          }),
        },
      ],
    });
    const error = await failure((await hub.model()).prompt("hi").text());
    expect((error as Error).message).toBe("over budget");
    expect(fake.requestCount).toBe(0);
    expect(observed).toEqual(["watcher after: over budget"]);
  });

  it("sees every response of a chain and runs its after-part once", async () => {
    const events: string[] = [];
    const context: PromptContext = {
      before: () => void events.push("before"),
      onResponse: (response) => void events.push(`response ${response.status}`),
      after: ({ responses }) => void events.push(`after ${responses.length}`),
    };
    const hub = await testHub(
      { default_model: "echo" },
      { plugins: [{ name: "watch", promptContext: () => context }] },
    );
    const model = await hub.model();
    const chain = model.chain(JSON.stringify({ tool_calls: [{ name: "t" }, { name: "t" }] }), {
      tools: [{ name: "t", execute: () => "ok" }],
    });
    await chain.text();
    expect(events).toEqual(["before", "response done", "response done", "after 2"]);
  });

  it("runs the after-part on failure too", async () => {
    fake.reset();
    fake.enqueue({ status: 400, message: "bad request" });
    const outcomes: unknown[] = [];
    const hub = await testHub(fakeConfig(), {
      plugins: [
        { name: "watch", promptContext: () => ({ after: ({ error }) => void outcomes.push(error) }) },
      ],
    });
    await failure((await hub.model()).prompt("hi").text());
    expect(outcomes).toHaveLength(1);
    expect(isSwitchboardError(outcomes[0])).toBe(true);
  });

  it("lets chunks reach the caller before the response completes", async () => {
    fake.reset();
    fake.enqueue({ text: ["one ", "two ", "three"], chunkDelayMs: 150 });
    let finished = false;
    const hub = await testHub(fakeConfig(), {
      plugins: [
        {
          name: "watch",
          promptContext: () => ({
            after: () => {
              finished = true;
            },
          }),
        },
      ],
    });
    const response = (await hub.model()).prompt("hi");
    const iterator = response[Symbol.asyncIterator]();
    const first = await iterator.next();
    expect(first.value).toBe("one ");
    expect(response.status).toBe("running");
    expect(finished).toBe(false);
    await response.text();
    expect(finished).toBe(true);
  });
});

describe("decision 10: every access path is hooked", () => {
  it("observes prompt, conversation prompts, chain text, chain responses and iteration", async () => {
    let begins = 0;
    const hub = await testHub(
      { default_model: "echo" },
      { plugins: [{ name: "count", promptContext: () => ({ before: () => void begins++ }) }] },
    );
    const model = await hub.model();
    await model.prompt("a").text();
    for await (const _chunk of model.prompt("b"));
    const conversation = model.conversation();
    await conversation.prompt("c").text();
    await conversation.chain("d").text();
    for await (const response of model.chain("e").responses()) await response.text();
    for await (const _chunk of model.chain("f"));
    expect(begins).toBe(6);
  });

  it("does not expose the core model through what it returns", async () => {
    const hub = await testHub({ default_model: "echo" });
    const model = await hub.model();
    expect("withContext" in model).toBe(false);
    expect("definition" in model).toBe(false);
    const response = model.prompt("hi");
    expect("model" in response).toBe(false);
  });
});

describe("decision 11: groups", () => {
  it("tags prompts with the group, waits for them on exit, then runs groupExit", async () => {
    const events: string[] = [];
    const hub = await testHub(
      { default_model: "echo" },
      {
        plugins: [
          {
            name: "watch",
            promptContext: ({ group }) => ({
              onResponse: () => void events.push(`response in ${group ? "group" : "none"}`),
            }),
            groupExit: ({ responses, error }) =>
              void events.push(`exit ${responses.length} ${error ? "error" : "ok"}`),
          },
        ],
      },
    );
    let unconsumed: ModelResponse | undefined;
    await hub.group({}, async (model) => {
      await model.prompt("a").text();
      unconsumed = model.prompt("b"); // never awaited by the body
    });
    expect(unconsumed?.status).toBe("done");
    expect(events).toEqual(["response in group", "response in group", "exit 2 ok"]);
  });

  it("runs groupExit when the body throws, and rethrows", async () => {
    const exits: unknown[] = [];
    const hub = await testHub(
      { default_model: "echo" },
      { plugins: [{ name: "watch", groupExit: ({ error }) => void exits.push(error) }] },
    );
    const error = await failure(
      hub.group({}, async (model) => {
        model.prompt("pending");
        throw new Error("body failed");
      }),
    );
    expect((error as Error).message).toBe("body failed");
    expect((exits[0] as Error).message).toBe("body failed");
  });
});

describe("decision 12: fallbacks", () => {
  let fake: FakeServer;
  beforeAll(async () => {
    fake = await startFakeOpenAI();
  });
  afterAll(async () => {
    await fake.close();
  });

  it("moves to the next model after a 503 and records which model answered", async () => {
    fake.reset();
    fake.enqueue({ status: 503, message: "overloaded" });
    const seen: (string | undefined)[] = [];
    const hub = await testHub(
      {
        providers: {
          fake: { type: "openai", base_url: fake.url, max_retries: 0, models: ["primary", "backup"] },
        },
        purposes: { resilient: { model: "primary", fallbacks: ["backup"] } },
      },
      {
        plugins: [
          { name: "watch", promptContext: () => ({ onResponse: (r) => void seen.push(r.answeredBy) }) },
        ],
      },
    );
    const response = (await hub.model({ purpose: "resilient" })).prompt("hello");
    const text = await response.text();
    expect(text).toContain("hello");
    expect(response.modelId).toBe("primary");
    expect(response.answeredBy).toBe("backup");
    expect(fake.requests.map((request) => request.body.model)).toEqual(["primary", "backup"]);
    expect(seen).toEqual(["backup"]);
  });
});

describe("decision 13: purposes", () => {
  it("lists plugin-registered and config-declared purposes with model and allowlist", async () => {
    const hub = await testHub(
      {
        default_model: "echo",
        require_keys: false,
        purposes: {
          enrichments: { description: "Bulk row enrichment", model: "markov", models: ["markov", "echo"] },
        },
      },
      {
        plugins: [
          { name: "extract", registerPurposes: () => [{ name: "extract", description: "Extract rows" }] },
        ],
      },
    );
    const purposes = await hub.purposes();
    expect(purposes).toContainEqual({
      name: "enrichments",
      description: "Bulk row enrichment",
      model: "markov",
      models: ["markov", "echo"],
    });
    const extract = purposes.find((purpose) => purpose.name === "extract");
    expect(extract?.description).toBe("Extract rows");
    expect(extract?.model).toBe("echo");
  });
});

describe("streaming through the hub with hooks stays incremental", () => {
  it("delivers the first chunk while later ones are still being produced", async () => {
    const hub = await testHub(
      { default_model: "markov" },
      { plugins: [{ name: "noop", promptContext: () => ({}) }] },
    );
    const model = await hub.model();
    const response = model.prompt("the cat sat on the mat and the dog sat on the log", {
      options: { length: 200_000 },
    });
    const iterator = response[Symbol.asyncIterator]();
    await iterator.next();
    expect(response.status).toBe("running");
    expect((await response.text()).split(" ").length).toBeGreaterThan(100_000);
  });
});
