/**
 * The scripted in-process HTTP server behind the OpenAI and Anthropic fakes: a queue of replies,
 * a record of every request, and the transport tricks (delays, cut connections). The wire formats
 * themselves live in `openai-server.ts` and `anthropic-server.ts`.
 */
import http, { type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

export interface FakeToolCall {
  /** Default: a generated provider-style id. */
  id?: string;
  name: string;
  arguments: Record<string, unknown>;
}

/** Token counts in Switchboard's terms; each fake translates them into its wire format. */
export interface FakeUsage {
  /** Total input tokens, cached ones included. */
  input: number;
  output: number;
  cachedInput?: number;
  /** Anthropic's `cache_creation_input_tokens`. */
  cacheWrite?: number;
  /** OpenAI's `completion_tokens_details.reasoning_tokens`. */
  reasoning?: number;
}

/** A successful answer, streamed or not depending on the request's `stream` flag. */
export interface FakeAnswer {
  /** The answer text; an array gives the exact streamed chunks (default: split into words). */
  text?: string | string[];
  toolCalls?: FakeToolCall[];
  /** `null` leaves usage out; default: word counts of the request and the answer. */
  usage?: FakeUsage | null;
  /** The model the reply reports (default: the requested one). */
  model?: string;
  /** The wire value (default: the format's "stop" or "tool calls" reason). */
  finishReason?: string;
  /** Wait this long before sending the response headers. */
  delayMs?: number;
  /** Wait this long before each streamed event. */
  chunkDelayMs?: number;
  /** Stop after this many streamed events (a non-streamed body stops half-way). */
  cutAfter?: number;
  /** How the cut looks: a dropped socket (default) or a clean end without the terminal event. */
  cutMode?: "destroy" | "end";
  /**
   * Send the format's mid-stream error event after the content, then end the stream; a
   * non-streamed request gets the format's error body with status 200 instead of an answer.
   */
  streamError?: { type: string; message: string };
}

/** An HTTP error reply with the format's error body. */
export interface FakeHttpError {
  status: number;
  message?: string;
  /** The format's error type (default derived from the status). */
  errorType?: string;
  headers?: Record<string, string>;
  delayMs?: number;
}

export type FakeReply = FakeAnswer | FakeHttpError;

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  // biome-ignore lint/suspicious/noExplicitAny: tests inspect the recorded JSON freely.
  body: any;
}

export interface FakeServer {
  /** The base URL a client is configured with. */
  readonly url: string;
  /** Every request received (unless started with `record: false`), oldest first. */
  readonly requests: RecordedRequest[];
  readonly requestCount: number;
  /** Queues replies, used in order; an empty queue answers by echoing the last user message. */
  enqueue(...replies: FakeReply[]): void;
  /** Drops queued replies and recorded requests. */
  reset(): void;
  close(): Promise<void>;
}

export interface FakeServerOptions {
  /** Keep request records (default true); benchmarks turn it off. */
  record?: boolean;
}

export interface SseEvent {
  event?: string;
  data: unknown;
}

/** What a wire format supplies to the shared server. */
export interface WireFormat {
  /** The endpoint path, e.g. `/v1/chat/completions`. */
  path: string;
  /** What to append to `http://127.0.0.1:PORT` for the client's base URL. */
  baseSuffix: string;
  lastUserText(body: Record<string, unknown>): string;
  errorBody(status: number, message: string, errorType: string | undefined): unknown;
  completion(reply: ResolvedAnswer, body: Record<string, unknown>): unknown;
  /** The streamed events: the content, then the ending (finish, usage, terminal event). */
  events(reply: ResolvedAnswer, body: Record<string, unknown>): { content: SseEvent[]; ending: SseEvent[] };
  /** The format's mid-stream error event. */
  errorEvent(error: { type: string; message: string }): SseEvent;
}

/** A `FakeAnswer` with its defaults filled in. */
export interface ResolvedAnswer extends FakeAnswer {
  chunks: string[];
  toolCalls: FakeToolCall[];
  usage: FakeUsage | null;
  model: string;
}

let idCounter = 0;
export function fakeId(prefix: string): string {
  idCounter += 1;
  return `${prefix}${idCounter.toString(36).padStart(6, "0")}`;
}

export function wordCount(text: string): number {
  return text.split(/\s+/).filter(Boolean).length;
}

/** Splits a string into `parts` nearly equal fragments, the way a tokenizer streams JSON. */
export function fragments(text: string, parts: number): string[] {
  const size = Math.max(1, Math.ceil(text.length / parts));
  const result: string[] = [];
  for (let i = 0; i < text.length; i += size) result.push(text.slice(i, i + size));
  return result;
}

