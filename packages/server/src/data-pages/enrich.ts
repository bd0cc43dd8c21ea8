/**
 * Enrichment pages: the form that starts a job (`/-/enrich/<db>/<table>`), the job list and one
 * job's live progress with pause / resume / cancel (`/-/enrich/<db>/-/jobs[/<id>]`, `.json` twins).
 */
import { SwitchboardError } from "@switchboard/core";
import { type EnrichmentJob, type EnrichmentSpec, Enrichments, isInterrupted } from "@switchboard/data";
import type { Actor, ModelListing } from "@switchboard/hub";
import type { Context, Hono } from "hono";
import { html } from "hono/html";
import { tableColumns } from "./browse.ts";
import {
  type DataPagesContext,
  dbHref,
  enrichHref,
  FormFields,
  failureFlash,
  jobHref,
  jobsHref,
  PageError,
  type ServedDatabase,
  tableHref,
} from "./context.ts";
import {
  csrfField,
  type Flash,
  type Html,
  PREVIEW_SCRIPT,
  PROGRESS_SCRIPT,
  page,
  splitJsonSuffix,
  tildeDecode,
} from "./html.ts";

const NANOCENTS_PER_USD = 1e11;
/** Statuses after which the job changes only when someone resumes it. */
const COMPLETE = new Set(["finished", "cancelled", "failed", "budget", "limited"]);

function usd(nanocents: bigint): string {
  return `$${(Number(nanocents) / NANOCENTS_PER_USD).toFixed(6)}`;
}

function withEnrichments<T>(ctx: DataPagesContext, database: ServedDatabase, body: (e: Enrichments) => T): T {
  const enrichments = new Enrichments({ hub: ctx.hub, database: database.path, can: ctx.can });
  try {
    const result = body(enrichments);
    if (result instanceof Promise) {
      return result.finally(() => enrichments.close()) as T;
    }
    enrichments.close();
    return result;
  } catch (error) {
    enrichments.close();
    throw error;
  }
}

/** What the job page's progress bar and `.json` twin show. */
export function jobSummary(job: EnrichmentJob, database: string) {
  const handled = job.doneCount + job.errorCount;
  const total = job.rowCount;
  const percent =
    job.status === "finished" || total === 0 ? 100 : Math.min(100, Math.floor((100 * handled) / total));
  const interrupted = isInterrupted(job);
  const status = interrupted ? "interrupted" : job.status;
  return {
    ok: true,
    id: job.id,
    title: `Enrich ${job.table}.${job.outputColumn}`,
    url: jobHref(database, job.id),
    status,
    message: job.message ?? null,
    table: job.table,
    output_column: job.outputColumn,
    model: job.model,
    total,
    done: job.doneCount,
    errors: job.errorCount,
    percent,
    cost_usd: Number(job.costNanocents) / NANOCENTS_PER_USD,
    is_complete: COMPLETE.has(job.status) || interrupted,
    sections: [
      { type: "success", count: job.doneCount },
      { type: "error", count: job.errorCount },
    ],
    summary: `${percent} % · ${job.doneCount} of ${total} rows written · ${job.errorCount} error${job.errorCount === 1 ? "" : "s"} · ${usd(job.costNanocents)}`,
    created_at: job.createdAt,
    finished_at: job.finishedAt ?? null,
  };
}

interface FormValues {
  prompt: string;
  system: string;
  output: string;
  where: string;
  model: string;
  concurrency: string;
  maxErrors: string;
  overwrite: boolean;
}

function parseNumber(text: string, name: string): number | undefined {
  if (!text.trim()) return undefined;
  const value = Number(text);
  if (!Number.isFinite(value))
    throw new SwitchboardError("INVALID_INPUT", `${name} must be a number (got "${text}").`);
  return value;
}

