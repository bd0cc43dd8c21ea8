/**
 * The storage contract shared by the SQLite and PostgreSQL backends. The hub (secrets) and the
 * built-in usage-log and accounting plugins use only this interface, so it carries no business
 * policy beyond the atomic operations below. Money is integer nanocents as `bigint`
 * (1 USD = 100,000,000,000); timestamps are stored as milliseconds since the epoch and returned as
 * `Date`.
 */

export type StoreKind = "sqlite" | "postgres";

export interface OpenStoreOptions {
  /** PostgreSQL only: schema holding every table; created when missing. Lower-case identifier. */
  schema?: string;
  /** PostgreSQL only: maximum pooled connections (default 10). */
  poolSize?: number;
  /** SQLite only: how long a writer waits for another process's lock (default 5000 ms). */
  busyTimeoutMs?: number;
  /**
   * SQLite only: write usage rows on a thread of their own, off the event loop (default true).
   * A short-lived process (one CLI command) is faster and smaller without starting one.
   */
  usageWriterThread?: boolean;
  /** Source of "now" in ms since the epoch for every timestamp the store writes (tests pin it). */
  clock?: () => number;
}

export interface AppliedMigration {
  name: string;
  appliedAt: Date;
}

// --- secrets -------------------------------------------------------------------------------------

export interface PutSecretInput {
  name: string;
  /** Already encrypted by the caller; the store never sees plaintext. */
  ciphertext: Uint8Array;
  /** Which encryption key produced the ciphertext, so keys can rotate. */
  keyId: string;
  note?: string | undefined;
  actorId?: string | undefined;
}

export interface StoredSecret {
  name: string;
  version: number;
  ciphertext: Uint8Array;
  keyId: string;
  note: string | undefined;
  createdAt: Date;
  createdBy: string | undefined;
}

/** What a listing may show: never the ciphertext. */
export interface SecretSummary {
  name: string;
  /** The current (highest, not deleted) version. */
  version: number;
  note: string | undefined;
  updatedAt: Date;
  updatedBy: string | undefined;
  /** Most recent use of any live version of this secret. */
  lastUsedAt: Date | undefined;
  lastUsedBy: string | undefined;
}

// --- usage log -----------------------------------------------------------------------------------

export type UsageStatus = "ok" | "error";

/** One response (one step of a chain). Token counts the provider did not report stay undefined (NULL). */
export interface UsageRecordInput {
  id: string;
  createdAt: Date | number;
  modelRequested: string;
  modelAnswered: string;
  purpose?: string | undefined;
  actorId?: string | undefined;
  inputTokens?: number | undefined;
  outputTokens?: number | undefined;
  cachedTokens?: number | undefined;
  costNanocents?: bigint | number | undefined;
  durationMs?: number | undefined;
  chainId?: string | undefined;
  groupId?: string | undefined;
  conversationId?: string | undefined;
  status: UsageStatus;
  error?: string | undefined;
  prompt?: string | undefined;
  system?: string | undefined;
  response?: string | undefined;
  /** JSON text. */
  toolCalls?: string | undefined;
  /** JSON text. */
  toolResults?: string | undefined;
}

export interface UsageRecord {
  id: string;
  createdAt: Date;
  modelRequested: string;
  modelAnswered: string;
  purpose: string | undefined;
  actorId: string | undefined;
  inputTokens: number | undefined;
  outputTokens: number | undefined;
  cachedTokens: number | undefined;
  costNanocents: bigint | undefined;
  durationMs: number | undefined;
  chainId: string | undefined;
  groupId: string | undefined;
  conversationId: string | undefined;
  status: UsageStatus;
  error: string | undefined;
  prompt: string | undefined;
  system: string | undefined;
  response: string | undefined;
  toolCalls: string | undefined;
  toolResults: string | undefined;
}

export interface UsageQuery {
  /** Default 100. */
  limit?: number;
  since?: Date;
  purpose?: string;
  actorId?: string;
}

export type UsageSummaryBy = "purpose" | "model" | "actor";

export interface UsageSummaryQuery {
  /** "model" groups by the model that answered. */
  by: UsageSummaryBy;
  since?: Date;
}

/** Sums skip unknown (NULL) values; a sum is undefined only when no response reported that value. */
export interface UsageSummaryRow {
  /** The purpose, model or actor id; null for responses without one. */
  key: string | null;
  responses: number;
  inputTokens: number | undefined;
  outputTokens: number | undefined;
  cachedTokens: number | undefined;
  costNanocents: bigint | undefined;
}

// --- accounting: windowed holds ------------------------------------------------------------------

export type HoldStatus = "held" | "settled" | "rolled_back";

export interface CapCheck {
  /** Ledger key chosen by the caller, e.g. one per limit and actor. */
  key: string;
  cap: bigint;
  /** Entries created before this instant do not count against the cap. */
  windowStart: Date;
}

export interface ReserveAgainstCapsInput {
  txId: string;
  amount: bigint;
  caps: readonly CapCheck[];
  actorId?: string | undefined;
  purpose?: string | undefined;
  model?: string | undefined;
}

export type ReserveAgainstCapsResult = { ok: true } | { ok: false; key: string; used: bigint; cap: bigint };

export interface Hold {
  txId: string;
  key: string;
  reserved: bigint;
  settled: bigint | undefined;
  status: HoldStatus;
  createdAt: Date;
  settledAt: Date | undefined;
  actorId: string | undefined;
  purpose: string | undefined;
  model: string | undefined;
}

