import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KeyStore } from "@switchboard/core";
import { Hub, type HubConfigInput, type Tokens } from "@switchboard/hub";
import type { Store } from "@switchboard/store";
import { createApp, type SwitchboardApp } from "../src/app.ts";
import { type RunningServer, startServer } from "../src/serve.ts";

export function temporaryDirectory(): string {
  return mkdtempSync(join(tmpdir(), "switchboard-server-"));
}

export const EMBEDDED: HubConfigInput = { default_model: "echo", require_keys: false };

export interface TestGateway {
  hub: Hub;
  app: SwitchboardApp;
  tokens: Tokens;
  /** Creates a token and returns its value. */
  token(name: string, options?: { actor?: string; purposes?: string[]; expiresAt?: Date }): Promise<string>;
  close(): Promise<void>;
}

export interface TestGatewayOptions {
  /** A store to share (e.g. two gateways on one PostgreSQL schema); default: a fresh SQLite file. */
  store?: Store;
}

/** A hub with an isolated environment (a fresh SQLite file unless given a store), and the app in front of it. */
export async function testGateway(
  config: HubConfigInput = EMBEDDED,
  options: TestGatewayOptions = {},
): Promise<TestGateway> {
  const dir = temporaryDirectory();
  const hub = await Hub.create({
    config: { storage: `sqlite:${join(dir, "switchboard.db")}`, ...config },
    keys: new KeyStore(join(dir, "keys.json")),
    env: {},
    ...(options.store ? { store: options.store } : {}),
  });
  const tokens = hub.tokens;
  const app = createApp({ hub });
  return {
    hub,
    app,
    tokens,
    async token(name, options = {}) {
      const { value } = await tokens.create({
        name,
        actor: options.actor ?? name,
        purposes: options.purposes ?? [],
        expiresAt: options.expiresAt,
      });
      return value;
    },
    close: () => hub.close(),
  };
}

export interface TestServer extends TestGateway {
  server: RunningServer;
  url: string;
}

/** The same, listening on a free loopback port. */
export async function startTestServer(
  config: HubConfigInput = EMBEDDED,
  options: TestGatewayOptions = {},
): Promise<TestServer> {
  const gateway = await testGateway(config, options);
  const server = await startServer({ hub: gateway.hub, port: 0 });
  return {
    ...gateway,
    server,
    url: server.url,
    async close() {
      await server.close({ drainMs: 2_000 });
      await gateway.close();
    },
  };
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}`, "content-type": "application/json" };
}

/** Splits server-sent events into `{event, data}` records. */
export function parseSse(text: string): { event: string | undefined; data: string }[] {
  return text
    .split("\n\n")
    .filter((block) => block.trim() !== "")
    .map((block) => {
      const lines = block.split("\n");
      const event = lines.find((line) => line.startsWith("event: "))?.slice(7);
      const data = lines.find((line) => line.startsWith("data: "))?.slice(6) ?? "";
      return { event, data };
    });
}
