/** `keys` (the keys file) and `secrets` (named secrets, encrypted in the database). */
import { KeyStore, userDirectory } from "@switchboard/core";
import type { Command } from "commander";
import { type CliContext, CliError } from "../context.ts";
import { readAll } from "../io.ts";

export function registerKeyCommands(program: Command, context: CliContext): void {
  const { io } = context;
  const keyStore = () => new KeyStore(`${userDirectory(io.env)}/keys.json`);

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
    .action(async (name: string, options: { note?: string }, command: Command) => {
      const value = (await readAll(io.stdin)).trim();
      if (!value)
        throw new CliError(
          `No value on stdin: pipe it in, e.g. echo "$VALUE" | switchboard secrets set ${name}`,
        );
      const hub = await context.hub(command);
      const { version } = await hub.secrets.set(name, value, options.note ? { note: options.note } : {});
      io.stderr.write(`Stored secret ${name} (version ${version}).\n`);
    });
  secrets
    .command("list")
    .description("List secrets and where each is set (values are never shown)")
    .option("--json", "print JSON")
    .action(async (options: { json?: boolean }, command: Command) => {
      const listed = await (await context.hub(command)).secrets.list();
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
  secrets
    .command("get")
    .description("Print a secret's value (the only command that shows one)")
    .argument("<name>")
    .action(async (name: string, _options, command: Command) => {
      const value = await (await context.hub(command)).secrets.get(name);
      if (value === undefined)
        throw new CliError(`Secret ${name} is not set; store one with 'switchboard secrets set ${name}'.`);
      io.stdout.write(`${value}\n`);
    });
  secrets
    .command("generate-key")
    .description("Print a new SWITCHBOARD_SECRETS_KEY")
    .action(async () => {
      const { generateEncryptionKey } = await import("@switchboard/hub");
      io.stdout.write(`${generateEncryptionKey()}\n`);
    });
}
