import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { type FakeServer, startFakeOpenAI } from "@switchboard/core/testing";
import Database from "better-sqlite3";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createSampleDatabase } from "../../../scripts/create-sample-db.ts";
import { main } from "../src/index.ts";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function temporaryDirectory(): string {
  return mkdtempSync(join(tmpdir(), "switchboard-data-cli-"));
}

async function run(
  argv: string[],
  options: { stdin?: string; env?: Record<string, string>; terminal?: boolean } = {},
): Promise<Run> {
  let stdout = "";
  let stderr = "";
  // A terminal is told apart by isTTY, as on process.stderr.
  const stderrStream = { write: (text: string) => (stderr += text), isTTY: options.terminal === true };
  const code = await main(argv, {
    stdin: Readable.from(options.stdin === undefined ? [] : [options.stdin]),
    stdout: { write: (text: string) => (stdout += text) },
    stderr: stderrStream,
    env: { SWITCHBOARD_USER_PATH: temporaryDirectory(), ...options.env },
  });
  return { code, stdout, stderr };
}

function sampleDatabase(): string {
  const path = join(temporaryDirectory(), "sample.db");
  createSampleDatabase(path);
  return path;
}

function rows<T = Record<string, unknown>>(path: string, sql: string): T[] {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare(sql).all() as T[];
  } finally {
    db.close();
  }
}

describe("the sample database", () => {
  it("holds about 200 books whose authors are linked by a foreign key", () => {
    const path = sampleDatabase();
    expect(rows(path, "SELECT count(*) AS n FROM books")[0]?.n).toBe(217);
    expect(
      rows(
        path,
        "SELECT count(*) AS n FROM books LEFT JOIN authors ON authors.id = author_id WHERE authors.id IS NULL",
      )[0]?.n,
    ).toBe(0);
    expect(() => createSampleDatabase(path)).toThrow("already exists");
  });
});

