import { spawnSync } from "node:child_process";
import { hostname } from "node:os";
import { Enrichments } from "@switchboard/data";
import Database from "better-sqlite3";
import { afterEach, expect, it } from "vitest";
import { type RunningServer, startServer } from "../src/serve.ts";
import { dataHub, libraryDatabase, waitFor } from "./data-pages-helpers.ts";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

it("serve resumes an enrichment job whose process died, and its page shows it reach 100 %", async () => {
  const database = libraryDatabase();
  const hub = await dataHub();
  cleanups.push(() => hub.close());
  const enrichments = new Enrichments({ hub, database });
  const job = await enrichments.create(
    { table: "books", prompt: "{{ title }}", outputColumn: "note" },
    { id: "alice" },
  );
  enrichments.close();
  // A run that held the job and was killed: its process id no longer exists on this host.
  const dead = spawnSync(process.execPath, ["-e", ""]).pid;
  const db = new Database(database);
  db.prepare(
    "UPDATE _switchboard_enrich_jobs SET status = 'running', started_at = created_at, lease_owner = ?, lease_expires_at = ? WHERE id = ?",
  ).run(`${hostname()}:${dead}`, Date.now() + 60_000, job.id);
  db.close();

  const server: RunningServer = await startServer({ hub, port: 0, databases: [database] });
  cleanups.push(() => server.close({ drainMs: 1_000 }));
  expect(server.resumedJobs.map((run) => run.jobId)).toEqual([job.id]);
  const finished = await waitFor(async () => {
    const body = (await (await fetch(`${server.url}/-/enrich/library/-/jobs/${job.id}.json`)).json()) as {
      status: string;
      percent: number;
      done: number;
    };
    return body.status === "finished" ? body : undefined;
  }, "the resumed job to finish");
  expect(finished).toMatchObject({ percent: 100, done: 250 });
  await server.resumedJobs[0]?.done;
  const check = new Database(database, { readonly: true });
  expect(check.prepare("SELECT count(*) AS n FROM books WHERE note IS NOT NULL").get()).toEqual({ n: 250 });
  check.close();
});
