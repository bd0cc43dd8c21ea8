/**
 * The response log: newest first, a page at a time (an opaque cursor, so pages neither skip nor
 * repeat), filterable; a tool-call chain is one entry with its steps, tool calls and results in
 * order. Prompt and response text appear only when the usage log keeps them (`usage.log_prompts`)
 * and the viewer has `view-prompts`; otherwise the page says which of the two is missing.
 */
import type { LogEntry, LogQuery } from "@switchboard/hub";
import type { Context, Hono } from "hono";
import { html } from "hono/html";
import { type AdminDeps, guardPage, page } from "../guard.ts";
import { formatCost, formatCount, formatTime, type Html, layout, query } from "../layout.ts";
import type { Viewer } from "../session.ts";

const PATH = "/-/log";
const PAGE_SIZE = 50;
const SINCE: Record<string, number> = {
  "1h": 3_600_000,
  "24h": 86_400_000,
  "7d": 7 * 86_400_000,
  "30d": 30 * 86_400_000,
};
const STATUSES = ["ok", "error", "aborted"] as const;

type LogRecord = Extract<LogEntry, { kind: "response" }>["response"];

interface LogFilters {
  since: string;
  purpose: string;
  model: string;
  actor: string;
  status: string;
}

function filtersOf(c: Context): LogFilters {
  return {
    since: c.req.query("since") ?? "",
    purpose: c.req.query("purpose") ?? "",
    model: c.req.query("model") ?? "",
    actor: c.req.query("actor") ?? "",
    status: c.req.query("status") ?? "",
  };
}

function logQuery(filters: LogFilters, cursor: string | undefined): LogQuery {
  const since = SINCE[filters.since];
  return {
    limit: PAGE_SIZE,
    ...(cursor ? { cursor } : {}),
    ...(since ? { since: new Date(Date.now() - since) } : {}),
    ...(filters.purpose ? { purpose: filters.purpose } : {}),
    ...(filters.model ? { model: filters.model } : {}),
    ...(filters.actor ? { actorId: filters.actor } : {}),
    ...(STATUSES.includes(filters.status as (typeof STATUSES)[number])
      ? { status: filters.status as (typeof STATUSES)[number] }
      : {}),
  };
}

/** Prompt and response text, or why it is not shown. */
function texts(record: LogRecord, viewer: Viewer, logPrompts: boolean): Html {
  if (!logPrompts && record.prompt === undefined && record.response === undefined) {
    return html`<span class="muted">text not logged (usage.log_prompts is off)</span>`;
  }
  if (!viewer.can("view-prompts")) return html`<span class="muted">text hidden (needs view-prompts)</span>`;
  return html`<details>
    <summary>Prompt and response</summary>
    ${record.system ? html`<p class="muted">System</p><pre class="text">${record.system}</pre>` : ""}
    <p class="muted">Prompt</p>
    <pre class="text">${record.prompt ?? ""}</pre>
    ${record.toolResults ? html`<p class="muted">Tool results</p><pre class="text">${record.toolResults}</pre>` : ""}
    <p class="muted">Response</p>
    <pre class="text">${record.response ?? ""}</pre>
    ${record.toolCalls ? html`<p class="muted">Tool calls</p><pre class="text">${record.toolCalls}</pre>` : ""}
  </details>`;
}

function modelCell(record: LogRecord): Html {
  if (record.modelAnswered === record.modelRequested) return html`<code>${record.modelAnswered}</code>`;
  return html`<code>${record.modelRequested}</code> → <code>${record.modelAnswered}</code>
    <span class="source source-plugin">fallback</span>`;
}

function row(record: LogRecord, viewer: Viewer, logPrompts: boolean, step?: number): Html {
  return html`<tr id="${record.id}">
    <td>${step === undefined ? formatTime(record.createdAt) : html`<span class="muted">step ${step}</span>`}</td>
    <td>${record.actorId ?? html`<span class="muted">—</span>`}</td>
    <td>${record.purpose ?? html`<span class="muted">—</span>`}</td>
    <td>${modelCell(record)}</td>
    <td class="status-${record.status}">${record.status}${record.error ? html`<br /><span class="muted">${record.error}</span>` : ""}</td>
    <td class="num">${formatCount(record.inputTokens)}</td>
    <td class="num">${formatCount(record.outputTokens)}</td>
    <td class="num">${formatCount(record.cachedTokens)}</td>
    <td class="num">${formatCost(record.costNanocents)}</td>
    <td class="num">${record.durationMs === undefined ? "—" : `${formatCount(record.durationMs)} ms`}</td>
    <td>${texts(record, viewer, logPrompts)}</td>
  </tr>`;
}

