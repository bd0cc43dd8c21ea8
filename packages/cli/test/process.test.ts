/**
 * The real `switchboard` executable in a child process: what a user sees on the terminal when a
 * pipe closes, storage fails or closing the hub cannot write its rows.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startFakeOpenAI } from "@switchboard/core/testing";
import { describe, expect, it } from "vitest";
import { PLANTED_SECRET } from "./fixtures/leaky-plugin.ts";

const BIN = new URL("../bin/switchboard.js", import.meta.url).pathname;
const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface SpawnOptions {
  userDir?: string;
  env?: Record<string, string>;
  stdin?: string;
}

function environment(options: SpawnOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  delete env.SWITCHBOARD_CONFIG;
  env.SWITCHBOARD_USER_PATH = options.userDir ?? mkdtempSync(join(tmpdir(), "switchboard-cli-"));
  Object.assign(env, options.env);
  return env;
}

function start(args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  const child = spawn(process.execPath, [BIN, ...args], { env: environment(options) });
  child.stdin?.end(options.stdin ?? "");
  return child;
}

function finished(child: ChildProcess): Promise<Finished> {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

function switchboard(args: readonly string[], options: SpawnOptions = {}): Promise<Finished> {
  return finished(start(args, options));
}

/** The first bytes a running command prints. */
async function firstOutput(child: ChildProcess): Promise<string> {
  return new Promise<string>((resolve) =>
    child.stdout?.once("data", (chunk: Buffer) => resolve(chunk.toString())),
  );
}

function configFile(yaml: string): string {
  const path = join(mkdtempSync(join(tmpdir(), "switchboard-config-")), "switchboard.yaml");
  writeFileSync(path, yaml);
  return path;
}

/** stderr is exactly one `Error:` line: no stack frame, no second report. */
function expectOneErrorLine(stderr: string): void {
  expect(stderr).toMatch(/^Error: [^\n]+\n$/);
  expect(stderr).not.toMatch(/^\s+at /m);
}

describe("a closed pipe (switchboard prompt … | head)", () => {
  it("still writes the usage row, then exits quietly", async () => {
    const userDir = mkdtempSync(join(tmpdir(), "switchboard-cli-"));
    // Far more than a pipe buffers, so the command is still writing when the reader goes away.
    const child = start(["prompt", "-m", "echo"], { userDir, stdin: "word ".repeat(100_000) });
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const firstBytes = await firstOutput(child);
    child.stdout?.destroy(); // what `head -c 100` does once it has its bytes
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect(firstBytes).toMatch(/^\{/);
    expect(code).toBe(0);
    expect(stderr).toBe("");

    const logs = await switchboard(["logs", "--json"], { userDir });
    expect(logs.code).toBe(0);
    const rows = JSON.parse(logs.stdout) as { modelAnswered: string; inputTokens: number }[];
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ modelAnswered: "echo", inputTokens: 100_000 });
  });
});

describe("a closed pipe while the model is still answering", () => {
  it("stops the model, logs what it delivered and exits quietly", async () => {
    const fake = await startFakeOpenAI();
    try {
      // 200 chunks, 20 ms apart: the answer is far from done when the reader goes away.
      fake.enqueue({ text: Array.from({ length: 200 }, (_, index) => `chunk-${index} `), chunkDelayMs: 20 });
      const userDir = mkdtempSync(join(tmpdir(), "switchboard-cli-"));
      const config = configFile(
        `providers:\n  upstream:\n    type: openai\n    base_url: ${fake.url}\n    models: [{id: upstream-model}]\n` +
          "usage: {log_prompts: true}\n",
      );
      const child = start(["--config", config, "prompt", "-m", "upstream-model", "--key", "k", "hi"], {
        userDir,
      });
      let stderr = "";
      child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      expect(await firstOutput(child)).toMatch(/^chunk-0/);
      child.stdout?.destroy();
      const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
      expect(code).toBe(0);
      expect(stderr).toBe("");

      const logs = await switchboard(["--config", config, "logs", "--json"], { userDir });
      const rows = JSON.parse(logs.stdout) as { modelAnswered: string; status: string; response: string }[];
      expect(rows).toHaveLength(1);
      expect(rows[0]?.modelAnswered).toBe("upstream-model");
      expect(rows[0]?.status).not.toBe("ok");
      expect(rows[0]?.response).toMatch(/^chunk-0 /);
      expect(rows[0]?.response).not.toContain("chunk-199");
    } finally {
      await fake.close();
    }
  });
});

