import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startServer } from "../src/serve.ts";
import { bearer, EMBEDDED, parseSse, type TestGateway, temporaryDirectory, testGateway } from "./helpers.ts";

let gateway: TestGateway;

afterEach(async () => {
  await gateway?.close();
});

function chat(body: unknown, token: string, headers: Record<string, string> = {}) {
  return gateway.app.request("/v1/chat/completions", {
    method: "POST",
    headers: { ...bearer(token), ...headers },
    body: JSON.stringify(body),
  });
}

function messages(body: unknown, token: string) {
  return gateway.app.request("/v1/messages", {
    method: "POST",
    headers: { "x-api-key": token, "anthropic-version": "2023-06-01", "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

describe("authentication", () => {
  it("answers 401 in each wire's own shape without a token, with a wrong, a revoked or an expired one", async () => {
    gateway = await testGateway();
    const body = { model: "echo", messages: [{ role: "user", content: "hi" }] };
    const none = await gateway.app.request("/v1/chat/completions", {
      method: "POST",
      body: JSON.stringify(body),
    });
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({
      error: {
        type: "authentication_error",
        code: "invalid_api_key",
        message: expect.stringMatching(/tokens create/),
      },
    });

    const wrong = await chat(body, "sb_not-a-real-token");
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { error: { message: string } }).error.message).toMatch(/not valid/);

    const revokedToken = await gateway.token("old");
    await gateway.tokens.revoke("old");
    const revoked = await chat(body, revokedToken);
    expect(revoked.status).toBe(401);
    expect(((await revoked.json()) as { error: { message: string } }).error.message).toMatch(/revoked/);

    const expiringToken = await gateway.token("brief", { expiresAt: new Date(Date.now() + 500) });
    await new Promise((resolve) => setTimeout(resolve, 600));
    const expired = await chat(body, expiringToken);
    expect(expired.status).toBe(401);
    expect(((await expired.json()) as { error: { message: string } }).error.message).toMatch(/expired/);

    const anthropic = await messages(
      { model: "echo", max_tokens: 5, messages: [{ role: "user", content: "hi" }] },
      "",
    );
    expect(anthropic.status).toBe(401);
    expect(await anthropic.json()).toMatchObject({
      type: "error",
      error: { type: "authentication_error" },
      request_id: expect.any(String),
    });
  });

  it("accepts the token as Authorization: Bearer and as x-api-key", async () => {
    gateway = await testGateway();
    const token = await gateway.token("app");
    const body = { model: "echo", max_tokens: 50, messages: [{ role: "user", content: "hi" }] };
    expect((await chat(body, token)).status).toBe(200);
    expect((await messages(body, token)).status).toBe(200);
  });
});

describe("observability headers", () => {
  it("echoes the client's x-request-id, names the answering model, reports overhead", async () => {
    gateway = await testGateway();
    const token = await gateway.token("app");
    const response = await chat({ model: "echo", messages: [{ role: "user", content: "hi" }] }, token, {
      "x-request-id": "client-chosen-42",
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-request-id")).toBe("client-chosen-42");
    expect(response.headers.get("x-switchboard-model")).toBe("echo");
    expect(Number(response.headers.get("x-switchboard-overhead-ms"))).toBeGreaterThanOrEqual(0);
    const generated = await chat({ model: "nope", messages: [{ role: "user", content: "hi" }] }, token);
    expect(generated.status).toBe(404);
    expect(generated.headers.get("x-request-id")).toMatch(/^req_/);
  });
});

describe("request bodies", () => {
  it("refuses a body over server.max_body_bytes with 413", async () => {
    gateway = await testGateway({ ...EMBEDDED, server: { max_body_bytes: 200 } });
    const token = await gateway.token("app");
    const response = await chat(
      { model: "echo", messages: [{ role: "user", content: "x".repeat(500) }] },
      token,
    );
    expect(response.status).toBe(413);
    expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(
      /max_body_bytes/,
    );
  });

  it("refuses a streamed body (no content-length) once it passes the limit", async () => {
    gateway = await testGateway({ ...EMBEDDED, server: { max_body_bytes: 200 } });
    const token = await gateway.token("app");
    const chunk = new TextEncoder().encode("x".repeat(100));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        sent += 1;
        if (sent > 50) controller.close();
        else controller.enqueue(chunk);
      },
    });
    const response = await gateway.app.request("/v1/chat/completions", {
      method: "POST",
      headers: bearer(token),
      body,
      duplex: "half",
    } as RequestInit);
    expect(response.status).toBe(413);
    expect(sent).toBeLessThan(50);
  });

  it("refuses malformed JSON with 400 naming the problem", async () => {
    gateway = await testGateway();
    const token = await gateway.token("app");
    const response = await gateway.app.request("/v1/chat/completions", {
      method: "POST",
      headers: bearer(token),
      body: '{"model": "echo", "messages": [}',
    });
    expect(response.status).toBe(400);
    const { error } = (await response.json()) as { error: { message: string; param: string } };
    expect(error.message).toMatch(/not valid JSON/);
    expect(error.param).toBe("body");
  });

  it("refuses n > 1", async () => {
    gateway = await testGateway();
    const token = await gateway.token("app");
    const response = await chat({ model: "echo", n: 3, messages: [{ role: "user", content: "hi" }] }, token);
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { param: "n" } });
  });

  it("names an option the model does not take, or drops it when the operator says so", async () => {
    gateway = await testGateway();
    const token = await gateway.token("app");
    const refused = await chat(
      { model: "echo", temperature: 0.5, messages: [{ role: "user", content: "hi" }] },
      token,
    );
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(/temperature/);
    await gateway.close();

    gateway = await testGateway({ ...EMBEDDED, server: { drop_unsupported_options: true } });
    const dropToken = await gateway.token("app");
    const dropped = await chat(
      { model: "echo", temperature: 0.5, seed: 7, messages: [{ role: "user", content: "hi" }] },
      dropToken,
    );
    expect(dropped.status).toBe(200);
    expect(dropped.headers.get("x-switchboard-dropped-options")).toBe("temperature, seed");
  });
});

