/**
 * Enrichment throughput. `npm run bench:enrich` fills a 10,000-row table through the hub from a
 * fake OpenAI upstream (its own process) that answers each request after 50 ms, and prints:
 *  - rows/s at concurrency 1 (one row at a time) and 16, against the bound (concurrency / latency),
 *    and this process's peak RSS over those runs (usage logging and pricing on);
 *  - the ceilings the same machine reaches at 16 without the enrichment layer: bare HTTP requests
 *    to the upstream, and bare prompts through the hub;
 *  - the concurrency-16 run again in a process with a small V8 heap, whose peak RSS shows how much
 *    of the default figure is garbage V8 has not collected yet rather than memory in use.
 *
 *   --rows=10000 --latency=50 --concurrency=16 --rows-one=300 (rows of the concurrency-1 run: its
 *   rate is steady after a few rows, and 10,000 rows one at a time would take 9 minutes)
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { KeyStore } from "@switchboard/core";
import { startFakeOpenAI } from "@switchboard/core/testing";
import { Enrichments } from "@switchboard/data";
import { Hub } from "@switchboard/hub";
import Database from "better-sqlite3";
import { numberArg } from "./measure.ts";

const rows = numberArg("rows", 10_000);
const latencyMs = numberArg("latency", 50);
const concurrency = numberArg("concurrency", 16);
const rowsOne = numberArg("rows-one", 300);
const referenceCalls = numberArg("reference-calls", 2_000);
/** V8 flags of the small-heap run. */
const SMALL_HEAP_FLAGS = ["--max-semi-space-size=2", "--max-old-space-size=64"];
const stringArg = (name: string) =>
  process.argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);

const peakRssMb = () => process.resourceUsage().maxRSS / 1024;

