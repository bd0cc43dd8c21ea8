/**
 * The one error family of Switchboard. Callers branch on `code`, never on message text; every
 * message says how to fix the problem. The closed set of codes and their HTTP status live here so
 * the server maps errors in one place.
 */
import { scrubSecrets } from "./scrub.ts";

/**
 * HTTP status per code. A 4xx says the client can fix the request; a 5xx says the fault is the
 * operator's or upstream's. So a key the operator never configured (`MISSING_KEY`) is 503: the
 * model is unavailable until someone with access sets one. A key the provider rejected
 * (`PROVIDER_AUTH`) is 502: the upstream refused us, and a gateway client's own credentials are
 * not at fault (a 401 would make SDKs ask their user for a new key).
 */
export const ERROR_HTTP_STATUS = {
  UNKNOWN_MODEL: 404,
  NO_MODEL: 400,
  MODEL_NOT_ALLOWED: 403,
  MISSING_KEY: 503,
  INVALID_OPTION: 400,
  UNSUPPORTED: 400,
  INVALID_ATTACHMENT: 400,
  INVALID_CONFIG: 500,
  CHAIN_LIMIT: 400,
  PROVIDER_ERROR: 502,
  PROVIDER_AUTH: 502,
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

/** Shared by every copy of the core that a process loads, so identity survives duplicates. */
const SWITCHBOARD_ERROR = Symbol.for("switchboard.error");
const CANCEL_TOOL_CALL = Symbol.for("switchboard.cancelToolCall");

export interface SwitchboardErrorOptions extends ErrorOptions {
  /** Whether trying again (or on another model) may succeed (default false). */
  retryable?: boolean | undefined;
}

export class SwitchboardError extends Error {
  override readonly name: string = "SwitchboardError";
  readonly code: ErrorCode;
  /** Structured facts about the failure (model id, purpose, status…), safe to log. */
  readonly details: Readonly<Record<string, unknown>>;
  /** Whether trying again (or on another model) may succeed. */
  readonly retryable: boolean;

  /** The message and every string detail pass the secret scrubber, so no error can carry a key. */
  constructor(
    code: ErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    options: SwitchboardErrorOptions = {},
  ) {
    const { retryable = false, ...errorOptions } = options;
    super(tidySentences(scrubSecrets(message)), errorOptions);
    this.code = code;
    this.details = scrubDetails(details);
    this.retryable = retryable;
  }

  /**
   * Whether `value` is a Switchboard error, also one made by another copy of the core (a plugin
   * that bundles its own): identity is a `Symbol.for` marker, not `instanceof`.
   */
  static isInstance(value: unknown): value is SwitchboardError {
    return typeof value === "object" && value !== null && SWITCHBOARD_ERROR in value;
  }

  get httpStatus(): number {
    return ERROR_HTTP_STATUS[this.code];
  }
}
Object.defineProperty(SwitchboardError.prototype, SWITCHBOARD_ERROR, { value: true });

function scrubDetails(details: Record<string, unknown>): Record<string, unknown> {
  let scrubbed: Record<string, unknown> | undefined;
  for (const [name, value] of Object.entries(details)) {
    if (typeof value !== "string") continue;
    const clean = scrubSecrets(value);
    if (clean === value) continue;
    scrubbed ??= { ...details };
    scrubbed[name] = clean;
  }
  return scrubbed ?? details;
}

export function isSwitchboardError(error: unknown, code?: ErrorCode): error is SwitchboardError {
  return SwitchboardError.isInstance(error) && (code === undefined || error.code === code);
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

  /** Recognises a cancellation from any copy of the core. */
  static isInstance(value: unknown): value is CancelToolCall {
    return typeof value === "object" && value !== null && CANCEL_TOOL_CALL in value;
  }
}
Object.defineProperty(CancelToolCall.prototype, CANCEL_TOOL_CALL, { value: true });

/**
 * Turns anything thrown into a one-line description without stack traces or secrets. For a
 * foreign error, its cause is added when it says more (`fetch failed (connect ECONNREFUSED …)`).
 */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return scrubSecrets(String(error));
  const cause = error.cause;
  if (!SwitchboardError.isInstance(error) && cause instanceof Error && cause.message) {
    return scrubSecrets(`${error.message} (${cause.message})`);
  }
  return scrubSecrets(error.message);
}

/**
 * Messages often quote an upstream text that ends its own sentence ("Incorrect API key provided.")
 * and then close theirs: one full stop is enough, wherever the quote sits.
 */
function tidySentences(message: string): string {
  return message.replace(/([.!?])\.(?=\s|\)|$)/g, "$1").replace(/;\s*\./g, ".");
}
