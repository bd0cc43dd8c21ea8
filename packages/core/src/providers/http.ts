/**
 * HTTP plumbing shared by the network providers: one POST with retries, one server-sent-events
 * reader, and the mapping of every failure onto the `SwitchboardError` family.
 */
import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import type { z } from "zod";
import { abortError } from "../abort.ts";
import { describeError, SwitchboardError } from "../errors.ts";
import { isRecord } from "../json.ts";
import { isWellFormedKey } from "../keys.ts";
import { rememberSecret, scrubSecrets } from "../scrub.ts";
import type { AsyncModelDefinition, Attachment, Capabilities, ModelRequest } from "../types.ts";

/** Who a request is for: named in every error, and used to say how to fix a rejected key. */
export interface ProviderContext {
  /** Provider name for messages (`openai`, `anthropic`, a configured endpoint's name). */
  provider: string;
  /** The Switchboard model id the request is made for. */
  model: string;
  /** Key alias, to say how to set a key when the provider rejects it. */
  keyAlias?: string;
  keyEnvVar?: string;
}

export interface PostJsonOptions {
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Retries after the first attempt (default 2). */
  maxRetries?: number;
  /** First backoff delay; doubles per retry, with jitter (default 500 ms). */
  retryBaseDelayMs?: number;
  /** Longest wait between attempts; a `retry-after` beyond it fails at once (default 30 s). */
  maxRetryDelayMs?: number;
  fetchImpl?: typeof fetch;
}

/** Retry and transport settings; tests and benchmarks shorten the delays or swap `fetch`. */
export type HttpSettings = Omit<PostJsonOptions, "headers" | "signal">;

const RETRYABLE_STATUSES = new Set([408, 429, 500, 502, 503, 504, 529]);
const MAX_PROVIDER_MESSAGE = 300;

/**
 * POSTs `body` as JSON and resolves with the response once its status is 2xx. Retries 408/429/5xx
 * and connection failures with exponential backoff and jitter, honouring `retry-after-ms` and
 * `retry-after` (seconds or HTTP date). The body of the returned response is unread, so callers can
 * stream it. Every failure is a `SwitchboardError`. The caller's signal is the only deadline: the
 * response that made the request owns its timeout.
 */
export async function postJson(
  url: string,
  body: unknown,
  context: ProviderContext,
  options: PostJsonOptions = {},
): Promise<Response> {
  const {
    signal,
    maxRetries = 2,
    retryBaseDelayMs = 500,
    maxRetryDelayMs = 30_000,
    fetchImpl = fetch,
  } = options;
  const init: RequestInit = {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json", ...options.headers },
    body: JSON.stringify(body),
    signal: signal ?? null,
  };
  // fetch would throw on these and echo the value: a key in a header, a password in a URL.
  refuseUnsendable(url, init.headers as Record<string, string>, context);
  for (let attempt = 0; ; attempt++) {
    let response: Response;
    try {
      response = await fetchImpl(url, init);
    } catch (error) {
      if (signal?.aborted) throw abortError(signal, context);
      if (attempt < maxRetries) {
        await wait(backoffDelay(attempt, retryBaseDelayMs, maxRetryDelayMs), signal, context);
        continue;
      }
      throw new SwitchboardError(
        "PROVIDER_ERROR",
        `Could not connect to ${context.provider} for model ${context.model} (${url}): ${describeError(error)}.`,
        { status: undefined, provider: context.provider, model: context.model },
        { cause: error, retryable: true },
      );
    }
    if (response.ok) return response;

    const retryable = RETRYABLE_STATUSES.has(response.status);
    if (retryable && attempt < maxRetries && response.headers.get("x-should-retry") !== "false") {
      const hinted = retryAfterMs(response.headers);
      if (hinted === undefined || hinted <= maxRetryDelayMs) {
        await response.body?.cancel().catch(() => {});
        await wait(hinted ?? backoffDelay(attempt, retryBaseDelayMs, maxRetryDelayMs), signal, context);
        continue;
      }
    }
    throw await httpError(response, context, retryable, signal);
  }
}

