/**
 * Admin routes in-process (`app.request()`): sign-in, permissions for every page and POST, CSRF,
 * purpose overrides, secrets that never come back, tokens shown once, the playground stream.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AdminTestApp, adminTestApp, type Session } from "./helpers.ts";

const SECRETS_KEY = "ab".repeat(32);

/** Every admin page, and who may open it besides root. */
const PAGES: { path: string; viewer: boolean }[] = [
  { path: "/-/", viewer: true },
  { path: "/-/purposes", viewer: true },
  { path: "/-/purposes.json", viewer: true },
  { path: "/-/purposes/summaries", viewer: true },
  { path: "/-/models", viewer: true },
  { path: "/-/models.json", viewer: true },
  { path: "/-/usage", viewer: true },
  { path: "/-/usage.json", viewer: true },
  { path: "/-/usage.csv", viewer: true },
  { path: "/-/log", viewer: true },
  { path: "/-/limits", viewer: true },
  { path: "/-/playground", viewer: true },
  { path: "/-/tokens", viewer: false },
  { path: "/-/secrets", viewer: false },
  { path: "/-/audit", viewer: false },
];

/** Every admin POST, with fields that make it do its work, and whether a viewer may. */
const POSTS: { path: string; fields: Record<string, string>; viewer: boolean }[] = [
  { path: "/-/purposes/summaries", fields: { model: "markov" }, viewer: false },
  { path: "/-/purposes/summaries/reset", fields: {}, viewer: false },
  { path: "/-/secrets", fields: { name: "POSTED_KEY", value: "posted-value" }, viewer: false },
  { path: "/-/tokens", fields: { name: "posted-token", actor: "ci" }, viewer: false },
  { path: "/-/tokens/posted-token/revoke", fields: {}, viewer: false },
  { path: "/-/limits/top-up", fields: { actor: "posted-actor", amount: "1.5" }, viewer: false },
];