describe("output that cannot be written", () => {
  // /dev/full fails every write with ENOSPC; only Linux has it.
  it.skipIf(!existsSync("/dev/full"))("is one Error line and exit 1, not a silent exit 0", async () => {
    const userDir = mkdtempSync(join(tmpdir(), "switchboard-cli-"));
    const full = openSync("/dev/full", "w");
    const child = spawn(process.execPath, [BIN, "prompt", "-m", "echo", "hi"], {
      env: environment({ userDir }),
      stdio: ["ignore", full, "pipe"],
    });
    closeSync(full);
    const { code, stderr } = await finished(child);
    expect(code).toBe(1);
    expectOneErrorLine(stderr);
    expect(stderr).toBe("Error: Cannot write the output: no space left on device.\n");
    // The prompt ran, so its row is kept.
    const logs = await switchboard(["logs", "--json"], { userDir });
    expect(JSON.parse(logs.stdout)).toHaveLength(1);
  });
});

describe("usage rows that cannot be written", () => {
  it("prints one Error line and exits 1 when closing the hub fails", async () => {
    const config = configFile(`plugins: [${fixture("unwritten-rows-plugin.ts")}]\ndefault_model: echo\n`);
    const result = await switchboard(["--config", config, "prompt", "hi"]);
    expect(JSON.parse(result.stdout)).toMatchObject({ prompt: "hi" });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      "Error: 1 usage row was not written: the database is locked. Retry when the other writer is done.\n",
    );
  });
});

describe("storage that cannot be opened", () => {
  const cases = {
    "a directory where the database should be": () => {
      const userDir = mkdtempSync(join(tmpdir(), "switchboard-cli-"));
      mkdirSync(join(userDir, "switchboard.db"));
      return userDir;
    },
    "a file where the user directory should be": () => {
      const file = join(mkdtempSync(join(tmpdir(), "switchboard-cli-")), "not-a-directory");
      writeFileSync(file, "");
      return join(file, "switchboard");
    },
  };

  for (const [name, userDirectory] of Object.entries(cases)) {
    it(`logs: one clear line and exit 1 (${name})`, async () => {
      const result = await switchboard(["logs"], { userDir: userDirectory() });
      expect(result.code).toBe(1);
      expect(result.stdout).toBe("");
      expectOneErrorLine(result.stderr);
      expect(result.stderr).toMatch(/^Error: Cannot open SQLite storage at .*switchboard\.db: /);
    });

    it(`prompt: the answer, then one clear line and exit 1, as its row is not written (${name})`, async () => {
      const result = await switchboard(["prompt", "-m", "echo", "hi"], { userDir: userDirectory() });
      expect(JSON.parse(result.stdout)).toMatchObject({ prompt: "hi" });
      expect(result.code).toBe(1);
      expectOneErrorLine(result.stderr);
      expect(result.stderr).toMatch(/^Error: Cannot open SQLite storage at /);
    });
  }
});

describe("error output", () => {
  it("never shows a secret value", async () => {
    const config = configFile(`plugins: [${fixture("leaky-plugin.ts")}]\ndefault_model: echo\n`);
    const result = await switchboard(["--config", config, "prompt", "hi"]);
    expect(result.code).toBe(1);
    expectOneErrorLine(result.stderr);
    expect(result.stderr).toBe("Error: Upstream said: key [redacted] is not valid.\n");
    expect(result.stdout + result.stderr).not.toContain(PLANTED_SECRET);
  });

  it("reduces an error nothing caught to one line and exit 1", async () => {
    const config = configFile(`plugins: [${fixture("crashing-plugin.ts")}]\ndefault_model: echo\n`);
    const result = await switchboard(["--config", config, "prompt", "hi"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe("Error: the plugin's timer failed\n");
  });
});
