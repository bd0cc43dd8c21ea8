/**
 * The data tools' pages on `switchboard serve`: browse a database's tables and rows, start and
 * watch enrichment jobs, extract rows from text or images, ask the SQL assistant. One function
 * returns them as a Hono app so they can be mounted under any sign-in and CSRF scheme.
 */
import type { PermissionCheck } from "@switchboard/data";
import type { Hub } from "@switchboard/hub";
import { Hono } from "hono";
import {
  anonymous,
  type CsrfGuard,
  permissionsFromConfig,
  type ResolveActor,
  signedCookieCsrf,
} from "./access.ts";
import { assistantRoutes } from "./assistant.ts";
import { browseRoutes } from "./browse.ts";
import { DataPagesContext, nameDatabases } from "./context.ts";
import { enrichRoutes } from "./enrich.ts";
import { extractRoutes } from "./extract.ts";

export type { CsrfGuard, ResolveActor } from "./access.ts";
export { anonymous, permissionsFromConfig, signedCookieCsrf } from "./access.ts";
export { tildeDecode, tildeEncode } from "./html.ts";

export interface DataPagesOptions {
  hub: Hub;
  /** SQLite files; each is served under its file name without the extension (`books.db` → `/books`). */
  databases: readonly string[];
  /** Who is asking (default: nobody is signed in). */
  resolveActor?: ResolveActor | undefined;
  /** Who may enrich, extract, ask (default: `permissions:` in the configuration; never anonymous). */
  can?: PermissionCheck | undefined;
  /** Form tokens (default: a signed double-submit cookie with a per-process secret). */
  csrf?: CsrfGuard | undefined;
}

export function dataPages(options: DataPagesOptions): Hono {
  const ctx = new DataPagesContext({
    hub: options.hub,
    databases: nameDatabases(options.databases),
    resolveActor: options.resolveActor ?? anonymous,
    can: options.can ?? permissionsFromConfig(options.hub),
    csrf: options.csrf ?? signedCookieCsrf(),
  });
  const app = new Hono();
  app.use("*", async (c, next) => {
    await next();
    // Pages show data and job state that change from one load to the next.
    c.header("Cache-Control", "no-store");
  });
  // The most specific paths first: `-` is never a table name here.
  enrichRoutes(app, ctx);
  extractRoutes(app, ctx);
  assistantRoutes(app, ctx);
  browseRoutes(app, ctx);
  return app;
}
