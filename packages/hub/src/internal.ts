/**
 * `@switchboard/hub/internal`: building blocks of the built-in plugins, for Switchboard's own
 * tests and benchmarks. Not part of the public API: names and shapes here may change in any
 * release. Applications use `@switchboard/hub` (reports, accountants through plugins).
 */
export {
  actorKeyPrefix,
  allowanceAccountant,
  holdTtlMs,
  limitApplies,
  limitKey,
  limitsAccountant,
  windowEnd,
  windowReset,
  windowStart,
} from "./accounting/accountants.ts";
export { UsageWriter, usageRecord } from "./plugins/usage-log.ts";
