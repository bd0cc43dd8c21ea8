import { describe, expect, it } from "vitest";
import { abortError, RequestTimeout } from "../src/abort.ts";
import { runToolCalls } from "../src/chain.ts";
import {
  CancelToolCall,
  describeError,
  ERROR_HTTP_STATUS,
  isSwitchboardError,
  MissingKeyError,
  SwitchboardError,
} from "../src/errors.ts";
import { rememberSecret, scrubSecrets } from "../src/scrub.ts";

let copies = 0;
/** A second copy of a core module, as a plugin that bundles its own core would load it. */
async function duplicateCopy(module: string): Promise<Record<string, never>> {
  copies += 1;
  const specifier = `../src/${module}?copy=${copies}`;
  return import(specifier);
}

describe("error identity", () => {
  it("recognises a SwitchboardError made by a duplicate copy of the core", async () => {
    const copy = await duplicateCopy("errors.ts");
    const Foreign = copy.SwitchboardError as unknown as typeof SwitchboardError;
    expect(Foreign).not.toBe(SwitchboardError);
    const error = new Foreign("RATE_LIMITED", "slow down", {}, { retryable: true });
    expect(error instanceof SwitchboardError).toBe(false);
    expect(SwitchboardError.isInstance(error)).toBe(true);
    expect(isSwitchboardError(error, "RATE_LIMITED")).toBe(true);
    expect(isSwitchboardError(error, "TIMEOUT")).toBe(false);
    // And the other way round.
    expect(Foreign.isInstance(new SwitchboardError("TIMEOUT", "late"))).toBe(true);
  });

  it("does not take a look-alike for a SwitchboardError", () => {
    const lookalike = Object.assign(new Error("x"), { code: "TIMEOUT", name: "SwitchboardError" });
    expect(isSwitchboardError(lookalike)).toBe(false);
    expect(SwitchboardError.isInstance(null)).toBe(false);
    expect(SwitchboardError.isInstance("TIMEOUT")).toBe(false);
  });

  it("cancels a tool call with a CancelToolCall from a duplicate copy", async () => {
    const copy = await duplicateCopy("errors.ts");
    const ForeignCancel = copy.CancelToolCall as unknown as typeof CancelToolCall;
    const [result] = await runToolCalls(
      [{ id: "tc_1", name: "t", arguments: {} }],
      [{ name: "t", execute: () => "ran" }],
      {
        beforeCall() {
          throw new ForeignCancel("not today");
        },
      },
    );
    expect(result?.output).toBe("Cancelled: not today");
    expect(CancelToolCall.isInstance(new ForeignCancel("x"))).toBe(true);
  });
});

describe("error fields and statuses", () => {
  it("takes retryable as a typed option, false unless given, never from details", () => {
    expect(new SwitchboardError("PROVIDER_ERROR", "x", {}, { retryable: true }).retryable).toBe(true);
    expect(new SwitchboardError("PROVIDER_ERROR", "x").retryable).toBe(false);
    expect(new SwitchboardError("PROVIDER_ERROR", "x", { retryable: true }).retryable).toBe(false);
    const cause = new Error("root");
    expect(new SwitchboardError("PROVIDER_ERROR", "x", {}, { cause, retryable: true }).cause).toBe(cause);
  });

  it("gives a missing or rejected key a 5xx status: the operator's or upstream's fault", () => {
    expect(ERROR_HTTP_STATUS.MISSING_KEY).toBe(503);
    expect(ERROR_HTTP_STATUS.PROVIDER_AUTH).toBe(502);
    expect(new MissingKeyError("gpt-x", "openai", "OPENAI_API_KEY").httpStatus).toBe(503);
    expect(new SwitchboardError("PROVIDER_AUTH", "rejected").httpStatus).toBe(502);
    for (const status of Object.values(ERROR_HTTP_STATUS)) expect(status).toBeGreaterThanOrEqual(400);
  });

  it("ends a message quoting an upstream sentence with one full stop", () => {
    const quoted = new SwitchboardError(
      "PROVIDER_ERROR",
      "openai returned HTTP 400 for model m: Incorrect API key provided..",
    );
    expect(quoted.message).toBe("openai returned HTTP 400 for model m: Incorrect API key provided.");
    expect(new SwitchboardError("LIMIT_EXCEEDED", "No limit found; .").message).toBe("No limit found.");
    expect(new SwitchboardError("PROVIDER_ERROR", "Overloaded! (HTTP 529).").message).toBe(
      "Overloaded! (HTTP 529).",
    );
  });
});

