/**
 * Enrichment throughput and memory, measured on the `switchboard enrich` command itself. `npm run
 * bench:enrich` fills a 10,000-row table from a fake OpenAI upstream (its own process) that answers
 * each request after 50 ms, and prints:
 *  - rows/s at concurrency 1 (one row at a time) and 16, against the bound (concurrency /
 *    latency), from the job's own start and finish times, and the command's peak RSS (usage
 *    logging and pricing on; the compile cache warm, as after the command's first run);
 *  - the ceilings the same machine reaches at 16 without the enrichment layer: bare HTTP requests
 *    to the upstream, and bare prompts through the hub;
 *  - the concurrency-16 run again with a small V8 heap, whose peak RSS shows how much of the
 *    default figure is garbage V8 has not collected yet rather than memory in use.
 *
 *   --rows=10000 --latency=50 --concurrency=16 --rows-one=300 (rows of the concurrency-1 run: its
 *   rate is steady after a few rows, and 10,000 rows one at a time would take 9 minutes)
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { KeyStore } from "@switchboard/core";
import { startFakeOpenAI } from "@switchboard/core/testing";
import { Hub } from "@switchboard/hub";
import Database from "better-sqlite3";
import { numberArg } from "./measure.ts";

const rows = numberArg("rows", 10_000);
const latencyMs = numberArg("latency", 50);
const concurrency = numberArg("concurrency", 16);
const rowsOne = numberArg("rows-one", 300);
const referenceCalls = numberArg("reference-calls", 2_000);
const SMALL_HEAP_FLAGS = ["--max-semi-space-size=2", "--max-old-space-size=64"];
const BIN = fileURLToPath(new URL("../packages/cli/bin/switchboard.js", import.meta.url));
/** Makes a child print its peak RSS (KiB) on fd 3 as it exits. */
const REPORT_RSS =
  'data:text/javascript,import{writeSync}from"node:fs";process.on("exit",()=>writeSync(3,String(process.resourceUsage().maxRSS)))';
const PROMPT_TEXT = `Summarise in one sentence: Article 1\n\n${"lorem ipsum ".repeat(20)}`;

interface RunResult {
  rows: number;
  seconds: number;
  rate: number;
  peakRssMb?: number;
}

/** The upstream runs in a child process so its work and memory stay out of the figures. */
async function serveUpstream(): Promise<void> {
  const fake = await startFakeOpenAI({ record: false });
  const replies = numberArg("replies", 30_000);
  for (let index = 0; index < replies; index++)
    fake.enqueue({ text: "A short summary.", delayMs: latencyMs });
  process.stdout.write(`${JSON.stringify({ url: fake.url })}\n`);
  process.stdin.resume();
  process.stdin.on("end", () => void fake.close().then(() => process.exit(0)));
}

async function startUpstream(replies: number): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    [fileURLToPath(import.meta.url), "--serve-upstream", `--latency=${latencyMs}`, `--replies=${replies}`],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  for await (const line of lines) return { url: (JSON.parse(line) as { url: string }).url, child };
  throw new Error("the fake upstream did not start");
}

function createTable(path: string): void {
  const db = new Database(path);
  db.exec("CREATE TABLE articles (id INTEGER PRIMARY KEY, title TEXT, body TEXT)");
  const insert = db.prepare("INSERT INTO articles (title, body) VALUES (?, ?)");
  db.transaction(() => {
    for (let index = 1; index <= rows; index++) {
      insert.run(`Article ${index}`, `Body of article ${index}: ${"lorem ipsum ".repeat(20)}`);
    }
  })();
  db.close();
}

