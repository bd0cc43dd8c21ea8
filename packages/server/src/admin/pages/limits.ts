/**
 * Limits and allowances: per limit (and per actor for actor-scoped ones) what is used, held by
 * prompts in flight, left, and when the window resets; every allowance with its balance and
 * recent top-ups. With `manage-budgets`, top up an allowance (audited).
 */
import { isSwitchboardError } from "@switchboard/core";
import { type AllowanceStatus, formatUsd, type LimitStatus, usdToNanocents } from "@switchboard/hub";
import type { Hono } from "hono";
import { html } from "hono/html";
import { type AdminDeps, formOf, guardAction, guardPage, page, redirectWithFlash } from "../guard.ts";
import { csrfInput, formatCost, formatTime, type Html, layout } from "../layout.ts";
import { type Flash, takeFlash, type Viewer } from "../session.ts";

const PATH = "/-/limits";

interface TopUpForm {
  actor: string;
  amount: string;
  note: string;
}

type LedgerEntry = Awaited<ReturnType<AdminDeps["hub"]["reports"]["allowanceHistory"]>>[number];

function limitsPage(
  viewer: Viewer,
  limits: LimitStatus[],
  allowances: AllowanceStatus[],
  history: LedgerEntry[],
  options: { flash?: Flash | undefined; form?: TopUpForm; error?: string; actor: string },
): Html {
  const form = options.form ?? { actor: options.actor, amount: "", note: "" };
  return layout({
    title: "Limits and allowances",
    viewer,
    current: PATH,
    flash: options.flash,
    body: html`
      <form class="filters" method="get" action="${PATH}">
        <label for="actor-filter">Actor <input type="text" id="actor-filter" name="actor" value="${options.actor}" /></label>
        <button type="submit" class="secondary">Show</button>
      </form>
      <table>
        <caption>
          Spending limits (<code>limits:</code> in switchboard.yaml). Used counts settled costs and what prompts in
          flight hold; holds that expired (a process that died mid-prompt) no longer count.
        </caption>
        <thead>
          <tr>
            <th scope="col">Limit</th>
            <th scope="col">Scope</th>
            <th scope="col">Window</th>
            <th scope="col">For</th>
            <th scope="col" class="num">Cap</th>
            <th scope="col" class="num">Used</th>
            <th scope="col" class="num">Held</th>
            <th scope="col" class="num">Left</th>
            <th scope="col">Reset</th>
          </tr>
        </thead>
        <tbody>
          ${
            limits.length === 0
              ? html`<tr><td colspan="9" class="muted">No limits configured.</td></tr>`
              : limits.map(
                  (limit) => html`<tr>
                    <td><code>${limit.limit}</code></td>
                    <td>${limit.scope}${limit.actorId ? html`: <strong>${limit.actorId}</strong>` : ""}</td>
                    <td>${limit.window}</td>
                    <td>
                      ${
                        [
                          limit.purpose ? `purpose ${limit.purpose}` : "",
                          limit.model ? `model ${limit.model}` : "",
                        ]
                          .filter(Boolean)
                          .join(", ") || html`<span class="muted">everything</span>`
                      }
                    </td>
                    <td class="num">${formatUsd(limit.cap)}</td>
                    <td class="num">${formatUsd(limit.used)}</td>
                    <td class="num ${limit.held > 0n ? "status-held" : ""}">${formatUsd(limit.held)}</td>
                    <td class="num ${limit.left === 0n ? "status-error" : ""}">${formatUsd(limit.left)}</td>
                    <td>${limit.resetsAt ? formatTime(limit.resetsAt) : limit.reset}</td>
                  </tr>`,
                )
          }
        </tbody>
      </table>
      <h2>Allowances</h2>
      <table>
        <caption>Refillable balances per actor; reservations of prompts in flight are already taken out.</caption>
        <thead>
          <tr>
            <th scope="col">Actor</th>
            <th scope="col" class="num">Balance</th>
            <th scope="col" class="num">Held</th>
            <th scope="col">Updated</th>
          </tr>
        </thead>
        <tbody>
          ${
            allowances.length === 0
              ? html`<tr><td colspan="4" class="muted">No allowances yet.</td></tr>`
              : allowances.map(
                  (allowance) => html`<tr>
                    <td>${allowance.actorId}</td>
                    <td class="num">${formatUsd(allowance.balance)}</td>
                    <td class="num">${formatUsd(allowance.held)}</td>
                    <td>${formatTime(allowance.updatedAt)}</td>
                  </tr>`,
                )
          }
        </tbody>
      </table>
      ${
        viewer.can("manage-budgets")
          ? html`<h2 id="top-up">Top up an allowance</h2>
              <form class="stack" method="post" action="${PATH}/top-up" aria-labelledby="top-up">
                ${csrfInput(viewer)}
                <label for="top-up-actor">Actor <input type="text" id="top-up-actor" name="actor" value="${form.actor}" required /></label>
                <label for="top-up-amount"
                  >Amount (USD)
                  <input type="number" id="top-up-amount" name="amount" value="${form.amount}" step="0.01" required />
                  <span class="hint">A negative amount withdraws.</span>
                </label>
                <label for="top-up-note">Reason <input type="text" id="top-up-note" name="note" value="${form.note}" /></label>
                ${options.error ? html`<p class="field-error">${options.error}</p>` : ""}
                <div><button type="submit">Top up</button></div>
              </form>`
          : ""
      }
      <h2>Recent top-ups and charges</h2>
      <table>
        <caption>Newest first</caption>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Actor</th>
            <th scope="col">Kind</th>
            <th scope="col" class="num">Amount</th>
            <th scope="col" class="num">Balance after</th>
            <th scope="col">By</th>
            <th scope="col">Note</th>
          </tr>
        </thead>
        <tbody>
          ${history.length === 0 ? html`<tr><td colspan="7" class="muted">None yet.</td></tr>` : ""}
          ${history.map(
            (entry) => html`<tr>
              <td class="time">${formatTime(entry.createdAt)}</td>
              <td>${entry.actorId}</td>
              <td>${entry.kind === "top_up" ? "top-up" : "charge"}</td>
              <td class="num">${entry.amount < 0n ? `−${formatUsd(-entry.amount)}` : formatCost(entry.amount)}</td>
              <td class="num">${entry.balanceAfter < 0n ? `−${formatUsd(-entry.balanceAfter)}` : formatUsd(entry.balanceAfter)}</td>
              <td>${entry.createdBy ?? "—"}</td>
              <td>${entry.note ?? ""}</td>
            </tr>`,
          )}
        </tbody>
      </table>
    `,
  });
}

