/**
 * The admin UI under `/-/`: server-rendered pages over the hub (purposes, models, usage, log,
 * limits, playground, tokens, secrets, audit), signed in with one-time login links.
 *
 * Every request gets security headers (a strict CSP: scripts and styles only from this server;
 * `Referrer-Policy: same-origin`, so same-origin form posts keep their `Origin`), `Cache-Control:
 * no-store`, and for unsafe methods hono's origin check plus the session's CSRF token. Anonymous
 * visitors see only the login page; a page the actor may not open answers 403 and is not in the menu.
 */
import { describeError, isSwitchboardError, scrubSecrets } from "@switchboard/core";
import type { Hub, Tokens } from "@switchboard/hub";
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { csrf } from "hono/csrf";
import { HTTPException } from "hono/http-exception";
import { secureHeaders } from "hono/secure-headers";
import type { AdminDeps } from "./guard.ts";
import { registerAudit } from "./pages/audit.ts";
import { forbiddenPage, homePage, loginPage, problemPage } from "./pages/home.ts";
import { registerLimits } from "./pages/limits.ts";
import { registerLog } from "./pages/log.ts";
import { registerModels } from "./pages/models.ts";
import { registerPlayground } from "./pages/playground.ts";
import { registerPurposes } from "./pages/purposes.ts";
import { registerSecrets } from "./pages/secrets.ts";
import { registerTokens } from "./pages/tokens.ts";
import { registerUsage } from "./pages/usage.ts";
import {
  adminSession,
  endSessionCookie,
  presentedCsrf,
  SESSION_COOKIE,
  startSession,
  takeFlash,
  type Viewer,
} from "./session.ts";
import { staticRoutes } from "./static.ts";

export { adminSession, SESSION_COOKIE, sessionActor, sessionCsrf } from "./session.ts";

export interface AdminOptions {
  hub: Hub;
  /** Gateway tokens for the Tokens page (default: the hub's). */
  tokens?: Tokens | undefined;
}

const CONTENT_SECURITY_POLICY = {
  defaultSrc: ["'self'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", "data:"],
  connectSrc: ["'self'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
  baseUri: ["'none'"],
  objectSrc: ["'none'"],
};

/** The admin UI's sections under `/-/`; other `/-/` paths (the data tools' `/-/enrich/…`) are not its. */
const SECTIONS = new Set([
  "login",
  "logout",
  "actor",
  "purposes",
  "models",
  "usage",
  "log",
  "limits",
  "playground",
  "tokens",
  "secrets",
  "audit",
  "static",
]);

export function isAdminPath(path: string): boolean {
  if (path === "/-/") return true;
  const section = /^\/-\/([a-z]+)(?:[./]|$)/.exec(path)?.[1];
  return section !== undefined && SECTIONS.has(section);
}

/** Runs the middleware on the admin UI's own paths only. */
function onlyAdmin(middleware: MiddlewareHandler): MiddlewareHandler {
  return (c, next) => (isAdminPath(c.req.path) ? middleware(c, next) : next());
}

/** The admin routes (all under `/-/`), to mount at `/` on the app. */
export function adminRoutes(options: AdminOptions): Hono {
  const { hub } = options;
  const deps: AdminDeps = { hub, tokens: options.tokens ?? hub.tokens };
  const admin = new Hono();

  admin.get("/-", (c) => c.redirect("/-/", 301));
  admin.use(
    "/-/*",
    onlyAdmin(
      secureHeaders({ referrerPolicy: "same-origin", contentSecurityPolicy: CONTENT_SECURITY_POLICY }),
    ),
  );
  admin.route("/-/static", staticRoutes());
  admin.use(
    "/-/*",
    onlyAdmin(async (c, next) => {
      await next();
      // Pages show live state (tokens, usage); a cached copy would show stale or someone else's data.
      c.header("cache-control", "no-store");
    }),
  );
  admin.use("/-/*", onlyAdmin(csrf()));
  admin.use("/-/*", onlyAdmin(adminSession(hub)));

  admin.get("/-/login", async (c) => {
    const token = c.req.query("token");
    if (!token) return c.get("adminSession") ? c.redirect("/-/", 303) : c.html(loginPage({}), 401);
    const session = await hub.logins.redeem(token);
    if (!session) {
      return c.html(
        loginPage({
          problem: "This login link is not valid: it was used already, has expired, or is mistyped.",
        }),
        401,
      );
    }
    await startSession(c, hub, session);
    // Away from the URL that held the token, so it stays out of history and the address bar.
    return c.redirect("/-/", 303);
  });

  // Everything below needs a signed-in actor.
  admin.use(
    "/-/*",
    onlyAdmin(async (c, next) => {
      const session = c.get("adminSession");
      if (!session) {
        if (c.req.method === "GET" || c.req.method === "HEAD") {
          if (c.req.path.endsWith(".json") || c.req.path.endsWith(".csv")) {
            return c.json({ ok: false, error: "Sign in with a login link first." }, 401);
          }
          return c.redirect("/-/login", 302);
        }
        return c.html(loginPage({ problem: "Sign in first: this action needs a signed-in actor." }), 403);
      }
      const viewer: Viewer = {
        actor: session.actor,
        session,
        csrf: await hub.logins.csrfToken(session.id),
        can: (action) => hub.permissions.can(session.actor, action),
      };
      c.set("viewer", viewer);
      if (c.req.method !== "GET" && c.req.method !== "HEAD") {
        if (!(await hub.logins.checkCsrf(session.id, await presentedCsrf(c)))) {
          return c.html(
            problemPage(
              viewer,
              "Form expired",
              "This form is missing its security token or it has expired: reload the page and try again.",
            ),
            403,
          );
        }
      }
      await next();
      return undefined;
    }),
  );

  admin.post("/-/logout", async (c) => {
    await hub.logins.end(c.get("viewer").session.id);
    endSessionCookie(c);
    return c.redirect("/-/login", 303);
  });
  admin.get("/-/", async (c) => c.html(await homePage(c.get("viewer"), await takeFlash(c, hub))));
  admin.get("/-/actor.json", (c) =>
    c.json({
      actor: { id: c.get("viewer").actor },
      actions: hub.permissions.actionsOf(c.get("viewer").actor),
    }),
  );

  registerPurposes(admin, deps);
  registerModels(admin, deps);
  registerUsage(admin, deps);
  registerLog(admin, deps);
  registerLimits(admin, deps);
  registerPlayground(admin, deps);
  registerTokens(admin, deps);
  registerSecrets(admin, deps);
  registerAudit(admin, deps);

  admin.onError((error, c) => errorPage(c, error));
  return admin;
}

function errorPage(c: Context, error: unknown): Response | Promise<Response> {
  // hono's own refusals (the origin check's 403) keep their status.
  if (error instanceof HTTPException) return error.getResponse();
  const viewer = c.get("viewer") as Viewer | undefined;
  if (isSwitchboardError(error) && error.httpStatus < 500) {
    const status = error.httpStatus as 400 | 403 | 404;
    return viewer && status === 403
      ? c.html(forbiddenPage(viewer, "this"), 403)
      : c.html(problemPage(viewer, "Not done", error.message), status);
  }
  console.error(`Admin ${c.req.method} ${c.req.path} failed: ${scrubSecrets(describeError(error))}`);
  const message = isSwitchboardError(error)
    ? error.message
    : "Something failed inside the server; its log has the details.";
  return c.html(problemPage(viewer, "Something went wrong", message), 500);
}

export { SESSION_COOKIE as ADMIN_SESSION_COOKIE };
