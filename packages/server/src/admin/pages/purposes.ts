/**
 * Purposes: every registered and declared purpose with where each routing value comes from, and
 * (with `manage-purposes`) an override form. Overrides are stored in the database over the YAML,
 * validated by the configuration's schema, audited, and effective at once.
 */
import { isSwitchboardError } from "@switchboard/core";
import type {
  KeySource,
  ModelRef,
  OverrideField,
  OverrideFieldErrors,
  PurposeDetail,
  SourcedValue,
} from "@switchboard/hub";
import type { Context, Hono } from "hono";
import { html } from "hono/html";
import { type AdminDeps, formOf, guardAction, guardPage, page, redirectWithFlash } from "../guard.ts";
import { csrfInput, formatTime, type Html, layout, query, sourceBadge } from "../layout.ts";
import { type Flash, takeFlash, type Viewer } from "../session.ts";

const PATH = "/-/purposes";

const FIELD_LABELS: Record<OverrideField, string> = {
  model: "Model",
  models: "Allowed models",
  blocked_models: "Blocked models",
  fallbacks: "Fallbacks",
};

const FIELD_HINTS: Record<OverrideField, string> = {
  model: "The model used when the caller names none. Add key=SECRET_NAME to use a specific key.",
  models: "One per line. Replaces the global allowlist for this purpose; the model above is always allowed.",
  blocked_models: "One per line; removed from the allowlist.",
  fallbacks: "One per line, in order; tried when the model fails before answering.",
};

/** `id` or `id key=SECRET` — how a model reference is written in the form. */
export function formatRef(ref: ModelRef): string {
  return typeof ref === "string" ? ref : ref.key ? `${ref.model} key=${ref.key}` : ref.model;
}

function parseRef(text: string): ModelRef {
  const match = /^(\S+)\s+key=(\S+)$/.exec(text);
  return match ? { model: match[1] as string, key: match[2] as string } : text;
}

function parseList(text: string): string[] {
  return text
    .split(/[\n,]/)
    .map((entry) => entry.trim())
    .filter(Boolean);
}

/** The override a submitted form asks for: blank fields are left out (the YAML's value applies). */
export function overrideFromForm(values: Record<OverrideField, string>): Record<string, unknown> {
  const override: Record<string, unknown> = {};
  if (values.model.trim()) override.model = parseRef(values.model.trim());
  if (values.models.trim()) override.models = parseList(values.models).map(parseRef);
  if (values.blocked_models.trim()) override.blocked_models = parseList(values.blocked_models);
  if (values.fallbacks.trim()) override.fallbacks = parseList(values.fallbacks).map(parseRef);
  return override;
}

function formValues(detail: PurposeDetail): Record<OverrideField, string> {
  const settings = detail.override?.settings ?? {};
  return {
    model: settings.model === undefined ? "" : formatRef(settings.model),
    models: (settings.models ?? []).map(formatRef).join("\n"),
    blocked_models: (settings.blocked_models ?? []).join("\n"),
    fallbacks: (settings.fallbacks ?? []).map(formatRef).join("\n"),
  };
}

function yamlPlaceholder(detail: PurposeDetail, field: OverrideField): string {
  const value = detail.yaml[field];
  if (value === undefined) return "not set in the YAML";
  const text = Array.isArray(value) ? value.map((ref) => formatRef(ref)).join(", ") : formatRef(value);
  return `YAML: ${text || "(empty)"}`;
}

function list(values: readonly string[] | undefined, empty: string): Html {
  if (values === undefined) return html`<span class="muted">${empty}</span>`;
  if (values.length === 0) return html`<span class="muted">none</span>`;
  return html`${values.map((value, index) => html`${index ? ", " : ""}<code>${value}</code>`)}`;
}

function sourced(value: SourcedValue<readonly string[] | string | undefined>, empty: string): Html {
  const shown =
    typeof value.value === "string"
      ? html`<code>${value.value}</code>`
      : list(value.value as readonly string[] | undefined, empty);
  return html`${shown} ${value.source === "none" ? "" : sourceBadge(value.source)}`;
}

