/**
 * Usage: cost and tokens over time (hour or day buckets, UTC), split by purpose, model or actor,
 * with totals, filters, a CSV download and a JSON twin. Reads the hourly sums the store keeps as
 * rows are written, so the page costs the same with a hundred rows or a million.
 */
import { nanocentsToUsd } from "@switchboard/hub";
import type { Context, Hono } from "hono";
import { html } from "hono/html";
import { type AdminDeps, guardPage, page } from "../guard.ts";
import { formatCost, formatCount, formatTime, type Html, jsonScript, layout, query } from "../layout.ts";
import type { Viewer } from "../session.ts";

const PATH = "/-/usage";
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** Series shown in the chart; the rest are summed as "other". */
const TOP_SERIES = 6;
const OTHER = "(others)";

export const RANGES: Record<string, number> = {
  "24h": DAY_MS,
  "7d": 7 * DAY_MS,
  "30d": 30 * DAY_MS,
  "90d": 90 * DAY_MS,
};
const GROUPINGS = ["purpose", "model", "actor"] as const;
type Grouping = (typeof GROUPINGS)[number];

export interface UsageFilters {
  range: string;
  by: Grouping;
  bucket: "hour" | "day";
  purpose: string;
  model: string;
  actor: string;
}

interface Totals {
  responses: number;
  errors: number;
  inputTokens: number;
  outputTokens: number;
  cachedTokens: number;
  costNanocents: bigint;
}

export interface UsageReport {
  filters: UsageFilters;
  since: Date;
  until: Date;
  /** Every bucket of the range, oldest first (empty ones included). */
  buckets: Date[];
  series: { key: string; totals: Totals; perBucket: Totals[] }[];
  totals: Totals;
  bucketTotals: Totals[];
  choices: { purposes: string[]; models: string[]; actors: string[] };
}

const zero = (): Totals => ({
  responses: 0,
  errors: 0,
  inputTokens: 0,
  outputTokens: 0,
  cachedTokens: 0,
  costNanocents: 0n,
});

function add(into: Totals, row: Totals): void {
  into.responses += row.responses;
  into.errors += row.errors;
  into.inputTokens += row.inputTokens;
  into.outputTokens += row.outputTokens;
  into.cachedTokens += row.cachedTokens;
  into.costNanocents += row.costNanocents;
}

export function usageFilters(get: (name: string) => string | undefined): UsageFilters {
  const range = get("range") && RANGES[get("range") as string] ? (get("range") as string) : "7d";
  const by = GROUPINGS.includes(get("by") as Grouping) ? (get("by") as Grouping) : "purpose";
  const bucketAsked = get("bucket");
  const bucket =
    bucketAsked === "hour" || bucketAsked === "day" ? bucketAsked : range === "24h" ? "hour" : "day";
  return {
    range,
    by,
    bucket,
    purpose: get("purpose") ?? "",
    model: get("model") ?? "",
    actor: get("actor") ?? "",
  };
}

/** A label for responses without a purpose or actor. */
function keyLabel(key: string | null, by: Grouping): string {
  return key ?? (by === "actor" ? "(no actor)" : by === "purpose" ? "(no purpose)" : "(unknown)");
}

export async function usageReport(
  { hub }: AdminDeps,
  filters: UsageFilters,
  now = Date.now(),
): Promise<UsageReport> {
  const size = filters.bucket === "day" ? DAY_MS : HOUR_MS;
  const range = RANGES[filters.range] as number;
  // Whole buckets: the first one holds `now - range`, the last one holds now.
  const first = Math.floor((now - range) / size) * size;
  const end = Math.floor(now / size) * size + size;
  const since = new Date(first);
  const until = new Date(end);
  const store = await hub.store();
  const filter = {
    since,
    until,
    ...(filters.purpose ? { purpose: filters.purpose } : {}),
    ...(filters.model ? { model: filters.model } : {}),
    ...(filters.actor ? { actorId: filters.actor } : {}),
  };
  // The store ranks the keys and folds all but the top ones into "other", reading rollups where
  // it can (with many actors, every (bucket, actor) pair would be nearly a row per response).
  const [rows, choices] = await Promise.all([
    store.usageSeries({ ...filter, bucket: filters.bucket, by: filters.by, top: TOP_SERIES }),
    store.usageKeys({ since, until }),
  ]);
  const buckets: Date[] = [];
  for (let at = first; at < end; at += size) buckets.push(new Date(at));
  const index = new Map(buckets.map((bucket, position) => [bucket.getTime(), position]));
  const bucketTotals = buckets.map(zero);
  const byKey = new Map<string, { key: string; totals: Totals; perBucket: Totals[] }>();
  for (const row of rows) {
    // Only rows inside the shown buckets count, so every total is the sum of its buckets.
    const position = index.get(row.bucketStart.getTime());
    if (position === undefined) continue;
    const key = row.other ? OTHER : keyLabel(row.key, filters.by);
    let entry = byKey.get(key);
    if (!entry) {
      entry = { key, totals: zero(), perBucket: buckets.map(zero) };
      byKey.set(key, entry);
    }
    add(entry.totals, row);
    add(entry.perBucket[position] as Totals, row);
    add(bucketTotals[position] as Totals, row);
  }
  const totals = zero();
  for (const bucketTotal of bucketTotals) add(totals, bucketTotal);
  const series = [...byKey.values()].sort((a, b) => {
    if ((a.key === OTHER) !== (b.key === OTHER)) return a.key === OTHER ? 1 : -1;
    const byCost = b.totals.costNanocents - a.totals.costNanocents;
    return byCost === 0n ? b.totals.responses - a.totals.responses : byCost > 0n ? 1 : -1;
  });
  return { filters, since, until, buckets, series, totals, bucketTotals, choices };
}

