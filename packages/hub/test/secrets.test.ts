import { isSwitchboardError } from "@switchboard/core";
import { openStore } from "@switchboard/store";
import { describe, expect, it } from "vitest";
import { generateEncryptionKey } from "../src/index.ts";
import { testHub } from "./helpers.ts";

describe("secrets", () => {
  it("reads SWITCHBOARD_SECRET_<NAME> first", async () => {
    const hub = await testHub({}, { env: { SWITCHBOARD_SECRET_TOKEN: "from-env" } });
    expect(await hub.secrets.get("TOKEN")).toBe("from-env");
    expect(await hub.secrets.get("OTHER")).toBeUndefined();
  });

  it("stores values encrypted, keeps versions and records the last use", async () => {
    const store = await openStore("sqlite::memory:");
    const env = { SWITCHBOARD_SECRETS_KEY: generateEncryptionKey() };
    const hub = await testHub({}, { env, store });
    expect(await hub.secrets.set("ENRICH_KEY", "first-value")).toEqual({ version: 1 });
    expect(await hub.secrets.set("ENRICH_KEY", "second-value", { note: "rotated" })).toEqual({ version: 2 });
    const stored = await store.getSecret("ENRICH_KEY");
    expect(Buffer.from(stored?.ciphertext ?? []).toString("utf8")).not.toContain("second-value");
    expect(await hub.secrets.get("ENRICH_KEY", "ada")).toBe("second-value");
    const [listed] = (await hub.secrets.list()).filter((secret) => secret.name === "ENRICH_KEY");
    expect(listed).toMatchObject({ source: "store", version: 2, lastUsedBy: "ada" });
    expect(JSON.stringify(await hub.secrets.list())).not.toContain("second-value");
  });

  it("refuses a value stored under another encryption key without showing it", async () => {
    const store = await openStore("sqlite::memory:");
    const writer = await testHub({}, { env: { SWITCHBOARD_SECRETS_KEY: generateEncryptionKey() }, store });
    await writer.secrets.set("TOKEN", "very-secret-value");
    const reader = await testHub({}, { env: { SWITCHBOARD_SECRETS_KEY: generateEncryptionKey() }, store });
    const error = await reader.secrets.get("TOKEN").catch((caught: unknown) => caught);
    expect(isSwitchboardError(error, "SECRET_ERROR")).toBe(true);
    expect((error as Error).message).not.toContain("very-secret-value");
  });

  it("explains how to enable the store when no encryption key is set", async () => {
    const hub = await testHub({});
    await expect(hub.secrets.set("TOKEN", "v")).rejects.toThrow(
      /SWITCHBOARD_SECRETS_KEY.*generate-key.*SWITCHBOARD_SECRET_TOKEN/,
    );
  });

  it("registers provider secrets and every key name in the config", async () => {
    const hub = await testHub({
      default_model: { model: "echo-needs-key", key: "DEFAULT_KEY" },
      purposes: { enrich: { models: [{ model: "echo-needs-key", key: "ENRICH_KEY" }] } },
    });
    const names = (await hub.secrets.list()).map((secret) => secret.name);
    expect(names).toEqual(
      expect.arrayContaining([
        "DEFAULT_KEY",
        "ENRICH_KEY",
        "ECHO_NEEDS_KEY_API_KEY",
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
      ]),
    );
  });

  it("uses a stored secret for a purpose's key", async () => {
    const env = { SWITCHBOARD_SECRETS_KEY: generateEncryptionKey() };
    const hub = await testHub(
      { purposes: { enrich: { model: { model: "echo-needs-key", key: "ENRICH_KEY" } } } },
      { env },
    );
    await hub.secrets.set("ENRICH_KEY", "stored-e1");
    const text = await (await hub.model({ purpose: "enrich" })).prompt("hi").text();
    expect(JSON.parse(text).key).toBe("stored-e1");
  });
});
