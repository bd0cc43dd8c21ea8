/**
 * Gateway tokens: list with last use and status, create (the value is shown once, in the response
 * to the POST that created it — never in a URL, a redirect, a later page or the audit log), revoke.
 */
import { isSwitchboardError } from "@switchboard/core";
import type { GatewayToken } from "@switchboard/hub";
import type { Hono } from "hono";
import { html } from "hono/html";
import { type AdminDeps, formOf, guardPage, page, redirectWithFlash } from "../guard.ts";
import { csrfInput, formatTime, type Html, layout } from "../layout.ts";
import { type Flash, takeFlash, type Viewer } from "../session.ts";

const PATH = "/-/tokens";
const EXPIRIES: Record<string, number | undefined> = {
  never: undefined,
  "1d": 86_400_000,
  "7d": 7 * 86_400_000,
  "30d": 30 * 86_400_000,
  "90d": 90 * 86_400_000,
  "365d": 365 * 86_400_000,
};

function status(token: GatewayToken, now: number): "active" | "revoked" | "expired" {
  if (token.revokedAt) return "revoked";
  if (token.expiresAt && token.expiresAt.getTime() <= now) return "expired";
  return "active";
}

interface CreateForm {
  name: string;
  actor: string;
  purposes: string[];
  expires: string;
}

function tokensPage(
  viewer: Viewer,
  tokens: GatewayToken[],
  purposes: string[],
  options: {
    flash?: Flash | undefined;
    created?: { name: string; value: string } | undefined;
    form?: CreateForm;
    error?: string;
    filter: { status: string; actor: string };
  },
): Html {
  const now = Date.now();
  const form = options.form ?? { name: "", actor: "", purposes: [], expires: "90d" };
  const shown = tokens.filter(
    (token) =>
      (!options.filter.status || status(token, now) === options.filter.status) &&
      (!options.filter.actor || token.actor === options.filter.actor),
  );
  return layout({
    title: "Tokens",
    viewer,
    current: PATH,
    flash: options.flash,
    body: html`
      ${
        options.created
          ? html`<div class="secret-once" role="alert">
              <p>
                Token <strong>${options.created.name}</strong> was created. Copy its value now: it is shown only this
                once.
              </p>
              <p>
                <code id="token-value">${options.created.value}</code>
                <button type="button" class="secondary" data-copy="token-value">Copy</button>
              </p>
            </div>`
          : ""
      }
      <form class="filters" method="get" action="${PATH}">
        <label for="status"
          >Status
          <select id="status" name="status">
            <option value="">any</option>
            ${["active", "expired", "revoked"].map(
              (value) =>
                html`<option value="${value}" ${options.filter.status === value ? "selected" : ""}>${value}</option>`,
            )}
          </select></label
        >
        <label for="actor-filter"
          >Actor <input type="text" id="actor-filter" name="actor" value="${options.filter.actor}"
        /></label>
        <button type="submit" class="secondary">Filter</button>
      </form>
      <table>
        <caption>Gateway tokens (their values are never stored, only a hash)</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Actor</th>
            <th scope="col">Purposes</th>
            <th scope="col">Created</th>
            <th scope="col">Expires</th>
            <th scope="col">Last used</th>
            <th scope="col">Status</th>
            <th scope="col"><span class="muted">Action</span></th>
          </tr>
        </thead>
        <tbody>
          ${shown.map((token) => {
            const state = status(token, now);
            return html`<tr>
              <td><code>${token.name}</code></td>
              <td>${token.actor}</td>
              <td>${token.purposes.length ? token.purposes.join(", ") : html`<span class="muted">none</span>`}</td>
              <td>${formatTime(token.createdAt)}</td>
              <td>${token.expiresAt ? formatTime(token.expiresAt) : "never"}</td>
              <td>${formatTime(token.lastUsedAt)}</td>
              <td class="status-${state}">${state}</td>
              <td>
                ${
                  state === "active"
                    ? html`<form class="inline" method="post" action="${PATH}/${encodeURIComponent(token.name)}/revoke">
                        ${csrfInput(viewer)}
                        <button type="submit" class="danger">Revoke token ${token.name}</button>
                      </form>`
                    : ""
                }
              </td>
            </tr>`;
          })}
        </tbody>
      </table>
      <h2 id="create-token">Create a token</h2>
      <form class="stack" method="post" action="${PATH}" aria-labelledby="create-token">
        ${csrfInput(viewer)}
        <label for="token-name"
          >Name <input type="text" id="token-name" name="name" value="${form.name}" required />
          <span class="hint">Letters, digits, '.', '_' or '-'.</span>
        </label>
        <label for="token-actor"
          >Actor <input type="text" id="token-actor" name="actor" value="${form.actor}" required />
          <span class="hint">Budgets, allowances and the usage log apply to this actor id.</span>
        </label>
        <fieldset>
          <legend>Purposes (the first checked is the default)</legend>
          ${purposes.map(
            (purpose) =>
              html`<label
                ><input type="checkbox" name="purposes" value="${purpose}" ${form.purposes.includes(purpose) ? "checked" : ""} />
                ${purpose}</label
              >`,
          )}
        </fieldset>
        <label for="token-expires"
          >Expires
          <select id="token-expires" name="expires">
            ${Object.keys(EXPIRIES).map(
              (key) =>
                html`<option value="${key}" ${form.expires === key ? "selected" : ""}>${key === "never" ? "never" : `in ${key}`}</option>`,
            )}
          </select>
        </label>
        ${options.error ? html`<p class="field-error">${options.error}</p>` : ""}
        <div><button type="submit">Create token</button></div>
      </form>
    `,
  });
}

