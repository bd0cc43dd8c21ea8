/**
 * A process killed mid-prompt (SIGKILL: nothing of it runs again) leaves its limit hold and its
 * allowance reservation held. Until their expiry the budget stays taken; after it the budget is
 * available again, and the reports show the hold as expired (never silently deleted).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { isSwitchboardError, KeyStore } from "@switchboard/core";
import { type FakeServer, startFakeOpenAI } from "@switchboard/core/testing";
import { storeBackends } from "@switchboard/store/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Hub, type HubConfigInput } from "../src/index.ts";
import { sleep, temporaryDirectory } from "./helpers.ts";

const CHILD = fileURLToPath(new URL("./fixtures/prompt-and-hang.ts", import.meta.url));
const RESERVATION = 10_000_000_000n; // $0.10, the automatic reservation

describe.each(storeBackends())("a prompt killed mid-request on $name", (backend) => {
  let fake: FakeServer;
  let child: ChildProcess | undefined;
  beforeAll(async () => {
    if (!backend.skip) fake = await startFakeOpenAI();
  });
  afterAll(async () => {
    child?.kill("SIGKILL");
    await fake?.close();
    await backend.cleanup();
  });

  it.skipIf(backend.skip)(
    "holds the budget until the hold expires, then frees it and reports the hold expired",
    async () => {
      const { url, schema } = await backend.connection();
      const config: HubConfigInput = {
        default_model: "fake-model",
        storage: schema === undefined ? url : `${url}${url.includes("?") ? "&" : "?"}schema=${schema}`,
        providers: { fake: { type: "openai", base_url: fake.url, max_retries: 0, models: ["fake-model"] } },
        accounting: { pricing: { "fake-model": { input: 1, output: 1 } }, hold_ttl_seconds: 2 },
        // Room for exactly one prompt's reservation.
        limits: { one: { scope: "instance", window: "rolling-24h", amount_usd: 0.1 } },
        allowance: { enabled: true },
      };
      const hub = await Hub.create({
        config,
        env: {},
        keys: new KeyStore(`${temporaryDirectory()}/keys.json`),
      });
      const store = await hub.store();
      await hub.reports.topUpAllowance("ada", RESERVATION);

      fake.reset();
      fake.enqueue({ text: "too late", delayMs: 60_000 });
      child = spawn(process.execPath, [CHILD, JSON.stringify(config)], { stdio: "ignore" });
      for (let waited = 0; fake.requestCount === 0; waited += 20) {
        if (waited > 20_000) throw new Error("the child never sent its request");
        await sleep(20);
      }
      child.kill("SIGKILL");
      await new Promise((resolve) => child?.once("exit", resolve));
      const [hold] = await store.listHolds({ key: "limit:one" });
      expect(hold).toMatchObject({ status: "held", reserved: RESERVATION });

      // Before the expiry: refused, the budget is still taken by the dead process.
      const model = await hub.model({ actor: { id: "ada" } });
      const refused = await model
        .prompt("now?")
        .text()
        .catch((error: unknown) => error);
      expect(isSwitchboardError(refused, "LIMIT_EXCEEDED"), String(refused)).toBe(true);
      expect(fake.requestCount).toBe(1);
      const [standing] = await hub.reports.limits();
      expect(standing).toMatchObject({ limit: "one", used: RESERVATION, held: RESERVATION, left: 0n });

      // After it: the hold is expired (not deleted), the limit and the allowance are free again.
      await sleep(Math.max(0, (hold?.expiresAt.getTime() ?? 0) - Date.now()) + 50);
      const [freed] = await hub.reports.limits();
      expect(freed).toMatchObject({ used: 0n, held: 0n, left: RESERVATION });
      expect((await store.listHolds({ txId: hold?.txId }))[0]?.status).toBe("expired");
      expect(await hub.reports.allowance("ada")).toMatchObject({ balance: RESERVATION, held: 0n });

      fake.enqueue({ text: "finally", usage: { input: 1, output: 1 } });
      expect(await model.prompt("now?").text()).toBe("finally");
      const [after] = await hub.reports.limits();
      expect(after).toMatchObject({ used: 200_000n, held: 0n }); // 2 tokens at $1 per million
      await hub.close();
    },
  );
});
