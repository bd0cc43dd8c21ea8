/** The admin home page and the sign-in pages. */
import { html } from "hono/html";
import { type Html, layout, PAGES } from "../layout.ts";
import type { Flash, Viewer } from "../session.ts";

export function homePage(viewer: Viewer, flash: Flash | undefined): Html {
  const pages = PAGES.filter((page) => page.allowed(viewer.can));
  return layout({
    title: "Switchboard admin",
    viewer,
    flash,
    body: html`
      ${
        pages.length === 0
          ? html`<p>
              You are signed in as <strong>${viewer.actor}</strong>, who may not see any admin page yet. An operator
              grants pages with <code>permissions:</code> in <code>switchboard.yaml</code>.
            </p>`
          : html`<ul class="cards">
              ${pages.map(
                (page) =>
                  html`<li><a href="${page.path}">${page.label}</a><br /><span class="muted">${page.description}</span></li>`,
              )}
            </ul>`
      }
    `,
  });
}

export function loginPage(options: { problem?: string | undefined }): Html {
  return layout({
    title: "Sign in",
    body: html`
      ${options.problem ? html`<p class="flash error">${options.problem}</p>` : ""}
      <p>
        The admin UI is opened with a one-time login link. Ask an operator for one, or on the server run
        <code>switchboard login-link YOUR_ID</code> (or start it with <code>switchboard serve --root</code>).
      </p>
      <p class="muted">A link works once and only for a few minutes.</p>
    `,
  });
}

export function forbiddenPage(viewer: Viewer, title: string): Html {
  return layout({
    title: "Not allowed",
    viewer,
    body: html`<p>
      <strong>${viewer.actor}</strong> may not open ${title}. An operator can grant it with
      <code>permissions:</code> in <code>switchboard.yaml</code>.
    </p>`,
  });
}

export function problemPage(viewer: Viewer | undefined, title: string, message: string): Html {
  return layout({ title, viewer, body: html`<p class="flash error">${message}</p>` });
}
