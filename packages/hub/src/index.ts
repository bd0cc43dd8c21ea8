export type { Accountant, Reservation } from "./accounting/accountants.ts";
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
export type { AuditEntry, AuditEntryInput, AuditQuery, AuditTargetType } from "./audit.ts";
export { Audit } from "./audit.ts";
export type {
  HubConfig,
  HubConfigInput,
  LimitConfig,
  ModelRef,
  ProviderConfig,
  PurposeConfig,
} from "./config.ts";
export { findConfigPath, loadConfigFile, parseConfig } from "./config.ts";
export type { HookName, HookSpecs, SwitchboardPlugin } from "./hooks.ts";
export { HOOK_NAMES } from "./hooks.ts";
export type { HubOptions } from "./hub.ts";
export { Hub, HubModel, openHub } from "./hub.ts";
export type { KeySource } from "./keys.ts";
export { providerSecretName } from "./keys.ts";
export type { AdminSession, LoginLink } from "./logins.ts";
export { Logins } from "./logins.ts";
export type {
  LoadedOverride,
  OverrideField,
  OverrideFieldErrors,
  OverrideValidation,
  PurposeOverride,
  PurposeSettings,
} from "./overrides.ts";
export { OVERRIDE_FIELDS, PurposeOverrides, validateOverride } from "./overrides.ts";
export type { PermissionAction } from "./permissions.ts";
export { ANY_ACTOR, PERMISSION_ACTIONS, Permissions, ROOT_ACTOR } from "./permissions.ts";
export type { PurposeDetail, PurposeModel, SourcedValue, ValueSource } from "./purpose-details.ts";
export type {
  AllowanceStatus,
  LimitStatus,
  LimitWindow,
  LogEntry,
  LogPage,
  LogQuery,
  UsageGroup,
  UsageGrouping,
  UsageReport,
  UsageReportQuery,
  UsageTotals,
} from "./reports.ts";
export { Reports, reportJson } from "./reports.ts";
export type { SecretListing, SecretsOptions } from "./secrets.ts";
export { generateEncryptionKey, Secrets } from "./secrets.ts";
export type { CreateTokenInput, GatewayToken, TokenCheck, TokenStore } from "./tokens.ts";
export { hashToken, Tokens } from "./tokens.ts";
export type {
  Actor,
  GroupInfo,
  ModelDescription,
  ModelListing,
  ModelQuery,
  PromptContext,
  PromptContextArgs,
  PromptOutcome,
  Purpose,
  PurposeListing,
  Secret,
  SkippedFallback,
} from "./types.ts";
