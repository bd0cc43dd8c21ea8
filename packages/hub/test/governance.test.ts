/**
 * Governance of what answers: fallbacks pass the same checks as the first model, and aliases
 * count wherever a configuration names a model.
 */

import { isSwitchboardError, type ModelResponse } from "@switchboard/core";
import { type FakeServer, startFakeOpenAI } from "@switchboard/core/testing";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { HubConfigInput, SwitchboardPlugin } from "../src/index.ts";
import { testHub } from "./helpers.ts";

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.unreachable("expected a failure"),
    (error: unknown) => error,
  );
}

describe("fallbacks are governed", () => {
  let fake: FakeServer;
  beforeAll(async () => {
    fake = await startFakeOpenAI();
  });
  afterAll(async () => {
    await fake.close();
  });
  const resilient = (fallbacks: string[], extra: HubConfigInput = {}): HubConfigInput => ({
    providers: {
      fake: {
        type: "openai",
        base_url: fake.url,
        max_retries: 0,
        models: ["primary", "backup", "blocked-backup"],
      },
      keyed: { type: "openai", base_url: fake.url, key: "KEYED_TOKEN", models: ["keyed-backup"] },
    },
    ...extra,
    purposes: { resilient: { model: "primary", fallbacks } },
  });

  it("skips a blocked fallback, warns once, and lets the next allowed one answer", async () => {
    fake.reset();
    fake.enqueue({ status: 503, message: "overloaded" });
    const warn = vi.spyOn(process, "emitWarning").mockImplementation(() => {});
    try {
      const hub = await testHub(
        resilient(["blocked-backup", "backup"], { blocked_models: ["blocked-backup"] }),
      );
      const model = await hub.model({ purpose: "resilient" });
      expect(model.skippedFallbacks).toEqual([
        { model: "blocked-backup", reason: expect.stringContaining("not allowed") },
      ]);
      const response = model.prompt("hello");
      expect(await response.text()).toContain("hello");
      expect(response.answeredBy).toBe("backup");
      expect(fake.requests.map((request) => request.body.model)).toEqual(["primary", "backup"]);
      fake.enqueue({ status: 503, message: "overloaded" });
      await (await hub.model({ purpose: "resilient" })).prompt("again").text();
      const skips = warn.mock.calls.filter(([message]) => String(message).includes("blocked-backup"));
      expect(skips).toHaveLength(1);
      expect(String(skips[0]?.[0])).toMatch(/Fallback blocked-backup of purpose "resilient" skipped/);
    } finally {
      warn.mockRestore();
    }
  });

  it("applies an actor's filterModels hook to fallbacks", async () => {
    fake.reset();
    fake.enqueue({ status: 503, message: "overloaded" });
    const internsStayOnPrimary: SwitchboardPlugin = {
      name: "interns-stay-on-primary",
      filterModels: ({ models, actor }) =>
        actor?.role === "intern" ? models.filter((model) => model.id !== "backup") : undefined,
    };
    const warn = vi.spyOn(process, "emitWarning").mockImplementation(() => {});
    try {
      const hub = await testHub(resilient(["backup"]), { plugins: [internsStayOnPrimary] });
      const model = await hub.model({ purpose: "resilient", actor: { id: "bob", role: "intern" } });
      expect(model.skippedFallbacks.map((skip) => skip.model)).toEqual(["backup"]);
      const error = await failure(model.prompt("hello").text());
      expect(isSwitchboardError(error, "PROVIDER_ERROR")).toBe(true);
      expect(fake.requests.map((request) => request.body.model)).toEqual(["primary"]);
    } finally {
      warn.mockRestore();
    }
  });

  it("skips a fallback whose key is set nowhere, naming the secret", async () => {
    const warn = vi.spyOn(process, "emitWarning").mockImplementation(() => {});
    try {
      const hub = await testHub(resilient(["keyed-backup", "backup"]));
      const model = await hub.model({ purpose: "resilient" });
      expect(model.skippedFallbacks).toEqual([
        { model: "keyed-backup", reason: expect.stringContaining("KEYED_TOKEN") },
      ]);
      const withKey = await testHub(resilient(["keyed-backup", "backup"]), {
        env: { SWITCHBOARD_SECRET_KEYED_TOKEN: "keyed-token-value" },
      });
      expect((await withKey.model({ purpose: "resilient" })).skippedFallbacks).toEqual([]);
    } finally {
      warn.mockRestore();
    }
  });
});

