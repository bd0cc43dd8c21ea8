/**
 * What every command group gets: the I/O streams and the hub, opened on first use. Heavy modules
 * (the hub, and through it the store and the providers) are imported only when a command asks for
 * the hub, so commands that do not need it start fast.
 */
import type { Hub } from "@switchboard/hub";
import type { Command } from "commander";
import type { CliIO } from "./io.ts";

/** Marks errors whose message is already a complete, user-facing line. */
export class CliError extends Error {}

export interface CliContext {
  readonly io: CliIO;
  /**
   * The hub for the command's global options (`--config`); opened once, closed when the command
   * ends. A long-running command (`serve`) asks for the SQLite usage writer thread.
   */
  hub(command: Command, options?: { longRunning?: boolean }): Promise<Hub>;
}

export interface GlobalOptions {
  config?: string;
}

/** A context whose hub the caller closes with `closeHub` once the command has ended. */
export function createContext(io: CliIO): CliContext & { closeHub(): Promise<void> } {
  let opening: Promise<Hub> | undefined;
  return {
    io,
    hub(command, options = {}) {
      opening ??= (async () => {
        const { openHub } = await import("@switchboard/hub");
        const { config } = command.optsWithGlobals<GlobalOptions>();
        return openHub({
          ...(config ? { configPath: config } : {}),
          env: io.env,
          // One command writes a few rows at most: a writer thread would cost more than it saves.
          storeOptions: { usageWriterThread: options.longRunning === true },
        });
      })();
      return opening;
    },
    /** Closes the hub if one opened; rejects when it could not finish its writes (rows not written). */
    async closeHub() {
      const hub = await opening?.catch(() => undefined); // an open that failed was reported by the command
      await hub?.close();
    },
  };
}

/** "ENOENT: no such file or directory, open 'x'" → "no such file or directory". */
export function fileProblem(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return /^[A-Z]+: ([^,]+)/.exec(message)?.[1] ?? message;
}
