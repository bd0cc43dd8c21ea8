/**
 * Extraction pages: paste text or upload an image, name the columns (prefilled from an existing
 * table), and watch the run record fill as rows stream in (`/<db>/-/extract`,
 * `/<db>/<table>/-/extract`, `/<db>/-/extract/<run>` with a `.json` twin). The run lives in the
 * database, so its page still answers after a restart.
 */
import { randomBytes } from "node:crypto";
import { SwitchboardError } from "@switchboard/core";
import { type ExtractField, Extraction, type ExtractionRun, parseField } from "@switchboard/data";
import type { Actor, ModelListing } from "@switchboard/hub";
import type { Context, Hono } from "hono";
import { html, raw } from "hono/html";
import {
  type DataPagesContext,
  dbHref,
  extractHref,
  extractRunHref,
  FormFields,
  failureFlash,
  PageError,
  type ServedDatabase,
  tableHref,
} from "./context.ts";
import { csrfField, type Flash, page, splitJsonSuffix, tildeDecode } from "./html.ts";

const IMAGE_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);
/** How long a POST waits for the run record before answering (the model is chosen first). */
const RECORD_WAIT_MS = 10_000;

const RUN_SCRIPT = raw(`<script>
(() => {
  const el = document.getElementById("run");
  if (!el || el.dataset.status !== "running") return;
  const tick = async () => {
    try {
      const response = await fetch(el.dataset.apiUrl, { headers: { accept: "application/json" } });
      if (!response.ok) return;
      const data = await response.json();
      document.getElementById("run-status").textContent = data.status;
      document.getElementById("run-items").textContent = String(data.item_count);
      if (data.done) { location.reload(); return; }
    } catch { return; }
    setTimeout(tick, 1000);
  };
  setTimeout(tick, 1000);
})();
</script>`);

function runJson(run: ExtractionRun, database: string) {
  return {
    ok: true,
    id: run.id,
    url: extractRunHref(database, run.id),
    table: run.table,
    table_url: tableHref(database, run.table),
    status: run.status,
    done: run.status !== "running",
    model: run.model,
    instructions: run.instructions ?? null,
    fields: run.fields,
    source: run.source ?? null,
    item_count: run.itemCount,
    error: run.error ?? null,
    created_at: run.createdAt,
    finished_at: run.finishedAt ?? null,
  };
}

function fieldsText(fields: readonly ExtractField[]): string {
  return fields
    .map((field) => `${field.name}:${field.type}${field.description ? `:${field.description}` : ""}`)
    .join("\n");
}

function parseFields(text: string): ExtractField[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter(Boolean)
    .map(parseField);
}

interface ExtractValues {
  table: string;
  fields: string;
  instructions: string;
  text: string;
  model: string;
}

