/**
 * Sign-in to the admin UI: one-time login links (`switchboard serve --root`, `switchboard
 * login-link ACTOR`) and the sessions they open. A link's token and a session's id are random and
 * stored only as SHA-256 hashes; a link works once and only for a short time. The key that signs
 * session cookies and derives CSRF tokens lives in the database, so every instance sharing it
 * accepts the same sessions.
 */
import { createHmac, hash, randomBytes, timingSafeEqual } from "node:crypto";
import { rememberSecret, SwitchboardError } from "@switchboard/core";
import type { AdminStore } from "@switchboard/store";

/** The store methods sign-in needs. */
export type LoginStore = Pick<
  AdminStore,
  "insertLoginLink" | "consumeLoginLink" | "insertSession" | "findSession" | "endSession" | "adminSigningKey"
>;

export interface AdminSession {
  /** The opaque id the cookie carries (never stored: the store keeps its hash). */
  id: string;
  actor: string;
  expiresAt: Date;
}

export interface LoginLink {
  token: string;
  expiresAt: Date;
}

const LINK_PREFIX = "sbl_";
const DEFAULT_LINK_TTL_MS = 15 * 60_000;
const DEFAULT_SESSION_TTL_MS = 12 * 3_600_000;
const ACTOR_PATTERN = /^[^\s\p{Cc}][^\p{Cc}]{0,199}$/u;

function digest(value: string): string {
  return hash("sha256", value, "hex");
}

export class Logins {
  readonly #store: () => Promise<LoginStore>;
  readonly #now: () => number;
  readonly #linkTtlMs: number;
  readonly #sessionTtlMs: number;
  #signingKey: Promise<string> | undefined;

  constructor(
    store: () => Promise<LoginStore>,
    options: { now?: () => number; linkTtlMs?: number; sessionTtlMs?: number } = {},
  ) {
    this.#store = store;
    this.#now = options.now ?? Date.now;
    this.#linkTtlMs = options.linkTtlMs ?? DEFAULT_LINK_TTL_MS;
    this.#sessionTtlMs = options.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS;
  }

  /** A one-time login link token for `actor`; the token is shown once and stored hashed. */
  async createLink(actor: string, options: { ttlMs?: number } = {}): Promise<LoginLink> {
    if (!ACTOR_PATTERN.test(actor)) {
      throw new SwitchboardError(
        "INVALID_INPUT",
        `Actor id ${JSON.stringify(actor)}: use up to 200 characters without line breaks, not starting with a space.`,
        { field: "actor" },
      );
    }
    const token = `${LINK_PREFIX}${randomBytes(32).toString("base64url")}`;
    rememberSecret(token);
    const now = this.#now();
    const expiresAt = new Date(now + (options.ttlMs ?? this.#linkTtlMs));
    await (await this.#store()).insertLoginLink({
      hash: digest(token),
      actor,
      createdAt: new Date(now),
      expiresAt,
    });
    return { token, expiresAt };
  }

  /** Uses a login link: opens a session for its actor, or undefined when the link is unknown, used or expired. */
  async redeem(token: string): Promise<AdminSession | undefined> {
    if (!token.startsWith(LINK_PREFIX)) return undefined;
    const store = await this.#store();
    const now = this.#now();
    const actor = await store.consumeLoginLink(digest(token), new Date(now));
    if (actor === undefined) return undefined;
    const id = randomBytes(32).toString("base64url");
    rememberSecret(id);
    const expiresAt = new Date(now + this.#sessionTtlMs);
    await store.insertSession({
      hash: digest(id),
      actor,
      createdAt: new Date(now),
      expiresAt,
      endedAt: undefined,
    });
    return { id, actor, expiresAt };
  }

  /** The live session with this id, or undefined (unknown, ended or expired). */
  async session(id: string): Promise<AdminSession | undefined> {
    if (!id) return undefined;
    const stored = await (await this.#store()).findSession(digest(id));
    if (!stored || stored.endedAt || stored.expiresAt.getTime() <= this.#now()) return undefined;
    return { id, actor: stored.actor, expiresAt: stored.expiresAt };
  }

  /** Signs the session out. */
  async end(id: string): Promise<void> {
    await (await this.#store()).endSession(digest(id), new Date(this.#now()));
  }

  /** The key that signs session cookies, shared through the database by every instance. */
  signingKey(): Promise<string> {
    this.#signingKey ??= (async () =>
      (await this.#store()).adminSigningKey(randomBytes(32).toString("base64url")))();
    // A failed read is tried again next time.
    this.#signingKey.catch(() => {
      this.#signingKey = undefined;
    });
    return this.#signingKey;
  }

  /** The CSRF token of a session: derived from its id, so nothing more is stored. */
  async csrfToken(sessionId: string): Promise<string> {
    return createHmac("sha256", await this.signingKey())
      .update(`csrf:${sessionId}`)
      .digest("base64url");
  }

  /** Compares a presented CSRF token with the session's in constant time. */
  async checkCsrf(sessionId: string, presented: string | undefined): Promise<boolean> {
    if (!presented) return false;
    const expected = Buffer.from(await this.csrfToken(sessionId));
    const given = Buffer.from(presented);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}
