import { describeError, isSwitchboardError, SwitchboardError } from "./errors.ts";
import type { ExecutionScope, FallbackModel } from "./execution.ts";
import { newId } from "./ids.ts";
import type { Exchange, PromptInput, StreamPart, ToolCall, Usage } from "./types.ts";

export type ResponseStatus = "pending" | "running" | "done" | "failed";

/** The internal wiring of one response; built by `Model` and `Conversation`. */
export interface ResponseInit {
  input: PromptInput;
  stream: boolean;
  /** The model asked for first, then fallbacks; each with the key it runs with. */
  candidates: readonly FallbackModel[];
  scope: ExecutionScope;
  /** Whether this response alone is the observed execution (false inside a chain). */
  ownsScope: boolean;
  history: () => Exchange[];
  onComplete?: (response: ModelResponse) => void;
  chainId?: string;
  conversationId?: string;
  signal?: AbortSignal;
  timeoutMs: number;
}

/** Failures worth trying on the next model: rate limits, overloads, 5xx, dropped connections. */
function isRetryable(error: unknown): boolean {
  return isSwitchboardError(error) && error.retryable;
}

function toSwitchboardError(error: unknown, signal: AbortSignal, modelId: string): unknown {
  if (isSwitchboardError(error)) return error;
  if (signal.aborted) {
    const reason: unknown = signal.reason;
    const timedOut = reason instanceof DOMException && reason.name === "TimeoutError";
    return new SwitchboardError(
      timedOut ? "TIMEOUT" : "ABORTED",
      timedOut ? `The request to ${modelId} timed out.` : `The request to ${modelId} was aborted.`,
      { model: modelId },
      { cause: error },
    );
  }
  return error;
}

/**
 * A lazy model response. Nothing is sent until it is iterated or one of `text()`, `usage()`,
 * `toolCalls()`, `done()` is awaited. Iterating yields text chunks as they arrive; iterating again
 * (or after completion) replays them.
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
  #toolCalls: ToolCall[] = [];
  #usage: Usage = {};
  #status: ResponseStatus = "pending";
  /** Set once hooks have run too: only then do consumers see the end. */
  #complete = false;
  #error: unknown;
  #answeredBy: string | undefined;
  #resolvedModel: string | undefined;
  #finishReason: string | undefined;
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
  /** The model id that produced this response (differs from `modelId` after a fallback). */
  get answeredBy(): string | undefined {
    return this.#answeredBy;
  }
  /** The exact upstream model, when the provider reported one. */
  get resolvedModel(): string | undefined {
    return this.#resolvedModel;
  }
  get finishReason(): string | undefined {
    return this.#finishReason;
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
    // A clearable timer rather than AbortSignal.timeout(), which would linger for the whole timeout.
    const timeout = new AbortController();
    const timer = setTimeout(
      () => timeout.abort(new DOMException(`Timed out after ${init.timeoutMs} ms`, "TimeoutError")),
      init.timeoutMs,
    );
    timer.unref();
    const signal = init.signal ? AbortSignal.any([init.signal, timeout.signal]) : timeout.signal;

    try {
      await init.scope.begin();
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
    // Observers see the final status; consumers see the end only after the observers ran.
    this.#status = failure === undefined ? "done" : "failed";
    this.#error = failure;
    if (failure === undefined) init.onComplete?.(this);
    await init.scope.responseDone(this);
    if (init.ownsScope) await init.scope.end(failure);
    this.#finish(failure, began);
  }

  async #runCandidates(signal: AbortSignal): Promise<void> {
    const { candidates } = this.#init;
    for (let index = 0; index < candidates.length; index++) {
      const candidate = candidates[index] as FallbackModel;
      const model = candidate.model;
      let produced = false;
      try {
        const request = {
          ...this.input,
          modelId: model.id,
          stream: this.stream,
          history: this.#init.history(),
          key: model.resolveKey(candidate.key),
          signal,
        };
        for await (const part of model.definition.execute(request)) {
          if (this.#accept(part)) produced = true;
        }
        this.#answeredBy = model.id;
        return;
      } catch (raw) {
        const error = toSwitchboardError(raw, signal, model.id);
        const hasNext = index + 1 < candidates.length;
        if (produced || !hasNext || !isRetryable(error) || signal.aborted) throw error;
        this.#attempts.push({ model: model.id, error: describeError(error) });
        this.#toolCalls = [];
        this.#usage = {};
        this.#resolvedModel = undefined;
      }
    }
  }

  /** Records one part; returns whether the caller has now seen output from this model. */
  #accept(part: StreamPart): boolean {
    switch (part.type) {
      case "text":
        if (part.text.length === 0) return false;
        this.#chunks.push(part.text);
        this.#wake();
        return true;
      case "tool-call":
        this.#toolCalls.push({
          id: part.id || newId("tc"),
          name: part.name,
          arguments: part.arguments,
        });
        return true;
      case "usage":
        this.#usage = { ...this.#usage, ...part.usage };
        return false;
      case "resolved-model":
        this.#resolvedModel = part.model;
        return false;
      case "finish":
        this.#finishReason = part.reason;
        return false;
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
