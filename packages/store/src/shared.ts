/**
 * Pieces both backends share: input validation, value conversion and row mapping (the SQL itself
 * is in queries.ts). Drivers return integers differently (better-sqlite3 in safe-integer mode
 * gives bigint, pg gives BIGINT as a string and INTEGER as a number), so every mapper converts from
 * any of the three.
 */

import { SwitchboardError } from "@switchboard/core";
import { LEASE_PREFIX } from "./budget-leases.ts";
import type {
  Allowance,
  AllowanceEntryKind,
  AllowanceLedgerEntry,
  CapCheck,
  Hold,
  HoldStatus,
  ReserveAgainstCapsInput,
  ReserveAllowanceInput,
  SecretSummary,
  StoredSecret,
  StoredToken,
  StoreKind,
  UsageRecord,
  UsageRecordInput,
  UsageStatus,
  UsageSummaryBy,
  UsageSummaryRow,
} from "./types.ts";
import { DEFAULT_HOLD_TTL_MS } from "./types.ts";

export type Row = Record<string, unknown>;

/** better-sqlite3 binds the shared SQL's `$1`, `$2`… from an object keyed by number. */
export function numbered(values: readonly unknown[]): Record<number, unknown> {
  const bound: Record<number, unknown> = {};
  for (let index = 0; index < values.length; index++) bound[index + 1] = values[index];
  return bound;
}

export function toMs(value: Date | number, field: string): number {
  const ms = value instanceof Date ? value.getTime() : value;
  if (typeof ms !== "number" || !Number.isFinite(ms)) {
    throw new SwitchboardError("INVALID_INPUT", `${field} must be a valid Date or ms timestamp.`, { field });
  }
  return Math.trunc(ms);
}

/** Accepts bigint, or a number that is a safe integer (beyond 2^53 a number has already lost cents). */
export function toNanocents(value: bigint | number, field: string, { allowNegative = false } = {}): bigint {
  let amount: bigint;
  if (typeof value === "bigint") amount = value;
  else if (typeof value === "number" && Number.isSafeInteger(value)) amount = BigInt(value);
  else {
    throw new SwitchboardError(
      "INVALID_INPUT",
      `${field} must be an integer number of nanocents (use bigint).`,
      {
        field,
      },
    );
  }
  if (!allowNegative && amount < 0n) {
    throw new SwitchboardError("INVALID_INPUT", `${field} must not be negative.`, { field });
  }
  return amount;
}

const MAX_LIMIT = 10_000;

export function requireText(value: unknown, field: string): string {
  if (typeof value !== "string" || value.length === 0) {
    throw new SwitchboardError("INVALID_INPUT", `${field} must be a non-empty string.`, { field });
  }
  return value;
}

export function clampLimit(limit: number | undefined, fallback: number): number {
  // Also the upper bound of one read: a caller pages through more.
  if (limit !== undefined && limit > MAX_LIMIT) return MAX_LIMIT;
  if (limit === undefined) return fallback;
  if (!Number.isInteger(limit) || limit < 0) {
    throw new SwitchboardError("INVALID_INPUT", "limit must be a non-negative integer.", { limit });
  }
  return limit;
}

export interface NormalizedReserve {
  txId: string;
  amount: bigint;
  caps: { key: string; cap: bigint; windowStartMs: number; wholeFromMs: number }[];
  actorId: string | null;
  purpose: string | null;
  model: string | null;
  ttlMs: number;
}

export interface NormalizedAllowanceReserve {
  txId: string;
  actorId: string;
  amount: bigint;
  purpose: string | null;
  model: string | null;
  ttlMs: number;
}

function holdTtl(ttlMs: number | undefined): number {
  if (ttlMs === undefined) return DEFAULT_HOLD_TTL_MS;
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
    throw new SwitchboardError(
      "INVALID_INPUT",
      `ttlMs must be a positive whole number of ms (got ${ttlMs}).`,
    );
  }
  return ttlMs;
}

