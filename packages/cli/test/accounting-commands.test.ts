/**
 * `logs`, `usage`, `limits` and `allowance` as views over hub.reports: grouping fields named after
 * the grouping, chains shown as one entry, limits per actor with what is held.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { openStore } from "@switchboard/store";
import { describe, expect, it } from "vitest";
import { main } from "../src/index.ts";

async function run(argv: string[], env: Record<string, string>) {
  let stdout = "";
  let stderr = "";
  const code = await main(argv, {
    stdin: Readable.from([]),
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    env,
  });
  return { code, stdout, stderr };
}

function setup(yaml: string): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), "switchboard-cli-accounting-"));
  writeFileSync(join(dir, "switchboard.yaml"), yaml);
  return { SWITCHBOARD_USER_PATH: dir, SWITCHBOARD_CONFIG: join(dir, "switchboard.yaml") };
}

describe("accounting commands", () => {
  const env = setup(
    "default_model: echo\nusage: {log_prompts: true}\npurposes:\n  sql: {model: echo}\n" +
      "accounting: {pricing: {echo: {input: 0, output: 250}}}\n" +
      "limits:\n  each: {scope: actor, window: calendar-day, amount_usd: 1}\n",
  );

  it("names the grouping field after the grouping for model, actor and day", async () => {
    expect((await run(["prompt", "--purpose", "sql", '{"raw": "a b c d"}'], env)).code).toBe(0);
    const byModel = JSON.parse((await run(["usage", "--by", "model", "--json"], env)).stdout);
    expect(byModel).toEqual([
      expect.objectContaining({ model: "echo", responses: 1, costNanocents: "100000000", costUsd: 0.001 }),
    ]);
    expect(byModel[0]).not.toHaveProperty("key");
    const byActor = JSON.parse((await run(["usage", "--by", "actor", "--json"], env)).stdout);
    expect(byActor).toEqual([expect.objectContaining({ actor: null, responses: 1 })]);
    const byDay = JSON.parse((await run(["usage", "--by", "day", "--json"], env)).stdout);
    expect(byDay[0].day).toMatch(/^\d{4}-\d\d-\d\dT00:00:00\.000Z$/);
    expect((await run(["usage", "--by", "week"], env)).stderr).toContain(
      "--by takes purpose, model, actor, day, hour",
    );
  });

  it("shows a tool-call chain as one entry with its steps, oldest step first", async () => {
    const chained = setup("default_model: echo\n");
    const store = await openStore(
      `sqlite:${join(chained.SWITCHBOARD_USER_PATH as string, "switchboard.db")}`,
    );
    const at = Date.now() - 60_000;
    const row = (id: string, offset: number, chainId?: string) => ({
      id,
      createdAt: at + offset,
      modelRequested: "echo",
      modelAnswered: "echo",
      status: "ok" as const,
      ...(chainId ? { chainId } : {}),
    });
    await store.insertUsage([
      row("resp_alone", 0),
      row("resp_step1", 1000, "chain_x"),
      row("resp_step2", 2000, "chain_x"),
      row("resp_last", 3000),
    ]);
    await store.close();
    const text = (await run(["logs", "-n", "2"], chained)).stdout.split("\n");
    expect(text[1]).toBe("chain chain_x: 2 steps, unknown");
    expect(text[2]).toMatch(/^ {2}\d{4}-.*echo/);
    expect(text).toHaveLength(5); // the newest response, the chain header, its two steps, a final newline
    const json = JSON.parse((await run(["logs", "-n", "2", "--json"], chained)).stdout);
    expect(json.map((entry: { id: string }) => entry.id)).toEqual(["resp_last", "resp_step2", "resp_step1"]);
  });

  it("reports a limit per actor, and one actor's standing on request", async () => {
    const limits = JSON.parse((await run(["limits", "--json"], env)).stdout);
    expect(limits).toEqual([
      expect.objectContaining({
        limit: "each",
        scope: "actor",
        actor: "anonymous",
        used: "$0.001",
        held: "$0.00",
      }),
    ]);
    expect(limits[0].nanocents).toEqual({
      used: "100000000",
      held: "0",
      remaining: "99900000000",
      cap: "100000000000",
    });
    expect((await run(["limits", "--actor", "ada"], env)).stdout).toMatch(
      /^each actor ada: \$0\.00 used of \$1\.00, \$1\.00 left \(calendar-day; resets at .*\)\n$/,
    );
  });
});
