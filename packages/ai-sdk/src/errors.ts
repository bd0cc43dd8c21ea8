/**
 * Switchboard's errors as the AI SDK understands them. The SDK retries only an `APICallError`
 * whose `isRetryable` is true, so every Switchboard failure becomes one whose `isRetryable` is the
 * Switchboard error's own `retryable`: a budget or allowlist refusal is never hammered by
 * `maxRetries`, an upstream 429/5xx may be tried again.
 */
import { APICallError } from "@ai-sdk/provider";
import type { ErrorCode } from "@switchboard/core";
import { SwitchboardError } from "@switchboard/core";

const MARKER = Symbol.for("switchboard.ai-sdk.error");

/**
 * A Switchboard failure inside the AI SDK: an `APICallError` (so the SDK's retry logic reads
 * `isRetryable`) that also carries the Switchboard `code` and `details`. The original error is its
 * `cause`.
 */
export class SwitchboardAPIError extends APICallError {
  /** What happened, from Switchboard's closed set (`LIMIT_EXCEEDED`, `MODEL_NOT_ALLOWED`, …). */
  readonly code: ErrorCode;
  /** Structured facts about the failure (model, purpose, status…), safe to log. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(error: SwitchboardError, modelId: string) {
    super({
      message: error.message,
      url: `switchboard:${modelId}`,
      requestBodyValues: undefined,
      statusCode: error.httpStatus,
      cause: error,
      isRetryable: error.retryable,
      data: { code: error.code, details: error.details },
    });
    this.name = "AI_SwitchboardAPIError";
    this.code = error.code;
    this.details = error.details;
  }

  /** Recognises the error also when another copy of this package made it. */
  static override isInstance(value: unknown): value is SwitchboardAPIError {
    return typeof value === "object" && value !== null && MARKER in value;
  }
}
Object.defineProperty(SwitchboardAPIError.prototype, MARKER, { value: true });

/**
 * What a call throws for `error`. The caller's own abort surfaces as the signal's reason, as it
 * does from `fetch`, so the SDK recognises it as an abort; other errors pass unchanged.
 */
export function toAISDKError(error: unknown, modelId: string, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted) return signal.reason;
  if (SwitchboardError.isInstance(error)) return new SwitchboardAPIError(error, modelId);
  return error;
}
