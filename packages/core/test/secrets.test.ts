import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { isSwitchboardError, type SwitchboardError } from "../src/errors.ts";
import { KeyStore } from "../src/keys.ts";
import { createAnthropicModel } from "../src/providers/anthropic.ts";
import { createOpenAIModel } from "../src/providers/openai.ts";
import { Registry } from "../src/registry.ts";
import { scrubSecrets } from "../src/scrub.ts";
import type { AsyncModelDefinition } from "../src/types.ts";
import { startFakeAnthropic } from "./fakes/anthropic-server.ts";
import type { FakeServer } from "./fakes/fake-server.ts";
import { startFakeOpenAI } from "./fakes/openai-server.ts";
import {
  partsFailure,
  pluginOf,
  providerRequest,
  registeredModel,
  responseFailure,
  temporaryDirectory,
  temporaryKeyStore,
} from "./helpers.ts";

/** Deliberately unlike `sk-…`: only the remembered value can redact it, not a key-shaped pattern. */
const PLANTED = "tok-planted-7Qx9Lm2Vb8Nc4Zr6";

function expectNoSecret(error: SwitchboardError, ...secrets: string[]): void {
  const everything = `${error.message} ${JSON.stringify(error.details)}`;
  for (const secret of secrets) expect(everything).not.toContain(secret);
}

let openai: FakeServer;
let anthropic: FakeServer;
beforeAll(async () => {
  openai = await startFakeOpenAI();
  anthropic = await startFakeAnthropic();
});
afterEach(() => {
  openai.reset();
  anthropic.reset();
});
afterAll(async () => {
  await openai.close();
  await anthropic.close();
});

const echoedKey = { type: "invalid_request_error", message: `Incorrect API key provided: ${PLANTED}.` };

describe("a key echoed inside a 200 response", () => {
  function gptDefinition(): AsyncModelDefinition {
    return createOpenAIModel({
      id: "gpt-test",
      baseUrl: openai.url,
      needsKey: "openai",
      http: { maxRetries: 0 },
    });
  }

  it("is scrubbed from an OpenAI stream's error chunk and a 200 JSON error body", async () => {
    const model = await registeredModel(gptDefinition());
    openai.enqueue({ text: "partial", streamError: echoedKey });
    const streamed = await responseFailure(model.prompt("Hi", { key: PLANTED }));
    openai.enqueue({ streamError: echoedKey });
    const body = await responseFailure(model.prompt("Hi", { key: PLANTED, stream: false }));
    for (const error of [streamed, body]) {
      expect(error.code).toBe("PROVIDER_ERROR");
      expect(error.message).toContain("Incorrect API key provided: [redacted]");
      expectNoSecret(error, PLANTED);
    }
  });

  it("is scrubbed from an Anthropic error event and a 200 JSON error body", async () => {
    const model = await registeredModel(
      createAnthropicModel({ id: "claude-test", baseUrl: anthropic.url, needsKey: "anthropic" }),
    );
    anthropic.enqueue({ text: "partial", streamError: echoedKey });
    const streamed = await responseFailure(model.prompt("Hi", { key: PLANTED }));
    anthropic.enqueue({ streamError: echoedKey });
    const body = await responseFailure(model.prompt("Hi", { key: PLANTED, stream: false }));
    for (const error of [streamed, body]) {
      expect(error.message).toContain("[redacted]");
      expectNoSecret(error, PLANTED);
    }
  });

  it("is scrubbed when a provider is called directly, without a Model", async () => {
    const direct = "tok-direct-call-5Hk2Pq8Wz3";
    openai.enqueue({ streamError: { type: "x", message: `bad key ${direct}` } });
    const error = await partsFailure(gptDefinition().execute(providerRequest("gpt-test", direct)));
    expectNoSecret(error, direct);
  });
});

