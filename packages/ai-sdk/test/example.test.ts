/** The example in examples/ai-sdk.ts runs as a user would run it: a fresh directory, no config, no keys. */
import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { openStore } from "@switchboard/store";
import { expect, it } from "vitest";

const EXAMPLE = fileURLToPath(new URL("../../../examples/ai-sdk.ts", import.meta.url));

it("runs examples/ai-sdk.ts on the embedded default and logs both calls for their actors", async () => {
  const home = mkdtempSync(join(tmpdir(), "switchboard-example-"));
  const { stdout } = await promisify(execFile)(process.execPath, [EXAMPLE], {
    cwd: home,
    env: { PATH: process.env.PATH, SWITCHBOARD_USER_PATH: home },
  });
  expect(stdout).toContain('"prompt": "Summarise this row: Ada Lovelace, 1815, mathematician"');
  expect(stdout).toContain("answered by echo for ada, cost $0");
  expect(stdout).toContain("streamed for grace");
  const store = await openStore(`sqlite:${join(home, "switchboard.db")}`);
  try {
    const rows = await store.listUsage();
    expect(rows.map((row) => [row.actorId, row.purpose, row.modelAnswered]).sort()).toEqual([
      ["ada", "enrichments", "echo"],
      ["grace", "enrichments", "echo"],
    ]);
  } finally {
    await store.close();
  }
});