export function extractRoutes(app: Hono, ctx: DataPagesContext): void {
  const withExtraction = <T>(database: ServedDatabase, body: (e: Extraction) => T): T => {
    const extraction = new Extraction({ hub: ctx.hub, database: database.path, can: ctx.can });
    try {
      return body(extraction);
    } finally {
      extraction.close();
    }
  };

  const renderForm = async (
    c: Context,
    database: ServedDatabase,
    fixedTable: string | undefined,
    values: ExtractValues,
    flash: Flash | undefined,
    status: 200 | 400 | 403 | 404 | 500 = 200,
  ) => {
    const actor = await ctx.actor(c);
    const token = await ctx.csrf.token(c);
    const extraction = new Extraction({ hub: ctx.hub, database: database.path, can: ctx.can });
    let models: ModelListing[];
    let recent: ExtractionRun[];
    try {
      models = await extraction.models(actor).catch(() => []);
      recent = extraction.runs({ ...(fixedTable ? { table: fixedTable } : {}), limit: 10 });
    } finally {
      extraction.close();
    }
    const canExtract = await ctx.allowed("extract", actor);
    const action = extractHref(database.name, fixedTable);
    return c.html(
      page({
        title: fixedTable ? `Extract data into ${fixedTable}` : "Extract data into a table",
        crumbs: [
          { label: database.name, href: dbHref(database.name) },
          ...(fixedTable ? [{ label: fixedTable, href: tableHref(database.name, fixedTable) }] : []),
          { label: "Extract", href: action },
        ],
        flash,
        body: html`
${canExtract ? "" : html`<p class="flash error">You may not extract data here (the <code>extract</code> permission).</p>`}
${models.length === 0 ? html`<p class="flash error">No model allowed for the <code>extract</code> purpose can follow a JSON schema: configure one in switchboard.yaml.</p>` : ""}
<form method="post" action="${action}" enctype="multipart/form-data">
${csrfField(token)}
<label for="table">Table</label>
<input type="text" id="table" name="table" value="${values.table}"${fixedTable ? html` readonly` : ""}>
<label for="fields">Columns, one a line: <code>name:type</code> or <code>name:type:hint</code> (string, integer, number, boolean)</label>
<textarea id="fields" name="fields">${values.fields}</textarea>
<label for="instructions">Instructions (optional)</label>
<textarea id="instructions" name="instructions">${values.instructions}</textarea>
<label for="text">Text to extract from</label>
<textarea id="text" name="text" rows="10">${values.text}</textarea>
<label for="image">Or an image (PNG, JPEG, GIF, WebP)</label>
<input type="file" id="image" name="image" accept="image/png,image/jpeg,image/gif,image/webp">
${
  models.length > 1
    ? html`<label for="model">Model</label><select id="model" name="model">${models.map(
        (model) =>
          html`<option value="${model.id}"${model.id === values.model ? html` selected` : ""}>${model.id}</option>`,
      )}</select>`
    : ""
}
<p><button type="submit">Extract</button></p>
</form>
${
  recent.length
    ? html`<h2>Recent runs</h2><table><caption>Extraction runs, newest first</caption>
<thead><tr><th scope="col">Run</th><th scope="col">Table</th><th scope="col">Status</th><th scope="col">Rows</th><th scope="col">Started (UTC)</th></tr></thead>
<tbody>${recent.map(
        (run) =>
          html`<tr><td><a href="${extractRunHref(database.name, run.id)}">${run.id}</a></td><td>${run.table}</td><td>${run.status}</td><td>${run.itemCount}</td><td>${run.createdAt}</td></tr>`,
      )}</tbody></table>`
    : ""
}`,
      }),
      status,
    );
  };

  const showForm = async (c: Context, fixedTable: string | undefined) => {
    try {
      const database = ctx.database(c.req.param("db") ?? "");
      const fields = fixedTable ? withExtraction(database, (e) => e.fieldsOf(fixedTable)) : [];
      return await renderForm(
        c,
        database,
        fixedTable,
        { table: fixedTable ?? "", fields: fieldsText(fields), instructions: "", text: "", model: "" },
        undefined,
      );
    } catch (error) {
      return ctx.fail(c, error, false);
    }
  };

  const submit = async (c: Context, fixedTable: string | undefined) => {
    let database: ServedDatabase;
    let form: FormFields;
    let actor: Actor | undefined;
    try {
      database = ctx.database(c.req.param("db") ?? "");
      form = await FormFields.of(c);
      actor = await ctx.authorizePost(c, form, "extract");
    } catch (error) {
      return ctx.fail(c, error, false);
    }
    const values: ExtractValues = {
      table: fixedTable ?? form.text("table"),
      fields: form.text("fields"),
      instructions: form.text("instructions"),
      text: form.text("text"),
      model: form.text("model"),
    };
    const extraction = new Extraction({ hub: ctx.hub, database: database.path, can: ctx.can });
    try {
      const image = form.file("image");
      if (image && !IMAGE_TYPES.has(image.type)) {
        throw new SwitchboardError(
          "INVALID_INPUT",
          `The upload is ${image.type || "of an unknown type"}; send a PNG, JPEG, GIF or WebP image.`,
        );
      }
      const fields = parseFields(values.fields);
      // The source names this request, so its run record can be found while the reply streams.
      const source = `${image ? `upload ${image.name}` : "pasted text"} (${randomBytes(6).toString("hex")})`;
      const running = extraction.run(
        {
          table: values.table,
          ...(fields.length ? { fields } : {}),
          ...(values.instructions.trim() ? { instructions: values.instructions } : {}),
          ...(values.model ? { model: values.model } : {}),
        },
        {
          text: values.text,
          ...(image
            ? { attachments: [{ content: new Uint8Array(await image.arrayBuffer()), type: image.type }] }
            : {}),
          source,
        },
        actor,
      );
      let settled = false;
      const outcome = running.then(
        (run) => ({ run, error: undefined }),
        (error: unknown) => ({ run: undefined, error }),
      );
      void outcome.finally(() => {
        settled = true;
        extraction.close();
      });
      const deadline = Date.now() + RECORD_WAIT_MS;
      for (;;) {
        const record = extraction
          .runs({ table: values.table.trim(), limit: 20 })
          .find((run) => run.source === source);
        if (record) return c.redirect(extractRunHref(database.name, record.id), 303);
        if (settled || Date.now() > deadline) {
          const { error } = await outcome;
          throw error ?? new Error("The extraction run was not recorded in time.");
        }
        await Promise.race([outcome, new Promise((resolve) => setTimeout(resolve, 20))]);
      }
    } catch (error) {
      const { flash, status } = failureFlash(error);
      return renderForm(
        c,
        database,
        fixedTable,
        values,
        flash,
        status === 403 ? 403 : status >= 500 ? 500 : 400,
      );
    }
  };

  app.get("/:db/-/extract", (c) => showForm(c, undefined));
  app.post("/:db/-/extract", (c) => submit(c, undefined));
  app.get("/:db/:table/-/extract", (c) => showForm(c, tildeDecode(c.req.param("table"))));
  app.post("/:db/:table/-/extract", (c) => submit(c, tildeDecode(c.req.param("table"))));

  app.get("/:db/-/extract/:run", async (c) => {
    const { name: id, json } = splitJsonSuffix(c.req.param("run"));
    try {
      const database = ctx.database(c.req.param("db"));
      const run = withExtraction(database, (e) => e.runRecord(id));
      if (!run) throw new PageError(404, `No extraction run ${id} in ${database.name}.`);
      const summary = runJson(run, database.name);
      if (json) return c.json(summary);
      return c.html(
        page({
          title: `Extraction into ${run.table}`,
          crumbs: [
            { label: database.name, href: dbHref(database.name) },
            { label: run.table, href: summary.table_url },
            { label: "Extraction run", href: summary.url },
          ],
          body: html`
<div id="run" data-api-url="${summary.url}.json" data-status="${run.status}">
<p>Status: <strong id="run-status">${run.status}</strong> · rows inserted: <strong id="run-items" aria-live="polite">${run.itemCount}</strong></p>
${run.error ? html`<p class="flash error">${run.error}</p>` : ""}
</div>
<table><caption>Run</caption><tbody>
<tr><th scope="row">Table</th><td><a href="${summary.table_url}">${run.table}</a></td></tr>
<tr><th scope="row">Model</th><td>${run.model}</td></tr>
<tr><th scope="row">Columns</th><td><code>${fieldsText(run.fields)}</code></td></tr>
${run.instructions ? html`<tr><th scope="row">Instructions</th><td>${run.instructions}</td></tr>` : ""}
<tr><th scope="row">Source</th><td>${run.source ?? ""}</td></tr>
<tr><th scope="row">Started (UTC)</th><td>${run.createdAt} by ${run.actorId ?? "anonymous"}</td></tr>
</tbody></table>
<p><a href="${extractHref(database.name, run.table)}">Extract more into ${run.table}</a></p>
${RUN_SCRIPT}`,
        }),
      );
    } catch (error) {
      return ctx.fail(c, error, json);
    }
  });
}