/** What the chart script draws: x in unix seconds, one cost and one token series per key. */
function chartData(report: UsageReport) {
  return {
    bucket: report.filters.bucket,
    xs: report.buckets.map((bucket) => bucket.getTime() / 1000),
    series: report.series.map((entry) => ({
      label: entry.key,
      cost: entry.perBucket.map((totals) => nanocentsToUsd(totals.costNanocents)),
      tokens: entry.perBucket.map((totals) => totals.inputTokens + totals.outputTokens),
    })),
  };
}

function select(name: string, label: string, value: string, options: readonly string[], any = "any"): Html {
  return html`<label for="${name}"
    >${label}
    <select id="${name}" name="${name}">
      ${any ? html`<option value="">${any}</option>` : ""}
      ${options.map((option) => html`<option value="${option}" ${option === value ? "selected" : ""}>${option}</option>`)}
    </select></label
  >`;
}

function totalsCells(totals: Totals): Html {
  return html`<td class="num">${formatCount(totals.responses)}</td>
    <td class="num">${formatCount(totals.errors)}</td>
    <td class="num">${formatCount(totals.inputTokens)}</td>
    <td class="num">${formatCount(totals.outputTokens)}</td>
    <td class="num">${formatCount(totals.cachedTokens)}</td>
    <td class="num">${formatCost(totals.costNanocents)}</td>`;
}

const TOTAL_HEADERS = html`<th scope="col" class="num">Requests</th>
  <th scope="col" class="num">Errors</th>
  <th scope="col" class="num">Input tokens</th>
  <th scope="col" class="num">Output tokens</th>
  <th scope="col" class="num">Cached tokens</th>
  <th scope="col" class="num">Cost</th>`;

function filterQuery(filters: UsageFilters): string {
  return query({ ...filters });
}

