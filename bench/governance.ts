/**
 * What governance costs per call, in one process against one loopback upstream (the instant mock,
 * in its own process), sequential calls in interleaved rounds, median of the per-round means:
 *  - raw `fetch` (the floor);
 *  - the Vercel AI SDK: `generateText` through a provider registry with one middleware
 *    (`@ai-sdk/openai-compatible`);
 *  - the AI SDK through Switchboard (`createSwitchboard`, a purpose, the usage log and a limit);
 *  - the hub by purpose with logging off; with the usage log only (`log_prompts`, SQLite file);
 *    with one limit only; with full governance (usage log with prompts and one limit).
 * Each line shows ms/call, what it adds over raw fetch, the ratio to raw fetch, and this process's
 * CPU per call (all threads; steadier on a busy machine). A last line puts a floor under the
 * limit: the hub with an accountant that only runs two trivial SQLite write transactions (what a
 * reserve and a settle written at once would cost at the least). Then the same read as streams,
 * and where full governance's time goes: each reserve and settle timed at the store (most
 * reservations are admitted there from a budget lease; settlements and admitted holds are committed
 * in batches by the writer thread), and CPU per prompt on the prompting thread apart from the
 * other threads (the usage and ledger writer, the garbage collector).
 * `npm run bench:governance` (`-- --rounds=N --calls=N --warmup=N`); exits 1 when the target is missed.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import type { LanguageModelV4 } from "@ai-sdk/provider";
import { createSwitchboard } from "@switchboard/ai-sdk";
import { KeyStore } from "@switchboard/core";
import { type Accountant, type Actor, Hub, type HubConfigInput } from "@switchboard/hub";
import type { Store } from "@switchboard/store";
import { createProviderRegistry, generateText, type LanguageModelMiddleware, streamText } from "ai";
import Database from "better-sqlite3";
import { measure, median, numberArg, type VariantResult } from "./measure.ts";
import { MOCK_ANSWER, spawnMockUpstream } from "./mock-upstream.ts";

const rounds = numberArg("rounds", 12);
const callsPerRound = numberArg("calls", 200);
const warmupCalls = numberArg("warmup", 300);
/** Full governance (usage log with prompts and one limit) may add at most this over raw fetch. */
const TARGET_ADDED_MS = 0.25;
const PROMPT = "hello there";

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;
const directory = mkdtempSync(join(tmpdir(), "switchboard-bench-governance-"));
const mock = await spawnMockUpstream();
const actor: Actor = { id: "bench" };

// --- raw fetch ---------------------------------------------------------------------------------

const endpoint = `${mock.url}/chat/completions`;
const rawBody = (stream: boolean) =>
  JSON.stringify({
    model: "bench-model",
    messages: [{ role: "user", content: PROMPT }],
    ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
  });
const rawHeaders = { "content-type": "application/json", authorization: "Bearer unused" };

async function rawFetch(): Promise<string> {
  const response = await fetch(endpoint, { method: "POST", headers: rawHeaders, body: rawBody(false) });
  const body = (await response.json()) as { choices: { message: { content: string } }[] };
  return body.choices[0]?.message.content ?? "";
}

/** Reads the event stream to the end, collecting the content deltas (what a caller would show). */
async function rawFetchStream(): Promise<string> {
  const response = await fetch(endpoint, { method: "POST", headers: rawHeaders, body: rawBody(true) });
  let text = "";
  let buffer = "";
  const decoder = new TextDecoder();
  for await (const bytes of response.body as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(bytes, { stream: true });
    let end = buffer.indexOf("\n\n");
    while (end >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf("\n\n");
      const data = event.startsWith("data: ") ? event.slice(6) : "";
      if (data === "" || data === "[DONE]") continue;
      const chunk = JSON.parse(data) as { choices: { delta: { content?: string } }[] };
      text += chunk.choices[0]?.delta.content ?? "";
    }
  }
  return text;
}

// --- the AI SDK, plain --------------------------------------------------------------------------

/** A pass-through middleware: what any real one (logging, defaults, guardrails) costs at least. */
const passThrough: LanguageModelMiddleware = {
  wrapGenerate: ({ doGenerate }) => doGenerate(),
  wrapStream: ({ doStream }) => doStream(),
};
const registry = createProviderRegistry(
  { mock: createOpenAICompatible({ name: "mock", baseURL: mock.url, includeUsage: true }) },
  { languageModelMiddleware: passThrough },
);
const aiSdkModel = registry.languageModel("mock:bench-model");