describe("the secret scrubber in errors", () => {
  it("scrubs remembered secrets and URL passwords from messages and string details", () => {
    const secret = "sk-errors-test-secret-value-1";
    rememberSecret(secret);
    const error = new SwitchboardError(
      "PROVIDER_ERROR",
      `upstream said: bad key ${secret} at https://user:hunter22@example.com/v1`,
      { body: `echo ${secret}`, status: 500 },
    );
    expect(error.message).toBe("upstream said: bad key [redacted] at https://[redacted]@example.com/v1");
    expect(error.details).toEqual({ body: "echo [redacted]", status: 500 });
  });

  it("describes any thrown value on one line, scrubbed, with a foreign error's cause", () => {
    const secret = "tok-describe-secret-42";
    rememberSecret(secret);
    expect(describeError(new Error(`failed with ${secret}`))).toBe("failed with [redacted]");
    expect(describeError(`plain ${secret}`)).toBe("plain [redacted]");
    const fetchFailure = new TypeError("fetch failed", {
      cause: new Error("connect ECONNREFUSED 127.0.0.1:9"),
    });
    expect(describeError(fetchFailure)).toBe("fetch failed (connect ECONNREFUSED 127.0.0.1:9)");
    const ours = new SwitchboardError("TIMEOUT", "late", {}, { cause: new Error("inner") });
    expect(describeError(ours)).toBe("late");
  });

  it("shares remembered secrets with a duplicate copy of the core", async () => {
    const copy = await duplicateCopy("scrub.ts");
    const rememberInCopy = copy.rememberSecret as unknown as typeof rememberSecret;
    rememberInCopy("remembered-by-a-copy-123");
    expect(scrubSecrets("x remembered-by-a-copy-123 y")).toBe("x [redacted] y");
  });

  it("ignores values too short to be keys", () => {
    rememberSecret("short");
    expect(scrubSecrets("a short word")).toBe("a short word");
  });
});

describe("the one abort-to-error mapping", () => {
  const aborted = (reason: unknown) => {
    const controller = new AbortController();
    controller.abort(reason);
    return controller.signal;
  };

  it("names the timeout that applied and where it came from", () => {
    const total = abortError(aborted(new RequestTimeout(100, "total", "prompt")), {
      model: "m",
      provider: "p",
    });
    expect(total.code).toBe("TIMEOUT");
    expect(total.retryable).toBe(true);
    expect(total.message).toBe(
      "The request to p for model m timed out after 100 ms (the timeoutMs given with the prompt).",
    );
    expect(total.details).toEqual({ model: "m", provider: "p", timeoutMs: 100, timeout: "total" });

    const firstChunk = abortError(aborted(new RequestTimeout(50, "first-chunk", "model")), { model: "m" });
    expect(firstChunk.message).toBe(
      "Model m sent no output within 50 ms (the model's first-chunk timeout; pass firstChunkTimeoutMs to change it).",
    );
    expect(firstChunk.retryable).toBe(true);
  });

  it("maps a platform timeout to TIMEOUT and any other abort to a non-retryable ABORTED", () => {
    const platform = abortError(aborted(new DOMException("late", "TimeoutError")), { model: "m" });
    expect(platform.code).toBe("TIMEOUT");
    const caller = abortError(aborted(new Error("user left")), { model: "m" });
    expect(caller.code).toBe("ABORTED");
    expect(caller.retryable).toBe(false);
    expect(caller.message).toBe("The request to model m was aborted.");
    const ours = new SwitchboardError("PROMPT_REFUSED", "no");
    expect(abortError(aborted(ours), { model: "m" })).toBe(ours);
  });
});
