/**
 * Start-up stays cheap because each command loads only what it uses: the modules a real
 * `switchboard` process loads, recorded by a preload hook. (The time and memory this saves are
 * measured by `npm run bench:startup`.)
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const BIN = new URL("../bin/switchboard.js", import.meta.url).pathname;
const RECORDER = new URL("./fixtures/record-modules.mjs", import.meta.url).pathname;

/** Runs a command; returns the modules it loaded, as `main|worker <url>` lines. */
function modulesLoadedBy(args: readonly string[]): string[] {
  const scratch = mkdtempSync(join(tmpdir(), "switchboard-cli-"));
  const record = join(scratch, "modules.txt");
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SWITCHBOARD_USER_PATH: join(scratch, "user"),
    RECORD_MODULES_TO: record,
  };
  delete env.SWITCHBOARD_CONFIG;
  const result = spawnSync(process.execPath, ["--import", RECORDER, BIN, ...args], { env, encoding: "utf8" });
  expect(result.stderr).toBe("");
  expect(result.status).toBe(0);
  return readFileSync(record, "utf8").trim().split("\n");
}

const matching = (loaded: readonly string[], pattern: RegExp) => loaded.filter((line) => pattern.test(line));

const HUB_OR_STORE = /\/packages\/(hub|store)\/src\//;
const PROVIDERS = /\/packages\/core\/src\/providers\//;
const DRIVERS = /\/node_modules\/(pg|pg-[a-z-]+|better-sqlite3)\//;
const ZOD_OR_YAML = /\/node_modules\/(zod|yaml)\//;

describe("modules each command loads", () => {
  it("keys path: the core and the CLI only; no hub, store, provider, driver or schema library", () => {
    const loaded = modulesLoadedBy(["keys", "path"]);
    expect(matching(loaded, /\/packages\/cli\/src\/commands\/keys\.ts$/)).toHaveLength(1);
    expect(matching(loaded, /\/packages\/cli\/src\/commands\/(prompt|models|accounting)\.ts$/)).toEqual([]);
    expect(matching(loaded, HUB_OR_STORE)).toEqual([]);
    expect(matching(loaded, PROVIDERS)).toEqual([]);
    expect(matching(loaded, DRIVERS)).toEqual([]);
    expect(matching(loaded, ZOD_OR_YAML)).toEqual([]);
  });

  it("models: the hub, but no store (beyond its driver-free exit writer) and no database driver", () => {
    const loaded = modulesLoadedBy(["models"]);
    expect(matching(loaded, /\/packages\/hub\/src\/hub\.ts$/)).toHaveLength(1);
    expect(matching(loaded, /\/packages\/store\/src\/(?!exit-writer\.ts$)/)).toEqual([]);
    expect(matching(loaded, DRIVERS)).toEqual([]);
  });

  it("prompt -m echo: SQLite for the usage row, no PostgreSQL driver, no thread", () => {
    const loaded = modulesLoadedBy(["prompt", "-m", "echo", "hi"]);
    expect(matching(loaded, /\/node_modules\/better-sqlite3\//).length).toBeGreaterThan(0);
    expect(matching(loaded, /\/node_modules\/pg(-[a-z-]+)?\/|\/packages\/store\/src\/postgres\.ts$/)).toEqual(
      [],
    );
    expect(matching(loaded, /^worker /)).toEqual([]);
  });
});
