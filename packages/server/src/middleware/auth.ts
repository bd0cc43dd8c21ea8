import { SwitchboardError } from "@switchboard/core";
import type { Tokens } from "@switchboard/hub";
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../env.ts";

const REASONS = {
  unknown: "This gateway token is not valid",
  revoked: "This gateway token was revoked",
  expired: "This gateway token has expired",
} as const;

const HOW_TO_GET_ONE = "create one with 'switchboard tokens create NAME --actor ID --purpose PURPOSE'";

/** The presented token: `Authorization: Bearer …` (OpenAI, Anthropic SDK 1.x) or `x-api-key` (Anthropic 0.x). */
function presentedToken(authorization: string | undefined, apiKey: string | undefined): string | undefined {
  if (authorization) {
    const match = /^Bearer\s+(.+)$/i.exec(authorization.trim());
    if (match?.[1]) return match[1].trim();
  }
  return apiKey?.trim() || undefined;
}

/** Gateway authentication: a valid token sets `token` (its actor, its purposes); anything else is a 401. */
export function gatewayAuth(tokens: () => Tokens): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const value = presentedToken(c.req.header("authorization"), c.req.header("x-api-key"));
    if (!value) {
      throw new SwitchboardError(
        "UNAUTHENTICATED",
        `Send a gateway token as 'Authorization: Bearer sb_…' (or 'x-api-key'); ${HOW_TO_GET_ONE}.`,
      );
    }
    const check = await tokens().verify(value);
    if (!check.ok) {
      throw new SwitchboardError("UNAUTHENTICATED", `${REASONS[check.reason]}; ${HOW_TO_GET_ONE}.`, {
        reason: check.reason,
      });
    }
    c.set("token", check.token);
    await next();
  };
}
