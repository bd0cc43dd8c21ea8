import { isSwitchboardError } from "@switchboard/core";
import { type FakeServer, startFakeOpenAI } from "@switchboard/core/testing";
import type { Hub } from "@switchboard/hub";
import Database from "better-sqlite3";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { checkReadOnlySql, SqlAssistant, splitReply } from "../src/index.ts";
import { databaseWith, promptRecorder, query, testHub } from "./helpers.ts";

const LIBRARY_SQL = `
CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT);
CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT, year INTEGER, author_id INTEGER REFERENCES authors(id));
CREATE TABLE reviews (id INTEGER PRIMARY KEY, book_id INTEGER REFERENCES books(id), stars INTEGER);
CREATE TABLE planets (name TEXT PRIMARY KEY, moons INTEGER);
INSERT INTO authors VALUES (1, 'Jane Austen'), (2, 'Mary Shelley');
INSERT INTO books VALUES (1, 'Emma', 1815, 1), (2, 'Frankenstein', 1818, 2), (3, 'Persuasion', 1817, 1);
INSERT INTO planets VALUES ('Mars', 2);
`;

describe("read-only checks", () => {
  const database = databaseWith(LIBRARY_SQL);
  const db = new Database(database, { readonly: true });
  afterAll(() => db.close());

  it("allows SELECT and WITH … SELECT", () => {
    expect(() => checkReadOnlySql(db, "SELECT * FROM books")).not.toThrow();
    expect(() =>
      checkReadOnlySql(db, "-- newest\n/* first */ SELECT title FROM books ORDER BY year DESC;"),
    ).not.toThrow();
    expect(() =>
      checkReadOnlySql(db, "WITH old AS (SELECT * FROM books WHERE year < 1817) SELECT title FROM old"),
    ).not.toThrow();
  });

  it.each([
    ["DELETE FROM books", "starts with DELETE"],
    ["ATTACH DATABASE '/tmp/x.db' AS x", "starts with ATTACH"],
    ["PRAGMA user_version = 5", "starts with PRAGMA"],
    ["SELECT 1; DELETE FROM books", "more than one statement"],
    ["WITH gone AS (SELECT 1) DELETE FROM books", "read-only query that returns rows"],
    ["/* sneaky */ UPDATE books SET year = 0", "starts with UPDATE"],
    ["SELECT nope FROM books", "no such column: nope"],
  ])("refuses %s", (sql, reason) => {
    const error = (() => {
      try {
        checkReadOnlySql(db, sql);
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(isSwitchboardError(error, "INVALID_INPUT")).toBe(true);
    expect((error as Error).message).toContain(reason);
  });

  it("splits a reply into the fenced query and its explanation", () => {
    expect(splitReply("Here:\n```sql\nSELECT 1\n```\nIt selects one.")).toEqual({
      sql: "SELECT 1",
      explanation: "Here:\n\nIt selects one.",
    });
    expect(splitReply("SELECT 2")).toEqual({ sql: "SELECT 2", explanation: "" });
  });
});

describe("SQL assistant", () => {
  let fake: FakeServer;
  const hubs: Hub[] = [];
  const assistants: SqlAssistant[] = [];
  beforeAll(async () => {
    fake = await startFakeOpenAI();
  });
  afterAll(async () => {
    await fake.close();
  });
  beforeEach(() => fake.reset());
  afterEach(async () => {
    for (const assistant of assistants.splice(0)) assistant.close();
    await Promise.all(hubs.splice(0).map((hub) => hub.close()));
  });

  async function open(database: string, plugins: Parameters<typeof testHub>[1] = []) {
    const hub = await testHub(
      {
        default_model: "echo",
        require_keys: false,
        providers: { fake: { type: "openai", base_url: fake.url, models: ["fake-sql"] } },
        purposes: { "sql-assistant": { model: "fake-sql" } },
      },
      plugins,
    );
    hubs.push(hub);
    const assistant = new SqlAssistant({ hub, database });
    assistants.push(assistant);
    return assistant;
  }

  it("limits the schema to the table and the tables related to it by foreign keys, both ways", async () => {
    const database = databaseWith(LIBRARY_SQL);
    const assistant = await open(database);
    expect(assistant.relatedTables("reviews").sort()).toEqual(["authors", "books", "reviews"]);
    expect(assistant.relatedTables("authors").sort()).toEqual(["authors", "books", "reviews"]);
    expect(assistant.relatedTables("planets")).toEqual(["planets"]);
    fake.enqueue({ text: "```sql\nSELECT title FROM books\n```\nAll titles." });
    const answer = await assistant.ask({ question: "Which books?", table: "authors" }, undefined);
    expect(answer.tables).toEqual(["authors", "books", "reviews"]);
    const system = fake.requests[0]?.body.messages[0].content as string;
    expect(system).toContain("CREATE TABLE books");
    expect(system).toContain("CREATE TABLE reviews");
    expect(system).not.toContain("planets");
    expect(fake.requests[0]?.body.messages.at(-1)).toMatchObject({ role: "user", content: "Which books?" });
  });

  it("sends an invalid query back with its error and accepts the corrected one", async () => {
    const database = databaseWith(LIBRARY_SQL);
    const recorder = promptRecorder();
    const assistant = await open(database, [recorder]);
    fake.enqueue(
      { text: "```sql\nSELECT nope FROM books\n```" },
      {
        text: "Sorry.\n```sql\nSELECT title FROM books WHERE year > 1816 ORDER BY year\n```\nBooks after 1816.",
      },
    );
    const answer = await assistant.ask({ question: "Books after 1816?" }, { id: "alice" });
    expect(answer).toMatchObject({
      valid: true,
      sql: "SELECT title FROM books WHERE year > 1816 ORDER BY year",
      explanation: "Sorry.\n\nBooks after 1816.",
      model: "fake-sql",
    });
    expect(answer.attempts).toHaveLength(2);
    expect(answer.attempts[0]?.error).toContain("no such column: nope");
    const retry = fake.requests[1]?.body.messages as { role: string; content: string }[];
    expect(retry.at(-1)?.content).toContain("Error: SQLite refused the query: no such column: nope");
    expect(retry.some((message) => message.content === "Books after 1816?")).toBe(true);
    expect(recorder.seen.every((seen) => seen.actor === "alice" && seen.purpose === "sql-assistant")).toBe(
      true,
    );
    const result = await assistant.run(answer.sql, { id: "alice" });
    expect(result).toEqual({
      columns: ["title"],
      rows: [["Persuasion"], ["Frankenstein"]],
      truncated: false,
    });
  });

  it("refuses DELETE and ATTACH replies, gives up after three retries, and allows WITH", async () => {
    const database = databaseWith(LIBRARY_SQL);
    const assistant = await open(database);
    fake.enqueue(
      { text: "```sql\nDELETE FROM books\n```" },
      { text: "```sql\nATTACH DATABASE 'x.db' AS x\n```" },
      { text: "```sql\nDELETE FROM books\n```" },
      { text: "```sql\nDROP TABLE books\n```" },
    );
    const refused = await assistant.ask({ question: "Remove the books" }, undefined);
    expect(refused.valid).toBe(false);
    expect(refused.attempts.map((attempt) => attempt.error?.match(/starts with (\w+)/)?.[1])).toEqual([
      "DELETE",
      "ATTACH",
      "DELETE",
      "DROP",
    ]);
    expect(refused.error).toContain("starts with DROP");
    expect(query(database, "SELECT count(*) AS n FROM books")[0]?.n).toBe(3);
    await expect(assistant.run("DELETE FROM books", undefined)).rejects.toThrow("starts with DELETE");

    fake.enqueue({
      text: "```sql\nWITH counts AS (SELECT author_id, count(*) AS n FROM books GROUP BY author_id)\nSELECT name, n FROM counts JOIN authors ON authors.id = counts.author_id ORDER BY n DESC\n```",
    });
    const withQuery = await assistant.ask({ question: "Books per author?" }, undefined);
    expect(withQuery.valid).toBe(true);
    expect((await assistant.run(withQuery.sql, undefined)).rows).toEqual([
      ["Jane Austen", 2],
      ["Mary Shelley", 1],
    ]);
  });

  it("checks the ask permission", async () => {
    const database = databaseWith(LIBRARY_SQL);
    const hub = await testHub({ default_model: "echo" });
    hubs.push(hub);
    const assistant = new SqlAssistant({
      hub,
      database,
      can: (action, actor) => action === "ask" && actor?.id === "alice",
    });
    assistants.push(assistant);
    await expect(assistant.ask({ question: "x" }, { id: "bob" })).rejects.toThrow('"bob" may not ask');
    await expect(assistant.run("SELECT 1", undefined)).rejects.toThrow("may not ask");
    expect((await assistant.run("SELECT 1 AS one", { id: "alice" })).rows).toEqual([[1]]);
  });
});
