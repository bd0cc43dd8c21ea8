/**
 * Budgets and usage logging under load. `npm run bench:accounting` prints:
 *  - reserve + settle latency of the limits accountant on SQLite and on PostgreSQL (when one answers
 *    at $SWITCHBOARD_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/test);
 *  - what one limit adds per echo prompt through the hub (SQLite file, usage logging off and on);
 *  - throughput of N concurrent echo prompts with usage logging on vs off, and the ratio.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KeyStore, newId } from "@switchboard/core";
import { startFakeOpenAI } from "@switchboard/core/testing";
import { Hub, type HubConfigInput, parseConfig } from "@switchboard/hub";
import { limitsAccountant } from "@switchboard/hub/internal";
import { openStore, type Store } from "@switchboard/store";
import pg from "pg";
import { measure, numberArg, printComparison } from "./measure.ts";

const operations = numberArg("ops", 2000);
const concurrent = numberArg("concurrent", 500);
const waves = numberArg("waves", 20);
const rounds = numberArg("rounds", 6);
const directory = mkdtempSync(join(tmpdir(), "switchboard-bench-"));
const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

async function reserveSettle(store: Store, label: string): Promise<void> {
  const config = parseConfig({
    limits: { daily: { scope: "instance", window: "calendar-day", amount_usd: 1_000_000 } },
  });
  const accountant = limitsAccountant(config, async () => store);
  const reservation = { amount: 1_000_000n, modelId: "echo", purpose: undefined, actor: undefined };
  for (let i = 0; i < 200; i++) {
    const txId = newId("tx");
    await accountant.reserve({ ...reservation, txId });
    await accountant.settle(txId, 900_000n, reservation.amount);
  }
  const samples: number[] = [];
  for (let i = 0; i < operations; i++) {
    const txId = newId("tx");
    const started = performance.now();
    await accountant.reserve({ ...reservation, txId });
    await accountant.settle(txId, 900_000n, reservation.amount);
    samples.push(performance.now() - started);
  }
  const total = samples.reduce((sum, value) => sum + value, 0);
  console.log(
    `  ${label.padEnd(12)} median ${median(samples).toFixed(3)} ms   mean ${(total / operations).toFixed(3)} ms   p99 ${[...samples].sort((a, b) => a - b)[Math.floor(operations * 0.99)]?.toFixed(3)} ms`,
  );
}

console.log(`bench:accounting — Node ${process.versions.node}`);
console.log(
  `\nreserve + settle (limits accountant, one cap), ${operations} sequential operations (target on SQLite ≤ 0.2 ms):`,
);
const sqlite = await openStore(`sqlite:${join(directory, "bench.db")}`);
await reserveSettle(sqlite, "SQLite");

const postgresUrl = process.env.SWITCHBOARD_TEST_POSTGRES_URL || "postgres://postgres@127.0.0.1:5432/test";
const schema = `sb_bench_${Date.now().toString(36)}`;
let postgres: Store | undefined;
try {
  postgres = await openStore(postgresUrl, { schema });
  await reserveSettle(postgres, "PostgreSQL");
} catch (error) {
  console.log(`  PostgreSQL   not measured: ${(error as Error).message}`);
} finally {
  await postgres?.close();
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect().then(
    () => client.query(`drop schema if exists ${schema} cascade`).finally(() => client.end()),
    () => undefined,
  );
}

const keys = new KeyStore(join(directory, "keys.json"));

/** Sequential echo prompts through a hub on a SQLite file, without and with one instance limit. */
async function limitCost(logging: boolean): Promise<void> {
  const base: HubConfigInput = {
    default_model: "echo",
    usage: { enabled: logging, log_prompts: logging },
    accounting: { pricing: { echo: { input: 1, output: 1 } } },
  };
  const open = async (name: string, config: HubConfigInput) =>
    Hub.create({
      config,
      keys,
      env: {},
      store: await openStore(`sqlite:${join(directory, `limit-${name}-${logging}.db`)}`),
    });
  const bare = await open("bare", base);
  const limited = await open("limited", {
    ...base,
    limits: { daily: { scope: "instance", window: "calendar-day", amount_usd: 1_000_000 } },
  });
  const [bareModel, limitedModel] = [await bare.model(), await limited.model()];
  const [withoutLimit, withLimit] = await measure(
    [
      { name: "echo prompt, no limit", call: () => bareModel.prompt("hello there").text() },
      { name: "echo prompt, one limit", call: () => limitedModel.prompt("hello there").text() },
    ],
    { rounds: 12, callsPerRound: 400, warmupCalls: 400 },
  );
  printComparison(
    `what one limit adds per echo prompt (usage log ${logging ? "on, log_prompts" : "off"}):`,
    withoutLimit!,
    withLimit!,
  );
  // CPU time (this process, every thread) is steadier than wall time on a busy machine.
  const cpuPerCall = async (model: typeof bareModel) => {
    const rounds: number[] = [];
    for (let round = 0; round < 5; round++) {
      const started = process.cpuUsage();
      for (let i = 0; i < 1000; i++) await model.prompt("hello there").text();
      const used = process.cpuUsage(started);
      rounds.push((used.user + used.system) / 1000 / 1000);
    }
    return median(rounds);
  };
  const [bareCpu, limitedCpu] = [await cpuPerCall(bareModel), await cpuPerCall(limitedModel)];
  console.log(
    `  CPU per call: ${bareCpu.toFixed(4)} ms without, ${limitedCpu.toFixed(4)} ms with the limit; added ${(limitedCpu - bareCpu).toFixed(4)} ms`,
  );
  await Promise.all([bare.close(), limited.close()]);
}
await limitCost(false);
await limitCost(true);

