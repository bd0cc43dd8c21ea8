/**
 * What the hub adds per call over the core: the same echo and fake-OpenAI prompts direct through
 * the core and through a hub with two promptContext plugins (usage logging off, to measure the
 * routing and hook machinery alone; `bench:accounting` measures logging). `npm run bench:hub`.
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import { echoPlugin, KeyStore, openaiCompatiblePlugin, Registry } from "@switchboard/core";
import { startFakeOpenAI } from "@switchboard/core/testing";
import { Hub, type SwitchboardPlugin } from "@switchboard/hub";
import { openStore } from "@switchboard/store";
import { measure, numberArg, printComparison } from "./measure.ts";

const rounds = numberArg("rounds", 12);
const callsPerRound = numberArg("calls", 300);

const fake = await startFakeOpenAI({ record: false });
const keys = new KeyStore(join(tmpdir(), "switchboard-bench-keys.json"));
const providers = [
  echoPlugin(),
  openaiCompatiblePlugin({ name: "bench", baseUrl: fake.url, models: [{ id: "bench-model" }] }),
];
const registry = await Registry.create(providers, { keys });

let observed = 0;
const counting: SwitchboardPlugin = {
  name: "count",
  promptContext: () => ({
    onResponse: () => {
      observed++;
    },
  }),
};
const timing: SwitchboardPlugin = {
  name: "time",
  promptContext: () => {
    let started = 0;
    return {
      before: () => {
        started = performance.now();
      },
      after: () => {
        observed += performance.now() >= started ? 0 : 1;
      },
    };
  },
};
const hub = await Hub.create({
  config: { default_model: "echo", usage: { enabled: false } },
  providers,
  plugins: [counting, timing],
  keys,
  store: await openStore("sqlite::memory:"),
});

console.log(
  `bench:hub — ${rounds} interleaved rounds × ${callsPerRound} sequential calls, Node ${process.versions.node}`,
);
for (const id of ["echo", "bench-model"]) {
  const direct = registry.get(id);
  const governed = await hub.model({ model: id });
  const [core, viaHub] = await measure(
    [
      { name: `core ${id}`, call: () => direct.prompt("hello there").text() },
      { name: `hub ${id} (2 promptContext plugins)`, call: () => governed.prompt("hello there").text() },
    ],
    { rounds, callsPerRound, warmupCalls: 300 },
  );
  printComparison(id === "echo" ? "Echo model (no network)" : "Fake OpenAI server", core!, viaHub!, 0.1);
}
const resolveStarted = performance.now();
for (let i = 0; i < 2000; i++) await hub.model({ model: "echo" });
console.log(
  `\nhub.model() resolution (allowlists, filters, keys): ${((performance.now() - resolveStarted) / 2000).toFixed(4)} ms/call`,
);
console.log(`(hooks observed ${observed} responses)`);
await hub.close();
await fake.close();
