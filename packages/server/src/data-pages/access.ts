/**
 * Who is asking and whether they may: the actor of a request (pluggable, so a signed session can
 * provide it), the permission check from `permissions:` in the configuration, and the CSRF token
 * every form carries.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { DataAction, PermissionCheck } from "@switchboard/data";
import type { Actor, Hub } from "@switchboard/hub";
import type { Context } from "hono";
import { getSignedCookie, setSignedCookie } from "hono/cookie";

export type ResolveActor = (c: Context) => Actor | undefined | Promise<Actor | undefined>;

/** No sign-in: every request is anonymous. */
export const anonymous: ResolveActor = () => undefined;

/**
 * `permissions:` (action → actor ids, `"*"` for any signed-in actor) when the configuration has
 * it; without it, any signed-in actor may and anonymous users may not.
 */
export function permissionsFromConfig(hub: Hub): PermissionCheck {
  const config = hub.config as { permissions?: Record<string, readonly string[] | undefined> };
  const permissions = config.permissions;
  return (action: DataAction, actor: Actor | undefined) => {
    if (!actor) return false;
    if (!permissions) return true;
    const allowed = permissions[action] ?? [];
    return allowed.includes(actor.id) || allowed.includes("*");
  };
}

/** Issues the token a page's forms carry and checks the one a POST brings back. */
export interface CsrfGuard {
  token(c: Context): Promise<string>;
  verify(c: Context, submitted: string | undefined): Promise<boolean>;
}

const CSRF_COOKIE = "sb_data_csrf";

/**
 * A signed double-submit cookie: the token lives in an HttpOnly cookie signed with the server's
 * secret, and a POST must repeat it in its `csrf` field (or `x-csrf-token` header). Another site
 * can make the browser send the cookie but cannot read it to fill the field.
 */
export function signedCookieCsrf(secret: string = randomBytes(32).toString("base64url")): CsrfGuard {
  return {
    async token(c) {
      const existing = await getSignedCookie(c, secret, CSRF_COOKIE);
      if (typeof existing === "string" && existing.length > 0) return existing;
      const token = randomBytes(24).toString("base64url");
      await setSignedCookie(c, CSRF_COOKIE, token, secret, { httpOnly: true, sameSite: "Lax", path: "/" });
      return token;
    },
    async verify(c, submitted) {
      if (!submitted) return false;
      const expected = await getSignedCookie(c, secret, CSRF_COOKIE);
      if (typeof expected !== "string" || expected.length === 0) return false;
      const a = Buffer.from(expected);
      const b = Buffer.from(submitted);
      return a.length === b.length && timingSafeEqual(a, b);
    },
  };
}
