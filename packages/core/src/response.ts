import { abortError, RequestTimeout, type TimeoutSource } from "./abort.ts";
import { describeError, isSwitchboardError, SwitchboardError } from "./errors.ts";
import { newId } from "./ids.ts";
import type {
  Attachment,
  FallbackModel,
  FinishReason,
  HistoryMessage,
  ModelRequest,
  PromptInput,
  ResponsePart,
  StreamPart,
  ToolCall,
  Usage,
} from "./types.ts";

export type ResponseStatus = "pending" | "running" | "done" | "failed";

/** The observed lifecycle a response reports to (an `ExecutionScope`). */
export interface ResponseScope {
  /** Runs before any request; rejecting refuses the response. */
  before(): Promise<void>;
  onResponse(response: ModelResponse): Promise<void>;
  after(error?: unknown): Promise<void>;
}

/** What a request replays before its own prompt: earlier messages, and the system prompt they set. */
export interface Replay {
  history: readonly HistoryMessage<Attachment>[];
  /** The system prompt of an earlier turn, used when this prompt gives none. */
  system?: string | undefined;
}

/** A timeout in ms and where its value came from (for the message when it fires). */
export interface TimeoutSetting {
  ms: number;
  source: TimeoutSource;
}

/** The internal wiring of one response; built by `Model` and `Conversation`. */
export interface ResponseInit {
  input: PromptInput;
  stream: boolean;
  /** The model asked for first, then fallbacks; each with the key it runs with. */
  candidates: readonly FallbackModel[];
  scope: ResponseScope;
  /** Whether this response alone is the observed execution (false inside a chain). */
  ownsScope: boolean;
  /** Called when the response starts: a conversation's earlier turns are only known then. */
  replay: () => Replay;
  onComplete?: (response: ModelResponse) => void;
  chainId?: string;
  conversationId?: string;
  signal?: AbortSignal;
  /** Bounds the whole response, fallbacks included. */
  timeout: TimeoutSetting;
  /** The prompt's first-chunk timeout; else each candidate's own `firstChunkTimeoutMs` applies. */
  firstChunkTimeoutMs?: number;
}

/** The default timeout of a whole response. */
export const DEFAULT_TIMEOUT_MS = 10 * 60 * 1000;

const FINISH_REASONS: ReadonlySet<string> = new Set<FinishReason>([
  "stop",
  "length",
  "tool-calls",
  "content-filter",
  "error",
  "other",
]);

/** A plugin may still yield a provider's own reason: outside the closed set it is `other`, kept raw. */
function normalizeFinish(part: { reason: string; rawReason?: string }): {
  reason: FinishReason;
  rawReason: string | undefined;
} {
  if (FINISH_REASONS.has(part.reason))
    return { reason: part.reason as FinishReason, rawReason: part.rawReason };
  return { reason: "other", rawReason: part.rawReason ?? part.reason };
}

function toSwitchboardError(error: unknown, signal: AbortSignal, modelId: string): unknown {
  if (isSwitchboardError(error)) return error;
  if (signal.aborted) return abortError(signal, { model: modelId });
  return error;
}

/**
 * A lazy model response. Nothing is sent until it is iterated or one of `text()`, `usage()`,
 * `toolCalls()`, `done()` is awaited. Iterating yields text chunks as they arrive; `parts()` yields
 * typed parts. Iterating again (or after completion) replays them.
 */
export class ModelResponse implements AsyncIterable<string> {
  readonly id: string = newId("resp");
  /** The model id asked for. */
  readonly modelId: string;
  readonly input: PromptInput;
  readonly stream: boolean;
  readonly chainId: string | undefined;
  readonly conversationId: string | undefined;

