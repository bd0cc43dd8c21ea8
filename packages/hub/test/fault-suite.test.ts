/**
 * The fault suite: what each upstream fault does to the money and the log. For every fault, against
 * the fake OpenAI and Anthropic servers and on SQLite and PostgreSQL, a purpose without fallbacks
 * shows the error code, the usage row's status and cost and the hold's final state; the same purpose
 * with a fallback shows whether the fallback answered. The table is in the test names.
 */

import { KeyStore, type ModelResponse, SwitchboardError } from "@switchboard/core";
import {
  type FakeReply,
  type FakeServer,
  startFakeAnthropic,
  startFakeOpenAI,
} from "@switchboard/core/testing";
import type { Store } from "@switchboard/store";
import { type StoreBackend, storeBackends } from "@switchboard/store/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Hub, type HubConfigInput } from "../src/index.ts";
import { temporaryDirectory } from "./helpers.ts";

type Wire = "openai" | "anthropic";
type Hold = "settled" | "rolled_back";

interface FaultCase {
  fault: string;
  /** The fake's reply for the failing attempt. */
  reply: FakeReply;
  /** Abort the prompt once its first chunk arrived (the caller walks away). */
  abortAfterFirstChunk?: boolean;
  code: string;
  row: "error" | "aborted";
  /** Whether the row (and the hold) is charged: true when output reached the caller. */
  charged: boolean;
  hold: Hold;
  /** Whether a purpose's fallback answers instead. */
  fallbackAnswers: boolean;
}

const WORDS = ["ONE ", "TWO ", "THREE ", "FOUR ", "FIVE ", "SIX"];
/** Events before the first text: OpenAI's role chunk; Anthropic's message_start and block start. */
const LEAD_EVENTS: Record<Wire, number> = { openai: 1, anthropic: 2 };
const FIRST_CHUNK_TIMEOUT_MS = 300;

function faultCases(wire: Wire): FaultCase[] {
  return [
    {
      fault: "cut stream after output",
      reply: { text: WORDS, usage: null, cutAfter: LEAD_EVENTS[wire] + 2 },
      code: "STREAM_INTERRUPTED",
      row: "error",
      charged: true,
      hold: "settled",
      fallbackAnswers: false,
    },
    {
      fault: "caller abort after output",
      reply: { text: WORDS, usage: null, chunkDelayMs: 50 },
      abortAfterFirstChunk: true,
      code: "ABORTED",
      row: "aborted",
      charged: true,
      hold: "settled",
      fallbackAnswers: false,
    },
    {
      fault: "cut before output",
      reply: { text: WORDS, usage: null, cutAfter: LEAD_EVENTS[wire] },
      code: "STREAM_INTERRUPTED",
      row: "error",
      charged: false,
      hold: "rolled_back",
      fallbackAnswers: true,
    },
    {
      fault: "401",
      reply: { status: 401, message: "Incorrect API key provided." },
      code: "PROVIDER_AUTH",
      row: "error",
      charged: false,
      hold: "rolled_back",
      fallbackAnswers: false,
    },
    {
      fault: "429",
      reply: { status: 429, message: "Rate limit reached." },
      code: "RATE_LIMITED",
      row: "error",
      charged: false,
      hold: "rolled_back",
      fallbackAnswers: true,
    },
    {
      fault: "500",
      reply: { status: 500, message: "The server had an error." },
      code: "PROVIDER_ERROR",
      row: "error",
      charged: false,
      hold: "rolled_back",
      fallbackAnswers: true,
    },
    {
      fault: "timeout before first chunk",
      reply: { text: WORDS, delayMs: FIRST_CHUNK_TIMEOUT_MS * 5 },
      code: "TIMEOUT",
      row: "error",
      charged: false,
      hold: "rolled_back",
      fallbackAnswers: true,
    },
  ];
}

const caseName =
  "$fault → code $code, row $row, charged $charged, hold $hold, fallback answers $fallbackAnswers";

