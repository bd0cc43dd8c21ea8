/**
 * Purposes as an operator needs to see them: for each routing value, where it comes from — the
 * plugin that registered the purpose, the YAML, a database override, or a global setting — plus
 * the models allowed and those hidden for want of a key.
 */
import { type HubConfig, type ModelRef, type PurposeConfig, refModel } from "./config.ts";
import type { KeySource } from "./keys.ts";
import type { LoadedOverride, PurposeOverride } from "./overrides.ts";
import type { Purpose } from "./types.ts";

/** Where a value comes from. `global`: the top-level setting; `hook`: a plugin's `defaultModel` hook. */
export type ValueSource = "override" | "yaml" | "plugin" | "hook" | "global" | "none";

export interface SourcedValue<T> {
  value: T;
  source: ValueSource;
}

export interface PurposeModel {
  id: string;
  /** Listed for the purpose (a key resolves, or `require_keys` is off). */
  listed: boolean;
  key: KeySource;
}

export interface PurposeDetail {
  name: string;
  description: SourcedValue<string | undefined>;
  /** The plugin that registered the purpose; `config-policy` when only the YAML declares it. */
  registeredBy: string;
  declaredInYaml: boolean;
  /** The model used when the caller names none. */
  model: SourcedValue<string | undefined>;
  /** The configured allowlist; undefined: every registered model. A purpose list replaces the global list. */
  allowlist: SourcedValue<string[] | undefined>;
  blocked: SourcedValue<string[]>;
  globalBlocked: string[];
  fallbacks: SourcedValue<string[]>;
  /** The allowed models in listing order (decision 6), each with where its key comes from. */
  models: PurposeModel[];
  /** Allowed models that listings hide because no key resolves (`require_keys`), with the reason. */
  hidden: { id: string; reason: string }[];
  /** The purpose's settings in the YAML, as written there (model references may name key secrets). */
  yaml: Pick<PurposeConfig, "model" | "models" | "blocked_models" | "fallbacks">;
  /** The database override, when there is one. */
  override: { settings: PurposeOverride; updatedAt: Date; updatedBy: string } | undefined;
}

export interface PurposeDetailSources {
  purposes: readonly (Purpose & { registeredBy: string })[];
  base: HubConfig;
  config: HubConfig;
  overrides: ReadonlyMap<string, LoadedOverride>;
  hookDefault: (purpose: string) => Promise<string | undefined>;
  allowed: (purpose: string) => Promise<string[]>;
  listed: (purpose: string) => Promise<string[]>;
  canonicalId: (name: string | undefined) => string | undefined;
  keySource: (model: string, purpose: string) => Promise<KeySource>;
}

const CONFIG_PLUGIN = "config-policy";

function refs(list: readonly ModelRef[] | undefined): string[] | undefined {
  return list?.map(refModel);
}

function sourceOf(
  override: PurposeOverride | undefined,
  yaml: PurposeConfig | undefined,
  field: keyof PurposeOverride,
) {
  if (override?.[field] !== undefined) return "override" as const;
  if (yaml?.[field] !== undefined) return "yaml" as const;
  return undefined;
}

function missingReason(key: KeySource): string {
  if (key.kind !== "missing") return "no key";
  const places = key.tried.map((name) => `secret ${name}`);
  places.push(`the keys file (alias ${key.alias})`);
  if (key.envVar) places.push(`$${key.envVar}`);
  return `no key in ${places.join(", ")}`;
}

export async function describePurposes(sources: PurposeDetailSources): Promise<PurposeDetail[]> {
  const { base, config } = sources;
  return Promise.all(
    sources.purposes.map(async (purpose): Promise<PurposeDetail> => {
      const yaml = base.purposes[purpose.name];
      const loaded = sources.overrides.get(purpose.name);
      const override = loaded?.override;
      const effective = config.purposes[purpose.name];

      let model: SourcedValue<string | undefined>;
      const hooked = await sources.hookDefault(purpose.name);
      if (hooked) model = { value: sources.canonicalId(hooked), source: "hook" };
      else if (effective?.model !== undefined) {
        model = {
          value: sources.canonicalId(refModel(effective.model)),
          source: sourceOf(override, yaml, "model") ?? "yaml",
        };
      } else if (config.default_model !== undefined) {
        model = { value: sources.canonicalId(refModel(config.default_model)), source: "global" };
      } else model = { value: undefined, source: "none" };

      let allowlist: SourcedValue<string[] | undefined>;
      if (effective?.models !== undefined) {
        allowlist = { value: refs(effective.models), source: sourceOf(override, yaml, "models") ?? "yaml" };
      } else if (config.models !== undefined) allowlist = { value: [...config.models], source: "global" };
      else allowlist = { value: undefined, source: "none" };

      const allowed = await sources.allowed(purpose.name);
      const listed = new Set(await sources.listed(purpose.name));
      const ordered = [
        ...[...listed].filter((id) => allowed.includes(id)),
        ...allowed.filter((id) => !listed.has(id)),
      ];
      const models = await Promise.all(
        ordered.map(
          async (id): Promise<PurposeModel> => ({
            id,
            listed: listed.has(id),
            key: await sources.keySource(id, purpose.name),
          }),
        ),
      );
      const hidden = models
        .filter((entry) => !entry.listed)
        .map((entry) => ({ id: entry.id, reason: `hidden by require_keys: ${missingReason(entry.key)}` }));

      const yamlSettings: PurposeDetail["yaml"] = {};
      if (yaml?.model !== undefined) yamlSettings.model = yaml.model;
      if (yaml?.models !== undefined) yamlSettings.models = yaml.models;
      if (yaml?.blocked_models !== undefined) yamlSettings.blocked_models = yaml.blocked_models;
      if (yaml?.fallbacks !== undefined) yamlSettings.fallbacks = yaml.fallbacks;

      return {
        name: purpose.name,
        description: {
          value: purpose.description,
          source:
            purpose.description === undefined
              ? "none"
              : purpose.registeredBy === CONFIG_PLUGIN
                ? "yaml"
                : "plugin",
        },
        registeredBy: purpose.registeredBy,
        declaredInYaml: yaml !== undefined,
        model,
        allowlist,
        blocked: {
          value: effective?.blocked_models ?? [],
          source: sourceOf(override, yaml, "blocked_models") ?? "none",
        },
        globalBlocked: config.blocked_models ?? [],
        fallbacks: {
          value: refs(effective?.fallbacks) ?? [],
          source: sourceOf(override, yaml, "fallbacks") ?? "none",
        },
        models,
        hidden,
        yaml: yamlSettings,
        override: loaded
          ? { settings: loaded.override, updatedAt: loaded.updatedAt, updatedBy: loaded.updatedBy }
          : undefined,
      };
    }),
  );
}