describe("aliases given at registration", () => {
  /** Registers markov again under the extra name `loud`. */
  const loudMarkov: SwitchboardPlugin = {
    name: "loud",
    registerModels({ register, models }) {
      const markov = models.find((entry) => entry.definition.id === "markov");
      if (markov) register(markov.definition, { aliases: ["loud"] });
      const needy = models.find((entry) => entry.definition.id === "echo-needs-key");
      if (needy) register(needy.definition, { aliases: ["needy"] });
    },
  };
  const ids = (listings: readonly { id: string }[]) => listings.map((listing) => listing.id);

  it("are shown in listings", async () => {
    const hub = await testHub({ require_keys: false }, { plugins: [loudMarkov] });
    const markov = (await hub.models()).find((listing) => listing.id === "markov");
    expect(markov?.aliases).toContain("loud");
  });

  it("are matched by global and per-purpose block lists", async () => {
    const hub = await testHub(
      { require_keys: false, purposes: { quiet: { blocked_models: ["loud"] } } },
      { plugins: [loudMarkov] },
    );
    expect(ids(await hub.models({ purpose: "quiet" }))).not.toContain("markov");
    const error = await failure(hub.model({ model: "markov", purpose: "quiet" }));
    expect(isSwitchboardError(error, "MODEL_NOT_ALLOWED")).toBe(true);
    const blocked = await testHub({ blocked_models: ["loud"] }, { plugins: [loudMarkov] });
    expect(isSwitchboardError(await failure(blocked.model({ model: "markov" })), "MODEL_NOT_ALLOWED")).toBe(
      true,
    );
  });

  it("are matched by global and per-purpose allowlists, and order listings", async () => {
    const hub = await testHub(
      {
        models: ["echo", "loud"],
        require_keys: false,
        purposes: { noisy: { models: ["loud"] } },
      },
      { plugins: [loudMarkov] },
    );
    expect(ids(await hub.models())).toEqual(["echo", "markov"]);
    expect(ids(await hub.models({ purpose: "noisy" }))).toEqual(["markov"]);
    expect((await hub.model({ model: "loud", purpose: "noisy" })).id).toBe("markov");
  });

  it("work as default_model, a purpose's model and a fallback", async () => {
    const hub = await testHub(
      {
        default_model: "loud",
        models: ["echo"],
        require_keys: false,
        purposes: { p: { model: "echo", models: ["echo", "loud"], fallbacks: ["loud"] } },
      },
      { plugins: [loudMarkov] },
    );
    expect((await hub.model()).id).toBe("markov");
    expect(ids(await hub.models())[0]).toBe("markov");
    expect((await hub.purposes()).find((purpose) => purpose.name === "p")?.models).toEqual([
      "echo",
      "markov",
    ]);
    expect((await hub.model({ purpose: "p" })).skippedFallbacks).toEqual([]);
  });

  it("pick the key a model reference names by alias", async () => {
    const hub = await testHub(
      { purposes: { k: { model: { model: "needy", key: "NEEDY_KEY" } } } },
      { plugins: [loudMarkov], env: { SWITCHBOARD_SECRET_NEEDY_KEY: "needy-key-value" } },
    );
    const response: ModelResponse = (await hub.model({ purpose: "k" })).prompt("hi");
    expect(JSON.parse(await response.text()).key).toBe("needy-key-value");
    expect((await hub.purposes()).find((purpose) => purpose.name === "k")?.model).toBe("echo-needs-key");
  });
});
