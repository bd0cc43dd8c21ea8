/**
 * The playground: pick a purpose (or a model allowed there), type a prompt, watch the answer
 * stream, then see the model that answered, time to first token, tokens, cost and a link to the
 * usage row. It runs as the signed-in actor through the hub, so allowlists, budgets and the usage
 * log apply exactly as for any other caller.
 */
import { describeError, isSwitchboardError, scrubSecrets } from "@switchboard/core";
import { formatUsd, type Hub, nanocentsToUsd } from "@switchboard/hub";
import type { Hono } from "hono";
import { html } from "hono/html";
import { streamSSE } from "hono/streaming";
import { type AdminDeps, formOf, guardPage, page } from "../guard.ts";
import { type Html, jsonScript, layout } from "../layout.ts";
import type { Viewer } from "../session.ts";

const PATH = "/-/playground";
const MAX_PROMPT_CHARS = 100_000;

/** The purposes the actor can use, each with the models it may pick there (the default first). */
async function choices(hub: Hub, actor: string): Promise<{ purpose: string; models: string[] }[]> {
  const purposes = await hub.purposes();
  const listed = await Promise.all(
    purposes.map(async (purpose) => ({
      purpose: purpose.name,
      models: (await hub.models({ purpose: purpose.name, actor: { id: actor } })).map((model) => model.id),
    })),
  );
  const general = (await hub.models({ actor: { id: actor } })).map((model) => model.id);
  return [...listed.filter((entry) => entry.models.length > 0), { purpose: "", models: general }];
}

function playgroundPage(viewer: Viewer, options: { purpose: string; models: string[] }[]): Html {
  const first = options[0];
  return layout({
    title: "Playground",
    viewer,
    current: PATH,
    scripts: ["playground.js"],
    body: html`
      <p class="muted">
        Prompts run as <strong>${viewer.actor}</strong>: the purpose's allowlist, your budgets and the usage log apply.
      </p>
      <form id="playground" class="stack" method="post" action="${PATH}/run">
        <input type="hidden" name="csrf" value="${viewer.csrf}" />
        <label for="pg-purpose"
          >Purpose
          <select id="pg-purpose" name="purpose">
            ${options.map(
              (option) =>
                html`<option value="${option.purpose}">${option.purpose || "(none: the global default)"}</option>`,
            )}
          </select>
        </label>
        <label for="pg-model"
          >Model
          <select id="pg-model" name="model">
            <option value="">the purpose's default</option>
            ${(first?.models ?? []).map((model) => html`<option value="${model}">${model}</option>`)}
          </select>
        </label>
        <label for="pg-system">System prompt <textarea id="pg-system" name="system"></textarea></label>
        <label for="pg-prompt">Prompt <textarea id="pg-prompt" name="prompt" required></textarea></label>
        <label for="pg-max-tokens"
          >Max tokens <input type="number" id="pg-max-tokens" name="max_tokens" min="1" max="100000" value="512"
        /></label>
        <div>
          <button type="submit" id="pg-run">Run</button>
          <button type="button" id="pg-stop" class="secondary" disabled>Stop</button>
        </div>
      </form>
      ${jsonScript("playground-models", options)}
      <h2 id="answer-title">Answer</h2>
      <div id="pg-answer" class="answer" aria-live="polite" aria-labelledby="answer-title"></div>
      <p id="pg-error" class="field-error" role="alert"></p>
      <dl id="pg-stats" class="facts" aria-label="Response details" hidden>
        <dt>Model</dt>
        <dd id="pg-stat-model"></dd>
        <dt>First token</dt>
        <dd id="pg-stat-ttft"></dd>
        <dt>Duration</dt>
        <dd id="pg-stat-duration"></dd>
        <dt>Tokens</dt>
        <dd id="pg-stat-tokens"></dd>
        <dt>Cost</dt>
        <dd id="pg-stat-cost"></dd>
        <dt>Usage row</dt>
        <dd id="pg-stat-log"></dd>
      </dl>
    `,
  });
}

export function registerPlayground(admin: Hono, { hub }: AdminDeps): void {
  admin.get("/-/playground", guardPage(PATH), async (c) => {
    const viewer = c.get("viewer");
    return page(c, playgroundPage(viewer, await choices(hub, viewer.actor)));
  });

  admin.post("/-/playground/run", guardPage(PATH), async (c) => {
    const viewer = c.get("viewer");
    const form = await formOf(c);
    const purpose = form.get("purpose") || undefined;
    const modelId = form.get("model") || undefined;
    const prompt = form.get("prompt");
    const system = form.get("system");
    const maxTokens = Number.parseInt(form.get("max_tokens"), 10);
    const controller = new AbortController();
    return streamSSE(c, async (stream) => {
      stream.onAbort(() => controller.abort());
      const send = (event: string, data: unknown) => stream.writeSSE({ event, data: JSON.stringify(data) });
      try {
        if (!prompt.trim() || prompt.length > MAX_PROMPT_CHARS) {
          await send("error", {
            code: "INVALID_INPUT",
            message: "Type a prompt (at most 100,000 characters).",
          });
          return;
        }
        const model = await hub.model({ purpose, model: modelId, actor: { id: viewer.actor } });
        const started = performance.now();
        let firstChunkMs: number | undefined;
        const response = model.prompt(prompt, {
          ...(system.trim() ? { system } : {}),
          ...(Number.isInteger(maxTokens) && maxTokens > 0 ? { options: { max_tokens: maxTokens } } : {}),
          signal: controller.signal,
          untrusted: true,
        });
        await send("start", { model: model.id, purpose: purpose ?? null });
        for await (const chunk of response) {
          firstChunkMs ??= performance.now() - started;
          await send("chunk", { text: chunk });
        }
        await response.done();
        const usage = response.usageSoFar;
        const answeredBy = response.answeredBy ?? response.modelId;
        const cost = hub.prices.cost(answeredBy, usage);
        await send("done", {
          model: answeredBy,
          ttftMs: firstChunkMs === undefined ? null : Math.round(firstChunkMs),
          durationMs: Math.round(performance.now() - started),
          inputTokens: usage.input ?? null,
          outputTokens: usage.output ?? null,
          cost: cost === undefined ? null : formatUsd(cost),
          costUsd: cost === undefined ? null : nanocentsToUsd(cost),
          usageId: response.id,
          // Its row is the newest of this actor's, on the log's first page.
          logUrl: `/-/log?actor=${encodeURIComponent(viewer.actor)}#${encodeURIComponent(response.id)}`,
        });
      } catch (error) {
        const known = isSwitchboardError(error);
        if (!known) console.error(`Playground prompt failed: ${scrubSecrets(describeError(error))}`);
        await send("error", {
          code: known ? error.code : "INTERNAL",
          message: known ? error.message : "The prompt failed inside the server; its log has the details.",
        });
      }
    });
  });
}
