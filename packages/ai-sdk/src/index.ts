export { SwitchboardAPIError } from "./errors.ts";
export type { SwitchboardCallOptions } from "./language-model.ts";
export type {
  SwitchboardModelSettings,
  SwitchboardProvider,
  SwitchboardProviderSettings,
} from "./provider.ts";
export { createSwitchboard } from "./provider.ts";
export type { SwitchboardMetadata } from "./results.ts";
