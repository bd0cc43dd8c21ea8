/**
 * Budgets hold for gateway traffic: many concurrent HTTP requests against a limit never spend more
 * than the cap, on SQLite and on PostgreSQL with two gateway instances sharing the database.
 */
import type { HubConfigInput } from "@switchboard/hub";
import { postgresBackend, type StoreBackend, sqliteBackend } from "@switchboard/store/testing";
import { afterEach, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./helpers.ts";

/** Echo answers with exactly these four words: 4 output tokens at $250 per million = $0.001. */
const PROMPT = JSON.stringify({ raw: "a b c d" });
const COST_PER_PROMPT = 100_000_000n; // $0.001 in nanocents
const REQUESTS = 200;
const AFFORDABLE = 50;

const config: HubConfigInput = {
  default_model: "echo",
  require_keys: false,
  purposes: { capped: { model: "echo" } },
  accounting: { pricing: { echo: { input: 0, output: 250 } }, reservations: { models: { echo: 0.001 } } },
  limits: { fifty: { scope: "instance", window: "rolling-24h", amount_usd: 0.05 } },
};

async function send(url: string, token: string): Promise<{ status: number; message: string }> {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "purpose:capped", messages: [{ role: "user", content: PROMPT }] }),
  });
  const body = (await response.json()) as { error?: { message: string } };
  return { status: response.status, message: body.error?.message ?? "" };
}

const running: TestServer[] = [];
let backend: StoreBackend | undefined;

afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.close()));
  await backend?.cleanup();
  backend = undefined;
});

async function expectExactCap(servers: TestServer[], token: string): Promise<void> {
  const results = await Promise.all(
    Array.from({ length: REQUESTS }, (_, index) =>
      send((servers[index % servers.length] as TestServer).url, token),
    ),
  );
  const ok = results.filter((result) => result.status === 200);
  const refused = results.filter((result) => result.status !== 200);
  expect(ok).toHaveLength(AFFORDABLE);
  expect(refused).toHaveLength(REQUESTS - AFFORDABLE);
  for (const result of refused) {
    expect(result.status).toBe(429);
    expect(result.message).toMatch(/Limit "fifty" reached for this instance/);
  }
  const store = await (servers[0] as TestServer).hub.store();
  expect(await store.spentInWindow("limit:fifty", new Date(Date.now() - 3_600_000))).toBe(
    BigInt(AFFORDABLE) * COST_PER_PROMPT,
  );
}

describe("budgets through the gateway", () => {
  it(`lets exactly ${AFFORDABLE} of ${REQUESTS} concurrent requests through a limit sized for ${AFFORDABLE} (SQLite)`, async () => {
    backend = sqliteBackend();
    const server = await startTestServer(config, { store: await backend.open() });
    running.push(server);
    const token = await server.token("batch", { purposes: ["capped"] });
    await expectExactCap([server], token);
  });

  const postgres = postgresBackend();
  it.skipIf(postgres.skip)(
    `lets exactly ${AFFORDABLE} of ${REQUESTS} through with two gateway instances on one PostgreSQL`,
    async () => {
      backend = postgres;
      const first = await startTestServer(config, { store: await backend.open() });
      const second = await startTestServer(config, { store: await backend.open() });
      running.push(first, second);
      const token = await first.token("batch", { purposes: ["capped"] });
      await expectExactCap([first, second], token);
    },
  );
});
