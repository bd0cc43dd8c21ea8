/**
 * One guard per process for data written behind the caller's back (usage rows, settlements), so
 * it is stored however the process ends. It watches the process only while a writer has something
 * waiting:
 * - `process.exit()` and uncaught exceptions: the `exit` event writes it before the process ends
 *   (synchronously: each writer knows how), leaving Node's own exit and crash behaviour untouched;
 * - SIGTERM and SIGINT: written (in-thread, or awaited on an asynchronous store, bounded, then
 *   synchronously), then the signal is raised again, so the process ends as it would have —
 *   unless the application listens to that signal itself, which then decides;
 * - an emptied event loop (`beforeExit`): flushed.
 * With nothing waiting, no listener is installed. Only SIGKILL (or a write that fails) loses data,
 * and a write that fails says what on stderr.
 */
import { writeSync } from "node:fs";

/** Something that holds data not yet stored. */
export interface PendingWrites {
  /** How many items wait (0 when everything is stored). */
  readonly pending: number;
  /** Whether the write at exit happens in this thread, so a signal need not await anything. */
  readonly writesInThread: boolean;
  /** Whether the last write failed (items wait for a retry). */
  readonly failing: boolean;
  /** Writes everything now (the asynchronous way); rejects when it could not. */
  flush(): Promise<void>;
  /** Writes everything before returning; how many items could not be written. */
  writeAtExit(): number;
  /** Names `count` lost items for the message on stderr, e.g. "3 usage rows were". */
  describeLost(count: number): string;
}

/** How long a signal waits for an asynchronous store before the process ends. */
const FLUSH_BEFORE_EXIT_MS = 10_000;

class ExitGuard {
  readonly #writers = new Set<PendingWrites>();
  #installed = false;
  #exiting = false;

  watch(writer: PendingWrites): void {
    if (this.#writers.has(writer)) return;
    this.#writers.add(writer);
    if (!this.#installed) this.#install();
  }

  /** A writer stored everything it had. */
  settled(writer: PendingWrites): void {
    if (writer.pending > 0) return;
    this.forget(writer);
  }

  forget(writer: PendingWrites): void {
    this.#writers.delete(writer);
    if (this.#writers.size === 0 && !this.#exiting) this.#uninstall();
  }

  readonly #onExit = (): void => {
    this.#writeAll("could not be stored before the process exited");
  };

  /** One more try for a writer whose last write failed happens at `exit`: no retry loop here. */
  readonly #onBeforeExit = (): void => {
    for (const writer of this.#writers) if (!writer.failing) writer.flush().catch(() => {});
  };

  readonly #onSignal = (signal: NodeJS.Signals): void => {
    this.#exiting = true;
    void this.#saveAll().finally(() => {
      this.#exiting = false;
      // Our listener is the only one: end the process the way the signal would have.
      if (process.listenerCount(signal) === 1) {
        this.#uninstall();
        process.kill(process.pid, signal);
      } else if (this.#writers.size === 0) this.#uninstall();
    });
  };

  /** In-thread where the writer allows; else awaited (bounded), then whatever is left synchronously. */
  async #saveAll(): Promise<void> {
    const waiting: Promise<void>[] = [];
    for (const writer of this.#writers) {
      if (writer.writesInThread) writer.writeAtExit();
      else waiting.push(writer.flush().catch(() => {}));
    }
    if (waiting.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(waiting),
        new Promise((resolve) => {
          timer = setTimeout(resolve, FLUSH_BEFORE_EXIT_MS);
        }),
      ]);
      clearTimeout(timer);
    }
    this.#writeAll("could not be stored before the process ended");
  }

  /** At the very end of a process only a synchronous write to stderr is sure to appear. */
  #writeAll(why: string): void {
    for (const writer of this.#writers) {
      const lost = writer.writeAtExit();
      if (lost > 0) writeSync(2, `Switchboard: ${writer.describeLost(lost)} lost: ${why}.\n`);
    }
  }

  #install(): void {
    this.#installed = true;
    process.on("exit", this.#onExit);
    process.on("beforeExit", this.#onBeforeExit);
    process.on("SIGTERM", this.#onSignal);
    process.on("SIGINT", this.#onSignal);
  }

  #uninstall(): void {
    if (!this.#installed) return;
    this.#installed = false;
    process.off("exit", this.#onExit);
    process.off("beforeExit", this.#onBeforeExit);
    process.off("SIGTERM", this.#onSignal);
    process.off("SIGINT", this.#onSignal);
  }
}

/**
 * The process's one guard. Kept on globalThis under a registered symbol, so that two copies of
 * this package in one process still share it (and one of them cannot re-raise a signal the
 * other still has to handle).
 */
const GUARD = Symbol.for("switchboard.exitGuard");
const holder = globalThis as Record<symbol, ExitGuard | undefined>;
holder[GUARD] ??= new ExitGuard();
export const exitGuard: ExitGuard = holder[GUARD];
