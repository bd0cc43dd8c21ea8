import { randomBytes } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../env.ts";

/** Ids a client chose are echoed when they are short printable tokens (they end up in logs). */
const USABLE_ID = /^[\w.:@/+=-]{1,128}$/;

/** Cheap unique ids: a random per-process prefix and a counter. */
const prefix = `req_${randomBytes(6).toString("hex")}`;
let counter = 0;

export function newRequestId(): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return `${prefix}${counter.toString(36).padStart(6, "0")}`;
}

/** Every response carries `x-request-id`: the client's own when it sent one. */
export function requestId(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const given = c.req.header("x-request-id");
    const id = given && USABLE_ID.test(given) ? given : newRequestId();
    c.set("requestId", id);
    await next();
    c.res.headers.set("x-request-id", id);
  };
}
