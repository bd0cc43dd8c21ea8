/**
 * Keys and secrets as the hub uses them: resolving a model stays cheap (key status only for
 * listings, cached secret reads, last use recorded when a request runs), a missing secret is
 * named, and every secret value reaches the one scrubber.
 */

import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { isSwitchboardError, scrubSecrets } from "@switchboard/core";
import { type FakeServer, startFakeOpenAI } from "@switchboard/core/testing";
import { openStore, type Store } from "@switchboard/store";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateEncryptionKey, type HubConfigInput, Secrets, type SecretsOptions } from "../src/index.ts";
import { temporaryDirectory, testHub } from "./helpers.ts";

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.unreachable("expected a failure"),
    (error: unknown) => error,
  );
}

/** The store, with a count of secret reads and last-use writes. */
function countingStore(store: Store): {
  store: Store;
  counts: { getSecret: number; markSecretUsed: number };
} {
  const counts = { getSecret: 0, markSecretUsed: 0 };
  const counted = new Proxy(store, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (property === "getSecret" || property === "markSecretUsed") counts[property]++;
        return (value as (...args: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: counted, counts };
}

let fake: FakeServer;
beforeAll(async () => {
  fake = await startFakeOpenAI();
});
afterAll(async () => {
  await fake.close();
});

describe("hub.model() is cheap per call", () => {
  const twentyModels = (): HubConfigInput => ({
    providers: {
      many: {
        type: "openai",
        base_url: fake.url,
        key: "MANY_TOKEN",
        models: Array.from({ length: 20 }, (_, index) => `m${index + 1}`),
      },
    },
  });

  it("makes at most one secret read and no write, with 20 models registered and a secrets key set", async () => {
    const { store, counts } = countingStore(await openStore("sqlite::memory:"));
    const env = { SWITCHBOARD_SECRETS_KEY: generateEncryptionKey() };
    const hub = await testHub(twentyModels(), { env, store });
    await hub.secrets.set("MANY_TOKEN", "many-token-value-1234");
    counts.getSecret = 0;

    const model = await hub.model({ model: "m1", actor: { id: "ada" } });
    expect(counts.getSecret).toBeLessThanOrEqual(1);
    expect(counts.markSecretUsed).toBe(0);
    await hub.model({ model: "m7", actor: { id: "ada" } });
    expect(counts.getSecret).toBeLessThanOrEqual(1); // cached

    // Listing checks keys; that is not a use.
    expect((await hub.models()).map((listing) => listing.id)).toContain("m20");
    expect(counts.markSecretUsed).toBe(0);

    fake.reset();
    await model.prompt("hi").text();
    expect(fake.requests[0]?.headers.authorization).toBe("Bearer many-token-value-1234");
    await hub.secrets.settled();
    expect(counts.markSecretUsed).toBe(1);
    const [listed] = (await hub.secrets.list()).filter((secret) => secret.name === "MANY_TOKEN");
    expect(listed?.lastUsedBy).toBe("ada");
    await hub.close();
  });

  it("records the use of a fallback's secret only when the fallback answers", async () => {
    const { store, counts } = countingStore(await openStore("sqlite::memory:"));
    const env = { SWITCHBOARD_SECRETS_KEY: generateEncryptionKey() };
    const hub = await testHub(
      {
        providers: {
          plain: { type: "openai", base_url: fake.url, max_retries: 0, models: ["primary"] },
          keyed: { type: "openai", base_url: fake.url, key: "BACKUP_TOKEN", models: ["backup"] },
        },
        purposes: { resilient: { model: "primary", fallbacks: ["backup"] } },
      },
      { env, store },
    );
    await hub.secrets.set("BACKUP_TOKEN", "backup-token-value-1234");
    const model = await hub.model({ purpose: "resilient" });
    fake.reset();
    await model.prompt("first").text();
    await hub.secrets.settled();
    expect(counts.markSecretUsed).toBe(0);
    fake.enqueue({ status: 503, message: "overloaded" });
    await model.prompt("second").text();
    await hub.secrets.settled();
    expect(counts.markSecretUsed).toBe(1);
    expect(fake.requests.at(-1)?.headers.authorization).toBe("Bearer backup-token-value-1234");
  });
});

describe("the secret cache", () => {
  const env = { SWITCHBOARD_SECRETS_KEY: generateEncryptionKey() };

  it("is refreshed when a secret is set through it, and picks up other processes' changes after its TTL", async () => {
    const store = await openStore("sqlite::memory:");
    let now = 1_000;
    const options: SecretsOptions = {
      env,
      store: async () => store,
      registered: async () => [],
      now: () => now,
    };
    const mine = new Secrets(options);
    const other = new Secrets(options);
    await mine.set("TOKEN", "first-value-123");
    expect(await mine.peek("TOKEN")).toBe("first-value-123");
    await other.set("TOKEN", "second-value-456");
    expect(await mine.peek("TOKEN")).toBe("first-value-123");
    now += 5_001;
    expect(await mine.peek("TOKEN")).toBe("second-value-456");
    await mine.set("TOKEN", "third-value-789");
    expect(await mine.peek("TOKEN")).toBe("third-value-789");
  });

  it("writes a secret's last use at most once a minute per actor", async () => {
    const { store, counts } = countingStore(await openStore("sqlite::memory:"));
    let now = 1_000;
    const secrets = new Secrets({
      env,
      store: async () => store,
      registered: async () => [],
      now: () => now,
    });
    await secrets.set("TOKEN", "token-value-123");
    await secrets.recordUse("TOKEN", "ada");
    await secrets.recordUse("TOKEN", "ada");
    expect(counts.markSecretUsed).toBe(1);
    await secrets.recordUse("TOKEN", "bob");
    expect(counts.markSecretUsed).toBe(2);
    now += 60_001;
    await secrets.recordUse("TOKEN", "ada");
    expect(counts.markSecretUsed).toBe(3);
  });
});

describe("a missing secret is named", () => {
  const config = (): HubConfigInput => ({
    providers: { fake: { type: "openai", base_url: fake.url, key: "FAKE_TOKEN", models: ["up"] } },
    purposes: { p: { model: { model: "up", key: "NO_SUCH_SECRET" } } },
  });

  it("fails the prompt before any request, saying how to set the secret", async () => {
    fake.reset();
    const hub = await testHub(config());
    const error = await failure((await hub.model({ purpose: "p" })).prompt("hi").text());
    expect(isSwitchboardError(error, "MISSING_KEY")).toBe(true);
    const message = (error as Error).message;
    expect(message).toContain("NO_SUCH_SECRET");
    expect(message).toContain("switchboard secrets set NO_SUCH_SECRET");
    expect(message).toContain("SWITCHBOARD_SECRET_NO_SUCH_SECRET");
    expect(message).not.toContain("keys set");
    expect(fake.requestCount).toBe(0);
  });

  it("still lets an explicit key through", async () => {
    fake.reset();
    const hub = await testHub(config());
    await (await hub.model({ purpose: "p" })).prompt("hi", { key: "explicit-key-123" }).text();
    expect(fake.requests[0]?.headers.authorization).toBe("Bearer explicit-key-123");
  });

  it("uses the provider's key when the purpose's own secret is not set (decision 7)", async () => {
    fake.reset();
    const hub = await testHub(config(), { env: { SWITCHBOARD_SECRET_FAKE_TOKEN: "provider-token-123" } });
    await (await hub.model({ purpose: "p" })).prompt("hi").text();
    expect(fake.requests[0]?.headers.authorization).toBe("Bearer provider-token-123");
  });
});

describe("secrets never leak", () => {
  it("hands every value read from the environment to the scrubber", async () => {
    const hub = await testHub({}, { env: { SWITCHBOARD_SECRET_PLANTED: "planted-env-value-31337" } });
    expect(await hub.secrets.peek("PLANTED")).toBe("planted-env-value-31337");
    expect(scrubSecrets("key planted-env-value-31337 leaked")).toBe("key [redacted] leaked");
  });

  it("hands every value set to the scrubber", async () => {
    const hub = await testHub({}, { env: { SWITCHBOARD_SECRETS_KEY: generateEncryptionKey() } });
    await hub.secrets.set("SET_HERE", "set-here-value-27182");
    expect(scrubSecrets("set-here-value-27182")).toBe("[redacted]");
  });

  it("hands every value read from the store to the scrubber", async () => {
    const database = join(temporaryDirectory(), "secrets.db");
    const encryptionKey = generateEncryptionKey();
    // Another process stores the value, so this one learns it only by reading it.
    const hubModule = new URL("../src/index.ts", import.meta.url).href;
    execFileSync(process.execPath, [
      "--input-type=module",
      "-e",
      `const { Hub } = await import(${JSON.stringify(hubModule)});
       const hub = await Hub.create({ config: { storage: ${JSON.stringify(`sqlite:${database}`)} },
         env: { SWITCHBOARD_SECRETS_KEY: ${JSON.stringify(encryptionKey)} } });
       await hub.secrets.set("FROM_CHILD", "child-process-value-16180");
       await hub.close();`,
    ]);
    expect(scrubSecrets("child-process-value-16180")).toBe("child-process-value-16180");
    const hub = await testHub(
      {},
      { env: { SWITCHBOARD_SECRETS_KEY: encryptionKey }, store: await openStore(`sqlite:${database}`) },
    );
    expect(await hub.secrets.peek("FROM_CHILD")).toBe("child-process-value-16180");
    expect(scrubSecrets("child-process-value-16180")).toBe("[redacted]");
  });

  it("refuses a value with a line break or control character inside, without showing it", async () => {
    const hub = await testHub({}, { env: { SWITCHBOARD_SECRETS_KEY: generateEncryptionKey() } });
    for (const value of ["line-one-value\nline-two-value", "tab\tinside-value", "bell\u0007inside-value"]) {
      const error = await failure(hub.secrets.set("BROKEN", value));
      expect(isSwitchboardError(error, "INVALID_INPUT")).toBe(true);
      expect((error as Error).message).toMatch(/BROKEN.*line break or another control character/);
      expect((error as Error).message).not.toContain("inside-value");
      expect((error as Error).message).not.toContain("line-one");
    }
    expect(await hub.secrets.peek("BROKEN")).toBeUndefined();
  });

  it("trims surrounding whitespace, such as the newline echo adds", async () => {
    const hub = await testHub({}, { env: { SWITCHBOARD_SECRETS_KEY: generateEncryptionKey() } });
    await hub.secrets.set("PADDED", "  padded-value-123\n");
    expect(await hub.secrets.peek("PADDED")).toBe("padded-value-123");
  });
});
