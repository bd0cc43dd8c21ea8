import { Enrichments } from "@switchboard/data";
import type { Hub } from "@switchboard/hub";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { createApp } from "../src/app.ts";
import { tildeDecode, tildeEncode } from "../src/data-pages/index.ts";
import { dataHub, libraryDatabase, Session, testPages, waitFor } from "./data-pages-helpers.ts";

const hubs: Hub[] = [];
afterEach(async () => {
  await Promise.all(hubs.splice(0).map((hub) => hub.close()));
});

async function setup(config = {}, can?: Parameters<typeof testPages>[2]) {
  const database = libraryDatabase();
  const hub = await dataHub(config);
  hubs.push(hub);
  return { database, hub, app: testPages(hub, database, can) };
}

// biome-ignore lint/suspicious/noExplicitAny: the tests read JSON answers loosely
type JsonBody = Record<string, any>;
const json = async (response: Response) => (await response.json()) as JsonBody;

describe("tilde encoding", () => {
  it("encodes dots, slashes and spaces so names survive in paths, and decodes back", () => {
    expect(tildeEncode("my table.v2/x")).toBe("my+table~2Ev2~2Fx");
    expect(tildeDecode("my+table~2Ev2~2Fx")).toBe("my table.v2/x");
    expect(tildeDecode(tildeEncode("é ~ ü"))).toBe("é ~ ü");
  });
});

