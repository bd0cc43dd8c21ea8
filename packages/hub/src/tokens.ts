/**
 * Gateway tokens: what an HTTP client presents instead of a provider key. The value (`sb_…`) is
 * shown once at creation; the store keeps only its SHA-256 hash. Each token names the actor that
 * budgets, allowances and the usage log apply to, and the purposes it may use.
 */
import { hash, randomBytes } from "node:crypto";
import { describeError, rememberSecret, SwitchboardError } from "@switchboard/core";
import type { Store, StoredToken } from "@switchboard/store";

/** A gateway token as callers see it: everything but its hash. */
export type GatewayToken = Omit<StoredToken, "hash">;

/** The store methods tokens use. */
export type TokenStore = Pick<
  Store,
  "insertToken" | "findTokenByHash" | "listTokens" | "revokeToken" | "markTokenUsed"
>;

export type TokenCheck =
  | { ok: true; token: GatewayToken }
  | { ok: false; reason: "unknown" | "revoked" | "expired" };

export interface CreateTokenInput {
  name: string;
  actor: string;
  purposes?: readonly string[];
  /** When the token stops working; none: never. */
  expiresAt?: Date | undefined;
}

const TOKEN_PREFIX = "sb_";
const NAME_PATTERN = /^[A-Za-z0-9][\w.-]{0,99}$/;

/**
 * A verification is cached this long, so a busy gateway does not read the store on every request;
 * a revocation through this hub clears the cache at once, one made elsewhere applies within it.
 */
const VERIFY_CACHE_MS = 5_000;
/** Last use is written at most this often per token: it is for people, not for accounting. */
const LAST_USE_WRITE_MS = 60_000;
const MAX_CACHED = 10_000;

export function hashToken(value: string): string {
  return hash("sha256", value, "hex");
}

function publicToken(stored: StoredToken): GatewayToken {
  const { hash: _hash, ...token } = stored;
  return token;
}

export class Tokens {
  readonly #store: () => Promise<TokenStore>;
  readonly #now: () => number;
  readonly #cache = new Map<string, { check: TokenCheck; until: number }>();
  readonly #lastUseWritten = new Map<string, number>();

  constructor(store: () => Promise<TokenStore>, options: { now?: () => number } = {}) {
    this.#store = store;
    this.#now = options.now ?? Date.now;
  }

  /** Creates a token; the value is returned only here and is never stored or shown again. */
  async create(input: CreateTokenInput): Promise<{ token: GatewayToken; value: string }> {
    if (!NAME_PATTERN.test(input.name)) {
      throw new SwitchboardError(
        "INVALID_INPUT",
        `Token name ${JSON.stringify(input.name)}: use letters, digits, '.', '_' or '-' (at most 100).`,
        { field: "name" },
      );
    }
    if (!input.actor.trim()) {
      throw new SwitchboardError("INVALID_INPUT", "A token needs an actor id (--actor ID).", {
        field: "actor",
      });
    }
    const purposes = [...new Set(input.purposes ?? [])];
    const createdAt = new Date(this.#now());
    if (input.expiresAt && input.expiresAt.getTime() <= createdAt.getTime()) {
      throw new SwitchboardError("INVALID_INPUT", "A token's expiry must be in the future.", {
        field: "expiresAt",
      });
    }
    const value = `${TOKEN_PREFIX}${randomBytes(32).toString("base64url")}`;
    rememberSecret(value);
    const stored: StoredToken = {
      name: input.name,
      actor: input.actor,
      purposes,
      createdAt,
      expiresAt: input.expiresAt,
      lastUsedAt: undefined,
      revokedAt: undefined,
      hash: hashToken(value),
    };
    await (await this.#store()).insertToken(stored);
    return { token: publicToken(stored), value };
  }

  /** Every token, revoked and expired ones included; never the values. */
  async list(): Promise<GatewayToken[]> {
    return (await (await this.#store()).listTokens()).map(publicToken);
  }

  async revoke(name: string): Promise<void> {
    const revoked = await (await this.#store()).revokeToken(name, new Date(this.#now()));
    if (!revoked) {
      throw new SwitchboardError(
        "NOT_FOUND",
        `No active token named ${name}: 'switchboard tokens list' shows them.`,
        { name },
      );
    }
    this.#cache.clear();
  }

  /** Checks a presented value; answers from a short cache keyed by the value's hash. */
  async verify(value: string): Promise<TokenCheck> {
    const hash = hashToken(value);
    const now = this.#now();
    const cached = this.#cache.get(hash);
    let check: TokenCheck;
    if (cached && cached.until > now) check = cached.check;
    else {
      check = await this.#check(hash, now);
      if (this.#cache.size >= MAX_CACHED) this.#cache.clear();
      this.#cache.set(hash, { check, until: now + VERIFY_CACHE_MS });
    }
    if (check.ok && check.token.expiresAt && check.token.expiresAt.getTime() <= now) {
      return { ok: false, reason: "expired" };
    }
    if (check.ok) this.#recordUse(hash, now);
    return check;
  }

  async #check(hash: string, now: number): Promise<TokenCheck> {
    const stored = await (await this.#store()).findTokenByHash(hash);
    if (!stored) return { ok: false, reason: "unknown" };
    if (stored.revokedAt) return { ok: false, reason: "revoked" };
    if (stored.expiresAt && stored.expiresAt.getTime() <= now) return { ok: false, reason: "expired" };
    return { ok: true, token: publicToken(stored) };
  }

  #recordUse(hash: string, now: number): void {
    const last = this.#lastUseWritten.get(hash);
    if (last !== undefined && now - last < LAST_USE_WRITE_MS) return;
    if (this.#lastUseWritten.size >= MAX_CACHED) this.#lastUseWritten.clear();
    this.#lastUseWritten.set(hash, now);
    void this.#store()
      .then((store) => store.markTokenUsed(hash, new Date(now)))
      .catch((error: unknown) => {
        process.emitWarning(`Could not record a gateway token's last use: ${describeError(error)}`);
      });
  }
}
