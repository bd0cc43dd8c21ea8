/** `tokens`: the gateway tokens HTTP clients authenticate with. */
import type { GatewayToken } from "@switchboard/hub";
import type { Command } from "commander";
import { type CliContext, CliError } from "../context.ts";

const UNITS_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `30d`, `12h`, `2w` → that long from now. */
export function parseExpiry(text: string, now = Date.now()): Date {
  const match = /^(\d+)([mhdw])$/.exec(text.trim());
  if (!match || Number(match[1]) === 0) {
    throw new CliError(`--expires takes a duration such as 12h, 30d or 2w (got "${text}").`);
  }
  return new Date(now + Number(match[1]) * (UNITS_MS[match[2] as string] as number));
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function statusOf(token: GatewayToken, now: number): string {
  if (token.revokedAt) return "revoked";
  if (token.expiresAt && token.expiresAt.getTime() <= now) return "expired";
  return "active";
}

function when(date: Date | undefined): string {
  return date ? date.toISOString().replace(/\.\d{3}Z$/, "Z") : "-";
}

export function registerTokenCommands(program: Command, context: CliContext): void {
  const { io } = context;
  const tokens = program.command("tokens").description("Gateway tokens for `switchboard serve` clients");

  tokens
    .command("create")
    .description("Create a token; its value is printed once")
    .argument("<name>", "a name to list and revoke it by")
    .requiredOption("--actor <id>", "the actor its requests run as (budgets, allowances, usage log)")
    .option("--purpose <purpose>", "a purpose it may use (repeatable; the first is its default)", collect, [])
    .option("--expires <duration>", "stop working after 12h, 30d, 2w…")
    .action(
      async (
        name: string,
        options: { actor: string; purpose: string[]; expires?: string },
        command: Command,
      ) => {
        const expiresAt = options.expires === undefined ? undefined : parseExpiry(options.expires);
        const hub = await context.hub(command);
        const { value } = await hub.tokens.create({
          name,
          actor: options.actor,
          purposes: options.purpose,
          expiresAt,
        });
        io.stdout.write(`${value}\n`);
        io.stderr.write(
          `Token "${name}" for actor ${options.actor} created. Store its value now: it is not shown again.\n`,
        );
      },
    );

  tokens
    .command("list")
    .description("List tokens (never their values)")
    .option("--json", "print JSON")
    .action(async (options: { json?: boolean }, command: Command) => {
      const hub = await context.hub(command);
      const now = Date.now();
      const list = await hub.tokens.list();
      if (options.json) {
        io.stdout.write(
          `${JSON.stringify(
            list.map((token) => ({ ...token, status: statusOf(token, now) })),
            null,
            2,
          )}\n`,
        );
        return;
      }
      if (list.length === 0) {
        io.stdout.write(
          "No tokens. Create one with 'switchboard tokens create NAME --actor ID --purpose P'.\n",
        );
        return;
      }
      for (const token of list) {
        io.stdout.write(
          `${token.name}  actor=${token.actor}  purposes=${token.purposes.join(",") || "-"}  ${statusOf(token, now)}` +
            `  created=${when(token.createdAt)}  expires=${when(token.expiresAt)}  last-used=${when(token.lastUsedAt)}\n`,
        );
      }
    });

  tokens
    .command("revoke")
    .description("Revoke a token: requests with it get 401 (on every instance within seconds)")
    .argument("<name>")
    .action(async (name: string, _options: unknown, command: Command) => {
      const hub = await context.hub(command);
      await hub.tokens.revoke(name);
      io.stdout.write(`Token "${name}" revoked.\n`);
    });
}