/**
 * A request fetch cannot make fails here, once, without the offending value in the message: such a
 * failure is configuration, and retrying it cannot help.
 */
function refuseUnsendable(url: string, headers: Record<string, string>, context: ProviderContext): void {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || parsed.username || parsed.password) {
    throw new SwitchboardError(
      "INVALID_CONFIG",
      parsed === undefined
        ? `The base URL of ${context.provider} is not a valid URL (${url}); fix it in the configuration.`
        : `The base URL of ${context.provider} (${url}) contains credentials, which cannot be sent in a URL; remove them and configure a key for the endpoint instead.`,
      { provider: context.provider, model: context.model },
    );
  }
  for (const [name, value] of Object.entries(headers)) {
    if (isWellFormedKey(value)) continue;
    const isKey = name === "authorization" || name === "x-api-key";
    throw new SwitchboardError(
      "INVALID_CONFIG",
      isKey
        ? `The API key for model ${context.model} is malformed: it contains a line break or another character an HTTP header cannot carry. ${howToSetKey(context)}`
        : `Header ${name} configured for ${context.provider} contains a line break or another character an HTTP header cannot carry; fix it in the configuration.`,
      { provider: context.provider, model: context.model, header: name },
    );
  }
}

/** Exponential backoff with up to 25% jitter so that concurrent clients do not retry in lockstep. */
function backoffDelay(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** attempt) * (1 - Math.random() * 0.25);
}

