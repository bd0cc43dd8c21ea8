/**
 * `/<db>/-/assistant`: a question (optionally about one table and its related tables) → a
 * read-only query with its explanation, and the rows it returns.
 */
import { type AssistantAnswer, listTables, type QueryResult, SqlAssistant } from "@switchboard/data";
import type { Actor } from "@switchboard/hub";
import type { Context, Hono } from "hono";
import { html } from "hono/html";
import {
  assistantHref,
  type DataPagesContext,
  dbHref,
  FormFields,
  failureFlash,
  type ServedDatabase,
} from "./context.ts";
import { cellText, csrfField, type Flash, page } from "./html.ts";

/** Rows shown under an answer. */
const RESULT_ROWS = 100;

export function assistantRoutes(app: Hono, ctx: DataPagesContext): void {
  const render = async (
    c: Context,
    database: ServedDatabase,
    values: { question: string; table: string },
    outcome: { answer?: AssistantAnswer; result?: QueryResult; flash?: Flash },
    status: 200 | 400 | 403 | 500 = 200,
  ) => {
    const actor = await ctx.actor(c);
    const token = await ctx.csrf.token(c);
    const tables = listTables(database.path).filter((table) => !table.name.startsWith("_"));
    const canAsk = await ctx.allowed("ask", actor);
    const { answer, result } = outcome;
    return c.html(
      page({
        title: "SQL assistant",
        crumbs: [
          { label: database.name, href: dbHref(database.name) },
          { label: "SQL assistant", href: assistantHref(database.name) },
        ],
        flash: outcome.flash,
        body: html`
${canAsk ? "" : html`<p class="flash error">You may not use the SQL assistant here (the <code>ask</code> permission).</p>`}
<form method="post" action="${assistantHref(database.name)}">
${csrfField(token)}
<label for="question">Question</label>
<textarea id="question" name="question">${values.question}</textarea>
<label for="table">About the table (and the tables related to it)</label>
<select id="table" name="table">
<option value="">All tables</option>
${tables.map((table) => html`<option value="${table.name}"${table.name === values.table ? html` selected` : ""}>${table.name}</option>`)}
</select>
<p><button type="submit">Ask</button></p>
</form>
${
  answer
    ? html`<h2>${answer.valid ? "Query" : "No valid query"}</h2>
<pre id="sql">${answer.sql}</pre>
<p id="explanation">${answer.explanation}</p>
${answer.error ? html`<p class="flash error">${answer.error}</p>` : ""}
<p class="hint">Model ${answer.model}; ${answer.attempts.length} attempt${answer.attempts.length === 1 ? "" : "s"}; schema of ${answer.tables.join(", ")}.</p>`
    : ""
}
${
  result
    ? html`<table><caption>Results${result.truncated || result.rows.length > RESULT_ROWS ? ` (first ${RESULT_ROWS} rows)` : ""}</caption>
<thead><tr>${result.columns.map((column) => html`<th scope="col">${column}</th>`)}</tr></thead>
<tbody>${result.rows
        .slice(0, RESULT_ROWS)
        .map(
          (row) => html`<tr>${row.map((value) => html`<td>${cellText(value)}</td>`)}</tr>`,
        )}</tbody></table>`
    : ""
}`,
      }),
      status,
    );
  };

  app.get("/:db/-/assistant", async (c) => {
    try {
      const database = ctx.database(c.req.param("db"));
      return await render(c, database, { question: "", table: c.req.query("table") ?? "" }, {});
    } catch (error) {
      return ctx.fail(c, error, false);
    }
  });

  app.post("/:db/-/assistant", async (c) => {
    let database: ServedDatabase;
    let form: FormFields;
    let actor: Actor | undefined;
    try {
      database = ctx.database(c.req.param("db"));
      form = await FormFields.of(c);
      actor = await ctx.authorizePost(c, form, "ask");
    } catch (error) {
      return ctx.fail(c, error, false);
    }
    const values = { question: form.text("question"), table: form.text("table") };
    if (!values.question.trim()) {
      return render(c, database, values, { flash: { level: "error", text: "Write a question first." } }, 400);
    }
    const assistant = new SqlAssistant({ hub: ctx.hub, database: database.path, can: ctx.can });
    try {
      const answer = await assistant.ask(
        {
          question: values.question,
          ...(values.table ? { table: values.table } : {}),
          signal: c.req.raw.signal,
        },
        actor,
      );
      const result = answer.valid
        ? await assistant.run(answer.sql, actor, { limit: RESULT_ROWS })
        : undefined;
      return await render(c, database, values, { answer, ...(result ? { result } : {}) });
    } catch (error) {
      const { flash, status } = failureFlash(error);
      return render(c, database, values, { flash }, status === 403 ? 403 : status >= 500 ? 500 : 400);
    } finally {
      assistant.close();
    }
  });
}
