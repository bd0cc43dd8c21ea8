import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { isSwitchboardError } from "@switchboard/core";
import type { Hub } from "@switchboard/hub";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import demoModels from "../../../scripts/demo-models.ts";
import {
  type EnrichmentJob,
  Enrichments,
  isInterrupted,
  type JobProgress,
  resumeInterruptedJobs,
} from "../src/index.ts";
import { databaseWith, promptRecorder, query, scriptedModel, testHub, waitFor } from "./helpers.ts";

/** 50 rows keyed by (region, seq); `count` is 0 for every third row, `label` NULL for every seventh. */
const ITEMS_SQL = `
CREATE TABLE items (region TEXT NOT NULL, seq INTEGER NOT NULL, label TEXT, count INTEGER, out TEXT,
  PRIMARY KEY (region, seq));
CREATE TABLE writes (region TEXT, seq INTEGER, value TEXT);
CREATE TRIGGER items_written AFTER UPDATE OF out ON items BEGIN
  INSERT INTO writes VALUES (new.region, new.seq, new.out);
END;`;

function itemsDatabase(
  rows = 50,
  label = (index: number) => (index % 7 === 0 ? null : `item ${index}`),
): string {
  return databaseWith(ITEMS_SQL, (db) => {
    const insert = db.prepare("INSERT INTO items (region, seq, label, count) VALUES (?, ?, ?, ?)");
    for (let index = 0; index < rows; index++)
      insert.run(index % 2 ? "north" : "south", index, label(index), index % 3);
  });
}

/** How many times each row's output was written, by the audit trigger. */
function writesPerRow(path: string): number[] {
  return query<{ n: number }>(
    path,
    "SELECT count(w.value) AS n FROM items i LEFT JOIN writes w ON w.region = i.region AND w.seq = i.seq GROUP BY i.region, i.seq",
  ).map((row) => row.n);
}

const hubs: Hub[] = [];
const opened: Enrichments[] = [];
async function setup(
  options: { config?: Parameters<typeof testHub>[0]; plugins?: Parameters<typeof testHub>[1] } = {},
) {
  const hub = await testHub(options.config, options.plugins);
  hubs.push(hub);
  return hub;
}
function enrichmentsFor(
  hub: Hub,
  database: string,
  extra: Partial<ConstructorParameters<typeof Enrichments>[0]> = {},
) {
  const enrichments = new Enrichments({ hub, database, batchRows: 5, batchIntervalMs: 20, ...extra });
  opened.push(enrichments);
  return enrichments;
}

afterEach(async () => {
  for (const enrichments of opened.splice(0)) enrichments.close();
  await Promise.all(hubs.splice(0).map((hub) => hub.close()));
});

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.unreachable("expected a failure"),
    (error: unknown) => error,
  );
}

