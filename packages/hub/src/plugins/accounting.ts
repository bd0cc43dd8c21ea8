/**
 * Budgets as a plugin: before a prompt, a whole chain, or the first prompt of a group, every
 * accountant reserves an amount (one refusal releases the others and refuses the prompt before
 * any request); afterwards each settles once with what all responses were charged — also when
 * the prompt failed or was aborted after output — or releases the hold when nothing was delivered.
 */
import { describeError, type ModelResponse, type PromptInput } from "@switchboard/core";
import type { Store } from "@switchboard/store";
import {
  type Accountant,
  allowanceAccountant,
  limitsAccountant,
  type Reservation,
} from "../accounting/accountants.ts";
import { type PriceBook, usdToNanocents } from "../accounting/pricing.ts";
import { chargedCost, estimateInputTokens } from "../charges.ts";
import type { HubConfig } from "../config.ts";
import type { SwitchboardPlugin } from "../hooks.ts";

const DEFAULT_RESERVATION_USD = 0.1;
const DEFAULT_GROUP_RESERVATION_USD = 0.5;

/** Holds the reservation with every accountant; on a refusal releases those already held. */
async function reserveAll(accountants: readonly Accountant[], reservation: Reservation): Promise<void> {
  const held: Accountant[] = [];
  for (const accountant of accountants) {
    try {
      await accountant.reserve(reservation);
    } catch (error) {
      for (const earlier of held.reverse()) {
        await earlier.rollback(reservation.txId).catch((rollbackError: unknown) => {
          process.emitWarning(
            `Accountant ${earlier.name} could not release ${reservation.txId}: ${describeError(rollbackError)}`,
          );
        });
      }
      throw error;
    }
    held.push(accountant);
  }
}

async function finishAll(
  accountants: readonly Accountant[],
  txId: string,
  spent: bigint | undefined,
  reserved: bigint,
): Promise<void> {
  for (const accountant of accountants) {
    try {
      if (spent === undefined) await accountant.rollback(txId);
      else await accountant.settle(txId, spent, reserved);
    } catch (error) {
      process.emitWarning(`Accountant ${accountant.name} could not settle ${txId}: ${describeError(error)}`);
    }
  }
}

interface GroupBooking {
  txId: string;
  held: Promise<void> | undefined;
  /** What the group's first prompt reserved with every accountant. */
  amount: bigint;
  spent: bigint;
}

export function accountingPlugin(options: {
  config: HubConfig;
  prices: PriceBook;
  accountants: () => Promise<readonly Accountant[]>;
}): SwitchboardPlugin {
  const { config, prices } = options;
  const settings = config.accounting ?? {};
  const groups = new Map<string, GroupBooking>();
  // Configured amounts are converted once, not on every prompt.
  const converted = new Map<number, bigint>();
  const nanocents = (usd: number): bigint => {
    let amount = converted.get(usd);
    if (amount === undefined) {
      amount = usdToNanocents(usd);
      converted.set(usd, amount);
    }
    return amount;
  };

  /**
   * A group's own setting first (groups only); then per model, per purpose, an estimate from
   * `max_tokens`, and the automatic amount.
   */
  const reservationFor = (
    modelId: string,
    purpose: string | undefined,
    input: PromptInput | undefined,
  ): bigint => {
    if (!input && settings.group_reservation_usd !== undefined)
      return nanocents(settings.group_reservation_usd);
    const perModel = settings.reservations?.models?.[modelId];
    if (perModel !== undefined) return nanocents(perModel);
    const perPurpose = purpose ? settings.reservations?.purposes?.[purpose] : undefined;
    if (perPurpose !== undefined) return nanocents(perPurpose);
    const maxTokens = input?.options.max_tokens;
    if (settings.estimate !== false && input && typeof maxTokens === "number") {
      const estimate = prices.cost(modelId, { input: estimateInputTokens(input), output: maxTokens });
      if (estimate !== undefined) return estimate;
    }
    return nanocents(
      input ? (settings.auto_reservation_usd ?? DEFAULT_RESERVATION_USD) : DEFAULT_GROUP_RESERVATION_USD,
    );
  };

  /**
   * What one response is charged: its reported usage, else the tokens counted from its own prompt
   * and output (so each step of a chain pays for itself, not for the whole reservation). Only a
   * model without any price (a fallback nobody priced) is charged the reservation.
   */
  const costOf = (response: ModelResponse, reserved: bigint): bigint =>
    chargedCost(response, prices) ?? reserved;

  return {
    name: "accounting",
    async promptContext(args) {
      if (settings.enabled === false) return undefined;
      const accountants = await options.accountants();
      if (accountants.length === 0) return undefined;
      prices.requirePrice(args.modelId);

      if (args.group) {
        const group = args.group;
        let booking = groups.get(group.id);
        if (!booking) {
          booking = { txId: group.id, held: undefined, amount: 0n, spent: 0n };
          groups.set(group.id, booking);
        }
        const current = booking;
        const amount = reservationFor(args.modelId, args.purpose, undefined);
        return {
          async before() {
            // The group's first prompt reserves for the whole group; a refused reservation is tried again by the next prompt.
            if (current.held === undefined) current.amount = amount;
            current.held ??= reserveAll(accountants, {
              txId: current.txId,
              amount,
              modelId: args.modelId,
              purpose: args.purpose,
              actor: args.actor,
            }).catch((error: unknown) => {
              current.held = undefined;
              throw error;
            });
            await current.held;
          },
          onResponse(response) {
            current.spent += costOf(response, amount);
          },
        };
      }

      const amount = reservationFor(args.modelId, args.purpose, args.input);
      let spent = 0n;
      return {
        before: () =>
          reserveAll(accountants, {
            txId: args.executionId,
            amount,
            modelId: args.modelId,
            purpose: args.purpose,
            actor: args.actor,
          }),
        onResponse(response) {
          spent += costOf(response, amount);
        },
        // A failure before any output releases the hold; anything delivered is settled, also on failure or abort.
        after: ({ error }) =>
          finishAll(
            accountants,
            args.executionId,
            error !== undefined && spent === 0n ? undefined : spent,
            amount,
          ),
      };
    },
    async groupExit({ group }) {
      const booking = groups.get(group.id);
      groups.delete(group.id);
      if (!booking?.held) return;
      await booking.held;
      await finishAll(await options.accountants(), booking.txId, booking.spent, booking.amount);
    },
  };
}

/** The built-in accountants the configuration asks for. */
export function budgetsPlugin(): SwitchboardPlugin {
  /** The hub's store, once accountants were asked for (flushing must not open it). */
  let booksIn: (() => Promise<Store>) | undefined;
  return {
    name: "budgets",
    // Settlements the store queued are buffered data too: `hub.flush()` writes them.
    async flush() {
      if (booksIn) await (await booksIn()).flushSettlements();
    },
    registerAccountants({ config, store }) {
      booksIn = store;
      const accountants: Accountant[] = [];
      if (Object.keys(config.limits ?? {}).length > 0) accountants.push(limitsAccountant(config, store));
      if (config.allowance?.enabled) accountants.push(allowanceAccountant(store, config));
      return accountants;
    },
  };
}
