/**
 * The Switchboard HTTP app: shared middleware (request id, in-flight tracking and metrics, the one
 * error handler), health and metrics endpoints, and the gateway under `/v1`. Other parts of the
 * server (the admin UI under `/-/`) mount on the same app.
 */
import type { Hub, Tokens } from "@switchboard/hub";
import { Hono } from "hono";
import { adminRoutes, adminSession, sessionActor, sessionCsrf } from "./admin/index.ts";
import { dataPages } from "./data-pages/index.ts";
import type { AppEnv } from "./env.ts";
import { gatewayRoutes } from "./gateway/routes.ts";
import { healthRoutes } from "./health.ts";
import { GatewayMetrics } from "./metrics.ts";
import { handleError, handleNotFound } from "./middleware/errors.ts";
import { observeRequests } from "./middleware/observe.ts";
import { requestId } from "./middleware/request-id.ts";
import { InFlightRequests } from "./requests.ts";

export interface AppOptions {
  hub: Hub;
  /** SQLite databases named on the command line, for the data tools. */
  databases?: readonly string[];
  /** Tracks requests for a graceful shutdown; `startServer` passes its own. */
  inFlight?: InFlightRequests;
  metrics?: GatewayMetrics;
  /** Gateway tokens (default: the hub's). */
  tokens?: Tokens;
}

export type SwitchboardApp = Hono<AppEnv>;

export function createApp(options: AppOptions): SwitchboardApp {
  const { hub } = options;
  const settings = hub.config.server;
  const metrics = options.metrics ?? new GatewayMetrics();
  const inFlight = options.inFlight ?? new InFlightRequests();
  const tokens = options.tokens;
  const app = new Hono<AppEnv>();
  app.use("*", requestId());
  app.use("*", observeRequests(metrics, inFlight));
  app.onError(handleError);
  app.notFound(handleNotFound);
  // Who is signed in to the admin UI (a session cookie), for its pages and the data pages.
  app.use("*", adminSession(hub));

  app.get("/", (c) => {
    c.set("route", "index");
    return c.text(
      "Switchboard is running.\n\nGateway: POST /v1/chat/completions (OpenAI), POST /v1/messages (Anthropic), GET /v1/models\nHealth: GET /health, GET /ready, GET /metrics\nAdmin UI: /-/\n",
    );
  });
  app.route("/", healthRoutes(hub, metrics));
  app.route("/", adminRoutes({ hub, tokens: tokens ?? hub.tokens }));
  app.route(
    "/v1",
    gatewayRoutes({
      hub,
      tokens: () => tokens ?? hub.tokens,
      metrics,
      settings: {
        maxBodyBytes: settings.max_body_bytes,
        allowUrlAttachments: settings.allow_url_attachments,
        dropUnsupportedOptions: settings.drop_unsupported_options,
      },
    }),
  );
  // Mounted last: `/<db>` paths must not shadow the routes above.
  if (options.databases?.length) {
    // Signed in as in the admin UI: its session's actor, `permissions:`, its CSRF tokens.
    app.route(
      "/",
      dataPages({
        hub,
        databases: options.databases,
        resolveActor: sessionActor,
        can: (action, actor) => hub.permissions.can(actor, action),
        csrf: sessionCsrf(hub),
      }),
    );
  }
  return app;
}
