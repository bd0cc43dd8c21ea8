/**
 * Admin sign-in: the session cookie (signed, HttpOnly, SameSite=Lax, holding only an opaque id),
 * one-time login links, the per-session CSRF token every form carries, and flash messages kept in
 * a signed cookie across a POST → redirect.
 */
import type { Actor, AdminSession, Hub, PermissionAction } from "@switchboard/hub";
import type { Context, MiddlewareHandler } from "hono";
import { deleteCookie, getSignedCookie, setSignedCookie } from "hono/cookie";

declare module "hono" {
  interface ContextVariableMap {
    /** The signed-in admin session, when the request carries a valid session cookie. */
    adminSession: AdminSession | undefined;
    /** Set once the session cookie was read, so mounting the middleware twice reads it once. */
    adminSessionRead: boolean;
    /** Set on admin pages for a signed-in actor. */
    viewer: Viewer;
  }
}

/** Who is looking at an admin page, what they may do, and the CSRF token their forms carry. */
export interface Viewer {
  actor: string;
  session: AdminSession;
  csrf: string;
  can(action: PermissionAction): boolean;
}

export const SESSION_COOKIE = "sb_session";
const FLASH_COOKIE = "sb_flash";
export const CSRF_FIELD = "csrf";
export const CSRF_HEADER = "x-csrf-token";

export type FlashLevel = "info" | "warning" | "error";
export interface Flash {
  level: FlashLevel;
  text: string;
}

function isHttps(c: Context): boolean {
  return new URL(c.req.url).protocol === "https:";
}

/**
 * Reads the session cookie (on every route but the gateway's, whose clients send tokens) and sets
 * `adminSession`; data pages use it to know the actor too.
 */
export function adminSession(hub: Hub): MiddlewareHandler {
  return async (c, next) => {
    if (!c.get("adminSessionRead") && !c.req.path.startsWith("/v1/")) {
      c.set("adminSessionRead", true);
      if (c.req.header("cookie")?.includes(SESSION_COOKIE)) {
        const id = await getSignedCookie(c, await hub.logins.signingKey(), SESSION_COOKIE);
        c.set("adminSession", id ? await hub.logins.session(id) : undefined);
      }
    }
    await next();
  };
}

/** The signed-in actor of a request (after `adminSession`), for pages outside the admin UI. */
export function sessionActor(c: Context): Actor | undefined {
  const session = c.get("adminSession");
  return session ? { id: session.actor } : undefined;
}

/** The session's CSRF token for other pages' forms (none without a session: nothing to post as). */
export function sessionCsrf(hub: Hub): {
  token(c: Context): Promise<string>;
  verify(c: Context, submitted: string | undefined): Promise<boolean>;
} {
  return {
    async token(c) {
      const session = c.get("adminSession");
      return session ? hub.logins.csrfToken(session.id) : "";
    },
    async verify(c, submitted) {
      const session = c.get("adminSession");
      return session !== undefined && (await hub.logins.checkCsrf(session.id, submitted));
    },
  };
}

export async function startSession(c: Context, hub: Hub, session: AdminSession): Promise<void> {
  const maxAge = Math.max(1, Math.floor((session.expiresAt.getTime() - Date.now()) / 1000));
  await setSignedCookie(c, SESSION_COOKIE, session.id, await hub.logins.signingKey(), {
    httpOnly: true,
    sameSite: "Lax",
    secure: isHttps(c),
    path: "/",
    maxAge,
  });
}

export function endSessionCookie(c: Context): void {
  deleteCookie(c, SESSION_COOKIE, { path: "/", secure: isHttps(c) });
}

export async function setFlash(c: Context, hub: Hub, flash: Flash): Promise<void> {
  const value = Buffer.from(JSON.stringify(flash)).toString("base64url");
  await setSignedCookie(c, FLASH_COOKIE, value, await hub.logins.signingKey(), {
    httpOnly: true,
    sameSite: "Lax",
    secure: isHttps(c),
    path: "/-/",
    maxAge: 60,
  });
}

/** The flash message left by the previous POST, removed once read. */
export async function takeFlash(c: Context, hub: Hub): Promise<Flash | undefined> {
  if (!c.req.header("cookie")?.includes(FLASH_COOKIE)) return undefined;
  const value = await getSignedCookie(c, await hub.logins.signingKey(), FLASH_COOKIE);
  deleteCookie(c, FLASH_COOKIE, { path: "/-/", secure: isHttps(c) });
  if (!value) return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(value, "base64url").toString("utf8")) as Flash;
    if (typeof parsed.text === "string" && ["info", "warning", "error"].includes(parsed.level)) return parsed;
  } catch {
    // A damaged flash cookie is simply not shown.
  }
  return undefined;
}

/** The CSRF token a POST presents: the `x-csrf-token` header (scripts) or the form field. */
export async function presentedCsrf(c: Context): Promise<string | undefined> {
  const header = c.req.header(CSRF_HEADER);
  if (header) return header;
  const type = c.req.header("content-type") ?? "";
  if (!type.includes("application/x-www-form-urlencoded") && !type.includes("multipart/form-data")) {
    return undefined;
  }
  // `all: true` as every form reader here asks: hono keeps the first parse of a body.
  const body = await c.req.parseBody({ all: true });
  const field = body[CSRF_FIELD];
  const value = Array.isArray(field) ? field[0] : field;
  return typeof value === "string" ? value : undefined;
}