describe("switchboard enrich and jobs", () => {
  it("enriches every row with echo, prints the result, and lists the job", async () => {
    const database = sampleDatabase();
    const result = await run([
      "enrich",
      database,
      "books",
      "--prompt",
      "Summarise {{ title }} ({{published}}), part of: {{ series }}",
      "--output",
      "summary",
      "--actor",
      "alice",
    ]);
    expect(result.stderr).toContain("Job 1: 217 rows of books → summary with echo");
    expect(result.stdout).toBe("Job 1 finished: 217 written, 0 errors, cost $0.0000.\n");
    expect(result.code).toBe(0);
    const emma = rows<{ summary: string }>(database, "SELECT summary FROM books WHERE title = 'Emma'")[0];
    expect(JSON.parse(emma?.summary ?? "{}").prompt).toBe("Summarise Emma (1815), part of: ");
    const listed = await run(["jobs", database, "--json"]);
    expect(JSON.parse(listed.stdout)).toMatchObject([
      { id: 1, status: "finished", doneCount: 217, actorId: "alice", costNanocents: "0", costUsd: 0 },
    ]);
    const table = await run(["jobs", database]);
    expect(table.stdout).toMatch(
      /^ID\s+STATUS\s+OUTPUT\s+ROWS\s+ERRORS\s+COST\s+MODEL\s+UPDATED\n1\s+finished\s+books\.summary\s+217\/217/,
    );
    const pause = await run(["jobs", "pause", database, "1"]);
    expect(pause.code).toBe(1);
    expect(pause.stderr).toContain(
      "Enrichment job 1 is finished; only a job that is running or pending can be paused",
    );
    expect((await run(["jobs", "errors", database, "1"])).stdout).toBe("Job 1 has no row errors.\n");
  });

  it("draws a progress bar on a terminal", async () => {
    const database = sampleDatabase();
    const result = await run(["enrich", database, "authors", "--prompt", "{{name}}", "--output", "note"], {
      terminal: true,
    });
    expect(result.code).toBe(0);
    const frames = result.stderr.split("\r\u001b[K");
    expect(frames.length).toBeGreaterThan(1);
    expect(frames.at(-1)).toMatch(/^\[#{24}\] 64\/64 rows {2}[\d.]+ rows\/s {2}ETA 0s {2}\$0\.0000\n$/);
  });

  it("refuses an unknown placeholder before creating a job", async () => {
    const database = sampleDatabase();
    const result = await run(["enrich", database, "books", "--prompt", "{{ nope }}", "--output", "x"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /^Error: The prompt uses \{\{ nope \}\}, but table "books" has no column "nope"/,
    );
    expect((await run(["jobs", database])).stdout).toBe("No enrichment jobs in this database.\n");
  });

  it("pauses on Ctrl-C, says how to resume, and `jobs resume` finishes the job", async () => {
    const database = sampleDatabase();
    const directory = temporaryDirectory();
    const slowModel = fileURLToPath(new URL("../../../scripts/demo-models.ts", import.meta.url));
    const config = join(directory, "switchboard.yaml");
    writeFileSync(config, `default_model: echo\nplugins: [${JSON.stringify(slowModel)}]\n`);
    const bin = fileURLToPath(new URL("../bin/switchboard.js", import.meta.url));
    const child = spawn(
      process.execPath,
      [
        bin,
        "--config",
        config,
        "enrich",
        database,
        "authors",
        "--prompt",
        "{{name}}",
        "--output",
        "note",
        "-m",
        "slow-echo",
        "--concurrency",
        "2",
      ],
      {
        env: { ...process.env, SWITCHBOARD_USER_PATH: directory, SLOW_ECHO_MS: "40" },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const written = () => {
      try {
        return Number(rows(database, "SELECT count(*) AS n FROM authors WHERE note IS NOT NULL")[0]?.n);
      } catch {
        return 0;
      }
    };
    const started = Date.now();
    while (written() < 4) {
      if (Date.now() - started > 15_000) throw new Error(`no progress: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    child.kill("SIGINT");
    expect(await exited).toBe(1);
    expect(stderr).toContain("Pausing job 1: writing the rows already sent");
    expect(stderr).toMatch(
      /Error: Job 1 paused at \d+\/64 rows .*Paused by .*Resume it with: switchboard jobs resume .*sample\.db 1\n$/,
    );
    const paused = rows<{ status: string; done_count: number }>(
      database,
      "SELECT status, done_count FROM _switchboard_enrich_jobs",
    )[0];
    expect(paused?.status).toBe("paused");
    expect(paused?.done_count).toBeLessThan(64);

    const resumed = await run(["--config", config, "jobs", "resume", database, "1"], {
      env: { SLOW_ECHO_MS: "1" },
    });
    expect(resumed.stdout).toBe("Job 1 finished: 64 written, 0 errors, cost $0.0000.\n");
    expect(rows(database, "SELECT count(*) AS n FROM authors WHERE note = 'done:' || name")[0]?.n).toBe(64);
  });
});

describe("switchboard extract and ask", () => {
  let fake: FakeServer;
  let config: string;
  beforeAll(async () => {
    fake = await startFakeOpenAI();
    config = join(temporaryDirectory(), "switchboard.yaml");
    writeFileSync(
      config,
      [
        "default_model: echo",
        "require_keys: false",
        "providers:",
        `  fake: {type: openai, base_url: "${fake.url}", models: [{id: fake-schema, schema: true}]}`,
        "purposes:",
        "  extract: {model: fake-schema}",
        "  sql-assistant: {model: fake-schema}",
        "",
      ].join("\n"),
    );
  });
  afterAll(async () => {
    await fake.close();
  });
  beforeEach(() => fake.reset());

  it("extracts rows from a file and from stdin into a new table", async () => {
    const database = sampleDatabase();
    const notes = join(temporaryDirectory(), "notes.txt");
    writeFileSync(notes, "Ada Lovelace was born in 1815.");
    fake.enqueue(
      { text: ['{"items": [{"name": "Ada Lovelace", ', '"born": 1815}]}'] },
      { text: '{"items": [{"name": "Alan Turing", "born": 1912}, {"name": "Alan Turing", "born": 1912}]}' },
    );
    const result = await run(
      [
        "--config",
        config,
        "extract",
        database,
        "people",
        "--field",
        "name:string",
        "--field",
        "born:integer",
        notes,
        "-",
      ],
      { stdin: "Alan Turing, born 1912." },
    );
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /^Extracted 1 rows into people from .*notes\.txt with fake-schema \(run ext_\w+\)\.\nExtracted 1 rows into people from stdin/,
    );
    expect(rows(database, "SELECT name, born FROM people ORDER BY rowid")).toEqual([
      { name: "Ada Lovelace", born: 1815 },
      { name: "Alan Turing", born: 1912 },
    ]);
    expect(fake.requests[1]?.body.messages.at(-1).content).toBe("Alan Turing, born 1912.");
  });

  it("extracts offline with the demo schema model", async () => {
    const database = sampleDatabase();
    const demoConfig = join(temporaryDirectory(), "switchboard.yaml");
    const demoModels = fileURLToPath(new URL("../../../scripts/demo-models.ts", import.meta.url));
    writeFileSync(demoConfig, `default_model: echo\nplugins: [${JSON.stringify(demoModels)}]\n`);
    const script = JSON.stringify({ raw: JSON.stringify({ items: [{ name: "Ada Lovelace", born: 1815 }] }) });
    const result = await run(
      [
        "--config",
        demoConfig,
        "extract",
        database,
        "people",
        "--field",
        "name",
        "--field",
        "born:integer",
        "-m",
        "echo-schema",
      ],
      { stdin: script },
    );
    expect(result.stdout).toMatch(/^Extracted 1 rows into people from stdin with echo-schema/);
    expect(rows(database, "SELECT name, born FROM people")).toEqual([{ name: "Ada Lovelace", born: 1815 }]);
  });

  it("fails clearly without a schema-capable model", async () => {
    const database = sampleDatabase();
    const result = await run(["extract", database, "people", "--field", "name"], { stdin: "Ada" });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('Error: No model allowed for purpose "extract" supports JSON schemas');
  });

  it("answers a question with a read-only query and runs it", async () => {
    const database = sampleDatabase();
    fake.enqueue({
      text: "```sql\nSELECT a.name, count(*) AS books FROM books b JOIN authors a ON a.id = b.author_id GROUP BY a.id ORDER BY books DESC, a.name LIMIT 2\n```\nThe two authors with the most books.",
    });
    const result = await run([
      "--config",
      config,
      "ask",
      database,
      "Who wrote the most books?",
      "--table",
      "books",
      "--run",
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(
      [
        "SELECT a.name, count(*) AS books FROM books b JOIN authors a ON a.id = b.author_id GROUP BY a.id ORDER BY books DESC, a.name LIMIT 2",
        "",
        "The two authors with the most books.",
        "",
        "name\tbooks",
        "Charles Dickens\t13",
        "William Shakespeare\t8",
        "",
      ].join("\n"),
    );
    expect(fake.requests[0]?.body.messages[0].content).toContain("CREATE TABLE authors");

    fake.enqueue(
      { text: "```sql\nDELETE FROM books\n```" },
      { text: "```sql\nDELETE FROM books\n```" },
      { text: "```sql\nDELETE FROM books\n```" },
      { text: "```sql\nDELETE FROM books\n```" },
    );
    const refused = await run(["--config", config, "ask", database, "Delete everything", "--json"]);
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.stdout)).toMatchObject({ valid: false, sql: "DELETE FROM books" });
    expect(refused.stderr).toContain("Error: No valid read-only query after 4 attempts");
    expect(rows(database, "SELECT count(*) AS n FROM books")[0]?.n).toBe(217);
  });
});