describe("routing", () => {
  const config = {
    default_model: "echo",
    require_keys: false,
    purposes: {
      enrichments: { model: "echo", models: ["echo"] },
      extract: { model: "echo", models: ["echo", "echo-needs-key"] },
    },
  };

  it("refuses a purpose the token does not hold, and a model its default purpose does not allow", async () => {
    gateway = await testGateway(config);
    const token = await gateway.token("app", { purposes: ["enrichments"] });
    const purpose = await chat(
      { model: "purpose:extract", messages: [{ role: "user", content: "hi" }] },
      token,
    );
    expect(purpose.status).toBe(403);
    expect(purpose.headers.get("x-should-retry")).toBe("false");
    expect(((await purpose.json()) as { error: { message: string } }).error.message).toMatch(
      /purpose "extract"/,
    );

    const model = await chat({ model: "echo-needs-key", messages: [{ role: "user", content: "hi" }] }, token);
    expect(model.status).toBe(403);
    expect(((await model.json()) as { error: { code: string } }).error.code).toBe("model_not_allowed");

    const allowed = await chat(
      { model: "purpose:enrichments", messages: [{ role: "user", content: "hi" }] },
      token,
    );
    expect(allowed.status).toBe(200);
  });

  it("lists only what the token may use, with a purpose: entry per purpose", async () => {
    gateway = await testGateway(config);
    const token = await gateway.token("app", { purposes: ["enrichments", "extract"] });
    const response = await gateway.app.request("/v1/models", { headers: bearer(token) });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { object: string; data: { id: string; object: string }[] };
    expect(body.object).toBe("list");
    expect(body.data.map((entry) => entry.id)).toEqual(["purpose:enrichments", "purpose:extract", "echo"]);
    expect(body.data[0]).toMatchObject({ object: "model", owned_by: "switchboard" });
  });
});

