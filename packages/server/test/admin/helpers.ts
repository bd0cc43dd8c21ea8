/**
 * Admin UI test helpers: the server's app over a fresh hub (SQLite file), sign-in by
 * login link, and requests that carry the session cookie, the CSRF token and a same-origin `Origin`.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KeyStore } from "@switchboard/core";
import { Hub, type HubConfigInput } from "@switchboard/hub";
import { createApp, type SwitchboardApp } from "../../src/app.ts";

export const ORIGIN = "http://localhost";

export const ADMIN_CONFIG: HubConfigInput = {
  default_model: "echo",
  require_keys: false,
  usage: { log_prompts: true },
  purposes: {
    summaries: { description: "Short summaries", model: "echo" },
    extract: { description: "Structured extraction" },
  },
  permissions: { "view-usage": ["viewer"], "manage-purposes": ["editor"], "use-playground": ["viewer"] },
};

export interface Session {
  actor: string;
  cookie: string;
  csrf: string;
}

export interface AdminTestApp {
  app: SwitchboardApp;
  hub: Hub;
  signIn(actor: string): Promise<Session>;
  get(path: string, session?: Session): Promise<Response> | Response;
  /** A same-origin form POST with the session's CSRF token (unless `csrf: false` or another value). */
  post(
    path: string,
    session: Session | undefined,
    fields?: Record<string, string | string[]>,
    options?: { csrf?: string | false; origin?: string | false },
  ): Promise<Response> | Response;
  close(): Promise<void>;
}

export async function adminTestApp(
  config: HubConfigInput = ADMIN_CONFIG,
  env: Record<string, string> = {},
): Promise<AdminTestApp> {
  const dir = mkdtempSync(join(tmpdir(), "switchboard-admin-"));
  const hub = await Hub.create({
    config: { storage: `sqlite:${join(dir, "switchboard.db")}`, ...config },
    keys: new KeyStore(join(dir, "keys.json")),
    env,
  });
  const app = createApp({ hub });
  const get = (path: string, session?: Session) =>
    app.request(path, { headers: session ? { cookie: session.cookie } : {} });
  return {
    app,
    hub,
    async signIn(actor) {
      const { token } = await hub.logins.createLink(actor);
      const response = await app.request(`/-/login?token=${encodeURIComponent(token)}`);
      const cookie = (response.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
      const home = await (await app.request("/-/", { headers: { cookie } })).text();
      const csrf = /name="csrf" value="([^"]+)"/.exec(home)?.[1] ?? "";
      return { actor, cookie, csrf };
    },
    get,
    post(path, session, fields = {}, options = {}) {
      const body = new URLSearchParams();
      for (const [name, value] of Object.entries(fields)) {
        for (const item of Array.isArray(value) ? value : [value]) body.append(name, item);
      }
      const csrf = options.csrf === undefined ? session?.csrf : options.csrf;
      if (csrf) body.set("csrf", csrf);
      const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded" };
      if (options.origin !== false) headers.origin = options.origin ?? ORIGIN;
      if (session) headers.cookie = session.cookie;
      return app.request(path, { method: "POST", body, headers });
    },
    close: () => hub.close(),
  };
}