function retryAfterMs(headers: Headers): number | undefined {
  const ms = headers.get("retry-after-ms");
  if (ms !== null) {
    const value = Number(ms);
    if (Number.isFinite(value) && value >= 0) return value;
  }
  const after = headers.get("retry-after")?.trim();
  if (!after) return undefined;
  const seconds = Number(after);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(after);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

async function wait(ms: number, signal: AbortSignal | undefined, context: ProviderContext): Promise<void> {
  try {
    await sleep(ms, undefined, signal ? { signal } : undefined);
  } catch (error) {
    if (signal?.aborted) throw abortError(signal, context);
    throw error;
  }
}

async function httpError(
  response: Response,
  context: ProviderContext,
  retryable: boolean,
  signal: AbortSignal | undefined,
): Promise<SwitchboardError> {
  let text = "";
  try {
    text = await response.text();
  } catch {
    if (signal?.aborted) return abortError(signal, context);
  }
  const status = response.status;
  const details = { status, provider: context.provider, model: context.model };
  const message = providerMessage(text) ?? scrubProviderText(response.statusText);
  const said = message ? `: ${message}` : "";
  if (status === 401 || status === 403) {
    return new SwitchboardError(
      "PROVIDER_AUTH",
      `${context.provider} rejected the API key for model ${context.model} (HTTP ${status}${said}). ${howToSetKey(context)}`,
      details,
      { retryable },
    );
  }
  if (status === 429) {
    return new SwitchboardError(
      "RATE_LIMITED",
      `${context.provider} rate-limited model ${context.model} (HTTP 429${said}); try again later or use another model.`,
      details,
      { retryable },
    );
  }
  return new SwitchboardError(
    "PROVIDER_ERROR",
    `${context.provider} returned HTTP ${status} for model ${context.model}${said}.`,
    details,
    { retryable },
  );
}

function howToSetKey(context: ProviderContext): string {
  if (!context.keyAlias) return `Configure a key for the ${context.provider} endpoint.`;
  const ways = [`run 'switchboard keys set ${context.keyAlias}'`];
  if (context.keyEnvVar) ways.push(`set the ${context.keyEnvVar} environment variable`);
  return `Set a valid key: ${ways.join(" or ")}.`;
}

/**
 * The provider's own words about a failure, from an error body, cut to length and scrubbed:
 * providers echo (partly masked) keys in auth errors. OpenAI and Anthropic both put a
 * human-readable message at `error.message`.
 */
export function providerMessage(text: string): string | undefined {
  if (!text) return undefined;
  let message: unknown;
  try {
    const parsed: unknown = JSON.parse(text);
    if (isRecord(parsed)) {
      const error = parsed.error;
      message = isRecord(error) ? error.message : typeof error === "string" ? error : parsed.message;
    }
  } catch {
    message = text;
  }
  return typeof message === "string" ? cleanProviderMessage(message) : undefined;
}

/** The same for an error object a provider sent inside a 200 response (an SSE `error` event, a JSON `error`). */
export function providerErrorMessage(error: unknown): string | undefined {
  const message = isRecord(error) ? error.message : error;
  return typeof message === "string" ? cleanProviderMessage(message) : undefined;
}

/** Scrubbed before it is cut, so a key that straddles the cut cannot leave a fragment behind. */
function cleanProviderMessage(message: string): string | undefined {
  if (message.length === 0) return undefined;
  const clean = scrubProviderText(message);
  return clean.length > MAX_PROVIDER_MESSAGE ? `${clean.slice(0, MAX_PROVIDER_MESSAGE)}…` : clean;
}

/** Remembered keys and URL credentials, plus the masked `sk-…` forms providers quote back. */
function scrubProviderText(message: string): string {
  return scrubSecrets(message).replace(/\bsk-[\w*.-]{4,}/g, "[redacted]");
}

/** The stream ended (or broke) before the provider's terminal event: never a short success. */
export function streamInterrupted(
  context: ProviderContext,
  status: number,
  cause?: unknown,
): SwitchboardError {
  const reason =
    cause === undefined ? "ended before the response was complete" : `broke: ${describeError(cause)}`;
  return new SwitchboardError(
    "STREAM_INTERRUPTED",
    `The response stream from ${context.provider} for model ${context.model} ${reason}.`,
    { status, provider: context.provider, model: context.model },
    cause === undefined ? { retryable: true } : { cause, retryable: true },
  );
}

/** Maps a failure while reading a response body: abort/timeout, our own errors, or a dropped connection. */
export function bodyReadError(
  error: unknown,
  signal: AbortSignal,
  context: ProviderContext,
  status: number,
): SwitchboardError {
  if (signal.aborted) return abortError(signal, context);
  if (SwitchboardError.isInstance(error)) return error;
  return streamInterrupted(context, status, error);
}

/** Reads a non-streamed JSON body, mapping a dropped connection or a malformed body to errors. */
export async function readJsonBody(
  response: Response,
  signal: AbortSignal,
  context: ProviderContext,
): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await response.text();
  } catch (error) {
    throw bodyReadError(error, signal, context, response.status);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    // A truncated body is the non-streamed form of a cut stream.
    throw streamInterrupted(context, response.status, error);
  }
  if (!isRecord(parsed)) {
    throw new SwitchboardError(
      "PROVIDER_ERROR",
      `${context.provider} returned an unexpected body for model ${context.model}.`,
      { status: response.status, provider: context.provider, model: context.model },
    );
  }
  return parsed;
}

/** Parses one streamed JSON event; a malformed one means the stream was corrupted. */
export function parseEventJson(
  data: string,
  context: ProviderContext,
  status: number,
): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch (error) {
    throw streamInterrupted(context, status, error);
  }
  if (!isRecord(parsed)) throw streamInterrupted(context, status);
  return parsed;
}

/**
 * The reason given when a stream is left before its end (a consumer stopped after `[DONE]`). One
 * shared value: without a reason the fetch implementation builds an AbortError, with its stack,
 * on every call.
 */
const STREAM_LEFT = Object.freeze(new Error("The rest of the event stream is not needed."));

export interface ServerSentEvent {
  event?: string;
  data: string;
}

/**
 * Yields the events of a `text/event-stream` body. Handles events and lines split across chunks,
 * multi-line `data`, CR/LF/CRLF line ends and comments. Events without data are skipped, as the
 * spec says. At the end of the body a last event whose lines are complete is still delivered
 * (some servers omit the final blank line); a partial last line is dropped.
 */
