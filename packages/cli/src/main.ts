import { describeError, isSwitchboardError, scrubSecrets } from "@switchboard/core";
import { Command, CommanderError } from "commander";
import { type CliContext, createContext, fileProblem } from "./context.ts";
import { type CliIO, outputWriteError, processIO } from "./io.ts";
import { joinOptionPairs } from "./option-pairs.ts";

/** Exit code for a command line that does not parse. */
const USAGE_ERROR = 2;

/**
 * The commands, by group. A group's module is imported only when one of its commands runs (or for
 * help, which lists them all), so a command pays only for the modules it uses.
 */
interface CommandGroup {
  commands: readonly string[];
  register: (program: Command, context: CliContext) => Promise<void>;
}

const COMMAND_GROUPS: readonly CommandGroup[] = [
  {
    commands: ["prompt"],
    register: async (program, context) =>
      (await import("./commands/prompt.ts")).registerPromptCommands(program, context),
  },
  {
    commands: ["models", "purposes"],
    register: async (program, context) =>
      (await import("./commands/models.ts")).registerModelCommands(program, context),
  },
  {
    commands: ["keys", "secrets"],
    register: async (program, context) =>
      (await import("./commands/keys.ts")).registerKeyCommands(program, context),
  },
  {
    commands: ["logs", "usage", "limits", "allowance"],
    register: async (program, context) =>
      (await import("./commands/accounting.ts")).registerAccountingCommands(program, context),
  },
  {
    commands: ["enrich", "jobs", "extract", "ask"],
    register: async (program, context) =>
      (await import("./data-commands.ts")).registerDataCommands(program, context.io),
  },
  {
    commands: ["serve"],
    register: async (program, context) =>
      (await import("./commands/serve.ts")).registerServeCommands(program, context),
  },
  {
    commands: ["tokens"],
    register: async (program, context) =>
      (await import("./commands/tokens.ts")).registerTokenCommands(program, context),
  },
  {
    commands: ["login-link"],
    register: async (program, context) =>
      (await import("./commands/login-link.ts")).registerLoginLinkCommand(program, context),
  },
];

/** The command word of a command line: the first word that is neither an option nor `--config`'s value. */
function commandWord(argv: readonly string[]): string | undefined {
  for (let index = 0; index < argv.length; index++) {
    const word = argv[index] as string;
    if (word === "--config") index++;
    else if (!word.startsWith("-")) return word;
  }
  return undefined;
}

/** The groups a command line needs: its command's group, or all of them for help and unknown commands. */
function groupsFor(argv: readonly string[]): readonly CommandGroup[] {
  const word = commandWord(argv);
  const group = COMMAND_GROUPS.find((candidate) => word !== undefined && candidate.commands.includes(word));
  return group ? [group] : COMMAND_GROUPS;
}

/**
 * One line, no stack, no secret: how every failure reaches the terminal. A message that quotes
 * another one ending in a full stop (an upstream's, a cause's) and adds its own would end in "..".
 */
export function describeFailure(error: unknown): string {
  return scrubSecrets(describeError(error))
    .replace(/\s*\n\s*/g, " ")
    .trim()
    .replace(/(?<!\.)\.\.$/, ".");
}

/** Runs the CLI; returns the exit code. All I/O goes through `io`, so tests run it in-process. */
export async function main(argv: readonly string[], io: CliIO = processIO()): Promise<number> {
  const context = createContext(io);
  const program = new Command("switchboard")
    .description("Govern how software uses LLMs: models by purpose, keys, hooks, usage.")
    .option("--config <file>", "configuration file (default: ./switchboard.yaml or $SWITCHBOARD_CONFIG)")
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(scrubSecrets(text)),
    })
    .showHelpAfterError(false);
  for (const group of groupsFor(argv)) await group.register(program, context);

  // Warnings print as one line each. Those raised while the hub closes are held back: they
  // describe the same failure that closing reports, which then prints once, as the error.
  const shown = new Set<string>();
  const heldBack: string[] = [];
  let closing = false;
  const onWarning = (warning: Error) => {
    const line = describeFailure(warning);
    if (closing) heldBack.push(line);
    else if (!shown.has(line)) {
      shown.add(line);
      io.stderr.write(`Warning: ${line}\n`);
    }
  };
  process.on("warning", onWarning);

  const failures: unknown[] = [];
  let code = 0;
  try {
    await program.parseAsync(joinOptionPairs(argv), { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; every other parse failure is a usage error.
      code = error.exitCode === 0 ? 0 : USAGE_ERROR;
    } else if (!(io.outputClosed?.aborted && isSwitchboardError(error, "ABORTED"))) {
      // A prompt stopped because its output closed is reported as that (below), not as an abort.
      failures.push(error);
    }
  }
  closing = true;
  try {
    // Also after a failure or a closed pipe: closing writes the usage rows.
    await context.closeHub();
  } catch (error) {
    failures.push(error);
  }
  // Warnings are delivered on a later tick; let those raised while closing arrive.
  await new Promise((resolve) => setImmediate(resolve));
  process.removeListener("warning", onWarning);
  const writeError = outputWriteError(io);
  if (writeError !== undefined)
    failures.unshift(new Error(`Cannot write the output: ${fileProblem(writeError)}.`));

  const errors = [...new Set(failures.map(describeFailure))];
  for (const line of new Set(heldBack)) {
    if (!shown.has(line) && !errors.some((error) => line.includes(error)))
      io.stderr.write(`Warning: ${line}\n`);
  }
  for (const line of errors) io.stderr.write(`Error: ${line}\n`);
  return errors.length > 0 ? 1 : code;
}

/**
 * The `switchboard` executable: `main` on the process's own streams, with the process-level
 * failures (an error nothing caught) also reduced to one `Error:` line and exit 1.
 */
export async function runCli(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  // Node's own printer adds the pid and a hint line; `main` prints each warning as one line.
  process.removeAllListeners("warning");
  const crash = (error: unknown) => {
    process.stderr.write(`Error: ${describeFailure(error)}\n`);
    process.exit(1);
  };
  process.on("uncaughtException", crash);
  process.on("unhandledRejection", crash);
  process.exitCode = await main(argv);
}
