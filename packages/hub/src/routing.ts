/**
 * Purpose routing as pure functions of the configuration (DESIGN §2.2, decisions 3, 6 and 7), so
 * each decision reads in one place and is tested without a hub.
 */
import { type HubConfig, type ModelRef, refKey, refModel } from "./config.ts";

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

/** The purpose's default model id, else the global default (decision 6's first entry). */
export function defaultModelFor(config: HubConfig, purpose: string | undefined): string | undefined {
  const purposeModel = purpose ? config.purposes[purpose]?.model : undefined;
  if (purposeModel) return refModel(purposeModel);
  return config.default_model ? refModel(config.default_model) : undefined;
}

/**
 * Decision 6: the default first, then the purpose's list in config order, then the global list in
 * config order, then the rest in registration order.
 */
export function sortModels<T extends { id: string }>(
  models: readonly T[],
  config: HubConfig,
  purpose: string | undefined,
): T[] {
  const preferred: string[] = [];
  const defaultId = defaultModelFor(config, purpose);
  if (defaultId) preferred.push(defaultId);
  const purposeModels = purpose ? config.purposes[purpose]?.models : undefined;
  for (const ref of purposeModels ?? []) preferred.push(refModel(ref));
  for (const id of config.models ?? []) preferred.push(id);

  const byId = new Map(models.map((model) => [model.id, model]));
  const sorted: T[] = [];
  const seen = new Set<string>();
  for (const id of preferred) {
    const model = byId.get(id);
    if (model && !seen.has(id)) {
      sorted.push(model);
      seen.add(id);
    }
  }
  for (const model of models) if (!seen.has(model.id)) sorted.push(model);
  return sorted;
}

/**
 * Decision 7, the configured part: the secret named by the purpose's `models` entry for this model,
 * then by the purpose's `model` ref, then by `default_model` — each only when it names this model.
 */
export function configuredKeySecrets(
  config: HubConfig,
  modelId: string,
  purpose: string | undefined,
): string[] {
  const names: string[] = [];
  const consider = (ref: ModelRef | undefined) => {
    const key = refKey(ref);
    if (ref && key && refModel(ref) === modelId) names.push(key);
  };
  const purposeConfig = purpose ? config.purposes[purpose] : undefined;
  for (const ref of purposeConfig?.models ?? []) consider(ref);
  consider(purposeConfig?.model);
  consider(config.default_model);
  return names;
}

/** `echo-needs-key` → `ECHO_NEEDS_KEY_API_KEY`: a name every shell can set as an env var. */
export function providerSecretName(keyAlias: string): string {
  return `${keyAlias.toUpperCase().replace(/[^A-Z0-9]/g, "_")}_API_KEY`;
}

/** Every secret name the configuration mentions (custom keys of refs and providers). */
export function configSecretNames(config: HubConfig): string[] {
  const names = new Set<string>();
  const add = (ref: ModelRef | undefined) => {
    const key = refKey(ref);
    if (key) names.add(key);
  };
  add(config.default_model);
  for (const purpose of Object.values(config.purposes)) {
    add(purpose.model);
    for (const ref of purpose.models ?? []) add(ref);
    for (const ref of purpose.fallbacks ?? []) add(ref);
  }
  for (const provider of Object.values(config.providers)) if (provider.key) names.add(provider.key);
  return [...names];
}
