/** The streams the CLI talks through, so tests can run it in-process. */
export interface CliIO {
  stdin: AsyncIterable<Uint8Array | string> & { isTTY?: boolean };
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  env: NodeJS.ProcessEnv;
}

export function processIO(): CliIO {
  return { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env };
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
