/**
 * Two admin apps (two `serve` instances) on one PostgreSQL: an override saved through one is what
 * the other routes with within a second — LISTEN/NOTIFY, not a restart or a poll of the YAML.
 */
import { KeyStore } from "@switchboard/core";
import { Hub } from "@switchboard/hub";
import { postgresBackend } from "@switchboard/store/testing";
import { afterAll, describe, expect, it } from "vitest";
import { createApp, type SwitchboardApp } from "../../src/app.ts";
import { ADMIN_CONFIG, ORIGIN } from "./helpers.ts";

const backend = postgresBackend();

async function instance(): Promise<{ hub: Hub; app: SwitchboardApp }> {
  const hub = await Hub.create({
    config: ADMIN_CONFIG,
    store: await backend.open(),
    env: {},
    keys: new KeyStore("/nonexistent/keys.json"),
  });
  return { hub, app: createApp({ hub }) };
}

async function signIn(app: SwitchboardApp, hub: Hub): Promise<{ cookie: string; csrf: string }> {
  const { token } = await hub.logins.createLink("root");
  const cookie =
    ((await app.request(`/-/login?token=${token}`)).headers.get("set-cookie") ?? "").split(";")[0] ?? "";
  const home = await (await app.request("/-/", { headers: { cookie } })).text();
  return { cookie, csrf: /name="csrf" value="([^"]+)"/.exec(home)?.[1] ?? "" };
}

describe.skipIf(backend.skip)("two instances on one PostgreSQL", () => {
  const hubs: Hub[] = [];
  afterAll(async () => {
    await Promise.all(hubs.map((hub) => hub.close()));
    await backend.cleanup();
  });

  it("an override made through one is used by the other within a second", async () => {
    const first = await instance();
    const second = await instance();
    hubs.push(first.hub, second.hub);
    // The second instance has routed once already: it holds the YAML's answer.
    expect((await second.hub.model({ purpose: "summaries" })).id).toBe("echo");

    const session = await signIn(first.app, first.hub);
    const saved = await first.app.request("/-/purposes/summaries", {
      method: "POST",
      headers: {
        cookie: session.cookie,
        origin: ORIGIN,
        "content-type": "application/x-www-form-urlencoded",
      },
      body: new URLSearchParams({ csrf: session.csrf, model: "markov" }),
    });
    expect(saved.status).toBe(303);
    const savedAt = Date.now();
    let seen = "echo";
    while (seen !== "markov" && Date.now() - savedAt < 1_000) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      seen = (await second.hub.model({ purpose: "summaries" })).id;
    }
    expect(seen).toBe("markov");

    // A session opened on one instance works on the other: they share the signing key.
    const page = await second.app.request("/-/purposes/summaries", { headers: { cookie: session.cookie } });
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<code>markov<\/code> <span class="source source-override">/);
  });
});
