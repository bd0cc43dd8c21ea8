/**
 * Read models over the usage log and the budgets, exposed as `hub.reports`: the limits report,
 * usage summaries, the response log (chains grouped) and allowances. The CLI and the admin UI are
 * thin views over these calls; neither needs to know how ledger keys are spelled or how money is
 * stored. Money stays integer nanocents (`bigint`); `formatUsd` and `reportJson` format it.
 */
import { SwitchboardError } from "@switchboard/core";
import type {
  AllowanceLedgerEntry,
  Store,
  UsageCursor,
  UsageFilter,
  UsageRecord,
  UsageSummaryBy,
  UsageSummaryRow,
} from "@switchboard/store";
import { actorKeyPrefix, limitKey, windowEnd, windowReset, windowStart } from "./accounting/accountants.ts";
import { usdToNanocents } from "./accounting/pricing.ts";
import type { HubConfig, LimitConfig } from "./config.ts";

export type LimitWindow = LimitConfig["window"];

/** One limit's standing: for the whole instance, or for one actor of an actor-scoped limit. */
export interface LimitStatus {
  limit: string;
  scope: LimitConfig["scope"];
  /** Actor-scoped limits: whose spending this is (undefined on the row of a limit nobody has used yet). */
  actorId: string | undefined;
  window: LimitWindow;
  purpose: string | undefined;
  model: string | undefined;
  windowStart: Date;
  /** Calendar windows: when spending counts from zero again; undefined for rolling windows. */
  resetsAt: Date | undefined;
  /** The same in words: "resets at …", or how a rolling window frees up. */
  reset: string;
  /** Nanocents, as are `used`, `held` and `left`. */
  cap: bigint;
  /** Settled costs plus what prompts in flight hold; expired holds do not count. */
  used: bigint;
  /** The part of `used` held by prompts in flight. */
  held: bigint;
  /** What is left under the cap (never negative). */
  left: bigint;
}

export type UsageGrouping = UsageSummaryBy;

/**
 * Responses, failures (failed or aborted), tokens and cost; sums skip unknown values: a token sum
 * or cost is undefined only when no response reported it.
 */
export type UsageTotals = Omit<UsageSummaryRow, "key">;

/**
 * One group, its grouping field named after the grouping: `{ purpose: "sql", … }`. The value is
 * null for responses without one; for `day` and `hour` it is the period's start (ISO 8601, UTC).
 */
export type UsageGroup<G extends UsageGrouping> = { [K in G]: string | null } & UsageTotals;

/** A grouping plus filters: since/until, purpose, model (that answered), actorId, status. */
export interface UsageReportQuery<G extends UsageGrouping = UsageGrouping> extends UsageFilter {
  by: G;
}

export interface UsageReport<G extends UsageGrouping = UsageGrouping> {
  by: G;
  /** Most responses first; `day` and `hour` oldest first. */
  groups: UsageGroup<G>[];
  totals: UsageTotals;
}

export interface LogQuery extends UsageFilter {
  /** Entries per page (a chain is one entry), 1 to 1000; default 50. */
  limit?: number | undefined;
  /** Where the previous page ended (its `nextCursor`). */
  cursor?: string | undefined;
}

/** A response on its own, or a whole tool-call chain shown where its newest step falls. */
export type LogEntry =
  | { kind: "response"; response: UsageRecord }
  | { kind: "chain"; chainId: string /** Oldest first. */; steps: UsageRecord[]; totals: UsageTotals };

export interface LogPage {
  /** Newest first. */
  entries: LogEntry[];
  /** Pass as `cursor` for the next page; undefined when this page reached the end. */
  nextCursor: string | undefined;
}

export interface AllowanceStatus {
  actorId: string;
  /** Nanocents left to spend; reservations of prompts in flight are already taken out. */
  balance: bigint;
  /** Nanocents reserved by prompts in flight. */
  held: bigint;
  updatedAt: Date;
}

const MAX_LOG_PAGE = 1000;

export class Reports {
  readonly #config: HubConfig;
  readonly #store: () => Promise<Store>;
  readonly #clock: () => Date;

  constructor(options: { config: HubConfig; store: () => Promise<Store>; clock?: () => Date }) {
    this.#config = options.config;
    this.#store = options.store;
    this.#clock = options.clock ?? (() => new Date());
  }

