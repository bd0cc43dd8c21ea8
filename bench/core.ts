/**
 * Per-call overhead of the core against raw fetch to the same local fake OpenAI server,
 * streaming and not. Run with `npm run bench:core` (options: --rounds=N --calls=N).
 */

import { tmpdir } from "node:os";
import { join } from "node:path";
import { KeyStore, openaiCompatiblePlugin, Registry } from "@switchboard/core";
import { startFakeOpenAI } from "@switchboard/core/testing";
import { measure, numberArg, printComparison } from "./measure.ts";

const rounds = numberArg("rounds", 12);
const callsPerRound = numberArg("calls", 200);

const fake = await startFakeOpenAI({ record: false });
const registry = await Registry.create(
  [openaiCompatiblePlugin({ name: "bench", baseUrl: fake.url, models: [{ id: "bench-model" }] })],
  { keys: new KeyStore(join(tmpdir(), "switchboard-bench-keys.json")) },
);
const model = registry.get("bench-model");
const endpoint = `${fake.url}/chat/completions`;

async function rawFetch(stream: boolean): Promise<string> {
  const response = await fetch(endpoint, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: "bench-model",
      messages: [{ role: "user", content: "hello there" }],
      stream,
    }),
  });
  if (!stream) {
    const body = (await response.json()) as { choices: { message: { content: string } }[] };
    return body.choices[0]?.message.content ?? "";
  }
  // The minimum a raw client must do with a stream: read it and pull out the deltas.
  let text = "";
  for (const line of (await response.text()).split("\n")) {
    if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
    const chunk = JSON.parse(line.slice(6)) as { choices: { delta: { content?: string } }[] };
    text += chunk.choices[0]?.delta.content ?? "";
  }
  return text;
}

console.log(
  `bench:core — ${rounds} interleaved rounds × ${callsPerRound} sequential calls, Node ${process.versions.node}`,
);
for (const stream of [false, true]) {
  const [raw, core] = await measure(
    [
      { name: `raw fetch (${stream ? "stream" : "no stream"})`, call: () => rawFetch(stream) },
      {
        name: `switchboard core (${stream ? "stream" : "no stream"})`,
        call: () => model.prompt("hello there", { stream }).text(),
      },
    ],
    { rounds, callsPerRound, warmupCalls: 200 },
  );
  printComparison(stream ? "Streaming" : "Not streaming", raw!, core!, 0.15);
}
await fake.close();
