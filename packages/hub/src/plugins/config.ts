/**
 * The configuration's own behaviour, registered as ordinary plugins: extra provider endpoints,
 * the allow/block lists (the first `filterModels` hook, so later hooks see its output), the
 * purposes declared in config, and the secrets the config names.
 */
import { anthropicCompatiblePlugin, openaiCompatiblePlugin } from "@switchboard/core";
import type { HubConfig } from "../config.ts";
import type { SwitchboardPlugin } from "../hooks.ts";
import { configSecretNames } from "../keys.ts";
import { allowlistFor, isAllowed } from "../routing.ts";
import type { Purpose } from "../types.ts";

/** Registers the models of every `providers:` entry (OpenAI-compatible or Anthropic endpoints). */
export function configProvidersPlugin(config: HubConfig): SwitchboardPlugin {
  return {
    name: "config-providers",
    async registerModels(args) {
      for (const [name, provider] of Object.entries(config.providers)) {
        const endpoint = {
          name,
          baseUrl: provider.base_url,
          ...(provider.headers ? { headers: provider.headers } : {}),
          // A provider with a configured key needs one; its alias is the provider's name.
          ...(provider.key ? { needsKey: name } : {}),
          ...(provider.max_retries !== undefined ? { http: { maxRetries: provider.max_retries } } : {}),
          ...(provider.timeout_ms !== undefined ? { timeoutMs: provider.timeout_ms } : {}),
          ...(provider.first_chunk_timeout_ms !== undefined
            ? { firstChunkTimeoutMs: provider.first_chunk_timeout_ms }
            : {}),
          models: provider.models.map((entry) => {
            if (typeof entry === "string") return { id: entry };
            const capabilities = {
              ...(entry.tools !== undefined ? { tools: entry.tools } : {}),
              ...(entry.schema !== undefined ? { schema: entry.schema } : {}),
              ...(entry.streaming !== undefined ? { streaming: entry.streaming } : {}),
              ...(entry.attachment_types ? { attachmentTypes: entry.attachment_types } : {}),
            };
            return {
              id: entry.id,
              ...(entry.name ? { name: entry.name } : {}),
              ...(entry.aliases ? { aliases: entry.aliases } : {}),
              capabilities,
            };
          }),
        };
        const plugin =
          provider.type === "anthropic"
            ? anthropicCompatiblePlugin(endpoint)
            : openaiCompatiblePlugin(endpoint);
        await plugin.registerModels?.(args);
      }
    },
  };
}

export function configPolicyPlugin(): SwitchboardPlugin {
  return {
    name: "config-policy",
    filterModels({ models, purpose, config }) {
      const list = allowlistFor(config, purpose);
      if (list.allowed === undefined && list.blocked.size === 0) return undefined;
      return models.filter((model) => isAllowed(list, model.id, model.aliases));
    },
    registerPurposes({ config }) {
      return Object.entries(config.purposes).map(
        ([name, purpose]): Purpose =>
          purpose.description === undefined ? { name } : { name, description: purpose.description },
      );
    },
    registerSecrets({ config }) {
      return configSecretNames(config).map((name) => ({
        name,
        description: `Custom API key named in the configuration`,
      }));
    },
  };
}