  /** Every configured limit, per actor for actor-scoped ones; `actorId` narrows to one actor. */
  async limits(options: { actorId?: string | undefined } = {}): Promise<LimitStatus[]> {
    const limits = Object.entries(this.#config.limits ?? {});
    if (limits.length === 0) return [];
    const store = await this.#store();
    // Holds left by dead processes are marked expired first, so they neither count nor linger as held.
    await store.expireHolds();
    const now = this.#clock();
    const report: LimitStatus[] = [];
    for (const [name, limit] of limits) {
      const start = windowStart(limit.window, now);
      const row = (actorId: string | undefined, used: bigint, held: bigint): LimitStatus => {
        const cap = usdToNanocents(limit.amount_usd);
        return {
          limit: name,
          scope: limit.scope,
          actorId,
          window: limit.window,
          purpose: limit.purpose,
          model: limit.model,
          windowStart: start,
          resetsAt: windowEnd(limit.window, now),
          reset: windowReset(limit.window, now),
          cap,
          used,
          held,
          left: used >= cap ? 0n : cap - used,
        };
      };
      if (limit.scope === "instance" || options.actorId !== undefined) {
        const key = limitKey(
          name,
          limit,
          options.actorId === undefined ? undefined : { id: options.actorId },
        );
        const spent = (await store.spentByKey(key, start)).find((entry) => entry.key === key);
        report.push(
          row(limit.scope === "actor" ? options.actorId : undefined, spent?.spent ?? 0n, spent?.held ?? 0n),
        );
        continue;
      }
      const prefix = actorKeyPrefix(name);
      const actors = await store.spentByKey(prefix, start);
      for (const entry of actors) report.push(row(entry.key.slice(prefix.length), entry.spent, entry.held));
      if (actors.length === 0) report.push(row(undefined, 0n, 0n));
    }
    return report;
  }

  /** Tokens, cost and responses grouped by purpose, model, actor, day or hour, with totals. */
  async usage<G extends UsageGrouping>(query: UsageReportQuery<G>): Promise<UsageReport<G>> {
    const rows = await (await this.#store()).summarizeUsage(query);
    return {
      by: query.by,
      groups: rows.map((row) => ({ [query.by]: row.key, ...totalsOf(row) }) as UsageGroup<G>),
      totals: sumTotals(rows.map(totalsOf)),
    };
  }

  /**
   * The response log, newest first, a page at a time; each tool-call chain is one entry holding
   * all its steps, placed where its newest step falls.
   */
  async log(query: LogQuery = {}): Promise<LogPage> {
    const limit = query.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LOG_PAGE) {
      throw new SwitchboardError(
        "INVALID_INPUT",
        `The log's limit must be a whole number from 1 to ${MAX_LOG_PAGE}.`,
      );
    }
    const store = await this.#store();
    const pageStart = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    const { limit: _limit, cursor: _cursor, ...filter } = query;
    const batchSize = Math.max(limit, 20);
    const entries: LogEntry[] = [];
    const seenChains = new Set<string>();
    let before = pageStart;
    let consumed: UsageCursor | undefined;
    for (;;) {
      const rows = await store.listUsage({ ...filter, limit: batchSize, before });
      const chains = await this.#chainsOf(store, rows, seenChains);
      for (const row of rows) {
        consumed = { createdAt: row.createdAt, id: row.id };
        const entry = this.#entryFor(row, chains, seenChains, pageStart);
        if (entry !== undefined) entries.push(entry);
        if (entries.length === limit) return { entries, nextCursor: encodeCursor(consumed) };
      }
      if (rows.length < batchSize) return { entries, nextCursor: undefined };
      before = consumed;
    }
  }

  /** The steps of every chain among `rows` not shown yet, each newest first. */
  async #chainsOf(
    store: Store,
    rows: readonly UsageRecord[],
    seen: ReadonlySet<string>,
  ): Promise<Map<string, UsageRecord[]>> {
    const ids = [
      ...new Set(rows.flatMap((row) => (row.chainId && !seen.has(row.chainId) ? [row.chainId] : []))),
    ];
    const chains = new Map<string, UsageRecord[]>();
    if (ids.length === 0) return chains;
    for (const step of await store.listUsage({ chainIds: ids, limit: 10_000 })) {
      const steps = chains.get(step.chainId as string) ?? [];
      steps.push(step);
      chains.set(step.chainId as string, steps);
    }
    return chains;
  }

