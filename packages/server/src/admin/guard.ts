/** What every admin route shares: permission checks, POST → redirect with a flash message. */
import type { Hub, PermissionAction, Tokens } from "@switchboard/hub";
import type { Context, MiddlewareHandler } from "hono";
import { type AdminPage, type Html, pageFor } from "./layout.ts";
import { forbiddenPage } from "./pages/home.ts";
import { type FlashLevel, setFlash } from "./session.ts";

export interface AdminDeps {
  hub: Hub;
  /** Gateway tokens (the hub's unless the app was given others). */
  tokens: Tokens;
}

/** 403 (with the reason) unless the viewer may open the page. */
export function guardPage(path: string): MiddlewareHandler {
  const page = pageFor(path) as AdminPage;
  return async (c, next) => {
    const viewer = c.get("viewer");
    if (!page.allowed(viewer.can)) return c.html(forbiddenPage(viewer, `the ${page.label} page`), 403);
    await next();
    return undefined;
  };
}

/** 403 unless the viewer may do the action (for POSTs and parts of pages). */
export function guardAction(action: PermissionAction, what: string): MiddlewareHandler {
  return async (c, next) => {
    const viewer = c.get("viewer");
    if (!viewer.can(action)) return c.html(forbiddenPage(viewer, what), 403);
    await next();
    return undefined;
  };
}

export async function redirectWithFlash(
  c: Context,
  hub: Hub,
  location: string,
  level: FlashLevel,
  text: string,
): Promise<Response> {
  await setFlash(c, hub, { level, text });
  return c.redirect(location, 303);
}

/** Renders a page with a status. */
export async function page(c: Context, body: Html, status: 200 | 400 | 403 | 404 | 409 | 500 = 200) {
  return c.html(await body, status);
}

/** Form values as strings (files and repeated fields ignored except through `all`). */
export async function formOf(
  c: Context,
): Promise<{ get(name: string): string; all(name: string): string[] }> {
  const body = await c.req.parseBody({ all: true });
  return {
    get(name) {
      const value = body[name];
      const first = Array.isArray(value) ? value[0] : value;
      return typeof first === "string" ? first : "";
    },
    all(name) {
      const value = body[name];
      const values = Array.isArray(value) ? value : value === undefined ? [] : [value];
      return values.filter((item): item is string => typeof item === "string");
    },
  };
}
