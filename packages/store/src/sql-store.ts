/**
 * What both backends do the same way, written once over two primitives (`all` and `run`, one
 * statement each) and the shared SQL of queries.ts. A backend adds its connection and only the
 * operations whose locking or statement shape truly differs (see the abstract members).
 */

import { SwitchboardError } from "@switchboard/core";
import {
  AdminQueries,
  type AuditQuery,
  overridesChannel,
  type PurposeOverrideChange,
  type Statement,
  type StoredAuditEntry,
  type StoredLoginLink,
  type StoredPurposeOverride,
  type StoredSession,
  type UsageKeys,
  type UsageSeriesQuery,
  type UsageSeriesRow,
} from "./admin.ts";
import {
  allowanceHistoryQuery,
  allowancesSql,
  DELETE_SECRET_SQL,
  type Dialect,
  FIND_TOKEN_SQL,
  GET_SECRET_SQL,
  INSERT_TOKEN_SQL,
  LIST_MIGRATIONS_SQL,
  LIST_TOKENS_SQL,
  listHoldsQuery,
  listSecretsSql,
  listUsageQuery,
  MARK_SECRET_USED_SQL,
  MARK_TOKEN_USED_SQL,
  PRUNE_USAGE_SQL,
  REVOKE_TOKEN_SQL,
  SPENT_IN_WINDOW_SQL,
  spentByKeySql,
  summarizeUsageQuery,
} from "./queries.ts";
import {
  duplicateTxError,
  firstWholeBucket,
  isUniqueViolation,
  mapAllowance,
  mapHold,
  mapLedgerEntry,
  mapSecret,
  mapSecretSummary,
  mapSummary,
  mapToken,
  mapUsage,
  type NormalizedAllowanceReserve,
  type NormalizedReserve,
  normalizeAllowanceReserve,
  normalizeReserve,
  type Row,
  requireText,
  sortSummary,
  toBigint,
  toBuffer,
  toMs,
  toNanocents,
  type UsageValues,
  usageParams,
} from "./shared.ts";
import type {
  Allowance,
  AllowanceHistoryQuery,
  AllowanceLedgerEntry,
  AppliedMigration,
  Hold,
  HoldQuery,
  KeySpend,
  PutSecretInput,
  ReservationClosing,
  ReserveAgainstCapsInput,
  ReserveAgainstCapsResult,
  ReserveAllowanceInput,
  ReserveAllowanceResult,
  SecretSummary,
  Store,
  StoredSecret,
  StoredToken,
  StoreKind,
  UsageQuery,
  UsageRecord,
  UsageRecordInput,
  UsageSummaryQuery,
  UsageSummaryRow,
} from "./types.ts";

export type ClosingStatus = "settled" | "rolled_back";

export abstract class SqlStore implements Store {
  abstract readonly kind: StoreKind;
  protected abstract readonly dialect: Dialect;
  /** "Now" in ms since the epoch, for every timestamp written. */
  protected abstract now(): number;
  /** Runs one statement and returns its rows; failures become STORAGE_ERROR naming `operation`. */
  protected abstract all(operation: string, sql: string, params?: readonly unknown[]): Promise<Row[]>;
  /** Runs one statement and returns how many rows it changed. */
  protected abstract run(operation: string, sql: string, params?: readonly unknown[]): Promise<number>;
  /** Runs the statements in order in one transaction (the admin UI's writes that go together). */
  protected abstract runStatements(operation: string, statements: readonly Statement[]): Promise<void>;
  /** The channel purpose override changes are announced on (PostgreSQL); one per schema. */
  protected overridesChannel(): string {
    return overridesChannel(undefined);
  }
  #admin: AdminQueries | undefined;

