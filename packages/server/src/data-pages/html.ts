/**
 * Rendering helpers of the data pages: the page layout, Datasette's tilde encoding of names in
 * URLs, and the small scripts the pages carry (a progress poller, a live prompt preview).
 */
import { html, raw } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";

export type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

const SAFE = /^[A-Za-z0-9_-]$/;

/**
 * Tilde encoding (Datasette's): percent-encoding with `~` instead of `%`, space as `+`, so a table
 * named `a.json` or `x/y` survives in a path and cannot be confused with the `.json` twin.
 */
export function tildeEncode(text: string): string {
  let out = "";
  for (const char of text) {
    if (SAFE.test(char)) out += char;
    else if (char === " ") out += "+";
    else
      for (const byte of Buffer.from(char, "utf8"))
        out += `~${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

export function tildeDecode(text: string): string {
  const bytes: number[] = [];
  for (let index = 0; index < text.length; index++) {
    const char = text[index] as string;
    const hex = text.slice(index + 1, index + 3);
    if (char === "~" && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(Number.parseInt(hex, 16));
      index += 2;
    } else if (char === "+") bytes.push(0x20);
    else bytes.push(...Buffer.from(char, "utf8"));
  }
  return Buffer.from(bytes).toString("utf8");
}

/** A path segment and whether it asked for the `.json` twin (`books.json` → `books`, true). */
export function splitJsonSuffix(segment: string): { name: string; json: boolean } {
  return segment.endsWith(".json")
    ? { name: segment.slice(0, -".json".length), json: true }
    : { name: segment, json: false };
}

/** JSON for a `<script type="application/json">`: `<` escaped so the data cannot end the element. */
export function scriptJson(value: unknown): HtmlEscapedString {
  return raw(JSON.stringify(value).replaceAll("<", "\\u003c")) as HtmlEscapedString;
}

export interface Flash {
  level: "info" | "error";
  text: string;
}

const STYLE = `
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1f2328}
header{background:#24292f;color:#fff;padding:.6rem 1rem}header a{color:#fff}
nav ol{list-style:none;display:flex;gap:.4rem;margin:0;padding:0}nav li+li::before{content:"/";margin-right:.4rem;color:#8c959f}
main{padding:1rem;max-width:75rem}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}caption{text-align:left;font-weight:600;padding:.25rem 0}
td.enriched,th.enriched{background:#fff8c5}
label{display:block;font-weight:600;margin-top:.75rem}
textarea,input[type=text],select{width:100%;max-width:48rem;box-sizing:border-box;font:inherit}
textarea{min-height:5rem}
pre{background:#f6f8fa;padding:.5rem;white-space:pre-wrap;max-width:60rem}
.flash{padding:.5rem;margin:.5rem 0;border-radius:4px}.flash.info{background:#ddf4ff}.flash.error{background:#ffebe9}
.actions{display:flex;gap:.5rem;flex-wrap:wrap}.actions form{margin:0}
.progress{width:100%;max-width:40rem;height:1.25rem;background:#eaeef2;border-radius:4px;overflow:hidden;display:flex}
.progress .success{background:#2da44e}.progress .error{background:#cf222e}
.hint{color:#57606a;font-size:.9em}
`;

export interface PageOptions {
  title: string;
  /** Breadcrumbs: label and link, the last one the current page. */
  crumbs?: readonly { label: string; href: string }[];
  flash?: Flash | undefined;
  body: Html;
}

export function page(options: PageOptions): Html {
  const crumbs = options.crumbs ?? [];
  return html`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${options.title} · Switchboard</title><style>${raw(STYLE)}</style></head>
<body>
<header><nav aria-label="Breadcrumbs"><ol>
<li><a href="/">Switchboard</a></li>
${crumbs.map(
  (crumb, index) =>
    html`<li><a href="${crumb.href}"${index === crumbs.length - 1 ? raw(' aria-current="page"') : ""}>${crumb.label}</a></li>`,
)}
</ol></nav></header>
<main>
<h1>${options.title}</h1>
<div role="status">${options.flash ? html`<p class="flash ${options.flash.level}">${options.flash.text}</p>` : ""}</div>
${options.body}
</main>
</body>
</html>`;
}

/** A cell's text: NULL shown as empty, blobs described rather than dumped. */
export function cellText(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return `<${value.length} bytes>`;
  return String(value);
}

/** A hidden CSRF field for every form. */
export function csrfField(token: string): Html {
  return html`<input type="hidden" name="csrf" value="${token}">`;
}

/**
 * Polls a `.json` twin every second (every 5 s while the job is not running) and draws the bar;
 * stops once the answer says `is_complete` or the server answers with an error.
 */
export const PROGRESS_SCRIPT = raw(`<script>
(() => {
  const el = document.getElementById("progress");
  if (!el) return;
  const url = el.dataset.apiUrl;
  const draw = (data) => {
    const total = Math.max(data.total, 1);
    const ok = data.sections.find((s) => s.type === "success")?.count ?? 0;
    const bad = data.sections.find((s) => s.type === "error")?.count ?? 0;
    const percent = data.percent;
    el.querySelector(".success").style.width = (100 * ok / total) + "%";
    el.querySelector(".error").style.width = (100 * bad / total) + "%";
    el.setAttribute("aria-valuenow", String(percent));
    document.getElementById("progress-text").textContent = data.summary;
    const status = document.getElementById("job-status");
    if (status) status.textContent = data.status;
    const message = document.getElementById("job-message");
    if (message) message.textContent = data.message ?? "";
  };
  const tick = async () => {
    let data;
    try {
      const response = await fetch(url, { headers: { accept: "application/json" } });
      if (!response.ok) return;
      data = await response.json();
    } catch { return; }
    draw(data);
    if (data.is_complete) {
      if (el.dataset.reloadWhenDone === "1" && el.dataset.startedIncomplete === "1") location.reload();
      return;
    }
    setTimeout(tick, data.status === "running" ? 1000 : 5000);
  };
  tick();
})();
</script>`);

/** Fills the enrichment form's preview from the first row as the template is typed. */
export const PREVIEW_SCRIPT = raw(`<script>
(() => {
  const form = document.getElementById("enrich-form");
  const out = document.getElementById("preview");
  if (!form || !out) return;
  let timer;
  const refresh = async () => {
    const params = new URLSearchParams();
    for (const name of ["prompt", "system", "where", "output"]) params.set(name, form.elements[name]?.value ?? "");
    try {
      const response = await fetch(form.dataset.previewUrl + "?" + params, { headers: { accept: "application/json" } });
      const data = await response.json();
      out.textContent = data.ok ? (data.preview ? (data.preview.system ? "System: " + data.preview.system + "\\n\\n" : "") + data.preview.prompt : "(no row matches)") : data.error;
    } catch {}
  };
  form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(refresh, 250); });
})();
</script>`);
