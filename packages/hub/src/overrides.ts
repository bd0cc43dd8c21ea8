/**
 * Purpose overrides: an operator's changes to a purpose's routing (model, allowlist, block list,
 * fallbacks), stored in the database over the YAML configuration. Each is validated by the same
 * schema as the YAML, audited, and effective at once for `hub.model()` in this process. Other
 * processes sharing the database see a change within a second: PostgreSQL tells them (LISTEN/NOTIFY),
 * on SQLite they re-read the (small) override table at most twice a second when routing.
 */
import { SwitchboardError } from "@switchboard/core";
import type { AdminStore, StoredPurposeOverride } from "@switchboard/store";
import type { z } from "zod";
import { type Audit, type AuditEntry, toStoredAuditEntry } from "./audit.ts";
import { type HubConfig, type PurposeConfig, purposeSchema, refModel } from "./config.ts";

/** The purpose settings an override may replace; the description stays with the YAML or plugin. */
export const OVERRIDE_FIELDS = ["model", "models", "blocked_models", "fallbacks"] as const;
export type OverrideField = (typeof OVERRIDE_FIELDS)[number];

const overrideSchema = purposeSchema.pick({
  model: true,
  models: true,
  blocked_models: true,
  fallbacks: true,
});

/** Replaces each field it sets; a field it leaves out keeps the YAML's value. */
export type PurposeOverride = z.output<typeof overrideSchema>;

/** The store methods purpose overrides need. */
export type PurposeOverrideStore = Pick<
  AdminStore,
  "listPurposeOverrides" | "writePurposeOverride" | "watchPurposeOverrides"
>;

export interface LoadedOverride {
  override: PurposeOverride;
  updatedAt: Date;
  updatedBy: string;
}

/** Field → what is wrong with it, as the config schema says. */
export type OverrideFieldErrors = Partial<Record<OverrideField, string>>;

export type OverrideValidation =
  | { ok: true; override: PurposeOverride }
  | { ok: false; errors: OverrideFieldErrors };

/** The effective purpose settings an audit entry shows before and after a change. */
export type PurposeSettings = Pick<PurposeConfig, OverrideField>;

export interface PurposeOverridesOptions {
  store: () => Promise<PurposeOverrideStore>;
  audit: Audit;
  /** The configuration from YAML (or the embedded default), which overrides apply over. */
  base: HubConfig;
  /** Purposes that exist (registered by plugins or declared in YAML): only these can be overridden. */
  purposes: () => Promise<readonly string[]>;
  /** Whether a name (id or alias) is a registered model. */
  isModel: (name: string) => boolean;
  /**
   * False when the database cannot hold overrides yet (a SQLite file not created): routing then
   * opens nothing. Default: always true.
   */
  storeMayHoldOverrides?: () => boolean;
  /** How often, without notifications, routing re-reads the overrides (default 500 ms: within a second). */
  recheckMs?: number;
  now?: () => number;
}

function settingsOf(config: PurposeConfig | undefined): PurposeSettings {
  const settings: PurposeSettings = {};
  for (const field of OVERRIDE_FIELDS) {
    const value = config?.[field];
    if (value !== undefined) (settings as Record<string, unknown>)[field] = value;
  }
  return settings;
}

/** The YAML configuration with the overrides applied: each set field replaces the YAML's. */
export function applyOverrides(base: HubConfig, overrides: ReadonlyMap<string, LoadedOverride>): HubConfig {
  if (overrides.size === 0) return base;
  const purposes: Record<string, PurposeConfig> = { ...base.purposes };
  for (const [name, { override }] of overrides) purposes[name] = { ...purposes[name], ...override };
  return { ...base, purposes };
}

