import { isSwitchboardError } from "@switchboard/core";
import { openStore } from "@switchboard/store";
import { describe, expect, it } from "vitest";
import { hashToken, Tokens } from "../src/tokens.ts";

async function tokensAt(clock: { now: number }) {
  const store = await openStore("sqlite::memory:");
  let reads = 0;
  const counted = {
    ...store,
    insertToken: store.insertToken.bind(store),
    listTokens: store.listTokens.bind(store),
    revokeToken: store.revokeToken.bind(store),
    markTokenUsed: store.markTokenUsed.bind(store),
    findTokenByHash: (hash: string) => {
      reads += 1;
      return store.findTokenByHash(hash);
    },
  };
  const tokens = new Tokens(async () => counted, { now: () => clock.now });
  return { tokens, store, reads: () => reads };
}

describe("gateway tokens", () => {
  it("shows the value once, stores only its hash, and verifies it for its actor and purposes", async () => {
    const clock = { now: 1_700_000_000_000 };
    const { tokens, store } = await tokensAt(clock);
    const { value, token } = await tokens.create({
      name: "app",
      actor: "app-actor",
      purposes: ["enrichments"],
    });
    expect(value).toMatch(/^sb_[\w-]{43}$/);
    expect(token).toMatchObject({ name: "app", actor: "app-actor", purposes: ["enrichments"] });
    const [row] = await store.listTokens();
    expect(row?.hash).toBe(hashToken(value));
    expect(JSON.stringify(await tokens.list())).not.toContain(value);
    expect(await tokens.verify(value)).toMatchObject({ ok: true, token: { actor: "app-actor" } });
    expect(await tokens.verify(`${value}x`)).toEqual({ ok: false, reason: "unknown" });
  });

  it("caches a check briefly, and a revocation through the same hub applies at once", async () => {
    const clock = { now: 1_700_000_000_000 };
    const { tokens, reads } = await tokensAt(clock);
    const { value } = await tokens.create({ name: "app", actor: "a" });
    for (let index = 0; index < 5; index++) await tokens.verify(value);
    expect(reads()).toBe(1);
    await tokens.revoke("app");
    expect(await tokens.verify(value)).toEqual({ ok: false, reason: "revoked" });
    const error = await tokens.revoke("app").catch((caught: unknown) => caught);
    expect(isSwitchboardError(error, "NOT_FOUND")).toBe(true);
  });

  it("stops accepting a token at its expiry, even from the cache", async () => {
    const clock = { now: 1_700_000_000_000 };
    const { tokens } = await tokensAt(clock);
    const { value } = await tokens.create({
      name: "brief",
      actor: "a",
      expiresAt: new Date(clock.now + 1_000),
    });
    expect((await tokens.verify(value)).ok).toBe(true);
    clock.now += 1_000;
    expect(await tokens.verify(value)).toEqual({ ok: false, reason: "expired" });
  });

  it("records last use at most once a minute per token", async () => {
    const clock = { now: 1_700_000_000_000 };
    const { tokens, store } = await tokensAt(clock);
    const { value } = await tokens.create({ name: "app", actor: "a" });
    await tokens.verify(value);
    clock.now += 10_000;
    await tokens.verify(value);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect((await store.listTokens())[0]?.lastUsedAt).toEqual(new Date(1_700_000_000_000));
    clock.now += 60_000;
    await tokens.verify(value);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect((await store.listTokens())[0]?.lastUsedAt).toEqual(new Date(1_700_000_070_000));
  });

  it("refuses names that would be awkward on a command line, and past expiries", async () => {
    const { tokens } = await tokensAt({ now: 1_700_000_000_000 });
    for (const name of ["", "has space", "-dash-first"]) {
      const error = await tokens.create({ name, actor: "a" }).catch((caught: unknown) => caught);
      expect(isSwitchboardError(error, "INVALID_INPUT")).toBe(true);
    }
    const past = await tokens
      .create({ name: "late", actor: "a", expiresAt: new Date(1_600_000_000_000) })
      .catch((caught: unknown) => caught);
    expect(isSwitchboardError(past, "INVALID_INPUT")).toBe(true);
  });
});
