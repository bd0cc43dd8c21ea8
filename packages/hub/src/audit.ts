/**
 * The audit log: every change made through the admin UI (purpose overrides, secrets, tokens,
 * allowances), who made it and when, with the state before and after. Append-only; entries never
 * hold a secret value, a token value or a login token, only names and version numbers.
 */
import { hostname } from "node:os";
import { newId, SwitchboardError } from "@switchboard/core";
import type { AdminStore, AuditQuery, AuditTargetType, StoredAuditEntry } from "@switchboard/store";

export type { AuditQuery, AuditTargetType } from "@switchboard/store";

export interface AuditEntryInput {
  /** The actor id that made the change. */
  actor: string;
  /** What was done, e.g. `purpose.override`, `secret.set`, `token.revoke`, `allowance.top-up`. */
  action: string;
  targetType: AuditTargetType;
  /** The purpose, secret, token or actor the change applies to. */
  target: string;
  /** The state before the change (JSON-serialisable); undefined when there was none. */
  before?: unknown;
  /** The state after the change; undefined when there is none (a reset, a revocation). */
  after?: unknown;
}

export interface AuditEntry {
  id: string;
  createdAt: Date;
  actor: string;
  action: string;
  targetType: AuditTargetType;
  target: string;
  before: unknown;
  after: unknown;
  /** The host and process that made the change, so a change on a shared database can be traced. */
  instance: string;
}

/** The store methods the audit log needs. */
export type AuditStore = Pick<AdminStore, "insertAuditEntry" | "listAuditEntries">;

export function toStoredAuditEntry(entry: AuditEntry): StoredAuditEntry {
  return {
    ...entry,
    before: entry.before === undefined ? undefined : JSON.stringify(entry.before),
    after: entry.after === undefined ? undefined : JSON.stringify(entry.after),
  };
}

function parseState(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export class Audit {
  readonly #store: () => Promise<AuditStore>;
  readonly #now: () => number;
  readonly instance = `${hostname()}:${process.pid}`;
  #lastAt = 0;

  constructor(store: () => Promise<AuditStore>, options: { now?: () => number } = {}) {
    this.#store = store;
    this.#now = options.now ?? Date.now;
  }

  /** Builds an entry stamped with the time and this instance (stores that write it themselves use this). */
  entry(input: AuditEntryInput): AuditEntry {
    if (!input.actor) {
      throw new SwitchboardError("INVALID_INPUT", "An audited change needs the actor who made it.");
    }
    // Strictly increasing per process, so two changes in one millisecond keep their order.
    const now = Math.max(this.#now(), this.#lastAt + 1);
    this.#lastAt = now;
    return {
      id: newId("aud"),
      createdAt: new Date(now),
      actor: input.actor,
      action: input.action,
      targetType: input.targetType,
      target: input.target,
      before: input.before,
      after: input.after,
      instance: this.instance,
    };
  }

  async record(input: AuditEntryInput): Promise<AuditEntry> {
    const entry = this.entry(input);
    await (await this.#store()).insertAuditEntry(toStoredAuditEntry(entry));
    return entry;
  }

  async list(query: AuditQuery = {}): Promise<AuditEntry[]> {
    const rows = await (await this.#store()).listAuditEntries(query);
    return rows.map((row) => ({ ...row, before: parseState(row.before), after: parseState(row.after) }));
  }
}
