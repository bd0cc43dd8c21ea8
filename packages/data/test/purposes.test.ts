import { join } from "node:path";
import { KeyStore } from "@switchboard/core";
import { Hub } from "@switchboard/hub";
import { describe, expect, it } from "vitest";
import { temporaryDirectory } from "./helpers.ts";

describe("the data tools' purposes", () => {
  it("are registered by the package's default export, loadable from plugins: in the configuration", async () => {
    const hub = await Hub.create({
      config: { default_model: "echo", storage: "sqlite::memory:", plugins: ["@switchboard/data"] },
      keys: new KeyStore(join(temporaryDirectory(), "keys.json")),
      env: {},
    });
    const purposes = await hub.purposes();
    expect(purposes.map((purpose) => purpose.name)).toEqual(["enrichments", "extract", "sql-assistant"]);
    expect(purposes.every((purpose) => (purpose.description ?? "").length > 20)).toBe(true);
    await hub.close();
  });
});