export function registerTokens(admin: Hono, { hub, tokens }: AdminDeps): void {
  const purposes = async () => (await hub.purposes()).map((purpose) => purpose.name);
  admin.get("/-/tokens", guardPage(PATH), async (c) => {
    const viewer = c.get("viewer");
    const filter = { status: c.req.query("status") ?? "", actor: c.req.query("actor") ?? "" };
    return page(
      c,
      tokensPage(viewer, await tokens.list(), await purposes(), { flash: await takeFlash(c, hub), filter }),
    );
  });

  admin.post("/-/tokens", guardPage(PATH), async (c) => {
    const viewer = c.get("viewer");
    const body = await formOf(c);
    const form: CreateForm = {
      name: body.get("name").trim(),
      actor: body.get("actor").trim(),
      purposes: body.all("purposes"),
      expires: body.get("expires") in EXPIRIES ? body.get("expires") : "90d",
    };
    const lifetime = EXPIRIES[form.expires];
    let created: { name: string; value: string };
    try {
      const result = await tokens.create({
        name: form.name,
        actor: form.actor,
        purposes: form.purposes,
        ...(lifetime === undefined ? {} : { expiresAt: new Date(Date.now() + lifetime) }),
      });
      created = { name: result.token.name, value: result.value };
      await hub.audit.record({
        actor: viewer.actor,
        action: "token.create",
        targetType: "token",
        target: result.token.name,
        after: {
          actor: result.token.actor,
          purposes: result.token.purposes,
          expiresAt: result.token.expiresAt?.toISOString() ?? null,
        },
      });
    } catch (error) {
      if (!isSwitchboardError(error, "INVALID_INPUT")) throw error;
      return page(
        c,
        tokensPage(viewer, await tokens.list(), await purposes(), {
          form,
          error: error.message,
          filter: { status: "", actor: "" },
          flash: { level: "error", text: "The token was not created." },
        }),
        400,
      );
    }
    // The one response that carries the value: rendered here, not behind a redirect.
    return page(
      c,
      tokensPage(viewer, await tokens.list(), await purposes(), {
        created,
        filter: { status: "", actor: "" },
      }),
    );
  });

  admin.post("/-/tokens/:name/revoke", guardPage(PATH), async (c) => {
    const viewer = c.get("viewer");
    const name = c.req.param("name");
    try {
      await tokens.revoke(name);
    } catch (error) {
      if (!isSwitchboardError(error, "NOT_FOUND")) throw error;
      return redirectWithFlash(c, hub, PATH, "error", error.message);
    }
    await hub.audit.record({
      actor: viewer.actor,
      action: "token.revoke",
      targetType: "token",
      target: name,
      before: { status: "active" },
      after: { status: "revoked" },
    });
    return redirectWithFlash(c, hub, PATH, "info", `Token ${name} revoked.`);
  });
}