/** Validates an override with the configuration's own purpose schema; errors are keyed by field. */
export function validateOverride(raw: unknown, isModel?: (name: string) => boolean): OverrideValidation {
  const parsed = overrideSchema.safeParse(raw ?? {});
  const errors: OverrideFieldErrors = {};
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const field = issue.path[0];
      if (issue.code === "unrecognized_keys") {
        for (const key of issue.keys) {
          (errors as Record<string, string>)[key] = `${key}: not a setting an override can change`;
        }
        continue;
      }
      if (typeof field !== "string" || !(OVERRIDE_FIELDS as readonly string[]).includes(field)) continue;
      const where = issue.path.length > 1 ? `[${String(issue.path[1])}]` : "";
      const message =
        issue.code === "invalid_union"
          ? "expected a model id or {model: id, key: SECRET_NAME}"
          : issue.message;
      errors[field as OverrideField] ??= `${field}${where}: ${message}`;
    }
    return { ok: false, errors };
  }
  if (isModel) {
    const override = parsed.data;
    const check = (field: OverrideField, names: readonly string[]) => {
      const unknown = names.find((name) => !isModel(name));
      if (unknown !== undefined && errors[field] === undefined) {
        errors[field] =
          `${field}: no model named "${unknown}" is registered; 'switchboard models' lists them`;
      }
    };
    if (override.model !== undefined) check("model", [refModel(override.model)]);
    check("models", (override.models ?? []).map(refModel));
    check("blocked_models", override.blocked_models ?? []);
    check("fallbacks", (override.fallbacks ?? []).map(refModel));
    if (Object.keys(errors).length > 0) return { ok: false, errors };
  }
  return { ok: true, override: parsed.data };
}

function parseStored(row: StoredPurposeOverride): PurposeOverride | undefined {
  try {
    const result = overrideSchema.safeParse(JSON.parse(row.settings));
    if (result.success) return result.data;
  } catch {
    // reported below
  }
  process.emitWarning(
    `The stored override of purpose "${row.purpose}" is not valid; it is ignored. Reset it in the admin UI.`,
    { code: "SWITCHBOARD_OVERRIDE_INVALID" },
  );
  return undefined;
}

export class PurposeOverrides {
  readonly #options: PurposeOverridesOptions;
  readonly #recheckMs: number;
  readonly #now: () => number;
  #overrides: ReadonlyMap<string, LoadedOverride> = new Map();
  #effective: HubConfig;
  /** When the overrides were last read; undefined: never. */
  #checkedAt: number | undefined;
  #loading: Promise<void> | undefined;
  /** Set by a notification: re-read before the next routing decision. */
  #stale = false;
  /** Notifications arrive: no need to re-read on a timer. */
  #watching = false;
  #unwatch: Promise<(() => Promise<void>) | undefined> | undefined;
  #closed = false;

  constructor(options: PurposeOverridesOptions) {
    this.#options = options;
    this.#recheckMs = options.recheckMs ?? 500;
    this.#now = options.now ?? Date.now;
    this.#effective = options.base;
  }

  /** The configuration routing uses: the YAML with the overrides last read applied. */
  get effectiveConfig(): HubConfig {
    return this.#effective;
  }

  /** The overrides as last read, by purpose. */
  get loaded(): ReadonlyMap<string, LoadedOverride> {
    return this.#overrides;
  }

