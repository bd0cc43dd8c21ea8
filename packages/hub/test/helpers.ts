import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KeyStore } from "@switchboard/core";
import { openStore } from "@switchboard/store";
import { Hub, type HubConfigInput, type HubOptions } from "../src/index.ts";

export function temporaryDirectory(): string {
  return mkdtempSync(join(tmpdir(), "switchboard-hub-"));
}

/** A hub with an isolated environment, keys file and in-memory store. */
export async function testHub(
  config: HubConfigInput,
  options: Omit<HubOptions, "config"> & { env?: Record<string, string> } = {},
): Promise<Hub> {
  return Hub.create({
    keys: new KeyStore(join(temporaryDirectory(), "keys.json")),
    store: await openStore("sqlite::memory:"),
    ...options,
    config,
    env: options.env ?? {},
  });
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