// --- hubs ---------------------------------------------------------------------------------------

const keys = new KeyStore(join(directory, "keys.json"));
const usageLog: HubConfigInput = { usage: { enabled: true, log_prompts: true } };
const loggingOff: HubConfigInput = { usage: { enabled: false } };
const oneLimit: HubConfigInput = {
  limits: { daily: { scope: "actor", window: "calendar-day", amount_usd: 1_000_000_000 } },
};

/**
 * An accountant that holds nothing and only commits one trivial write transaction to its own
 * SQLite file (WAL, as the store opens it) on reserve and one on settle.
 */
function twoTransactionsAccountant(): Accountant {
  const db = new Database(join(directory, "floor.db"));
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.exec("CREATE TABLE counter (name TEXT PRIMARY KEY, value INTEGER) WITHOUT ROWID");
  db.exec("INSERT INTO counter VALUES ('calls', 0)");
  const bump = db.prepare("UPDATE counter SET value = value + 1 WHERE name = 'calls'");
  const write = db.transaction(() => bump.run());
  return {
    name: "two-transactions",
    async reserve() {
      write.immediate();
    },
    async settle() {
      write.immediate();
    },
    async rollback() {},
  };
}

async function openHub(name: string, extra: HubConfigInput, accountant?: Accountant): Promise<Hub> {
  return Hub.create({
    ...(accountant ? { plugins: [{ name: "floor", registerAccountants: () => [accountant] }] } : {}),
    config: {
      providers: { mock: { type: "openai", base_url: mock.url, models: ["bench-model"] } },
      purposes: { enrichments: { model: "bench-model" } },
      storage: `sqlite:${join(directory, `${name}.db`)}`,
      accounting: { pricing: { "bench-model": { input: 0.1, output: 0.4 } } },
      ...extra,
    },
    keys,
    env: {},
  });
}

const hubs = {
  bare: await openHub("bare", loggingOff),
  logOnly: await openHub("log-only", usageLog),
  limitOnly: await openHub("limit-only", { ...loggingOff, ...oneLimit }),
  full: await openHub("full", { ...usageLog, ...oneLimit }),
  floor: await openHub("floor", loggingOff, twoTransactionsAccountant()),
};
const viaSwitchboard = createSwitchboard({ hub: hubs.full, actor })("purpose:enrichments");

/** One governed prompt as an application makes it: ask the hub by purpose, then prompt. */
const hubCall = (hub: Hub, stream: boolean) => async () => {
  const model = await hub.model({ purpose: "enrichments", actor });
  const response = model.prompt(PROMPT, { stream });
  if (!stream) return response.text();
  let text = "";
  for await (const chunk of response) text += chunk;
  return text;
};

// --- measure ------------------------------------------------------------------------------------

interface Section {
  title: string;
  callsPerRound: number;
  variants: { name: string; call: () => Promise<unknown> }[];
}

const generate = (model: LanguageModelV4) => async () => (await generateText({ model, prompt: PROMPT })).text;
const stream = (model: LanguageModelV4) => async () => streamText({ model, prompt: PROMPT }).text;

const FULL = "hub, full governance (log + limit)";
const AI_SDK = "AI SDK (registry + middleware)";
const FLOOR = "hub + 2 trivial SQLite write transactions";
const BARE = "hub by purpose, logging off";
const sections: Section[] = [
  {
    title: "Not streamed: one answer, awaited",
    callsPerRound,
    variants: [
      { name: "raw fetch", call: rawFetch },
      { name: `${AI_SDK}`, call: generate(aiSdkModel) },
      { name: "AI SDK via Switchboard (log + limit)", call: generate(viaSwitchboard) },
      { name: BARE, call: hubCall(hubs.bare, false) },
      { name: "hub, usage log only (log_prompts)", call: hubCall(hubs.logOnly, false) },
      { name: "hub, one limit only", call: hubCall(hubs.limitOnly, false) },
      { name: FULL, call: hubCall(hubs.full, false) },
      { name: FLOOR, call: hubCall(hubs.floor, false) },
    ],
  },
  {
    // The AI SDK's streamText takes several ms a call: fewer calls keep the run short.
    title: "Streamed: read to the end",
    callsPerRound: Math.max(10, Math.round(callsPerRound / 4)),
    variants: [
      { name: "raw fetch", call: rawFetchStream },
      { name: `${AI_SDK}`, call: stream(aiSdkModel) },
      { name: "AI SDK via Switchboard (log + limit)", call: stream(viaSwitchboard) },
      { name: BARE, call: hubCall(hubs.bare, true) },
      { name: FULL, call: hubCall(hubs.full, true) },
    ],
  },
];