describe("enrichments", () => {
  it("fills a 50-row table with a composite key: placeholders (0 and NULL as empty strings), system prompt, actor", async () => {
    const database = itemsDatabase();
    const recorder = promptRecorder();
    const hub = await setup({ plugins: [recorder] });
    const enrichments = enrichmentsFor(hub, database);
    const run = await enrichments.enrich(
      {
        table: "items",
        prompt: "Describe {{ label }} ({{count}})",
        system: "You work on {{region}}",
        outputColumn: "out",
        concurrency: 4,
      },
      { id: "alice" },
    );
    const job = await run.done;
    expect(job).toMatchObject({
      status: "finished",
      rowCount: 50,
      doneCount: 50,
      errorCount: 0,
      model: "echo",
    });
    const rows = query<{ region: string; seq: number; label: string | null; count: number; out: string }>(
      database,
      "SELECT * FROM items ORDER BY seq",
    );
    for (const row of rows) {
      const echoed = JSON.parse(row.out) as { prompt: string; system: string };
      expect(echoed.prompt).toBe(`Describe ${row.label ?? ""} (${row.count === 0 ? "" : row.count})`);
      expect(echoed.system).toBe(`You work on ${row.region}`);
    }
    expect(rows[0]?.out).toContain('"prompt": "Describe  ()"');
    expect(writesPerRow(database).every((count) => count === 1)).toBe(true);
    expect(recorder.seen).toHaveLength(50);
    expect(recorder.seen.every((seen) => seen.actor === "alice" && seen.purpose === "enrichments")).toBe(
      true,
    );
  });

  it("creates the output column, skips rows that have an output, and replaces them with overwrite", async () => {
    const database = databaseWith("CREATE TABLE notes (body TEXT)", (db) => {
      for (const body of ["one", "two", "three"]) db.prepare("INSERT INTO notes VALUES (?)").run(body);
    });
    const hub = await setup({ plugins: [scriptedModel()] });
    const enrichments = enrichmentsFor(hub, database);
    const first = await enrichments.create(
      {
        table: "notes",
        prompt: "{{body}}",
        outputColumn: "summary",
        model: "scripted",
        where: "body != 'two'",
      },
      undefined,
    );
    expect(first.rowCount).toBe(2);
    await (await enrichments.start(first.id, undefined)).done;
    expect(query(database, "SELECT rowid, body, summary FROM notes ORDER BY rowid")).toEqual([
      { rowid: 1, body: "one", summary: "out:one" },
      { rowid: 2, body: "two", summary: null },
      { rowid: 3, body: "three", summary: "out:three" },
    ]);
    const second = await (
      await enrichments.enrich(
        { table: "notes", prompt: "again {{body}}", outputColumn: "summary", model: "scripted" },
        undefined,
      )
    ).done;
    expect(second.rowCount).toBe(1);
    expect(query(database, "SELECT summary FROM notes ORDER BY rowid").map((row) => row.summary)).toEqual([
      "out:one",
      "out:again two",
      "out:three",
    ]);
    const overwritten = await (
      await enrichments.enrich(
        {
          table: "notes",
          prompt: "new {{body}}",
          outputColumn: "summary",
          model: "scripted",
          overwrite: true,
        },
        undefined,
      )
    ).done;
    expect(overwritten).toMatchObject({ status: "finished", rowCount: 3, doneCount: 3 });
    expect(query(database, "SELECT summary FROM notes ORDER BY rowid").map((row) => row.summary)).toEqual([
      "out:new one",
      "out:new two",
      "out:new three",
    ]);
  });

  it("refuses an unknown placeholder column or a bad condition before any job exists", async () => {
    const database = itemsDatabase(3);
    const hub = await setup();
    const enrichments = enrichmentsFor(hub, database);
    const unknown = await failure(
      enrichments.create({ table: "items", prompt: "Hi {{ nope }}", outputColumn: "answer" }, undefined),
    );
    expect(isSwitchboardError(unknown, "INVALID_INPUT")).toBe(true);
    expect((unknown as Error).message).toContain('no column "nope"');
    const badWhere = await failure(
      enrichments.create(
        { table: "items", prompt: "{{label}}", outputColumn: "answer", where: "seq >" },
        undefined,
      ),
    );
    expect((badWhere as Error).message).toContain("not valid SQL");
    const missingTable = await failure(
      enrichments.create({ table: "nope", prompt: "x", outputColumn: "y" }, undefined),
    );
    expect(isSwitchboardError(missingTable, "NOT_FOUND")).toBe(true);
    expect(enrichments.jobs()).toEqual([]);
    expect(query(database, "SELECT name FROM pragma_table_info('items') WHERE name = 'answer'")).toEqual([]);
  });

  it("finishes at once when no row is selected", async () => {
    const database = itemsDatabase(5);
    const hub = await setup();
    const enrichments = enrichmentsFor(hub, database);
    const run = await enrichments.enrich(
      { table: "items", prompt: "{{label}}", outputColumn: "out", where: "seq > 100" },
      undefined,
    );
    expect(await run.done).toMatchObject({ status: "finished", rowCount: 0, doneCount: 0 });
  });

  it("logs row errors with the row's key and counts them; max-errors stops the job as failed", async () => {
    const label = (index: number) => (index % 5 === 2 ? "FAIL" : `ok ${index}`);
    const database = itemsDatabase(50, label);
    const hub = await setup({ plugins: [scriptedModel()] });
    const enrichments = enrichmentsFor(hub, database);
    const tolerant = await (
      await enrichments.enrich(
        { table: "items", prompt: "{{label}}", outputColumn: "out", model: "scripted", maxErrors: 0 },
        undefined,
      )
    ).done;
    expect(tolerant).toMatchObject({ status: "finished", doneCount: 40, errorCount: 10 });
    const errors = enrichments.errors(tolerant.id);
    expect(errors).toHaveLength(10);
    expect(errors.map((error) => error.rowKey).sort((a, b) => Number(a.seq) - Number(b.seq))[0]).toEqual({
      region: "south",
      seq: 2,
    });
    expect(errors[0]?.error).toContain("The upstream refused: FAIL");

    const strictDatabase = itemsDatabase(50, label);
    const strict = await (
      await enrichmentsFor(hub, strictDatabase).enrich(
        {
          table: "items",
          prompt: "{{label}}",
          outputColumn: "out",
          model: "scripted",
          maxErrors: 3,
          concurrency: 1,
        },
        undefined,
      )
    ).done;
    expect(strict.status).toBe("failed");
    expect(strict.errorCount).toBe(3);
    expect(strict.message).toContain("max-errors 3");
    // Rows are taken in key order ("north" before "south"); the third failing row stops the job.
    expect(strict.doneCount).toBeLessThan(40);
  });

  it("pauses, resumes where it stopped, and cancels; every row is written once", async () => {
    const database = itemsDatabase();
    const hub = await setup({ plugins: [scriptedModel({ delayMs: 2 })] });
    const enrichments = enrichmentsFor(hub, database);
    const job = await enrichments.create(
      { table: "items", prompt: "{{label}}", outputColumn: "out", model: "scripted", concurrency: 2 },
      { id: "alice" },
    );
    let paused: Promise<EnrichmentJob> | undefined;
    const run = await enrichments.start(
      job.id,
      { id: "alice" },
      {
        onProgress: (progress: JobProgress) => {
          if (progress.done >= 10) paused ??= enrichments.pause(job.id, { id: "bob" });
        },
      },
    );
    const stopped = await run.done;
    expect((await paused)?.status).toBe("paused");
    expect(stopped.status).toBe("paused");
    expect(stopped.message).toBe("Paused by bob");
    expect(stopped.doneCount).toBeGreaterThanOrEqual(10);
    expect(stopped.doneCount).toBeLessThan(50);
    expect(stopped.lease).toBeUndefined();
    expect(query(database, "SELECT count(*) AS n FROM items WHERE out IS NOT NULL")[0]?.n).toBe(
      stopped.doneCount,
    );

    const resumed = await (await enrichments.resume(job.id, { id: "carol" })).done;
    expect(resumed).toMatchObject({ status: "finished", doneCount: 50, actorId: "carol" });
    expect(writesPerRow(database).every((count) => count === 1)).toBe(true);
    expect(
      enrichments
        .progress(job.id)
        .map((record) => record.message)
        .filter(Boolean),
    ).toEqual(expect.arrayContaining(["Started by alice", "Paused by bob", "Resumed by carol"]));

    const again = await enrichments.create(
      {
        table: "items",
        prompt: "{{label}}",
        outputColumn: "out",
        model: "scripted",
        overwrite: true,
        concurrency: 2,
      },
      undefined,
    );
    let cancelled: Promise<EnrichmentJob> | undefined;
    const cancelling = await enrichments.start(again.id, undefined, {
      onProgress: (progress) => {
        if (progress.done >= 5) cancelled ??= enrichments.cancel(again.id, { id: "bob" });
      },
    });
    const ended = await cancelling.done;
    expect(ended.status).toBe("cancelled");
    expect((await cancelled)?.status).toBe("cancelled");
    expect(ended.doneCount).toBeLessThan(50);
    const refused = await failure(enrichments.resume(again.id, undefined));
    expect((refused as Error).message).toContain("is cancelled");
  });

  it("checks the enrich permission for every change", async () => {
    const database = itemsDatabase(3);
    const hub = await setup();
    const asked: string[] = [];
    const enrichments = enrichmentsFor(hub, database, {
      can: (action, actor) => {
        asked.push(`${action}:${actor?.id}`);
        return actor?.id === "alice";
      },
    });
    const refused = await failure(
      enrichments.create({ table: "items", prompt: "{{label}}", outputColumn: "out" }, { id: "mallory" }),
    );
    expect(isSwitchboardError(refused, "PROMPT_REFUSED")).toBe(true);
    expect((refused as Error).message).toContain('"mallory" may not enrich');
    const job = await enrichments.create(
      { table: "items", prompt: "{{label}}", outputColumn: "out" },
      { id: "alice" },
    );
    await expect(enrichments.pause(job.id, { id: "mallory" })).rejects.toThrow("may not enrich");
    await expect(enrichments.cancel(job.id, undefined)).rejects.toThrow("anonymous user may not enrich");
    await expect(enrichments.start(job.id, { id: "mallory" })).rejects.toThrow("may not enrich");
    expect(await (await enrichments.start(job.id, { id: "alice" })).done).toMatchObject({
      status: "finished",
    });
    expect(asked).toContain("enrich:mallory");
  });

  it("stops with status limited when the hub's limit refuses the next row, not with row errors", async () => {
    const database = itemsDatabase();
    const hub = await setup({
      config: {
        default_model: "echo",
        // The scripted model reports 1 output token a row: $0.001 at $1000 per million.
        accounting: {
          pricing: { scripted: { input: 0, output: 1000 } },
          reservations: { models: { scripted: 0.001 } },
        },
        limits: { cap: { scope: "instance", window: "rolling-24h", amount_usd: 0.01 } },
      },
      plugins: [scriptedModel()],
    });
    const enrichments = enrichmentsFor(hub, database);
    const job = await (
      await enrichments.enrich(
        { table: "items", prompt: "{{label}}", outputColumn: "out", model: "scripted", concurrency: 1 },
        { id: "alice" },
      )
    ).done;
    expect(job.status).toBe("limited");
    expect(job.message).toContain('Limit "cap" reached');
    expect(job.errorCount).toBe(0);
    expect(job.doneCount).toBe(10);
    expect(job.costNanocents).toBe(10n * 100_000_000n);
    expect(query(database, "SELECT count(*) AS n FROM items WHERE out IS NOT NULL")[0]?.n).toBe(10);
  });

  it("stops with status budget before spending more than max-cost", async () => {
    const database = itemsDatabase();
    const hub = await setup({
      config: { default_model: "echo", accounting: { pricing: { scripted: { input: 0, output: 1000 } } } },
      plugins: [scriptedModel(), demoModels()],
    });
    const enrichments = enrichmentsFor(hub, database);
    const job = await (
      await enrichments.enrich(
        {
          table: "items",
          prompt: "{{label}}",
          outputColumn: "out",
          model: "scripted",
          maxCostUsd: 0.0045,
          concurrency: 4,
        },
        undefined,
      )
    ).done;
    expect(job.status).toBe("budget");
    expect(job.doneCount).toBe(4);
    expect(job.costNanocents).toBeLessThanOrEqual(450_000_000n);
    const unpriced = await failure(
      enrichments.create(
        { table: "items", prompt: "{{label}}", outputColumn: "out", maxCostUsd: 1, model: "slow-echo" },
        undefined,
      ),
    );
    expect(isSwitchboardError(unpriced, "PRICING_MISSING")).toBe(true);
  });

  it("shows the first selected row's filled prompt", async () => {
    const database = itemsDatabase(5);
    const hub = await setup();
    const enrichments = enrichmentsFor(hub, database);
    expect(
      enrichments.preview({
        table: "items",
        prompt: "{{label}} x{{ count }}",
        system: "in {{region}}",
        outputColumn: "out",
      }),
    ).toEqual({ key: { region: "north", seq: 1 }, prompt: "item 1 x1", system: "in north" });
    expect(
      enrichments.preview({ table: "items", prompt: "{{label}}", outputColumn: "out", where: "seq > 10" }),
    ).toBeUndefined();
  });

  it("never lets two runs hold one job; a dead run's job is taken over", async () => {
    const database = itemsDatabase(20);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const hub = await setup({ plugins: [scriptedModel({ gate: () => gate })] });
    const first = enrichmentsFor(hub, database);
    const second = enrichmentsFor(hub, database);
    const job = await first.create(
      { table: "items", prompt: "{{label}}", outputColumn: "out", model: "scripted" },
      undefined,
    );
    const run = await first.start(job.id, undefined);
    const refused = await failure(second.start(job.id, undefined));
    expect((refused as Error).message).toContain("already running");
    release();
    await run.done;

    // A job left "running" by a process on another host is taken over once its lease expired.
    const stale = await first.create(
      { table: "items", prompt: "{{label}}", outputColumn: "out", model: "scripted", overwrite: true },
      undefined,
    );
    const writer = new Database(database);
    writer
      .prepare(
        "UPDATE _switchboard_enrich_jobs SET status = 'running', lease_owner = ?, lease_expires_at = ? WHERE id = ?",
      )
      .run("elsewhere:4242:abc", Date.now() + 60_000, stale.id);
    expect(((await failure(second.start(stale.id, undefined))) as Error).message).toContain(
      "another process (elsewhere:4242",
    );
    writer
      .prepare("UPDATE _switchboard_enrich_jobs SET lease_expires_at = ? WHERE id = ?")
      .run(Date.now() - 1, stale.id);
    writer.close();
    expect(await (await second.start(stale.id, undefined)).done).toMatchObject({
      status: "finished",
      doneCount: 20,
    });
  });
});

