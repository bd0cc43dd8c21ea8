/** The per-request values the app's middleware and routes share through Hono's context. */
import type { GatewayToken } from "@switchboard/hub";
import type { Wire } from "./errors.ts";

export interface AppVariables {
  /** The client's `x-request-id` when it sent a usable one, else a fresh id. */
  requestId: string;
  /** `performance.now()` when the request arrived. */
  startedAt: number;
  /** The wire whose error shape this request's failures take. */
  wire: Wire;
  /** A low-cardinality name of the route, for metrics. */
  route: string;
  /** Aborted when the client goes away or the server stops waiting for this request. */
  signal: AbortSignal;
  /** Ends the request (in-flight count, metrics); called once its answer is fully sent. */
  endRequest: (status: number) => void;
  /** Set by a route that answers with a stream: the stream calls `endRequest` when it ends. */
  streaming: boolean;
  /** The gateway token of an authenticated request. */
  token: GatewayToken;
  /** The parsed JSON body (see `jsonBody`). */
  body: unknown;
}

export interface AppEnv {
  Variables: AppVariables;
}
