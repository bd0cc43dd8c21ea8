/**
 * The gateway's HTTP routes: OpenAI's `/v1/chat/completions` and `/v1/models`, Anthropic's
 * `/v1/messages`. Each parses its wire into a `ChatRequest`, runs it through `execute.ts`, and
 * writes the answer back in the same wire, streamed or not.
 */
import { randomBytes } from "node:crypto";
import type { FinishReason, Usage } from "@switchboard/core";
import { type Hub, nanocentsToUsd, type Tokens } from "@switchboard/hub";
import { type Context, Hono, type MiddlewareHandler } from "hono";
import type { AppEnv } from "../env.ts";
import { toProblem, type Wire } from "../errors.ts";
import type { GatewayMetrics } from "../metrics.ts";
import { gatewayAuth } from "../middleware/auth.ts";
import { reportUnexpected } from "../middleware/errors.ts";
import { jsonBody } from "../middleware/json-body.ts";
import { AnthropicEventEncoder, anthropicMessage, parseAnthropicRequest } from "./anthropic.ts";
import type { ChatPart, ChatRequest, StreamEncoder } from "./chat.ts";
import {
  answeringModel,
  answerParts,
  type GatewayPrompt,
  type GatewaySettings,
  PURPOSE_PREFIX,
  startPrompt,
} from "./execute.ts";
import { OpenAIChunkEncoder, openaiCompletion, parseOpenAIRequest } from "./openai.ts";

export interface GatewayOptions {
  hub: Hub;
  tokens: () => Tokens;
  metrics: GatewayMetrics;
  settings: GatewaySettings & { maxBodyBytes: number };
}

const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  connection: "keep-alive",
};

/** Ids in each wire's style (`chatcmpl-…`, `msg_…`): a random per-process prefix and a counter. */
const idPrefix = randomBytes(8).toString("hex");
let idCounter = 0;

function wireId(wire: Wire): string {
  idCounter = (idCounter + 1) % Number.MAX_SAFE_INTEGER;
  const id = `${idPrefix}${idCounter.toString(36)}`;
  return wire === "anthropic" ? `msg_${id}` : `chatcmpl-${id}`;
}

interface Answer {
  text: string;
  toolCalls: Extract<ChatPart, { type: "tool-call" }>["toolCall"][];
  finish: FinishReason;
  usage: Usage;
}

function streamEncoder(wire: Wire, id: string, model: string, request: ChatRequest): StreamEncoder {
  if (wire === "anthropic") return new AnthropicEventEncoder({ id, model });
  return new OpenAIChunkEncoder({ id, created: Math.floor(Date.now() / 1000), model }, request.includeUsage);
}

function encodePart(encoder: StreamEncoder, part: ChatPart): string {
  if (part.type === "text") return encoder.text(part.text);
  if (part.type === "tool-call") return encoder.toolCall(part.toolCall);
  return encoder.finish(part.reason, part.usage);
}

