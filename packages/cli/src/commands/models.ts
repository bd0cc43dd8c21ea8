/** `models` and `purposes`: what the configuration allows, in routing order. */
import type { Command } from "commander";
import type { CliContext } from "../context.ts";

export function registerModelCommands(program: Command, context: CliContext): void {
  const { io } = context;
  program
    .command("models")
    .description("List the models available (one id a line)")
    .option("--purpose <purpose>", "only the models allowed for this purpose")
    .option("--json", "print JSON objects")
    .action(async (options: { purpose?: string; json?: boolean }, command: Command) => {
      const hub = await context.hub(command);
      const models = await hub.models({ purpose: options.purpose });
      if (options.json) io.stdout.write(`${JSON.stringify(models, null, 2)}\n`);
      else for (const model of models) io.stdout.write(`${model.id}\n`);
    });

  program
    .command("purposes")
    .description("List purposes with their effective model and allowlist")
    .option("--json", "print JSON")
    .action(async (options: { json?: boolean }, command: Command) => {
      const hub = await context.hub(command);
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
}
