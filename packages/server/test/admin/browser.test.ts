/**
 * The admin UI in a real browser (Debian's Chromium through playwright-core): sign in with the
 * root login link, assign a model to a purpose, stream a prompt in the playground, find it in the
 * log and the usage chart, create and revoke a token, set a secret that is never shown again.
 * Screenshots of every page go to test-output/admin-ui/.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { type FakeServer, startFakeOpenAI } from "@switchboard/core/testing";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, it } from "vitest";
import { type RunningServer, startServer } from "../../src/serve.ts";
import { ADMIN_CONFIG, type AdminTestApp, adminTestApp } from "./helpers.ts";

const CHROMIUM = process.env.SWITCHBOARD_CHROMIUM ?? "/usr/bin/chromium";
const OUTPUT = resolve(import.meta.dirname, "../../../../test-output/admin-ui");
const SECRET_VALUE = "sk-browser-test-secret-0123456789";
const skip =
  process.env.SWITCHBOARD_SKIP_BROWSER === "1"
    ? "browser test skipped because SWITCHBOARD_SKIP_BROWSER=1"
    : undefined;

describe.skipIf(skip)("admin UI in Chromium", () => {
  let admin: AdminTestApp;
  let upstream: FakeServer;
  let server: RunningServer;
  let base: string;
  let browser: Browser;
  let page: Page;

  const shot = (name: string) => page.screenshot({ path: join(OUTPUT, `${name}.png`), fullPage: true });
  const open = async (path: string) => {
    const response = await page.goto(`${base}${path}`);
    assert.equal(response?.status(), 200, `GET ${path}`);
  };

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `No Chromium at ${CHROMIUM}: install it (apt-get install -y chromium), point SWITCHBOARD_CHROMIUM at one, or set SWITCHBOARD_SKIP_BROWSER=1.`,
      );
    }
    mkdirSync(OUTPUT, { recursive: true });
    // An upstream that sends its answer word by word, 60 ms apart, so streaming is visible.
    upstream = await startFakeOpenAI();
    admin = await adminTestApp(
      {
        ...ADMIN_CONFIG,
        providers: { upstream: { type: "openai", base_url: upstream.url, models: ["streaming-model"] } },
        accounting: { pricing: { "streaming-model": { input: 3, output: 15 } } },
        limits: {
          daily: { scope: "instance", window: "calendar-day", amount_usd: 5 },
          "per-actor": { scope: "actor", window: "rolling-7d", amount_usd: 1, purpose: "summaries" },
        },
      },
      { SWITCHBOARD_SECRETS_KEY: "cd".repeat(32) },
    );
    server = await startServer({ hub: admin.hub, port: 0 });
    base = server.url;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
      ],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    // Fail within the test's own timeout, with the step that did not happen.
    page.setDefaultTimeout(8_000);
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await admin?.close();
    await upstream?.close();
  });

  it("signs in with the root login link", async () => {
    const { token } = await admin.hub.logins.createLink("root");
    await page.goto(`${base}/-/login?token=${token}`);
    assert.equal(new URL(page.url()).pathname, "/-/");
    await page.getByText("Signed in as").waitFor();
    assert.ok(!page.url().includes(token), "the token is gone from the address bar");
    await shot("home");
  });

  it("assigns a model to a purpose", async () => {
    await open("/-/purposes/summaries");
    await page.locator("#field-model").fill("streaming-model");
    await page.getByRole("button", { name: "Save override" }).click();
    await page.getByText("Override of summaries saved.").waitFor();
    assert.equal((await admin.hub.model({ purpose: "summaries" })).id, "streaming-model");
    await shot("purpose");
    await open("/-/purposes");
    await shot("purposes");
  });

  it("streams a prompt in the playground", async () => {
    upstream.enqueue({ text: "Switchboards connected calls by hand, one cord at a time.", chunkDelayMs: 60 });
    await open("/-/playground");
    await page.locator("#pg-purpose").selectOption("summaries");
    await page.locator("#pg-prompt").fill("Tell me about switchboards and operators");
    // Count the answer's changes as they happen: a streamed answer grows in several steps.
    await page.evaluate(() => {
      const answer = document.getElementById("pg-answer") as HTMLElement & { growth?: number };
      answer.growth = 0;
      new MutationObserver(() => {
        answer.growth = (answer.growth ?? 0) + 1;
      }).observe(answer, { childList: true, characterData: true, subtree: true });
    });
    await page.getByRole("button", { name: "Run" }).click();
    await page.locator("#pg-stats:not([hidden])").waitFor();
    const growth = await page.evaluate(
      () => (document.getElementById("pg-answer") as { growth?: number }).growth,
    );
    assert.ok((growth ?? 0) >= 2, `the answer arrived in ${growth} steps`);
    assert.equal(await page.locator("#pg-stat-model").textContent(), "streaming-model");
    assert.equal(
      await page.locator("#pg-answer").textContent(),
      "Switchboards connected calls by hand, one cord at a time.",
    );
    await shot("playground");
  });

  it("finds the prompt's row in the log", async () => {
    const usageId = ((await page.locator("#pg-stat-log a").textContent()) ?? "").trim();
    assert.match(usageId, /^resp_/);
    await admin.hub.flush();
    await page.locator("#pg-stat-log a").click();
    await page.waitForURL(/\/-\/log\?actor=root/);
    const row = page.locator(`tr[id="${usageId}"]`);
    await row.waitFor();
    assert.match((await row.textContent()) ?? "", /streaming-model[\s\S]*ok/);
    await shot("log");
  });

  it("shows the prompt's usage in the chart", async () => {
    await admin.hub.flush();
    await open("/-/usage?range=24h");
    await page.waitForFunction(() => {
      const chart = document.getElementById("usage-tokens-chart") as { _u?: { data: number[][] } } | null;
      const data = chart?._u?.data;
      return (
        (data?.[0]?.length ?? 0) >= 2 &&
        Boolean(data?.slice(1).some((series) => series.some((value) => value > 0)))
      );
    });
    await shot("usage");
  });

  it("creates a token, shows its value once, and revokes it", async () => {
    await open("/-/tokens");
    await page.locator("#token-name").fill("ci-bot");
    await page.locator("#token-actor").fill("ci");
    await page.getByRole("checkbox", { name: "summaries" }).check();
    await page.getByRole("button", { name: "Create token" }).click();
    const value = ((await page.locator("#token-value").textContent()) ?? "").trim();
    assert.match(value, /^sb_/);
    await shot("token-created");
    await open("/-/tokens");
    assert.ok(!(await page.content()).includes(value), "the value is not shown again");
    await page.getByRole("button", { name: "Revoke token ci-bot" }).click();
    await page.getByText("Token ci-bot revoked.").waitFor();
    await shot("tokens");
  });

  it("sets a secret that is never shown", async () => {
    await open("/-/secrets");
    await page.locator("#secret-name").fill("OPENAI_API_KEY");
    await page.locator("#secret-value").fill(SECRET_VALUE);
    await page.getByRole("button", { name: "Store secret" }).click();
    await page.getByText("Secret OPENAI_API_KEY stored as version 1.").waitFor();
    assert.ok(!(await page.content()).includes(SECRET_VALUE));
    assert.equal(await admin.hub.secrets.peek("OPENAI_API_KEY"), SECRET_VALUE);
    await shot("secrets");
  });

  it("renders the remaining pages", async () => {
    for (const name of ["models", "limits", "audit"]) {
      await open(`/-/${name}`);
      assert.ok(!(await page.content()).includes(SECRET_VALUE));
      await shot(name);
    }
  });
});
