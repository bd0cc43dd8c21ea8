/**
 * The SQLite ledger batch: what the store writes together every 50 ms — the holds of reservations
 * admitted from budget leases (budget-leases.ts), the leases they shrink or that are given back,
 * and queued settlements. It is a function of a connection, so the usage writer thread can run it
 * off the prompting thread, and the store itself can run it when it must not wait (a reservation
 * that reaches the database, a read, process exit). Run it inside a write transaction.
 */

import type Database from "better-sqlite3";
import type { Closing } from "./budget-leases.ts";
import { bucketOf, toBigint } from "./shared.ts";

/** How one tx's holds close, and when that was decided (ms). */
export interface HoldClosing extends Closing {
  txId: string;
}

/** One hold of a reservation admitted from a lease, with its closing when it already ended. */
export interface AdmittedHold {
  txId: string;
  key: string;
  amount: bigint;
  createdAt: number;
  expiresAt: number;
  actorId: string | null;
  purpose: string | null;
  model: string | null;
  closing: Closing | undefined;
}

/** A lease of this store: shrunk by what its key's written holds now hold, or given back. */
export interface LeaseChange {
  txId: string;
  key: string;
  giveBack: boolean;
}

export interface LedgerBatch {
  holds: AdmittedHold[];
  leases: LeaseChange[];
  closings: HoldClosing[];
}

export interface LedgerBatchResult {
  /** Holds not written because their tx id was written before. */
  skipped: number;
}

export type StatementOf = (sql: string) => Database.Statement;

const INSERT_ADMITTED_HOLD_SQL = `INSERT INTO switchboard_holds (tx_id, ledger_key, reserved_nanocents,
    settled_nanocents, status, created_at, settled_at, expires_at, actor_id, purpose, model)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING`;
/** Moves a bucket total by an amount, a number of held holds and (when some are added) their earliest expiry. */
const MOVE_TOTAL_SQL = `INSERT INTO switchboard_hold_totals AS t (ledger_key, bucket_start, amount_nanocents,
    held_count, next_expiry) VALUES ($1, $2, $3, $4, $5)
  ON CONFLICT (ledger_key, bucket_start) DO UPDATE SET
    amount_nanocents = t.amount_nanocents + excluded.amount_nanocents,
    held_count = t.held_count + excluded.held_count,
    next_expiry = CASE WHEN t.held_count + excluded.held_count <= 0 THEN NULL
      WHEN excluded.next_expiry IS NOT NULL AND (t.next_expiry IS NULL OR excluded.next_expiry < t.next_expiry)
      THEN excluded.next_expiry ELSE t.next_expiry END`;
/** Takes what the admitted prompts now hold themselves off their lease. */
const SHRINK_LEASE_SQL = `UPDATE switchboard_holds SET reserved_nanocents = reserved_nanocents - $1
  WHERE tx_id = $2 AND ledger_key = $3 AND status = 'held' RETURNING created_at`;
/** Gives a lease back: it leaves no trace but what its prompts' own holds record. */
const GIVE_BACK_LEASE_SQL = `DELETE FROM switchboard_holds WHERE tx_id = $1 AND ledger_key = $2 AND status = 'held'
  RETURNING reserved_nanocents, created_at`;
/** The batch of closings as rows: a JSON array of [tx id, actual as a string, status, at]. */
const CLOSINGS_SQL = `SELECT value ->> 0 AS closing_tx, CAST(value ->> 1 AS INTEGER) AS closing_actual,
  value ->> 2 AS closing_status, value ->> 3 AS closing_at FROM json_each($1)`;
/** Held holds of the batch's txs close; returns what each total must move by. */
const CLOSE_HELD_HOLDS_SQL = `UPDATE switchboard_holds
  SET status = c.closing_status, settled_nanocents = c.closing_actual, settled_at = c.closing_at
  FROM (${CLOSINGS_SQL}) AS c WHERE switchboard_holds.tx_id = c.closing_tx AND switchboard_holds.status = 'held'
  RETURNING ledger_key, created_at, reserved_nanocents, settled_nanocents`;
/** An expired hold no longer counts; settling it records, and counts, what the prompt really cost. */
const SETTLE_EXPIRED_HOLDS_SQL = `UPDATE switchboard_holds
  SET status = 'settled', settled_nanocents = c.closing_actual, settled_at = c.closing_at
  FROM (${CLOSINGS_SQL}) AS c WHERE switchboard_holds.tx_id = c.closing_tx AND c.closing_status = 'settled'
    AND switchboard_holds.status = 'expired'
  RETURNING ledger_key, created_at, settled_nanocents`;