  readonly #init: ResponseInit;
  readonly #chunks: string[] = [];
  readonly #parts: ResponsePart[] = [];
  #toolCalls: ToolCall[] = [];
  #usage: Usage = {};
  #status: ResponseStatus = "pending";
  /** Set once hooks have run too: only then do consumers see the end. */
  #complete = false;
  #error: unknown;
  #answeredBy: string | undefined;
  #resolvedModel: string | undefined;
  #finishReason: FinishReason | undefined;
  #rawFinishReason: string | undefined;
  #startedAt: number | undefined;
  #durationMs: number | undefined;
  #attempts: { model: string; error: string }[] = [];
  #run: Promise<void> | undefined;
  #wakers: (() => void)[] = [];
  #doneCallbacks: ((response: ModelResponse) => unknown)[] = [];

  constructor(init: ResponseInit) {
    const first = init.candidates[0];
    if (!first) throw new SwitchboardError("INVALID_INPUT", "A response needs a model.");
    this.#init = init;
    this.modelId = first.model.id;
    this.input = init.input;
    this.stream = init.stream;
    this.chainId = init.chainId;
    this.conversationId = init.conversationId;
  }

  get status(): ResponseStatus {
    return this.#status;
  }
  /** The error a failed response ended with. */
  get error(): unknown {
    return this.#error;
  }
  /**
   * The model id that produced this response (differs from `modelId` after a fallback); set from
   * its first output on.
   */
  get answeredBy(): string | undefined {
    return this.#answeredBy;
  }
  /** The exact upstream model, when the provider reported one. */
  get resolvedModel(): string | undefined {
    return this.#resolvedModel;
  }
  /** Why the response ended: `error` when it failed; undefined while it runs. */
  get finishReason(): FinishReason | undefined {
    if (this.#status === "failed") return "error";
    return this.#finishReason;
  }
  /** The provider's own finish value (`end_turn`, `tool_calls`…), when it gave one. */
  get rawFinishReason(): string | undefined {
    return this.#rawFinishReason;
  }
  /** The timeout that bounds this response, in ms (the prompt's, else the model's, else 10 minutes). */
  get timeoutMs(): number {
    return this.#init.timeout.ms;
  }
  /** Epoch ms when execution started. */
  get startedAt(): number | undefined {
    return this.#startedAt;
  }
  get durationMs(): number | undefined {
    return this.#durationMs;
  }
  /** Models tried before the one that answered, with why each failed. */
  get fallbackAttempts(): readonly { model: string; error: string }[] {
    return this.#attempts;
  }
  /** Text received so far (complete once the response is done). */
  get textSoFar(): string {
    return this.#chunks.join("");
  }
  /** Token usage as known now; `done()` first for the final figures. */
  get usageSoFar(): Usage {
    return this.#usage;
  }
  get toolCallsSoFar(): readonly ToolCall[] {
    return this.#toolCalls;
  }

  /** Runs the response to completion; resolves to itself, or rejects with its error. */
  async done(): Promise<this> {
    await this.#start();
    if (this.#status === "failed") throw this.#error;
    return this;
  }

  async text(): Promise<string> {
    await this.done();
    return this.#chunks.join("");
  }

  /** The text parsed as JSON (for prompts with a schema). */
  async json(): Promise<unknown> {
    const text = await this.text();
    try {
      return JSON.parse(text);
    } catch {
      throw new SwitchboardError("PROVIDER_ERROR", `Model ${this.modelId} returned text that is not JSON.`, {
        model: this.modelId,
      });
    }
  }

  async usage(): Promise<Usage> {
    await this.done();
    return this.#usage;
  }

  async toolCalls(): Promise<ToolCall[]> {
    await this.done();
    return [...this.#toolCalls];
  }

  /** Calls `callback` when the response completes successfully (at once if it already has). */
  onDone(callback: (response: ModelResponse) => unknown): void {
    if (this.#complete && this.#status === "done") void callback(this);
    else this.#doneCallbacks.push(callback);
  }

  /** Text chunks as they arrive; throws the response's error after the last chunk it received. */
  async *[Symbol.asyncIterator](): AsyncIterator<string> {
    void this.#start();
    let index = 0;
    for (;;) {
      while (index < this.#chunks.length) yield this.#chunks[index++] as string;
      if (this.#complete) {
        if (this.#status === "failed") throw this.#error;
        return;
      }
      await new Promise<void>((resolve) => this.#wakers.push(resolve));
    }
  }

  /**
   * Typed parts as they arrive: text, each tool call once complete, then one `usage` part (when
   * the provider reported usage) and one `finish` part. Throws the response's error after the last
   * part it received, so a failure never looks like a clean end.
   */
  async *parts(): AsyncGenerator<ResponsePart, void, undefined> {
    void this.#start();
    let index = 0;
    for (;;) {
      while (index < this.#parts.length) yield this.#parts[index++] as ResponsePart;
      if (this.#complete) {
        if (this.#status === "failed") throw this.#error;
        return;
      }
      await new Promise<void>((resolve) => this.#wakers.push(resolve));
    }
  }

  #wake(): void {
    if (this.#wakers.length === 0) return;
    const wakers = this.#wakers;
    this.#wakers = [];
    for (const wake of wakers) wake();
  }

  #start(): Promise<void> {
    this.#run ??= this.#execute();
    return this.#run;
  }

  /** Never rejects: the outcome is recorded in the status, and surfaces from `done()` and iteration. */
  async #execute(): Promise<void> {
    const init = this.#init;
    this.#status = "running";
    this.#startedAt = Date.now();
    const began = performance.now();
    // The one timeout of the response: providers only follow the signal. A clearable timer rather
    // than AbortSignal.timeout(), which would linger for the whole timeout.
    const { ms, source } = init.timeout;
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(new RequestTimeout(ms, "total", source)), ms);
    timer.unref();
    const signal = init.signal ? AbortSignal.any([init.signal, timeout.signal]) : timeout.signal;

    try {
      await init.scope.before();
    } catch (error) {
      // A refusal before any request: nothing ran, so nothing is reported as a response.
      clearTimeout(timer);
      this.#finish(error, began);
      return;
    }

    let failure: unknown;
    try {
      await this.#runCandidates(signal);
    } catch (error) {
      failure = error;
    } finally {
      clearTimeout(timer);
    }
    this.#durationMs = performance.now() - began;
    if (failure === undefined) {
      this.#finishReason ??= this.#toolCalls.length > 0 ? "tool-calls" : "stop";
      if (Object.keys(this.#usage).length > 0) this.#parts.push({ type: "usage", usage: this.#usage });
      this.#parts.push({
        type: "finish",
        reason: this.#finishReason,
        ...(this.#rawFinishReason === undefined ? {} : { rawReason: this.#rawFinishReason }),
      });
    }
    // Observers see the final status; consumers see the end only after the observers ran.
    this.#status = failure === undefined ? "done" : "failed";
    this.#error = failure;
    if (failure === undefined) init.onComplete?.(this);
    await init.scope.onResponse(this);
    if (init.ownsScope) await init.scope.after(failure);
    this.#finish(failure, began);
  }

  /** The first-chunk timeout of one attempt: the prompt's, else the candidate model's own. */
  #firstChunkTimeout(candidate: FallbackModel): TimeoutSetting | undefined {
    const given = this.#init.firstChunkTimeoutMs;
    if (given !== undefined) return { ms: given, source: "prompt" };
    const own = candidate.model.definition.firstChunkTimeoutMs;
    return own === undefined ? undefined : { ms: own, source: "model" };
  }

  async #runCandidates(signal: AbortSignal): Promise<void> {
    const { candidates } = this.#init;
    const replay = this.#init.replay();
    for (let index = 0; index < candidates.length; index++) {
      const candidate = candidates[index] as FallbackModel;
      const model = candidate.model;
      let produced = false;
      // Until the first output, an attempt may also end on its own first-chunk timeout, which
      // aborts only this attempt: the response's signal stays live for the next candidate.
      const firstChunk = this.#firstChunkTimeout(candidate);
      let attemptSignal = signal;
      let firstChunkTimer: ReturnType<typeof setTimeout> | undefined;
      if (firstChunk) {
        const attempt = new AbortController();
        attemptSignal = AbortSignal.any([signal, attempt.signal]);
        firstChunkTimer = setTimeout(
          () => attempt.abort(new RequestTimeout(firstChunk.ms, "first-chunk", firstChunk.source)),
          firstChunk.ms,
        );
        firstChunkTimer.unref();
      }
      try {
        const request: ModelRequest = {
          ...this.input,
          modelId: model.id,
          stream: this.stream,
          history: replay.history,
          key: model.resolveKey(candidate.key),
          signal: attemptSignal,
        };
        const system = this.input.system ?? replay.system;
        if (system !== undefined) request.system = system;
        for await (const part of model.definition.execute(request)) {
          if (this.#accept(part) && !produced) {
            produced = true;
            // Known from the first output, so a stream can name its model before it ends.
            this.#answeredBy = model.id;
            clearTimeout(firstChunkTimer);
          }
        }
        this.#answeredBy = model.id;
        return;
      } catch (raw) {
        const error = toSwitchboardError(raw, attemptSignal, model.id);
        const hasNext = index + 1 < candidates.length;
        const retryable = isSwitchboardError(error) && error.retryable;
        if (produced || !hasNext || !retryable || signal.aborted) throw error;
        this.#attempts.push({ model: model.id, error: describeError(error) });
        this.#toolCalls = [];
        this.#usage = {};
        this.#resolvedModel = undefined;
        this.#finishReason = undefined;
        this.#rawFinishReason = undefined;
      } finally {
        clearTimeout(firstChunkTimer);
      }
    }
  }

  /** Records one part; returns whether the caller has now seen output from this model. */
  #accept(part: StreamPart): boolean {
    switch (part.type) {
      case "text":
        if (part.text.length === 0) return false;
        this.#chunks.push(part.text);
        this.#parts.push(part);
        this.#wake();
        return true;
      case "tool-call": {
        const call: ToolCall = { id: part.id || newId("tc"), name: part.name, arguments: part.arguments };
        this.#toolCalls.push(call);
        this.#parts.push({ type: "tool-call", ...call });
        this.#wake();
        return true;
      }
      case "usage":
        this.#usage = { ...this.#usage, ...part.usage };
        return false;
      case "resolved-model":
        this.#resolvedModel = part.model;
        return false;
      case "finish": {
        const { reason, rawReason } = normalizeFinish(part);
        this.#finishReason = reason;
        this.#rawFinishReason = rawReason;
        return false;
      }
    }
  }

  #finish(error: unknown, began: number): void {
    this.#durationMs ??= performance.now() - began;
    this.#complete = true;
    if (error === undefined) {
      this.#status = "done";
      const callbacks = this.#doneCallbacks;
      this.#doneCallbacks = [];
      for (const callback of callbacks) void callback(this);
    } else {
      this.#status = "failed";
      this.#error = error;
    }
    this.#wake();
  }
}

/** Adds usages, keeping a figure `undefined` only when no response reported it. */
export function sumUsage(usages: readonly Usage[]): Usage {
  const total: Usage = {};
  const add = (field: "input" | "output" | "cachedInput", value: number | undefined) => {
    if (value !== undefined) total[field] = (total[field] ?? 0) + value;
  };
  for (const usage of usages) {
    add("input", usage.input);
    add("output", usage.output);
    add("cachedInput", usage.cachedInput);
    if (usage.details) {
      total.details ??= {};
      for (const [name, value] of Object.entries(usage.details))
        total.details[name] = (total.details[name] ?? 0) + value;
    }
  }
  return total;
}
