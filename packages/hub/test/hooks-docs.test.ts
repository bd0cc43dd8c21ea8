import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { HOOK_NAMES } from "../src/index.ts";

describe("hook documentation", () => {
  const docs = readFileSync(new URL("../../../docs/plugins.md", import.meta.url), "utf8");
  it.each(HOOK_NAMES)("documents %s with a heading and an example", (hook) => {
    const section = docs.split(/^### /m).find((part) => part.startsWith(`\`${hook}\``));
    expect(section, `docs/plugins.md needs a "### \`${hook}\`" section`).toBeDefined();
    expect(section).toContain("```ts");
  });
});
