/**
 * Purpose routing as pure functions of the configuration (the allowlists of decision 3 and the
 * listing order of decision 6), so each decision reads in one place and is tested without a hub.
 * Configuration entries may name a model by its id or by any of its aliases.
 */
import { type HubConfig, refModel } from "./config.ts";

export interface Allowlist {
  /** Allowed ids; `undefined` means every registered model. */
  allowed: ReadonlySet<string> | undefined;
  blocked: ReadonlySet<string>;
}

/**
 * Decision 3: the purpose's `models` list replaces the global list (which always includes
 * `default_model`); the purpose's own `model` is always added; then both block lists remove.
 */
export function allowlistFor(config: HubConfig, purpose: string | undefined): Allowlist {
  const purposeConfig = purpose ? config.purposes[purpose] : undefined;
  let allowed: Set<string> | undefined;
  if (purposeConfig?.models) {
    allowed = new Set(purposeConfig.models.map(refModel));
  } else if (config.models) {
    allowed = new Set(config.models);
    if (config.default_model) allowed.add(refModel(config.default_model));
  }
  if (allowed && purposeConfig?.model) allowed.add(refModel(purposeConfig.model));
  const blocked = new Set([...(purposeConfig?.blocked_models ?? []), ...(config.blocked_models ?? [])]);
  return { allowed, blocked };
}

export function isAllowed(list: Allowlist, modelId: string, aliases: readonly string[] = []): boolean {
  const names = [modelId, ...aliases];
  if (names.some((name) => list.blocked.has(name))) return false;
  return list.allowed === undefined || names.some((name) => list.allowed?.has(name));
}

/** The purpose's default model (as configured: an id or an alias), else the global default. */
export function defaultModelFor(config: HubConfig, purpose: string | undefined): string | undefined {
  const purposeModel = purpose ? config.purposes[purpose]?.model : undefined;
  if (purposeModel) return refModel(purposeModel);
  return config.default_model ? refModel(config.default_model) : undefined;
}

/**
 * Decision 6: the default first, then the purpose's list in config order, then the global list in
 * config order, then the rest in registration order. A configured name matches a model's id or alias.
 */
export function sortModels<T extends { id: string; aliases: readonly string[] }>(
  models: readonly T[],
  config: HubConfig,
  purpose: string | undefined,
): T[] {
  const preferred: string[] = [];
  const defaultName = defaultModelFor(config, purpose);
  if (defaultName) preferred.push(defaultName);
  const purposeModels = purpose ? config.purposes[purpose]?.models : undefined;
  for (const ref of purposeModels ?? []) preferred.push(refModel(ref));
  for (const name of config.models ?? []) preferred.push(name);

  const byName = new Map<string, T>();
  // Ids last, so an id wins over another model's alias.
  for (const model of models) for (const alias of model.aliases) byName.set(alias, model);
  for (const model of models) byName.set(model.id, model);
  const sorted: T[] = [];
  const seen = new Set<string>();
  for (const name of preferred) {
    const model = byName.get(name);
    if (model && !seen.has(model.id)) {
      sorted.push(model);
      seen.add(model.id);
    }
  }
  for (const model of models) if (!seen.has(model.id)) sorted.push(model);
  return sorted;
}