describe.each(storeBackends())("the fault suite on $name", (backend: StoreBackend) => {
  const fakes = {} as Record<Wire, FakeServer>;
  const hubs: Hub[] = [];

  beforeAll(async () => {
    if (backend.skip) return;
    fakes.openai = await startFakeOpenAI();
    fakes.anthropic = await startFakeAnthropic();
  });
  afterEach(async () => {
    await Promise.all(hubs.splice(0).map((hub) => hub.close()));
    await backend.cleanup();
  });
  afterAll(async () => {
    await Promise.all(Object.values(fakes).map((fake) => fake.close()));
  });

  const config = (wire: Wire): HubConfigInput => ({
    providers: {
      up: {
        type: wire,
        base_url: fakes[wire].url,
        max_retries: 0,
        first_chunk_timeout_ms: FIRST_CHUNK_TIMEOUT_MS,
        models: ["up-model"],
      },
    },
    purposes: {
      solo: { model: "up-model" },
      backed: { model: "up-model", fallbacks: ["echo"] },
    },
    accounting: {
      pricing: { "up-model": { input: 1000, output: 1000 }, echo: { input: 1000, output: 1000 } },
      auto_reservation_usd: 0.1,
    },
    limits: { cap: { scope: "instance", window: "calendar-day", amount_usd: 100 } },
  });

  const open = async (wire: Wire): Promise<{ hub: Hub; store: Store }> => {
    const store = await backend.open();
    const hub = await Hub.create({
      config: config(wire),
      store,
      env: {},
      keys: new KeyStore(`${temporaryDirectory()}/keys.json`),
    });
    hubs.push(hub);
    return { hub, store };
  };

  /** Runs one prompt to its end; returns it and its error (undefined when it answered). */
  const run = async (hub: Hub, purpose: string, fault: FaultCase) => {
    const abort = new AbortController();
    const response: ModelResponse = (await hub.model({ purpose, actor: { id: "ada" } })).prompt("hi", {
      signal: abort.signal,
    });
    let error: unknown;
    try {
      for await (const _chunk of response) if (fault.abortAfterFirstChunk) abort.abort();
    } catch (caught) {
      error = caught;
    }
    return { response, error };
  };

  for (const wire of ["openai", "anthropic"] as const) {
    it.skipIf(backend.skip).each(faultCases(wire))(`${wire}: ${caseName}`, async (fault) => {
      const fake = fakes[wire];
      const { hub, store } = await open(wire);

      fake.reset();
      fake.enqueue(fault.reply);
      const solo = await run(hub, "solo", fault);
      expect(SwitchboardError.isInstance(solo.error)).toBe(true);
      expect((solo.error as SwitchboardError).code).toBe(fault.code);
      expect(solo.response.textSoFar.length > 0).toBe(fault.charged);

      await hub.flush();
      const [row] = await store.listUsage();
      expect(row).toMatchObject({ modelAnswered: "up-model", status: fault.row, actorId: "ada" });
      const [hold] = await store.listHolds({ key: "limit:cap" });
      expect(hold?.status).toBe(fault.hold);
      if (fault.charged) {
        // Delivered output is paid for, and the row shows the same charge as the hold.
        expect(row?.costNanocents).toBeGreaterThan(0n);
        expect(hold?.settled).toBe(row?.costNanocents);
      } else {
        expect(row?.costNanocents ?? 0n).toBe(0n);
      }

      fake.reset();
      fake.enqueue(fault.reply);
      const backed = await run(hub, "backed", fault);
      if (fault.fallbackAnswers) {
        expect(backed.error).toBeUndefined();
        expect(backed.response.answeredBy).toBe("echo");
        expect(backed.response.fallbackAttempts).toMatchObject([{ model: "up-model" }]);
        await hub.flush();
        const holds = await store.listHolds({ key: "limit:cap" });
        expect(holds.map((each) => each.status).sort()).toEqual([fault.hold, "settled"].sort());
      } else {
        expect((backed.error as SwitchboardError).code).toBe(fault.code);
        expect(backed.response.answeredBy ?? "up-model").toBe("up-model");
      }
    });
  }
});
