import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KeyStore } from "@switchboard/core";
import { Hub, type HubConfigInput, type SwitchboardPlugin } from "@switchboard/hub";
import { openStore, type Store } from "@switchboard/store";

// The AI SDK logs each warning to the console; the tests read them from the results instead.
(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

/** A hub with an isolated environment, keys file and in-memory store (returned for reading usage rows). */
export async function testHub(
  config: HubConfigInput,
  plugins: readonly SwitchboardPlugin[] = [],
): Promise<{ hub: Hub; store: Store }> {
  const store = await openStore("sqlite::memory:");
  const hub = await Hub.create({
    keys: new KeyStore(join(mkdtempSync(join(tmpdir(), "switchboard-ai-sdk-")), "keys.json")),
    store,
    config,
    env: {},
    plugins,
  });
  return { hub, store };
}
