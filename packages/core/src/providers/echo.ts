import { z } from "zod";
import type { CorePlugin } from "../plugin.ts";
import type { AsyncModelDefinition, ModelRequest, StreamPart } from "../types.ts";

/** What a JSON prompt to the echo models may script. */
interface EchoScript {
  prompt: string;
  raw?: string;
  toolCalls: { name: string; arguments: Record<string, unknown> }[];
}

function countWords(text: string): number {
  const trimmed = text.trim();
  return trimmed === "" ? 0 : trimmed.split(/\s+/).length;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A prompt that is a JSON object scripts the reply; anything else is plain text. */
function readScript(prompt: string): EchoScript {
  if (!prompt.trim().startsWith("{")) return { prompt, toolCalls: [] };
  let parsed: unknown;
  try {
    parsed = JSON.parse(prompt);
  } catch {
    return { prompt, toolCalls: [] };
  }
  if (!isRecord(parsed)) return { prompt, toolCalls: [] };
  const script: EchoScript = {
    prompt: typeof parsed.prompt === "string" ? parsed.prompt : "",
    toolCalls: Array.isArray(parsed.tool_calls)
      ? parsed.tool_calls.filter(isRecord).map((call) => ({
          name: String(call.name),
          arguments: isRecord(call.arguments) ? call.arguments : {},
        }))
      : [],
  };
  if (typeof parsed.raw === "string") script.raw = parsed.raw;
  return script;
}

function renderEcho(request: ModelRequest, script: EchoScript, includeKey: boolean): string {
  // Key order is part of the contract (DESIGN §2.1): tests and users compare this output.
  const info: Record<string, unknown> = {
    prompt: script.prompt,
    system: request.system ?? "",
    attachments: request.attachments.map((attachment) => ({
      type: attachment.type,
      path: attachment.path ?? null,
      url: attachment.url ?? null,
    })),
    stream: request.stream,
    previous: request.history.map((exchange) => ({ prompt: exchange.input.prompt })),
  };
  if (Object.keys(request.options).length > 0) info.options = request.options;
  if (request.toolResults.length > 0) {
    info.tool_results = request.toolResults.map((result) => ({
      name: result.name,
      output: result.output,
      tool_call_id: result.toolCallId,
    }));
  }
  if (includeKey) info.key = request.key;
  return JSON.stringify(info, null, 2);
}

function createEchoModel(id: string, needsKey: boolean): AsyncModelDefinition {
  return {
    id,
    provider: "echo",
    ...(needsKey ? { needsKey: "echo-needs-key", keyEnvVar: "ECHO_NEEDS_KEY_KEY" } : {}),
    capabilities: {
      streaming: true,
      tools: true,
      schema: false,
      attachmentTypes: ["image/png", "image/jpeg", "image/gif"],
    },
    options: z.object({ example_bool: z.boolean().optional() }),
    async *execute(request): AsyncGenerator<StreamPart> {
      // A chain's follow-up prompt is empty; a tool result holding a JSON script continues the
      // script, so tests can drive chains of any length.
      const lastResult = request.toolResults.at(-1);
      const continued = request.prompt === "" && lastResult ? readScript(lastResult.output) : undefined;
      const script = continued?.toolCalls.length ? { ...continued, prompt: "" } : readScript(request.prompt);
      const output = script.raw ?? renderEcho(request, script, needsKey);
      // Stream line by line so consumers see several chunks, as from a real provider.
      if (request.stream) {
        const lines = output.split(/(?<=\n)/);
        for (const line of lines) yield { type: "text", text: line };
      } else {
        yield { type: "text", text: output };
      }
      for (const call of script.toolCalls)
        yield { type: "tool-call", name: call.name, arguments: call.arguments };
      yield { type: "usage", usage: { input: countWords(request.prompt), output: countWords(output) } };
      yield { type: "finish", reason: script.toolCalls.length > 0 ? "tool_calls" : "stop" };
    },
  };
}

/** The deterministic test models `echo` and `echo-needs-key`. */
export function echoPlugin(): CorePlugin {
  return {
    name: "echo",
    registerModels({ register }) {
      register(createEchoModel("echo", false));
      register(createEchoModel("echo-needs-key", true));
    },
  };
}