export function registerLimits(admin: Hono, { hub }: AdminDeps): void {
  const load = async (actor: string) =>
    Promise.all([
      hub.reports.limits(actor ? { actorId: actor } : {}),
      hub.reports
        .allowances()
        .then((all) => (actor ? all.filter((allowance) => allowance.actorId === actor) : all)),
      hub.reports.allowanceHistory({ limit: 20, ...(actor ? { actorId: actor } : {}) }),
    ]);

  admin.get("/-/limits", guardPage(PATH), async (c) => {
    const actor = c.req.query("actor") ?? "";
    const [limits, allowances, history] = await load(actor);
    return page(
      c,
      limitsPage(c.get("viewer"), limits, allowances, history, { flash: await takeFlash(c, hub), actor }),
    );
  });

  admin.post("/-/limits/top-up", guardAction("manage-budgets", "allowance top-ups"), async (c) => {
    const viewer = c.get("viewer");
    const body = await formOf(c);
    const form: TopUpForm = {
      actor: body.get("actor").trim(),
      amount: body.get("amount").trim(),
      note: body.get("note").trim(),
    };
    const usd = Number(form.amount);
    let problem: string | undefined;
    if (!form.actor) problem = "Name the actor whose allowance to top up.";
    else if (!form.amount || !Number.isFinite(usd) || usd === 0)
      problem = "Enter an amount in USD other than 0.";
    if (problem) {
      const [limits, allowances, history] = await load("");
      return page(
        c,
        limitsPage(viewer, limits, allowances, history, { form, error: problem, actor: "" }),
        400,
      );
    }
    const amount = usd < 0 ? -usdToNanocents(-usd) : usdToNanocents(usd);
    const before = await hub.reports.allowance(form.actor);
    let after: AllowanceStatus;
    try {
      after = await hub.reports.topUpAllowance(form.actor, amount, {
        by: viewer.actor,
        ...(form.note ? { note: form.note } : {}),
      });
    } catch (error) {
      if (!isSwitchboardError(error, "INVALID_INPUT")) throw error;
      const [limits, allowances, history] = await load("");
      return page(
        c,
        limitsPage(viewer, limits, allowances, history, { form, error: error.message, actor: "" }),
        400,
      );
    }
    await hub.audit.record({
      actor: viewer.actor,
      action: "allowance.top-up",
      targetType: "allowance",
      target: form.actor,
      before: before ? { balance: formatUsd(before.balance) } : undefined,
      after: {
        balance: formatUsd(after.balance),
        amount: `${usd < 0 ? "-" : ""}${formatUsd(amount < 0n ? -amount : amount)}`,
        ...(form.note ? { note: form.note } : {}),
      },
    });
    return redirectWithFlash(
      c,
      hub,
      PATH,
      "info",
      `Allowance of ${form.actor} is now ${formatUsd(after.balance)}.`,
    );
  });
}
