import { readFileSync } from "node:fs";
import { type AttachmentInput, describeError, KeyStore, userDirectory } from "@switchboard/core";
import { generateEncryptionKey, type Hub, openHub } from "@switchboard/hub";
import { Command, CommanderError } from "commander";
import { addAccountingCommands } from "./accounting-commands.ts";
import { registerDataCommands } from "./data-commands.ts";
import type { CliIO } from "./io.ts";
import { processIO, readAll } from "./io.ts";

/** Exit code for a command line that does not parse (DESIGN §4). */
const USAGE_ERROR = 2;

/** Marks errors whose message is already a complete, user-facing line. */
class CliError extends Error {}

/** `-o KEY VALUE` takes two words, which commander cannot express; join them before parsing. */
const OPTION_SEPARATOR = "\u0000";
function joinOptionPairs(argv: readonly string[]): string[] {
  const joined: string[] = [];
  for (let index = 0; index < argv.length; index++) {
    const word = argv[index] as string;
    if ((word === "-o" || word === "--option") && index + 2 < argv.length) {
      joined.push(word, `${argv[index + 1]}${OPTION_SEPARATOR}${argv[index + 2]}`);
      index += 2;
    } else {
      joined.push(word);
    }
  }
  return joined;
}

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

function readSchema(value: string): Record<string, unknown> {
  const text = value.trim().startsWith("{") ? value : readFileSync(value, "utf8");
  try {
    const schema: unknown = JSON.parse(text);
    if (schema && typeof schema === "object" && !Array.isArray(schema))
      return schema as Record<string, unknown>;
  } catch {
    // Reported below with the fix.
  }
  throw new CliError(
    `--schema must be a JSON object or the path of a file holding one (got ${value.slice(0, 40)}).`,
  );
}

interface GlobalOptions {
  config?: string;
}

