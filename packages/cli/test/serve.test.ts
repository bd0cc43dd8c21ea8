/** `switchboard serve` and `switchboard tokens`, run as the real command in child processes. */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";

const BIN = fileURLToPath(new URL("../bin/switchboard.js", import.meta.url));
const run = promisify(execFile);

function isolatedEnv(): NodeJS.ProcessEnv {
  const home = mkdtempSync(join(tmpdir(), "switchboard-serve-"));
  const env: NodeJS.ProcessEnv = { ...process.env, SWITCHBOARD_USER_PATH: home };
  delete env.SWITCHBOARD_CONFIG;
  return env;
}

function cli(args: string[], env: NodeJS.ProcessEnv, cwd: string) {
  return run(process.execPath, [BIN, ...args], { env, cwd });
}

interface Served {
  child: ChildProcess;
  url: string;
  stderr: () => string;
  exited: Promise<number | null>;
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
});

async function serve(env: NodeJS.ProcessEnv, cwd: string, args: string[] = []): Promise<Served> {
  const child = spawn(process.execPath, [BIN, "serve", "--port", "0", ...args], { env, cwd });
  children.push(child);
  let stdout = "";
  let stderr = "";
  child.stderr?.on("data", (chunk) => {
    stderr += String(chunk);
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout?.on("data", (chunk) => {
      stdout += String(chunk);
      const match = /listening on (http:\/\/\S+)/.exec(stdout);
      if (match?.[1]) resolve(match[1]);
    });
    void exited.then((code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
  });
  return { child, url, stderr: () => stderr, exited };
}

describe("switchboard serve", () => {
  it("serves the embedded default, answers with a token from `tokens create`, and logs the actor", async () => {
    const env = isolatedEnv();
    const cwd = env.SWITCHBOARD_USER_PATH as string;
    const served = await serve(env, cwd);
    expect(served.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const { stdout: token } = await cli(
      ["tokens", "create", "app", "--actor", "app", "--purpose", "enrichments"],
      env,
      cwd,
    );
    expect(token.trim()).toMatch(/^sb_[\w-]{40,}$/);
    const headers = { authorization: `Bearer ${token.trim()}`, "content-type": "application/json" };
    const body = { model: "purpose:enrichments", messages: [{ role: "user", content: "Hello" }] };
    const plain = await fetch(`${served.url}/v1/chat/completions`, {
      method: "POST",
      headers,
      body: JSON.stringify(body),
    });
    expect(plain.status).toBe(200);
    const streamed = await fetch(`${served.url}/v1/chat/completions`, {
      method: "POST",
      headers,
      body: JSON.stringify({ ...body, stream: true }),
    });
    expect(await streamed.text()).toMatch(/data: \[DONE\]\n\n$/);
    served.child.kill("SIGTERM");
    expect(await served.exited).toBe(0);
    const { stdout: logs } = await cli(["logs", "-n", "2", "--json"], env, cwd);
    const rows = JSON.parse(logs) as { actorId: string; purpose: string; status: string }[];
    expect(rows).toHaveLength(2);
    for (const row of rows)
      expect(row).toMatchObject({ actorId: "app", purpose: "enrichments", status: "ok" });
  });

  it("lists tokens without their values and revokes them", async () => {
    const env = isolatedEnv();
    const cwd = env.SWITCHBOARD_USER_PATH as string;
    const { stdout: value } = await cli(
      ["tokens", "create", "ci", "--actor", "bot", "--purpose", "a", "--purpose", "b", "--expires", "30d"],
      env,
      cwd,
    );
    const { stdout: list } = await cli(["tokens", "list"], env, cwd);
    expect(list).toMatch(/^ci {2}actor=bot {2}purposes=a,b {2}active/m);
    expect(list).not.toContain(value.trim());
    await cli(["tokens", "revoke", "ci"], env, cwd);
    const { stdout: json } = await cli(["tokens", "list", "--json"], env, cwd);
    expect(JSON.parse(json)).toMatchObject([{ name: "ci", status: "revoked" }]);
    const again = await cli(["tokens", "revoke", "ci"], env, cwd).catch(
      (error: { stderr: string; code: number }) => error,
    );
    expect(again).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/^Error: No active token named ci/),
    });
  });

  it("finishes a request in flight on SIGTERM, writes its usage row and exits 0", async () => {
    const upstream = await startSlowUpstream(8, 100);
    try {
      const env = isolatedEnv();
      const cwd = env.SWITCHBOARD_USER_PATH as string;
      writeFileSync(
        join(cwd, "switchboard.yaml"),
        [
          "default_model: echo",
          "require_keys: false",
          "providers:",
          `  slow: {type: openai, base_url: "${upstream.url}", models: [slow-model]}`,
          "purposes:",
          "  talk: {model: slow-model}",
          "",
        ].join("\n"),
      );
      const served = await serve(env, cwd);
      const { stdout: token } = await cli(
        ["tokens", "create", "app", "--actor", "app", "--purpose", "talk"],
        env,
        cwd,
      );
      const response = await fetch(`${served.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${token.trim()}`, "content-type": "application/json" },
        body: JSON.stringify({
          model: "purpose:talk",
          stream: true,
          messages: [{ role: "user", content: "hi" }],
        }),
      });
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      const decoder = new TextDecoder();
      let text = decoder.decode((await reader.read()).value);
      served.child.kill("SIGTERM");
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += decoder.decode(value);
      }
      expect(text).toContain("word8");
      expect(text).toMatch(/data: \[DONE\]\n\n$/);
      expect(await served.exited).toBe(0);
      expect(served.stderr()).toMatch(/SIGTERM: stopping, finishing 1 request/);
      const { stdout: logs } = await cli(["logs", "-n", "1", "--json"], env, cwd);
      expect(JSON.parse(logs)).toMatchObject([{ modelAnswered: "slow-model", actorId: "app", status: "ok" }]);
    } finally {
      await upstream.close();
    }
  });
});

/** An OpenAI-compatible upstream streaming `words` words, one every `intervalMs`. */
async function startSlowUpstream(words: number, intervalMs: number) {
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { "content-type": "text/event-stream" });
    const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
      `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: "slow", choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    res.write(chunk({ role: "assistant", content: "" }));
    let sent = 0;
    const timer = setInterval(() => {
      sent += 1;
      res.write(chunk({ content: `word${sent} ` }));
      if (sent === words) {
        clearInterval(timer);
        res.end(`${chunk({}, "stop")}data: [DONE]\n\n`);
      }
    }, intervalMs);
    res.on("close", () => clearInterval(timer));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
