import type { Hub } from "@switchboard/hub";
import { Hono } from "hono";
import type { AppEnv } from "./env.ts";
import type { GatewayMetrics } from "./metrics.ts";

/** `/health` (the process answers), `/ready` (the store answers too) and `/metrics` (Prometheus). */
export function healthRoutes(hub: Hub, metrics: GatewayMetrics): Hono<AppEnv> {
  const routes = new Hono<AppEnv>();
  routes.get("/health", (c) => {
    c.set("route", "health");
    return c.json({ status: "ok" });
  });
  routes.get("/ready", async (c) => {
    c.set("route", "ready");
    try {
      await (await hub.store()).migrations();
    } catch {
      return c.json(
        { status: "unavailable", reason: "The store does not answer; check storage: in the configuration." },
        503,
      );
    }
    return c.json({ status: "ready" });
  });
  routes.get("/metrics", async (c) => {
    c.set("route", "metrics");
    const { contentType, body } = await metrics.render();
    return c.body(body, 200, { "content-type": contentType });
  });
  return routes;
}
