/**
 * Accountants hold money for a prompt before it runs and settle the real cost after. The built-in
 * ones: windowed spending **limits** and a refillable **allowance** per actor. Both keep their
 * books in the store, whose reservation checks are atomic (also across processes sharing one
 * PostgreSQL database), so concurrent prompts never overspend.
 */
import { SwitchboardError } from "@switchboard/core";
import type { Store } from "@switchboard/store";
import type { HubConfig, LimitConfig } from "../config.ts";
import type { Actor } from "../types.ts";
import { formatUsd, usdToNanocents } from "./pricing.ts";

export interface Reservation {
  /** One id per prompt, chain or group: every accountant books under it. */
  txId: string;
  amount: bigint;
  modelId: string;
  purpose: string | undefined;
  actor: Actor | undefined;
}

export interface Accountant {
  name: string;
  /** Holds `amount`; throws a SwitchboardError to refuse (nothing held then). */
  reserve(reservation: Reservation): Promise<void>;
  /**
   * Replaces the hold with the real cost. `reserved` is the amount the reservation was made with:
   * a settlement at or below it only lowers what is counted, so the write need not be awaited.
   */
  settle(txId: string, actual: bigint, reserved: bigint): Promise<void>;
  /** Releases the hold entirely. */
  rollback(txId: string): Promise<void>;
}

type Window = LimitConfig["window"];

const HOUR = 3_600_000;
const ROLLING: Partial<Record<Window, number>> = {
  "rolling-24h": 24 * HOUR,
  "rolling-7d": 7 * 24 * HOUR,
  "rolling-30d": 30 * 24 * HOUR,
};

/** Start of the window containing `now` (calendar windows in UTC; weeks start on Monday). */
export function windowStart(window: Window, now: Date): Date {
  const rolling = ROLLING[window];
  if (rolling !== undefined) return new Date(now.getTime() - rolling);
  const day = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  if (window === "calendar-day") return new Date(day);
  if (window === "calendar-week") return new Date(day - ((now.getUTCDay() + 6) % 7) * 24 * HOUR);
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
}

/** When a calendar window's spending starts counting from zero again; undefined for rolling windows. */
export function windowEnd(window: Window, now: Date): Date | undefined {
  if (ROLLING[window] !== undefined) return undefined;
  const start = windowStart(window, now);
  if (window === "calendar-day") return new Date(start.getTime() + 24 * HOUR);
  if (window === "calendar-week") return new Date(start.getTime() + 7 * 24 * HOUR);
  return new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1));
}

/** When the window's spending starts counting from zero again; rolling windows free up gradually. */
export function windowReset(window: Window, now: Date): string {
  const end = windowEnd(window, now);
  return end === undefined
    ? `spending leaves this ${window.slice(8)} window as it ages`
    : `resets at ${end.toISOString()}`;
}

/** The actor id recorded for prompts without an actor, in actor-scoped limits. */
const ANONYMOUS = "anonymous";

/** The ledger key of a limit: one per limit, and per actor for actor-scoped limits. */
export function limitKey(name: string, limit: LimitConfig, actor: Actor | undefined): string {
  return limit.scope === "actor" ? `${actorKeyPrefix(name)}${actor?.id ?? ANONYMOUS}` : `limit:${name}`;
}

/** What every actor's ledger key of an actor-scoped limit starts with; the actor id follows it. */
export function actorKeyPrefix(name: string): string {
  return `limit:${name}:actor:`;
}

/** How long reservations hold before they expire: `accounting.hold_ttl_seconds`, else the store's default. */
export function holdTtlMs(config: HubConfig): number | undefined {
  const seconds = config.accounting?.hold_ttl_seconds;
  return seconds === undefined ? undefined : seconds * 1000;
}

export function limitApplies(limit: LimitConfig, modelId: string, purpose: string | undefined): boolean {
  return (
    (limit.purpose === undefined || limit.purpose === purpose) &&
    (limit.model === undefined || limit.model === modelId)
  );
}

export function limitsAccountant(
  config: HubConfig,
  store: () => Promise<Store>,
  clock: () => Date = () => new Date(),
): Accountant {
  // Caps in nanocents once, not on every prompt.
  const limits = Object.entries(config.limits ?? {}).map(
    ([name, limit]) => [name, limit, usdToNanocents(limit.amount_usd)] as const,
  );
  const ttlMs = holdTtlMs(config);
  return {
    name: "limits",
    async reserve(reservation) {
      const now = clock();
      const applicable = limits.filter(([, limit]) =>
        limitApplies(limit, reservation.modelId, reservation.purpose),
      );
      if (applicable.length === 0) return;
      const caps = applicable.map(([name, limit, cap]) => ({
        key: limitKey(name, limit, reservation.actor),
        cap,
        windowStart: windowStart(limit.window, now),
      }));
      const result = await (await store()).reserveAgainstCaps({
        txId: reservation.txId,
        amount: reservation.amount,
        caps,
        actorId: reservation.actor?.id,
        purpose: reservation.purpose,
        model: reservation.modelId,
        ttlMs,
      });
      if (result.ok) return;
      const failedIndex = caps.findIndex((cap) => cap.key === result.key);
      const [name, limit] = applicable[failedIndex] ?? applicable[0] ?? ["?", undefined];
      const scope =
        limit?.scope === "actor" ? `for ${reservation.actor?.id ?? "anonymous"}` : "for this instance";
      throw new SwitchboardError(
        "LIMIT_EXCEEDED",
        `Limit "${name}" reached ${scope}: ${formatUsd(result.used)} of ${formatUsd(result.cap)} used in the ${limit?.window} window, ` +
          `this prompt needs up to ${formatUsd(reservation.amount)}; ${limit ? windowReset(limit.window, now) : ""}.`,
        {
          limit: name,
          used: result.used.toString(),
          cap: result.cap.toString(),
          needed: reservation.amount.toString(),
        },
      );
    },
    // The prompt that ends does not wait for the commit where the store can defer it (SQLite).
    async settle(txId, actual, reserved) {
      await (await store()).closeReservation({ book: "caps", txId, actual, reserved });
    },
    async rollback(txId) {
      await (await store()).closeReservation({ book: "caps", txId });
    },
  };
}

/**
 * A balance per actor, topped up by an operator and spent by prompts. Prompts without an actor
 * are not charged to any allowance. `config` sets how long reservations hold.
 */
export function allowanceAccountant(store: () => Promise<Store>, config?: HubConfig): Accountant {
  const ttlMs = config === undefined ? undefined : holdTtlMs(config);
  return {
    name: "allowance",
    async reserve(reservation) {
      const actorId = reservation.actor?.id;
      if (actorId === undefined) return;
      const result = await (await store()).reserveAllowance({
        txId: reservation.txId,
        actorId,
        amount: reservation.amount,
        purpose: reservation.purpose,
        model: reservation.modelId,
        ttlMs,
      });
      if (result.ok) return;
      const balance = result.balance === undefined ? "no allowance" : `${formatUsd(result.balance)} left`;
      throw new SwitchboardError(
        "INSUFFICIENT_BALANCE",
        `Allowance of ${actorId}: ${balance}, this prompt needs up to ${formatUsd(reservation.amount)}; top up with 'switchboard allowance topup ${actorId} USD'.`,
        { actor: actorId, balance: result.balance?.toString(), needed: reservation.amount.toString() },
      );
    },
    async settle(txId, actual, reserved) {
      await (await store()).closeReservation({ book: "allowance", txId, actual, reserved });
    },
    async rollback(txId) {
      await (await store()).closeReservation({ book: "allowance", txId });
    },
  };
}
