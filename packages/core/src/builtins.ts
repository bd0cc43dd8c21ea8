/**
 * The providers Switchboard ships, registered through the same plugin hook a third party uses.
 * A provider's module (its wire format, its option schemas) is imported when its plugin registers
 * models, not when the core is imported: code that needs only the core's errors, keys or
 * scrubber never loads a provider.
 */
import type { CorePlugin } from "./plugin.ts";
import type { AnthropicPluginOptions } from "./providers/anthropic.ts";
import type { CompatibleEndpointConfig } from "./providers/http.ts";
import type { OpenAIPluginOptions } from "./providers/openai.ts";

function lazyPlugin(name: string, load: () => Promise<CorePlugin>): CorePlugin {
  return {
    name,
    async registerModels(args) {
      await (await load()).registerModels?.(args);
    },
  };
}

/** The deterministic test models `echo` and `echo-needs-key`. */
export function echoPlugin(): CorePlugin {
  return lazyPlugin("echo", async () => (await import("./providers/echo.ts")).echoPlugin());
}

/** `markov`, a sync model run in the worker pool. */
export function markovPlugin(): CorePlugin {
  return lazyPlugin("markov", async () => (await import("./providers/markov.ts")).markovPlugin());
}

/** The OpenAI models. */
export function openaiPlugin(options: OpenAIPluginOptions = {}): CorePlugin {
  return lazyPlugin("openai", async () => (await import("./providers/openai.ts")).openaiPlugin(options));
}

/** The Anthropic models. */
export function anthropicPlugin(options: AnthropicPluginOptions = {}): CorePlugin {
  return lazyPlugin("anthropic", async () =>
    (await import("./providers/anthropic.ts")).anthropicPlugin(options),
  );
}

/** Models served by an extra OpenAI-compatible endpoint (Ollama, vLLM, OpenRouter…). */
export function openaiCompatiblePlugin(endpoint: CompatibleEndpointConfig): CorePlugin {
  return lazyPlugin(endpoint.name, async () =>
    (await import("./providers/openai.ts")).openaiCompatiblePlugin(endpoint),
  );
}

/** Models served by an extra Anthropic-compatible endpoint. */
export function anthropicCompatiblePlugin(endpoint: CompatibleEndpointConfig): CorePlugin {
  return lazyPlugin(endpoint.name, async () =>
    (await import("./providers/anthropic.ts")).anthropicCompatiblePlugin(endpoint),
  );
}

/** Every built-in provider, in registration order. */
export function builtinPlugins(): CorePlugin[] {
  return [echoPlugin(), markovPlugin(), openaiPlugin(), anthropicPlugin()];
}
