/**
 * The one error family of Switchboard. Callers branch on `code`, never on message text; every
 * message says how to fix the problem. The closed set of codes and their HTTP status live here so
 * the server maps errors in one place.
 */

export const ERROR_HTTP_STATUS = {
  UNKNOWN_MODEL: 404,
  NO_MODEL: 400,
  MODEL_NOT_ALLOWED: 403,
  MISSING_KEY: 401,
  INVALID_OPTION: 400,
  UNSUPPORTED: 400,
  INVALID_ATTACHMENT: 400,
  INVALID_CONFIG: 500,
  CHAIN_LIMIT: 400,
  PROVIDER_ERROR: 502,
  PROVIDER_AUTH: 401,
  RATE_LIMITED: 429,
  STREAM_INTERRUPTED: 502,
  TIMEOUT: 504,
  ABORTED: 499,
  WORKER_ERROR: 500,
  PROMPT_REFUSED: 403,
  INSUFFICIENT_BALANCE: 402,
  LIMIT_EXCEEDED: 429,
  PRICING_MISSING: 400,
  SECRET_ERROR: 500,
  STORAGE_ERROR: 500,
  NOT_FOUND: 404,
  INVALID_INPUT: 400,
  /** A request to the gateway without valid credentials (no, wrong, revoked or expired token). */
  UNAUTHENTICATED: 401,
  /** A request body over the server's configured size. */
  REQUEST_TOO_LARGE: 413,
} as const;

export type ErrorCode = keyof typeof ERROR_HTTP_STATUS;

export class SwitchboardError extends Error {
  override readonly name: string = "SwitchboardError";
  readonly code: ErrorCode;
  /** Structured facts about the failure (model id, purpose, status…), safe to log. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.code = code;
    this.details = details;
  }

  get httpStatus(): number {
    return ERROR_HTTP_STATUS[this.code];
  }

  /** Whether trying again (or on another model) may succeed. */
  get retryable(): boolean {
    return this.details.retryable === true;
  }
}

export function isSwitchboardError(error: unknown, code?: ErrorCode): error is SwitchboardError {
  return error instanceof SwitchboardError && (code === undefined || error.code === code);
}

export class UnknownModelError extends SwitchboardError {
  override readonly name = "UnknownModelError";
  constructor(modelId: string, known: readonly string[] = []) {
    const hint =
      known.length > 0
        ? ` Known models: ${known.slice(0, 20).join(", ")}${known.length > 20 ? ", …" : ""}.`
        : "";
    super("UNKNOWN_MODEL", `Unknown model: ${modelId}.${hint} Run 'switchboard models' to list them.`, {
      model: modelId,
    });
  }
}

export class MissingKeyError extends SwitchboardError {
  override readonly name = "MissingKeyError";
  constructor(modelId: string, keyAlias: string, envVar: string | undefined) {
    const ways = [`run 'switchboard keys set ${keyAlias}'`];
    if (envVar) ways.push(`set the ${envVar} environment variable`);
    super("MISSING_KEY", `No key found for model ${modelId}: ${ways.join(" or ")}.`, {
      model: modelId,
      keyAlias,
      envVar,
    });
  }
}

/** Thrown by a `beforeCall` hook to cancel one tool call; the model sees `Cancelled: <message>`. */
export class CancelToolCall extends Error {
  override readonly name = "CancelToolCall";
}

/** Turns anything thrown into a one-line description without leaking stack traces. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