export function enrichRoutes(app: Hono, ctx: DataPagesContext): void {
  const renderForm = async (
    c: Context,
    database: ServedDatabase,
    table: string,
    values: FormValues,
    flash: Flash | undefined,
    status: 200 | 400 | 403 | 404 | 500 = 200,
  ) => {
    const actor = await ctx.actor(c);
    const token = await ctx.csrf.token(c);
    const { models, preview, previewError, columns } = await withEnrichments(ctx, database, async (e) => {
      const models: ModelListing[] = await e.models(actor).catch(() => []);
      let preview: { prompt: string; system: string | undefined } | undefined;
      let previewError: string | undefined;
      try {
        preview = e.preview({
          table,
          prompt: values.prompt,
          system: values.system || undefined,
          where: values.where || undefined,
          outputColumn: values.output,
          overwrite: values.overwrite,
        });
      } catch (error) {
        previewError = failureFlash(error).flash.text;
      }
      return { models, preview, previewError, columns: tableColumns(database.path, table) };
    });
    const previewText =
      previewError ??
      (preview
        ? `${preview.system ? `System: ${preview.system}\n\n` : ""}${preview.prompt}`
        : "(no row matches)");
    const canEnrich = await ctx.allowed("enrich", actor);
    return c.html(
      page({
        title: `Enrich ${table}`,
        crumbs: [
          { label: database.name, href: dbHref(database.name) },
          { label: table, href: tableHref(database.name, table) },
          { label: "Enrich", href: enrichHref(database.name, table) },
        ],
        flash,
        body: html`
${canEnrich ? "" : html`<p class="flash error">You may not start enrichments here (the <code>enrich</code> permission).</p>`}
<form id="enrich-form" method="post" action="${enrichHref(database.name, table)}" data-preview-url="${enrichHref(database.name, table)}/-/preview">
${csrfField(token)}
<label for="prompt">Prompt template</label>
<textarea id="prompt" name="prompt" aria-describedby="prompt-hint">${values.prompt}</textarea>
<p class="hint" id="prompt-hint">Columns: ${columns.map((column, index) => html`${index ? ", " : ""}<code>{{ ${column} }}</code>`)}</p>
<label for="system">System prompt</label>
<textarea id="system" name="system">${values.system}</textarea>
<label for="output">Output column</label>
<input type="text" id="output" name="output" value="${values.output}">
<label for="where">Rows (an SQL condition, optional)</label>
<input type="text" id="where" name="where" value="${values.where}" placeholder="published < 1850">
<label for="model">Model</label>
<select id="model" name="model">
${models.map(
  (model) =>
    html`<option value="${model.id}"${model.id === values.model ? html` selected` : ""}>${model.id}${model.hasKey ? "" : " (no key)"}</option>`,
)}
</select>
<label for="concurrency">Rows at once</label>
<input type="text" id="concurrency" name="concurrency" value="${values.concurrency}" inputmode="numeric">
<label for="max_errors">Stop after this many row errors (0: never)</label>
<input type="text" id="max_errors" name="max_errors" value="${values.maxErrors}" inputmode="numeric">
<label><input type="checkbox" name="overwrite" value="1"${values.overwrite ? html` checked` : ""}> Replace outputs rows already have</label>
<h2>Preview: the first row's prompt</h2>
<pre id="preview" aria-live="polite">${previewText}</pre>
<p><button type="submit">Start enrichment</button></p>
</form>
${PREVIEW_SCRIPT}`,
      }),
      status,
    );
  };

  const tableOf = (c: Context) => {
    const database = ctx.database(c.req.param("db") ?? "");
    return { database, table: tildeDecode(c.req.param("table") ?? "") };
  };

  const formValues = (form: FormFields): FormValues => ({
    prompt: form.text("prompt"),
    system: form.text("system"),
    output: form.text("output"),
    where: form.text("where"),
    model: form.text("model"),
    concurrency: form.text("concurrency"),
    maxErrors: form.text("max_errors"),
    overwrite: form.text("overwrite") === "1",
  });

  // Registered before `/:table` so "-" is never read as a table name.
  app.get("/-/enrich/:db/-/jobs", (c) => jobsPage(c, false));
  app.get("/-/enrich/:db/-/jobs.json", (c) => jobsPage(c, true));

  const jobsPage = async (c: Context, json: boolean) => {
    try {
      const database = ctx.database(c.req.param("db") ?? "");
      const jobs = withEnrichments(ctx, database, (e) => e.jobs());
      if (json)
        return c.json({
          ok: true,
          database: database.name,
          jobs: jobs.map((job) => jobSummary(job, database.name)),
        });
      return c.html(
        page({
          title: "Enrichment jobs",
          crumbs: [
            { label: database.name, href: dbHref(database.name) },
            { label: "Enrichment jobs", href: jobsHref(database.name) },
          ],
          body: html`
<p><a href="${jobsHref(database.name)}.json">JSON</a></p>
${
  jobs.length === 0
    ? html`<p>No enrichment job has run on this database yet. Open a table and choose "Enrich this table".</p>`
    : html`<table>
<caption>Jobs, newest first</caption>
<thead><tr><th scope="col">Job</th><th scope="col">Table</th><th scope="col">Output column</th><th scope="col">Status</th><th scope="col">Progress</th><th scope="col">Model</th><th scope="col">Created (UTC)</th></tr></thead>
<tbody>${jobs.map((job) => {
        const summary = jobSummary(job, database.name);
        return html`<tr><td><a href="${summary.url}">${job.id}</a></td><td><a href="${tableHref(database.name, job.table)}">${job.table}</a></td><td>${job.outputColumn}</td><td>${summary.status}</td><td>${summary.summary}</td><td>${job.model}</td><td>${job.createdAt}</td></tr>`;
      })}</tbody></table>`
}`,
        }),
      );
    } catch (error) {
      return ctx.fail(c, error, json);
    }
  };

  app.get("/-/enrich/:db/-/jobs/:id", async (c) => {
    const { name: idText, json } = splitJsonSuffix(c.req.param("id"));
    try {
      const database = ctx.database(c.req.param("db"));
      const id = Number(idText);
      const { job, errors, progress } = withEnrichments(ctx, database, (e) => {
        const job = Number.isInteger(id) ? e.job(id) : undefined;
        if (!job) throw new PageError(404, `No enrichment job ${idText} in ${database.name}.`);
        return { job, errors: e.errors(id, { limit: 100 }), progress: e.progress(id) };
      });
      const summary = jobSummary(job, database.name);
      if (json) {
        return c.json({
          ...summary,
          error_rows: errors.map((error) => ({ key: error.rowKey, error: error.error, at: error.createdAt })),
        });
      }
      const actor = await ctx.actor(c);
      const canEnrich = await ctx.allowed("enrich", actor);
      const token = await ctx.csrf.token(c);
      const action = (verb: "pause" | "resume" | "cancel", label: string) =>
        html`<form method="post" action="${summary.url}/${verb}">${csrfField(token)}<button type="submit">${label} job ${job.id}</button></form>`;
      const running = job.status === "running" && !summary.is_complete;
      const actions: Html[] = [];
      if (canEnrich) {
        if (running || job.status === "pending") actions.push(action("pause", "Pause"));
        if (
          ["paused", "failed", "budget", "limited", "pending"].includes(job.status) ||
          summary.status === "interrupted"
        )
          actions.push(action("resume", "Resume"));
        if (job.status !== "finished" && job.status !== "cancelled") actions.push(action("cancel", "Cancel"));
      }
      return c.html(
        page({
          title: `Enrichment job ${job.id}`,
          crumbs: [
            { label: database.name, href: dbHref(database.name) },
            { label: "Enrichment jobs", href: jobsHref(database.name) },
            { label: `Job ${job.id}`, href: summary.url },
          ],
          flash: flashFromQuery(c),
          body: html`
<p>Status: <strong id="job-status">${summary.status}</strong> <span id="job-message">${job.message ?? ""}</span></p>
<div id="progress" class="progress" role="progressbar" aria-label="Rows enriched" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${summary.percent}"
  data-api-url="${summary.url}.json" data-reload-when-done="1" data-started-incomplete="${summary.is_complete ? "0" : "1"}">
  <div class="success" style="width:${job.rowCount ? (100 * job.doneCount) / job.rowCount : 0}%"></div>
  <div class="error" style="width:${job.rowCount ? (100 * job.errorCount) / job.rowCount : 0}%"></div>
</div>
<p id="progress-text" aria-live="polite">${summary.summary}</p>
<div class="actions">${actions}</div>
<table>
<caption>Job</caption>
<tbody>
<tr><th scope="row">Table</th><td><a href="${tableHref(database.name, job.table)}">${job.table}</a></td></tr>
<tr><th scope="row">Output column</th><td>${job.outputColumn}</td></tr>
<tr><th scope="row">Model</th><td>${job.model} (purpose ${job.purpose})</td></tr>
<tr><th scope="row">Prompt</th><td><pre>${job.prompt}</pre></td></tr>
${job.system ? html`<tr><th scope="row">System prompt</th><td><pre>${job.system}</pre></td></tr>` : ""}
${job.where ? html`<tr><th scope="row">Rows</th><td><code>${job.where}</code></td></tr>` : ""}
<tr><th scope="row">Created (UTC)</th><td>${job.createdAt} by ${job.createdBy ?? "anonymous"}</td></tr>
</tbody>
</table>
<h2>Row errors</h2>
${
  errors.length === 0
    ? html`<p>None.</p>`
    : html`<table><caption>Rows that failed (first 100)</caption><thead><tr><th scope="col">Row key</th><th scope="col">Error</th></tr></thead>
<tbody>${errors.map((error) => html`<tr><td><code>${JSON.stringify(error.rowKey)}</code></td><td>${error.error}</td></tr>`)}</tbody></table>`
}
<h2>History</h2>
<ul>${progress
            .filter((record) => record.message)
            .map((record) => html`<li>${record.createdAt} UTC: ${record.message}</li>`)}</ul>
${PROGRESS_SCRIPT}`,
        }),
      );
    } catch (error) {
      return ctx.fail(c, error, json);
    }
  });

  for (const verb of ["pause", "resume", "cancel"] as const) {
    app.post(`/-/enrich/:db/-/jobs/:id/${verb}`, async (c) => {
      try {
        const database = ctx.database(c.req.param("db"));
        const id = Number(c.req.param("id"));
        const form = await FormFields.of(c);
        const actor = await ctx.authorizePost(c, form, "enrich");
        await withEnrichments(ctx, database, async (e) => {
          if (!Number.isInteger(id) || !e.job(id))
            throw new PageError(404, `No enrichment job ${id} in ${database.name}.`);
          if (verb === "pause") await e.pause(id, actor);
          else if (verb === "cancel") await e.cancel(id, actor);
          else await e.resume(id, actor);
        });
        return c.redirect(`${jobHref(database.name, id)}?done=${verb}`, 303);
      } catch (error) {
        return ctx.fail(c, error, false);
      }
    });
  }

  app.get("/-/enrich/:db/:table/-/preview", async (c) => {
    try {
      const { database, table } = tableOf(c);
      const preview = withEnrichments(ctx, database, (e) =>
        e.preview({
          table,
          prompt: c.req.query("prompt") ?? "",
          system: c.req.query("system") || undefined,
          where: c.req.query("where") || undefined,
          outputColumn: c.req.query("output") ?? "",
        }),
      );
      return c.json({ ok: true, preview: preview ?? null });
    } catch (error) {
      return ctx.fail(c, error, true);
    }
  });

  app.get("/-/enrich/:db/:table", async (c) => {
    try {
      const { database, table } = tableOf(c);
      const columns = tableColumns(database.path, table);
      const first = columns[0] ?? "";
      return await renderForm(
        c,
        database,
        table,
        {
          prompt: c.req.query("prompt") ?? `{{ ${first} }}`,
          system: c.req.query("system") ?? "",
          output: c.req.query("output") ?? "enrichment",
          where: c.req.query("where") ?? "",
          model: c.req.query("model") ?? "",
          concurrency: "8",
          maxErrors: "5",
          overwrite: false,
        },
        undefined,
      );
    } catch (error) {
      return ctx.fail(c, error, false);
    }
  });

  app.post("/-/enrich/:db/:table", async (c) => {
    let database: ServedDatabase;
    let table: string;
    let form: FormFields;
    let actor: Actor | undefined;
    try {
      ({ database, table } = tableOf(c));
      form = await FormFields.of(c);
      actor = await ctx.authorizePost(c, form, "enrich");
    } catch (error) {
      return ctx.fail(c, error, false);
    }
    const values = formValues(form);
    try {
      const spec: EnrichmentSpec = {
        table,
        prompt: values.prompt,
        outputColumn: values.output,
        ...(values.system.trim() ? { system: values.system } : {}),
        ...(values.where.trim() ? { where: values.where } : {}),
        ...(values.model ? { model: values.model } : {}),
        concurrency: parseNumber(values.concurrency, "Rows at once"),
        maxErrors: parseNumber(values.maxErrors, "Row errors"),
        overwrite: values.overwrite,
      };
      const run = await withEnrichments(ctx, database, (e) => e.enrich(spec, actor));
      return c.redirect(jobHref(database.name, run.jobId), 303);
    } catch (error) {
      const { flash, status } = failureFlash(error);
      return renderForm(c, database, table, values, flash, status === 403 ? 403 : status >= 500 ? 500 : 400);
    }
  });
}

const DONE_MESSAGES: Record<string, string> = {
  pause: "The job is pausing: rows already sent are written first.",
  resume: "The job was resumed.",
  cancel: "The job was cancelled.",
};

/** The message after a pause/resume/cancel redirect (only known texts: a URL cannot put words on the page). */
function flashFromQuery(c: Context): Flash | undefined {
  const text = DONE_MESSAGES[c.req.query("done") ?? ""];
  return text ? { level: "info", text } : undefined;
}