  /**
   * Brings the overrides up to date when they may be stale (never read, notified, or older than
   * the recheck interval without notifications); otherwise resolves at once.
   */
  refresh(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#loading) return this.#loading;
    const checkedAt = this.#checkedAt;
    const fresh =
      checkedAt !== undefined &&
      !this.#stale &&
      (this.#watching || this.#now() - checkedAt < this.#recheckMs);
    if (fresh) return Promise.resolve();
    return this.#reload();
  }

  #reload(): Promise<void> {
    const loading = (async () => {
      this.#stale = false;
      const startedAt = this.#now();
      if (this.#options.storeMayHoldOverrides?.() === false) {
        this.#checkedAt = startedAt;
        return;
      }
      const store = await this.#options.store();
      const rows = await store.listPurposeOverrides();
      const overrides = new Map<string, LoadedOverride>();
      for (const row of rows) {
        const override = parseStored(row);
        if (override)
          overrides.set(row.purpose, { override, updatedAt: row.updatedAt, updatedBy: row.updatedBy });
      }
      this.#overrides = overrides;
      this.#effective = applyOverrides(this.#options.base, overrides);
      this.#checkedAt = startedAt;
      if (!this.#unwatch && store.watchPurposeOverrides) this.#watch(store);
    })();
    this.#loading = loading;
    void loading.then(
      () => {
        if (this.#loading === loading) this.#loading = undefined;
      },
      () => {
        if (this.#loading === loading) this.#loading = undefined;
      },
    );
    return loading;
  }

  #watch(store: PurposeOverrideStore): void {
    const onChange = () => {
      this.#stale = true;
      // Re-read now, so the change applies even before the next routing decision asks.
      void this.refresh().catch(() => {
        this.#stale = true;
      });
    };
    this.#unwatch = (store.watchPurposeOverrides?.(onChange) ?? Promise.resolve(undefined)).then(
      (unwatch) => {
        this.#watching = unwatch !== undefined;
        // A change made between the first read and the LISTEN would otherwise be missed.
        if (this.#watching) onChange();
        return unwatch;
      },
      (error: unknown) => {
        process.emitWarning(
          `Cannot listen for purpose override changes; re-reading them every ${this.#recheckMs} ms instead: ${String(error)}`,
        );
        return undefined;
      },
    );
  }

  validate(raw: unknown): OverrideValidation {
    return validateOverride(raw, this.#options.isModel);
  }

  /** The effective settings of one purpose (YAML with its override). */
  settings(purpose: string): PurposeSettings {
    return settingsOf(this.#effective.purposes[purpose]);
  }

  /**
   * Stores an override for a purpose (replacing any earlier one), audited; effective at once here
   * and, within a second, in every process sharing the database. Invalid values are refused with
   * INVALID_INPUT whose `details.fields` maps each field to its error.
   */
  async set(purpose: string, raw: unknown, actor: string): Promise<AuditEntry> {
    await this.#requirePurpose(purpose);
    const validation = this.validate(raw);
    if (!validation.ok) {
      throw new SwitchboardError(
        "INVALID_INPUT",
        `Override of purpose "${purpose}" is not valid: ${Object.values(validation.errors).join("; ")}.`,
        { purpose, fields: validation.errors },
      );
    }
    const override = Object.fromEntries(
      Object.entries(validation.override).filter(([, value]) => value !== undefined),
    ) as PurposeOverride;
    if (Object.keys(override).length === 0) return this.#write(purpose, undefined, actor);
    return this.#write(purpose, override, actor);
  }

  /** Removes a purpose's override: the YAML's settings apply again. Audited when there was one. */
  async reset(purpose: string, actor: string): Promise<AuditEntry | undefined> {
    await this.refresh();
    if (!this.#overrides.has(purpose)) return undefined;
    return this.#write(purpose, undefined, actor);
  }

  async #write(purpose: string, override: PurposeOverride | undefined, actor: string): Promise<AuditEntry> {
    await this.refresh();
    const before = this.settings(purpose);
    const next = new Map(this.#overrides);
    if (override) next.set(purpose, { override, updatedAt: new Date(this.#now()), updatedBy: actor });
    else next.delete(purpose);
    const after = settingsOf(applyOverrides(this.#options.base, next).purposes[purpose]);
    const entry = this.#options.audit.entry({
      actor,
      action: override ? "purpose.override" : "purpose.reset",
      targetType: "purpose",
      target: purpose,
      before,
      after,
    });
    const store = await this.#options.store();
    await store.writePurposeOverride({
      purpose,
      settings: override ? JSON.stringify(override) : undefined,
      at: entry.createdAt,
      actor,
      audit: toStoredAuditEntry(entry),
    });
    await this.#reload();
    return entry;
  }

  async #requirePurpose(purpose: string): Promise<void> {
    const known = await this.#options.purposes();
    if (!known.includes(purpose)) {
      throw new SwitchboardError(
        "NOT_FOUND",
        `No purpose named "${purpose}": only registered or declared purposes can be overridden ('switchboard purposes' lists them).`,
        { purpose },
      );
    }
  }

  /** Stops listening for changes. */
  async close(): Promise<void> {
    this.#closed = true;
    const unwatch = await this.#unwatch?.catch(() => undefined);
    await unwatch?.();
  }
}
