import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KeyStore, SwitchboardError } from "@switchboard/core";
import { Hub, type HubConfigInput, type SwitchboardPlugin } from "@switchboard/hub";
import Database from "better-sqlite3";
import { dataPlugins } from "../src/index.ts";

export function temporaryDirectory(): string {
  return mkdtempSync(join(tmpdir(), "switchboard-data-"));
}

/** A new database file holding what `sql` creates. */
export function databaseWith(sql: string, fill?: (db: Database.Database) => void): string {
  const path = join(temporaryDirectory(), "data.db");
  const db = new Database(path);
  db.exec(sql);
  fill?.(db);
  db.close();
  return path;
}

export function query<T = Record<string, unknown>>(path: string, sql: string, ...params: unknown[]): T[] {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

/** A hub with an isolated keys file, an in-memory store and the data tools' purposes. */
export async function testHub(
  config: HubConfigInput = { default_model: "echo" },
  plugins: SwitchboardPlugin[] = [],
): Promise<Hub> {
  return Hub.create({
    config: { storage: "sqlite::memory:", ...config },
    keys: new KeyStore(join(temporaryDirectory(), "keys.json")),
    env: {},
    plugins: [...dataPlugins(), ...plugins],
  });
}

/** Records the actor and purpose of every prompt the hub runs. */
export function promptRecorder(): SwitchboardPlugin & {
  seen: { actor: string | undefined; purpose: string | undefined }[];
} {
  const seen: { actor: string | undefined; purpose: string | undefined }[] = [];
  return {
    name: "recorder",
    seen,
    promptContext: ({ actor, purpose }) => {
      seen.push({ actor: actor?.id, purpose });
      return undefined;
    },
  };
}

/**
 * `scripted`: answers `out:<prompt>` after `delayMs`, fails rows whose prompt contains FAIL, and
 * waits for `gate` when one is given (so a test can hold rows in flight).
 */
export function scriptedModel(
  options: { delayMs?: number; gate?: () => Promise<void> } = {},
): SwitchboardPlugin & {
  calls: string[];
} {
  const calls: string[] = [];
  return {
    name: "scripted-model",
    calls,
    registerModels({ register }) {
      register({
        id: "scripted",
        provider: "test",
        async *execute(request) {
          calls.push(request.prompt);
          if (options.gate) await options.gate();
          if (options.delayMs) await new Promise((resolve) => setTimeout(resolve, options.delayMs));
          if (request.prompt.includes("FAIL")) {
            throw new SwitchboardError("PROVIDER_ERROR", `The upstream refused: ${request.prompt}`);
          }
          yield { type: "text", text: `out:${request.prompt}` };
          yield { type: "usage", usage: { input: 1, output: 1 } };
          yield { type: "finish", reason: "stop" };
        },
      });
    },
  };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `check` holds (the condition, not a duration, is what tests wait for). */
export async function waitFor(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`Timed out waiting for ${what}`);
    await sleep(10);
  }
}