describe("a malformed key", () => {
  const WITH_NEWLINE = "tok-first-half-0001\ntok-second-half-0002";

  it("from the keys file fails before any request, once, without showing the key, saying it is malformed", async () => {
    const keys = temporaryKeyStore();
    mkdirSync(join(keys.path, ".."), { recursive: true });
    writeFileSync(keys.path, JSON.stringify({ openai: WITH_NEWLINE }));
    const registry = await Registry.create(
      [pluginOf("test", createOpenAIModel({ id: "gpt-test", baseUrl: openai.url, needsKey: "openai" }))],
      { keys, env: {} },
    );
    const error = await responseFailure(registry.get("gpt-test").prompt("Hi"));
    expect(error.code).toBe("INVALID_CONFIG");
    expect(error.retryable).toBe(false);
    expect(error.message).toMatch(/API key for model gpt-test is malformed.*switchboard keys set openai/);
    expectNoSecret(error, WITH_NEWLINE, "tok-first-half-0001", "tok-second-half-0002");
    expect(openai.requestCount).toBe(0);
  });

  it("from the environment or an explicit key fails the same way; surrounding whitespace is trimmed", async () => {
    const registry = await Registry.create(
      [
        pluginOf(
          "test",
          createOpenAIModel({
            id: "gpt-test",
            baseUrl: openai.url,
            needsKey: "openai",
            keyEnvVar: "FAKE_KEY",
          }),
        ),
      ],
      { keys: temporaryKeyStore(), env: { FAKE_KEY: WITH_NEWLINE } },
    );
    const fromEnv = await responseFailure(registry.get("gpt-test").prompt("Hi"));
    expect(fromEnv.message).toContain("fix the FAKE_KEY environment variable");
    const explicit = await responseFailure(
      registry.get("gpt-test").prompt("Hi", { key: "tok-a\u0007bell-xyz" }),
    );
    expect(explicit.code).toBe("INVALID_CONFIG");
    expect(openai.requestCount).toBe(0);

    await registry.get("gpt-test").prompt("Hi", { key: "  tok-trimmed-0123456789\n" }).text();
    expect(openai.requests[0]!.headers.authorization).toBe("Bearer tok-trimmed-0123456789");
  });

  it("given straight to a provider is refused before fetch, not retried, not printed", async () => {
    const definition = createOpenAIModel({ id: "gpt-test", baseUrl: openai.url, needsKey: "openai" });
    const error = await partsFailure(definition.execute(providerRequest("gpt-test", WITH_NEWLINE)));
    expect(error.code).toBe("INVALID_CONFIG");
    expect(error.message).toContain("malformed");
    expect(error.message).not.toContain("connect");
    expectNoSecret(error, WITH_NEWLINE, "tok-first-half-0001", "tok-second-half-0002");
    expect(openai.requestCount).toBe(0);
  });

  it("is refused by KeyStore.set, which trims surrounding whitespace", () => {
    const keys = temporaryKeyStore();
    let caught: unknown;
    try {
      keys.set("openai", WITH_NEWLINE);
    } catch (error) {
      caught = error;
    }
    expect(isSwitchboardError(caught, "INVALID_INPUT")).toBe(true);
    expect((caught as Error).message).not.toContain("tok-first-half");
    expect(keys.get("openai")).toBeUndefined();
    keys.set("openai", "  tok-clean-key-000111\n");
    expect(keys.get("openai")).toBe("tok-clean-key-000111");
  });
});

describe("keys and the user directory", () => {
  it("remembers every key it resolves, from the keys file, the environment or the caller", async () => {
    const keys = temporaryKeyStore();
    keys.set("openai", "tok-from-keys-file-111");
    const definition = createOpenAIModel({
      id: "gpt-test",
      baseUrl: openai.url,
      needsKey: "openai",
      keyEnvVar: "K",
    });
    const withFile = await Registry.create([pluginOf("test", definition)], { keys, env: {} });
    withFile.get("gpt-test").resolveKey();
    const withEnv = await Registry.create([pluginOf("test", definition)], {
      keys: temporaryKeyStore(),
      env: { K: "tok-from-environment-222" },
    });
    withEnv.get("gpt-test").resolveKey();
    withEnv.get("gpt-test").resolveKey("tok-given-explicitly-333");
    expect(scrubSecrets("tok-from-keys-file-111 tok-from-environment-222 tok-given-explicitly-333")).toBe(
      "[redacted] [redacted] [redacted]",
    );
  });

  it("does not print a corrupt keys file's contents", () => {
    const keys = temporaryKeyStore();
    mkdirSync(join(keys.path, ".."), { recursive: true });
    writeFileSync(keys.path, "openai=tok-corrupt-file-content-444\n");
    let caught: unknown;
    try {
      keys.get("openai");
    } catch (error) {
      caught = error;
    }
    expect(isSwitchboardError(caught, "INVALID_CONFIG")).toBe(true);
    expect((caught as Error).message).toContain("is not valid JSON");
    expect((caught as Error).message).not.toContain("tok-corrupt");
    expect((caught as Error).message).not.toContain("openai=");

    writeFileSync(keys.path, '{"openai": "tok-corrupt-file-content-444",}');
    expect(() => keys.get("openai")).toThrow(/not valid JSON \(at position \d+ \(line 1 column \d+\)\)/);
  });

  it("creates the user directory 0700 and keys.json 0600", () => {
    const base = temporaryDirectory();
    const keys = new KeyStore(join(base, "fresh", "switchboard", "keys.json"));
    keys.set("openai", "tok-mode-check-555");
    expect(statSync(join(base, "fresh", "switchboard")).mode & 0o777).toBe(0o700);
    expect(statSync(join(base, "fresh")).mode & 0o777).toBe(0o700);
    expect(statSync(keys.path).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(keys.path, "utf8"))).toEqual({ openai: "tok-mode-check-555" });
  });
});

describe("a base URL with credentials", () => {
  it("never shows the password: the request is refused as configuration, once", async () => {
    const password = "pa55-word-in-url-666";
    const url = openai.url.replace("http://", `http://admin:${password}@`);
    const definition = createOpenAIModel({ id: "gpt-test", baseUrl: url, http: { maxRetries: 2 } });
    const error = await partsFailure(definition.execute(providerRequest("gpt-test", "tok-unused-key-777")));
    expect(error.code).toBe("INVALID_CONFIG");
    expect(error.message).toContain("contains credentials");
    expect(error.message).toContain("[redacted]@127.0.0.1");
    expectNoSecret(error, password);
    expect(openai.requestCount).toBe(0);
    // The password is a secret everywhere from then on, not only inside URLs.
    expect(scrubSecrets(`password ${password}`)).toBe("password [redacted]");
  });
});