export async function* readServerSentEvents(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<ServerSentEvent> {
  const reader = body.getReader();
  // Per call: a shared global regex would carry `lastIndex` across concurrent streams.
  const lineEnd = /\r\n?|\n/g;
  const decoder = new TextDecoder();
  let buffer = "";
  let eventName: string | undefined;
  let data: string | undefined;
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        finished = true;
        buffer += decoder.decode();
      } else {
        buffer += decoder.decode(value, { stream: true });
      }
      let start = 0;
      lineEnd.lastIndex = 0;
      for (let match = lineEnd.exec(buffer); match !== null; match = lineEnd.exec(buffer)) {
        // A CR that ends the buffer may be the first half of a CRLF split across chunks.
        if (!finished && match[0] === "\r" && match.index === buffer.length - 1) break;
        const line = buffer.slice(start, match.index);
        start = lineEnd.lastIndex;
        if (line.length === 0) {
          if (data !== undefined) {
            yield eventName === undefined ? { data } : { event: eventName, data };
          }
          eventName = undefined;
          data = undefined;
          continue;
        }
        const colon = line.indexOf(":");
        if (colon === 0) continue;
        const field = colon === -1 ? line : line.slice(0, colon);
        let valueStart = colon === -1 ? line.length : colon + 1;
        if (line.charCodeAt(valueStart) === 32) valueStart++;
        if (field === "data") {
          const value = line.slice(valueStart);
          data = data === undefined ? value : `${data}\n${value}`;
        } else if (field === "event") {
          eventName = line.slice(valueStart);
        }
      }
      buffer = start === 0 ? buffer : buffer.slice(start);
      if (finished) {
        if (buffer.length === 0 && data !== undefined) {
          yield eventName === undefined ? { data } : { event: eventName, data };
        }
        return;
      }
    }
  } finally {
    if (finished) reader.releaseLock();
    else await reader.cancel(STREAM_LEFT).catch(() => {});
  }
}

/** An attachment's bytes as base64: given bytes, or the file at `path` read now (never at registration). */
export async function attachmentBase64(attachment: Attachment, context: ProviderContext): Promise<string> {
  if (attachment.content) {
    const { buffer, byteOffset, byteLength } = attachment.content;
    return Buffer.from(buffer, byteOffset, byteLength).toString("base64");
  }
  if (attachment.path !== undefined) {
    try {
      return (await readFile(attachment.path)).toString("base64");
    } catch (error) {
      throw new SwitchboardError(
        "INVALID_ATTACHMENT",
        `Cannot read attachment ${attachment.path}: ${describeError(error)}.`,
        { provider: context.provider, model: context.model, path: attachment.path },
        { cause: error },
      );
    }
  }
  throw new SwitchboardError("INVALID_ATTACHMENT", "An attachment needs a path, a URL or content.", {
    provider: context.provider,
    model: context.model,
  });
}

/** Tool-call arguments arrive as JSON text (streamed in fragments); the spec wants an object. */
export function parseToolArguments(
  json: string,
  toolName: string,
  context: ProviderContext,
): Record<string, unknown> {
  if (json.trim() === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    parsed = undefined;
  }
  if (!isRecord(parsed)) {
    throw new SwitchboardError(
      "PROVIDER_ERROR",
      `${context.provider} model ${context.model} called tool "${toolName}" with arguments that are not a JSON object.`,
      { status: undefined, provider: context.provider, model: context.model },
      { retryable: true },
    );
  }
  return parsed;
}

export interface CompatibleModelEntry {
  /** The Switchboard model id. */
  id: string;
  /** The upstream model name (default: `id`). */
  name?: string;
  aliases?: readonly string[];
  capabilities?: Partial<Capabilities>;
}

export interface CompatibleEndpointConfig {
  /** Plugin and provider name, e.g. `ollama`. */
  name: string;
  baseUrl: string;
  headers?: Record<string, string>;
  needsKey?: string;
  keyEnvVar?: string;
  /** Timeout of a whole response in ms (a prompt's own `timeoutMs` wins). */
  timeoutMs?: number;
  /** How long an attempt may wait for its first output before a fallback is tried. */
  firstChunkTimeoutMs?: number;
  models: readonly CompatibleModelEntry[];
  http?: HttpSettings;
}

