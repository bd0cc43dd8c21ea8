/**
 * Models: every registered model with its provider, capabilities, price per million tokens (and
 * where the price comes from), key status and the source of the key — never a key value — and the
 * purposes that allow it.
 */
import { DEFAULT_PRICES, type KeySource, PRICES_AS_OF, type Price } from "@switchboard/hub";
import type { Hono } from "hono";
import { html } from "hono/html";
import { type AdminDeps, guardPage, page } from "../guard.ts";
import { type Html, layout } from "../layout.ts";
import type { Viewer } from "../session.ts";
import { describeKey } from "./purposes.ts";

const PATH = "/-/models";
const CAPABILITIES = ["streaming", "tools", "schema", "attachments"] as const;

export interface ModelRow {
  id: string;
  aliases: readonly string[];
  provider: string | undefined;
  capabilities: { streaming: boolean; tools: boolean; schema: boolean; attachmentTypes: readonly string[] };
  price: Price | undefined;
  /** `config` (accounting.pricing), `table` (the shipped table), or the decision for unpriced models. */
  priceSource: "config" | "table" | "free" | "refused" | "undecided";
  key: KeySource;
  purposes: string[];
}

export interface ModelFilters {
  provider: string;
  capability: string;
  purpose: string;
}

async function modelRows({ hub }: AdminDeps): Promise<ModelRow[]> {
  const details = await hub.purposeDetails();
  const configured = hub.config.accounting?.pricing ?? {};
  const unpriced = hub.config.accounting?.unpriced;
  return Promise.all(
    hub.registeredModels().map(async (model): Promise<ModelRow> => {
      const price = hub.prices.priceOf(model.id);
      return {
        id: model.id,
        aliases: model.aliases,
        provider: model.provider,
        capabilities: model.capabilities,
        price,
        priceSource: price
          ? model.id in configured
            ? "config"
            : model.id in DEFAULT_PRICES
              ? "table"
              : "config"
          : unpriced === "free"
            ? "free"
            : unpriced === "refuse"
              ? "refused"
              : "undecided",
        key: await hub.keySource(model.id),
        purposes: details
          .filter((detail) => detail.models.some((allowed) => allowed.id === model.id))
          .map((detail) => detail.name),
      };
    }),
  );
}

function matches(row: ModelRow, filters: ModelFilters): boolean {
  if (filters.provider && row.provider !== filters.provider) return false;
  if (filters.purpose && !row.purposes.includes(filters.purpose)) return false;
  const capability = filters.capability;
  if (capability === "attachments") return row.capabilities.attachmentTypes.length > 0;
  if (capability === "streaming" || capability === "tools" || capability === "schema") {
    return row.capabilities[capability];
  }
  return true;
}

function usd(value: number | undefined): string {
  return value === undefined ? "—" : `$${value.toLocaleString("en-US", { maximumFractionDigits: 4 })}`;
}

function priceCells(row: ModelRow): Html {
  if (!row.price) {
    const text = {
      free: "no price: free (accounting.unpriced)",
      refused: "no price: refused while budgets apply",
      undecided: "no price: refused by budgets until priced",
    }[row.priceSource as "free" | "refused" | "undecided"];
    return html`<td class="num" colspan="3"><span class="muted">${text}</span></td>`;
  }
  return html`<td class="num">${usd(row.price.input)}</td>
    <td class="num">${usd(row.price.output)}</td>
    <td class="num">${usd(row.price.cachedInput)}</td>`;
}

function select(name: string, label: string, value: string, options: readonly string[]): Html {
  return html`<label for="${name}"
    >${label}
    <select id="${name}" name="${name}">
      <option value="">any</option>
      ${options.map((option) => html`<option value="${option}" ${option === value ? "selected" : ""}>${option}</option>`)}
    </select></label
  >`;
}

function modelsPage(viewer: Viewer, rows: ModelRow[], filters: ModelFilters, purposes: string[]): Html {
  const shown = rows.filter((row) => matches(row, filters));
  const providers = [...new Set(rows.map((row) => row.provider ?? "").filter(Boolean))].sort();
  return layout({
    title: "Models",
    viewer,
    current: PATH,
    body: html`
      <form class="filters" method="get" action="${PATH}">
        ${select("provider", "Provider", filters.provider, providers)}
        ${select("capability", "Capability", filters.capability, CAPABILITIES)}
        ${select("purpose", "Allowed for purpose", filters.purpose, purposes)}
        <button type="submit" class="secondary">Filter</button>
        <a href="${PATH}.json">JSON</a>
      </form>
      <table>
        <caption>
          ${shown.length} of ${rows.length} models. Prices in USD per million tokens (shipped table of
          ${PRICES_AS_OF}, overridden by <code>accounting.pricing</code>). Keys show where they come from, never a
          value.
        </caption>
        <thead>
          <tr>
            <th scope="col">Model</th>
            <th scope="col">Provider</th>
            <th scope="col">Capabilities</th>
            <th scope="col" class="num">Input</th>
            <th scope="col" class="num">Output</th>
            <th scope="col" class="num">Cached input</th>
            <th scope="col">Key</th>
            <th scope="col">Purposes</th>
          </tr>
        </thead>
        <tbody>
          ${shown.map(
            (row) => html`<tr>
              <td>
                <code>${row.id}</code>
                ${row.aliases.length ? html`<br /><span class="muted">aliases: ${row.aliases.join(", ")}</span>` : ""}
              </td>
              <td>${row.provider ?? "—"}</td>
              <td>
                ${
                  [
                    row.capabilities.streaming ? "streaming" : "",
                    row.capabilities.tools ? "tools" : "",
                    row.capabilities.schema ? "schema" : "",
                    row.capabilities.attachmentTypes.length
                      ? `attachments (${row.capabilities.attachmentTypes.join(", ")})`
                      : "",
                  ]
                    .filter(Boolean)
                    .join(", ") || html`<span class="muted">text only</span>`
                }
              </td>
              ${priceCells(row)}
              <td>${describeKey(row.key)}</td>
              <td>
                ${row.purposes.length ? row.purposes.join(", ") : html`<span class="muted">none</span>`}
              </td>
            </tr>`,
          )}
        </tbody>
      </table>
    `,
  });
}

function filtersOf(get: (name: string) => string | undefined): ModelFilters {
  return {
    provider: get("provider") ?? "",
    capability: get("capability") ?? "",
    purpose: get("purpose") ?? "",
  };
}

export function registerModels(admin: Hono, deps: AdminDeps): void {
  admin.get("/-/models.json", guardPage(PATH), async (c) => {
    const filters = filtersOf((name) => c.req.query(name));
    return c.json({ models: (await modelRows(deps)).filter((row) => matches(row, filters)) });
  });
  admin.get("/-/models", guardPage(PATH), async (c) => {
    const rows = await modelRows(deps);
    const purposes = (await deps.hub.purposes()).map((purpose) => purpose.name);
    return page(
      c,
      modelsPage(
        c.get("viewer"),
        rows,
        filtersOf((name) => c.req.query(name)),
        purposes,
      ),
    );
  });
}
