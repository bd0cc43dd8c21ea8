/**
 * What the admin UI relies on in the hub: permissions, purpose overrides over the YAML (validated,
 * audited, effective at once, seen by other processes sharing the database), login links and sessions.
 */
import { isSwitchboardError, KeyStore } from "@switchboard/core";
import { openStore, type Store } from "@switchboard/store";
import { type StoreBackend, storeBackends } from "@switchboard/store/testing";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { Hub, type HubConfigInput, Logins, Permissions, parseConfig } from "../src/index.ts";
import { sleep, temporaryDirectory } from "./helpers.ts";

const CONFIG: HubConfigInput = {
  default_model: "echo",
  require_keys: false,
  purposes: {
    summaries: { description: "Short summaries", model: "echo", blocked_models: ["gpt-4o"] },
    extract: { description: "Structured extraction" },
  },
  permissions: { "view-usage": ["viewer"], "manage-purposes": ["editor"] },
};

async function hubOn(store: Store, config: HubConfigInput = CONFIG): Promise<Hub> {
  return Hub.create({
    config,
    store,
    env: {},
    keys: new KeyStore(`${temporaryDirectory()}/keys.json`),
  });
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.unreachable("expected a failure"),
    (error: unknown) => error,
  );
}

describe("permissions", () => {
  it("lets root do everything, a listed actor what it is granted, and nobody else anything", () => {
    const config = parseConfig(CONFIG);
    const permissions = new Permissions(() => config.permissions);
    expect(permissions.can("root", "manage-secrets")).toBe(true);
    expect(permissions.can({ id: "viewer" }, "view-usage")).toBe(true);
    expect(permissions.can("viewer", "manage-purposes")).toBe(false);
    expect(permissions.can(undefined, "view-usage")).toBe(false);
    expect(permissions.actionsOf("editor")).toEqual(["manage-purposes"]);
  });

  it("rejects an unknown action in the configuration, naming the path", () => {
    expect(() => parseConfig({ permissions: { "manage-everything": ["x"] } })).toThrow(
      /permissions\.manage-everything/,
    );
  });
});

describe.each(storeBackends())("purpose overrides on $name", (backend: StoreBackend) => {
  afterAll(() => backend.cleanup());
  const hubs: Hub[] = [];
  afterEach(async () => {
    // The backend's database is shared by these tests: leave no override behind.
    await hubs[0]?.overrides.reset("summaries", "cleanup");
    await Promise.all(hubs.splice(0).map((hub) => hub.close()));
  });
  const open = async () => {
    if (backend.skip) return undefined;
    const hub = await hubOn(await backend.open());
    hubs.push(hub);
    return hub;
  };

  it.skipIf(backend.skip)("changes what hub.model() returns at once and writes an audit entry", async () => {
    const hub = (await open()) as Hub;
    expect((await hub.model({ purpose: "summaries" })).id).toBe("echo");
    const entry = await hub.overrides.set("summaries", { model: "markov" }, "editor");
    expect((await hub.model({ purpose: "summaries" })).id).toBe("markov");
    expect(entry).toMatchObject({
      actor: "editor",
      action: "purpose.override",
      targetType: "purpose",
      target: "summaries",
      before: { model: "echo", blocked_models: ["gpt-4o"] },
      after: { model: "markov", blocked_models: ["gpt-4o"] },
    });
    const [stored] = await hub.audit.list({ targetType: "purpose", target: "summaries" });
    expect(stored).toMatchObject({ id: entry.id, actor: "editor", after: { model: "markov" } });
    // The YAML is untouched; listings and routing read the effective configuration.
    expect(hub.baseConfig.purposes.summaries?.model).toBe("echo");
    expect((await hub.purposes()).find((purpose) => purpose.name === "summaries")?.model).toBe("markov");
  });

  it.skipIf(backend.skip)("'reset to YAML' removes the override, audited", async () => {
    const hub = (await open()) as Hub;
    await hub.overrides.set("summaries", { model: "markov", fallbacks: ["echo"] }, "editor");
    const reset = await hub.overrides.reset("summaries", "editor");
    expect(reset).toMatchObject({
      action: "purpose.reset",
      before: { model: "markov" },
      after: { model: "echo" },
    });
    expect((await hub.model({ purpose: "summaries" })).id).toBe("echo");
    expect(await hub.overrides.reset("summaries", "editor")).toBeUndefined();
    const actions = (await hub.audit.list({ target: "summaries", limit: 2 })).map((entry) => entry.action);
    expect(actions).toEqual(["purpose.reset", "purpose.override"]);
  });

  it.skipIf(backend.skip)("refuses invalid values with each field's error, and writes nothing", async () => {
    const hub = (await open()) as Hub;
    const audited = (await hub.audit.list()).length;
    const error = await failure(
      hub.overrides.set("summaries", { models: "echo", fallbacks: [{ key: "K" }] }, "editor"),
    );
    expect(isSwitchboardError(error, "INVALID_INPUT")).toBe(true);
    const fields = (error as { details: { fields: Record<string, string> } }).details.fields;
    expect(fields.models).toMatch(/^models: /);
    expect(fields.fallbacks).toMatch(
      /^fallbacks\[0\]: expected a model id or \{model: id, key: SECRET_NAME\}/,
    );
    const unknown = await failure(hub.overrides.set("summaries", { model: "no-such-model" }, "editor"));
    expect((unknown as { details: { fields: Record<string, string> } }).details.fields.model).toContain(
      'no model named "no-such-model"',
    );
    const unknownPurpose = await failure(hub.overrides.set("nope", { model: "echo" }, "editor"));
    expect(isSwitchboardError(unknownPurpose, "NOT_FOUND")).toBe(true);
    expect(await hub.audit.list()).toHaveLength(audited);
    expect((await hub.model({ purpose: "summaries" })).id).toBe("echo");
  });

  it.skipIf(backend.skip)("shows where each value comes from", async () => {
    const hub = (await open()) as Hub;
    await hub.overrides.set("summaries", { models: ["echo", "markov"] }, "editor");
    const details = await hub.purposeDetails();
    const summaries = details.find((detail) => detail.name === "summaries");
    expect(summaries).toMatchObject({
      description: { value: "Short summaries", source: "yaml" },
      model: { value: "echo", source: "yaml" },
      allowlist: { value: ["echo", "markov"], source: "override" },
      blocked: { value: ["gpt-4o"], source: "yaml" },
      fallbacks: { value: [], source: "none" },
      override: { settings: { models: ["echo", "markov"] }, updatedBy: "editor" },
    });
    expect(summaries?.models.map((model) => model.id)).toEqual(["echo", "markov"]);
    const extract = details.find((detail) => detail.name === "extract");
    expect(extract).toMatchObject({
      model: { value: "echo", source: "global" },
      allowlist: { source: "none" },
    });
  });

  it.skipIf(backend.skip)("reaches another hub sharing the database within a second", async () => {
    const writer = (await open()) as Hub;
    const reader = (await open()) as Hub;
    expect((await reader.model({ purpose: "summaries" })).id).toBe("echo");
    await writer.overrides.set("summaries", { model: "markov" }, "editor");
    const changedAt = Date.now();
    let seen = "echo";
    while (seen !== "markov" && Date.now() - changedAt < 1_000) {
      await sleep(25);
      seen = (await reader.model({ purpose: "summaries" })).id;
    }
    expect(seen).toBe("markov");
  });
});

