/**
 * A fake OpenAI Chat Completions server speaking the real wire format: streamed chunks with the
 * assistant role first, tool calls whose id and name come in the first delta and whose arguments
 * arrive in fragments, a finish chunk, a usage chunk (with cached and reasoning tokens) and
 * `data: [DONE]`.
 *
 *   const fake = await startFakeOpenAI();
 *   fake.enqueue({ text: "Hello there" }, { status: 429, headers: { "retry-after": "1" } });
 *   createOpenAIModel({ id: "gpt-test", baseUrl: fake.url });
 *   fake.requests[0].body.messages; await fake.close();
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
  401: "invalid_request_error",
  403: "permission_denied",
  404: "not_found_error",
  429: "rate_limit_exceeded",
};

function usageBody(usage: FakeUsage) {
  return {
    prompt_tokens: usage.input,
    completion_tokens: usage.output,
    total_tokens: usage.input + usage.output,
    prompt_tokens_details: { cached_tokens: usage.cachedInput ?? 0, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: usage.reasoning ?? 0, audio_tokens: 0 },
  };
}

function finishReason(reply: ResolvedAnswer): string {
  return reply.finishReason ?? (reply.toolCalls.length > 0 ? "tool_calls" : "stop");
}

function toolCallIds(reply: ResolvedAnswer): string[] {
  return reply.toolCalls.map((call) => call.id ?? fakeId("call_"));
}

export const openaiWire: WireFormat = {
  path: "/v1/chat/completions",
  baseSuffix: "/v1",

  lastUserText(body) {
    const messages = Array.isArray(body.messages) ? body.messages : [];
    const last = messages.findLast((message: { role?: string }) => message.role === "user");
    if (!last) return "";
    if (typeof last.content === "string") return last.content;
    if (!Array.isArray(last.content)) return "";
    return last.content
      .filter((part: { type?: string }) => part.type === "text")
      .map((part: { text?: string }) => part.text ?? "")
      .join("\n");
  },

  errorBody(status, message, errorType) {
    return {
      error: {
        message,
        type: errorType ?? ERROR_TYPES[status] ?? "server_error",
        param: null,
        code: status === 401 ? "invalid_api_key" : null,
      },
    };
  },

  completion(reply) {
    const ids = toolCallIds(reply);
    const text = reply.chunks.join("");
    return {
      id: fakeId("chatcmpl-"),
      object: "chat.completion",
      created: Math.floor(Date.now() / 1000),
      model: reply.model,
      choices: [
        {
          index: 0,
          message: {
            role: "assistant",
            content: text || (reply.toolCalls.length > 0 ? null : ""),
            refusal: null,
            ...(reply.toolCalls.length > 0
              ? {
                  tool_calls: reply.toolCalls.map((call, i) => ({
                    id: ids[i],
                    type: "function",
                    function: { name: call.name, arguments: JSON.stringify(call.arguments) },
                  })),
                }
              : {}),
          },
          logprobs: null,
          finish_reason: finishReason(reply),
        },
      ],
      ...(reply.usage ? { usage: usageBody(reply.usage) } : {}),
      system_fingerprint: "fp_fake",
    };
  },

  events(reply, body) {
    const base = {
      id: fakeId("chatcmpl-"),
      object: "chat.completion.chunk",
      created: Math.floor(Date.now() / 1000),
      model: reply.model,
      system_fingerprint: "fp_fake",
    };
    const chunk = (delta: Record<string, unknown>, finish: string | null = null): SseEvent => ({
      data: { ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] },
    });
    const content: SseEvent[] = [chunk({ role: "assistant", content: "", refusal: null })];
    for (const text of reply.chunks) content.push(chunk({ content: text }));
    const ids = toolCallIds(reply);
    for (const [index, call] of reply.toolCalls.entries()) {
      content.push(
        chunk({
          tool_calls: [
            { index, id: ids[index], type: "function", function: { name: call.name, arguments: "" } },
          ],
        }),
      );
      for (const fragment of fragments(JSON.stringify(call.arguments), 3)) {
        content.push(chunk({ tool_calls: [{ index, function: { arguments: fragment } }] }));
      }
    }
    const ending: SseEvent[] = [chunk({}, finishReason(reply))];
    const streamOptions = body.stream_options as { include_usage?: boolean } | undefined;
    if (reply.usage && streamOptions?.include_usage) {
      ending.push({ data: { ...base, choices: [], usage: usageBody(reply.usage) } });
    }
    ending.push({ data: "[DONE]" });
    return { content, ending };
  },

  errorEvent(error) {
    return { data: { error: { message: error.message, type: error.type, param: null, code: null } } };
  },
};

/** Starts a fake on 127.0.0.1; `url` ends in `/v1`, like OpenAI's base URL. */
export function startFakeOpenAI(options?: FakeServerOptions): Promise<FakeServer> {
  return startFakeServer(openaiWire, options);
}