function usagePage(viewer: Viewer, report: UsageReport): Html {
  const { filters, totals } = report;
  const label = (date: Date) =>
    filters.bucket === "day"
      ? `${date.toISOString().slice(0, 10)} UTC`
      : formatTime(date).replace(":00:00 UTC", ":00 UTC");
  return layout({
    title: "Usage",
    viewer,
    current: PATH,
    styles: ["uplot.css"],
    scripts: ["uplot.js", "usage.js"],
    body: html`
      <form class="filters" method="get" action="${PATH}">
        ${select("range", "Since", filters.range, Object.keys(RANGES), "")}
        ${select("purpose", "Purpose", filters.purpose, report.choices.purposes)}
        ${select("model", "Model", filters.model, report.choices.models)}
        ${select("actor", "Actor", filters.actor, report.choices.actors)}
        ${select("by", "Split by", filters.by, GROUPINGS, "")} ${select("bucket", "Per", filters.bucket, ["hour", "day"], "")}
        <button type="submit" class="secondary">Show</button>
        <a href="${PATH}.csv${filterQuery(filters)}" download>CSV</a>
        <a href="${PATH}.json${filterQuery(filters)}">JSON</a>
      </form>
      <p class="muted">
        ${formatTime(report.since)} to ${formatTime(report.until)}, whole ${filters.bucket}s in UTC.
      </p>
      <ul class="totals" aria-label="Totals">
        <li><strong>${formatCost(totals.costNanocents)}</strong> cost</li>
        <li><strong>${formatCount(totals.responses)}</strong> requests</li>
        <li><strong>${formatCount(totals.errors)}</strong> errors</li>
        <li><strong>${formatCount(totals.inputTokens)}</strong> input tokens</li>
        <li><strong>${formatCount(totals.outputTokens)}</strong> output tokens</li>
        <li><strong>${formatCount(totals.cachedTokens)}</strong> cached tokens</li>
      </ul>
      <h2 id="cost-title">Cost (USD) per ${filters.bucket}, by ${filters.by}</h2>
      <div id="usage-cost-chart" class="chart" role="img" aria-labelledby="cost-title" aria-describedby="usage-table"></div>
      <h2 id="tokens-title">Tokens (input + output) per ${filters.bucket}, by ${filters.by}</h2>
      <div id="usage-tokens-chart" class="chart" role="img" aria-labelledby="tokens-title" aria-describedby="usage-table"></div>
      ${jsonScript("usage-data", chartData(report))}
      <table id="usage-table">
        <caption>By ${filters.by}${report.series.length > TOP_SERIES ? ` (top ${TOP_SERIES} and other)` : ""}</caption>
        <thead>
          <tr>
            <th scope="col">${filters.by}</th>
            ${TOTAL_HEADERS}
          </tr>
        </thead>
        <tbody>
          ${report.series.map((entry) => html`<tr><th scope="row">${entry.key}</th>${totalsCells(entry.totals)}</tr>`)}
          <tr><th scope="row">Total</th>${totalsCells(totals)}</tr>
        </tbody>
      </table>
      <table>
        <caption>Per ${filters.bucket} (UTC)</caption>
        <thead>
          <tr>
            <th scope="col">${filters.bucket === "day" ? "Day" : "Hour"}</th>
            ${TOTAL_HEADERS}
          </tr>
        </thead>
        <tbody>
          ${report.buckets.map(
            (bucket, position) =>
              html`<tr><th scope="row">${label(bucket)}</th>${totalsCells(report.bucketTotals[position] as Totals)}</tr>`,
          )}
        </tbody>
      </table>
    `,
  });
}

/** A spreadsheet must not run a cell as a formula (CWE-1236). */
function csvCell(value: string | number): string {
  let text = String(value);
  if (typeof value === "string" && /^[=+\-@\t\0]/.test(text)) text = `'${text}`;
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function usageCsv(report: UsageReport): string {
  const lines = [
    [
      "bucket_start_utc",
      report.filters.by,
      "requests",
      "errors",
      "input_tokens",
      "output_tokens",
      "cached_tokens",
      "cost_usd",
    ].join(","),
  ];
  for (const entry of report.series) {
    entry.perBucket.forEach((totals, position) => {
      if (totals.responses === 0) return;
      lines.push(
        [
          (report.buckets[position] as Date).toISOString(),
          entry.key,
          totals.responses,
          totals.errors,
          totals.inputTokens,
          totals.outputTokens,
          totals.cachedTokens,
          nanocentsToUsd(totals.costNanocents),
        ]
          .map(csvCell)
          .join(","),
      );
    });
  }
  return `${lines.join("\n")}\n`;
}

function reportJson(report: UsageReport) {
  const totals = (value: Totals) => ({
    ...value,
    costNanocents: value.costNanocents.toString(),
    costUsd: nanocentsToUsd(value.costNanocents),
  });
  return {
    filters: report.filters,
    since: report.since.toISOString(),
    until: report.until.toISOString(),
    buckets: report.buckets.map((bucket) => bucket.toISOString()),
    series: report.series.map((entry) => ({
      key: entry.key,
      totals: totals(entry.totals),
      perBucket: entry.perBucket.map(totals),
    })),
    totals: totals(report.totals),
  };
}

export function registerUsage(admin: Hono, deps: AdminDeps): void {
  const report = (c: Context) =>
    usageReport(
      deps,
      usageFilters((name) => c.req.query(name)),
    );
  admin.get("/-/usage.csv", guardPage(PATH), async (c) => {
    const csv = usageCsv(await report(c));
    return c.body(csv, 200, {
      "content-type": "text/csv; charset=utf-8",
      "content-disposition": 'attachment; filename="switchboard-usage.csv"',
    });
  });
  admin.get("/-/usage.json", guardPage(PATH), async (c) => c.json(reportJson(await report(c))));
  admin.get("/-/usage", guardPage(PATH), async (c) => page(c, usagePage(c.get("viewer"), await report(c))));
}
