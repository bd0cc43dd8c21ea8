/**
 * How long each admin page takes to render on the server with 100,000 usage rows in the database:
 * seeds a fresh SQLite file (or, with --postgres, a fresh schema on $SWITCHBOARD_TEST_POSTGRES_URL)
 * with rows spread over 30 days, signs in as root, and times GET of every page in-process
 * (`app.request()`, no network). `npm run bench:ui [-- --rows=N --runs=N --postgres]`.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KeyStore } from "@switchboard/core";
import { Hub } from "@switchboard/hub";
import { createApp } from "@switchboard/server";
import { openStore, type Store, type UsageRecordInput } from "@switchboard/store";
import { postgresTestUrl } from "@switchboard/store/testing";
import { numberArg } from "./measure.ts";

const rows = numberArg("rows", 100_000);
const runs = numberArg("runs", 30);
const postgres = process.argv.includes("--postgres");
const TARGET_MS = 50;
const DAY_MS = 86_400_000;

const PURPOSES = [
  "summaries",
  "extract",
  "enrichments",
  "sql-assistant",
  "chat",
  "triage",
  "translate",
  "search",
];
const MODELS = ["gpt-4o-mini", "gpt-4.1", "claude-sonnet-4.5", "claude-haiku-4.5", "echo", "markov"];

async function openBenchStore(): Promise<{ store: Store; drop: () => Promise<void> }> {
  if (!postgres) {
    const dir = mkdtempSync(join(tmpdir(), "switchboard-bench-ui-"));
    return { store: await openStore(`sqlite:${join(dir, "switchboard.db")}`), drop: async () => {} };
  }
  const schema = `bench_ui_${Date.now().toString(36)}`;
  const store = await openStore(postgresTestUrl(), { schema });
  return {
    store,
    drop: async () => {
      const pg = (await import("pg")).default;
      const client = new pg.Client({ connectionString: postgresTestUrl() });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    },
  };
}

/** Rows spread over 30 days; every 20th response is the step of a two-step chain; 2% fail. */
function usageRows(count: number, now: number): UsageRecordInput[] {
  const seeded: UsageRecordInput[] = [];
  for (let index = 0; index < count; index++) {
    const model = MODELS[index % MODELS.length] as string;
    const chain = index % 20 < 2 ? `chain_${Math.floor(index / 20)}` : undefined;
    seeded.push({
      id: `resp_bench_${index.toString().padStart(7, "0")}`,
      createdAt: now - Math.floor(((count - index) / count) * 30 * DAY_MS),
      modelRequested: model,
      modelAnswered: model,
      purpose: PURPOSES[(index * 7) % PURPOSES.length],
      actorId: `actor-${(index * 13) % 200}`,
      inputTokens: 200 + (index % 500),
      outputTokens: 50 + (index % 300),
      cachedTokens: index % 3 === 0 ? 100 : undefined,
      costNanocents: BigInt(1_000_000 + (index % 1000) * 10_000),
      durationMs: 300 + (index % 2000),
      chainId: chain,
      status: index % 50 === 0 ? "error" : "ok",
      error: index % 50 === 0 ? "PROVIDER_ERROR: upstream said no" : undefined,
      prompt: index % 10 === 0 ? `Summarise row ${index}` : undefined,
      response: index % 10 === 0 ? `Row ${index} in short.` : undefined,
    });
  }
  return seeded;
}

const { store, drop } = await openBenchStore();
const now = Date.now();
const seedStarted = performance.now();
const all = usageRows(rows, now);
for (let offset = 0; offset < all.length; offset += 5_000)
  await store.insertUsage(all.slice(offset, offset + 5_000));
const seedMs = performance.now() - seedStarted;

const hub = await Hub.create({
  config: {
    default_model: "echo",
    require_keys: false,
    usage: { log_prompts: true },
    purposes: Object.fromEntries(
      PURPOSES.map((purpose) => [purpose, { description: `The ${purpose} purpose` }]),
    ),
    limits: {
      daily: { scope: "instance", window: "calendar-day", amount_usd: 50 },
      "per-actor": { scope: "actor", window: "rolling-7d", amount_usd: 5 },
    },
  },
  store,
  env: {},
  keys: new KeyStore(join(tmpdir(), "switchboard-bench-ui-keys.json")),
});
const app = createApp({ hub });
const { token } = await hub.logins.createLink("root");
const cookie =
  ((await app.request(`/-/login?token=${token}`)).headers.get("set-cookie") ?? "").split(";")[0] ?? "";

const PAGES = [
  "/-/",
  "/-/purposes",
  "/-/purposes/summaries",
  "/-/models",
  "/-/usage",
  "/-/usage?range=30d&by=model",
  "/-/usage?range=90d&by=actor",
  "/-/usage?range=24h&bucket=hour",
  // No rollup holds these two: they are summed from the log through its indexes.
  "/-/usage?range=30d&by=actor&purpose=summaries",
  "/-/usage?range=7d&bucket=hour&by=actor",
  "/-/usage.csv?range=30d",
  "/-/log",
  "/-/log?purpose=summaries",
  "/-/limits",
  "/-/playground",
  "/-/tokens",
  "/-/secrets",
  "/-/audit",
];

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
console.log(
  `bench:ui — ${rows.toLocaleString("en-US")} usage rows on ${postgres ? "PostgreSQL" : "SQLite"} (seeded in ${(seedMs / 1000).toFixed(1)} s), ${runs} renders per page after 3 warm-ups, Node ${process.versions.node}`,
);
console.log(`  ${"page".padEnd(46)} ${"median".padStart(9)} ${"max".padStart(9)}   status`);
let slowest = 0;
for (const path of PAGES) {
  const times: number[] = [];
  let status = 0;
  for (let run = 0; run < runs + 3; run++) {
    const started = performance.now();
    const response = await app.request(path, { headers: { cookie } });
    await response.arrayBuffer();
    if (run >= 3) times.push(performance.now() - started);
    status = response.status;
  }
  const middle = median(times);
  slowest = Math.max(slowest, middle);
  console.log(
    `  ${path.padEnd(46)} ${`${middle.toFixed(2)} ms`.padStart(9)} ${`${Math.max(...times).toFixed(2)} ms`.padStart(9)}   ${status}`,
  );
}
console.log(
  `slowest median: ${slowest.toFixed(2)} ms (target < ${TARGET_MS} ms: ${slowest < TARGET_MS ? "met" : "NOT met"})`,
);
await hub.close();
await drop();
