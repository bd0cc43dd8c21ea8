/**
 * The AI SDK's prompt onto a Switchboard prompt with explicit history: leading system messages
 * become the system prompt, the last user message (or the trailing tool results, in a tool loop)
 * becomes the prompt, and everything between is replayed as history in order.
 */
import {
  InvalidPromptError,
  type LanguageModelV4FilePart,
  type LanguageModelV4Message,
  type LanguageModelV4Prompt,
  type LanguageModelV4ToolResultPart,
  type SharedV4Warning,
  UnsupportedFunctionalityError,
} from "@ai-sdk/provider";
import type {
  AttachmentInput,
  HistoryAssistantMessage,
  HistoryMessage,
  HistoryToolMessage,
  ToolCall,
  ToolResult,
} from "@switchboard/core";
import { isRecord } from "@switchboard/core";

export interface ConvertedPrompt {
  prompt: string;
  system: string | undefined;
  attachments: AttachmentInput[];
  history: HistoryMessage[];
  toolResults: ToolResult[];
}

type Message<R extends LanguageModelV4Message["role"]> = Extract<LanguageModelV4Message, { role: R }>;

/** Collects one warning per unsupported feature, however often the prompt uses it. */
class Warnings {
  readonly #seen = new Set<string>();
  readonly #warnings: SharedV4Warning[];
  constructor(warnings: SharedV4Warning[]) {
    this.#warnings = warnings;
  }
  unsupported(feature: string, details: string): void {
    if (this.#seen.has(feature)) return;
    this.#seen.add(feature);
    this.#warnings.push({ type: "unsupported", feature, details });
  }
}

export function convertPrompt(
  prompt: LanguageModelV4Prompt,
  warningList: SharedV4Warning[],
): ConvertedPrompt {
  const warnings = new Warnings(warningList);
  const systems: string[] = [];
  let start = 0;
  while (start < prompt.length && prompt[start]?.role === "system") {
    systems.push((prompt[start] as Message<"system">).content);
    start++;
  }
  // System messages after the last turn cannot be replayed after it: they join the system prompt.
  let end = prompt.length;
  const trailingSystems: string[] = [];
  while (end > start && prompt[end - 1]?.role === "system") {
    trailingSystems.unshift((prompt[end - 1] as Message<"system">).content);
    end--;
  }
  systems.push(...trailingSystems);
  const system = systems.length > 0 ? systems.join("\n\n") : undefined;

  const last = prompt[end - 1];
  if (end <= start || !last) {
    throw new InvalidPromptError({ prompt, message: "The prompt needs a user message." });
  }
  if (last.role === "assistant") {
    throw new UnsupportedFunctionalityError({
      functionality: "a prompt that ends with an assistant message (prefill)",
      message:
        "Switchboard cannot continue an assistant message: end the prompt with a user message or tool results.",
    });
  }

  let historyEnd = end - 1;
  let current: Pick<ConvertedPrompt, "prompt" | "attachments" | "toolResults">;
  if (last.role === "user") {
    const { content, attachments } = userContent(last, warnings);
    current = { prompt: content, attachments, toolResults: [] };
  } else {
    // A tool loop's next step: the trailing tool results are the prompt, which is empty.
    while (historyEnd > start && prompt[historyEnd - 1]?.role === "tool") historyEnd--;
    const toolResults: ToolResult[] = [];
    for (const message of prompt.slice(historyEnd, end) as Message<"tool">[]) {
      for (const result of toolMessages(message, warnings)) {
        toolResults.push({
          toolCallId: result.toolCallId,
          name: result.name ?? "",
          output: result.output,
          ...(result.error === undefined ? {} : { error: result.error }),
        });
      }
    }
    current = { prompt: "", attachments: [], toolResults };
  }

  const history: HistoryMessage[] = [];
  for (const message of prompt.slice(start, historyEnd)) {
    switch (message.role) {
      case "system":
        history.push({ role: "system", content: message.content });
        break;
      case "user": {
        const { content, attachments } = userContent(message, warnings);
        history.push(
          attachments.length > 0 ? { role: "user", content, attachments } : { role: "user", content },
        );
        break;
      }
      case "assistant":
        history.push(assistantMessage(message, warnings));
        break;
      case "tool":
        history.push(...toolMessages(message, warnings));
        break;
    }
  }
  return { ...current, system, history };
}

function userContent(
  message: Message<"user">,
  warnings: Warnings,
): { content: string; attachments: AttachmentInput[] } {
  const texts: string[] = [];
  const attachments: AttachmentInput[] = [];
  for (const part of message.content) {
    if (part.type === "text") texts.push(part.text);
    else {
      const attachment = toAttachment(part, warnings);
      if (attachment) attachments.push(attachment);
    }
  }
  return { content: texts.join("\n"), attachments };
}

/**
 * A file part as a Switchboard attachment. A bare top-level media type (`image`) is left for
 * Switchboard to tell from the bytes; inline text becomes a text document.
 */
function toAttachment(part: LanguageModelV4FilePart, warnings: Warnings): AttachmentInput | undefined {
  const mediaType = part.mediaType.toLowerCase();
  const type = mediaType.includes("/") && !mediaType.endsWith("/*") ? mediaType : undefined;
  const typed = type === undefined ? {} : { type };
  const data = part.data;
  switch (data.type) {
    case "data":
      return {
        content: typeof data.data === "string" ? new Uint8Array(Buffer.from(data.data, "base64")) : data.data,
        ...typed,
      };
    case "url":
      return { url: data.originalUrl ?? data.url.href, ...typed };
    case "text":
      return { content: new TextEncoder().encode(data.text), type: type ?? "text/plain" };
    case "reference":
      warnings.unsupported(
        "file reference",
        "Switchboard cannot send a file uploaded to a provider; the file part was left out. Send the file's content instead.",
      );
      return undefined;
  }
}

function assistantMessage(message: Message<"assistant">, warnings: Warnings): HistoryAssistantMessage {
  const texts: string[] = [];
  const toolCalls: ToolCall[] = [];
  for (const part of message.content) {
    switch (part.type) {
      case "text":
        texts.push(part.text);
        break;
      case "tool-call":
        if (part.providerExecuted) {
          warnings.unsupported(
            "provider-executed tool call",
            "Earlier tool calls executed by a provider cannot be replayed through Switchboard and were left out.",
          );
        } else {
          toolCalls.push({ id: part.toolCallId, name: part.toolName, arguments: toolInput(part.input) });
        }
        break;
      case "tool-result":
        warnings.unsupported(
          "provider-executed tool result",
          "Earlier results of tools executed by a provider cannot be replayed through Switchboard and were left out.",
        );
        break;
      case "reasoning":
      case "reasoning-file":
        warnings.unsupported(
          "reasoning in the prompt",
          "Earlier reasoning cannot be replayed through Switchboard and was left out.",
        );
        break;
      case "file":
        warnings.unsupported(
          "assistant file",
          "Files in earlier assistant messages cannot be replayed through Switchboard and were left out.",
        );
        break;
      case "custom":
        warnings.unsupported(
          `custom part ${part.kind}`,
          "Provider-specific parts cannot be replayed through Switchboard and were left out.",
        );
        break;
    }
  }
  const content = texts.join("\n");
  return toolCalls.length > 0 ? { role: "assistant", content, toolCalls } : { role: "assistant", content };
}

/** Tool arguments are an object; the SDK gives them parsed, but may keep a string it could not parse. */
function toolInput(input: unknown): Record<string, unknown> {
  if (isRecord(input)) return input;
  if (typeof input === "string") {
    try {
      const parsed: unknown = JSON.parse(input);
      if (isRecord(parsed)) return parsed;
    } catch {
      // Reported below with the value.
    }
  }
  throw new InvalidPromptError({
    prompt: input,
    message: "A tool call's input must be a JSON object: Switchboard passes tool arguments as one.",
  });
}

function toolMessages(message: Message<"tool">, warnings: Warnings): HistoryToolMessage[] {
  const results: HistoryToolMessage[] = [];
  for (const part of message.content) {
    if (part.type === "tool-result") results.push(toolResult(part, warnings));
    else {
      warnings.unsupported(
        "tool approval response",
        "Approvals of provider-executed tools cannot be sent through Switchboard and were left out.",
      );
    }
  }
  return results;
}

function toolResult(part: LanguageModelV4ToolResultPart, warnings: Warnings): HistoryToolMessage {
  const base = { role: "tool" as const, toolCallId: part.toolCallId, name: part.toolName };
  const output = part.output;
  switch (output.type) {
    case "text":
      return { ...base, output: output.value };
    case "json":
      return { ...base, output: JSON.stringify(output.value) };
    case "error-text":
      return { ...base, output: output.value, error: output.value };
    case "error-json": {
      const text = JSON.stringify(output.value);
      return { ...base, output: text, error: text };
    }
    case "execution-denied": {
      const text = `Tool execution denied${output.reason ? `: ${output.reason}` : "."}`;
      return { ...base, output: text, error: text };
    }
    case "content": {
      const texts: string[] = [];
      for (const item of output.value) {
        if (item.type === "text") texts.push(item.text);
        else {
          warnings.unsupported(
            "files in tool results",
            "Switchboard sends tool results as text; their files and custom parts were left out.",
          );
        }
      }
      return { ...base, output: texts.join("\n") };
    }
  }
}
