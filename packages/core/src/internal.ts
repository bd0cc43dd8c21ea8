/**
 * `@switchboard/core/internal`: process plumbing shared by Switchboard's own packages. Not part of
 * the public API: names and shapes here may change in any release.
 */
export { exitGuard, type PendingWrites } from "./exit-guard.ts";
