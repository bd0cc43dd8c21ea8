/**
 * The gateway under load: `switchboard serve` (a child process) fronting the instant mock upstream
 * (another process), with the usage log (`log_prompts`, SQLite) and one limit on, measured in the
 * same run as the mock hit directly:
 *  - autocannon at 1, 10 and 50 connections, streamed and not: req/s, p50 and p99;
 *  - sequential added latency: interleaved rounds of direct and gateway requests, median of the
 *    rounds' medians; the same for the time to the first streamed chunk;
 *  - the gateway's peak RSS, and start-up: from spawning `switchboard serve` to its first 200.
 * Beside both, a minimal Node proxy (bench/minimal-proxy.ts, its own process) shows what the extra
 * hop alone costs on this machine, so the gateway's own share is the difference to it.
 * Only 127.0.0.1 is used. `npm run bench:gateway` (`-- --duration=S --rounds=N --calls=N`;
 * `--switchboard=PATH` runs another checkout's `packages/cli/bin/switchboard.js`).
 * Exits 1 when a target is missed.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import autocannon from "autocannon";
import Database from "better-sqlite3";
import { median, numberArg } from "./measure.ts";
import { spawnMinimalProxy } from "./minimal-proxy.ts";
import { MOCK_ANSWER, spawnMockUpstream } from "./mock-upstream.ts";

const durationSeconds = numberArg("duration", 3);
const rounds = numberArg("rounds", 10);
const callsPerRound = numberArg("calls", 100);
const startups = numberArg("startups", 3);
const bin =
  process.argv.find((arg) => arg.startsWith("--switchboard="))?.slice("--switchboard=".length) ??
  new URL("../packages/cli/bin/switchboard.js", import.meta.url).pathname;

/** No request may hang the benchmark. */
const REQUEST_TIMEOUT_MS = 10_000;

const TARGETS = {
  requestsPerSecondAt10: 2000,
  p99At10Ms: 15,
  addedP50Ms: 0.5,
  firstChunkAddedMs: 1,
  rssMb: 120,
  startupMs: 500,
};

const directory = mkdtempSync(join(tmpdir(), "switchboard-bench-gateway-"));
const mock = await spawnMockUpstream();
const configPath = join(directory, "switchboard.yaml");
const databasePath = join(directory, "switchboard.db");
// JSON is YAML: the gateway reads this as its switchboard.yaml.
writeFileSync(
  configPath,
  JSON.stringify({
    providers: { mock: { type: "openai", base_url: mock.url, models: ["bench-model"] } },
    purposes: { bench: { description: "Benchmark traffic", model: "bench-model" } },
    storage: `sqlite:${databasePath}`,
    usage: { log_prompts: true },
    accounting: { pricing: { "bench-model": { input: 0.1, output: 0.4 } } },
    limits: { daily: { scope: "actor", window: "calendar-day", amount_usd: 1_000_000_000 } },
  }),
);
const env = { ...process.env, SWITCHBOARD_USER_PATH: directory, SWITCHBOARD_CONFIG: configPath };

const created = spawnSync(
  process.execPath,
  [bin, "tokens", "create", "bench", "--actor", "bench", "--purpose", "bench"],
  {
    env,
    encoding: "utf8",
  },
);
const token = created.stdout.trim();
if (created.status !== 0 || !token.startsWith("sb_")) {
  throw new Error(`switchboard tokens create failed (${created.status}): ${created.stderr.trim()}`);
}

interface Gateway {
  process: ChildProcess;
  url: string;
  /** ms from spawn to the "listening" line. */
  listeningMs: number;
  stop(): Promise<void>;
}

