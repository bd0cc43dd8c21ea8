import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../env.ts";
import type { GatewayMetrics } from "../metrics.ts";
import type { InFlightRequests } from "../requests.ts";

/**
 * Counts the request as in flight until its answer has been sent (for a stream: until the stream
 * ends) and records its status and latency. Its abort signal fires when the client goes away or
 * the server stops waiting at shutdown.
 */
export function observeRequests(
  metrics: GatewayMetrics,
  inFlight: InFlightRequests,
): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const startedAt = performance.now();
    const { controller, end } = inFlight.begin();
    metrics.requestStarted();
    const clientSignal = c.req.raw.signal;
    const signal = clientSignal ? AbortSignal.any([clientSignal, controller.signal]) : controller.signal;
    let ended = false;
    const finish = (status: number) => {
      if (ended) return;
      ended = true;
      end();
      metrics.requestEnded({
        route: c.get("route") ?? "other",
        status,
        durationSeconds: (performance.now() - startedAt) / 1000,
      });
    };
    c.set("startedAt", startedAt);
    c.set("signal", signal);
    c.set("endRequest", finish);
    c.set("streaming", false);
    try {
      await next();
    } finally {
      // A streaming route ends the request when its stream ends; everything else ends here.
      if (!c.get("streaming")) finish(c.res.status);
    }
  };
}
