import type { CorePlugin } from "./plugin.ts";
import { anthropicPlugin } from "./providers/anthropic.ts";
import { echoPlugin } from "./providers/echo.ts";
import { markovPlugin } from "./providers/markov.ts";
import { openaiPlugin } from "./providers/openai.ts";

/** The providers Switchboard ships, registered through the same plugin hook a third party uses. */
export function builtinPlugins(): CorePlugin[] {
  return [echoPlugin(), markovPlugin(), openaiPlugin(), anthropicPlugin()];
}
