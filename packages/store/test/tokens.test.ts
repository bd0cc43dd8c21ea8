import { isSwitchboardError } from "@switchboard/core";
import { afterAll, describe, expect, it } from "vitest";
import type { StoredToken } from "../src/types.ts";
import { storeBackends } from "./backends.ts";

function token(name: string, hash: string, extra: Partial<StoredToken> = {}): StoredToken {
  return {
    name,
    hash,
    actor: "app",
    purposes: ["enrichments", "extract"],
    createdAt: new Date(1_700_000_000_000),
    expiresAt: undefined,
    lastUsedAt: undefined,
    revokedAt: undefined,
    ...extra,
  };
}

for (const backend of storeBackends()) {
  describe.skipIf(backend.skip)(`gateway tokens on ${backend.name}`, () => {
    afterAll(() => backend.cleanup());

    it("stores hashes, finds by hash, lists, revokes and records last use", async () => {
      const store = await backend.open();
      const expiresAt = new Date(1_800_000_000_000);
      await store.insertToken(token("app", "hash-1", { expiresAt }));
      await store.insertToken(token("batch", "hash-2", { actor: "batch", purposes: [] }));
      expect(await store.findTokenByHash("hash-1")).toEqual(token("app", "hash-1", { expiresAt }));
      expect(await store.findTokenByHash("nope")).toBeUndefined();
      expect((await store.listTokens()).map((row) => row.name)).toEqual(["app", "batch"]);

      await store.markTokenUsed("hash-1", new Date(1_750_000_000_000));
      await store.markTokenUsed("hash-1", new Date(1_740_000_000_000)); // an older report never wins
      expect((await store.findTokenByHash("hash-1"))?.lastUsedAt).toEqual(new Date(1_750_000_000_000));

      expect(await store.revokeToken("app", new Date(1_760_000_000_000))).toBe(true);
      expect(await store.revokeToken("app", new Date(1_760_000_000_000))).toBe(false);
      expect((await store.findTokenByHash("hash-1"))?.revokedAt).toEqual(new Date(1_760_000_000_000));
    });

    it("refuses a second active token with the same name, and allows it once the first is revoked", async () => {
      const store = await backend.open();
      await store.insertToken(token("twice", "hash-a"));
      const error = await store.insertToken(token("twice", "hash-b")).catch((caught: unknown) => caught);
      expect(isSwitchboardError(error, "INVALID_INPUT")).toBe(true);
      expect((error as Error).message).toMatch(/revoke it first/);
      await store.revokeToken("twice", new Date());
      await store.insertToken(token("twice", "hash-c"));
      expect((await store.findTokenByHash("hash-c"))?.name).toBe("twice");
    });
  });
}
