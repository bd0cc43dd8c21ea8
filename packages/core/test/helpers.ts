import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type AsyncModelDefinition,
  type CorePlugin,
  echoPlugin,
  isSwitchboardError,
  KeyStore,
  type Model,
  type ModelRequest,
  Registry,
  type StreamPart,
  type SwitchboardError,
} from "../src/index.ts";

export function temporaryDirectory(prefix = "switchboard-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A key store in a fresh temporary directory, so tests never read the user's keys. */
export function temporaryKeyStore(): KeyStore {
  return new KeyStore(join(temporaryDirectory(), "keys.json"));
}

/** A model whose behaviour each test scripts, recording every request it receives. */
export function scriptedModel(
  id: string,
  script: (request: ModelRequest, call: number) => AsyncIterable<StreamPart>,
  extra: Partial<AsyncModelDefinition> = {},
): AsyncModelDefinition & { requests: ModelRequest[] } {
  const requests: ModelRequest[] = [];
  return {
    id,
    capabilities: { streaming: true, tools: true, schema: true, attachmentTypes: [] },
    ...extra,
    requests,
    execute(request) {
      requests.push(request);
      return script(request, requests.length);
    },
  };
}

export function pluginOf(name: string, ...models: AsyncModelDefinition[]): CorePlugin {
  return {
    name,
    registerModels({ register }) {
      for (const model of models) register(model);
    },
  };
}

/** A registered model around one definition, as prompts reach it: with the core's timeouts and fallbacks. */
export async function registeredModel(definition: AsyncModelDefinition): Promise<Model> {
  const registry = await Registry.create([pluginOf("test", definition)], { keys: temporaryKeyStore() });
  return registry.get(definition.id);
}

/** The SwitchboardError a response fails with. */
export async function responseFailure(response: { done(): Promise<unknown> }): Promise<SwitchboardError> {
  try {
    await response.done();
  } catch (error) {
    if (isSwitchboardError(error)) return error;
    throw error;
  }
  throw new Error("expected the response to fail");
}

export async function echoRegistry(...extra: CorePlugin[]): Promise<Registry> {
  return Registry.create([echoPlugin(), ...extra], { keys: temporaryKeyStore() });
}

/** A promise with its resolve function, for stepping a scripted model by hand. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

/** A hand-built request, as the core would send it to a provider. */
export function providerRequest(
  modelId: string,
  key: string,
  overrides: Partial<ModelRequest> = {},
): ModelRequest {
  return {
    modelId,
    prompt: "Hello",
    attachments: [],
    tools: [],
    toolResults: [],
    options: {},
    stream: true,
    history: [],
    key,
    signal: new AbortController().signal,
    ...overrides,
  };
}

export async function collectParts(parts: AsyncIterable<StreamPart>): Promise<StreamPart[]> {
  const result: StreamPart[] = [];
  for await (const part of parts) result.push(part);
  return result;
}

export function textOfParts(parts: StreamPart[]): string {
  return parts.map((part) => (part.type === "text" ? part.text : "")).join("");
}

/** The SwitchboardError a provider stream fails with. */
export async function partsFailure(parts: AsyncIterable<StreamPart>): Promise<SwitchboardError> {
  try {
    await collectParts(parts);
  } catch (error) {
    if (isSwitchboardError(error)) return error;
    throw error;
  }
  throw new Error("expected the request to fail");
}
