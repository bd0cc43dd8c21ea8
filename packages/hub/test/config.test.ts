import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { isSwitchboardError } from "@switchboard/core";
import { describe, expect, it } from "vitest";
import { findConfigPath, loadConfigFile, parseConfig } from "../src/index.ts";
import { temporaryDirectory } from "./helpers.ts";

function configError(raw: unknown): Error {
  try {
    parseConfig(raw);
  } catch (error) {
    expect(isSwitchboardError(error, "INVALID_CONFIG")).toBe(true);
    return error as Error;
  }
  throw new Error("expected the configuration to be rejected");
}

describe("configuration", () => {
  it("names the path of a typo inside a purpose", () => {
    expect(configError({ purposes: { x: { modle: "echo" } } }).message).toContain(
      "purposes.x.modle: unknown setting",
    );
  });

  it("rejects an unknown top-level key", () => {
    expect(configError({ default_modle: "echo" }).message).toContain("default_modle: unknown setting");
  });

  it("names the index of a bad model reference and says what is expected", () => {
    const message = configError({ purposes: { enrichments: { models: ["echo", { modle: "x" }] } } }).message;
    expect(message).toContain("purposes.enrichments.models[1]");
    expect(message).toContain("{model: id, key: SECRET_NAME}");
  });

  it("checks provider entries", () => {
    expect(
      configError({ providers: { local: { type: "openai", base_url: "not a url", models: ["m"] } } }).message,
    ).toContain("providers.local.base_url");
    expect(
      configError({ providers: { local: { type: "grpc", base_url: "http://x", models: ["m"] } } }).message,
    ).toContain("providers.local.type");
  });

  it("applies defaults", () => {
    const config = parseConfig({ default_model: "echo" });
    expect(config.require_keys).toBe(true);
    expect(config.purposes).toEqual({});
  });

  it("loads YAML, naming the file in errors", () => {
    const dir = temporaryDirectory();
    const good = join(dir, "good.yaml");
    writeFileSync(
      good,
      "default_model: echo\npurposes:\n  sql:\n    model: {model: echo-needs-key, key: SQL_KEY}\n",
    );
    expect(loadConfigFile(good).purposes.sql?.model).toEqual({ model: "echo-needs-key", key: "SQL_KEY" });
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "purposes:\n  x:\n    modle: echo\n");
    expect(() => loadConfigFile(bad)).toThrow(new RegExp(`${bad}.*purposes\\.x\\.modle`));
    const broken = join(dir, "broken.yaml");
    writeFileSync(broken, "purposes: [\n");
    expect(() => loadConfigFile(broken)).toThrow(/not valid YAML/);
  });

  it("finds --config, then SWITCHBOARD_CONFIG, then ./switchboard.yaml", () => {
    const dir = temporaryDirectory();
    expect(findConfigPath({ cwd: dir, env: {} })).toBeUndefined();
    writeFileSync(join(dir, "switchboard.yaml"), "{}");
    expect(findConfigPath({ cwd: dir, env: {} })).toBe(join(dir, "switchboard.yaml"));
    expect(findConfigPath({ cwd: dir, env: { SWITCHBOARD_CONFIG: "other.yaml" } })).toBe(
      join(dir, "other.yaml"),
    );
    expect(
      findConfigPath({ cwd: dir, env: { SWITCHBOARD_CONFIG: "other.yaml" }, configPath: "x.yaml" }),
    ).toBe(join(dir, "x.yaml"));
  });
});
