import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { openHub } from "@switchboard/hub";
import { describe, expect, it } from "vitest";
import { main } from "../src/index.ts";

async function run(
  argv: string[],
  userDir: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await main(argv, {
    stdin: Readable.from([]),
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    env: { SWITCHBOARD_USER_PATH: userDir },
  });
  return { code, stdout, stderr };
}

describe("switchboard login-link", () => {
  it("prints a one-time link that opens a session for the actor on the same database", async () => {
    const dir = mkdtempSync(join(tmpdir(), "switchboard-login-"));
    const config = join(dir, "switchboard.yaml");
    writeFileSync(config, `storage: sqlite:${join(dir, "switchboard.db")}\n`);
    const result = await run(
      ["--config", config, "login-link", "alice", "--url", "http://admin.example:9000/"],
      dir,
    );
    expect(result.code).toBe(0);
    const link = result.stdout.trim();
    expect(link).toMatch(/^http:\/\/admin\.example:9000\/-\/login\?token=sbl_[\w-]+$/);
    expect(result.stderr).toMatch(/^Signs in as alice, once, until \d{4}-\d\d-\d\d \d\d:\d\d UTC\.\n$/);

    const hub = await openHub({ configPath: config, env: { SWITCHBOARD_USER_PATH: dir } });
    const token = new URL(link).searchParams.get("token") ?? "";
    expect((await hub.logins.redeem(token))?.actor).toBe("alice");
    expect(await hub.logins.redeem(token)).toBeUndefined();
    await hub.close();
  });

  it("refuses a lifetime out of range and a URL that is not http(s)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "switchboard-login-"));
    const tooLong = await run(["login-link", "alice", "--minutes", "0"], dir);
    expect(tooLong.code).not.toBe(0);
    expect(tooLong.stderr).toContain("--minutes must be a number of minutes from 1 to 1440.");
    const notHttp = await run(["login-link", "alice", "--url", "ftp://x"], dir);
    expect(notHttp.stderr).toContain("--url must be an http(s) address");
  });
});