  abstract close(): Promise<void>;
  abstract expireHolds(): Promise<number>;
  abstract insertUsageSync(rows: readonly UsageRecordInput[]): void;
  /** Runs INSERT_SECRET_VERSION_SQL with writers of the same name serialised; the new version. */
  protected abstract insertSecretVersion(name: string, params: readonly unknown[]): Promise<number>;
  /** Inserts validated rows (values in USAGE_COLUMNS order) as one batch; how many were new. */
  protected abstract insertUsageRows(rows: readonly UsageValues[]): Promise<number>;
  /** Adds to (or creates) a balance and records the top-up; the new balance. */
  protected abstract addToAllowance(
    actorId: string,
    delta: bigint,
    note: string | null,
    by: string | null,
  ): Promise<bigint>;
  /** Checks and writes the holds of one reservation atomically (see Store.reserveAgainstCaps). */
  protected abstract reserveCaps(reservation: NormalizedReserve): Promise<ReserveAgainstCapsResult>;
  /** Settles (held or expired holds) or rolls back (held holds) one tx; returns how many. */
  protected abstract closeHolds(txId: string, actual: bigint, status: ClosingStatus): Promise<number>;
  /** The conditional decrement plus the reservation record (see Store.reserveAllowance). */
  protected abstract takeAllowance(reservation: NormalizedAllowanceReserve): Promise<ReserveAllowanceResult>;
  /** Closes one reservation; the new balance, or undefined when there was none to close. */
  protected abstract finishAllowance(
    txId: string,
    actual: bigint,
    status: ClosingStatus,
  ): Promise<bigint | undefined>;

  // --- admin UI (SQL in admin.ts) ----------------------------------------------------------------

