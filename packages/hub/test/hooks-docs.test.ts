import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { HOOK_NAMES } from "../src/index.ts";

describe("hook documentation", () => {
  const docs = readFileSync(new URL("../../../docs/plugins.md", import.meta.url), "utf8");
  const hooksSection = docs.slice(
    docs.indexOf("\n## Hooks\n"),
    docs.indexOf("\n## ", docs.indexOf("\n## Hooks\n") + 1),
  );

  it.each(HOOK_NAMES)("documents %s with a heading and an example", (hook) => {
    const section = hooksSection.split(/^### /m).find((part) => part.startsWith(`\`${hook}\``));
    expect(section, `docs/plugins.md needs a "### \`${hook}\`" section under "## Hooks"`).toBeDefined();
    expect(section).toContain("```ts");
  });

  it("documents no hook that does not exist, in the order they are declared", () => {
    const documented = [...hooksSection.matchAll(/^### `(\w+)`/gm)].map((match) => match[1]);
    expect(documented).toEqual([...HOOK_NAMES]);
  });
});
