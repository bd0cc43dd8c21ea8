/**
 * The audit log: every change made in the admin UI, newest first, paged by an opaque cursor
 * (keyset on time and id, so a page never skips or repeats an entry).
 */
import type { AuditEntry, AuditTargetType } from "@switchboard/hub";
import type { Hono } from "hono";
import { html } from "hono/html";
import { type AdminDeps, guardPage, page } from "../guard.ts";
import { formatTime, type Html, layout, query } from "../layout.ts";
import type { Viewer } from "../session.ts";

const PATH = "/-/audit";
const PAGE_SIZE = 50;
const TARGET_TYPES: readonly AuditTargetType[] = ["purpose", "secret", "token", "allowance"];
const SINCE: Record<string, number> = { "24h": 86_400_000, "7d": 7 * 86_400_000, "30d": 30 * 86_400_000 };

export interface Cursor {
  createdAt: Date;
  id: string;
}

/** An opaque "next page" token: the last row's time and id. */
export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(`${cursor.createdAt.getTime()}.${cursor.id}`).toString("base64url");
}

export function decodeCursor(token: string | undefined): Cursor | undefined {
  if (!token) return undefined;
  const text = Buffer.from(token, "base64url").toString("utf8");
  const dot = text.indexOf(".");
  const ms = Number(text.slice(0, dot));
  if (dot < 1 || !Number.isSafeInteger(ms)) return undefined;
  return { createdAt: new Date(ms), id: text.slice(dot + 1) };
}

interface AuditFilters {
  actor: string;
  type: string;
  target: string;
  since: string;
}

function state(value: unknown): Html {
  if (value === undefined || value === null) return html`<span class="muted">—</span>`;
  return html`<code>${JSON.stringify(value)}</code>`;
}

function auditPage(
  viewer: Viewer,
  entries: AuditEntry[],
  filters: AuditFilters,
  next: string | undefined,
): Html {
  return layout({
    title: "Audit log",
    viewer,
    current: PATH,
    body: html`
      <form class="filters" method="get" action="${PATH}">
        <label for="actor">Actor <input type="text" id="actor" name="actor" value="${filters.actor}" /></label>
        <label for="type"
          >Target type
          <select id="type" name="type">
            <option value="">any</option>
            ${TARGET_TYPES.map((type) => html`<option value="${type}" ${filters.type === type ? "selected" : ""}>${type}</option>`)}
          </select></label
        >
        <label for="target">Target <input type="text" id="target" name="target" value="${filters.target}" /></label>
        <label for="since"
          >Since
          <select id="since" name="since">
            <option value="">any time</option>
            ${Object.keys(SINCE).map((key) => html`<option value="${key}" ${filters.since === key ? "selected" : ""}>last ${key}</option>`)}
          </select></label
        >
        <button type="submit" class="secondary">Filter</button>
      </form>
      <table>
        <caption>
          Changes made in the admin UI, newest first (UTC). Secret values, token values and login tokens are never
          recorded.
        </caption>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Actor</th>
            <th scope="col">Action</th>
            <th scope="col">Target</th>
            <th scope="col">Before</th>
            <th scope="col">After</th>
            <th scope="col">Instance</th>
          </tr>
        </thead>
        <tbody>
          ${
            entries.length === 0
              ? html`<tr><td colspan="7" class="muted">No changes recorded${filters.actor || filters.type || filters.target || filters.since ? " that match" : ""}.</td></tr>`
              : entries.map(
                  (entry) => html`<tr>
                    <td class="time">${formatTime(entry.createdAt)}</td>
                    <td>${entry.actor}</td>
                    <td><code>${entry.action}</code></td>
                    <td>${entry.targetType} <strong>${entry.target}</strong></td>
                    <td>${state(entry.before)}</td>
                    <td>${state(entry.after)}</td>
                    <td class="muted">${entry.instance}</td>
                  </tr>`,
                )
          }
        </tbody>
      </table>
      ${next ? html`<p class="pager"><a href="${PATH}${query({ ...filters, next })}" rel="next">Older changes</a></p>` : ""}
    `,
  });
}

export function registerAudit(admin: Hono, { hub }: AdminDeps): void {
  admin.get("/-/audit", guardPage(PATH), async (c) => {
    const filters: AuditFilters = {
      actor: c.req.query("actor") ?? "",
      type: c.req.query("type") ?? "",
      target: c.req.query("target") ?? "",
      since: c.req.query("since") ?? "",
    };
    const since = SINCE[filters.since];
    const before = decodeCursor(c.req.query("next"));
    const rows = await hub.audit.list({
      limit: PAGE_SIZE + 1,
      ...(filters.actor ? { actor: filters.actor } : {}),
      ...(TARGET_TYPES.includes(filters.type as AuditTargetType)
        ? { targetType: filters.type as AuditTargetType }
        : {}),
      ...(filters.target ? { target: filters.target } : {}),
      ...(since ? { since: new Date(Date.now() - since) } : {}),
      ...(before ? { before } : {}),
    });
    const entries = rows.slice(0, PAGE_SIZE);
    const last = entries.at(-1);
    const next = rows.length > PAGE_SIZE && last ? encodeCursor(last) : undefined;
    return page(c, auditPage(c.get("viewer"), entries, filters, next));
  });
}
