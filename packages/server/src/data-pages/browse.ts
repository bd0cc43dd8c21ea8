/**
 * `/<db>` (its tables with row counts) and `/<db>/<table>` (rows, keyset-paginated and sortable),
 * each with a `.json` twin.
 */
import { SwitchboardError } from "@switchboard/core";
import { Enrichments, listTables } from "@switchboard/data";
import Database from "better-sqlite3";
import type { Hono } from "hono";
import { html } from "hono/html";
import {
  assistantHref,
  type DataPagesContext,
  dbHref,
  enrichHref,
  extractHref,
  jobsHref,
  tableHref,
} from "./context.ts";
import { cellText, page, splitJsonSuffix, tildeDecode } from "./html.ts";

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

function quote(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

interface TableShape {
  columns: string[];
  primaryKey: string[];
  usesRowid: boolean;
}

function tableShape(db: Database.Database, table: string): TableShape {
  const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table);
  if (!exists) throw new SwitchboardError("NOT_FOUND", `Table "${table}" does not exist in this database.`);
  const info = db.prepare(`PRAGMA table_info(${quote(table)})`).all() as { name: string; pk: number }[];
  const keyed = info.filter((column) => column.pk > 0).sort((a, b) => a.pk - b.pk);
  return {
    columns: info.map((column) => column.name),
    primaryKey: keyed.length > 0 ? keyed.map((column) => column.name) : ["rowid"],
    usesRowid: keyed.length === 0,
  };
}

/** A table's columns (NOT_FOUND when it does not exist). */
export function tableColumns(path: string, table: string): string[] {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return tableShape(db, table).columns;
  } finally {
    db.close();
  }
}

/** Values a `_next` token carries; blobs do not survive JSON untagged. */
function encodeValue(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return { $blob: value.toString("base64") };
  return value;
}

function decodeValue(value: unknown): unknown {
  if (value && typeof value === "object" && typeof (value as { $blob?: unknown }).$blob === "string") {
    return Buffer.from((value as { $blob: string }).$blob, "base64");
  }
  return value;
}

/** `_next` is opaque to clients: the sort value (when sorted) and the key of the page's last row. */
function encodeNext(values: unknown[]): string {
  return Buffer.from(JSON.stringify(values.map(encodeValue))).toString("base64url");
}

function decodeNext(token: string, expected: number): unknown[] {
  try {
    const values = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as unknown;
    if (Array.isArray(values) && values.length === expected) return values.map(decodeValue);
  } catch {}
  throw new SwitchboardError(
    "INVALID_INPUT",
    "The _next token is not valid; start again from the first page.",
  );
}

export interface KeysetQuery {
  sort?: string | undefined;
  descending: boolean;
  size: number;
  next?: string | undefined;
}

export interface KeysetPage {
  columns: string[];
  primaryKey: string[];
  rows: Record<string, unknown>[];
  total: number;
  next: string | undefined;
}

/**
 * One page of rows after the `_next` position: `WHERE (sort, key) > last ORDER BY sort, key LIMIT
 * size + 1`, the extra row only saying there is a next page. SQLite sorts NULL first, so the
 * condition after a NULL sort value also takes every non-NULL value.
 */
