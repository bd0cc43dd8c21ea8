/** `prompt`: send one prompt through the hub and stream the reply. */
import { readFileSync } from "node:fs";
import type { AttachmentInput } from "@switchboard/core";
import type { Command } from "commander";
import { type CliContext, CliError, fileProblem } from "../context.ts";
import { readAll } from "../io.ts";
import { OPTION_SEPARATOR } from "../option-pairs.ts";

/** Option values arrive as text: take JSON when it parses (numbers, booleans, lists), else the text. */
function parseOptionValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function toAttachment(value: string): AttachmentInput {
  return /^https?:\/\//.test(value) ? { url: value } : { path: value };
}

const SCHEMA_HINT = "Pass a JSON object, or the path of a file holding one.";

function readSchema(value: string): Record<string, unknown> {
  const inline = value.trim().startsWith("{");
  let text = value;
  if (!inline) {
    try {
      text = readFileSync(value, "utf8");
    } catch (error) {
      throw new CliError(`--schema: cannot read the file ${value} (${fileProblem(error)}). ${SCHEMA_HINT}`);
    }
  }
  try {
    const schema: unknown = JSON.parse(text);
    if (schema && typeof schema === "object" && !Array.isArray(schema))
      return schema as Record<string, unknown>;
  } catch {
    // Reported below with the fix.
  }
  const source = inline ? `got ${value.slice(0, 40)}` : `the file ${value} holds no JSON object`;
  throw new CliError(`--schema must be a JSON object or the path of a file holding one (${source}).`);
}

interface PromptCommandOptions {
  model?: string;
  purpose?: string;
  system?: string;
  option?: string[];
  key?: string;
  stream: boolean;
  usage?: boolean;
  attachment?: string[];
  schema?: string;
}

export function registerPromptCommands(program: Command, context: CliContext): void {
  const { io } = context;
  program
    .command("prompt")
    .description("Send a prompt and stream the reply (reads stdin when no TEXT is given)")
    .argument("[text]", "the prompt")
    .option("-m, --model <model>", "model id or alias")
    .option("--purpose <purpose>", "route by purpose")
    .option("-s, --system <system>", "system prompt")
    .option("-o, --option <key value>", "model option (repeatable): -o temperature 0.5", collect)
    .option("--key <key>", "API key to use for this prompt")
    .option("--no-stream", "wait for the whole reply instead of streaming")
    .option("-u, --usage", "print token usage to stderr")
    .option("-a, --attachment <path-or-url>", "attach a file or URL (repeatable)", collect)
    .option("--schema <json-or-file>", "JSON schema the reply must follow")
    .action(async (text: string | undefined, options: PromptCommandOptions, command: Command) => {
      const schema = options.schema === undefined ? undefined : readSchema(options.schema);
      const modelOptions: Record<string, unknown> = {};
      for (const pair of options.option ?? []) {
        const [name, value] = pair.split(OPTION_SEPARATOR);
        if (value === undefined) throw new CliError("-o needs a name and a value, e.g. -o temperature 0.5");
        modelOptions[name as string] = parseOptionValue(value);
      }
      const prompt = text ?? (await readAll(io.stdin));
      if (!prompt.trim()) throw new CliError("No prompt given: pass TEXT or pipe it on stdin.");
      const hub = await context.hub(command);
      const model = await hub.model({ model: options.model, purpose: options.purpose });
      const response = model.prompt(prompt, {
        ...(options.system !== undefined ? { system: options.system } : {}),
        ...(options.key ? { key: options.key } : {}),
        ...(schema ? { schema } : {}),
        // Nobody reads the rest once stdout is gone: stop the model (what it delivered is still logged).
        ...(io.outputClosed ? { signal: io.outputClosed } : {}),
        attachments: (options.attachment ?? []).map(toAttachment),
        options: modelOptions,
        stream: options.stream,
      });
      let last = "";
      for await (const chunk of response) {
        io.stdout.write(chunk);
        last = chunk;
      }
      if (!last.endsWith("\n")) io.stdout.write("\n");
      if (options.usage) {
        const usage = await response.usage();
        const parts = [`${usage.input ?? "unknown"} input`, `${usage.output ?? "unknown"} output`];
        if (usage.cachedInput !== undefined) parts.push(`${usage.cachedInput} cached`);
        io.stderr.write(`Token usage: ${parts.join(", ")}\n`);
      }
    });
}