function entryRows(entry: LogEntry, viewer: Viewer, logPrompts: boolean): Html {
  if (entry.kind === "response") return row(entry.response, viewer, logPrompts);
  const last = entry.steps.at(-1) as LogRecord;
  return html`<tr class="chain" id="${entry.chainId}">
      <td>${formatTime(last.createdAt)}</td>
      <td>${last.actorId ?? "—"}</td>
      <td>${last.purpose ?? "—"}</td>
      <td colspan="2">chain <code>${entry.chainId}</code>: ${entry.steps.length} responses</td>
      <td class="num">${formatCount(entry.totals.inputTokens)}</td>
      <td class="num">${formatCount(entry.totals.outputTokens)}</td>
      <td class="num">${formatCount(entry.totals.cachedTokens)}</td>
      <td class="num">${formatCost(entry.totals.costNanocents)}</td>
      <td></td>
      <td></td>
    </tr>
    ${entry.steps.map((step, index) => row(step, viewer, logPrompts, index + 1))}`;
}

function select(name: string, label: string, value: string, options: readonly string[], any: string): Html {
  return html`<label for="${name}"
    >${label}
    <select id="${name}" name="${name}">
      <option value="">${any}</option>
      ${options.map((option) => html`<option value="${option}" ${option === value ? "selected" : ""}>${option}</option>`)}
    </select></label
  >`;
}

function logPage(
  viewer: Viewer,
  entries: LogEntry[],
  filters: LogFilters,
  next: string | undefined,
  logPrompts: boolean,
): Html {
  return layout({
    title: "Log",
    viewer,
    current: PATH,
    body: html`
      <form class="filters" method="get" action="${PATH}">
        ${select("since", "Since", filters.since, Object.keys(SINCE), "any time")}
        <label for="purpose">Purpose <input type="text" id="purpose" name="purpose" value="${filters.purpose}" /></label>
        <label for="model">Model <input type="text" id="model" name="model" value="${filters.model}" /></label>
        <label for="actor">Actor <input type="text" id="actor" name="actor" value="${filters.actor}" /></label>
        ${select("status", "Status", filters.status, STATUSES, "all")}
        <button type="submit" class="secondary">Filter</button>
      </form>
      <table>
        <caption>
          Responses newest first (UTC); a chain is shown with its steps in order. Cost is as charged when the
          response was logged.
        </caption>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Actor</th>
            <th scope="col">Purpose</th>
            <th scope="col">Model</th>
            <th scope="col">Status</th>
            <th scope="col" class="num">In</th>
            <th scope="col" class="num">Out</th>
            <th scope="col" class="num">Cached</th>
            <th scope="col" class="num">Cost</th>
            <th scope="col" class="num">Duration</th>
            <th scope="col">Text</th>
          </tr>
        </thead>
        <tbody>
          ${
            entries.length === 0
              ? html`<tr><td colspan="11" class="muted">No responses logged${Object.values(filters).some(Boolean) ? " that match" : ""}.</td></tr>`
              : entries.map((entry) => entryRows(entry, viewer, logPrompts))
          }
        </tbody>
      </table>
      ${next ? html`<p class="pager"><a href="${PATH}${query({ ...filters, next })}" rel="next">Older responses</a></p>` : ""}
    `,
  });
}

export function registerLog(admin: Hono, { hub }: AdminDeps): void {
  admin.get("/-/log", guardPage(PATH), async (c) => {
    const filters = filtersOf(c);
    const result = await hub.reports.log(logQuery(filters, c.req.query("next")));
    const logPrompts = hub.config.usage?.log_prompts ?? false;
    return page(c, logPage(c.get("viewer"), result.entries, filters, result.nextCursor, logPrompts));
  });
}