  get #adminQueries(): AdminQueries {
    this.#admin ??= new AdminQueries(
      {
        dialect: this.dialect,
        all: (operation, statement) => this.all(operation, statement.sql, statement.params),
        transaction: (operation, statements) => this.runStatements(operation, statements),
      },
      { channel: this.overridesChannel() },
    );
    return this.#admin;
  }

  insertAuditEntry(entry: StoredAuditEntry): Promise<void> {
    return this.#adminQueries.insertAuditEntry(entry);
  }

  listAuditEntries(query?: AuditQuery): Promise<StoredAuditEntry[]> {
    return this.#adminQueries.listAuditEntries(query);
  }

  listPurposeOverrides(): Promise<StoredPurposeOverride[]> {
    return this.#adminQueries.listPurposeOverrides();
  }

  writePurposeOverride(change: PurposeOverrideChange): Promise<void> {
    return this.#adminQueries.writePurposeOverride(change);
  }

  insertLoginLink(link: StoredLoginLink): Promise<void> {
    return this.#adminQueries.insertLoginLink(link);
  }

  consumeLoginLink(hash: string, at: Date): Promise<string | undefined> {
    return this.#adminQueries.consumeLoginLink(hash, at);
  }

  insertSession(session: StoredSession): Promise<void> {
    return this.#adminQueries.insertSession(session);
  }

  findSession(hash: string): Promise<StoredSession | undefined> {
    return this.#adminQueries.findSession(hash);
  }

  endSession(hash: string, at: Date): Promise<void> {
    return this.#adminQueries.endSession(hash, at);
  }

  adminSigningKey(candidate: string): Promise<string> {
    return this.#adminQueries.adminSigningKey(candidate);
  }

  usageSeries(query: UsageSeriesQuery): Promise<UsageSeriesRow[]> {
    return this.#adminQueries.usageSeries(query);
  }

  usageKeys(query: { since?: Date | undefined; until?: Date | undefined }): Promise<UsageKeys> {
    return this.#adminQueries.usageKeys(query);
  }

  async migrations(): Promise<AppliedMigration[]> {
    const rows = await this.all("migrations", LIST_MIGRATIONS_SQL);
    return rows.map((row) => ({ name: String(row.name), appliedAt: new Date(Number(row.applied_at)) }));
  }

  // --- secrets -------------------------------------------------------------------------------------

  async putSecret(input: PutSecretInput): Promise<{ version: number }> {
    const name = requireText(input.name, "name");
    const version = await this.insertSecretVersion(name, [
      name,
      toBuffer(input.ciphertext),
      requireText(input.keyId, "keyId"),
      input.note ?? null,
      this.now(),
      input.actorId ?? null,
    ]);
    return { version };
  }

  async getSecret(name: string): Promise<StoredSecret | undefined> {
    const [row] = await this.all("getSecret", GET_SECRET_SQL, [name]);
    return row === undefined ? undefined : mapSecret(row);
  }

  async markSecretUsed(name: string, version: number, actorId: string | undefined): Promise<void> {
    await this.run("markSecretUsed", MARK_SECRET_USED_SQL, [this.now(), actorId ?? null, name, version]);
  }

  async listSecrets(): Promise<SecretSummary[]> {
    return (await this.all("listSecrets", listSecretsSql(this.dialect))).map(mapSecretSummary);
  }

  async deleteSecret(name: string, actorId: string | undefined): Promise<boolean> {
    return (await this.run("deleteSecret", DELETE_SECRET_SQL, [this.now(), actorId ?? null, name])) > 0;
  }

  // --- usage log -----------------------------------------------------------------------------------

  async insertUsage(rows: readonly UsageRecordInput[]): Promise<number> {
    if (rows.length === 0) return 0;
    return this.insertUsageRows(rows.map(usageParams));
  }

  async listUsage(query: UsageQuery = {}): Promise<UsageRecord[]> {
    if (query.chainIds?.length === 0) return [];
    const { sql, params } = listUsageQuery(this.dialect, query);
    return (await this.all("listUsage", sql, params)).map(mapUsage);
  }

  async summarizeUsage(query: UsageSummaryQuery): Promise<UsageSummaryRow[]> {
    const { sql, params } = summarizeUsageQuery(query);
    const rows = await this.all("summarizeUsage", sql, params);
    return sortSummary(
      rows.map((row) => mapSummary(row, query.by)),
      query.by,
    );
  }

  pruneUsage(olderThan: Date): Promise<number> {
    return this.run("pruneUsage", PRUNE_USAGE_SQL, [toMs(olderThan, "olderThan")]);
  }

  // --- accounting: windowed holds ------------------------------------------------------------------

  async reserveAgainstCaps(input: ReserveAgainstCapsInput): Promise<ReserveAgainstCapsResult> {
    const reservation = normalizeReserve(input);
    if (reservation.caps.length === 0) return { ok: true };
    try {
      return await this.reserveCaps(reservation);
    } catch (error) {
      throw isUniqueViolation(error) ? duplicateTxError(reservation.txId, error) : error;
    }
  }

  async settleHolds(txId: string, actual: bigint): Promise<number> {
    return this.closeHolds(txId, toNanocents(actual, "actual"), "settled");
  }

  async rollbackHolds(txId: string): Promise<number> {
    return this.closeHolds(txId, 0n, "rolled_back");
  }

  /** Nothing is queued here: closeReservation writes at once. */
  async flushSettlements(): Promise<void> {}

  /** Writes at once; SQLite overrides this to queue the write (see Store.closeReservation). */
  async closeReservation(closing: ReservationClosing): Promise<void> {
    const { book, txId, actual } = closing;
    const status: ClosingStatus = actual === undefined ? "rolled_back" : "settled";
    const amount = actual === undefined ? 0n : toNanocents(actual, "actual");
    if (book === "caps") await this.closeHolds(txId, amount, status);
    else await this.finishAllowance(txId, amount, status);
  }

  async spentInWindow(key: string, windowStart: Date): Promise<bigint> {
    const start = toMs(windowStart, "windowStart");
    const [row] = await this.all("spentInWindow", SPENT_IN_WINDOW_SQL, [key, firstWholeBucket(start), start]);
    return toBigint(row?.spent ?? 0);
  }

  async spentByKey(prefix: string, windowStart: Date): Promise<KeySpend[]> {
    const start = toMs(windowStart, "windowStart");
    const rows = await this.all("spentByKey", spentByKeySql(this.dialect), [
      prefix,
      firstWholeBucket(start),
      start,
    ]);
    return rows.map((row) => ({
      key: String(row.ledger_key),
      spent: toBigint(row.spent),
      held: toBigint(row.held),
    }));
  }

  async listHolds(query: HoldQuery = {}): Promise<Hold[]> {
    const { sql, params } = listHoldsQuery(this.dialect, query);
    return (await this.all("listHolds", sql, params)).map(mapHold);
  }

  // --- accounting: allowances ----------------------------------------------------------------------

  async topUpAllowance(actorId: string, amount: bigint, note?: string, by?: string): Promise<bigint> {
    const actor = requireText(actorId, "actorId");
    return this.addToAllowance(
      actor,
      toNanocents(amount, "amount", { allowNegative: true }),
      note ?? null,
      by ?? null,
    );
  }

  async getAllowance(actorId: string): Promise<Allowance | undefined> {
    const [row] = await this.all("getAllowance", allowancesSql(this.dialect, true), [actorId]);
    return row === undefined ? undefined : mapAllowance(row);
  }

  async listAllowances(): Promise<Allowance[]> {
    return (await this.all("listAllowances", allowancesSql(this.dialect, false))).map(mapAllowance);
  }

  async reserveAllowance(input: ReserveAllowanceInput): Promise<ReserveAllowanceResult> {
    const reservation = normalizeAllowanceReserve(input);
    try {
      return await this.takeAllowance(reservation);
    } catch (error) {
      throw isUniqueViolation(error) ? duplicateTxError(reservation.txId, error) : error;
    }
  }

  async settleAllowance(txId: string, actual: bigint): Promise<bigint | undefined> {
    return this.finishAllowance(txId, toNanocents(actual, "actual"), "settled");
  }

  async rollbackAllowance(txId: string): Promise<bigint | undefined> {
    return this.finishAllowance(txId, 0n, "rolled_back");
  }

  async allowanceHistory(query: AllowanceHistoryQuery = {}): Promise<AllowanceLedgerEntry[]> {
    const { sql, params } = allowanceHistoryQuery(query);
    return (await this.all("allowanceHistory", sql, params)).map(mapLedgerEntry);
  }

  // --- gateway tokens ------------------------------------------------------------------------------

  async insertToken(token: StoredToken): Promise<void> {
    const params = [
      requireText(token.name, "name"),
      requireText(token.hash, "hash"),
      requireText(token.actor, "actor"),
      JSON.stringify(token.purposes),
      toMs(token.createdAt, "createdAt"),
      token.expiresAt === undefined ? null : toMs(token.expiresAt, "expiresAt"),
    ];
    try {
      await this.run("insertToken", INSERT_TOKEN_SQL, params);
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      throw new SwitchboardError(
        "INVALID_INPUT",
        `A token named ${token.name} already exists: revoke it first ('switchboard tokens revoke ${token.name}') or pick another name.`,
        { name: token.name },
      );
    }
  }

  async findTokenByHash(hash: string): Promise<StoredToken | undefined> {
    const [row] = await this.all("findTokenByHash", FIND_TOKEN_SQL, [hash]);
    return row === undefined ? undefined : mapToken(row);
  }

  async listTokens(): Promise<StoredToken[]> {
    return (await this.all("listTokens", LIST_TOKENS_SQL)).map(mapToken);
  }

  async revokeToken(name: string, at: Date): Promise<boolean> {
    return (await this.run("revokeToken", REVOKE_TOKEN_SQL, [toMs(at, "at"), name])) > 0;
  }

  async markTokenUsed(hash: string, at: Date): Promise<void> {
    await this.run("markTokenUsed", MARK_TOKEN_USED_SQL, [toMs(at, "at"), hash]);
  }
}