export function normalizeReserve(input: ReserveAgainstCapsInput): NormalizedReserve {
  const seen = new Set<string>();
  const caps = input.caps.map((c: CapCheck) => {
    const key = requireText(c.key, "caps[].key");
    // One hold per (tx, key): a repeated key would double-count the reservation against itself.
    if (seen.has(key)) {
      throw new SwitchboardError("INVALID_INPUT", `Ledger key "${key}" appears twice in one reservation.`, {
        key,
      });
    }
    seen.add(key);
    const windowStartMs = toMs(c.windowStart, "caps[].windowStart");
    return {
      key,
      cap: toNanocents(c.cap, "caps[].cap"),
      windowStartMs,
      wholeFromMs: firstWholeBucket(windowStartMs),
    };
  });
  const txId = requireText(input.txId, "txId");
  if (txId.startsWith(LEASE_PREFIX)) {
    throw new SwitchboardError(
      "INVALID_INPUT",
      `A reservation's txId may not start with "${LEASE_PREFIX}" (budget leases use it); got "${txId}".`,
    );
  }
  return {
    txId,
    amount: toNanocents(input.amount, "amount"),
    caps,
    actorId: input.actorId ?? null,
    purpose: input.purpose ?? null,
    model: input.model ?? null,
    ttlMs: holdTtl(input.ttlMs),
  };
}

export function normalizeAllowanceReserve(input: ReserveAllowanceInput): NormalizedAllowanceReserve {
  return {
    txId: requireText(input.txId, "txId"),
    actorId: requireText(input.actorId, "actorId"),
    amount: toNanocents(input.amount, "amount"),
    purpose: input.purpose ?? null,
    model: input.model ?? null,
    ttlMs: holdTtl(input.ttlMs),
  };
}

export function duplicateTxError(txId: string, cause: unknown): SwitchboardError {
  return new SwitchboardError(
    "INVALID_INPUT",
    `Transaction id "${txId}" was already used; use a fresh id for every reservation.`,
    { txId },
    { cause },
  );
}

/** Wraps a driver failure so callers branch on one code; our own errors pass through untouched. */
export function storageError(kind: StoreKind, operation: string, error: unknown): SwitchboardError {
  if (error instanceof SwitchboardError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  return new SwitchboardError(
    "STORAGE_ERROR",
    `Storage (${kind}) failed during ${operation}: ${message}`,
    { backend: kind, operation, ...(typeof code === "string" ? { driverCode: code } : {}) },
    { cause: error },
  );
}

/** A unique-key violation from either driver, also when wrapped as the cause of a STORAGE_ERROR. */
export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === "23505" || code === "SQLITE_CONSTRAINT_PRIMARYKEY" || code === "SQLITE_CONSTRAINT_UNIQUE")
    return true;
  const cause = (error as { cause?: unknown } | null)?.cause;
  return cause !== undefined && cause !== error && isUniqueViolation(cause);
}

// --- value conversion from driver rows ---------------------------------------------------------

function optNumber(value: unknown): number | undefined {
  if (value === null || value === undefined) return undefined;
  return Number(value);
}

function reqNumber(value: unknown): number {
  return Number(value);
}

export function optBigint(value: unknown): bigint | undefined {
  if (value === null || value === undefined) return undefined;
  return toBigint(value);
}

export function toBigint(value: unknown): bigint {
  if (typeof value === "bigint") return value;
  if (typeof value === "number") return BigInt(value);
  if (typeof value === "string") return BigInt(value);
  throw new TypeError(`Expected an integer from the database, got ${typeof value}`);
}

function optString(value: unknown): string | undefined {
  return value === null || value === undefined ? undefined : String(value);
}

function reqDate(value: unknown): Date {
  return new Date(Number(value));
}

function optDate(value: unknown): Date | undefined {
  return value === null || value === undefined ? undefined : new Date(Number(value));
}

