/**
 * Secrets: set and rotate (write-only — no page, response, audit entry or log shows a value),
 * with version, last change and last use. A value set in the environment wins over the store.
 */
import { isSwitchboardError } from "@switchboard/core";
import type { SecretListing } from "@switchboard/hub";
import type { Hono } from "hono";
import { html } from "hono/html";
import { type AdminDeps, formOf, guardPage, page, redirectWithFlash } from "../guard.ts";
import { csrfInput, formatTime, type Html, layout } from "../layout.ts";
import { type Flash, takeFlash, type Viewer } from "../session.ts";

const PATH = "/-/secrets";
const KEY_ENV = "SWITCHBOARD_SECRETS_KEY";

function time(iso: string | undefined): string {
  return iso ? formatTime(new Date(iso)) : "—";
}

function secretsPage(
  viewer: Viewer,
  secrets: SecretListing[],
  options: { flash?: Flash | undefined; canStore: boolean; name?: string; note?: string; error?: string },
): Html {
  return layout({
    title: "Secrets",
    viewer,
    current: PATH,
    flash: options.flash,
    body: html`
      <table>
        <caption>
          Secrets the configuration and plugins name, and those stored. Values are never shown: set a new value
          to rotate one.
        </caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Source</th>
            <th scope="col" class="num">Version</th>
            <th scope="col">Updated</th>
            <th scope="col">Last used</th>
          </tr>
        </thead>
        <tbody>
          ${secrets.map(
            (secret) => html`<tr>
              <td>
                <code>${secret.name}</code>
                ${secret.description ? html`<br /><span class="muted">${secret.description}</span>` : ""}
              </td>
              <td>
                ${
                  secret.source === "env"
                    ? html`environment (<code>${secret.envVar}</code>)${
                        secret.version ? html`<br /><span class="hint">overrides the stored value</span>` : ""
                      }`
                    : secret.source === "store"
                      ? "stored (encrypted)"
                      : html`<span class="status-missing">not set</span>`
                }
              </td>
              <td class="num">${secret.version ?? "—"}</td>
              <td>${time(secret.updatedAt)}</td>
              <td>${time(secret.lastUsedAt)}${secret.lastUsedBy ? html` by <strong>${secret.lastUsedBy}</strong>` : ""}</td>
            </tr>`,
          )}
        </tbody>
      </table>
      <h2 id="set-secret">Set or rotate a secret</h2>
      ${
        options.canStore
          ? html`<form class="stack" method="post" action="${PATH}" aria-labelledby="set-secret" autocomplete="off">
              ${csrfInput(viewer)}
              <label for="secret-name"
                >Name
                <input
                  type="text"
                  id="secret-name"
                  name="name"
                  value="${options.name ?? ""}"
                  list="secret-names"
                  required
                  aria-describedby="secret-name-hint${options.error ? " secret-error" : ""}"
                  aria-invalid="${options.error ? "true" : "false"}"
                />
                <span class="hint" id="secret-name-hint">Letters, digits and _ (for example OPENAI_API_KEY).</span>
              </label>
              <datalist id="secret-names">${secrets.map((secret) => html`<option value="${secret.name}"></option>`)}</datalist>
              <label for="secret-value"
                >Value
                <input type="password" id="secret-value" name="value" autocomplete="off" required />
                <span class="hint">Stored encrypted; it is never shown again, here or anywhere.</span>
              </label>
              <label for="secret-note"
                >Note <input type="text" id="secret-note" name="note" value="${options.note ?? ""}" />
              </label>
              ${options.error ? html`<p class="field-error" id="secret-error">${options.error}</p>` : ""}
              <div><button type="submit">Store secret</button></div>
            </form>`
          : html`<p>
              Storing secrets needs an encryption key: set <code>${KEY_ENV}</code> for the server (generate one with
              <code>switchboard secrets generate-key</code>), or set <code>SWITCHBOARD_SECRET_NAME</code> variables
              in its environment.
            </p>`
      }
    `,
  });
}

export function registerSecrets(admin: Hono, { hub }: AdminDeps): void {
  const canStore = () => hub.secrets.canStore;
  admin.get("/-/secrets", guardPage(PATH), async (c) =>
    page(
      c,
      secretsPage(c.get("viewer"), await hub.secrets.list(), {
        flash: await takeFlash(c, hub),
        canStore: canStore(),
      }),
    ),
  );
  admin.post("/-/secrets", guardPage(PATH), async (c) => {
    const viewer = c.get("viewer");
    const form = await formOf(c);
    const name = form.get("name").trim();
    const note = form.get("note").trim();
    const before = (await hub.secrets.list()).find((secret) => secret.name === name)?.version;
    let version: number;
    try {
      ({ version } = await hub.secrets.set(name, form.get("value"), {
        actorId: viewer.actor,
        ...(note ? { note } : {}),
      }));
    } catch (error) {
      if (!isSwitchboardError(error) || !["INVALID_INPUT", "SECRET_ERROR"].includes(error.code)) throw error;
      // The form comes back with the name and note, never the value.
      return page(
        c,
        secretsPage(viewer, await hub.secrets.list(), {
          canStore: canStore(),
          name,
          note,
          error: error.message,
          flash: { level: "error", text: "The secret was not stored." },
        }),
        400,
      );
    }
    await hub.audit.record({
      actor: viewer.actor,
      action: before === undefined ? "secret.set" : "secret.rotate",
      targetType: "secret",
      target: name,
      before: before === undefined ? undefined : { version: before },
      after: { version },
    });
    return redirectWithFlash(c, hub, PATH, "info", `Secret ${name} stored as version ${version}.`);
  });
}
