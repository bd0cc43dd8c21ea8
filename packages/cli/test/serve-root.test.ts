/** `switchboard serve --root`: the real command prints a one-time link that signs root in to the admin UI. */
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const BIN = fileURLToPath(new URL("../bin/switchboard.js", import.meta.url));

describe("switchboard serve --root", () => {
  it("prints a login link that opens the admin UI as root, once", async () => {
    const home = mkdtempSync(join(tmpdir(), "switchboard-root-"));
    const env: NodeJS.ProcessEnv = { ...process.env, SWITCHBOARD_USER_PATH: home };
    delete env.SWITCHBOARD_CONFIG;
    const child = spawn(process.execPath, [BIN, "serve", "--port", "0", "--root"], { env, cwd: home });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      const link = await new Promise<string>((resolve, reject) => {
        let stdout = "";
        child.stdout.on("data", (chunk) => {
          stdout += String(chunk);
          const match =
            /Admin UI \(one-time link for root\): (http:\/\/127\.0\.0\.1:\d+\/-\/login\?token=sbl_[\w-]+)\n/.exec(
              stdout,
            );
          if (match?.[1]) resolve(match[1]);
        });
        void exited.then((code) => reject(new Error(`serve exited with ${code} before printing a link`)));
      });
      const opened = await fetch(link, { redirect: "manual" });
      expect(opened.status).toBe(303);
      const cookie = (opened.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
      const home = await fetch(new URL("/-/", link), { headers: { cookie } });
      expect(home.status).toBe(200);
      expect(await home.text()).toContain("Signed in as <strong>root</strong>");
      expect((await fetch(link, { redirect: "manual" })).status).toBe(401);
    } finally {
      child.kill("SIGTERM");
      await exited;
    }
  });
});