export function gatewayRoutes(options: GatewayOptions): Hono<AppEnv> {
  const { hub, metrics, settings } = options;
  const routes = new Hono<AppEnv>();

  routes.use("*", async (c, next) => {
    c.set("wire", c.req.path.endsWith("/messages") ? "anthropic" : "openai");
    await next();
  });
  routes.use("*", gatewayAuth(options.tokens));

  const recordPrompt = (route: string, prompt: GatewayPrompt, overheadSeconds: number | undefined) => {
    const { response } = prompt;
    const usage = response.usageSoFar;
    const model = answeringModel(prompt);
    const cost = hub.prices.cost(model, usage);
    metrics.promptAnswered({
      route,
      purpose: prompt.purpose ?? "none",
      model,
      inputTokens: usage.input,
      outputTokens: usage.output,
      costUsd: cost === undefined ? undefined : nanocentsToUsd(cost),
      overheadSeconds,
    });
  };

  const answer = async (c: Context<AppEnv>, wire: Wire, route: string, request: ChatRequest) => {
    const prompt = await startPrompt(hub, c.get("token"), request, settings, c.get("signal"));
    const headers: Record<string, string> = {};
    if (prompt.droppedOptions.length > 0) {
      headers["x-switchboard-dropped-options"] = prompt.droppedOptions.join(", ");
    }
    return request.stream
      ? streamAnswer(c, wire, route, request, prompt, headers)
      : completeAnswer(c, wire, route, prompt, headers);
  };

  const completeAnswer = async (
    c: Context<AppEnv>,
    wire: Wire,
    route: string,
    prompt: GatewayPrompt,
    headers: Record<string, string>,
  ) => {
    const collected: Answer = { text: "", toolCalls: [], finish: "stop", usage: {} };
    for await (const part of answerParts(prompt.response)) {
      if (part.type === "text") collected.text += part.text;
      else if (part.type === "tool-call") collected.toolCalls.push(part.toolCall);
      else {
        collected.finish = part.reason;
        collected.usage = part.usage;
      }
    }
    const model = answeringModel(prompt);
    const id = wireId(wire);
    const body = JSON.stringify(
      wire === "anthropic"
        ? anthropicMessage({ id, model }, collected)
        : openaiCompletion({ id, created: Math.floor(Date.now() / 1000), model }, collected),
    );
    const overheadMs = Math.max(
      0,
      performance.now() - c.get("startedAt") - (prompt.response.durationMs ?? 0),
    );
    recordPrompt(route, prompt, overheadMs / 1000);
    return new Response(body, {
      status: 200,
      headers: {
        ...headers,
        "content-type": "application/json",
        "x-switchboard-model": model,
        "x-switchboard-overhead-ms": overheadMs.toFixed(2),
      },
    });
  };

  const streamAnswer = async (
    c: Context<AppEnv>,
    wire: Wire,
    route: string,
    request: ChatRequest,
    prompt: GatewayPrompt,
    headers: Record<string, string>,
  ) => {
    const parts = answerParts(prompt.response);
    // Nothing is sent before the first part: a failure up to here (a refusal, an upstream error
    // with no fallback left) is still an ordinary error answer with its own status.
    const first = await parts.next();
    const model = answeringModel(prompt);
    const encoder = streamEncoder(wire, wireId(wire), model, request);
    const endRequest = c.get("endRequest");
    c.set("streaming", true);
    const bytes = new TextEncoder();
    let pending: IteratorResult<ChatPart> | undefined = first;
    let closed = false;
    const close = (controller: ReadableStreamDefaultController<Uint8Array>, status: number) => {
      if (closed) return;
      closed = true;
      controller.close();
      endRequest(status);
    };
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const result = pending ?? (await parts.next());
          pending = undefined;
          if (result.done) {
            recordPrompt(route, prompt, undefined);
            close(controller, 200);
            return;
          }
          controller.enqueue(bytes.encode(encodePart(encoder, result.value)));
        } catch (error) {
          // Mid-stream failure: an explicit error event, never a clean end the SDKs would take for success.
          reportUnexpected(c, error);
          const problem = toProblem(error);
          if (!c.get("signal").aborted) controller.enqueue(bytes.encode(encoder.error(problem)));
          close(controller, problem.status);
        }
      },
      async cancel() {
        closed = true;
        endRequest(499);
        await parts.return(undefined);
      },
    });
    return new Response(body, {
      status: 200,
      headers: { ...headers, ...SSE_HEADERS, "x-switchboard-model": model },
    });
  };

  const named =
    (route: string): MiddlewareHandler<AppEnv> =>
    async (c, next) => {
      c.set("route", route);
      await next();
    };

  routes.post("/chat/completions", named("chat_completions"), jsonBody(settings.maxBodyBytes), (c) =>
    answer(c, "openai", "chat_completions", parseOpenAIRequest(c.get("body"))),
  );

  routes.post("/messages", named("messages"), jsonBody(settings.maxBodyBytes), (c) =>
    answer(c, "anthropic", "messages", parseAnthropicRequest(c.get("body"))),
  );

  routes.get("/models", async (c) => {
    c.set("route", "models");
    const token = c.get("token");
    const actor = { id: token.actor };
    const created = Math.floor(Date.now() / 1000);
    const entry = (id: string) => ({ id, object: "model", created, owned_by: "switchboard" });
    const data = token.purposes.map((purpose) => entry(`${PURPOSE_PREFIX}${purpose}`));
    // Plain model ids resolve for the token's default purpose, so those are the ones it may name.
    for (const listing of await hub.models({ purpose: token.purposes[0], actor }))
      data.push(entry(listing.id));
    return c.json({ object: "list", data });
  });

  return routes;
}
