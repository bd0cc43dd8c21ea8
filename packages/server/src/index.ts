export type { AppOptions, SwitchboardApp } from "./app.ts";
export { createApp } from "./app.ts";
export type { AppEnv, AppVariables } from "./env.ts";
export type { HttpProblem, Wire } from "./errors.ts";
export { problemResponse, toProblem } from "./errors.ts";
export { GatewayMetrics } from "./metrics.ts";
export { InFlightRequests } from "./requests.ts";
export type { RunningServer, ServerOptions } from "./serve.ts";
export { DEFAULT_HOST, DEFAULT_PORT, startServer } from "./serve.ts";
