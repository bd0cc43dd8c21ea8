/**
 * Budget leases: how the SQLite store admits most prompts without a write transaction of their
 * own, while keeping every cap exact across processes.
 *
 * When a reservation reaches the database and the cap has room to spare, the store writes its
 * holds and reserves some more — a lease, written as an ordinary held hold whose tx id starts with
 * `lease:` — and admits the next prompts of the same keys from it in memory. Every
 * other process counts the whole lease as held, so no process can overrun a cap: a prompt admitted
 * from a lease was covered by budget the database had already set aside. The prompts' own holds
 * are written with the next ledger batch (ledger-batch.ts: every 50 ms, with the queued
 * settlements, on the usage writer thread), each taking its amount off the lease, so the database
 * always counts at least what this process admitted.
 *
 * A lease lasts at most LEASE_MAX_AGE_MS and is given back at the next batch once no prompt used
 * it, before any read of this store (its reports stay exact), at flush, close and process exit.
 * It is never bigger than LEASE_PROMPTS prompts' worth, nor than an eighth of what the cap has
 * left, and the last tenth of a cap is reserved prompt by prompt. A process refused while another
 * process holds a lease on that key waits for that lease to be given back and checks once more,
 * so a refusal is made against what was really spent.
 */

import { randomBytes } from "node:crypto";
import type { NormalizedReserve } from "./shared.ts";

/** Every lease's tx id starts with this; callers' tx ids may not. */
export const LEASE_PREFIX = "lease:";
/** How long one lease may admit prompts (a process refused while another holds a lease waits for it). */
export const LEASE_MAX_AGE_MS = 200;
/**
 * A refused reservation waits at most this long for other processes' leases on its key to end:
 * a lease lasts LEASE_MAX_AGE_MS and is given back by the next batches, which a writer thread that
 * is still starting can hold up a little. It looks every FOREIGN_LEASE_POLL_MS.
 */
export const FOREIGN_LEASE_WAIT_MS = 1000;
export const FOREIGN_LEASE_POLL_MS = 20;
/** A lease covers at most this many prompts of the size of the one that took it. */
const LEASE_PROMPTS = 256n;
/** …and at most this share of what the cap has left. */
const LEASE_SHARE_OF_ROOM = 8n;
/** The last 1/10 of a cap is never leased: near the cap every prompt is reserved on its own. */
const EXACT_TAIL_OF_CAP = 10n;
/**
 * No lease for a window younger than this (a rolling window this short, or the first seconds of a
 * calendar one): a lease must stay inside the window until the prompts it admitted are written.
 */
const MIN_WINDOW_SPAN_MS = 10_000;
/** No lease when holds expire sooner than this: a live process must never see its lease expire. */
const MIN_HOLD_TTL_MS = 60_000;
/** Admitted reservations wait for the batch; past this many the next reservation writes them. */
const MAX_ADMITTED = 4096;

export interface Lease {
  key: string;
  txId: string;
  createdAt: number;
  /** The cap it was checked against: a different cap (configuration changed) needs a new lease. */
  cap: bigint;
  /** What it can still admit. */
  free: bigint;
  /** Whether a prompt was admitted since the last batch: an unused lease is given back. */
  used: boolean;
}

export interface Closing {
  actual: bigint;
  status: "settled" | "rolled_back";
  at: number;
}

/** A reservation admitted from leases whose holds are not written yet. */
export interface AdmittedReservation {
  txId: string;
  amount: bigint;
  keys: readonly string[];
  createdAt: number;
  expiresAt: number;
  actorId: string | null;
  purpose: string | null;
  model: string | null;
  /** Set when it is settled or released before its holds are written: they are written closed. */
  closing?: Closing;
}

/**
 * How much to lease on a key for the prompts after this one, when the cap has `used` spent (this
 * prompt not included); undefined when a lease would not cover at least two more prompts this size.
 */
export function leaseSize(cap: bigint, used: bigint, amount: bigint): bigint | undefined {
  if (amount <= 0n) return undefined;
  const room = cap - used - amount - cap / EXACT_TAIL_OF_CAP;
  const share = room / LEASE_SHARE_OF_ROOM;
  const size = share < amount * LEASE_PROMPTS ? share : amount * LEASE_PROMPTS;
  return size >= 2n * amount ? size : undefined;
}

/** Whether the reservation's window and expiry allow leases at all. */
export function leasesAllowed(r: NormalizedReserve, now: number): boolean {
  return (
    r.amount > 0n &&
    r.ttlMs >= MIN_HOLD_TTL_MS &&
    r.caps.every((cap) => now - cap.windowStartMs >= MIN_WINDOW_SPAN_MS)
  );
}

export function isLeaseStale(lease: Lease, now: number): boolean {
  return now - lease.createdAt >= LEASE_MAX_AGE_MS || now < lease.createdAt;
}

/** This store's leases and the reservations admitted from them (the SQL is in sqlite.ts). */
export class BudgetLeases {
  readonly leases = new Map<string, Lease>();
  readonly admitted = new Map<string, AdmittedReservation>();
  readonly #owner = `${LEASE_PREFIX}${process.pid}-${randomBytes(4).toString("hex")}:`;
  #taken = 0;

  nextTxId(): string {
    this.#taken += 1;
    return `${this.#owner}${this.#taken}`;
  }

  isOwn(txId: string): boolean {
    return txId.startsWith(this.#owner);
  }

  get size(): number {
    return this.admitted.size + this.leases.size;
  }

  /**
   * Admits the reservation when every key has a lease that is fresh, checked against the same
   * cap, inside the window and with room for it; else false and the database decides.
   */
  admit(r: NormalizedReserve, now: number): boolean {
    if (this.admitted.size >= MAX_ADMITTED || this.admitted.has(r.txId)) return false;
    for (const cap of r.caps) {
      const lease = this.leases.get(cap.key);
      if (
        lease === undefined ||
        lease.cap !== cap.cap ||
        lease.createdAt < cap.windowStartMs ||
        lease.free < r.amount ||
        isLeaseStale(lease, now)
      )
        return false;
    }
    this.#record(r, now);
    return true;
  }

  /** Takes the reservation off its keys' leases (which have room) and remembers it. */
  #record(r: NormalizedReserve, now: number): void {
    for (const cap of r.caps) {
      const lease = this.leases.get(cap.key) as Lease;
      lease.free -= r.amount;
      lease.used = true;
    }
    this.admitted.set(r.txId, {
      txId: r.txId,
      amount: r.amount,
      keys: r.caps.map((cap) => cap.key),
      createdAt: now,
      expiresAt: now + r.ttlMs,
      actorId: r.actorId,
      purpose: r.purpose,
      model: r.model,
    });
  }

  /**
   * Closes an admitted reservation whose holds are not written yet; false when the tx is not
   * admitted here or the settlement exceeds the reservation (the caller writes it at once).
   */
  close(txId: string, closing: Closing): boolean {
    const admitted = this.admitted.get(txId);
    if (admitted === undefined || closing.actual > admitted.amount) return false;
    admitted.closing ??= closing;
    return true;
  }
}
