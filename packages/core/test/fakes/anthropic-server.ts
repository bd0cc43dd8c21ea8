/**
 * A fake Anthropic Messages API server speaking the real wire format: `message_start` (with the
 * input and cache counts), a `ping`, content blocks (text deltas; tool_use blocks whose input
 * arrives as `input_json_delta` fragments), `message_delta` with the stop reason and output tokens,
 * `message_stop`; error bodies and `error` events shaped like the API's.
 *
 *   const fake = await startFakeAnthropic();
 *   fake.enqueue({ toolCalls: [{ name: "lookup", arguments: { q: "x" } }] });
 *   createAnthropicModel({ id: "claude-test", baseUrl: fake.url });
 */
import {
  type FakeServer,
  type FakeServerOptions,
  type FakeUsage,
  fakeId,
  fragments,
  type ResolvedAnswer,
  type SseEvent,
  startFakeServer,
  type WireFormat,
} from "./fake-server.ts";

export type { FakeReply, FakeServer, FakeToolCall, FakeUsage, RecordedRequest } from "./fake-server.ts";

const ERROR_TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  403: "permission_error",
  404: "not_found_error",
  413: "request_too_large",
  429: "rate_limit_error",
  500: "api_error",
  529: "overloaded_error",
};

/** Anthropic's `input_tokens` excludes the cache reads and writes. */
function usageBody(usage: FakeUsage, output: number) {
  const cacheRead = usage.cachedInput ?? 0;
  const cacheWrite = usage.cacheWrite ?? 0;
  return {
    input_tokens: usage.input - cacheRead - cacheWrite,
    cache_creation_input_tokens: cacheWrite,
    cache_read_input_tokens: cacheRead,
    output_tokens: output,
  };
}

function stopReason(reply: ResolvedAnswer): string {
  return reply.finishReason ?? (reply.toolCalls.length > 0 ? "tool_use" : "end_turn");
}

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .filter((block: { type?: string }) => block.type === "text")
    .map((block: { text?: string }) => block.text ?? "")
    .join("\n");
}

export const anthropicWire: WireFormat = {
  path: "/v1/messages",
  baseSuffix: "",

  lastUserText(body) {
    const messages = Array.isArray(body.messages) ? body.messages : [];
    return textOf(messages.findLast((message: { role?: string }) => message.role === "user")?.content);
  },

  errorBody(status, message, errorType) {
    return { type: "error", error: { type: errorType ?? ERROR_TYPES[status] ?? "api_error", message } };
  },

  completion(reply) {
    const text = reply.chunks.join("");
    return {
      id: fakeId("msg_"),
      type: "message",
      role: "assistant",
      model: reply.model,
      content: [
        ...(text ? [{ type: "text", text }] : []),
        ...reply.toolCalls.map((call) => ({
          type: "tool_use",
          id: call.id ?? fakeId("toolu_"),
          name: call.name,
          input: call.arguments,
        })),
      ],
      stop_reason: stopReason(reply),
      stop_sequence: null,
      ...(reply.usage ? { usage: usageBody(reply.usage, reply.usage.output) } : {}),
    };
  },

  events(reply) {
    const event = (type: string, data: Record<string, unknown>): SseEvent => ({
      event: type,
      data: { type, ...data },
    });
    const content: SseEvent[] = [
      event("message_start", {
        message: {
          id: fakeId("msg_"),
          type: "message",
          role: "assistant",
          model: reply.model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          ...(reply.usage ? { usage: usageBody(reply.usage, 1) } : {}),
        },
      }),
      event("ping", {}),
    ];
    let index = 0;
    if (reply.chunks.length > 0) {
      content.push(event("content_block_start", { index, content_block: { type: "text", text: "" } }));
      for (const text of reply.chunks) {
        content.push(event("content_block_delta", { index, delta: { type: "text_delta", text } }));
      }
      content.push(event("content_block_stop", { index }));
      index += 1;
    }
    for (const call of reply.toolCalls) {
      content.push(
        event("content_block_start", {
          index,
          content_block: { type: "tool_use", id: call.id ?? fakeId("toolu_"), name: call.name, input: {} },
        }),
      );
      for (const partial of ["", ...fragments(JSON.stringify(call.arguments), 3)]) {
        content.push(
          event("content_block_delta", { index, delta: { type: "input_json_delta", partial_json: partial } }),
        );
      }
      content.push(event("content_block_stop", { index }));
      index += 1;
    }
    const ending: SseEvent[] = [
      event("message_delta", {
        delta: { stop_reason: stopReason(reply), stop_sequence: null },
        ...(reply.usage ? { usage: { output_tokens: reply.usage.output } } : {}),
      }),
      event("message_stop", {}),
    ];
    return { content, ending };
  },

  errorEvent(error) {
    return { event: "error", data: { type: "error", error: { type: error.type, message: error.message } } };
  },
};

/** Starts a fake on 127.0.0.1; `url` has no `/v1`, like Anthropic's base URL. */
export function startFakeAnthropic(options?: FakeServerOptions): Promise<FakeServer> {
  return startFakeServer(anthropicWire, options);
}
