/**
 * What Switchboard adds inside the Vercel AI SDK: `generateText` through `createSwitchboard` (a
 * purpose, the usage log on SQLite and a spending limit reserved and settled on every call)
 * against the AI SDK's own `@ai-sdk/openai-compatible` provider, both to the same fake OpenAI
 * server in the same run. A third variant without the limit shows what the provider and the
 * usage log cost apart from the limit's reserve and settle. Then the same for `streamText`,
 * read to the end. `npm run bench:ai-sdk` (`-- --rounds=N --calls=N`).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import type { LanguageModelV4 } from "@ai-sdk/provider";
import { createSwitchboard } from "@switchboard/ai-sdk";
import { KeyStore } from "@switchboard/core";
import { startFakeOpenAI } from "@switchboard/core/testing";
import { Hub, type HubConfigInput } from "@switchboard/hub";
import { generateText, streamText } from "ai";
import { measure, numberArg, printComparison } from "./measure.ts";

const rounds = numberArg("rounds", 12);
const callsPerRound = numberArg("calls", 200);
const TARGET_MS = 0.15;

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;
const directory = mkdtempSync(join(tmpdir(), "switchboard-bench-ai-sdk-"));
const fake = await startFakeOpenAI({ record: false });

async function governedModel(
  name: string,
  extra: HubConfigInput,
): Promise<{ hub: Hub; model: LanguageModelV4 }> {
  const hub = await Hub.create({
    config: {
      providers: { mock: { type: "openai", base_url: fake.url, models: ["bench-model"] } },
      purposes: { enrichments: { model: "bench-model" } },
      storage: `sqlite:${join(directory, `${name}.db`)}`,
      accounting: { pricing: { "bench-model": { input: 0.1, output: 0.4 } } },
      ...extra,
    },
    keys: new KeyStore(join(directory, "keys.json")),
    env: {},
  });
  return { hub, model: createSwitchboard({ hub, actor: { id: "bench" } })("purpose:enrichments") };
}

const full = await governedModel("full", {
  limits: { daily: { scope: "actor", window: "calendar-day", amount_usd: 1_000_000 } },
});
const logOnly = await governedModel("log-only", {});
const plain = createOpenAICompatible({ name: "mock", baseURL: fake.url })("bench-model");

console.log(
  `bench:ai-sdk — ${rounds} interleaved rounds × ${callsPerRound} sequential calls, Node ${process.versions.node}`,
);
const generate = (model: LanguageModelV4) => () => generateText({ model, prompt: "hello there" });
const [plainGenerate, fullGenerate, logGenerate] = await measure(
  [
    { name: "openai-compatible generateText", call: generate(plain) },
    { name: "switchboard (log + limit)", call: generate(full.model) },
    { name: "switchboard (log, no limit)", call: generate(logOnly.model) },
  ],
  { rounds, callsPerRound, warmupCalls: 300 },
);
printComparison(
  "generateText to a fake OpenAI server: switchboard with a purpose, the usage log and a limit",
  plainGenerate!,
  fullGenerate!,
  TARGET_MS,
);
printComparison("generateText, switchboard without the limit", plainGenerate!, logGenerate!);

const stream = (model: LanguageModelV4) => async () => streamText({ model, prompt: "hello there" }).text;
const [plainStream, fullStream, logStream] = await measure(
  [
    { name: "openai-compatible streamText", call: stream(plain) },
    { name: "switchboard (log + limit)", call: stream(full.model) },
    { name: "switchboard (log, no limit)", call: stream(logOnly.model) },
  ],
  { rounds, callsPerRound, warmupCalls: 300 },
);
printComparison("streamText read to the end, same server, log and limit", plainStream!, fullStream!);
printComparison("streamText, switchboard without the limit", plainStream!, logStream!);

for (const { hub } of [full, logOnly]) {
  await hub.flush();
  await hub.close();
}
await fake.close();
rmSync(directory, { recursive: true, force: true });
