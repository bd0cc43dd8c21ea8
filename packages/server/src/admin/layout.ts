/**
 * The page shell of the admin UI (menu, who is signed in, flash message) and the small formatting
 * helpers every page shares. Templates are hono `html` literals: every interpolated string is
 * escaped; `raw` is used only for our own markup, never for data.
 */
import { formatUsd, type PermissionAction } from "@switchboard/hub";
import { html, raw } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";
import { CSRF_FIELD, type Flash, type Viewer } from "./session.ts";
import { assetPath } from "./static.ts";

export type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

export interface AdminPage {
  path: string;
  label: string;
  description: string;
  /** Whether a viewer may open the page; the menu lists only those. */
  allowed: (can: (action: PermissionAction) => boolean) => boolean;
}

const anyManage = (can: (action: PermissionAction) => boolean) =>
  can("manage-purposes") || can("manage-secrets") || can("manage-tokens") || can("manage-budgets");

export const PAGES: readonly AdminPage[] = [
  {
    path: "/-/purposes",
    label: "Purposes",
    description: "Which model serves each purpose, and where every value comes from; edit overrides.",
    allowed: (can) => can("view-usage") || can("manage-purposes"),
  },
  {
    path: "/-/models",
    label: "Models",
    description: "Providers, capabilities, prices and where each key comes from.",
    allowed: (can) => can("view-usage") || can("manage-purposes"),
  },
  {
    path: "/-/usage",
    label: "Usage",
    description: "Cost and tokens over time by purpose, model or actor; CSV.",
    allowed: (can) => can("view-usage"),
  },
  {
    path: "/-/log",
    label: "Log",
    description: "Every response, newest first, with chains grouped.",
    allowed: (can) => can("view-usage"),
  },
  {
    path: "/-/limits",
    label: "Limits",
    description: "Spending limits and allowances: used, held, left, reset; top up.",
    allowed: (can) => can("view-usage") || can("manage-budgets"),
  },
  {
    path: "/-/playground",
    label: "Playground",
    description: "Run a prompt for a purpose as yourself and watch it stream.",
    allowed: (can) => can("use-playground"),
  },
  {
    path: "/-/tokens",
    label: "Tokens",
    description: "Gateway tokens: create, see last use, revoke.",
    allowed: (can) => can("manage-tokens"),
  },
  {
    path: "/-/secrets",
    label: "Secrets",
    description: "Set and rotate keys (write-only), versions and last use.",
    allowed: (can) => can("manage-secrets"),
  },
  {
    path: "/-/audit",
    label: "Audit",
    description: "Every change made here: who, when, before and after.",
    allowed: anyManage,
  },
];

export function pageFor(path: string): AdminPage | undefined {
  return PAGES.find((page) => page.path === path);
}

export interface PageOptions {
  title: string;
  viewer?: Viewer | undefined;
  /** The menu entry to mark current. */
  current?: string | undefined;
  flash?: Flash | undefined;
  body: Html;
  /** Extra scripts (paths under /-/static/). */
  scripts?: readonly string[];
  /** Extra stylesheets. */
  styles?: readonly string[];
}

export function layout(options: PageOptions): Html {
  const { viewer } = options;
  const menu = viewer ? PAGES.filter((page) => page.allowed(viewer.can)) : [];
  return html`<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>${options.title} · Switchboard</title>
    <link rel="stylesheet" href="${assetPath("admin.css")}" />
    ${(options.styles ?? []).map((style) => html`<link rel="stylesheet" href="${assetPath(style)}" />`)}
  </head>
  <body>
    <header class="top">
      <a class="brand" href="/-/">Switchboard</a>
      ${
        viewer
          ? html`<nav aria-label="Admin pages">
              <ul>
                ${menu.map(
                  (page) =>
                    html`<li><a href="${page.path}" ${page.path === options.current ? raw('aria-current="page"') : ""}>${page.label}</a></li>`,
                )}
              </ul>
            </nav>
            <form class="who" method="post" action="/-/logout">
              <span>Signed in as <strong>${viewer.actor}</strong></span>
              ${csrfInput(viewer)}
              <button type="submit" class="link">Sign out</button>
            </form>`
          : ""
      }
    </header>
    <main>
      <h1>${options.title}</h1>
      <div role="status" class="flash-region">
        ${options.flash ? html`<p class="flash ${options.flash.level}">${options.flash.text}</p>` : ""}
      </div>
      ${options.body}
    </main>
    <script src="${assetPath("admin.js")}" defer></script>
    ${(options.scripts ?? []).map((script) => html`<script src="${assetPath(script)}" defer></script>`)}
  </body>
</html>`;
}

export function csrfInput(viewer: Viewer): Html {
  return html`<input type="hidden" name="${CSRF_FIELD}" value="${viewer.csrf}" />`;
}

/** `2026-12-02 14:22:08 UTC`: every time in the UI is UTC, and says so. */
export function formatTime(date: Date | undefined): string {
  if (!date) return "—";
  return `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

export function formatCost(nanocents: bigint | undefined): string {
  return nanocents === undefined ? "—" : formatUsd(nanocents);
}

/** One formatter for every count: building one per call is what makes `toLocaleString` slow. */
const COUNT_FORMAT = new Intl.NumberFormat("en-US");

export function formatCount(value: number | undefined): string {
  return value === undefined ? "—" : COUNT_FORMAT.format(value);
}

/** A query string from the set values only. */
export function query(params: Record<string, string | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value) search.set(key, value);
  const text = search.toString();
  return text ? `?${text}` : "";
}

export function sourceBadge(source: string): Html {
  return html`<span class="source source-${source}">${source}</span>`;
}

/** A JSON blob for a page script: `<` escaped so no data can close the script element. */
export function jsonScript(id: string, data: unknown): Html {
  const text = JSON.stringify(data).replace(/</g, "\\u003c");
  return html`<script type="application/json" id="${id}">${raw(text)}</script>`;
}