// Every variant must really get the answer, or the figures mean nothing.
for (const section of sections) {
  for (const variant of section.variants) {
    const answer = await variant.call();
    if (answer !== MOCK_ANSWER) throw new Error(`${variant.name} answered ${JSON.stringify(answer)}`);
  }
}

console.log(
  `bench:governance — ${rounds} interleaved rounds of sequential calls per variant, median of the round means, ` +
    `Node ${process.versions.node}, mock upstream in its own process at ${mock.url}`,
);

const signed = (ms: number) => `${ms < 0 ? "−" : "+"}${Math.abs(ms).toFixed(3)}`;

function printSection(title: string, results: VariantResult[]): { met: boolean } {
  const [raw] = results;
  if (!raw) return { met: false };
  const width = Math.max(...results.map((result) => result.name.length)) + 2;
  console.log(`\n${title}`);
  console.log(
    `  ${"".padEnd(width)}${"ms/call".padStart(9)}${"added".padStart(9)}${"ratio".padStart(8)}${"cpu ms".padStart(9)}${"cpu added".padStart(11)}`,
  );
  let met = false;
  for (const result of results) {
    const added = result.medianMs - raw.medianMs;
    const cpuAdded = result.medianCpuMs - raw.medianCpuMs;
    let note = "";
    if (result.name === FULL) {
      met = added <= TARGET_ADDED_MS;
      note = `   target ≤ ${TARGET_ADDED_MS} ms added: ${met ? "met" : "NOT met"}`;
    }
    console.log(
      `  ${result.name.padEnd(width)}${result.medianMs.toFixed(3).padStart(9)}${(result === raw ? "—" : signed(added)).padStart(9)}` +
        `${(result.medianMs / raw.medianMs).toFixed(2).padStart(8)}${result.medianCpuMs.toFixed(3).padStart(9)}` +
        `${(result === raw ? "—" : signed(cpuAdded)).padStart(11)}${note}`,
    );
  }
  const aiSdk = results.find((result) => result.name === AI_SDK);
  const full = results.find((result) => result.name === FULL);
  const bare = results.find((result) => result.name === BARE);
  if (bare && full) {
    console.log(
      `  the usage log and the limit themselves (full governance − hub logging off): ${(full.medianMs - bare.medianMs).toFixed(3)} ms ` +
        `(CPU ${(full.medianCpuMs - bare.medianCpuMs).toFixed(3)} ms)`,
    );
  }
  if (aiSdk && full) {
    const aiSdkAdded = aiSdk.medianMs - raw.medianMs;
    const fullAdded = full.medianMs - raw.medianMs;
    console.log(
      `  full governance adds ${fullAdded.toFixed(3)} ms, the plain AI SDK ${aiSdkAdded.toFixed(3)} ms: ` +
        `governance costs ${(fullAdded / aiSdkAdded).toFixed(2)}× what the AI SDK's own call adds ` +
        `(CPU: ${((full.medianCpuMs - raw.medianCpuMs) / (aiSdk.medianCpuMs - raw.medianCpuMs)).toFixed(2)}×)`,
    );
  }
  return { met };
}

let targetMet = true;
for (const section of sections) {
  const results = await measure(section.variants, {
    rounds,
    callsPerRound: section.callsPerRound,
    warmupCalls: Math.min(warmupCalls, section.callsPerRound * 2),
  });
  const { met } = printSection(`${section.title} (${section.callsPerRound} calls a round)`, results);
  if (section === sections[0]) targetMet = met;
}

// --- where the time goes -------------------------------------------------------------------------