export function describeKey(key: KeySource): Html {
  switch (key.kind) {
    case "not-needed":
      return html`<span class="muted">no key needed</span>`;
    case "secret":
      return html`<span class="status-ok">found</span>: secret <code>${key.name}</code>${
        key.from === "env" ? html` (from <code>${key.envVar}</code>)` : " (stored)"
      }`;
    case "keys-file":
      return html`<span class="status-ok">found</span>: keys file, alias <code>${key.alias}</code>`;
    case "env":
      return html`<span class="status-ok">found</span>: environment variable <code>${key.envVar}</code>`;
    case "missing":
      return html`<span class="status-missing">missing</span>: set the secret <code>${key.tried.at(-1) ?? key.alias}</code>${
        key.envVar ? html` or the environment variable <code>${key.envVar}</code>` : ""
      }`;
  }
}

/** What the JSON twin shows of a purpose: the detail, with dates as ISO text. */
function purposeJson(detail: PurposeDetail) {
  return {
    ...detail,
    override: detail.override && {
      ...detail.override,
      updatedAt: detail.override.updatedAt.toISOString(),
    },
  };
}

function purposesList(
  viewer: Viewer,
  details: PurposeDetail[],
  filter: string,
  flash: Flash | undefined,
): Html {
  const needle = filter.toLowerCase();
  const shown = needle
    ? details.filter((detail) =>
        `${detail.name} ${detail.description.value ?? ""}`.toLowerCase().includes(needle),
      )
    : details;
  return layout({
    title: "Purposes",
    viewer,
    current: PATH,
    flash,
    body: html`
      <form class="filters" method="get" action="${PATH}" role="search">
        <label for="q">Filter <input type="search" id="q" name="q" value="${filter}" /></label>
        <button type="submit" class="secondary">Filter</button>
        <a href="${PATH}.json">JSON</a>
      </form>
      <table>
        <caption>
          ${shown.length} of ${details.length} purposes. Badges say where each value comes from: the YAML, a
          database override, a plugin, or the global setting.
        </caption>
        <thead>
          <tr>
            <th scope="col">Purpose</th>
            <th scope="col">Model</th>
            <th scope="col">Allowed</th>
            <th scope="col">Blocked</th>
            <th scope="col">Fallbacks</th>
            <th scope="col">Override</th>
          </tr>
        </thead>
        <tbody>
          ${
            details.length === 0
              ? html`<tr>
                  <td colspan="6" class="muted">
                    No purposes yet: plugins register them, or declare one under <code>purposes:</code> in
                    switchboard.yaml.
                  </td>
                </tr>`
              : ""
          }
          ${shown.map(
            (detail) => html`<tr>
              <td>
                <a href="${PATH}/${encodeURIComponent(detail.name)}">${detail.name}</a><br />
                <span class="muted">${detail.description.value ?? ""}</span>
              </td>
              <td>${sourced(detail.model, "none")}</td>
              <td>${sourced(detail.allowlist, "every model")}</td>
              <td>${sourced(detail.blocked, "none")}</td>
              <td>${sourced(detail.fallbacks, "none")}</td>
              <td>
                ${
                  detail.override
                    ? html`by <strong>${detail.override.updatedBy}</strong><br /><span class="muted"
                          >${formatTime(detail.override.updatedAt)}</span
                        >`
                    : html`<span class="muted">none</span>`
                }
              </td>
            </tr>`,
          )}
        </tbody>
      </table>
    `,
  });
}