interface LoggingComparison {
  /** Prompts per second until every prompt was answered, per variant ("off", "on"). */
  answered: Map<string, number[]>;
  /** Prompts per second until every usage row was committed. */
  committed: Map<string, number[]>;
}

/**
 * Runs `waves` of `concurrency` prompts through a hub with usage logging off and on, in interleaved
 * rounds (the first one warms up), timing both until the answers and until every row is stored.
 */
async function compareLogging(
  name: string,
  config: HubConfigInput,
  concurrency: number,
  waveCount: number,
): Promise<LoggingComparison> {
  const variants = await Promise.all(
    (["off", "on"] as const).map(async (variant) => ({
      name: variant,
      hub: await Hub.create({
        config: { ...config, usage: { enabled: variant === "on" } },
        keys,
        env: {},
        store: await openStore(`sqlite:${join(directory, `${name}-${variant}.db`)}`),
      }),
    })),
  );
  const result: LoggingComparison = { answered: new Map(), committed: new Map() };
  for (let round = 0; round < rounds + 1; round++) {
    for (const variant of round % 2 ? [...variants].reverse() : variants) {
      const model = await variant.hub.model();
      const started = performance.now();
      for (let wave = 0; wave < waveCount; wave++) {
        await Promise.all(
          Array.from({ length: concurrency }, (_, i) => model.prompt(`prompt number ${i}`).text()),
        );
      }
      const answered = performance.now();
      await variant.hub.flush(); // until every row is committed
      const committed = performance.now();
      if (round === 0) continue;
      const prompts = concurrency * waveCount;
      for (const [figures, elapsed] of [
        [result.answered, answered - started],
        [result.committed, committed - started],
      ] as const) {
        figures.set(variant.name, [...(figures.get(variant.name) ?? []), (prompts / elapsed) * 1000]);
      }
    }
  }
  for (const variant of variants) await variant.hub.close();
  return result;
}

function report(label: string, figures: Map<string, number[]>): void {
  const off = median(figures.get("off") ?? []);
  const on = median(figures.get("on") ?? []);
  console.log(`  ${label}`);
  console.log(
    `    logging off ${off.toFixed(0).padStart(7)} prompts/s   logging on ${on.toFixed(0).padStart(7)} prompts/s`,
  );
  console.log(
    `    ratio on/off ${(on / off).toFixed(3)}   logging costs ${(100 * (1 - on / off)).toFixed(1)} % of throughput`,
  );
}

console.log(
  `\nthroughput: ${waves} waves of ${concurrent} concurrent echo prompts, ${rounds} interleaved rounds (target: logging costs ≤ 10 %):`,
);
const echo = await compareLogging("echo", { default_model: "echo" }, concurrent, waves);
report("prompts answered (rows written by the usage writer thread in the background):", echo.answered);
report("sustained, until every usage row is committed to SQLite:", echo.committed);

// The same comparison where each prompt crosses HTTP, as with a real provider (a local fake server).
const fake = await startFakeOpenAI({ record: false });
const httpConcurrent = Math.min(concurrent, 100);
const http = await compareLogging(
  "http",
  {
    default_model: "fake-model",
    providers: { fake: { type: "openai", base_url: fake.url, models: ["fake-model"] } },
  },
  httpConcurrent,
  20,
);
report(
  `for comparison, ${httpConcurrent} concurrent prompts to a local fake OpenAI server, until every row is committed:`,
  http.committed,
);
await fake.close();
await sqlite.close();
rmSync(directory, { recursive: true, force: true });