describe("enrichment jobs across processes", () => {
  const runJob = fileURLToPath(new URL("./fixtures/run-job.ts", import.meta.url));
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
  });

  function startChild(
    database: string,
    jobId: number,
    env: Record<string, string>,
  ): { child: ChildProcess; exited: Promise<number | null>; output: () => string } {
    const child = spawn(process.execPath, [runJob, database, String(jobId)], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    let output = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    return { child, exited, output: () => output };
  }

  function doneCount(database: string, jobId: number): number {
    return query<{ done_count: number }>(
      database,
      "SELECT done_count FROM _switchboard_enrich_jobs WHERE id = ?",
      jobId,
    )[0]?.done_count as number;
  }

  it("resumes a run killed with SIGKILL where it stopped, writing every row exactly once", async () => {
    const database = itemsDatabase();
    const hub = await setup({ plugins: [demoModels()] });
    const enrichments = enrichmentsFor(hub, database);
    const job = await enrichments.create(
      {
        table: "items",
        prompt: "{{label}} {{count}}",
        outputColumn: "out",
        model: "slow-echo",
        concurrency: 3,
      },
      { id: "alice" },
    );
    const { child, exited } = startChild(database, job.id, { SLOW_ECHO_MS: "5", SLOW_ECHO_HANG_AFTER: "15" });
    // The child answers 15 rows, then its next prompts hang: it dies with rows in flight.
    await waitFor(() => doneCount(database, job.id) === 15, "the child to write 15 rows");
    child.kill("SIGKILL");
    await exited;
    const killed = enrichments.job(job.id) as EnrichmentJob;
    expect(killed.status).toBe("running");
    expect(isInterrupted(killed)).toBe(true);
    expect(killed.lease?.owner).toMatch(/:\d+:/);
    expect(killed.doneCount).toBe(15);

    const { resumed } = await resumeInterruptedJobs(database, { hub });
    expect(resumed.map((run) => run.jobId)).toEqual([job.id]);
    const finished = await resumed[0]?.done;
    expect(finished).toMatchObject({ status: "finished", doneCount: 50, errorCount: 0, actorId: "child" });
    expect(writesPerRow(database)).toEqual(Array(50).fill(1));
    const outputs = query<{ label: string | null; count: number; out: string }>(
      database,
      "SELECT label, count, out FROM items",
    );
    for (const row of outputs)
      expect(row.out).toBe(`done:${row.label ?? ""} ${row.count === 0 ? "" : row.count}`);
  });

  it("pauses a job that another process runs", async () => {
    const database = itemsDatabase();
    const hub = await setup({ plugins: [demoModels()] });
    const enrichments = enrichmentsFor(hub, database);
    const job = await enrichments.create(
      { table: "items", prompt: "{{label}}", outputColumn: "out", model: "slow-echo", concurrency: 1 },
      undefined,
    );
    const { exited, output } = startChild(database, job.id, { SLOW_ECHO_MS: "40" });
    await waitFor(() => doneCount(database, job.id) >= 2, "the child to write some rows");
    expect((await enrichments.pause(job.id, { id: "bob" })).status).toBe("paused");
    expect(await exited).toBe(0);
    expect(output()).toBe("paused\n");
    const paused = enrichments.job(job.id) as EnrichmentJob;
    expect(paused).toMatchObject({ status: "paused", message: "Paused by bob", lease: undefined });
    expect(paused.doneCount).toBeLessThan(50);
    expect(await (await enrichments.resume(job.id, undefined)).done).toMatchObject({
      status: "finished",
      doneCount: 50,
    });
    expect(writesPerRow(database)).toEqual(Array(50).fill(1));
  });
});