function overrideForm(
  viewer: Viewer,
  detail: PurposeDetail,
  values: Record<OverrideField, string>,
  errors: OverrideFieldErrors,
  modelIds: readonly string[],
): Html {
  const action = `${PATH}/${encodeURIComponent(detail.name)}`;
  const field = (name: OverrideField) => {
    const error = errors[name];
    const id = `field-${name}`;
    const described = error ? `${id}-error ${id}-hint` : `${id}-hint`;
    const input =
      name === "model"
        ? html`<input
            type="text"
            id="${id}"
            name="${name}"
            value="${values[name]}"
            list="model-ids"
            placeholder="${yamlPlaceholder(detail, name)}"
            aria-describedby="${described}"
            aria-invalid="${error ? "true" : "false"}"
          />`
        : html`<textarea id="${id}" name="${name}" placeholder="${yamlPlaceholder(detail, name)}" aria-describedby="${described}" aria-invalid="${error ? "true" : "false"}">
${values[name]}</textarea>`;
    return html`<label for="${id}"
      >${FIELD_LABELS[name]} ${input}
      <span class="hint" id="${id}-hint">${FIELD_HINTS[name]} Leave blank to keep the YAML's value.</span>
      ${error ? html`<span class="field-error" id="${id}-error">${error}</span>` : ""}
    </label>`;
  };
  return html`
    <h2 id="edit">Override</h2>
    <form class="stack" method="post" action="${action}" aria-labelledby="edit">
      ${csrfInput(viewer)} ${field("model")} ${field("models")} ${field("blocked_models")} ${field("fallbacks")}
      <datalist id="model-ids">${modelIds.map((id) => html`<option value="${id}"></option>`)}</datalist>
      <div><button type="submit">Save override</button></div>
    </form>
    ${
      detail.override
        ? html`<form class="inline" method="post" action="${action}/reset">
            ${csrfInput(viewer)}
            <p>
              <button type="submit" class="danger">Reset ${detail.name} to YAML</button>
              <span class="hint">Removes the override; the YAML's settings apply again.</span>
            </p>
          </form>`
        : ""
    }
  `;
}

function purposePage(
  viewer: Viewer,
  detail: PurposeDetail,
  options: {
    flash?: Flash | undefined;
    values?: Record<OverrideField, string>;
    errors?: OverrideFieldErrors;
    modelIds: readonly string[];
  },
): Html {
  return layout({
    title: `Purpose ${detail.name}`,
    viewer,
    current: PATH,
    flash: options.flash,
    body: html`
      <p><a href="${PATH}">All purposes</a> · <a href="/-/usage${query({ purpose: detail.name })}">Usage</a>${
        viewer.can("manage-purposes") ||
        viewer.can("manage-secrets") ||
        viewer.can("manage-tokens") ||
        viewer.can("manage-budgets")
          ? html` · <a href="/-/audit${query({ type: "purpose", target: detail.name })}">Audit</a>`
          : ""
      }</p>
      <dl class="facts">
        <dt>Description</dt>
        <dd>${detail.description.value ?? html`<span class="muted">none</span>`} ${
          detail.description.source === "none" ? "" : sourceBadge(detail.description.source)
        }</dd>
        <dt>Registered by</dt>
        <dd>
          ${detail.registeredBy === "config-policy" ? "the YAML (purposes:)" : html`plugin <code>${detail.registeredBy}</code>`}
          ${detail.declaredInYaml && detail.registeredBy !== "config-policy" ? " (also configured in the YAML)" : ""}
        </dd>
        <dt>Model</dt>
        <dd>${sourced(detail.model, "none")}</dd>
        <dt>Allowlist</dt>
        <dd>
          ${sourced(detail.allowlist, "every registered model")}
          <span class="hint">A purpose's list replaces the global list.</span>
        </dd>
        <dt>Blocked</dt>
        <dd>${sourced(detail.blocked, "none")} · global: ${list(detail.globalBlocked, "none")}</dd>
        <dt>Fallbacks</dt>
        <dd>${sourced(detail.fallbacks, "none")}</dd>
        <dt>Override</dt>
        <dd>
          ${
            detail.override
              ? html`set by <strong>${detail.override.updatedBy}</strong> at ${formatTime(detail.override.updatedAt)}`
              : html`<span class="muted">none: the YAML applies</span>`
          }
        </dd>
      </dl>
      <table>
        <caption>Models allowed for ${detail.name}, in listing order</caption>
        <thead>
          <tr>
            <th scope="col">Model</th>
            <th scope="col">Listed</th>
            <th scope="col">Key</th>
          </tr>
        </thead>
        <tbody>
          ${detail.models.map(
            (model) => html`<tr>
              <td><code>${model.id}</code></td>
              <td>${model.listed ? "yes" : html`<span class="status-missing">hidden</span>`}</td>
              <td>${describeKey(model.key)}</td>
            </tr>`,
          )}
        </tbody>
      </table>
      ${
        detail.hidden.length > 0
          ? html`<p class="muted">
              ${detail.hidden.map((hidden) => html`<code>${hidden.id}</code> ${hidden.reason}. `)}
            </p>`
          : ""
      }
      ${
        viewer.can("manage-purposes")
          ? overrideForm(
              viewer,
              detail,
              options.values ?? formValues(detail),
              options.errors ?? {},
              options.modelIds,
            )
          : ""
      }
    `,
  });
}

