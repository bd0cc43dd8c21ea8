export type { Accountant, Reservation } from "./accounting/accountants.ts";
export {
  allowanceAccountant,
  limitKey,
  limitsAccountant,
  windowReset,
  windowStart,
} from "./accounting/accountants.ts";
export type { Price } from "./accounting/pricing.ts";
export {
  DEFAULT_PRICES,
  formatUsd,
  NANOCENTS_PER_USD,
  nanocentsToUsd,
  PRICES_AS_OF,
  PriceBook,
  usdToNanocents,
} from "./accounting/pricing.ts";
export type {
  HubConfig,
  HubConfigInput,
  LimitConfig,
  ModelRef,
  ProviderConfig,
  PurposeConfig,
} from "./config.ts";
export { findConfigPath, loadConfigFile, parseConfig } from "./config.ts";
export type {
  Actor,
  GroupInfo,
  HookName,
  HookSpecs,
  ModelListing,
  PromptContext,
  PromptContextArgs,
  PromptOutcome,
  Purpose,
  Secret,
  SwitchboardPlugin,
} from "./hooks.ts";
export { HOOK_NAMES } from "./hooks.ts";
export type { HubOptions, ModelQuery, PurposeListing } from "./hub.ts";
export { Hub, HubModel, openHub } from "./hub.ts";
export { UsageWriter } from "./plugins/usage-log.ts";
export { providerSecretName } from "./routing.ts";
export type { SecretListing } from "./secrets.ts";
export { generateEncryptionKey, Secrets } from "./secrets.ts";
export type { CreateTokenInput, GatewayToken, StoredToken, TokenCheck, TokenStore } from "./tokens.ts";
export { hashToken, Tokens } from "./tokens.ts";
