/** Loading the plugin modules a configuration lists under `plugins:`. */
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { describeError, SwitchboardError } from "@switchboard/core";
import type { SwitchboardPlugin } from "./hooks.ts";

/**
 * Loads the config's `plugins:` modules, in order. Each module's default export is a plugin, a
 * list of plugins, or a function (sync or async) returning either. Relative paths are found from
 * `baseDir`; anything else is a package name.
 */
export async function loadConfiguredPlugins(
  specifiers: readonly string[],
  baseDir: string,
): Promise<SwitchboardPlugin[]> {
  const plugins: SwitchboardPlugin[] = [];
  for (const [index, specifier] of specifiers.entries()) {
    const local = specifier.startsWith(".") || isAbsolute(specifier);
    const target = local ? pathToFileURL(resolve(baseDir, specifier)).href : specifier;
    let exported: unknown;
    try {
      exported = ((await import(target)) as { default?: unknown }).default;
      if (typeof exported === "function") exported = await (exported as () => unknown)();
    } catch (error) {
      throw new SwitchboardError(
        "INVALID_CONFIG",
        `plugins[${index}]: cannot load ${specifier}: ${describeError(error)}`,
        { plugin: specifier },
      );
    }
    for (const plugin of Array.isArray(exported) ? exported : [exported]) {
      if (!plugin || typeof plugin !== "object" || typeof (plugin as { name?: unknown }).name !== "string") {
        throw new SwitchboardError(
          "INVALID_CONFIG",
          `plugins[${index}]: ${specifier} must default-export a plugin object with a name (or a function returning one).`,
          { plugin: specifier },
        );
      }
      plugins.push(plugin as SwitchboardPlugin);
    }
  }
  return plugins;
}