describe("admin routes", () => {
  let admin: AdminTestApp;
  let root: Session;
  let viewer: Session;
  let editor: Session;

  beforeAll(async () => {
    admin = await adminTestApp(undefined, { SWITCHBOARD_SECRETS_KEY: SECRETS_KEY });
    root = await admin.signIn("root");
    viewer = await admin.signIn("viewer");
    editor = await admin.signIn("editor");
  });
  afterAll(() => admin.close());

  describe("sign-in", () => {
    it("opens a session from a one-time link, once, and sends the token nowhere", async () => {
      const { token } = await admin.hub.logins.createLink("root");
      const first = await admin.app.request(`/-/login?token=${token}`);
      expect(first.status).toBe(303);
      expect(first.headers.get("location")).toBe("/-/");
      const cookie = first.headers.get("set-cookie") ?? "";
      expect(cookie).toMatch(/^sb_session=[^;]+;/);
      expect(cookie).toContain("HttpOnly");
      expect(cookie).toContain("SameSite=Lax");
      expect(cookie).not.toContain(token);
      const second = await admin.app.request(`/-/login?token=${token}`);
      expect(second.status).toBe(401);
      expect(await second.text()).not.toContain(token);
    });

    it("ignores a tampered session cookie", async () => {
      const forged = root.cookie.replace(/=(.)/, (_match, first: string) => `=${first === "A" ? "B" : "A"}`);
      const response = await admin.get("/-/purposes", { ...root, cookie: forged });
      expect(response.status).toBe(302);
    });

    it("signs out: the session stops working", async () => {
      const session = await admin.signIn("viewer");
      expect((await admin.post("/-/logout", session)).status).toBe(303);
      expect((await admin.get("/-/purposes", session)).status).toBe(302);
    });
  });

  describe("permissions", () => {
    it.each(PAGES)("anonymous visitors are sent to the login page from $path", async ({ path }) => {
      const response = await admin.get(path);
      if (path.endsWith(".json") || path.endsWith(".csv")) expect(response.status).toBe(401);
      else {
        expect(response.status).toBe(302);
        expect(response.headers.get("location")).toBe("/-/login");
      }
    });

    it.each(PAGES)("root opens $path", async ({ path }) => {
      expect((await admin.get(path, root)).status).toBe(200);
    });

    it.each(PAGES)(
      "a viewer gets $path only with permission (viewer: $viewer)",
      async ({ path, viewer: allowed }) => {
        expect((await admin.get(path, viewer)).status).toBe(allowed ? 200 : 403);
      },
    );

    it("lists only the pages the actor may open", async () => {
      const menu = (html: string) => {
        const nav = /<nav[\s\S]*<\/nav>/.exec(html)?.[0] ?? "";
        return [...nav.matchAll(/<li><a href="(\/-\/[a-z]+)"/g)].map((match) => match[1]);
      };
      expect(menu(await (await admin.get("/-/", viewer)).text())).toEqual([
        "/-/purposes",
        "/-/models",
        "/-/usage",
        "/-/log",
        "/-/limits",
        "/-/playground",
      ]);
      expect(menu(await (await admin.get("/-/", editor)).text())).toEqual([
        "/-/purposes",
        "/-/models",
        "/-/audit",
      ]);
      expect(menu(await (await admin.get("/-/", root)).text())).toHaveLength(9);
    });

    it.each(POSTS)(
      "POST $path: anonymous 403, viewer allowed: $viewer, root allowed",
      async ({ path, fields, viewer: allowed }) => {
        expect((await admin.post(path, undefined, fields)).status).toBe(403);
        expect((await admin.post(path, viewer, fields)).status).toBe(allowed ? 303 : 403);
        expect([200, 303]).toContain((await admin.post(path, root, fields)).status);
      },
    );
  });

  describe("CSRF", () => {
    it("refuses a POST without the session's token, with another session's token, or from another origin", async () => {
      const fields = { model: "markov" };
      expect((await admin.post("/-/purposes/summaries", root, fields, { csrf: false })).status).toBe(403);
      expect((await admin.post("/-/purposes/summaries", root, fields, { csrf: editor.csrf })).status).toBe(
        403,
      );
      expect(
        (await admin.post("/-/purposes/summaries", root, fields, { origin: "http://evil.example" })).status,
      ).toBe(403);
      expect((await admin.post("/-/purposes/summaries", root, fields, { origin: false })).status).toBe(403);
      expect(root.csrf).not.toBe("");
    });
  });

  describe("purposes", () => {
    it("an override saved in the form changes hub.model() and writes an audit row", async () => {
      const response = await admin.post("/-/purposes/summaries", editor, {
        model: "markov",
        fallbacks: "echo",
      });
      expect(response.status).toBe(303);
      expect((await admin.hub.model({ purpose: "summaries" })).id).toBe("markov");
      const [entry] = await admin.hub.audit.list({ target: "summaries", limit: 1 });
      expect(entry).toMatchObject({
        actor: "editor",
        action: "purpose.override",
        before: { model: "echo" },
        after: { model: "markov", fallbacks: ["echo"] },
      });
      const flash = (response.headers.get("set-cookie") ?? "").split(";")[0];
      const followed = await admin.get("/-/purposes/summaries", {
        ...editor,
        cookie: `${editor.cookie}; ${flash}`,
      });
      const page = await followed.text();
      expect(page).toContain("Override of summaries saved.");
      expect(page).toMatch(/<code>markov<\/code> <span class="source source-override">override<\/span>/);
      expect((await admin.post("/-/purposes/summaries/reset", editor)).status).toBe(303);
      expect((await admin.hub.model({ purpose: "summaries" })).id).toBe("echo");
    });

    it("refuses invalid values with each field's error next to it, and changes nothing", async () => {
      const response = await admin.post("/-/purposes/summaries", editor, {
        model: "no-such-model",
        models: "echo\nalso-missing",
      });
      expect(response.status).toBe(400);
      const page = await response.text();
      expect(page).toMatch(
        /id="field-model"[^>]*aria-invalid="true"[\s\S]*id="field-model-error">model: no model named &quot;no-such-model&quot;/,
      );
      expect(page).toContain('id="field-models-error">models: no model named &quot;also-missing&quot;');
      expect(page).toContain('value="no-such-model"');
      expect((await admin.hub.model({ purpose: "summaries" })).id).toBe("echo");
    });

    it("answers 404 for a purpose that does not exist", async () => {
      expect((await admin.get("/-/purposes/nope", root)).status).toBe(404);
      expect((await admin.post("/-/purposes/nope", root, { model: "echo" })).status).toBe(404);
    });
  });

  describe("secrets", () => {
    it("never shows a stored value in any response", async () => {
      const value = "sk-test-value-that-must-stay-hidden-1234";
      const stored = await admin.post("/-/secrets", root, { name: "OPENAI_API_KEY", value });
      expect(stored.status).toBe(303);
      const rejected = await admin.post("/-/secrets", root, { name: "bad name", value });
      expect(rejected.status).toBe(400);
      const bodies = [await rejected.text()];
      for (const { path } of PAGES) bodies.push(await (await admin.get(path, root)).text());
      for (const body of bodies) expect(body).not.toContain(value);
      expect(await admin.hub.secrets.peek("OPENAI_API_KEY")).toBe(value);
      const [entry] = await admin.hub.audit.list({ targetType: "secret", target: "OPENAI_API_KEY" });
      expect(entry).toMatchObject({ actor: "root", after: { version: 1 } });
      expect(JSON.stringify(entry)).not.toContain(value);
      const secrets = await (await admin.get("/-/secrets", root)).text();
      expect(secrets).toMatch(/<code>OPENAI_API_KEY<\/code>[\s\S]*stored \(encrypted\)/);
    });
  });

  describe("tokens", () => {
    it("shows a new token's value once, in the creating response only, and revokes it", async () => {
      const created = await admin.post("/-/tokens", root, {
        name: "ci-bot",
        actor: "ci",
        purposes: "summaries",
      });
      expect(created.status).toBe(200);
      const value = /<code id="token-value">(sb_[\w-]+)<\/code>/.exec(await created.text())?.[1] ?? "missing";
      expect((await admin.hub.tokens.verify(value)).ok).toBe(true);
      const listing = await (await admin.get("/-/tokens", root)).text();
      expect(listing).toContain("ci-bot");
      expect(listing).not.toContain(value);
      expect((await admin.post("/-/tokens/ci-bot/revoke", root)).status).toBe(303);
      expect(await admin.hub.tokens.verify(value)).toEqual({ ok: false, reason: "revoked" });
      expect(await (await admin.get("/-/tokens?status=revoked", root)).text()).toMatch(
        /ci-bot[\s\S]*revoked/,
      );
      const audit = await admin.hub.audit.list({ targetType: "token", target: "ci-bot" });
      expect(audit.map((entry) => entry.action)).toEqual(["token.revoke", "token.create"]);
      expect(JSON.stringify(audit)).not.toContain(value);
      expect(await (await admin.get("/-/audit", root)).text()).not.toContain(value);
    });
  });

  describe("playground", () => {
    it("streams the answer as the signed-in actor, then its usage", async () => {
      const response = await admin.app.request("/-/playground/run", {
        method: "POST",
        headers: { cookie: viewer.cookie, origin: "http://localhost", "x-csrf-token": viewer.csrf },
        body: new URLSearchParams({ purpose: "summaries", prompt: "hello playground", max_tokens: "100" }),
      });
      expect(response.headers.get("content-type")).toContain("text/event-stream");
      const text = await response.text();
      const events = [...text.matchAll(/event: (\w+)\ndata: (.*)\n/g)].map((match) => ({
        event: match[1],
        data: JSON.parse(match[2] as string) as Record<string, unknown>,
      }));
      expect(events[0]).toMatchObject({ event: "start", data: { model: "echo", purpose: "summaries" } });
      const streamed = events
        .filter((event) => event.event === "chunk")
        .map((event) => event.data.text)
        .join("");
      expect(streamed).toContain("hello playground");
      const done = events.at(-1);
      expect(done).toMatchObject({ event: "done", data: { model: "echo", inputTokens: 2, cost: "$0.00" } });
      await admin.hub.flush();
      const store = await admin.hub.store();
      const [row] = await store.listUsage({ limit: 1 });
      expect(row).toMatchObject({ id: done?.data.usageId, actorId: "viewer", purpose: "summaries" });
    });

    it("reports a refusal as an error event", async () => {
      const response = await admin.app.request("/-/playground/run", {
        method: "POST",
        headers: { cookie: viewer.cookie, origin: "http://localhost", "x-csrf-token": viewer.csrf },
        body: new URLSearchParams({ purpose: "summaries", model: "no-such-model", prompt: "hi" }),
      });
      expect(await response.text()).toMatch(/event: error\ndata: \{"code":"UNKNOWN_MODEL"/);
    });
  });

  describe("log", () => {
    it("lists responses newest first with chains grouped, and shows text only to view-prompts", async () => {
      const store = await admin.hub.store();
      const now = Date.now();
      const base = {
        modelRequested: "echo",
        modelAnswered: "echo",
        purpose: "extract",
        actorId: "log-actor",
        status: "ok" as const,
      };
      await store.insertUsage([
        { ...base, id: "log-single", createdAt: now - 3_000, prompt: "secret plans", response: "noted" },
        {
          ...base,
          id: "log-step-1",
          createdAt: now - 2_000,
          chainId: "chain-log",
          toolCalls: '[{"name":"lookup"}]',
        },
        { ...base, id: "log-step-2", createdAt: now - 1_000, chainId: "chain-log", modelAnswered: "markov" },
      ]);
      const asRoot = await (await admin.get("/-/log?actor=log-actor", root)).text();
      expect(asRoot.indexOf("chain-log")).toBeLessThan(asRoot.indexOf("log-single"));
      expect(asRoot).toMatch(/chain <code>chain-log<\/code>: 2 responses/);
      expect(asRoot.indexOf('id="log-step-1"')).toBeLessThan(asRoot.indexOf('id="log-step-2"'));
      expect(asRoot).toMatch(/<code>echo<\/code> → <code>markov<\/code>/);
      expect(asRoot).toContain("secret plans");
      const asViewer = await (await admin.get("/-/log?actor=log-actor", viewer)).text();
      expect(asViewer).toContain("log-single");
      expect(asViewer).not.toContain("secret plans");
      expect(asViewer).toContain("text hidden (needs view-prompts)");
    });

    it("pages with an opaque cursor, neither skipping nor repeating", async () => {
      const store = await admin.hub.store();
      const now = Date.now() - 60_000;
      await store.insertUsage(
        Array.from({ length: 60 }, (_, index) => ({
          id: `page-${String(index).padStart(2, "0")}`,
          createdAt: now + index,
          modelRequested: "echo",
          modelAnswered: "echo",
          actorId: "pager",
          status: "ok" as const,
        })),
      );
      const first = await (await admin.get("/-/log?actor=pager", root)).text();
      const next = /href="(\/-\/log\?[^"]*next=[^"]+)"/.exec(first)?.[1]?.replace(/&amp;/g, "&") ?? "";
      const second = await (await admin.get(next, root)).text();
      const ids = (html: string) => [...html.matchAll(/id="(page-\d\d)"/g)].map((match) => match[1]);
      expect(ids(first)).toHaveLength(50);
      expect(ids(first)[0]).toBe("page-59");
      expect([...ids(first), ...ids(second)]).toEqual(
        Array.from({ length: 60 }, (_, index) => `page-${String(59 - index).padStart(2, "0")}`),
      );
      expect(second).not.toContain('rel="next"');
    });
  });

  describe("limits", () => {
    it("tops up an allowance, audited, and shows it", async () => {
      const response = await admin.post("/-/limits/top-up", root, {
        actor: "budget-actor",
        amount: "2.5",
        note: "pilot",
      });
      expect(response.status).toBe(303);
      expect((await admin.hub.reports.allowance("budget-actor"))?.balance).toBe(250_000_000_000n);
      const [entry] = await admin.hub.audit.list({ targetType: "allowance", target: "budget-actor" });
      expect(entry).toMatchObject({
        actor: "root",
        action: "allowance.top-up",
        after: { balance: "$2.50", note: "pilot" },
      });
      const page = await (await admin.get("/-/limits?actor=budget-actor", viewer)).text();
      expect(page).toMatch(/budget-actor<\/td>\s*<td class="num">\$2\.50/);
      expect(page).not.toContain('action="/-/limits/top-up"');
      const refused = await admin.post("/-/limits/top-up", root, { actor: "budget-actor", amount: "zero" });
      expect(refused.status).toBe(400);
    });
  });

  describe("usage", () => {
    it("splits by actor into the top six and other, and every total is the sum of its buckets", async () => {
      const store = await admin.hub.store();
      const now = Date.now();
      await store.insertUsage(
        Array.from({ length: 80 }, (_, index) => ({
          id: `split-${index}`,
          createdAt: now - (index % 20) * 3_600_000,
          modelRequested: "echo",
          modelAnswered: "echo",
          purpose: "summaries",
          actorId: `split-actor-${index % 8}`,
          inputTokens: 1,
          outputTokens: 10 + (index % 8),
          costNanocents: BigInt(1000 * (index % 8)),
          status: "ok" as const,
        })),
      );
      const report = (await (
        await admin.get("/-/usage.json?range=24h&by=actor&purpose=summaries", root)
      ).json()) as {
        series: { key: string; totals: { outputTokens: number }; perBucket: { outputTokens: number }[] }[];
        totals: { outputTokens: number; responses: number };
        buckets: string[];
      };
      expect(report.series.map((entry) => entry.key)).toEqual([
        "split-actor-7",
        "split-actor-6",
        "split-actor-5",
        "split-actor-4",
        "split-actor-3",
        "split-actor-2",
        "(others)",
      ]);
      const perBucket = report.buckets.map((_, at) =>
        report.series.reduce((sum, entry) => sum + (entry.perBucket[at]?.outputTokens ?? 0), 0),
      );
      expect(perBucket.reduce((sum, value) => sum + value, 0)).toBe(report.totals.outputTokens);
      expect(report.series.reduce((sum, entry) => sum + entry.totals.outputTokens, 0)).toBe(
        report.totals.outputTokens,
      );
      // "(others)" is actors 0 and 1, ten responses each, and whatever else the summaries purpose has.
      const other = report.series.at(-1)?.totals.outputTokens ?? 0;
      expect(other).toBeGreaterThanOrEqual(10 * 10 + 10 * 11);
    });

    it("escapes cells a spreadsheet would run as formulas in the CSV", async () => {
      const store = await admin.hub.store();
      await store.insertUsage([
        {
          id: "csv-injection",
          createdAt: Date.now(),
          modelRequested: "echo",
          modelAnswered: "echo",
          purpose: "=HYPERLINK(1)",
          actorId: "a",
          inputTokens: 1,
          outputTokens: 1,
          status: "ok",
        },
      ]);
      const csv = await (await admin.get("/-/usage.csv", root)).text();
      expect(csv.split("\n")[0]).toBe(
        "bucket_start_utc,purpose,requests,errors,input_tokens,output_tokens,cached_tokens,cost_usd",
      );
      expect(csv).toContain(",'=HYPERLINK(1),");
    });
  });

  describe("paths", () => {
    it("leaves the data tools' /-/ pages to them", async () => {
      const { isAdminPath } = await import("../../src/admin/index.ts");
      expect(isAdminPath("/-/")).toBe(true);
      expect(isAdminPath("/-/usage.csv")).toBe(true);
      expect(isAdminPath("/-/purposes/summaries/reset")).toBe(true);
      expect(isAdminPath("/-/enrich/library/-/jobs/1")).toBe(false);
      expect(isAdminPath("/-/logbook")).toBe(false);
      // Not an admin page: the app's own 404, not a redirect to the login page.
      expect((await admin.get("/-/enrich/nowhere")).status).toBe(404);
    });
  });

  describe("headers", () => {
    it("sends a strict CSP, same-origin referrers and no-store on pages", async () => {
      const response = await admin.get("/-/purposes", root);
      expect(response.headers.get("referrer-policy")).toBe("same-origin");
      expect(response.headers.get("content-security-policy")).toContain("script-src 'self'");
      expect(response.headers.get("cache-control")).toBe("no-store");
      const page = await response.text();
      const stylesheet = /href="(\/-\/static\/admin-[0-9a-f]+\.css)"/.exec(page)?.[1] ?? "";
      const asset = await admin.get(stylesheet);
      expect(asset.status).toBe(200);
      expect(asset.headers.get("cache-control")).toContain("immutable");
    });
  });
});
