/**
 * The child process of exit-writer.ts: reads `{url, options, rows}` as JSON on stdin, inserts the
 * rows into that storage, and exits 0; on failure prints one line on stderr and exits 1.
 */
import { readFileSync } from "node:fs";
import type { ExitWriteRequest } from "./exit-writer.ts";
import { openStore } from "./index.ts";

try {
  const request = JSON.parse(readFileSync(0, "utf8")) as ExitWriteRequest;
  const store = await openStore(request.url, request.options);
  try {
    await store.insertUsage(
      request.rows.map(({ costNanocents, ...row }) =>
        costNanocents === undefined ? row : { ...row, costNanocents: BigInt(costNanocents) },
      ),
    );
  } finally {
    await store.close();
  }
} catch (error) {
  process.stderr.write(
    `${(error instanceof Error ? error.message : String(error)).replace(/\s*\n\s*/g, " ")}\n`,
  );
  process.exitCode = 1;
}
