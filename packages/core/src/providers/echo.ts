import { z } from "zod";
import { isRecord } from "../json.ts";
import type { CorePlugin } from "../plugin.ts";
import type { AsyncModelDefinition, Attachment, HistoryMessage, ModelRequest, StreamPart } from "../types.ts";

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

/** The first `limit` words of a text, with the whitespace between them: how echo honours `max_tokens`. */
function firstWords(text: string, limit: number): { text: string; cut: boolean } {
  const word = /\S+/g;
  let count = 0;
  for (let match = word.exec(text); match !== null; match = word.exec(text)) {
    count += 1;
    if (count === limit) {
      const end = match.index + match[0].length;
      return { text: text.slice(0, end), cut: /\S/.test(text.slice(end)) };
    }
  }
  return { text, cut: false };
}

interface PreviousTurn {
  prompt: string;
  tool_results?: { name: string | undefined; output: string; tool_call_id: string }[];
  tool_calls?: { id: string; name: string; arguments: Record<string, unknown> }[];
}

/**
 * Earlier turns, one entry per turn: a turn is the tool results and the user message that led to
 * an answer, then that answer. An entry shows its tool results and the answer's tool calls only
 * when there were some; the answer's text is left out, so echoed conversations do not nest.
 */
function previousTurns(history: readonly HistoryMessage<Attachment>[]): PreviousTurn[] {
  const turns: PreviousTurn[] = [];
  let turn: PreviousTurn | undefined;
  let hasUser = false;
  let answered = false;
  const startTurn = (): PreviousTurn => {
    turn = { prompt: "" };
    turns.push(turn);
    hasUser = false;
    answered = false;
    return turn;
  };
  for (const message of history) {
    switch (message.role) {
      case "tool": {
        const current = !turn || answered || hasUser ? startTurn() : turn;
        current.tool_results ??= [];
        current.tool_results.push({
          name: message.name,
          output: message.output,
          tool_call_id: message.toolCallId,
        });
        break;
      }
      case "user": {
        const current = !turn || answered || hasUser ? startTurn() : turn;
        current.prompt = message.content;
        hasUser = true;
        break;
      }
      case "assistant": {
        const current = !turn || answered ? startTurn() : turn;
        answered = true;
        if (message.toolCalls && message.toolCalls.length > 0) {
          current.tool_calls = message.toolCalls.map(({ id, name, arguments: args }) => ({
            id,
            name,
            arguments: args,
          }));
        }
        break;
      }
      case "system":
        break;
    }
  }
  return turns;
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
  // Key order is part of the contract: tests and users compare this output.
  const info: Record<string, unknown> = {
    prompt: script.prompt,
    system: request.system ?? "",
    attachments: request.attachments.map((attachment) => ({
      type: attachment.type,
      path: attachment.path ?? null,
      url: attachment.url ?? null,
    })),
    stream: request.stream,
    previous: previousTurns(request.history),
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
      const maxTokens = request.options.max_tokens;
      const full = script.raw ?? renderEcho(request, script, needsKey);
      const { text: output, cut } =
        typeof maxTokens === "number" ? firstWords(full, maxTokens) : { text: full, cut: false };
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
      yield { type: "finish", reason: cut ? "length" : script.toolCalls.length > 0 ? "tool-calls" : "stop" };
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
