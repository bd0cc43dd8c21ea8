/** `serve`: the HTTP server with the OpenAI- and Anthropic-compatible gateway. */
import { type Command, InvalidArgumentError } from "commander";
import type { CliContext } from "../context.ts";

/** How long a stop waits for requests in flight before aborting them. */
const DRAIN_MS = 10_000;

function parsePort(text: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new InvalidArgumentError("expected a port number from 0 to 65535.");
  }
  return port;
}

/** Resolves with the first SIGTERM or SIGINT; a second one calls `again` (stop waiting). */
function stopSignal(again: () => void): { stopped: Promise<NodeJS.Signals>; dispose(): void } {
  let resolveStop: (signal: NodeJS.Signals) => void = () => undefined;
  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    resolveStop = resolve;
  });
  let count = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    count += 1;
    if (count === 1) resolveStop(signal);
    else again();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  return {
    stopped,
    dispose() {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
    },
  };
}

export function registerServeCommands(program: Command, context: CliContext): void {
  const { io } = context;
  program
    .command("serve")
    .description("Run the HTTP server: an OpenAI- and Anthropic-compatible gateway that routes by purpose")
    .argument("[databases...]", "SQLite databases for the data tools")
    .option("--port <port>", "port to listen on (0 picks a free one)", parsePort, 8080)
    .option("--host <host>", "address to bind (127.0.0.1: this machine only)", "127.0.0.1")
    .option("--root", "print a one-time login link for the root actor (admin UI)")
    .action(
      async (
        databases: string[],
        options: { port: number; host: string; root?: boolean },
        command: Command,
      ) => {
        const hub = await context.hub(command, { longRunning: true });
        const { startServer } = await import("@switchboard/server");
        const server = await startServer({ hub, port: options.port, host: options.host, databases });
        let forced = false;
        const signals = stopSignal(() => {
          forced = true;
          server.inFlight.abortAll("The server was told to stop at once.");
        });
        try {
          io.stdout.write(`Switchboard is listening on ${server.url}\n`);
          for (const run of server.resumedJobs)
            io.stderr.write(`Resumed interrupted enrichment job ${run.jobId}.\n`);
          if (options.root) {
            const { loginUrl } = await import("./login-link.ts");
            const link = await hub.logins.createLink("root");
            // A wildcard address is where the server listens, not where a browser can go.
            const base = server.url.replace(/\/\/(0\.0\.0\.0|\[::\])(?=:)/, "//127.0.0.1");
            io.stdout.write(`Admin UI (one-time link for root): ${loginUrl(base, link.token)}\n`);
          }
          const signal = await signals.stopped;
          const waiting = server.inFlight.count;
          io.stderr.write(
            `${signal}: stopping${waiting > 0 ? `, finishing ${waiting} request(s) in flight (again to abort them)` : ""}.\n`,
          );
          await server.close({ drainMs: forced ? 0 : DRAIN_MS });
        } finally {
          signals.dispose();
        }
        // Returning lets the CLI close the hub, which writes every usage row, and exit 0.
      },
    );
}
