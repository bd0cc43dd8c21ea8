/** `login-link ACTOR`: a one-time link that signs ACTOR in to the admin UI of `switchboard serve`. */
import type { Command } from "commander";
import { type CliContext, CliError } from "../context.ts";

/** Where `switchboard serve` listens unless told otherwise. */
const DEFAULT_SERVER_URL = "http://127.0.0.1:8080";

/** The sign-in URL for a login link's token on the server at `base`. */
export function loginUrl(base: string, token: string): string {
  return `${base.replace(/\/+$/, "")}/-/login?token=${encodeURIComponent(token)}`;
}

export function registerLoginLinkCommand(program: Command, context: CliContext): void {
  const { io } = context;
  program
    .command("login-link")
    .description("Print a one-time admin UI login link for an actor")
    .argument("<actor>", "the actor id to sign in as (root may do everything)")
    .option("--url <url>", "the server's address as browsers reach it", DEFAULT_SERVER_URL)
    .option("--minutes <n>", "how long the link stays valid", "15")
    .action(async (actor: string, options: { url: string; minutes: string }, command: Command) => {
      const minutes = Number(options.minutes);
      if (!Number.isFinite(minutes) || minutes <= 0 || minutes > 24 * 60) {
        throw new CliError("--minutes must be a number of minutes from 1 to 1440.");
      }
      if (!URL.canParse(options.url) || !/^https?:$/.test(new URL(options.url).protocol)) {
        throw new CliError(`--url must be an http(s) address such as ${DEFAULT_SERVER_URL}.`);
      }
      const hub = await context.hub(command);
      const link = await hub.logins.createLink(actor, { ttlMs: minutes * 60_000 });
      io.stdout.write(`${loginUrl(options.url, link.token)}\n`);
      io.stderr.write(
        `Signs in as ${actor}, once, until ${link.expiresAt.toISOString().slice(0, 16).replace("T", " ")} UTC.\n`,
      );
    });
}