export interface HoldQuery {
  /** Default 50. */
  limit?: number;
  key?: string;
  txId?: string;
  since?: Date;
}

export interface KeySpend {
  key: string;
  spent: bigint;
}

// --- accounting: allowances ----------------------------------------------------------------------

export interface Allowance {
  actorId: string;
  balance: bigint;
  updatedAt: Date;
}

export interface ReserveAllowanceInput {
  txId: string;
  actorId: string;
  amount: bigint;
  purpose?: string | undefined;
  model?: string | undefined;
}

/** `balance` is undefined when the actor has no allowance at all. */
export type ReserveAllowanceResult =
  | { ok: true; balance: bigint }
  | { ok: false; balance: bigint | undefined };

export type AllowanceEntryKind = "top_up" | "charge";

export interface AllowanceLedgerEntry {
  actorId: string;
  kind: AllowanceEntryKind;
  /** Signed: top-ups add, charges are negative. */
  amount: bigint;
  balanceAfter: bigint;
  txId: string | undefined;
  note: string | undefined;
  createdAt: Date;
  createdBy: string | undefined;
}

export interface Store {
  readonly kind: StoreKind;
  /** Idempotent. */
  close(): Promise<void>;
  /** Applied migrations in the order they were applied. */
  migrations(): Promise<AppliedMigration[]>;

  /** Adds a new version (previous highest + 1, first is 1); earlier versions stay as history. */
  putSecret(input: PutSecretInput): Promise<{ version: number }>;
  /** Highest live version, or undefined when missing or deleted. */
  getSecret(name: string): Promise<StoredSecret | undefined>;
  markSecretUsed(name: string, version: number, actorId: string | undefined): Promise<void>;
  listSecrets(): Promise<SecretSummary[]>;
  /** Soft delete of every version; returns whether anything was live. */
  deleteSecret(name: string, actorId: string | undefined): Promise<boolean>;

  /** One statement/transaction for the whole batch; ids already stored are skipped (safe retries). */
  insertUsage(rows: readonly UsageRecordInput[]): Promise<number>;
  /** Newest first. */
  listUsage(query?: UsageQuery): Promise<UsageRecord[]>;
  /** Most responses first. */
  summarizeUsage(query: UsageSummaryQuery): Promise<UsageSummaryRow[]>;
  /** Deletes rows created before `olderThan`; returns how many. */
  pruneUsage(olderThan: Date): Promise<number>;

  /**
   * Atomically (across processes too): refuses, writing nothing, when any cap would be exceeded —
   * reporting the first failing cap in the given order — else writes one hold per cap key.
   */
  reserveAgainstCaps(input: ReserveAgainstCapsInput): Promise<ReserveAgainstCapsResult>;
  /** Settles every held hold of the tx at `actual`; returns how many were settled (0 when already done). */
  settleHolds(txId: string, actual: bigint): Promise<number>;
  /** Releases every held hold of the tx; returns how many. */
  rollbackHolds(txId: string): Promise<number>;
  /** Sum for the key since windowStart: settled amount, or reserved while held; rolled back counts 0. */
  spentInWindow(key: string, windowStart: Date): Promise<bigint>;
  /** spentInWindow for every key starting with `prefix` that has entries in the window. */
  spentByKey(prefix: string, windowStart: Date): Promise<KeySpend[]>;
  /** Newest first. */
  listHolds(query?: HoldQuery): Promise<Hold[]>;

  /** Adds to the actor's balance (creating it at 0 first); a negative amount withdraws. Returns the new balance. */
  topUpAllowance(actorId: string, amount: bigint, note?: string, by?: string): Promise<bigint>;
  getAllowance(actorId: string): Promise<Allowance | undefined>;
  listAllowances(): Promise<Allowance[]>;
  /** Atomic conditional decrement: never drives the balance below zero. */
  reserveAllowance(input: ReserveAllowanceInput): Promise<ReserveAllowanceResult>;
  /**
   * Refunds reserved − actual, or charges the excess when actual > reserved (the balance may then go
   * negative), and records the charge. Returns the new balance, undefined when the tx is not held.
   */
  settleAllowance(txId: string, actual: bigint): Promise<bigint | undefined>;
  /** Refunds the whole reservation. Returns the new balance, undefined when the tx is not held. */
  rollbackAllowance(txId: string): Promise<bigint | undefined>;
  /** Top-ups and charges, newest first. */
  allowanceHistory(query?: { actorId?: string; limit?: number }): Promise<AllowanceLedgerEntry[]>;

  // Gateway tokens (hashed; the value is never stored).
  /** Fails with INVALID_INPUT when an unrevoked token has the same name. */
  insertToken(token: StoredToken): Promise<void>;
  findTokenByHash(hash: string): Promise<StoredToken | undefined>;
  /** Every token, revoked ones included, oldest first. */
  listTokens(): Promise<StoredToken[]>;
  /** Revokes the unrevoked token of that name; false when there is none. */
  revokeToken(name: string, at: Date): Promise<boolean>;
  markTokenUsed(hash: string, at: Date): Promise<void>;
}

/** A gateway token as stored: its SHA-256 hash, never its value. */
export interface StoredToken {
  name: string;
  hash: string;
  /** The actor id its requests run as. */
  actor: string;
  /** The purposes it may use; the first is its default. */
  purposes: string[];
  createdAt: Date;
  expiresAt: Date | undefined;
  lastUsedAt: Date | undefined;
  revokedAt: Date | undefined;
}
