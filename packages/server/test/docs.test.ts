/** docs/gateway.md stays true: its examples run against a gateway, its error table matches core's. */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { ERROR_HTTP_STATUS } from "@switchboard/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./helpers.ts";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const DOC = readFileSync(`${ROOT}docs/gateway.md`, "utf8");
const DOCUMENTED_URL = "http://127.0.0.1:8080";

function codeBlocks(language: string): string[] {
  const pattern = new RegExp(`\`\`\`${language}\\n([\\s\\S]*?)\`\`\``, "g");
  return [...DOC.matchAll(pattern)].map((match) => match[1] as string);
}

describe("docs/gateway.md", () => {
  let server: TestServer;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    server = await startTestServer();
    const token = await server.token("app", { purposes: ["enrichments"] });
    env = { ...process.env, SWITCHBOARD_TOKEN: token };
  });

  afterAll(async () => {
    await server?.close();
  });

  const curls = codeBlocks("bash").filter((block) => block.startsWith("curl"));
  it.each(curls.map((block, index) => [index, block]))(
    "curl example %i answers from echo",
    async (_index, block) => {
      const { stdout } = await run("bash", ["-c", (block as string).replaceAll(DOCUMENTED_URL, server.url)], {
        env,
      });
      expect(stdout).toContain("echo");
      expect(stdout).not.toMatch(/"error"/);
    },
  );

  const scripts = codeBlocks("js");
  it.each(scripts.map((block, index) => [index, block]))("SDK example %i runs", async (_index, block) => {
    const { stdout } = await run(
      process.execPath,
      ["--input-type=module", "-e", (block as string).replaceAll(DOCUMENTED_URL, server.url)],
      { env, cwd: ROOT },
    );
    expect(stdout).toMatch(/^echo /);
    expect(stdout.trim().split("\n").at(-1)).toMatch(/^.*(stop|end_turn)$/);
  });

  it("has examples of each kind", () => {
    expect(curls.length).toBeGreaterThanOrEqual(3);
    expect(scripts.length).toBe(2);
  });

  it("lists every error code with the status core gives it", () => {
    for (const [code, status] of Object.entries(ERROR_HTTP_STATUS)) {
      expect(DOC).toContain(`| ${status} | \`${code}\` |`);
    }
  });
});
