import { ERROR_HTTP_STATUS, type ErrorCode, SwitchboardError } from "@switchboard/core";
import { describe, expect, it } from "vitest";
import { problemHeaders, problemResponse, toProblem, wireErrorBody } from "../src/errors.ts";

const CODES = Object.keys(ERROR_HTTP_STATUS) as ErrorCode[];

const ANTHROPIC_TYPE_BY_STATUS: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  402: "billing_error",
  403: "permission_error",
  404: "not_found_error",
  413: "request_too_large",
  429: "rate_limit_error",
  500: "api_error",
  502: "api_error",
  503: "overloaded_error",
  504: "timeout_error",
};

describe("one error → HTTP mapping", () => {
  it.each(CODES)("maps %s with core's status in both wires", async (code) => {
    const error = new SwitchboardError(code, `Something about ${code}; here is how to fix it.`);
    const problem = toProblem(error);
    expect(problem.status).toBe(ERROR_HTTP_STATUS[code]);
    expect(problem.code).toBe(code);
    expect(problem.message).toBe(error.message);

    const openai = problemResponse("openai", problem, "req_1");
    expect(openai.status).toBe(ERROR_HTTP_STATUS[code]);
    const openaiBody = (await openai.json()) as { error: Record<string, unknown> };
    expect(openaiBody.error.message).toBe(error.message);
    expect(typeof openaiBody.error.type).toBe("string");
    expect(openaiBody.error).toHaveProperty("param");
    expect(typeof openaiBody.error.code).toBe("string");

    const anthropic = problemResponse("anthropic", problem, "req_1");
    expect(anthropic.status).toBe(ERROR_HTTP_STATUS[code]);
    const anthropicBody = (await anthropic.json()) as Record<string, unknown>;
    const expectedType =
      ANTHROPIC_TYPE_BY_STATUS[problem.status] ??
      (problem.status >= 500 ? "api_error" : "invalid_request_error");
    expect(anthropicBody).toEqual({
      type: "error",
      error: { type: expectedType, message: error.message },
      request_id: "req_1",
    });
  });

  it("tells SDKs not to retry a refusal that retrying cannot fix", () => {
    const spent = toProblem(new SwitchboardError("LIMIT_EXCEEDED", "The daily limit is spent."));
    expect(spent.status).toBe(429);
    expect(problemHeaders(spent)["x-should-retry"]).toBe("false");
    expect(problemHeaders(spent)["retry-after"]).toBeUndefined();
    const notAllowed = toProblem(new SwitchboardError("MODEL_NOT_ALLOWED", "No."));
    expect(problemHeaders(notAllowed)["x-should-retry"]).toBe("false");
  });

  it("lets a retryable upstream failure be retried, with a bounded hint", () => {
    const overloaded = toProblem(
      new SwitchboardError("RATE_LIMITED", "Upstream is busy.", { retryAfterMs: 1500 }, { retryable: true }),
    );
    const headers = problemHeaders(overloaded);
    expect(headers["x-should-retry"]).toBe("true");
    expect(headers["retry-after-ms"]).toBe("1500");
    expect(headers["retry-after"]).toBe("2");
    const tooLong = toProblem(
      new SwitchboardError(
        "RATE_LIMITED",
        "Busy for a day.",
        { retryAfterMs: 86_400_000 },
        { retryable: true },
      ),
    );
    expect(problemHeaders(tooLong)["retry-after"]).toBeUndefined();
  });

  it("uses OpenAI's well-known codes where they exist, and names the field at fault", () => {
    const body = wireErrorBody(
      "openai",
      toProblem(new SwitchboardError("UNKNOWN_MODEL", "Unknown model: nope.")),
      "req_2",
    );
    expect(body).toEqual({
      error: {
        message: "Unknown model: nope.",
        type: "invalid_request_error",
        param: null,
        code: "model_not_found",
      },
    });
    const param = wireErrorBody(
      "openai",
      toProblem(new SwitchboardError("INVALID_INPUT", "n: one choice only.", { param: "n" })),
      "req_3",
    );
    expect(param).toMatchObject({ error: { param: "n", code: "invalid_input" } });
  });

  it("reports a failure that is not a Switchboard error without its internals", () => {
    const problem = toProblem(new TypeError("cannot read properties of undefined (reading 'secret')"));
    expect(problem.status).toBe(500);
    expect(problem.code).toBe("INTERNAL");
    expect(problem.message).not.toContain("secret");
  });
});