/** The parts of a model's config that a configured endpoint supplies, for either wire format. */
export function endpointModelConfig(endpoint: CompatibleEndpointConfig, model: CompatibleModelEntry) {
  return {
    id: model.id,
    baseUrl: endpoint.baseUrl,
    provider: endpoint.name,
    ...(model.name ? { upstreamName: model.name } : {}),
    ...(model.aliases ? { aliases: model.aliases } : {}),
    ...(model.capabilities ? { capabilities: model.capabilities } : {}),
    ...(endpoint.headers ? { headers: endpoint.headers } : {}),
    ...(endpoint.needsKey ? { needsKey: endpoint.needsKey } : {}),
    ...(endpoint.keyEnvVar ? { keyEnvVar: endpoint.keyEnvVar } : {}),
    ...(endpoint.timeoutMs !== undefined ? { timeoutMs: endpoint.timeoutMs } : {}),
    ...(endpoint.firstChunkTimeoutMs !== undefined
      ? { firstChunkTimeoutMs: endpoint.firstChunkTimeoutMs }
      : {}),
    ...(endpoint.http ? { http: endpoint.http } : {}),
  };
}

/** Settings every HTTP model has, whatever its wire format. */
export interface HttpModelConfig {
  /** The Switchboard model id. */
  id: string;
  /** The model name the endpoint expects (default: `id`). */
  upstreamName?: string;
  baseUrl: string;
  headers?: Record<string, string>;
  needsKey?: string;
  keyEnvVar?: string;
  /** Provider name for listings and errors (default: the wire format's name). */
  provider?: string;
  capabilities?: Partial<Capabilities>;
  aliases?: readonly string[];
  /** Accepted options (default: the wire format's options). */
  options?: z.ZodObject;
  /** Timeout of a whole response in ms (a prompt's own `timeoutMs` wins). */
  timeoutMs?: number;
  /** How long an attempt may wait for its first output before a fallback is tried. */
  firstChunkTimeoutMs?: number;
  http?: HttpSettings;
}

const HTTP_MODEL_CAPABILITIES: Capabilities = {
  streaming: true,
  tools: true,
  schema: true,
  attachmentTypes: [],
};

/** The model definition of an HTTP model; `execute` speaks the wire format. */
export function httpModelDefinition(
  config: HttpModelConfig,
  defaults: { provider: string; options: z.ZodObject },
  execute: AsyncModelDefinition["execute"],
): AsyncModelDefinition {
  rememberUrlPassword(config.baseUrl);
  const definition: AsyncModelDefinition = {
    id: config.id,
    provider: config.provider ?? defaults.provider,
    capabilities: { ...HTTP_MODEL_CAPABILITIES, ...config.capabilities },
    options: config.options ?? defaults.options,
    execute,
  };
  if (config.aliases) definition.aliases = config.aliases;
  if (config.needsKey) definition.needsKey = config.needsKey;
  if (config.keyEnvVar) definition.keyEnvVar = config.keyEnvVar;
  if (config.timeoutMs !== undefined) definition.timeoutMs = config.timeoutMs;
  if (config.firstChunkTimeoutMs !== undefined) definition.firstChunkTimeoutMs = config.firstChunkTimeoutMs;
  return definition;
}

/** A password in a configured URL is a secret like a key, wherever else it might be printed. */
function rememberUrlPassword(url: string): void {
  try {
    const { password } = new URL(url);
    if (password) rememberSecret(decodeURIComponent(password));
  } catch {
    // An invalid URL is reported when a request is made.
  }
}

/** What errors of one request may mention; the key is remembered so that none of them can show it. */
export function providerContextFor(
  config: HttpModelConfig,
  defaultProvider: string,
  request: ModelRequest,
): ProviderContext {
  rememberSecret(request.key);
  const context: ProviderContext = {
    provider: config.provider ?? defaultProvider,
    model: request.modelId,
  };
  if (config.needsKey) context.keyAlias = config.needsKey;
  if (config.keyEnvVar) context.keyEnvVar = config.keyEnvVar;
  return context;
}