/** Times every call of the store's `methods`, wrapped on this one object; `restore` unwraps them. */
function timeStoreCalls(store: Store, methods: readonly string[]) {
  const target = store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const samples = new Map<string, number[]>(methods.map((method) => [method, []]));
  for (const method of methods) {
    const original = target[method]?.bind(store);
    if (!original) throw new Error(`the store has no ${method}`);
    target[method] = async (...args: unknown[]) => {
      const started = performance.now();
      try {
        return await original(...args);
      } finally {
        samples.get(method)?.push((performance.now() - started) * 1000);
      }
    };
  }
  return {
    samples,
    restore: () => {
      for (const method of methods) delete target[method];
    },
  };
}

/** CPU of one prompt in µs: this thread's, and the rest of the process's (other threads). */
interface CpuSplit {
  main: number;
  others: number;
}

/** `rounds` interleaved rounds of `prompts` prompts per hub; the median split of each hub. */
async function cpuSplits(list: readonly Hub[], prompts: number): Promise<CpuSplit[]> {
  const perRound = list.map(() => ({ main: [] as number[], others: [] as number[] }));
  for (let round = 0; round < rounds; round++) {
    for (const index of round % 2 === 0 ? list.keys() : [...list.keys()].reverse()) {
      const hub = list[index] as Hub;
      const call = hubCall(hub, false);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const processStarted = process.cpuUsage();
      const threadStarted = process.threadCpuUsage();
      for (let i = 0; i < prompts; i++) await call();
      await hub.flush(); // writing the usage rows counts too
      const all = process.cpuUsage(processStarted);
      const main = process.threadCpuUsage(threadStarted);
      perRound[index]?.main.push((main.user + main.system) / prompts);
      perRound[index]?.others.push((all.user + all.system - main.user - main.system) / prompts);
    }
  }
  return perRound.map(({ main, others }) => ({ main: median(main), others: median(others) }));
}

function describeSpans(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const total = sorted.reduce((sum, value) => sum + value, 0);
  const at = (quantile: number) => (sorted[Math.floor(sorted.length * quantile)] ?? 0).toFixed(0);
  const slowest = sorted.slice(Math.floor(sorted.length * 0.99)).reduce((sum, value) => sum + value, 0);
  return (
    `mean ${(total / sorted.length).toFixed(0).padStart(4)} µs   p50 ${at(0.5).padStart(4)}   p99 ${at(0.99).padStart(5)}   ` +
    `max ${(sorted.at(-1) ?? 0).toFixed(0).padStart(6)}   (the slowest 1 % take ${((100 * slowest) / total).toFixed(0)} % of it)`
  );
}

const timed = timeStoreCalls(await hubs.full.store(), ["reserveAgainstCaps", "closeReservation"]);
const [bareCpu, logCpu, fullCpu] = await cpuSplits([hubs.bare, hubs.logOnly, hubs.full], callsPerRound);
timed.restore();
console.log(
  `\nWhere full governance's time goes (${rounds} interleaved rounds × ${callsPerRound} prompts per hub, not streamed):`,
);
const reserves = timed.samples.get("reserveAgainstCaps") ?? [];
const settles = timed.samples.get("closeReservation") ?? [];
console.log(`  reserve (store.reserveAgainstCaps)  ${describeSpans(reserves)}`);
console.log(`  settle  (store.closeReservation)    ${describeSpans(settles)}`);
console.log(
  "  (most reservations are admitted from a budget lease in memory; settlements and the holds of admitted\n" +
    "   reservations are committed every 50 ms by the writer thread, its CPU counted under other threads below)",
);
const cpuLine = (name: string, split: CpuSplit | undefined) =>
  `  CPU per prompt, ${name.padEnd(17)} prompting thread ${split?.main.toFixed(0).padStart(4)} µs, other threads ${split?.others.toFixed(0).padStart(4)} µs`;
console.log(cpuLine("hub bare:", bareCpu));
console.log(cpuLine("usage log only:", logCpu));
console.log(cpuLine("full governance:", fullCpu));

for (const hub of Object.values(hubs)) {
  await hub.flush();
  await hub.close();
}
await mock.close();
rmSync(directory, { recursive: true, force: true });
if (!targetMet) process.exitCode = 1;
