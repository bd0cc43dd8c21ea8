/**
 * What every data page shares: the databases served (by URL name), the acting actor, permission
 * and CSRF checks, and turning failures into an HTML page or the `.json` twin's error shape.
 */
import { realpathSync } from "node:fs";
import { basename, extname } from "node:path";
import { SwitchboardError } from "@switchboard/core";
import type { DataAction, PermissionCheck } from "@switchboard/data";
import type { Actor, Hub } from "@switchboard/hub";
import type { Context } from "hono";
import { html } from "hono/html";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AppEnv } from "../env.ts";
import { toProblem } from "../errors.ts";
import { reportUnexpected } from "../middleware/errors.ts";
import type { CsrfGuard, ResolveActor } from "./access.ts";
import { type Flash, type Html, page, tildeDecode, tildeEncode } from "./html.ts";

/** A failure a page answers with its own status (403 without CSRF token or permission, 404…). */
export class PageError extends Error {
  readonly status: ContentfulStatusCode;
  constructor(status: ContentfulStatusCode, message: string) {
    super(message);
    this.status = status;
  }
}

export interface ServedDatabase {
  /** The name in URLs: the file name without its extension. */
  name: string;
  path: string;
}

/** `books.db` → `books`; a second `books.db` from another folder becomes `books_2`. */
export function nameDatabases(paths: readonly string[]): Map<string, ServedDatabase> {
  const byName = new Map<string, ServedDatabase>();
  for (const given of paths) {
    let path: string;
    try {
      path = realpathSync(given);
    } catch {
      throw new SwitchboardError("NOT_FOUND", `Database ${given} does not exist; check the path.`, {
        database: given,
      });
    }
    const stem = basename(path, extname(path));
    let name = stem;
    for (let n = 2; byName.has(name); n++) name = `${stem}_${n}`;
    byName.set(name, { name, path });
  }
  return byName;
}

export class DataPagesContext {
  readonly hub: Hub;
  readonly databases: Map<string, ServedDatabase>;
  readonly resolveActor: ResolveActor;
  readonly can: PermissionCheck;
  readonly csrf: CsrfGuard;

  constructor(options: {
    hub: Hub;
    databases: Map<string, ServedDatabase>;
    resolveActor: ResolveActor;
    can: PermissionCheck;
    csrf: CsrfGuard;
  }) {
    this.hub = options.hub;
    this.databases = options.databases;
    this.resolveActor = options.resolveActor;
    this.can = options.can;
    this.csrf = options.csrf;
  }

  database(encodedName: string): ServedDatabase {
    const name = tildeDecode(encodedName);
    const database = this.databases.get(name);
    if (!database) {
      const served = [...this.databases.keys()].join(", ") || "none";
      throw new PageError(404, `No database named "${name}" is served here (served: ${served}).`);
    }
    return database;
  }

  async actor(c: Context): Promise<Actor | undefined> {
    return this.resolveActor(c);
  }

  async allowed(action: DataAction, actor: Actor | undefined): Promise<boolean> {
    return this.can(action, actor);
  }

  /** The actor of a POST, after its CSRF token and the action's permission were checked. */
  async authorizePost(c: Context, form: FormFields, action: DataAction): Promise<Actor | undefined> {
    const submitted = form.text("csrf") || c.req.header("x-csrf-token");
    if (!(await this.csrf.verify(c, submitted))) {
      throw new PageError(
        403,
        "The form's security token is missing or stale: reload the page and submit the form again.",
      );
    }
    const actor = await this.actor(c);
    if (!(await this.allowed(action, actor))) {
      const who = actor ? `Actor "${actor.id}"` : "An anonymous user";
      throw new PageError(
        403,
        `${who} may not ${action}; sign in, or grant it with permissions: {${action}: [${actor?.id ?? "ACTOR_ID"}]} in switchboard.yaml.`,
      );
    }
    return actor;
  }

  /** Renders a failure as a page (or the JSON error shape for a `.json` twin). */
  fail(c: Context, error: unknown, json: boolean): Response | Promise<Response> {
    if (!(error instanceof PageError)) reportUnexpected(c as Context<AppEnv>, error);
    const { status, message } = describeFailure(error);
    if (json) return c.json({ ok: false, status, error: message }, status);
    return c.html(page({ title: statusTitle(status), body: htmlMessage(message) }), status);
  }
}

function htmlMessage(message: string): Html {
  return html`<p>${message}</p>`;
}

function statusTitle(status: number): string {
  if (status === 403) return "Forbidden";
  if (status === 404) return "Not found";
  if (status >= 500) return "Server error";
  return "Cannot do that";
}

export function describeFailure(error: unknown): { status: ContentfulStatusCode; message: string } {
  if (error instanceof PageError) return { status: error.status, message: error.message };
  const problem = toProblem(error);
  return { status: problem.status as ContentfulStatusCode, message: problem.message };
}

/** A flash message for a failure shown on the form that caused it. */
export function failureFlash(error: unknown): { flash: Flash; status: ContentfulStatusCode } {
  const { status, message } = describeFailure(error);
  return { flash: { level: "error", text: message }, status };
}

/** A parsed form body (url-encoded or multipart). */
export class FormFields {
  readonly fields: Record<string, string | File | (string | File)[]>;

  constructor(fields: Record<string, string | File | (string | File)[]>) {
    this.fields = fields;
  }

  static async of(c: Context): Promise<FormFields> {
    const type = c.req.header("content-type") ?? "";
    if (!type.includes("form")) return new FormFields({});
    return new FormFields(await c.req.parseBody({ all: true }));
  }

  text(name: string): string {
    const value = this.fields[name];
    const first = Array.isArray(value) ? value[0] : value;
    return typeof first === "string" ? first : "";
  }

  file(name: string): File | undefined {
    const value = this.fields[name];
    const first = Array.isArray(value) ? value[0] : value;
    return first instanceof File && first.size > 0 ? first : undefined;
  }
}

export const dbHref = (database: string) => `/${tildeEncode(database)}`;
export const tableHref = (database: string, table: string) =>
  `/${tildeEncode(database)}/${tildeEncode(table)}`;
export const enrichHref = (database: string, table: string) =>
  `/-/enrich/${tildeEncode(database)}/${tildeEncode(table)}`;
export const jobsHref = (database: string) => `/-/enrich/${tildeEncode(database)}/-/jobs`;
export const jobHref = (database: string, id: number) => `${jobsHref(database)}/${id}`;
export const extractHref = (database: string, table?: string) =>
  table === undefined
    ? `/${tildeEncode(database)}/-/extract`
    : `/${tildeEncode(database)}/${tildeEncode(table)}/-/extract`;
export const extractRunHref = (database: string, id: string) =>
  `/${tildeEncode(database)}/-/extract/${encodeURIComponent(id)}`;
export const assistantHref = (database: string) => `/${tildeEncode(database)}/-/assistant`;
