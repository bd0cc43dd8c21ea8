import { describeError, isSwitchboardError, SwitchboardError, scrubSecrets } from "@switchboard/core";
import type { Context, ErrorHandler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { AppEnv } from "../env.ts";
import { problemResponse, toProblem } from "../errors.ts";

/**
 * The app's one error handler: every failure a route throws becomes an answer in the wire's own
 * error shape, with the status from core's table. Failures that are not Switchboard errors are
 * the server's bugs: logged (scrubbed) with the request id, reported without internals.
 */
export const handleError: ErrorHandler<AppEnv> = (error, c) => {
  if (error instanceof HTTPException && !isSwitchboardError(error.cause)) return error.getResponse();
  const failure = error instanceof HTTPException ? error.cause : error;
  reportUnexpected(c, failure);
  return problemResponse(c.get("wire") ?? "openai", toProblem(failure), requestIdOf(c));
};

/** A failure that is not a Switchboard error is a bug of the server: its log gets the (scrubbed) stack. */
export function reportUnexpected(c: Context<AppEnv>, failure: unknown): void {
  if (isSwitchboardError(failure)) return;
  const stack = failure instanceof Error && failure.stack ? failure.stack : describeError(failure);
  console.error(`[${requestIdOf(c)}] ${c.req.method} ${c.req.path} failed: ${scrubSecrets(stack)}`);
}

export const handleNotFound: NotFoundHandler<AppEnv> = (c) =>
  problemResponse(
    c.get("wire") ?? "openai",
    toProblem(
      new SwitchboardError(
        "NOT_FOUND",
        `No route ${c.req.method} ${c.req.path}. The gateway serves POST /v1/chat/completions, POST /v1/messages and GET /v1/models.`,
      ),
    ),
    requestIdOf(c),
  );

function requestIdOf(c: Context<AppEnv>): string {
  return c.get("requestId") ?? "";
}
