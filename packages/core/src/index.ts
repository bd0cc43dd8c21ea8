export type { AbortSubject, TimeoutKind, TimeoutSource } from "./abort.ts";
export { abortError, RequestTimeout } from "./abort.ts";
export {
  anthropicCompatiblePlugin,
  anthropicPlugin,
  builtinPlugins,
  echoPlugin,
  markovPlugin,
  openaiCompatiblePlugin,
  openaiPlugin,
} from "./builtins.ts";
export type { AfterToolCall, BeforeToolCall } from "./chain.ts";
export { ChainResponse, DEFAULT_CHAIN_LIMIT, runToolCalls } from "./chain.ts";
export type { ErrorCode, SwitchboardErrorOptions } from "./errors.ts";
export {
  CancelToolCall,
  describeError,
  ERROR_HTTP_STATUS,
  isSwitchboardError,
  MissingKeyError,
  SwitchboardError,
  UnknownModelError,
} from "./errors.ts";
export type { ExecutionContext, ExecutionObserver, ExecutionOutcome } from "./execution.ts";
export { newId } from "./ids.ts";
export { isRecord } from "./json.ts";
export { isWellFormedKey, KeyStore, userDirectory } from "./keys.ts";
export type { ChainOptions, ConversationOptions, PromptOptions } from "./model.ts";
export { Conversation, Model } from "./model.ts";
export type { CorePlugin, RegisteredModel, RegisterModelsArgs } from "./plugin.ts";
export type { RegistryOptions } from "./registry.ts";
export { Registry } from "./registry.ts";
export type { ResponseStatus } from "./response.ts";
export { DEFAULT_TIMEOUT_MS, ModelResponse, sumUsage } from "./response.ts";
export { rememberSecret, scrubSecrets } from "./scrub.ts";
export type * from "./types.ts";
export { shutdownWorkerPool } from "./workers/pool.ts";
