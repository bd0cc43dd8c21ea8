import { isSwitchboardError } from "@switchboard/core";
import { type FakeServer, startFakeOpenAI } from "@switchboard/core/testing";
import type { Hub } from "@switchboard/hub";
import Database from "better-sqlite3";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  Extraction,
  type ExtractionRun,
  extractionSchema,
  ItemStreamParser,
  parseField,
} from "../src/index.ts";
import { databaseWith, promptRecorder, query, testHub } from "./helpers.ts";

describe("ItemStreamParser", () => {
  const document = JSON.stringify({
    note: { items: [{ ignored: true }] },
    items: [
      { name: 'Ada "the first" {Lovelace}', tags: ["a", "[b]"], nested: { deep: [1, { x: "}" }] } },
      { name: "Alan\\Turing", age: 41 },
    ],
    after: [{ also: "ignored" }],
  });

  it("hands over each item of `items` as soon as its closing brace arrives, however the text is cut", () => {
    const expected = (JSON.parse(document) as { items: unknown[] }).items;
    for (let size = 1; size <= 7; size++) {
      const parser = new ItemStreamParser();
      const items: unknown[] = [];
      for (let index = 0; index < document.length; index += size)
        items.push(...parser.push(document.slice(index, index + size)));
      expect(items).toEqual(expected);
      expect(parser.complete).toBe(true);
    }
  });

  it("emits the first item before the rest of the reply exists", () => {
    const parser = new ItemStreamParser();
    expect(parser.push('{"items": [{"name": "Ada"')).toEqual([]);
    expect(parser.push('}, {"name": "Al')).toEqual([{ name: "Ada" }]);
    expect(parser.complete).toBe(false);
    expect(parser.push('an"}]}')).toEqual([{ name: "Alan" }]);
    expect(parser.complete).toBe(true);
  });

  it("reads a top-level array of items too", () => {
    expect(new ItemStreamParser().push('[{"a": 1}, {"b": [2]}]')).toEqual([{ a: 1 }, { b: [2] }]);
  });
});

describe("fields and schema", () => {
  it("parses NAME:TYPE[:DESCRIPTION] and builds the {items: [...]} schema", () => {
    expect(parseField("age:int")).toEqual({ name: "age", type: "integer" });
    expect(parseField("name")).toEqual({ name: "name", type: "string" });
    expect(parseField("born:string:year: as written")).toEqual({
      name: "born",
      type: "string",
      description: "year: as written",
    });
    expect(() => parseField("x:date")).toThrow("TYPE one of string, integer, number, boolean");
    expect(extractionSchema([{ name: "age", type: "integer" }])).toEqual({
      type: "object",
      description: "Extracted records",
      properties: {
        items: {
          type: "array",
          items: { type: "object", properties: { age: { type: "integer" } }, required: ["age"] },
        },
      },
      required: ["items"],
    });
  });
});