interface RunResult {
  rows: number;
  seconds: number;
  rate: number;
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

async function firstLine(child: ChildProcess): Promise<string> {
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  for await (const line of lines) return line;
  throw new Error("the child process printed nothing");
}

async function startUpstream(replies: number): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    [fileURLToPath(import.meta.url), "--serve-upstream", `--latency=${latencyMs}`, `--replies=${replies}`],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  return { url: (JSON.parse(await firstLine(child)) as { url: string }).url, child };
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

function openBenchHub(directory: string, upstream: string): Promise<Hub> {
  return Hub.create({
    config: {
      default_model: "bench-model",
      require_keys: false,
      storage: `sqlite:${join(directory, "usage.db")}`,
      providers: { bench: { type: "openai", base_url: upstream, models: ["bench-model"] } },
      accounting: { pricing: { "bench-model": { input: 0.15, output: 0.6 } } },
    },
    keys: new KeyStore(join(directory, "keys.json")),
    env: {},
  });
}

const PROMPT = "Summarise in one sentence: {{ title }}\n\n{{ body }}";

async function enrich(
  hub: Hub,
  database: string,
  runConcurrency: number,
  column: string,
  where?: string,
): Promise<RunResult> {
  const enrichments = new Enrichments({ hub, database });
  try {
    const started = performance.now();
    const run = await enrichments.enrich(
      { table: "articles", prompt: PROMPT, outputColumn: column, concurrency: runConcurrency, where },
      { id: "bench" },
    );
    const job = await run.done;
    const seconds = (performance.now() - started) / 1000;
    if (job.status !== "finished" || job.errorCount > 0) {
      throw new Error(`job ended ${job.status} with ${job.errorCount} errors: ${job.message}`);
    }
    return { rows: job.doneCount, seconds, rate: job.doneCount / seconds };
  } finally {
    enrichments.close();
  }
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

/** The child of the small-heap run: one concurrency-16 enrichment, figures as a JSON line. */
async function measureChild(): Promise<void> {
  const directory = stringArg("directory") as string;
  const hub = await openBenchHub(directory, stringArg("upstream") as string);
  const result = await enrich(hub, join(directory, "bench.db"), concurrency, "summary_small_heap");
  await hub.close();
  process.stdout.write(`${JSON.stringify({ ...result, peakRssMb: peakRssMb() })}\n`);
}

async function main(): Promise<void> {
  const directory = mkdtempSync(join(tmpdir(), "switchboard-bench-enrich-"));
  const upstream = await startUpstream(rowsOne + 2 * rows + 2 * referenceCalls + 100);
  const startRss = peakRssMb();
  try {
    const database = join(directory, "bench.db");
    createTable(database);
    const hub = await openBenchHub(directory, upstream.url);
    console.log(
      `bench:enrich — ${rows} rows, upstream latency ${latencyMs} ms (separate process), Node ${process.versions.node}`,
    );
    const one = await enrich(hub, database, 1, "summary_1", `id <= ${rowsOne}`);
    const many = await enrich(hub, database, concurrency, `summary_${concurrency}`);
    const enrichRss = peakRssMb();

    const body = JSON.stringify({
      model: "bench-model",
      stream: true,
      stream_options: { include_usage: true },
      messages: [
        { role: "user", content: `Summarise in one sentence: Article 1\n\n${"lorem ipsum ".repeat(20)}` },
      ],
    });
    const bareHttp = await pool(referenceCalls, async () => {
      const response = await fetch(`${upstream.url}/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      await response.text();
    });
    const model = await hub.model({ model: "bench-model", actor: { id: "bench" } });
    const bareHub = await pool(referenceCalls, () =>
      model.prompt(`Summarise in one sentence: Article 1\n\n${"lorem ipsum ".repeat(20)}`).text(),
    );
    await hub.close();

    const child = spawn(
      process.execPath,
      [
        ...SMALL_HEAP_FLAGS,
        fileURLToPath(import.meta.url),
        "--measure-child",
        `--directory=${directory}`,
        `--upstream=${upstream.url}`,
        `--rows=${rows}`,
        `--concurrency=${concurrency}`,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const smallHeap = JSON.parse(await firstLine(child)) as RunResult & { peakRssMb: number };

    const bound = (n: number) => (n * 1000) / latencyMs;
    const line = (label: string, result: RunResult, n: number, extra = "") =>
      console.log(
        `  ${label.padEnd(34)} ${String(result.rows).padStart(6)} in ${result.seconds.toFixed(1).padStart(5)} s ` +
          `${result.rate.toFixed(1).padStart(7)}/s  ${((100 * result.rate) / bound(n)).toFixed(1).padStart(5)} % of the bound ${bound(n).toFixed(0)}/s${extra}`,
      );
    line("enrich, concurrency 1", one, 1);
    line(`enrich, concurrency ${concurrency}`, many, concurrency);
    console.log(
      `  speed-up ${(many.rate / one.rate).toFixed(1)}×; peak RSS ${enrichRss.toFixed(1)} MB (${startRss.toFixed(1)} MB at start)`,
    );
    console.log(`ceilings on this machine at concurrency ${concurrency}:`);
    line("bare HTTP requests to the upstream", bareHttp, concurrency);
    line("bare prompts through the hub", bareHub, concurrency);
    console.log(`small V8 heap (${SMALL_HEAP_FLAGS.join(" ")}):`);
    line(
      `enrich, concurrency ${concurrency}`,
      smallHeap,
      concurrency,
      `; peak RSS ${smallHeap.peakRssMb.toFixed(1)} MB`,
    );
    const target = 0.9 * bound(concurrency);
    console.log(
      `target ≥ ${target.toFixed(0)} rows/s at ${concurrency}: ${many.rate >= target ? "met" : "NOT met"}; ` +
        `peak RSS < 150 MB: ${enrichRss < 150 ? "met" : `NOT met (small heap: ${smallHeap.peakRssMb < 150 ? "met" : "NOT met"})`}`,
    );
  } finally {
    upstream.child.stdin?.end();
    rmSync(directory, { recursive: true, force: true });
  }
}

if (process.argv.includes("--serve-upstream")) await serveUpstream();
else if (process.argv.includes("--measure-child")) await measureChild();
else await main();
