/**
 * One run in a real browser (Debian's chromium through playwright-core): start an enrichment from
 * the form and watch the job page's progress bar, polling its `.json` twin, reach 100 %.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import type { Hub } from "@switchboard/hub";
import Database from "better-sqlite3";
import { chromium } from "playwright-core";
import { afterAll, beforeAll, it } from "vitest";
import { dataHub, libraryDatabase, testPages } from "./data-pages-helpers.ts";

const CHROMIUM = "/usr/bin/chromium";
const SHOTS = join(import.meta.dirname, "../../../test-output/data-pages");

let hub: Hub;
let server: Server;
let url: string;
let database: string;

beforeAll(async () => {
  // Slow enough rows that the bar is seen moving before it is full.
  process.env.SLOW_ECHO_MS = "15";
  database = libraryDatabase();
  hub = await dataHub({ purposes: { enrichments: { models: ["slow-echo", "echo"] } } });
  const app = testPages(hub, database, (_action, actor) => actor?.id === "alice");
  // The browser carries no session yet: every request acts as alice.
  server = await new Promise<Server>((resolve) => {
    const started = serve(
      {
        fetch: (request) => {
          const headers = new Headers(request.headers);
          headers.set("x-test-actor", "alice");
          return app.fetch(new Request(request, { headers }));
        },
        port: 0,
        hostname: "127.0.0.1",
      },
      () => resolve(started as Server),
    ) as Server;
  });
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  mkdirSync(SHOTS, { recursive: true });
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await hub?.close();
});

it.skipIf(!existsSync(CHROMIUM))(
  "starts an enrichment from the form and its progress reaches 100 % (needs /usr/bin/chromium)",
  { timeout: 60_000 },
  async () => {
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
      await page.goto(`${url}/library/books?_size=10`);
      await page.getByRole("link", { name: "Enrich this table" }).click();
      await page.getByLabel("Prompt template").fill("One line about {{ title }}");
      await page.getByLabel("Output column").fill("note");
      await page.getByLabel("Rows at once").fill("2");
      await page.getByLabel("Model").selectOption("slow-echo");
      // The preview follows the template as it is typed.
      await page.waitForFunction(
        () => document.getElementById("preview")?.textContent === "One line about Title 0",
      );
      await page.screenshot({ path: join(SHOTS, "enrich-form.png"), fullPage: true });
      await page.getByRole("button", { name: "Start enrichment" }).click();
      await page.waitForURL(/\/-\/enrich\/library\/-\/jobs\/\d+$/);
      const bar = page.getByRole("progressbar", { name: "Rows enriched" });
      await page.waitForFunction(() => {
        const value = Number(document.getElementById("progress")?.getAttribute("aria-valuenow"));
        return value > 0 && value < 100;
      });
      await page.screenshot({ path: join(SHOTS, "job-running.png"), fullPage: true });
      await page.waitForFunction(
        () => document.getElementById("progress")?.getAttribute("aria-valuenow") === "100",
        undefined,
        { timeout: 30_000 },
      );
      await page.getByText("finished", { exact: true }).waitFor();
      assert.equal(await bar.getAttribute("aria-valuenow"), "100");
      await page.screenshot({ path: join(SHOTS, "job-finished.png"), fullPage: true });
      await page.goto(`${url}/library/books?_size=10`);
      await page.screenshot({ path: join(SHOTS, "table-enriched.png"), fullPage: true });
    } finally {
      await browser.close();
    }
    const db = new Database(database, { readonly: true });
    const { n } = db
      .prepare("SELECT count(*) AS n FROM books WHERE note LIKE 'done:One line about%'")
      .get() as {
      n: number;
    };
    db.close();
    assert.equal(n, 250);
  },
);