function startGateway(): Promise<Gateway> {
  const started = performance.now();
  const child = spawn(process.execPath, [bin, "serve", "--port", "0"], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const killChild = () => child.kill();
  process.once("exit", killChild);
  child.once("exit", () => process.off("exit", killChild));
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    const early = (code: number | null) =>
      reject(new Error(`switchboard serve exited with ${code} before listening: ${stderr.trim()}`));
    child.once("exit", early);
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      const url = /listening on (http:\/\/\S+)/.exec(line)?.[1];
      if (!url) return;
      child.off("exit", early);
      resolve({
        process: child,
        url,
        listeningMs: performance.now() - started,
        stop: () =>
          new Promise((done) => {
            if (child.exitCode !== null) return done();
            child.once("exit", () => done());
            child.kill("SIGTERM");
          }),
      });
    });
  });
}

// --- requests ----------------------------------------------------------------------------------

const requestBody = (model: string, stream: boolean) =>
  JSON.stringify({
    model,
    messages: [{ role: "user", content: "hello there" }],
    ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
  });

interface Target {
  name: string;
  url: string;
  headers: Record<string, string>;
  body: (stream: boolean) => string;
}

const direct: Target = {
  name: "mock directly",
  url: `${mock.url}/chat/completions`,
  headers: { "content-type": "application/json", authorization: "Bearer unused" },
  body: (stream) => requestBody("bench-model", stream),
};
const proxy = await spawnMinimalProxy(mock.url);
const viaProxy: Target = {
  ...direct,
  name: "through the minimal proxy",
  url: `${proxy.url}/chat/completions`,
};
const gatewayTarget = (url: string): Target => ({
  name: "through the gateway",
  url: `${url}/v1/chat/completions`,
  headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
  body: (stream) => requestBody("purpose:bench", stream),
});

/** One non-streamed request; ms until the body is read. */
async function timeAnswer(target: Target): Promise<number> {
  const started = performance.now();
  const response = await fetch(target.url, {
    method: "POST",
    headers: target.headers,
    body: target.body(false),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const body = (await response.json()) as { choices?: { message?: { content?: string } }[] };
  const elapsed = performance.now() - started;
  if (response.status !== 200 || body.choices?.[0]?.message?.content !== MOCK_ANSWER) {
    throw new Error(`${target.name} answered ${response.status}: ${JSON.stringify(body).slice(0, 300)}`);
  }
  return elapsed;
}

/** One streamed request; ms until the first chunk of the body, and until its end. */
async function timeStream(target: Target): Promise<{ first: number; end: number }> {
  const started = performance.now();
  const response = await fetch(target.url, {
    method: "POST",
    headers: target.headers,
    body: target.body(true),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  if (response.status !== 200 || !response.body)
    throw new Error(`${target.name} answered ${response.status}`);
  let first: number | undefined;
  let text = "";
  const decoder = new TextDecoder();
  for await (const bytes of response.body as AsyncIterable<Uint8Array>) {
    first ??= performance.now() - started;
    text += decoder.decode(bytes, { stream: true });
  }
  if (!text.includes("[DONE]")) throw new Error(`${target.name} ended its stream without [DONE]`);
  return { first: first ?? 0, end: performance.now() - started };
}

/** Interleaved rounds of sequential calls; per target the median over rounds of each round's median. */
async function sequential(
  targets: readonly Target[],
  measureOne: (target: Target) => Promise<number>,
): Promise<number[]> {
  for (const target of targets) for (let i = 0; i < 50; i++) await measureOne(target);
  const medians = targets.map(() => [] as number[]);
  for (let round = 0; round < rounds; round++) {
    for (const index of round % 2 === 0 ? targets.keys() : [...targets.keys()].reverse()) {
      const samples: number[] = [];
      for (let i = 0; i < callsPerRound; i++) samples.push(await measureOne(targets[index] as Target));
      medians[index]?.push(median(samples));
    }
  }
  return medians.map(median);
}

interface LoadResult {
  requestsPerSecond: number;
  p50: number;
  p99: number;
  failed: number;
}

async function load(target: Target, connections: number, stream: boolean): Promise<LoadResult> {
  const result = await autocannon({
    url: target.url,
    method: "POST",
    headers: target.headers,
    body: target.body(stream),
    connections,
    duration: durationSeconds,
    timeout: REQUEST_TIMEOUT_MS / 1000,
  });
  return {
    requestsPerSecond: result.requests.total / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    failed: result.non2xx + result.errors,
  };
}

// --- RSS ---------------------------------------------------------------------------------------

/** Resident memory of a process in MB, from /proc (Linux): now, and its peak so far. */
function memoryOf(pid: number): { rss: number; peak: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0);
    return { rss: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
  } catch {
    return undefined;
  }
}

// --- run ---------------------------------------------------------------------------------------

console.log(
  `bench:gateway — Node ${process.versions.node}, ${bin}\n` +
    `  gateway: switchboard serve with the usage log (log_prompts, SQLite) and one limit, fronting an instant mock upstream (own process)`,
);

// Start-up: a first start warms the compile cache, as any restart of a deployed server finds it.
const startupSamples: { listening: number; first200: number }[] = [];
for (let attempt = 0; attempt <= startups; attempt++) {
  const spawned = performance.now();
  const candidate = await startGateway();
  await timeAnswer(gatewayTarget(candidate.url));
  const first200 = performance.now() - spawned;
  await candidate.stop();
  if (attempt > 0) startupSamples.push({ listening: candidate.listeningMs, first200 });
}

const gateway = await startGateway();
const viaGateway = gatewayTarget(gateway.url);
let peakRss = 0;
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, memoryOf(gateway.process.pid as number)?.rss ?? 0);
}, 50);