/** Runs `switchboard enrich` in its own process; the rate comes from the job's own timestamps. */
async function enrichCommand(
  directory: string,
  options: { concurrency: number; column: string; where?: string; nodeFlags?: readonly string[] },
): Promise<RunResult> {
  const database = join(directory, "bench.db");
  const args = [
    ...(options.nodeFlags ?? []),
    "--import",
    REPORT_RSS,
    BIN,
    "--config",
    join(directory, "switchboard.yaml"),
    "enrich",
    database,
    "articles",
    "--prompt",
    "Summarise in one sentence: {{ title }}\n\n{{ body }}",
    "--output",
    options.column,
    "--concurrency",
    String(options.concurrency),
    "--actor",
    "bench",
    ...(options.where ? ["--where", options.where] : []),
  ];
  const child = spawn(process.execPath, args, {
    env: { ...process.env, SWITCHBOARD_USER_PATH: join(directory, "user") },
    stdio: ["ignore", "ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  let rss = "";
  (child.stdio[3] as NodeJS.ReadableStream).on("data", (chunk: Buffer) => {
    rss += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  if (code !== 0) throw new Error(`switchboard enrich exited ${code}: ${stderr}`);
  const db = new Database(database, { readonly: true });
  const job = db
    .prepare(
      "SELECT done_count, started_at, finished_at FROM _switchboard_enrich_jobs WHERE output_column = ? ORDER BY id DESC LIMIT 1",
    )
    .get(options.column) as { done_count: number; started_at: string; finished_at: string };
  db.close();
  const seconds = (Date.parse(job.finished_at) - Date.parse(job.started_at)) / 1000;
  return { rows: job.done_count, seconds, rate: job.done_count / seconds, peakRssMb: Number(rss) / 1024 };
}

/** Runs `calls` calls, `concurrency` at a time. */
async function pool(calls: number, call: () => Promise<unknown>): Promise<RunResult> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < calls) {
        next++;
        await call();
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return { rows: calls, seconds, rate: calls / seconds };
}

async function ceilings(directory: string, upstream: string): Promise<{ http: RunResult; hub: RunResult }> {
  const body = JSON.stringify({
    model: "bench-model",
    stream: true,
    stream_options: { include_usage: true },
    messages: [{ role: "user", content: PROMPT_TEXT }],
  });
  const http = await pool(referenceCalls, async () => {
    const response = await fetch(`${upstream}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    await response.text();
  });
  const hub = await Hub.create({
    configPath: join(directory, "switchboard.yaml"),
    keys: new KeyStore(join(directory, "keys.json")),
    env: {},
  });
  const model = await hub.model({ purpose: "enrichments", actor: { id: "bench" } });
  const prompts = await pool(referenceCalls, () => model.prompt(PROMPT_TEXT).text());
  await hub.close();
  return { http, hub: prompts };
}

async function main(): Promise<void> {
  const directory = mkdtempSync(join(tmpdir(), "switchboard-bench-enrich-"));
  const upstream = await startUpstream(rowsOne + 2 * rows + 2 * referenceCalls + 100);
  try {
    createTable(join(directory, "bench.db"));
    writeFileSync(
      join(directory, "switchboard.yaml"),
      [
        "default_model: bench-model",
        "require_keys: false",
        `storage: "sqlite:${join(directory, "usage.db")}"`,
        `providers: {bench: {type: openai, base_url: "${upstream.url}", models: [bench-model]}}`,
        "accounting: {pricing: {bench-model: {input: 0.15, output: 0.6}}}",
        "",
      ].join("\n"),
    );
    console.log(
      `bench:enrich — ${rows} rows, upstream latency ${latencyMs} ms (separate process), Node ${process.versions.node}`,
    );
    // The first run fills the compile cache, as a first use of the command would.
    await enrichCommand(directory, { concurrency: 1, column: "summary_warm_up", where: "id <= 2" });
    const one = await enrichCommand(directory, {
      concurrency: 1,
      column: "summary_1",
      where: `id <= ${rowsOne}`,
    });
    const many = await enrichCommand(directory, { concurrency, column: `summary_${concurrency}` });
    const { http, hub } = await ceilings(directory, upstream.url);
    const smallHeap = await enrichCommand(directory, {
      concurrency,
      column: "summary_small_heap",
      nodeFlags: SMALL_HEAP_FLAGS,
    });

    const bound = (n: number) => (n * 1000) / latencyMs;
    const line = (label: string, result: RunResult, n: number) =>
      console.log(
        `  ${label.padEnd(36)} ${String(result.rows).padStart(6)} in ${result.seconds.toFixed(1).padStart(5)} s ` +
          `${result.rate.toFixed(1).padStart(7)}/s  ${((100 * result.rate) / bound(n)).toFixed(1).padStart(5)} % of ${bound(n).toFixed(0)}/s` +
          `${result.peakRssMb === undefined ? "" : `  peak RSS ${result.peakRssMb.toFixed(1)} MB`}`,
      );
    line("switchboard enrich, concurrency 1", one, 1);
    line(`switchboard enrich, concurrency ${concurrency}`, many, concurrency);
    console.log(`  speed-up ${(many.rate / one.rate).toFixed(1)}×`);
    console.log(`ceilings on this machine at concurrency ${concurrency} (in-process, no enrichment):`);
    line("bare HTTP requests to the upstream", http, concurrency);
    line("bare prompts through the hub", hub, concurrency);
    console.log(`small V8 heap (${SMALL_HEAP_FLAGS.join(" ")}):`);
    line(`switchboard enrich, concurrency ${concurrency}`, smallHeap, concurrency);
    const target = 0.9 * bound(concurrency);
    const rssMet = (result: RunResult) => ((result.peakRssMb ?? 0) < 150 ? "met" : "NOT met");
    console.log(
      `target ≥ ${target.toFixed(0)} rows/s at ${concurrency}: ${many.rate >= target ? "met" : "NOT met"} ` +
        `(small heap: ${smallHeap.rate >= target ? "met" : "NOT met"}); peak RSS < 150 MB: ${rssMet(many)} (small heap: ${rssMet(smallHeap)})`,
    );
  } finally {
    upstream.child.stdin?.end();
    rmSync(directory, { recursive: true, force: true });
  }
}

if (process.argv.includes("--serve-upstream")) await serveUpstream();
else await main();