  #entryFor(
    row: UsageRecord,
    chains: ReadonlyMap<string, UsageRecord[]>,
    seen: Set<string>,
    pageStart: UsageCursor | undefined,
  ): LogEntry | undefined {
    if (row.chainId === undefined) return { kind: "response", response: row };
    if (seen.has(row.chainId)) return undefined;
    seen.add(row.chainId);
    const steps = chains.get(row.chainId) ?? [row];
    // A chain with a step newer than this page's start was shown on an earlier page.
    if (pageStart !== undefined && steps.some((step) => isNewer(step, pageStart))) return undefined;
    const oldestFirst = [...steps].reverse();
    return {
      kind: "chain",
      chainId: row.chainId,
      steps: oldestFirst,
      totals: sumTotals(oldestFirst.map(totalsOfRecord)),
    };
  }

  /** Every actor's allowance (expired reservations refunded first). */
  async allowances(): Promise<AllowanceStatus[]> {
    const store = await this.#store();
    await store.expireHolds();
    return store.listAllowances();
  }

  /** One actor's allowance; undefined when it was never topped up. */
  async allowance(actorId: string): Promise<AllowanceStatus | undefined> {
    const store = await this.#store();
    await store.expireHolds();
    return store.getAllowance(actorId);
  }

  /** Top-ups and charges, newest first. */
  async allowanceHistory(
    query: { actorId?: string | undefined; limit?: number | undefined } = {},
  ): Promise<AllowanceLedgerEntry[]> {
    return (await this.#store()).allowanceHistory(query);
  }

  /** Adds nanocents to an actor's allowance (a negative amount withdraws); the new standing. */
  async topUpAllowance(
    actorId: string,
    amount: bigint,
    options: { note?: string | undefined; by?: string | undefined } = {},
  ): Promise<AllowanceStatus> {
    const store = await this.#store();
    await store.topUpAllowance(actorId, amount, options.note, options.by);
    const standing = await store.getAllowance(actorId);
    if (standing === undefined)
      throw new SwitchboardError("STORAGE_ERROR", `The allowance of ${actorId} was not stored.`);
    return standing;
  }
}

function totalsOf({ key: _key, ...totals }: UsageSummaryRow): UsageTotals {
  return totals;
}

function totalsOfRecord(row: UsageRecord): UsageTotals {
  return {
    responses: 1,
    failed: row.status === "ok" ? 0 : 1,
    inputTokens: row.inputTokens,
    outputTokens: row.outputTokens,
    cachedTokens: row.cachedTokens,
    costNanocents: row.costNanocents,
  };
}

function addKnown<T extends number | bigint>(a: T | undefined, b: T | undefined): T | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return ((a as number) + (b as number)) as T;
}

function sumTotals(parts: readonly UsageTotals[]): UsageTotals {
  const sum: UsageTotals = {
    responses: 0,
    failed: 0,
    inputTokens: undefined,
    outputTokens: undefined,
    cachedTokens: undefined,
    costNanocents: undefined,
  };
  for (const part of parts) {
    sum.responses += part.responses;
    sum.failed += part.failed;
    sum.inputTokens = addKnown(sum.inputTokens, part.inputTokens);
    sum.outputTokens = addKnown(sum.outputTokens, part.outputTokens);
    sum.cachedTokens = addKnown(sum.cachedTokens, part.cachedTokens);
    sum.costNanocents = addKnown(sum.costNanocents, part.costNanocents);
  }
  return sum;
}

/** Newer in the log's order: later creation, then (same millisecond) the greater id byte-wise. */
function isNewer(row: UsageRecord, than: UsageCursor): boolean {
  const at = row.createdAt.getTime();
  const other = than.createdAt.getTime();
  return at > other || (at === other && Buffer.compare(Buffer.from(row.id), Buffer.from(than.id)) > 0);
}

function encodeCursor(cursor: UsageCursor): string {
  return Buffer.from(JSON.stringify([cursor.createdAt.getTime(), cursor.id])).toString("base64url");
}

function decodeCursor(text: string): UsageCursor {
  try {
    const [at, id] = JSON.parse(Buffer.from(text, "base64url").toString("utf8")) as unknown[];
    if (typeof at === "number" && Number.isFinite(at) && typeof id === "string") {
      return { createdAt: new Date(at), id };
    }
  } catch {
    // Reported below.
  }
  throw new SwitchboardError(
    "INVALID_INPUT",
    "The log cursor is not one a log page gave out; start from the first page.",
  );
}

/**
 * A copy that JSON can hold, for views that print or send reports: money (bigint) becomes a
 * decimal string of nanocents, dates become ISO 8601 strings, undefined fields are left out.
 */
export function reportJson(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value, (_key, item: unknown) => (typeof item === "bigint" ? item.toString() : item)),
  );
}