const [directAnswer = 0, proxyAnswer = 0, gatewayAnswer = 0] = await sequential(
  [direct, viaProxy, viaGateway],
  timeAnswer,
);
const [directFirstChunk = 0, proxyFirstChunk = 0, gatewayFirstChunk = 0] = await sequential(
  [direct, viaProxy, viaGateway],
  async (target) => (await timeStream(target)).first,
);

const connectionCounts = [1, 10, 50];
const loads: {
  stream: boolean;
  connections: number;
  direct: LoadResult;
  proxy: LoadResult;
  gateway: LoadResult;
}[] = [];
for (const stream of [false, true]) {
  for (const connections of connectionCounts) {
    loads.push({
      stream,
      connections,
      direct: await load(direct, connections, stream),
      proxy: await load(viaProxy, connections, stream),
      gateway: await load(viaGateway, connections, stream),
    });
  }
}
clearInterval(sampler);
const gatewayMemory = memoryOf(gateway.process.pid as number);
peakRss = Math.max(peakRss, gatewayMemory?.peak ?? 0);
await gateway.stop();

// Governance really ran: one usage row and one settled hold per request through the gateway.
const db = new Database(databasePath, { readonly: true });
const usageRows = Number(
  (db.prepare("SELECT COUNT(*) AS n FROM switchboard_usage").get() as { n: number }).n,
);
const holdsByStatus = new Map(
  (
    db.prepare("SELECT status, COUNT(*) AS n FROM switchboard_holds GROUP BY status").all() as {
      status: string;
      n: number;
    }[]
  ).map(({ status, n }) => [status, Number(n)]),
);
const settledHolds = holdsByStatus.get("settled") ?? 0;
const usageByStatus = (
  db.prepare("SELECT status, COUNT(*) AS n FROM switchboard_usage GROUP BY status").all() as {
    status: string;
    n: number;
  }[]
)
  .map(({ status, n }) => `${n} ${status}`)
  .join(", ");
db.close();

// --- report ------------------------------------------------------------------------------------

const misses: string[] = [];
const check = (met: boolean, what: string) => {
  if (!met) misses.push(what);
  return met ? "met" : "NOT met";
};
const ms = (value: number) => `${value.toFixed(2)} ms`;