/** Runs the CLI; returns the exit code. All I/O goes through `io`, so tests run it in-process. */
export async function main(argv: readonly string[], io: CliIO = processIO()): Promise<number> {
  const hubs: Hub[] = [];
  const hubFor = async (options: GlobalOptions): Promise<Hub> => {
    const hub = await openHub({ ...(options.config ? { configPath: options.config } : {}), env: io.env });
    hubs.push(hub);
    return hub;
  };
  const keyStore = () => new KeyStore(`${userDirectory(io.env)}/keys.json`);

  const program = new Command("switchboard")
    .description("Govern how software uses LLMs: models by purpose, keys, hooks, usage.")
    .option("--config <file>", "configuration file (default: ./switchboard.yaml or $SWITCHBOARD_CONFIG)")
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .showHelpAfterError(false);

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
    .action(async (text: string | undefined, options, command: Command) => {
      const prompt = text ?? (await readAll(io.stdin));
      if (!prompt.trim()) throw new CliError("No prompt given: pass TEXT or pipe it on stdin.");
      const modelOptions: Record<string, unknown> = {};
      for (const pair of (options.option as string[] | undefined) ?? []) {
        const [name, value] = pair.split(OPTION_SEPARATOR);
        if (value === undefined) throw new CliError(`-o needs a name and a value, e.g. -o temperature 0.5`);
        modelOptions[name as string] = parseOptionValue(value);
      }
      const hub = await hubFor(command.optsWithGlobals());
      const model = await hub.model({ model: options.model, purpose: options.purpose });
      const response = model.prompt(prompt, {
        ...(options.system !== undefined ? { system: options.system } : {}),
        ...(options.key ? { key: options.key } : {}),
        ...(options.schema ? { schema: readSchema(options.schema) } : {}),
        attachments: ((options.attachment as string[] | undefined) ?? []).map(toAttachment),
        options: modelOptions,
        stream: options.stream as boolean,
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

  program
    .command("models")
    .description("List the models available (one id a line)")
    .option("--purpose <purpose>", "only the models allowed for this purpose")
    .option("--json", "print JSON objects")
    .action(async (options, command: Command) => {
      const hub = await hubFor(command.optsWithGlobals());
      const models = await hub.models({ purpose: options.purpose });
      if (options.json) io.stdout.write(`${JSON.stringify(models, null, 2)}\n`);
      else for (const model of models) io.stdout.write(`${model.id}\n`);
    });

  program
    .command("purposes")
    .description("List purposes with their effective model and allowlist")
    .option("--json", "print JSON")
    .action(async (options, command: Command) => {
      const hub = await hubFor(command.optsWithGlobals());
      const purposes = await hub.purposes();
      if (options.json) {
        io.stdout.write(`${JSON.stringify(purposes, null, 2)}\n`);
        return;
      }
      for (const purpose of purposes) {
        const description = purpose.description ? ` — ${purpose.description}` : "";
        io.stdout.write(`${purpose.name}${description}\n  model: ${purpose.model ?? "(none)"}\n`);
        io.stdout.write(`  models: ${purpose.models.join(", ") || "(none)"}\n`);
      }
    });

  const keys = program.command("keys").description("Manage stored API keys");
  keys
    .command("set")
    .description("Store a key (value read from stdin)")
    .argument("<alias>")
    .action(async (alias: string) => {
      const value = (await readAll(io.stdin)).trim();
      if (!value)
        throw new CliError(`No key on stdin: pipe it in, e.g. echo "$KEY" | switchboard keys set ${alias}`);
      keyStore().set(alias, value);
      io.stderr.write(`Stored key for ${alias}.\n`);
    });
  keys
    .command("get")
    .description("Print a stored key")
    .argument("<alias>")
    .action((alias: string) => {
      const value = keyStore().get(alias);
      if (value === undefined)
        throw new CliError(`No key stored for ${alias}; set one with 'switchboard keys set ${alias}'.`);
      io.stdout.write(`${value}\n`);
    });
  keys
    .command("list")
    .description("List the aliases with a stored key")
    .action(() => {
      for (const alias of keyStore().aliases()) io.stdout.write(`${alias}\n`);
    });
  keys
    .command("path")
    .description("Print the path of the keys file")
    .action(() => {
      io.stdout.write(`${keyStore().path}\n`);
    });

  const secrets = program.command("secrets").description("Manage named secrets (encrypted in the database)");
  secrets
    .command("set")
    .description("Store a secret (value read from stdin)")
    .argument("<name>")
    .option("--note <note>", "a note shown in listings")
    .action(async (name: string, options, command: Command) => {
      const value = (await readAll(io.stdin)).trim();
      if (!value)
        throw new CliError(
          `No value on stdin: pipe it in, e.g. echo "$VALUE" | switchboard secrets set ${name}`,
        );
      const hub = await hubFor(command.optsWithGlobals());
      const { version } = await hub.secrets.set(name, value, { note: options.note });
      io.stderr.write(`Stored secret ${name} (version ${version}).\n`);
    });
  secrets
    .command("list")
    .description("List secrets and where each is set (values are never shown)")
    .option("--json", "print JSON")
    .action(async (options, command: Command) => {
      const hub = await hubFor(command.optsWithGlobals());
      const listed = await hub.secrets.list();
      if (options.json) {
        io.stdout.write(`${JSON.stringify(listed, null, 2)}\n`);
        return;
      }
      for (const secret of listed) {
        const where =
          secret.source === "env"
            ? `env ${secret.envVar}`
            : secret.source === "store"
              ? `stored v${secret.version}`
              : "not set";
        const about = [secret.description, secret.obtainUrl].filter(Boolean).join(" — ");
        io.stdout.write(`${secret.name}\t${where}${about ? `\t${about}` : ""}\n`);
      }
    });

  addAccountingCommands(program, io, (command) => hubFor(command.optsWithGlobals()));
  registerDataCommands(program, io);

  secrets
    .command("get")
    .description("Print a secret's value (the only command that shows one)")
    .argument("<name>")
    .action(async (name: string, _options, command: Command) => {
      const value = await (await hubFor(command.optsWithGlobals())).secrets.get(name);
      if (value === undefined)
        throw new CliError(`Secret ${name} is not set; store one with 'switchboard secrets set ${name}'.`);
      io.stdout.write(`${value}\n`);
    });
  secrets
    .command("generate-key")
    .description("Print a new SWITCHBOARD_SECRETS_KEY")
    .action(() => {
      io.stdout.write(`${generateEncryptionKey()}\n`);
    });

  try {
    await program.parseAsync(joinOptionPairs(argv), { from: "user" });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; every other parse failure is a usage error.
      return error.exitCode === 0 ? 0 : USAGE_ERROR;
    }
    io.stderr.write(`Error: ${describeError(error)}\n`);
    return 1;
  } finally {
    await Promise.all(hubs.map((hub) => hub.close()));
  }
}