describe("extraction", () => {
  let fake: FakeServer;
  const hubs: Hub[] = [];
  const opened: Extraction[] = [];
  beforeAll(async () => {
    fake = await startFakeOpenAI();
  });
  afterAll(async () => {
    await fake.close();
  });
  beforeEach(() => fake.reset());
  afterEach(async () => {
    for (const extraction of opened.splice(0)) extraction.close();
    await Promise.all(hubs.splice(0).map((hub) => hub.close()));
  });

  async function open(database: string, plugins: Parameters<typeof testHub>[1] = []) {
    const hub = await testHub(
      {
        default_model: "echo",
        require_keys: false,
        providers: {
          fake: { type: "openai", base_url: fake.url, models: [{ id: "fake-schema", schema: true }] },
        },
      },
      plugins,
    );
    hubs.push(hub);
    const extraction = new Extraction({ hub, database });
    opened.push(extraction);
    return extraction;
  }

  const people =
    '{"items": [{"name": "Ada", "age": 36}, {"name": "Al\\u0000an", "age": 41}, {"name": "Ada", "age": 36}]}';

  it("creates a table and inserts rows as the streamed reply arrives: deduplicated, NUL bytes removed", async () => {
    const database = databaseWith("CREATE TABLE other (x)");
    const recorder = promptRecorder();
    const extraction = await open(database, [recorder]);
    fake.enqueue({
      text: [
        '{"items": [{"na',
        'me": "Ada", "age": 36}, {"name": "Al\\u0000an", ',
        '"age": 41}, {"name": "Ada", "age": 36}]}',
      ],
    });
    const seenWhileStreaming: { status: string; itemCount: number }[] = [];
    const run = await extraction.run(
      {
        table: "people",
        fields: [parseField("name:string:full name"), parseField("age:integer")],
        instructions: "Only adults.",
        onItem: () => {
          const record = extraction.runs()[0] as ExtractionRun;
          seenWhileStreaming.push({ status: record.status, itemCount: record.itemCount });
        },
      },
      { text: "Ada was 36. Alan was 41.", source: "people.txt" },
      { id: "alice" },
    );
    expect(run).toMatchObject({
      table: "people",
      status: "finished",
      model: "fake-schema",
      instructions: "Only adults.",
      itemCount: 2,
      source: "people.txt",
      actorId: "alice",
      fields: [
        { name: "name", type: "string", description: "full name" },
        { name: "age", type: "integer" },
      ],
    });
    expect(seenWhileStreaming).toEqual([
      { status: "running", itemCount: 1 },
      { status: "running", itemCount: 2 },
    ]);
    expect(query(database, "SELECT name, age FROM people ORDER BY rowid")).toEqual([
      { name: "Ada", age: 36 },
      { name: "Alan", age: 41 },
    ]);
    const body = fake.requests[0]?.body;
    expect(body.response_format.json_schema.schema.properties.items.items.required).toEqual(["name", "age"]);
    expect(body.messages[0]).toMatchObject({ role: "system" });
    expect(body.messages[0].content).toContain("Only adults.");
    expect(recorder.seen).toEqual([{ actor: "alice", purpose: "extract" }]);
  });

  it("fills an existing table from its own columns, adding a column a new field needs", async () => {
    const database = databaseWith(
      "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, age INTEGER); INSERT INTO people (name, age) VALUES ('Grace', 85);",
    );
    const extraction = await open(database);
    expect(extraction.fieldsOf("people")).toEqual([
      { name: "name", type: "string" },
      { name: "age", type: "integer" },
    ]);
    fake.enqueue({ text: people });
    const run = await extraction.run({ table: "people" }, { text: "…" }, undefined);
    expect(run).toMatchObject({ status: "finished", itemCount: 2 });
    expect(
      Object.keys(
        fake.requests[0]?.body.response_format.json_schema.schema.properties.items.items.properties,
      ),
    ).toEqual(["name", "age"]);
    fake.enqueue({ text: '{"items": [{"name": "Edsger", "city": "Nuenen"}]}' });
    await extraction.run(
      { table: "people", fields: [parseField("name"), parseField("city")] },
      { text: "…" },
      undefined,
    );
    expect(query(database, "SELECT id, name, age, city FROM people ORDER BY id")).toEqual([
      { id: 1, name: "Grace", age: 85, city: null },
      { id: 2, name: "Ada", age: 36, city: null },
      { id: 3, name: "Alan", age: 41, city: null },
      { id: 4, name: "Edsger", age: null, city: "Nuenen" },
    ]);
    expect(extraction.runs({ table: "people" })).toHaveLength(2);
  });

  it("fails clearly when no model of the extract purpose supports schemas", async () => {
    const database = databaseWith("CREATE TABLE other (x)");
    const hub = await testHub({ default_model: "echo" });
    hubs.push(hub);
    const extraction = new Extraction({ hub, database });
    opened.push(extraction);
    const error = await extraction
      .run({ table: "people", fields: [parseField("name")] }, { text: "Ada" }, undefined)
      .then(
        () => expect.unreachable(),
        (caught: unknown) => caught,
      );
    expect(isSwitchboardError(error, "UNSUPPORTED")).toBe(true);
    expect((error as Error).message).toContain(
      'No model allowed for purpose "extract" supports JSON schemas',
    );
    expect((error as Error).message).toContain("purposes: {extract: {model:");
    expect(query(database, "SELECT name FROM sqlite_master WHERE name = 'people'")).toEqual([]);

    const named = await (await open(database))
      .run({ table: "people", fields: [parseField("name")], model: "echo" }, { text: "Ada" }, undefined)
      .then(
        () => expect.unreachable(),
        (caught: unknown) => caught,
      );
    expect((named as Error).message).toContain(
      "Model echo cannot follow a JSON schema, which extraction needs; use one of: fake-schema.",
    );
  });

  it("records a failed run with its error and keeps the rows read before it", async () => {
    const database = databaseWith("CREATE TABLE other (x)");
    const extraction = await open(database);
    fake.enqueue({
      text: ['{"items": [{"name": "Ada"}, ', '{"name": "Bo'],
      streamError: { type: "server_error", message: "upstream went away" },
    });
    const run = await extraction.run(
      { table: "people", fields: [parseField("name")] },
      { text: "…" },
      undefined,
    );
    expect(run.status).toBe("failed");
    expect(run.error).toContain("upstream went away");
    expect(run.itemCount).toBe(1);
    expect(query(database, "SELECT name FROM people")).toEqual([{ name: "Ada" }]);
  });

  it("closes runs whose process died as interrupted", async () => {
    const database = databaseWith("CREATE TABLE other (x)");
    const extraction = await open(database);
    fake.enqueue({ text: '{"items": []}' });
    const run = await extraction.run(
      { table: "people", fields: [parseField("name")] },
      { text: "…" },
      undefined,
    );
    const db = new Database(database);
    db.prepare("UPDATE _switchboard_extract_runs SET status = 'running', owner = ? WHERE id = ?").run(
      `${(await import("node:os")).hostname()}:2147483646`,
      run.id,
    );
    db.close();
    expect(extraction.markInterrupted().map((record) => record.id)).toEqual([run.id]);
    expect(extraction.runRecord(run.id)).toMatchObject({ status: "interrupted" });
  });

  it("sends images as attachments", async () => {
    const database = databaseWith("CREATE TABLE other (x)");
    const hub = await testHub({
      default_model: "echo",
      require_keys: false,
      providers: {
        fake: {
          type: "openai",
          base_url: fake.url,
          models: [{ id: "fake-vision", schema: true, attachment_types: ["image/png"] }],
        },
      },
    });
    hubs.push(hub);
    const extraction = new Extraction({ hub, database });
    opened.push(extraction);
    fake.enqueue({ text: '{"items": [{"name": "Ada"}]}' });
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const run = await extraction.run(
      { table: "people", fields: [parseField("name")] },
      { attachments: [{ content: png }], source: "photo.png" },
      undefined,
    );
    expect(run.status).toBe("finished");
    const content = fake.requests[0]?.body.messages.at(-1).content as { type: string }[];
    expect(content.map((part) => part.type)).toEqual(["text", "image_url"]);
  });
});