describe("purpose overrides without a database file", () => {
  it("route without creating the SQLite file", async () => {
    const dir = temporaryDirectory();
    const hub = await Hub.create({ config: { ...CONFIG, storage: `sqlite:${dir}/later.db` }, env: {} });
    expect((await hub.model({ purpose: "summaries" })).id).toBe("echo");
    const { existsSync } = await import("node:fs");
    expect(existsSync(`${dir}/later.db`)).toBe(false);
    await hub.close();
  });
});

describe("login links and sessions", () => {
  it("open one session per link, once, and only before the link expires", async () => {
    const store = await openStore("sqlite::memory:");
    let now = Date.parse("2026-12-01T10:00:00Z");
    const logins = new Logins(async () => store, { now: () => now, linkTtlMs: 60_000 });
    const link = await logins.createLink("alice");
    expect(link.token).toMatch(/^sbl_/);
    const session = await logins.redeem(link.token);
    expect(session?.actor).toBe("alice");
    expect(await logins.redeem(link.token)).toBeUndefined();
    expect((await logins.session(session?.id ?? ""))?.actor).toBe("alice");

    const late = await logins.createLink("bob");
    now += 61_000;
    expect(await logins.redeem(late.token)).toBeUndefined();
    expect(await logins.redeem("sbl_made-up")).toBeUndefined();
    await store.close();
  });

  it("store only hashes: neither the link token nor the session id is in the database", async () => {
    const store = await openStore("sqlite::memory:");
    const logins = new Logins(async () => store);
    const link = await logins.createLink("alice");
    const session = await logins.redeem(link.token);
    const sessionId = session?.id ?? "";
    const stored = await store.findSession((await import("node:crypto")).hash("sha256", sessionId, "hex"));
    expect(stored?.actor).toBe("alice");
    expect(JSON.stringify(stored)).not.toContain(sessionId);
    await logins.end(sessionId);
    expect(await logins.session(sessionId)).toBeUndefined();
    await store.close();
  });

  it("derive a CSRF token per session and compare it exactly", async () => {
    const store = await openStore("sqlite::memory:");
    const logins = new Logins(async () => store);
    const token = await logins.csrfToken("session-a");
    expect(await logins.checkCsrf("session-a", token)).toBe(true);
    expect(await logins.checkCsrf("session-b", token)).toBe(false);
    expect(await logins.checkCsrf("session-a", undefined)).toBe(false);
    // Another instance on the same database signs with the same key.
    expect(await new Logins(async () => store).csrfToken("session-a")).toBe(token);
    await store.close();
  });

  it("refuses an actor id with a line break", async () => {
    const store = await openStore("sqlite::memory:");
    const error = await failure(new Logins(async () => store).createLink("eve\nroot"));
    expect(isSwitchboardError(error, "INVALID_INPUT")).toBe(true);
    await store.close();
  });
});