export function keysetPage(path: string, table: string, query: KeysetQuery): KeysetPage {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const shape = tableShape(db, table);
    if (query.sort !== undefined && !shape.columns.includes(query.sort)) {
      throw new SwitchboardError(
        "INVALID_INPUT",
        `Cannot sort by "${query.sort}": table "${table}" has no such column.`,
      );
    }
    const key = shape.primaryKey;
    const keyTuple = `(${key.map(quote).join(", ")})`;
    const keyParams = `(${key.map(() => "?").join(", ")})`;
    const direction = query.descending ? "DESC" : "ASC";
    const after = query.descending ? "<" : ">";
    const sortColumn = query.sort === undefined ? undefined : quote(query.sort);
    const order = [...(sortColumn ? [sortColumn] : []), ...key.map(quote)].map((c) => `${c} ${direction}`);
    const params: unknown[] = [];
    let where = "";
    if (query.next) {
      const last = decodeNext(query.next, key.length + (sortColumn ? 1 : 0));
      if (!sortColumn) {
        where = `WHERE ${keyTuple} ${after} ${keyParams}`;
        params.push(...last);
      } else {
        const [sortValue, ...keyValues] = last;
        if (sortValue === null) {
          where = query.descending
            ? `WHERE ${sortColumn} IS NULL AND ${keyTuple} < ${keyParams}`
            : `WHERE (${sortColumn} IS NULL AND ${keyTuple} > ${keyParams}) OR ${sortColumn} IS NOT NULL`;
          params.push(...keyValues);
        } else {
          where = `WHERE ${sortColumn} ${after} ? OR (${sortColumn} = ? AND ${keyTuple} ${after} ${keyParams})${
            query.descending ? ` OR ${sortColumn} IS NULL` : ""
          }`;
          params.push(sortValue, sortValue, ...keyValues);
        }
      }
    }
    const selected = shape.usesRowid ? "rowid AS rowid, *" : "*";
    const rows = db
      .prepare(`SELECT ${selected} FROM ${quote(table)} ${where} ORDER BY ${order.join(", ")} LIMIT ?`)
      .all(...params, query.size + 1) as Record<string, unknown>[];
    const more = rows.length > query.size;
    if (more) rows.pop();
    const lastRow = rows.at(-1);
    const next =
      more && lastRow
        ? encodeNext([
            ...(query.sort !== undefined ? [lastRow[query.sort]] : []),
            ...key.map((k) => lastRow[k]),
          ])
        : undefined;
    const { n } = db.prepare(`SELECT count(*) AS n FROM ${quote(table)}`).get() as { n: number };
    return {
      columns: shape.usesRowid ? ["rowid", ...shape.columns] : shape.columns,
      primaryKey: key,
      rows,
      total: Number(n),
      next,
    };
  } finally {
    db.close();
  }
}

function pageSize(text: string | undefined): number {
  if (text === undefined || text === "") return DEFAULT_PAGE_SIZE;
  const size = Number(text);
  if (!Number.isInteger(size) || size < 1 || size > MAX_PAGE_SIZE) {
    throw new SwitchboardError("INVALID_INPUT", `_size must be a whole number from 1 to ${MAX_PAGE_SIZE}.`);
  }
  return size;
}

/** JSON-safe cell values: blobs described, not dumped. */
function jsonCell(value: unknown): unknown {
  return Buffer.isBuffer(value) ? { $blob_bytes: value.length } : value;
}