export async function startFakeServer(
  wire: WireFormat,
  options: FakeServerOptions = {},
): Promise<FakeServer> {
  const record = options.record ?? true;
  const queue: FakeReply[] = [];
  const requests: RecordedRequest[] = [];
  let requestCount = 0;

  const server = http.createServer(async (req, res) => {
    const aborted = new AbortController();
    res.on("close", () => aborted.abort());
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const text = Buffer.concat(chunks).toString("utf8");
      const body = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
      requestCount += 1;
      if (record)
        requests.push({ method: req.method ?? "", path: req.url ?? "", headers: req.headers, body });
      if (req.method !== "POST" || req.url !== wire.path) {
        sendJson(res, 404, wire.errorBody(404, `No route for ${req.method} ${req.url}`, undefined));
        return;
      }
      const reply = queue.shift() ?? { text: wire.lastUserText(body) };
      if (reply.delayMs) await sleep(reply.delayMs, undefined, { signal: aborted.signal });
      if ("status" in reply) {
        sendJson(
          res,
          reply.status,
          wire.errorBody(
            reply.status,
            reply.message ?? http.STATUS_CODES[reply.status] ?? "error",
            reply.errorType,
          ),
          reply.headers,
        );
        return;
      }
      const answer = resolveAnswer(reply, body, wire);
      if (body.stream === true) await sendStream(res, wire, answer, body, aborted.signal);
      else if (answer.streamError) {
        const { type, message } = answer.streamError;
        sendJson(res, 200, wire.errorBody(200, message, type));
      } else sendCompletion(res, wire.completion(answer, body), answer);
    } catch (error) {
      if (aborted.signal.aborted) return;
      sendJson(res, 500, wire.errorBody(500, `fake server failed: ${String(error)}`, undefined));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}${wire.baseSuffix}`,
    requests,
    get requestCount() {
      return requestCount;
    },
    enqueue(...replies) {
      queue.push(...replies);
    },
    reset() {
      queue.length = 0;
      requests.length = 0;
      requestCount = 0;
    },
    close() {
      server.closeAllConnections();
      return new Promise<void>((resolve, reject) =>
        server.close((error) => (error ? reject(error) : resolve())),
      );
    },
  };
}

function resolveAnswer(reply: FakeAnswer, body: Record<string, unknown>, wire: WireFormat): ResolvedAnswer {
  const chunks =
    reply.text === undefined ? [] : typeof reply.text === "string" ? splitWords(reply.text) : reply.text;
  const toolCalls = reply.toolCalls ?? [];
  const answerText = chunks.join("") + toolCalls.map((call) => JSON.stringify(call.arguments)).join(" ");
  const usage =
    reply.usage === undefined
      ? { input: wordCount(wire.lastUserText(body)), output: wordCount(answerText) }
      : reply.usage;
  const model = reply.model ?? (typeof body.model === "string" ? body.model : "fake-model");
  return { ...reply, chunks, toolCalls, usage, model };
}

function splitWords(text: string): string[] {
  return text.match(/\S+\s*|\s+/g) ?? [];
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body));
}

function sendCompletion(res: ServerResponse, body: unknown, answer: ResolvedAnswer): void {
  const json = JSON.stringify(body);
  if (answer.cutAfter === undefined) {
    res.writeHead(200, { "content-type": "application/json" }).end(json);
    return;
  }
  // Announce the full length, send half, then drop the connection.
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(json) });
  res.write(json.slice(0, Math.floor(json.length / 2)));
  res.socket?.end();
}

async function sendStream(
  res: ServerResponse,
  wire: WireFormat,
  answer: ResolvedAnswer,
  body: Record<string, unknown>,
  signal: AbortSignal,
): Promise<void> {
  const { content, ending } = wire.events(answer, body);
  const events = [...content, ...(answer.streamError ? [wire.errorEvent(answer.streamError)] : ending)];
  res.writeHead(200, {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    connection: "keep-alive",
  });
  for (const [index, event] of events.entries()) {
    if (answer.cutAfter !== undefined && index >= answer.cutAfter) {
      // Ending the socket (not the response) flushes what was written, then drops the connection
      // before the chunked body is complete: the client sees a broken stream.
      if (answer.cutMode === "end") res.end();
      else res.socket?.end();
      return;
    }
    if (answer.chunkDelayMs) await sleep(answer.chunkDelayMs, undefined, { signal });
    const data = typeof event.data === "string" ? event.data : JSON.stringify(event.data);
    res.write(event.event === undefined ? `data: ${data}\n\n` : `event: ${event.event}\ndata: ${data}\n\n`);
  }
  res.end();
}
