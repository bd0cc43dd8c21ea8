/** The streams the CLI talks through, so tests can run it in-process. */
export interface CliIO {
  stdin: AsyncIterable<Uint8Array | string> & { isTTY?: boolean };
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  env: NodeJS.ProcessEnv;
  /**
   * Aborted when stdout can no longer be written (its reader went away: `switchboard … | head`);
   * the reason is the write error. A running prompt stops, and the hub still closes.
   */
  outputClosed?: AbortSignal;
}

/** The process's own streams. A closed stdout stops the output instead of killing the process. */
export function processIO(): CliIO {
  const closed = new AbortController();
  process.stdout.on("error", (error) => {
    if (!closed.signal.aborted) closed.abort(error);
  });
  return {
    stdin: process.stdin,
    stdout: {
      write: (text: string) => {
        if (!closed.signal.aborted) process.stdout.write(text);
      },
    },
    stderr: process.stderr,
    env: process.env,
    outputClosed: closed.signal,
  };
}

/**
 * Why stdout stopped taking output, unless its reader closed it (EPIPE), which is the reader's
 * choice, not a failure.
 */
export function outputWriteError(io: CliIO): unknown {
  if (!io.outputClosed?.aborted) return undefined;
  const reason: unknown = io.outputClosed.reason;
  return (reason as { code?: unknown } | undefined)?.code === "EPIPE" ? undefined : reason;
}

/** Reads all of stdin; an interactive terminal with nothing piped reads as empty. */
export async function readAll(stdin: CliIO["stdin"]): Promise<string> {
  if (stdin.isTTY) return "";
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of stdin)
    text += typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true });
  return text + decoder.decode();
}