export function browseRoutes(app: Hono, ctx: DataPagesContext): void {
  app.get("/:db/:table", async (c) => {
    const { name: tableSegment, json } = splitJsonSuffix(c.req.param("table"));
    try {
      const database = ctx.database(c.req.param("db"));
      const table = tildeDecode(tableSegment);
      const sortDesc = c.req.query("_sort_desc");
      const sort = sortDesc || c.req.query("_sort") || undefined;
      const size = pageSize(c.req.query("_size"));
      const result = keysetPage(database.path, table, {
        sort,
        descending: Boolean(sortDesc),
        size,
        next: c.req.query("_next") || undefined,
      });
      const base = tableHref(database.name, table);
      const link = (params: Record<string, string | undefined>, suffix = "") => {
        const search = new URLSearchParams();
        for (const [name, value] of Object.entries(params)) if (value) search.set(name, value);
        const text = search.toString();
        return `${base}${suffix}${text ? `?${text}` : ""}`;
      };
      const keep = {
        _sort: sortDesc ? undefined : sort,
        _sort_desc: sortDesc || undefined,
        _size: c.req.query("_size"),
      };
      const nextUrl = result.next ? link({ ...keep, _next: result.next }, json ? ".json" : "") : undefined;
      const enrichments = new Enrichments({ hub: ctx.hub, database: database.path });
      let enriched: Set<string>;
      try {
        enriched = new Set(enrichments.jobs({ table }).map((job) => job.outputColumn));
      } finally {
        enrichments.close();
      }
      if (json) {
        if (nextUrl) c.header("Link", `<${nextUrl}>; rel="next"`);
        return c.json({
          ok: true,
          database: database.name,
          table,
          columns: result.columns,
          primary_key: result.primaryKey,
          enriched_columns: [...enriched],
          total: result.total,
          rows: result.rows.map((row) =>
            Object.fromEntries(Object.entries(row).map(([k, v]) => [k, jsonCell(v)])),
          ),
          next: result.next ?? null,
          next_url: nextUrl ?? null,
        });
      }
      const header = (column: string) => {
        const ascending = sort === column && !sortDesc;
        const href = ascending
          ? link({ _sort_desc: column, _size: keep._size })
          : link({ _sort: column, _size: keep._size });
        const marker = sort === column ? (sortDesc ? " ▼" : " ▲") : "";
        const ariaSort = sort === column ? (sortDesc ? "descending" : "ascending") : "none";
        return html`<th scope="col" aria-sort="${ariaSort}" class="${enriched.has(column) ? "enriched" : ""}"><a href="${href}">${column}</a>${marker}${
          enriched.has(column) ? html` <span class="hint">(enriched)</span>` : ""
        }</th>`;
      };
      return c.html(
        page({
          title: table,
          crumbs: [
            { label: database.name, href: dbHref(database.name) },
            { label: table, href: base },
          ],
          body: html`
<p>${result.total} row${result.total === 1 ? "" : "s"} · <a href="${link(keep, ".json")}">JSON</a></p>
<ul class="actions">
  <li><a href="${enrichHref(database.name, table)}">Enrich this table</a></li>
  <li><a href="${extractHref(database.name, table)}">Extract data into this table</a></li>
  <li><a href="${assistantHref(database.name)}?table=${encodeURIComponent(table)}">Query this table with the assistant</a></li>
  <li><a href="${jobsHref(database.name)}">Enrichment jobs</a></li>
</ul>
<table>
<caption>Rows of ${table}</caption>
<thead><tr>${result.columns.map(header)}</tr></thead>
<tbody>
${result.rows.map(
  (row) =>
    html`<tr>${result.columns.map((column) => html`<td class="${enriched.has(column) ? "enriched" : ""}">${cellText(row[column])}</td>`)}</tr>`,
)}
</tbody>
</table>
${nextUrl ? html`<p><a rel="next" href="${nextUrl}">Next page</a></p>` : ""}`,
        }),
      );
    } catch (error) {
      return ctx.fail(c, error, json);
    }
  });

  app.get("/:db", async (c) => {
    const { name, json } = splitJsonSuffix(c.req.param("db"));
    try {
      const database = ctx.database(name);
      // Tables starting with `_` are the tools' own (jobs, runs): hidden, as in Datasette.
      const tables = listTables(database.path).filter((table) => !table.name.startsWith("_"));
      if (json) {
        return c.json({
          ok: true,
          database: database.name,
          tables: tables.map((table) => ({
            name: table.name,
            rows: table.rowCount,
            columns: table.columns,
            primary_key: table.primaryKey,
            url: tableHref(database.name, table.name),
          })),
        });
      }
      return c.html(
        page({
          title: database.name,
          crumbs: [{ label: database.name, href: dbHref(database.name) }],
          body: html`
<ul class="actions">
  <li><a href="${extractHref(database.name)}">Extract data into a new table</a></li>
  <li><a href="${assistantHref(database.name)}">Ask a question (SQL assistant)</a></li>
  <li><a href="${jobsHref(database.name)}">Enrichment jobs</a></li>
  <li><a href="${dbHref(database.name)}.json">JSON</a></li>
</ul>
<table>
<caption>Tables</caption>
<thead><tr><th scope="col">Table</th><th scope="col">Rows</th><th scope="col">Columns</th></tr></thead>
<tbody>
${tables.map(
  (table) =>
    html`<tr><td><a href="${tableHref(database.name, table.name)}">${table.name}</a></td><td>${table.rowCount}</td><td>${table.columns.join(", ")}</td></tr>`,
)}
</tbody>
</table>`,
        }),
      );
    } catch (error) {
      return ctx.fail(c, error, json);
    }
  });
}