console.log(
  `\nLoad (autocannon, ${durationSeconds} s a cell): the mock directly | through a minimal Node proxy | through the gateway`,
);
const header = `${"req/s".padStart(8)}${"p50".padStart(6)}${"p99".padStart(6)}`;
console.log(`  ${"".padEnd(22)}${header}  |${header}  |${header}${"failed".padStart(8)}`);
for (const line of loads) {
  const label = `${line.stream ? "streamed" : "not streamed"}, ${line.connections} conn`;
  const cells = (result: LoadResult) =>
    `${result.requestsPerSecond.toFixed(0).padStart(8)}${String(result.p50).padStart(6)}${String(result.p99).padStart(6)}`;
  console.log(
    `  ${label.padEnd(22)}${cells(line.direct)}  |${cells(line.proxy)}  |${cells(line.gateway)}${String(line.proxy.failed + line.gateway.failed).padStart(8)}`,
  );
}
console.log("  (latencies in ms, autocannon's whole-millisecond resolution)");

const atTen = loads.filter((line) => line.connections === 10);
const addedAnswer = gatewayAnswer - directAnswer;
const addedFirstChunk = gatewayFirstChunk - directFirstChunk;
const startup = {
  listening: median(startupSamples.map((sample) => sample.listening)),
  first200: median(startupSamples.map((sample) => sample.first200)),
};

console.log("\nTargets:");
for (const line of atTen) {
  const kind = line.stream ? "streamed" : "not streamed";
  console.log(
    `  req/s at 10 connections, ${kind.padEnd(12)} ${line.gateway.requestsPerSecond.toFixed(0).padStart(6)}   (target ≥ ${TARGETS.requestsPerSecondAt10}: ${check(line.gateway.requestsPerSecond >= TARGETS.requestsPerSecondAt10, `req/s at 10 connections, ${kind}`)})`,
  );
  console.log(
    `  p99 at 10 connections, ${kind.padEnd(14)} ${`${line.gateway.p99} ms`.padStart(6)}   (target ≤ ${TARGETS.p99At10Ms} ms: ${check(line.gateway.p99 <= TARGETS.p99At10Ms, `p99 at 10 connections, ${kind}`)})`,
  );
}
console.log(
  `  sequential added latency, p50       ${ms(addedAnswer).padStart(9)}   (mock ${ms(directAnswer)}, gateway ${ms(gatewayAnswer)}; target ≤ ${TARGETS.addedP50Ms} ms: ${check(addedAnswer <= TARGETS.addedP50Ms, "sequential added latency")})`,
);
console.log(
  `    of which the extra hop (minimal proxy ${ms(proxyAnswer)}): ${ms(proxyAnswer - directAnswer)}; the gateway's own: ${ms(gatewayAnswer - proxyAnswer)}`,
);
console.log(
  `  first streamed chunk added, p50     ${ms(addedFirstChunk).padStart(9)}   (mock ${ms(directFirstChunk)}, gateway ${ms(gatewayFirstChunk)}; target ≤ ${TARGETS.firstChunkAddedMs} ms: ${check(addedFirstChunk <= TARGETS.firstChunkAddedMs, "first-chunk added latency")})`,
);
console.log(
  `    of which the extra hop (minimal proxy ${ms(proxyFirstChunk)}): ${ms(proxyFirstChunk - directFirstChunk)}; the gateway's own: ${ms(gatewayFirstChunk - proxyFirstChunk)}`,
);
console.log(
  `  gateway RSS, peak                   ${`${peakRss.toFixed(0)} MB`.padStart(9)}   (target ≤ ${TARGETS.rssMb} MB: ${check(peakRss <= TARGETS.rssMb, "RSS")})`,
);
console.log(
  `  start-up to first 200 (median of ${startupSamples.length}) ${`${startup.first200.toFixed(0)} ms`.padStart(8)}   (listening after ${startup.listening.toFixed(0)} ms; target ≤ ${TARGETS.startupMs} ms: ${check(startup.first200 <= TARGETS.startupMs, "start-up")})`,
);
console.log(
  `\nGovernance on every request: ${usageRows} usage rows written (${usageByStatus}), ${settledHolds} limit holds settled` +
    ` (${[...holdsByStatus].map(([status, n]) => `${n} ${status}`).join(", ")}).`,
);
if (misses.length > 0) console.log(`Missed: ${misses.join("; ")}.`);

await proxy.close();
await mock.close();
rmSync(directory, { recursive: true, force: true });
if (misses.length > 0) process.exitCode = 1;
