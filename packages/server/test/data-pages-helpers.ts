import { join } from "node:path";
import { KeyStore } from "@switchboard/core";
import { dataPlugins, type PermissionCheck } from "@switchboard/data";
import { Hub, type HubConfigInput } from "@switchboard/hub";
import Database from "better-sqlite3";
import type { Hono } from "hono";
import demoModels from "../../../scripts/demo-models.ts";
import { dataPages } from "../src/data-pages/index.ts";
import { temporaryDirectory } from "./helpers.ts";

/** A database with `books` (composite key, 250 rows, some NULL series), a hidden `_notes` table, and `my table.v2`. */
export function libraryDatabase(): string {
  const path = join(temporaryDirectory(), "library.db");
  const db = new Database(path);
  db.exec(`
    CREATE TABLE books (shelf TEXT NOT NULL, position INTEGER NOT NULL, title TEXT, series TEXT, PRIMARY KEY (shelf, position));
    CREATE TABLE _notes (note TEXT);
    CREATE TABLE "my table.v2" (name TEXT);
    INSERT INTO "my table.v2" VALUES ('only row');
  `);
  const insert = db.prepare("INSERT INTO books VALUES (?, ?, ?, ?)");
  for (let index = 0; index < 250; index++) {
    insert.run(index % 2 ? "B" : "A", index, `Title ${index}`, index % 3 ? `S${index % 7}` : null);
  }
  db.close();
  return path;
}

export async function dataHub(config: HubConfigInput = {}): Promise<Hub> {
  const dir = temporaryDirectory();
  return Hub.create({
    config: {
      storage: `sqlite:${join(dir, "switchboard.db")}`,
      default_model: "echo",
      require_keys: false,
      ...config,
    },
    keys: new KeyStore(join(dir, "keys.json")),
    env: {},
    plugins: [...dataPlugins(), demoModels()],
  });
}

/** The actor comes from an `x-test-actor` header: a stand-in for a signed session. */
export function testPages(hub: Hub, database: string, can?: PermissionCheck): Hono {
  return dataPages({
    hub,
    databases: [database],
    resolveActor: (c) => {
      const id = c.req.header("x-test-actor");
      return id ? { id } : undefined;
    },
    ...(can ? { can } : {}),
  });
}

/** A browser-like session: keeps the cookies pages set, reads a form's CSRF token. */
export class Session {
  readonly #cookies = new Map<string, string>();
  readonly #app: Hono;
  readonly #actor: string | undefined;

  constructor(app: Hono, actor?: string) {
    this.#app = app;
    this.#actor = actor;
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    const cookie = [...this.#cookies].map(([name, value]) => `${name}=${value}`).join("; ");
    return {
      ...(cookie ? { cookie } : {}),
      ...(this.#actor ? { "x-test-actor": this.#actor } : {}),
      ...extra,
    };
  }

  async get(path: string): Promise<Response> {
    const response = await this.#app.request(path, { headers: this.headers() });
    this.#keep(response);
    return response;
  }

  /** GETs a page and returns its form token. */
  async token(path: string): Promise<string> {
    const text = await (await this.get(path)).text();
    const token = /name="csrf" value="([^"]+)"/.exec(text)?.[1];
    if (!token) throw new Error(`No CSRF token on ${path}`);
    return token;
  }

  async post(path: string, fields: Record<string, string>): Promise<Response> {
    const response = await this.#app.request(path, {
      method: "POST",
      headers: this.headers({ "content-type": "application/x-www-form-urlencoded" }),
      body: new URLSearchParams(fields).toString(),
    });
    this.#keep(response);
    return response;
  }

  #keep(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair = ""] = line.split(";");
      const at = pair.indexOf("=");
      this.#cookies.set(pair.slice(0, at), pair.slice(at + 1));
    }
  }
}

export async function waitFor<T>(
  check: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 15_000,
): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() - started > timeoutMs) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