export function registerPurposes(admin: Hono, { hub }: AdminDeps): void {
  const findPurpose = async (name: string) =>
    (await hub.purposeDetails()).find((detail) => detail.name === name);
  const modelIds = () => hub.registeredModels().map((model) => model.id);
  const notFound = (c: Context, name: string) =>
    page(
      c,
      layout({
        title: "No such purpose",
        viewer: c.get("viewer"),
        current: PATH,
        body: html`<p>There is no purpose named <code>${name}</code>. <a href="${PATH}">All purposes</a></p>`,
      }),
      404,
    );

  admin.get("/-/purposes.json", guardPage(PATH), async (c) =>
    c.json({ purposes: (await hub.purposeDetails()).map(purposeJson) }),
  );
  admin.get("/-/purposes", guardPage(PATH), async (c) =>
    page(
      c,
      purposesList(
        c.get("viewer"),
        await hub.purposeDetails(),
        c.req.query("q") ?? "",
        await takeFlash(c, hub),
      ),
    ),
  );
  admin.get("/-/purposes/:name", guardPage(PATH), async (c) => {
    const name = c.req.param("name");
    const detail = await findPurpose(name);
    if (!detail) return notFound(c, name);
    return page(
      c,
      purposePage(c.get("viewer"), detail, { flash: await takeFlash(c, hub), modelIds: modelIds() }),
    );
  });
  admin.post("/-/purposes/:name", guardAction("manage-purposes", "purpose overrides"), async (c) => {
    const name = c.req.param("name");
    const detail = await findPurpose(name);
    if (!detail) return notFound(c, name);
    const form = await formOf(c);
    const values: Record<OverrideField, string> = {
      model: form.get("model"),
      models: form.get("models"),
      blocked_models: form.get("blocked_models"),
      fallbacks: form.get("fallbacks"),
    };
    try {
      await hub.overrides.set(name, overrideFromForm(values), c.get("viewer").actor);
    } catch (error) {
      if (!isSwitchboardError(error, "INVALID_INPUT")) throw error;
      const errors = (error.details.fields ?? {}) as OverrideFieldErrors;
      return page(
        c,
        purposePage(c.get("viewer"), detail, {
          flash: { level: "error", text: "The override was not saved: fix the fields marked below." },
          values,
          errors,
          modelIds: modelIds(),
        }),
        400,
      );
    }
    return redirectWithFlash(
      c,
      hub,
      `${PATH}/${encodeURIComponent(name)}`,
      "info",
      `Override of ${name} saved.`,
    );
  });
  admin.post("/-/purposes/:name/reset", guardAction("manage-purposes", "purpose overrides"), async (c) => {
    const name = c.req.param("name");
    if (!(await findPurpose(name))) return notFound(c, name);
    const entry = await hub.overrides.reset(name, c.get("viewer").actor);
    return redirectWithFlash(
      c,
      hub,
      `${PATH}/${encodeURIComponent(name)}`,
      "info",
      entry ? `${name} is back to its YAML settings.` : `${name} had no override.`,
    );
  });
}
