/**
 * Prometheus metrics of one app. Each app has its own registry (several apps can share a process,
 * as in tests); recording is a few counter increments per request.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/** Seconds; fine-grained at the low end, where gateway overhead lives. */
const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];
const OVERHEAD_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1];

export interface RequestObservation {
  route: string;
  status: number;
  durationSeconds: number;
}

export interface PromptObservation {
  route: string;
  purpose: string;
  model: string;
  inputTokens: number | undefined;
  outputTokens: number | undefined;
  costUsd: number | undefined;
  /** Time spent outside the upstream call; only for non-streamed answers. */
  overheadSeconds: number | undefined;
}

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly #requests = new Counter({
    name: "switchboard_http_requests_total",
    help: "HTTP requests answered, by route and status.",
    labelNames: ["route", "status"] as const,
    registers: [this.registry],
  });
  readonly #latency = new Histogram({
    name: "switchboard_http_request_duration_seconds",
    help: "Time from request to the end of the answer (streams included), by route.",
    labelNames: ["route"] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly #overhead = new Histogram({
    name: "switchboard_gateway_overhead_seconds",
    help: "Time a non-streamed gateway request spent outside the upstream model call.",
    labelNames: ["route"] as const,
    buckets: OVERHEAD_BUCKETS,
    registers: [this.registry],
  });
  readonly #inFlight = new Gauge({
    name: "switchboard_http_requests_in_flight",
    help: "Requests being answered now.",
    registers: [this.registry],
  });
  readonly #prompts = new Counter({
    name: "switchboard_gateway_prompts_total",
    help: "Gateway prompts answered, by purpose and the model that answered.",
    labelNames: ["purpose", "model"] as const,
    registers: [this.registry],
  });
  readonly #tokens = new Counter({
    name: "switchboard_gateway_tokens_total",
    help: "Tokens of gateway prompts, by purpose, model and direction (input or output).",
    labelNames: ["purpose", "model", "direction"] as const,
    registers: [this.registry],
  });
  readonly #cost = new Counter({
    name: "switchboard_gateway_cost_usd_total",
    help: "Cost of gateway prompts in USD at the configured prices, by purpose and model.",
    labelNames: ["purpose", "model"] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  requestStarted(): void {
    this.#inFlight.inc();
  }

  requestEnded(observation: RequestObservation): void {
    this.#inFlight.dec();
    this.#requests.inc({ route: observation.route, status: String(observation.status) });
    this.#latency.observe({ route: observation.route }, observation.durationSeconds);
  }

  promptAnswered(observation: PromptObservation): void {
    const labels = { purpose: observation.purpose, model: observation.model };
    this.#prompts.inc(labels);
    if (observation.inputTokens !== undefined) {
      this.#tokens.inc({ ...labels, direction: "input" }, observation.inputTokens);
    }
    if (observation.outputTokens !== undefined) {
      this.#tokens.inc({ ...labels, direction: "output" }, observation.outputTokens);
    }
    if (observation.costUsd !== undefined) this.#cost.inc(labels, observation.costUsd);
    if (observation.overheadSeconds !== undefined) {
      this.#overhead.observe({ route: observation.route }, observation.overheadSeconds);
    }
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
