/** `logs`, `usage`, `limits` and `allowance`: views over the usage log and the budgets. */
import type { Command } from "commander";
import { addAccountingCommands } from "../accounting-commands.ts";
import type { CliContext } from "../context.ts";

export function registerAccountingCommands(program: Command, context: CliContext): void {
  addAccountingCommands(program, context.io, (command) => context.hub(command));
}
