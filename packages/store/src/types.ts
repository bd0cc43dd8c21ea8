/**
 * The storage contract shared by the SQLite and PostgreSQL backends. The hub (secrets) and the
 * built-in usage-log and accounting plugins use only this interface, so it carries no business
 * policy beyond the atomic operations below. Money is integer nanocents as `bigint`
 * (1 USD = 100,000,000,000); timestamps are stored as milliseconds since the epoch and returned as
 * `Date`.
 */

import type { AdminStore } from "./admin.ts";

export type StoreKind = "sqlite" | "postgres";

export interface OpenStoreOptions {
  /** PostgreSQL only: schema holding every table; created when missing. Lower-case identifier. */
  schema?: string;
  /** PostgreSQL only: maximum pooled connections (default 10). */
  poolSize?: number;
  /**
   * PostgreSQL only: how long to wait for a connection to the server (default 10,000 ms; the URL
   * parameter `connect_timeout`, in seconds as in libpq, overrides it).
   */
  connectTimeoutMs?: number;
  /**
   * PostgreSQL only: how long one statement may run or wait for a lock before it fails (default
   * 30,000 ms; the URL parameter `statement_timeout`, in ms, overrides it).
   */
  queryTimeoutMs?: number;
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

/** `aborted`: the caller stopped the response (it may still have delivered, and cost, something). */
export type UsageStatus = "ok" | "error" | "aborted";

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

/** Which responses a usage read covers; every field narrows it further. */
export interface UsageFilter {
  /** Created at or after. */
  since?: Date | undefined;
  /** Created before. */
  until?: Date | undefined;
  purpose?: string | undefined;
  /** The model that answered. */
  model?: string | undefined;
  actorId?: string | undefined;
  status?: UsageStatus | undefined;
}

/** Where a page of the usage log ends: the next page starts after this response. */
export interface UsageCursor {
  createdAt: Date;
  id: string;
}

export interface UsageQuery extends UsageFilter {
  /** Default 100. */
  limit?: number | undefined;
  /** Only responses older than this one (newest-first paging). */
  before?: UsageCursor | undefined;
  /** Only the steps of these chains. */
  chainIds?: readonly string[] | undefined;
}

/** `day` and `hour` group by the UTC day or hour the response started in. */
export type UsageSummaryBy = "purpose" | "model" | "actor" | "day" | "hour";

export interface UsageSummaryQuery extends UsageFilter {
  /** "model" groups by the model that answered. */
  by: UsageSummaryBy;
}

/** Sums skip unknown (NULL) values; a sum is undefined only when no response reported that value. */
export interface UsageSummaryRow {
  /**
   * The purpose, model or actor id (null for responses without one); for `day` and `hour`, the
   * start of the period as an ISO 8601 timestamp.
   */
  key: string | null;
  responses: number;
  /** Responses whose status is not `ok`. */
  failed: number;
  inputTokens: number | undefined;
  outputTokens: number | undefined;
  cachedTokens: number | undefined;
  costNanocents: bigint | undefined;
}

// --- accounting: windowed holds ------------------------------------------------------------------

/**
 * `expired`: still held when its expiry passed (the process holding it died, or the request ran
 * far past its timeout); it no longer counts. Settling it later still records the real cost.
 */
export type HoldStatus = "held" | "settled" | "rolled_back" | "expired";

/** How long a reservation holds by default: the 10-minute request timeout plus a margin. */
export const DEFAULT_HOLD_TTL_MS = 15 * 60_000;

export interface CapCheck {
  /** Ledger key chosen by the caller, e.g. one per limit and actor. */
  key: string;
  cap: bigint;
  /** Entries created before this instant do not count against the cap. */
  windowStart: Date;
}

/** How a reservation ends: settled at `actual` (nanocents), or released entirely when `actual` is undefined. */
export interface ReservationClosing {
  /** Which book holds it: the windowed holds of limits (`caps`) or an actor's allowance. */
  book: "caps" | "allowance";
  txId: string;
  actual?: bigint | undefined;
  /** What the reservation held (the amount it was made with), when the caller knows it. */
  reserved?: bigint | undefined;
}

export interface ReserveAgainstCapsInput {
  txId: string;
  amount: bigint;
  caps: readonly CapCheck[];
  actorId?: string | undefined;
  purpose?: string | undefined;
  model?: string | undefined;
  /** How long the holds last before they expire (default DEFAULT_HOLD_TTL_MS). */
  ttlMs?: number | undefined;
}

export type ReserveAgainstCapsResult = { ok: true } | { ok: false; key: string; used: bigint; cap: bigint };

export interface Hold {
  txId: string;
  key: string;
  reserved: bigint;
  settled: bigint | undefined;
  status: HoldStatus;
  createdAt: Date;
  /** When it was settled, rolled back or found expired. */
  settledAt: Date | undefined;
  expiresAt: Date;
  actorId: string | undefined;
  purpose: string | undefined;
  model: string | undefined;
}

export interface HoldQuery {
  /** Default 50. */
  limit?: number | undefined;
  key?: string | undefined;
  /** Every key starting with this text. */
  keyPrefix?: string | undefined;
  txId?: string | undefined;
  status?: HoldStatus | undefined;
  since?: Date | undefined;
}

export interface KeySpend {
  key: string;
  /** What counts against the key's caps in the window: settled amounts plus holds still held. */
  spent: bigint;
  /** The part of `spent` still held by prompts in flight. */
  held: bigint;
}

// --- accounting: allowances ----------------------------------------------------------------------

export interface Allowance {
  actorId: string;
  /** What is left to spend: reservations in flight are already taken out. */
  balance: bigint;
  /** Reserved by prompts in flight (already taken out of `balance`). */
  held: bigint;
  updatedAt: Date;
}

export interface ReserveAllowanceInput {
  txId: string;
  actorId: string;
  amount: bigint;
  purpose?: string | undefined;
  model?: string | undefined;
  /** How long the reservation lasts before it expires and is refunded (default DEFAULT_HOLD_TTL_MS). */
  ttlMs?: number | undefined;
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

export interface AllowanceHistoryQuery {
  actorId?: string | undefined;
  /** Default 100. */
  limit?: number | undefined;
}

export interface Store extends AdminStore {
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
  /**
   * Writes the rows before returning, so a `process.on("exit")` handler can still store them; ids
   * already stored are skipped. SQLite writes in this thread; PostgreSQL, whose driver is
   * asynchronous, through a short-lived child process (a few hundred ms: for the end of a process
   * only). Throws a STORAGE_ERROR when it could not.
   */
  insertUsageSync(rows: readonly UsageRecordInput[]): void;
  /** Newest first. */
  listUsage(query?: UsageQuery): Promise<UsageRecord[]>;
  /** Most responses first; by `day` or `hour`, oldest period first. */
  summarizeUsage(query: UsageSummaryQuery): Promise<UsageSummaryRow[]>;
  /** Deletes rows created before `olderThan`; returns how many. */
  pruneUsage(olderThan: Date): Promise<number>;

