/**
 * The AI SDK's call settings onto Switchboard prompt options. Each setting maps onto the option
 * the model declares for it (`topP` → `top_p`, `stopSequences` → `stop` or `stop_sequences`…);
 * one the model has no option for becomes an AI SDK warning rather than a silent drop.
 */
import type { LanguageModelV4CallOptions, SharedV4Warning } from "@ai-sdk/provider";
import type { JsonSchema, Tool } from "@switchboard/core";

/** What the mapping needs to know of the model that will answer. */
export interface ModelTraits {
  id: string;
  optionNames: readonly string[];
  capabilities: { tools: boolean; schema: boolean };
}

type SettingName =
  | "temperature"
  | "topP"
  | "topK"
  | "presencePenalty"
  | "frequencyPenalty"
  | "seed"
  | "stopSequences"
  | "reasoning";

/** Each setting and the option names models use for it, in order of preference. */
const SETTING_OPTIONS: readonly (readonly [SettingName, readonly string[]])[] = [
  ["temperature", ["temperature"]],
  ["topP", ["top_p"]],
  ["topK", ["top_k"]],
  ["presencePenalty", ["presence_penalty"]],
  ["frequencyPenalty", ["frequency_penalty"]],
  ["seed", ["seed"]],
  ["stopSequences", ["stop", "stop_sequences"]],
  ["reasoning", ["reasoning_effort"]],
];

export interface MappedCall {
  options: Record<string, unknown>;
  tools: Tool[];
  schema: JsonSchema | undefined;
}

/**
 * Maps settings, tools and the response format, adding a warning for each one the model cannot
 * honour. `extraOptions` (from `providerOptions.switchboard.options`) are model options given
 * by name; the model validates them like any prompt's.
 */
export function mapCallOptions(
  call: LanguageModelV4CallOptions,
  model: ModelTraits,
  extraOptions: Record<string, unknown> | undefined,
  warnings: SharedV4Warning[],
): MappedCall {
  const options: Record<string, unknown> = {};
  if (call.maxOutputTokens !== undefined) options.max_tokens = call.maxOutputTokens;
  for (const [setting, candidates] of SETTING_OPTIONS) {
    const value = call[setting];
    // "provider-default" asks for nothing.
    if (value === undefined || value === "provider-default") continue;
    const option = candidates.find((name) => model.optionNames.includes(name));
    if (option === undefined) {
      warnings.push({
        type: "unsupported",
        feature: setting,
        details: `Model ${model.id} has no option for ${setting}; it was not sent.`,
      });
    } else {
      options[option] = value;
    }
  }
  if (extraOptions) Object.assign(options, extraOptions);

  // The SDK adds its own user-agent to every call; only headers the caller set are worth a warning.
  const headers = Object.entries(call.headers ?? {}).filter(
    ([name, value]) => value !== undefined && name.toLowerCase() !== "user-agent",
  );
  if (headers.length > 0) {
    warnings.push({
      type: "unsupported",
      feature: "headers",
      details: `Switchboard sends the headers its configuration gives each provider; per-call headers (${headers.map(([name]) => name).join(", ")}) were not sent.`,
    });
  }
  if (call.includeRawChunks) {
    warnings.push({
      type: "unsupported",
      feature: "includeRawChunks",
      details: "Switchboard streams typed parts, not the provider's raw chunks.",
    });
  }

  return {
    options,
    tools: mapTools(call, model, warnings),
    schema: mapResponseFormat(call, model, warnings),
  };
}

/** Function tools become tool definitions without `execute`: the AI SDK runs the tool loop itself. */
function mapTools(call: LanguageModelV4CallOptions, model: ModelTraits, warnings: SharedV4Warning[]): Tool[] {
  const choice = call.toolChoice;
  // With "none" the model must not call tools: it is not offered any.
  if (!call.tools || call.tools.length === 0 || choice?.type === "none") return [];
  const tools: Tool[] = [];
  for (const tool of call.tools) {
    if (tool.type === "provider") {
      warnings.push({
        type: "unsupported",
        feature: `provider-defined tool ${tool.name}`,
        details: "Switchboard offers function tools only; this tool was not sent.",
      });
      continue;
    }
    tools.push({
      name: tool.name,
      ...(tool.description === undefined ? {} : { description: tool.description }),
      inputSchema: { ...tool.inputSchema },
    });
  }
  if (choice?.type === "required" || choice?.type === "tool") {
    warnings.push({
      type: "unsupported",
      feature: "toolChoice",
      details: `Switchboard cannot force a tool call (toolChoice "${choice.type}"); model ${model.id} chooses whether to call one.`,
    });
  }
  return tools;
}

function mapResponseFormat(
  call: LanguageModelV4CallOptions,
  model: ModelTraits,
  warnings: SharedV4Warning[],
): JsonSchema | undefined {
  const format = call.responseFormat;
  if (format?.type !== "json") return undefined;
  if (format.schema === undefined) {
    warnings.push({
      type: "unsupported",
      feature: "responseFormat",
      details:
        "Switchboard enforces JSON output through a schema; without one the model answers in free text.",
    });
    return undefined;
  }
  if (!model.capabilities.schema) {
    warnings.push({
      type: "unsupported",
      feature: "responseFormat",
      details: `Model ${model.id} cannot follow a JSON schema; the schema was not sent, so its answer may not match it.`,
    });
    return undefined;
  }
  if (format.name !== undefined || format.description !== undefined) {
    warnings.push({
      type: "unsupported",
      feature: "responseFormat name and description",
      details: "Switchboard sends the schema alone; put guidance in the schema's descriptions or the prompt.",
    });
  }
  return { ...format.schema };
}