describe("answers from echo", () => {
  it("answers OpenAI non-streamed with the answering model in the body", async () => {
    gateway = await testGateway();
    const token = await gateway.token("app", { purposes: ["enrichments"] });
    const response = await chat(
      { model: "purpose:enrichments", messages: [{ role: "user", content: "hi there" }] },
      token,
    );
    const body = (await response.json()) as {
      model: string;
      choices: { message: { content: string }; finish_reason: string }[];
    };
    expect(body.model).toBe("echo");
    expect(JSON.parse(body.choices[0]?.message.content ?? "")).toMatchObject({ prompt: "hi there" });
    expect(body.choices[0]?.finish_reason).toBe("stop");
  });

  it("streams OpenAI chunks ending in [DONE]", async () => {
    gateway = await testGateway();
    const token = await gateway.token("app", { purposes: ["enrichments"] });
    const response = await chat(
      {
        model: "purpose:enrichments",
        stream: true,
        stream_options: { include_usage: true },
        messages: [{ role: "user", content: "hi there" }],
      },
      token,
    );
    expect(response.headers.get("content-type")).toMatch(/text\/event-stream/);
    expect(response.headers.get("x-switchboard-model")).toBe("echo");
    const events = parseSse(await response.text());
    expect(events.at(-1)?.data).toBe("[DONE]");
    const chunks = events.slice(0, -1).map((event) => JSON.parse(event.data));
    const text = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? "").join("");
    expect(JSON.parse(text)).toMatchObject({ prompt: "hi there", stream: true });
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { prompt_tokens: 2 } });
  });

  it("streams Anthropic events ending in message_stop", async () => {
    gateway = await testGateway();
    const token = await gateway.token("app", { purposes: ["enrichments"] });
    const response = await messages(
      {
        model: "purpose:enrichments",
        max_tokens: 100,
        stream: true,
        messages: [{ role: "user", content: "hi" }],
      },
      token,
    );
    const events = parseSse(await response.text());
    expect(events[0]?.event).toBe("message_start");
    expect(events.at(-1)?.event).toBe("message_stop");
    expect(events.every((event) => event.event !== undefined)).toBe(true);
  });
});

describe("health and metrics", () => {
  it("answers /health, /ready and /metrics without a token", async () => {
    gateway = await testGateway();
    expect(await (await gateway.app.request("/health")).json()).toEqual({ status: "ok" });
    expect(await (await gateway.app.request("/ready")).json()).toEqual({ status: "ready" });
    const token = await gateway.token("app", { purposes: ["enrichments"] });
    await chat(
      { model: "purpose:enrichments", messages: [{ role: "user", content: "one two three" }] },
      token,
    );
    const metrics = await (await gateway.app.request("/metrics")).text();
    expect(metrics).toMatch(/switchboard_http_requests_total\{route="chat_completions",status="200"\} 1/);
    expect(metrics).toMatch(
      /switchboard_gateway_tokens_total\{purpose="enrichments",model="echo",direction="input"\} 3/,
    );
    expect(metrics).toMatch(/switchboard_gateway_overhead_seconds_count\{route="chat_completions"\} 1/);
    expect(metrics).toMatch(/switchboard_http_requests_in_flight 1/);
  });

  it("answers /ready with 503 while the store cannot be reached", async () => {
    const file = join(temporaryDirectory(), "not-a-folder");
    writeFileSync(file, "");
    const broken = await testGateway({ ...EMBEDDED, storage: `sqlite:${join(file, "switchboard.db")}` });
    const response = await broken.app.request("/ready");
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ status: "unavailable" });
    expect((await broken.app.request("/health")).status).toBe(200);
    await expect(broken.close()).rejects.toThrow(/storage/i);
    gateway = await testGateway();
  });

  it("answers an unknown route with 404 in the wire's shape", async () => {
    gateway = await testGateway();
    const token = await gateway.token("app");
    const response = await gateway.app.request("/v1/nope", { headers: bearer(token) });
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ error: { code: "not_found" } });
  });
});

describe("startServer", () => {
  it("says how to fix a port that is already in use", async () => {
    gateway = await testGateway();
    const first = await startServer({ hub: gateway.hub, port: 0 });
    try {
      await expect(startServer({ hub: gateway.hub, port: first.port })).rejects.toThrow(
        /already in use .*--port/,
      );
    } finally {
      await first.close();
    }
  });
});
