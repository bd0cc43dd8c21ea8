/**
 * An instant OpenAI-compatible upstream for benchmarks, run as its own process so that its work
 * never shares an event loop with what is measured. `POST /v1/chat/completions` answers at once
 * with a fixed completion (usage included), or, with `"stream": true`, the same answer as
 * server-sent events: role, two content chunks, finish, usage (with `stream_options.include_usage`)
 * and `[DONE]`, all written before the body ends. `GET /v1/models` lists one model.
 *
 *   node bench/mock-upstream.ts [--port=N]   prints its base URL (…/v1) on the first line of stdout
 *   const mock = await spawnMockUpstream(); mock.url; await mock.close();
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createInterface } from "node:readline";

export const MOCK_ANSWER = "Hello from the mock upstream.";
const USAGE = { prompt_tokens: 9, completion_tokens: 6, total_tokens: 15 };
const JSON_HEADERS = { "content-type": "application/json" };
const SSE_HEADERS = { "content-type": "text/event-stream", "cache-control": "no-cache" };

function completion(model: string): string {
  return JSON.stringify({
    id: "chatcmpl-mock",
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: MOCK_ANSWER, refusal: null },
        logprobs: null,
        finish_reason: "stop",
      },
    ],
    usage: USAGE,
  });
}

function events(model: string, includeUsage: boolean): string {
  const base = {
    id: "chatcmpl-mock",
    object: "chat.completion.chunk",
    created: Math.floor(Date.now() / 1000),
    model,
  };
  const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
    `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`;
  const half = Math.ceil(MOCK_ANSWER.length / 2);
  return (
    chunk({ role: "assistant", content: "" }) +
    chunk({ content: MOCK_ANSWER.slice(0, half) }) +
    chunk({ content: MOCK_ANSWER.slice(half) }) +
    chunk({}, "stop") +
    (includeUsage ? `data: ${JSON.stringify({ ...base, choices: [], usage: USAGE })}\n\n` : "") +
    "data: [DONE]\n\n"
  );
}

function answer(request: IncomingMessage, response: ServerResponse, body: string): void {
  if (request.method === "GET" && request.url === "/v1/models") {
    response
      .writeHead(200, JSON_HEADERS)
      .end(JSON.stringify({ object: "list", data: [{ id: "mock-model" }] }));
    return;
  }
  if (request.method !== "POST" || request.url !== "/v1/chat/completions") {
    response.writeHead(404, JSON_HEADERS).end(JSON.stringify({ error: { message: "not found" } }));
    return;
  }
  let parsed: { model?: unknown; stream?: unknown; stream_options?: { include_usage?: unknown } };
  try {
    parsed = JSON.parse(body);
  } catch {
    response.writeHead(400, JSON_HEADERS).end(JSON.stringify({ error: { message: "malformed JSON" } }));
    return;
  }
  const model = typeof parsed.model === "string" ? parsed.model : "mock-model";
  if (parsed.stream === true) {
    response.writeHead(200, SSE_HEADERS).end(events(model, parsed.stream_options?.include_usage === true));
  } else {
    response.writeHead(200, JSON_HEADERS).end(completion(model));
  }
}

/** Starts the server in this process; resolves to its base URL (ending in /v1). */
export function serveMockUpstream(port = 0): Promise<string> {
  const server = createServer({ keepAliveTimeout: 60_000 }, (request, response) => {
    let body = "";
    request.setEncoding("utf8");
    request.on("data", (chunk: string) => {
      body += chunk;
    });
    request.on("end", () => answer(request, response, body));
  });
  return new Promise((resolve) => {
    server.listen(port, "127.0.0.1", () => {
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`);
    });
  });
}

export interface MockUpstream {
  /** Base URL, ending in /v1. */
  url: string;
  process: ChildProcess;
  close(): Promise<void>;
}

/** Runs the mock in a child process and waits for its URL. */
export function spawnMockUpstream(): Promise<MockUpstream> {
  const child = spawn(process.execPath, [new URL(import.meta.url).pathname], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`mock upstream exited with ${code} before listening`)));
    // Never outlive the benchmark, also when it fails.
    const killChild = () => child.kill();
    process.once("exit", killChild);
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once("line", (url) => {
      child.removeAllListeners("exit");
      child.once("exit", () => process.off("exit", killChild));
      resolve({
        url,
        process: child,
        close: () =>
          new Promise((done) => {
            if (child.exitCode !== null) return done();
            child.once("exit", () => done());
            child.kill("SIGTERM");
          }),
      });
    });
  });
}

if (import.meta.main) {
  const flag = process.argv.find((arg) => arg.startsWith("--port="));
  const url = await serveMockUpstream(flag ? Number(flag.slice("--port=".length)) : 0);
  process.stdout.write(`${url}\n`);
}