describe("database and table pages", () => {
  it("/<db> lists tables with row counts and hides _-prefixed tables; .json twin", async () => {
    const { app } = await setup();
    const page = await app.request("/library");
    expect(page.status).toBe(200);
    const text = await page.text();
    expect(text).toContain('<a href="/library/books">books</a></td><td>250</td>');
    expect(text).toContain("/library/my+table~2Ev2");
    expect(text).not.toContain("_notes");
    const body = await json(await app.request("/library.json"));
    expect(body.tables.map((table: { name: string; rows: number }) => [table.name, table.rows])).toEqual([
      ["books", 250],
      ["my table.v2", 1],
    ]);
    expect((await app.request("/nosuch")).status).toBe(404);
  });

  it("pages through every row exactly once with keyset _next tokens, sorted or not", async () => {
    const { app } = await setup();
    for (const query of ["", "_sort=series", "_sort_desc=series", "_sort=title"]) {
      const seen: string[] = [];
      let url: string | null = `/library/books.json?_size=40${query ? `&${query}` : ""}`;
      let pages = 0;
      while (url) {
        const body: JsonBody = await json(await app.request(url));
        seen.push(
          ...body.rows.map((row: { shelf: string; position: number }) => `${row.shelf}:${row.position}`),
        );
        url = body.next_url;
        pages++;
      }
      expect(pages, query).toBe(7);
      expect(new Set(seen).size, query).toBe(250);
      expect(seen.length, query).toBe(250);
    }
    const sorted = await json(await app.request("/library/books.json?_sort_desc=position&_size=3"));
    expect(sorted.rows.map((row: { position: number }) => row.position)).toEqual([249, 248, 247]);
    expect(sorted.next).toEqual(expect.any(String));
  });

  it("shows rows with sort links and a next link; a tilde-encoded table name works", async () => {
    const { app } = await setup();
    const page = await app.request("/library/books?_size=10");
    const text = await page.text();
    expect(text).toContain("250 rows");
    expect(text).toContain('href="/library/books?_sort=title&amp;_size=10"');
    expect(text).toMatch(/rel="next" href="\/library\/books\?_size=10&amp;_next=/);
    const odd = await app.request("/library/my+table~2Ev2");
    expect(odd.status).toBe(200);
    expect(await odd.text()).toContain("only row");
    expect((await app.request("/library/books?_sort=nosuch")).status).toBe(400);
  });

  it("mounts on the server app only for the databases served, after the gateway's routes", async () => {
    const { hub, database } = await setup();
    const app = createApp({ hub, databases: [database] });
    expect((await app.request("/library")).status).toBe(200);
    expect((await app.request("/health")).status).toBe(200);
    expect((await createApp({ hub }).request("/library")).status).toBe(404);
  });
});

describe("enrichment pages", () => {
  const allowAlice = (_action: string, actor: { id: string } | undefined) => actor?.id === "alice";

  it("the form previews the first row's prompt and offers only the purpose's allowed models", async () => {
    const { app } = await setup({ purposes: { enrichments: { models: ["echo", "slow-echo"] } } });
    const text = await (
      await app.request(
        "/-/enrich/library/books?prompt=Summarize%20%7B%7B%20title%20%7D%7D%20(%7B%7B%20series%20%7D%7D)",
      )
    ).text();
    expect(text).toContain("Summarize Title 0 ()</pre>");
    expect(text).toContain('<option value="echo"');
    expect(text).toContain('<option value="slow-echo"');
    expect(text).not.toContain('<option value="echo-schema"');
    const preview = await json(
      await app.request("/-/enrich/library/books/-/preview?prompt=%7B%7B%20nosuch%20%7D%7D"),
    );
    expect(preview.ok).toBe(false);
    expect(preview.error).toContain("nosuch");
  });

  it("refuses a POST without the CSRF token, and an actor without the enrich permission", async () => {
    const { app, database } = await setup({}, allowAlice);
    const fields = { prompt: "{{ title }}", output: "note" };
    const alice = new Session(app, "alice");
    expect((await alice.post("/-/enrich/library/books", fields)).status).toBe(403);
    const token = await alice.token("/-/enrich/library/books");
    expect((await alice.post("/-/enrich/library/books", { ...fields, csrf: "forged" })).status).toBe(403);
    const bob = new Session(app, "bob");
    const bobToken = await bob.token("/-/enrich/library/books");
    const refused = await bob.post("/-/enrich/library/books", { ...fields, csrf: bobToken });
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain("bob");
    // Alice's token in Bob's session is refused too: the token is bound to the cookie.
    const crossed = await bob.post("/-/enrich/library/books", { ...fields, csrf: token });
    expect(crossed.status).toBe(403);
    const db = new Database(database, { readonly: true });
    expect(
      db.prepare("SELECT name FROM sqlite_master WHERE name = '_switchboard_enrich_jobs'").get(),
    ).toBeUndefined();
    db.close();
  });

  it("without a permissions setting, anonymous users cannot start jobs", async () => {
    const { app } = await setup();
    const anonymous = new Session(app);
    const token = await anonymous.token("/-/enrich/library/books");
    const response = await anonymous.post("/-/enrich/library/books", {
      prompt: "{{ title }}",
      output: "note",
      csrf: token,
    });
    expect(response.status).toBe(403);
    expect(await response.text()).toContain("An anonymous user may not enrich");
  });

  it("a POST starts a job and redirects to its page, whose .json twin reaches 100 %", async () => {
    const { app, database } = await setup({}, allowAlice);
    const alice = new Session(app, "alice");
    const token = await alice.token("/-/enrich/library/books");
    const started = await alice.post("/-/enrich/library/books", {
      prompt: "About {{ title }}",
      output: "note",
      model: "echo",
      csrf: token,
    });
    expect(started.status).toBe(303);
    const location = started.headers.get("location") ?? "";
    expect(location).toMatch(/^\/-\/enrich\/library\/-\/jobs\/\d+$/);
    const done = await waitFor(async () => {
      const body = await json(await alice.get(`${location}.json`));
      return body.is_complete ? body : undefined;
    }, "the job to finish");
    expect(done).toMatchObject({ status: "finished", percent: 100, done: 250, errors: 0, total: 250 });
    const page = await (await alice.get(location)).text();
    expect(page).toContain('role="progressbar"');
    expect(page).toContain('aria-valuenow="100"');
    const db = new Database(database, { readonly: true });
    expect(db.prepare("SELECT count(*) AS n FROM books WHERE note LIKE '%About Title%'").get()).toEqual({
      n: 250,
    });
    db.close();
    const table = await (await alice.get("/library/books?_size=5")).text();
    expect(table).toContain('class="enriched"><a href="/library/books?_sort=note');
    const list = await json(await alice.get("/-/enrich/library/-/jobs.json"));
    expect(list.jobs).toHaveLength(1);
    expect((await alice.get("/-/enrich/library/-/jobs")).status).toBe(200);
  });

  it("a bad template re-renders the form with the error", async () => {
    const { app } = await setup({}, allowAlice);
    const alice = new Session(app, "alice");
    const token = await alice.token("/-/enrich/library/books");
    const response = await alice.post("/-/enrich/library/books", {
      prompt: "{{ nosuch }}",
      output: "note",
      csrf: token,
    });
    expect(response.status).toBe(400);
    expect(await response.text()).toContain("nosuch");
  });

  it("pause, resume and cancel are POST forms checked for the token and the permission", async () => {
    const { app, hub, database } = await setup({}, allowAlice);
    const enrichments = new Enrichments({ hub, database });
    const job = await enrichments.create(
      { table: "books", prompt: "{{ title }}", outputColumn: "note" },
      { id: "alice" },
    );
    enrichments.close();
    const path = `/-/enrich/library/-/jobs/${job.id}`;
    const alice = new Session(app, "alice");
    const bob = new Session(app, "bob");
    const page = await (await alice.get(path)).text();
    expect(page).toContain(`Pause job ${job.id}`);
    expect(page).toContain(`Cancel job ${job.id}`);
    expect(await (await bob.get(path)).text()).not.toContain(`Pause job ${job.id}`);
    const token = await alice.token(path);
    expect((await alice.post(`${path}/pause`, {})).status).toBe(403);
    const bobToken = await bob.token("/-/enrich/library/books");
    expect((await bob.post(`${path}/pause`, { csrf: bobToken })).status).toBe(403);
    const paused = await alice.post(`${path}/pause`, { csrf: token });
    expect(paused.status).toBe(303);
    expect((await json(await alice.get(`${path}.json`))).status).toBe("paused");
    expect(await (await alice.get(paused.headers.get("location") ?? "")).text()).toContain(
      "The job is pausing",
    );
    expect((await alice.post(`${path}/resume`, { csrf: token })).status).toBe(303);
    const finished = await waitFor(async () => {
      const body = await json(await alice.get(`${path}.json`));
      return body.is_complete ? body : undefined;
    }, "the resumed job to finish");
    expect(finished.status).toBe("finished");
    const cancelFinished = await alice.post(`${path}/cancel`, { csrf: token });
    expect(cancelFinished.status).toBe(400);
    expect(await cancelFinished.text()).toContain("finished");
    expect((await alice.post("/-/enrich/library/-/jobs/999/cancel", { csrf: token })).status).toBe(404);
  });
});

describe("extraction pages", () => {
  it("prefills columns from an existing table, extracts pasted text and shows the run record", async () => {
    const { app, database } = await setup(
      {},
      (action, actor) => action === "extract" && actor?.id === "alice",
    );
    const alice = new Session(app, "alice");
    const form = await (await alice.get("/library/books/-/extract")).text();
    expect(form).toContain("shelf:string\nposition:integer\ntitle:string\nseries:string</textarea>");
    const token = await alice.token("/library/-/extract");
    const raw = JSON.stringify({
      items: [
        { name: "Ada\u0000", born: 1815 },
        { name: "Ada\u0000", born: 1815 },
        { name: "Mary", born: 1797 },
      ],
    });
    const fields = {
      table: "people",
      fields: "name:string\nborn:integer",
      text: JSON.stringify({ raw }),
      csrf: token,
    };
    expect((await new Session(app, "bob").post("/library/-/extract", fields)).status).toBe(403);
    expect((await alice.post("/library/-/extract", { ...fields, csrf: "x" })).status).toBe(403);
    const response = await alice.post("/library/-/extract", fields);
    expect(response.status).toBe(303);
    const location = response.headers.get("location") ?? "";
    expect(location).toMatch(/^\/library\/-\/extract\/.+/);
    const run = await waitFor(async () => {
      const body = await json(await alice.get(`${location}.json`));
      return body.done ? body : undefined;
    }, "the extraction to finish");
    expect(run).toMatchObject({ status: "finished", item_count: 2, table: "people", model: "echo-schema" });
    expect(await (await alice.get(location)).text()).toContain("rows inserted");
    const db = new Database(database, { readonly: true });
    expect(db.prepare("SELECT name, born FROM people ORDER BY born").all()).toEqual([
      { name: "Mary", born: 1797 },
      { name: "Ada", born: 1815 },
    ]);
    db.close();
  });

  it("shows a clear error when no model of the extract purpose supports schemas", async () => {
    const { app } = await setup({ purposes: { extract: { models: ["echo"] } } }, () => true);
    const alice = new Session(app, "alice");
    const token = await alice.token("/library/-/extract");
    const response = await alice.post("/library/-/extract", {
      table: "people",
      fields: "name:string",
      text: "Ada",
      csrf: token,
    });
    expect(response.status).toBe(400);
    expect(await response.text()).toContain("supports JSON schemas");
  });
});

describe("SQL assistant page", () => {
  it("turns a question into a read-only query with its explanation and results; refuses without permission", async () => {
    const { app } = await setup({}, (action, actor) => action === "ask" && actor?.id === "alice");
    const alice = new Session(app, "alice");
    const token = await alice.token("/library/-/assistant");
    const question = JSON.stringify({
      raw: "```sql\nSELECT shelf, count(*) AS n FROM books GROUP BY shelf ORDER BY shelf\n```\nCounts books per shelf.",
    });
    expect(
      (await new Session(app, "bob").post("/library/-/assistant", { question, csrf: token })).status,
    ).toBe(403);
    const response = await alice.post("/library/-/assistant", { question, table: "books", csrf: token });
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).toContain("SELECT shelf, count(*) AS n FROM books GROUP BY shelf ORDER BY shelf</pre>");
    expect(text).toContain("Counts books per shelf.");
    expect(text).toContain("<td>A</td><td>125</td>");
    const refused = await alice.post("/library/-/assistant", {
      question: JSON.stringify({ raw: "```sql\nDELETE FROM books\n```\nDeletes." }),
      csrf: token,
    });
    expect(await refused.text()).toContain("No valid query");
    expect((await alice.post("/library/-/assistant", { question: " ", csrf: token })).status).toBe(400);
  });
});
