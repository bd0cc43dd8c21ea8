/**
 * Runs the app on a port: `switchboard serve`, tests and benchmarks start it the same way.
 * Closing stops accepting connections, lets in-flight requests finish (bounded), then aborts the
 * rest so their upstream calls end and are charged for what was delivered.
 */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { SwitchboardError } from "@switchboard/core";
import { type JobRun, resumeInterruptedJobs } from "@switchboard/data";
import { type AppOptions, createApp, type SwitchboardApp } from "./app.ts";
import { InFlightRequests } from "./requests.ts";

export interface ServerOptions extends Omit<AppOptions, "inFlight"> {
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1: reachable from this machine only unless told otherwise. */
  host?: string;
}

export interface RunningServer {
  readonly app: SwitchboardApp;
  /** `http://host:port`, with the port actually bound. */
  readonly url: string;
  readonly port: number;
  readonly inFlight: InFlightRequests;
  /** Enrichment jobs of the served databases whose process had died, running again in this one. */
  readonly resumedJobs: readonly JobRun[];
  /**
   * Stops accepting requests, waits up to `drainMs` (default 10 s) for those in flight, aborts
   * what is left, and resolves once every connection is closed. The hub stays open: its owner
   * closes it (flushing the usage log) afterwards.
   */
  close(options?: { drainMs?: number }): Promise<void>;
}

export const DEFAULT_PORT = 8080;
export const DEFAULT_HOST = "127.0.0.1";
const DEFAULT_DRAIN_MS = 10_000;
/** After aborting, how long aborted streams get to write their error event and end. */
const ABORT_GRACE_MS = 1_000;

/** Why the server could not listen, said with the fix. */
function listenError(error: NodeJS.ErrnoException, host: string, port: number | undefined): Error {
  const where = `${host}:${port ?? DEFAULT_PORT}`;
  if (error.code === "EADDRINUSE") {
    return new SwitchboardError(
      "INVALID_INPUT",
      `Cannot listen on ${where}: the port is already in use (another switchboard serve?). Stop that server or choose another port with --port.`,
      { host, port },
    );
  }
  if (error.code === "EACCES" || error.code === "EADDRNOTAVAIL") {
    return new SwitchboardError(
      "INVALID_INPUT",
      `Cannot listen on ${where} (${error.code}): use a port above 1023, or an address of this machine with --host.`,
      { host, port },
    );
  }
  return error;
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const inFlight = new InFlightRequests();
  const app = createApp({ ...options, inFlight });
  const host = options.host ?? DEFAULT_HOST;
  const server = await new Promise<Server>((resolve, reject) => {
    const started = serve({ fetch: app.fetch, port: options.port ?? DEFAULT_PORT, hostname: host }, () =>
      resolve(started as Server),
    ) as Server;
    started.once("error", (error: NodeJS.ErrnoException) => reject(listenError(error, host, options.port)));
  });
  // Keep-alive connections of SDK clients would otherwise hold the process open after close().
  server.keepAliveTimeout = 5_000;
  const { port } = server.address() as AddressInfo;
  const shownHost = host.includes(":") ? `[${host}]` : host;
  // A job interrupted by a crash or kill goes on where it stopped, under the actor that ran it.
  const resumedJobs: JobRun[] = [];
  for (const database of options.databases ?? []) {
    resumedJobs.push(...(await resumeInterruptedJobs(database, { hub: options.hub })).resumed);
  }
  let closing: Promise<void> | undefined;
  return {
    app,
    url: `http://${shownHost}:${port}`,
    port,
    inFlight,
    resumedJobs,
    close({ drainMs = DEFAULT_DRAIN_MS } = {}) {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        if (!(await inFlight.idle(drainMs))) {
          inFlight.abortAll("The server is shutting down.");
          await inFlight.idle(ABORT_GRACE_MS);
        }
        server.closeAllConnections();
        await closed;
      })();
      return closing;
    },
  };
}
