/**
 * The one place that turns an aborted signal into an error. Timeouts are owned by the response
 * (see `response.ts`): it aborts the request's signal with a `RequestTimeout` reason that names the
 * value that applied, and providers, the worker pool and the response all map that signal here.
 */
import { SwitchboardError } from "./errors.ts";

/** Where a timeout's value came from, so its message can say how to change it. */
export type TimeoutSource = "prompt" | "model" | "default";

/**
 * `total` bounds the whole response; `first-chunk` bounds one attempt's wait for its first output,
 * after which a fallback model may answer instead.
 */
export type TimeoutKind = "total" | "first-chunk";

/** The abort reason of a timeout Switchboard set. A `DOMException` named `TimeoutError`, as the platform's. */
export class RequestTimeout extends DOMException {
  readonly timeoutMs: number;
  readonly kind: TimeoutKind;
  readonly source: TimeoutSource;

  constructor(timeoutMs: number, kind: TimeoutKind, source: TimeoutSource) {
    super(`Timed out after ${timeoutMs} ms`, "TimeoutError");
    this.timeoutMs = timeoutMs;
    this.kind = kind;
    this.source = source;
  }
}

/** Who the aborted request was for, named in the error. */
export interface AbortSubject {
  model: string;
  provider?: string | undefined;
}

const HOW_TO_CHANGE: Record<TimeoutKind, Record<TimeoutSource, string>> = {
  total: {
    prompt: "the timeoutMs given with the prompt",
    model: "the model's timeout; pass timeoutMs to change it",
    default: "the default timeout; pass timeoutMs to change it",
  },
  "first-chunk": {
    prompt: "the firstChunkTimeoutMs given with the prompt",
    model: "the model's first-chunk timeout; pass firstChunkTimeoutMs to change it",
    default: "the default first-chunk timeout; pass firstChunkTimeoutMs to change it",
  },
};

/** A timeout is an abort whose reason is a `TimeoutError`; anything else is the caller's abort. */
export function abortError(signal: AbortSignal, subject: AbortSubject): SwitchboardError {
  const reason: unknown = signal.reason;
  if (SwitchboardError.isInstance(reason)) return reason;
  const target = subject.provider
    ? `The request to ${subject.provider} for model ${subject.model}`
    : `The request to model ${subject.model}`;
  const details = { model: subject.model, ...(subject.provider ? { provider: subject.provider } : {}) };
  if (isTimeout(reason)) {
    if (reason instanceof RequestTimeout) {
      const { timeoutMs, kind, source } = reason;
      const what = kind === "first-chunk" ? "sent no output within" : "timed out after";
      const message =
        kind === "first-chunk"
          ? `Model ${subject.model} ${what} ${timeoutMs} ms (${HOW_TO_CHANGE[kind][source]}).`
          : `${target} ${what} ${timeoutMs} ms (${HOW_TO_CHANGE[kind][source]}).`;
      return new SwitchboardError(
        "TIMEOUT",
        message,
        { ...details, timeoutMs, timeout: kind },
        { retryable: true, cause: reason },
      );
    }
    return new SwitchboardError("TIMEOUT", `${target} timed out (the caller's signal gave up).`, details, {
      retryable: true,
      cause: reason,
    });
  }
  return new SwitchboardError("ABORTED", `${target} was aborted.`, details, { cause: reason });
}

function isTimeout(reason: unknown): reason is DOMException {
  return reason instanceof Error && reason.name === "TimeoutError";
}