  /**
   * Atomically (across processes too): refuses, writing nothing, when any cap would be exceeded —
   * reporting the first failing cap in the given order — else writes one hold per cap key. Before
   * refusing, holds of those keys whose expiry has passed are marked `expired` and stop counting.
   * SQLite admits most reservations from a budget lease instead (budget-leases.ts): a hold already
   * counted in full by every other process; the reservation's own holds are written a moment later,
   * and before any other operation of this store reads them. A refusal there first waits for other
   * processes' leases on the key to be given back. Tx ids starting with `lease:` are refused.
   */
  reserveAgainstCaps(input: ReserveAgainstCapsInput): Promise<ReserveAgainstCapsResult>;
  /**
   * Settles every held (or already expired) hold of the tx at `actual`; returns how many were
   * settled (0 when already done).
   */
  settleHolds(txId: string, actual: bigint): Promise<number>;
  /** Releases every held hold of the tx; returns how many. */
  rollbackHolds(txId: string): Promise<number>;
  /**
   * Settles or releases one reservation — what settleHolds/rollbackHolds or settleAllowance/
   * rollbackAllowance do — without keeping the caller waiting where that is safe: a release, or a
   * settlement at or below `reserved`, only lowers what the reservation counts. SQLite queues such
   * a write in this process and commits it at the next turn of the event loop, or earlier: in the
   * transaction of a reservation that would otherwise refuse, before any other operation of this
   * store, at close, or at process exit. Every read through this store sees it, a refusal is never
   * made while one is queued, and until it is committed the reservation counts in full (other
   * processes see the reservation a moment longer). A settlement above `reserved` (or without it),
   * and PostgreSQL, write before resolving. A queued write that fails stays queued, is retried, and
   * is reported as a warning.
   */
  closeReservation(closing: ReservationClosing): Promise<void>;
  /** Commits every settlement closeReservation queued (nothing to do on PostgreSQL). */
  flushSettlements(): Promise<void>;
  /**
   * Marks every hold and allowance reservation whose expiry has passed as `expired`: holds stop
   * counting, reservations are refunded. Returns how many. Reads that report budgets call it first.
   */
  expireHolds(): Promise<number>;
  /** Sum for the key since windowStart: settled amount, or reserved while held; rolled back and expired count 0. */
  spentInWindow(key: string, windowStart: Date): Promise<bigint>;
  /** spentInWindow (and what is still held) for every key starting with `prefix` that has entries in the window. */
  spentByKey(prefix: string, windowStart: Date): Promise<KeySpend[]>;
  /** Newest first. */
  listHolds(query?: HoldQuery): Promise<Hold[]>;

  /** Adds to the actor's balance (creating it at 0 first); a negative amount withdraws. Returns the new balance. */
  topUpAllowance(actorId: string, amount: bigint, note?: string, by?: string): Promise<bigint>;
  getAllowance(actorId: string): Promise<Allowance | undefined>;
  listAllowances(): Promise<Allowance[]>;
  /**
   * Atomic conditional decrement: never drives the balance below zero. Before refusing, the
   * actor's expired reservations are refunded.
   */
  reserveAllowance(input: ReserveAllowanceInput): Promise<ReserveAllowanceResult>;
  /**
   * Refunds reserved − actual, or charges the excess when actual > reserved (the balance may then go
   * negative), and records the charge; a reservation that expired (and was refunded) is charged
   * `actual`. Returns the new balance, undefined when the tx is neither held nor expired.
   */
  settleAllowance(txId: string, actual: bigint): Promise<bigint | undefined>;
  /** Refunds the whole reservation. Returns the new balance, undefined when the tx is not held. */
  rollbackAllowance(txId: string): Promise<bigint | undefined>;
  /** Top-ups and charges, newest first. */
  allowanceHistory(query?: AllowanceHistoryQuery): Promise<AllowanceLedgerEntry[]>;

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
