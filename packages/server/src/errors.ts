/**
 * The one place where an error becomes an HTTP answer. The status always comes from core's
 * `ERROR_HTTP_STATUS`; each wire only dresses the same facts in its own error shape.
 */
import { ERROR_HTTP_STATUS, type ErrorCode, isSwitchboardError, scrubSecrets } from "@switchboard/core";

export type Wire = "openai" | "anthropic";

/** What a client is told about a failure, whatever the wire. */
export interface HttpProblem {
  status: number;
  /** Switchboard's error code, or `INTERNAL` for a failure that is the server's own bug. */
  code: ErrorCode | "INTERNAL";
  message: string;
  /** Whether the same request may succeed later (drives `x-should-retry`). */
  retryable: boolean;
  /** The request field at fault, when known (OpenAI's `param`). */
  param?: string;
  retryAfterMs?: number;
}

/** SDKs honour `retry-after` up to about a minute; a longer hint would stall a client, so none is sent. */
const MAX_RETRY_AFTER_MS = 60_000;

export function toProblem(error: unknown): HttpProblem {
  if (isSwitchboardError(error)) {
    const problem: HttpProblem = {
      status: ERROR_HTTP_STATUS[error.code],
      code: error.code,
      message: scrubSecrets(error.message),
      retryable: error.retryable,
    };
    const { param, retryAfterMs } = error.details;
    if (typeof param === "string") problem.param = param;
    if (typeof retryAfterMs === "number" && retryAfterMs > 0 && retryAfterMs <= MAX_RETRY_AFTER_MS) {
      problem.retryAfterMs = retryAfterMs;
    }
    return problem;
  }
  return {
    status: 500,
    code: "INTERNAL",
    message: "The gateway failed unexpectedly; its log has the details. Report it with this request id.",
    retryable: false,
  };
}

/** OpenAI's `error.type` for a status (its SDK only reads the status; humans read the type). */
function openaiType(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 402) return "insufficient_quota";
  if (status === 403) return "permission_error";
  if (status === 429) return "rate_limit_error";
  if (status === 503) return "service_unavailable_error";
  if (status === 504) return "timeout_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

/** Where OpenAI has a well-known `code` for the same failure, clients may look for it. */
const OPENAI_CODES: Partial<Record<ErrorCode, string>> = {
  UNAUTHENTICATED: "invalid_api_key",
  UNKNOWN_MODEL: "model_not_found",
};

const ANTHROPIC_TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  402: "billing_error",
  403: "permission_error",
  404: "not_found_error",
  413: "request_too_large",
  429: "rate_limit_error",
  500: "api_error",
  503: "overloaded_error",
  504: "timeout_error",
  529: "overloaded_error",
};

function anthropicType(status: number): string {
  return ANTHROPIC_TYPES[status] ?? (status >= 500 ? "api_error" : "invalid_request_error");
}

/** The error object inside each wire's error body (and inside a mid-stream error event). */
export function wireErrorObject(wire: Wire, problem: HttpProblem): Record<string, unknown> {
  if (wire === "anthropic") return { type: anthropicType(problem.status), message: problem.message };
  return {
    message: problem.message,
    type: openaiType(problem.status),
    param: problem.param ?? null,
    code: OPENAI_CODES[problem.code as ErrorCode] ?? problem.code.toLowerCase(),
  };
}

export function wireErrorBody(wire: Wire, problem: HttpProblem, requestId: string): Record<string, unknown> {
  const error = wireErrorObject(wire, problem);
  return wire === "anthropic" ? { type: "error", error, request_id: requestId } : { error };
}

/** Headers every error answer carries: both SDKs obey `x-should-retry` over the status. */
export function problemHeaders(problem: HttpProblem): Record<string, string> {
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "x-should-retry": problem.retryable ? "true" : "false",
    "x-switchboard-error": problem.code,
  };
  if (problem.retryAfterMs !== undefined) {
    headers["retry-after-ms"] = String(Math.ceil(problem.retryAfterMs));
    headers["retry-after"] = String(Math.ceil(problem.retryAfterMs / 1000));
  }
  return headers;
}

export function problemResponse(wire: Wire, problem: HttpProblem, requestId: string): Response {
  return new Response(JSON.stringify(wireErrorBody(wire, problem, requestId)), {
    status: problem.status,
    headers: problemHeaders(problem),
  });
}