function toBytes(value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError("Expected binary ciphertext from the database");
  // A plain copy, so callers never hold a view into a driver-owned Buffer pool.
  return new Uint8Array(value);
}

export function toBuffer(bytes: Uint8Array): Buffer {
  if (!(bytes instanceof Uint8Array)) {
    throw new SwitchboardError("INVALID_INPUT", "ciphertext must be a Uint8Array.", { field: "ciphertext" });
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// --- row mappers -------------------------------------------------------------------------------

export function mapSecret(row: Row): StoredSecret {
  return {
    name: String(row.name),
    version: reqNumber(row.version),
    ciphertext: toBytes(row.ciphertext),
    keyId: String(row.key_id),
    note: optString(row.note),
    createdAt: reqDate(row.created_at),
    createdBy: optString(row.created_by),
  };
}

export function mapSecretSummary(row: Row): SecretSummary {
  return {
    name: String(row.name),
    version: reqNumber(row.version),
    note: optString(row.note),
    updatedAt: reqDate(row.created_at),
    updatedBy: optString(row.created_by),
    lastUsedAt: optDate(row.last_used_at),
    lastUsedBy: optString(row.last_used_by),
  };
}

function optInteger(value: number | undefined, field: string): number | null {
  if (value === undefined || value === null) return null;
  if (!Number.isSafeInteger(value)) {
    throw new SwitchboardError("INVALID_INPUT", `${field} must be an integer or undefined.`, { field });
  }
  return value;
}

export const USAGE_STATUSES: readonly UsageStatus[] = ["ok", "error", "aborted"];

/** A usage row's values in USAGE_COLUMNS order (queries.ts). */
export type UsageValues = (string | number | bigint | null)[];

/** A usage row's values in USAGE_COLUMNS order, validated. */
export function usageParams(row: UsageRecordInput): UsageValues {
  if (!USAGE_STATUSES.includes(row.status)) {
    throw new SwitchboardError(
      "INVALID_INPUT",
      `Usage status must be "ok", "error" or "aborted", got "${row.status}".`,
      { id: row.id },
    );
  }
  return [
    requireText(row.id, "id"),
    toMs(row.createdAt, "createdAt"),
    requireText(row.modelRequested, "modelRequested"),
    requireText(row.modelAnswered, "modelAnswered"),
    row.purpose ?? null,
    row.actorId ?? null,
    optInteger(row.inputTokens, "inputTokens"),
    optInteger(row.outputTokens, "outputTokens"),
    optInteger(row.cachedTokens, "cachedTokens"),
    row.costNanocents === undefined || row.costNanocents === null
      ? null
      : toNanocents(row.costNanocents, "costNanocents", { allowNegative: true }),
    optInteger(row.durationMs, "durationMs"),
    row.chainId ?? null,
    row.groupId ?? null,
    row.conversationId ?? null,
    row.status,
    row.error ?? null,
    row.prompt ?? null,
    row.system ?? null,
    row.response ?? null,
    row.toolCalls ?? null,
    row.toolResults ?? null,
  ];
}

export function mapUsage(row: Row): UsageRecord {
  return {
    id: String(row.id),
    createdAt: reqDate(row.created_at),
    modelRequested: String(row.model_requested),
    modelAnswered: String(row.model_answered),
    purpose: optString(row.purpose),
    actorId: optString(row.actor_id),
    inputTokens: optNumber(row.input_tokens),
    outputTokens: optNumber(row.output_tokens),
    cachedTokens: optNumber(row.cached_tokens),
    costNanocents: optBigint(row.cost_nanocents),
    durationMs: optNumber(row.duration_ms),
    chainId: optString(row.chain_id),
    groupId: optString(row.group_id),
    conversationId: optString(row.conversation_id),
    status: String(row.status) as UsageStatus,
    error: optString(row.error),
    prompt: optString(row.prompt),
    system: optString(row.system),
    response: optString(row.response),
    toolCalls: optString(row.tool_calls),
    toolResults: optString(row.tool_results),
  };
}

export function mapSummary(row: Row, by: UsageSummaryBy): UsageSummaryRow {
  const key = row.group_key;
  const periodic = by === "day" || by === "hour";
  return {
    key:
      key === null || key === undefined ? null : periodic ? new Date(Number(key)).toISOString() : String(key),
    responses: reqNumber(row.responses),
    failed: reqNumber(row.failed),
    inputTokens: optNumber(row.input_tokens),
    outputTokens: optNumber(row.output_tokens),
    cachedTokens: optNumber(row.cached_tokens),
    costNanocents: optBigint(row.cost_nanocents),
  };
}

/**
 * Same order on both backends (they sort NULLs differently): periods oldest first; other groups
 * by most responses, then key, null last.
 */
export function sortSummary(rows: UsageSummaryRow[], by: UsageSummaryBy): UsageSummaryRow[] {
  if (by === "day" || by === "hour") return rows.sort((a, b) => ((a.key ?? "") < (b.key ?? "") ? -1 : 1));
  return rows.sort((a, b) => {
    if (a.responses !== b.responses) return b.responses - a.responses;
    if (a.key === b.key) return 0;
    if (a.key === null) return 1;
    if (b.key === null) return -1;
    return a.key < b.key ? -1 : 1;
  });
}

/** Width of a switchboard_hold_totals bucket: bounds the holds a window query scans to 10 minutes' worth. */
export const HOLD_BUCKET_MS = 600_000;

/** Start of the bucket holding `ms` (floor, also for times before 1970). */
export function bucketOf(ms: number): number {
  return ms - (((ms % HOLD_BUCKET_MS) + HOLD_BUCKET_MS) % HOLD_BUCKET_MS);
}

/** First bucket lying wholly at or after windowStart; holds in [windowStart, this) are summed one by one. */
export function firstWholeBucket(windowStartMs: number): number {
  const bucket = bucketOf(windowStartMs);
  return bucket === windowStartMs ? bucket : bucket + HOLD_BUCKET_MS;
}

export function mapHold(row: Row): Hold {
  return {
    txId: String(row.tx_id),
    key: String(row.ledger_key),
    reserved: toBigint(row.reserved_nanocents),
    settled: optBigint(row.settled_nanocents),
    status: String(row.status) as HoldStatus,
    createdAt: reqDate(row.created_at),
    settledAt: optDate(row.settled_at),
    expiresAt: reqDate(row.expires_at),
    actorId: optString(row.actor_id),
    purpose: optString(row.purpose),
    model: optString(row.model),
  };
}

export function mapAllowance(row: Row): Allowance {
  return {
    actorId: String(row.actor_id),
    balance: toBigint(row.balance_nanocents),
    held: toBigint(row.held_nanocents ?? 0),
    updatedAt: reqDate(row.updated_at),
  };
}

export function mapLedgerEntry(row: Row): AllowanceLedgerEntry {
  return {
    actorId: String(row.actor_id),
    kind: String(row.kind) as AllowanceEntryKind,
    amount: toBigint(row.amount_nanocents),
    balanceAfter: toBigint(row.balance_after_nanocents),
    txId: optString(row.tx_id),
    note: optString(row.note),
    createdAt: reqDate(row.created_at),
    createdBy: optString(row.created_by),
  };
}

export function mapToken(row: Row): StoredToken {
  const purposes: unknown = JSON.parse(String(row.purposes));
  return {
    name: String(row.name),
    hash: String(row.token_hash),
    actor: String(row.actor_id),
    purposes: Array.isArray(purposes) ? purposes.map(String) : [],
    createdAt: reqDate(row.created_at),
    expiresAt: optDate(row.expires_at),
    lastUsedAt: optDate(row.last_used_at),
    revokedAt: optDate(row.revoked_at),
  };
}