/** Bucket totals to move, one statement per bucket however many holds moved it. */
class TotalMoves {
  readonly #moves = new Map<
    string,
    { key: string; bucket: number; amount: bigint; held: number; expiry: number | null }
  >();

  add(key: string, createdAt: number, amount: bigint, held: number, expiry?: number): void {
    const bucket = bucketOf(createdAt);
    const id = `${key}\u0000${bucket}`;
    const move = this.#moves.get(id);
    const at = expiry ?? null;
    if (move === undefined) this.#moves.set(id, { key, bucket, amount, held, expiry: at });
    else {
      move.amount += amount;
      move.held += held;
      if (at !== null && (move.expiry === null || at < move.expiry)) move.expiry = at;
    }
  }

  apply(statement: StatementOf): void {
    const move = statement(MOVE_TOTAL_SQL);
    for (const m of this.#moves.values())
      move.run({ 1: m.key, 2: m.bucket, 3: m.amount, 4: m.held, 5: m.expiry });
  }
}

/** Writes one batch; run it inside a write transaction. */
export function writeLedgerBatch(statement: StatementOf, batch: LedgerBatch): LedgerBatchResult {
  const moves = new TotalMoves();
  const written = new Map<string, bigint>();
  let skipped = 0;
  if (batch.holds.length > 0) {
    const insert = statement(INSERT_ADMITTED_HOLD_SQL);
    for (const hold of batch.holds) {
      const { closing } = hold;
      const params = {
        1: hold.txId,
        2: hold.key,
        3: hold.amount,
        4: closing?.actual ?? null,
        5: closing?.status ?? "held",
        6: hold.createdAt,
        7: closing?.at ?? null,
        8: hold.expiresAt,
        9: hold.actorId,
        10: hold.purpose,
        11: hold.model,
      };
      if (insert.run(params).changes === 0) {
        skipped += 1;
        continue;
      }
      if (closing === undefined) moves.add(hold.key, hold.createdAt, hold.amount, 1, hold.expiresAt);
      else if (closing.status === "settled") moves.add(hold.key, hold.createdAt, closing.actual, 0);
      written.set(hold.key, (written.get(hold.key) ?? 0n) + hold.amount);
    }
  }
  for (const lease of batch.leases) {
    if (lease.giveBack) {
      const row = statement(GIVE_BACK_LEASE_SQL).get({ 1: lease.txId, 2: lease.key }) as
        | { reserved_nanocents: unknown; created_at: unknown }
        | undefined;
      if (row) moves.add(lease.key, Number(row.created_at), -toBigint(row.reserved_nanocents), -1);
      continue;
    }
    const shrink = written.get(lease.key) ?? 0n;
    if (shrink === 0n) continue;
    const row = statement(SHRINK_LEASE_SQL).get({ 1: shrink, 2: lease.txId, 3: lease.key }) as
      | { created_at: unknown }
      | undefined;
    if (row) moves.add(lease.key, Number(row.created_at), -shrink, 0);
  }
  closeHoldsInto(statement, batch.closings, moves);
  moves.apply(statement);
  return { skipped };
}

/**
 * Closes the holds of every given tx with two statements however many there are — held holds
 * settle (or roll back); expired holds of settled txs are settled, counting again — then moves
 * each bucket total touched once. Run it inside a write transaction. Returns how many closed.
 */
export function closeHolds(statement: StatementOf, closings: readonly HoldClosing[]): number {
  const moves = new TotalMoves();
  const closed = closeHoldsInto(statement, closings, moves);
  moves.apply(statement);
  return closed;
}

function closeHoldsInto(statement: StatementOf, closings: readonly HoldClosing[], moves: TotalMoves): number {
  if (closings.length === 0) return 0;
  const batch = JSON.stringify(closings.map((c) => [c.txId, c.actual.toString(), c.status, c.at]));
  const held = statement(CLOSE_HELD_HOLDS_SQL).all({ 1: batch }) as Record<string, unknown>[];
  const expired = closings.some((closing) => closing.status === "settled")
    ? (statement(SETTLE_EXPIRED_HOLDS_SQL).all({ 1: batch }) as Record<string, unknown>[])
    : [];
  for (const hold of held) {
    const change = toBigint(hold.settled_nanocents) - toBigint(hold.reserved_nanocents);
    moves.add(String(hold.ledger_key), Number(hold.created_at), change, -1);
  }
  for (const hold of expired)
    moves.add(String(hold.ledger_key), Number(hold.created_at), toBigint(hold.settled_nanocents), 0);
  return held.length + expired.length;
}
