import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { startFakeOpenAI } from "@switchboard/core/testing";
import { describe, expect, it } from "vitest";
import { main } from "../src/index.ts";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in-process with its own user directory and environment. */
async function run(
  argv: string[],
  options: { stdin?: string; env?: Record<string, string>; userDir?: string } = {},
): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const userDir = options.userDir ?? mkdtempSync(join(tmpdir(), "switchboard-cli-"));
  const code = await main(argv, {
    stdin: Readable.from(options.stdin === undefined ? [] : [options.stdin]),
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    env: { SWITCHBOARD_USER_PATH: userDir, ...options.env },
  });
  return { code, stdout, stderr };
}

function configFile(yaml: string): string {
  const path = join(mkdtempSync(join(tmpdir(), "switchboard-config-")), "switchboard.yaml");
  writeFileSync(path, yaml);
  return path;
}

describe("switchboard prompt", () => {
  it("prints the echo JSON", async () => {
    const result = await run(["prompt", "-m", "echo", "hello world"]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ prompt: "hello world", system: "", stream: true });
  });

  it("passes the system prompt, raw output, --no-stream and usage", async () => {
    expect(JSON.parse((await run(["prompt", "-m", "echo", "-s", "sys", "hi"])).stdout).system).toBe("sys");
    expect((await run(["prompt", "-m", "echo", '{"raw": "exact text"}'])).stdout).toBe("exact text\n");
    expect(JSON.parse((await run(["prompt", "-m", "echo", "--no-stream", "hi"])).stdout).stream).toBe(false);
    const withUsage = await run(["prompt", "-m", "echo", "-u", "hello world"]);
    expect(withUsage.stderr).toMatch(/^Token usage: 2 input, \d+ output\n$/);
  });

  it("reads the prompt from stdin and takes options with -o", async () => {
    const result = await run(["prompt", "-m", "echo", "-o", "example_bool", "true"], {
      stdin: "from stdin\n",
    });
    expect(JSON.parse(result.stdout)).toMatchObject({
      prompt: "from stdin\n",
      options: { example_bool: true },
    });
  });

  it("fails before running on an unknown option, naming it", async () => {
    const result = await run(["prompt", "-m", "echo", "-o", "no_such_option", "1", "hi"]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toBe(
      'Error: Model echo has no option "no_such_option". Valid options: example_bool.\n',
    );
  });

  it("uses the env var, then the stored key, and explains how to set one", async () => {
    const userDir = mkdtempSync(join(tmpdir(), "switchboard-cli-"));
    const withEnv = await run(["prompt", "-m", "echo-needs-key", "hi"], {
      userDir,
      env: { ECHO_NEEDS_KEY_KEY: "k1" },
    });
    expect(JSON.parse(withEnv.stdout).key).toBe("k1");
    const missing = await run(["prompt", "-m", "echo-needs-key", "hi"], { userDir });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("switchboard keys set echo-needs-key");
    expect(missing.stderr).toContain("ECHO_NEEDS_KEY_KEY");
    expect((await run(["keys", "set", "echo-needs-key"], { userDir, stdin: "stored-k\n" })).code).toBe(0);
    expect(JSON.parse((await run(["prompt", "-m", "echo-needs-key", "hi"], { userDir })).stdout).key).toBe(
      "stored-k",
    );
    expect((await run(["keys", "get", "echo-needs-key"], { userDir })).stdout).toBe("stored-k\n");
    expect((await run(["keys", "list"], { userDir })).stdout).toBe("echo-needs-key\n");
    expect((await run(["keys", "path"], { userDir })).stdout).toBe(`${join(userDir, "keys.json")}\n`);
  });

  it("exits 2 on a usage error and 1 on an unknown model", async () => {
    expect((await run(["prompt", "--bogus"])).code).toBe(2);
    const unknown = await run(["prompt", "-m", "nope", "hi"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^Error: Unknown model: nope\./);
  });
});

describe("switchboard models", () => {
  it("lists the built-in models, as ids and as JSON", async () => {
    const ids = (
      await run(["models"], { env: { SWITCHBOARD_CONFIG: configFile("require_keys: false\n") } })
    ).stdout.split("\n");
    for (const id of ["echo", "echo-needs-key", "markov", "gpt-5.4", "gpt-5.4-mini", "claude-sonnet-4.6"])
      expect(ids).toContain(id);
    const json = JSON.parse(
      (await run(["models", "--json"], { env: { SWITCHBOARD_CONFIG: configFile("require_keys: false\n") } }))
        .stdout,
    );
    expect(json.find((model: { id: string }) => model.id === "gpt-5.4")).toMatchObject({
      provider: "openai",
      needsKey: "openai",
    });
  });
});

describe("purpose routing from the CLI", () => {
  const sqlConfig =
    "models: [echo-needs-key]\nrequire_keys: false\npurposes:\n  sql:\n    model: echo\n    models: [echo]\n";

  it("lists only the purpose's models and enforces them", async () => {
    const config = configFile(sqlConfig);
    expect((await run(["--config", config, "models", "--purpose", "sql"])).stdout).toBe("echo\n");
    const refused = await run([
      "--config",
      config,
      "prompt",
      "--purpose",
      "sql",
      "-m",
      "echo-needs-key",
      "hi",
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/echo-needs-key is not allowed for purpose "sql"/);
    const answered = await run(["--config", config, "prompt", "--purpose", "sql", "hi"]);
    expect(JSON.parse(answered.stdout).prompt).toBe("hi");
  });

  it("resolves a purpose's key: config secret, then provider secret, then keys file", async () => {
    const config = configFile("purposes:\n  enrich:\n    model: {model: echo-needs-key, key: ENRICH_KEY}\n");
    const key = async (env: Record<string, string>, userDir?: string) =>
      JSON.parse(
        (
          await run(["--config", config, "prompt", "--purpose", "enrich", "hi"], {
            env,
            ...(userDir ? { userDir } : {}),
          })
        ).stdout,
      ).key;
    expect(
      await key({ SWITCHBOARD_SECRET_ENRICH_KEY: "e1", SWITCHBOARD_SECRET_ECHO_NEEDS_KEY_API_KEY: "p1" }),
    ).toBe("e1");
    expect(await key({ SWITCHBOARD_SECRET_ECHO_NEEDS_KEY_API_KEY: "p1" })).toBe("p1");
    const userDir = mkdtempSync(join(tmpdir(), "switchboard-cli-"));
    await run(["keys", "set", "echo-needs-key"], { userDir, stdin: "file-key" });
    expect(await key({}, userDir)).toBe("file-key");
  });

  it("lists purposes as JSON", async () => {
    const config = configFile(`${sqlConfig}    description: Natural language to SQL\n`);
    const purposes = JSON.parse((await run(["--config", config, "purposes", "--json"])).stdout);
    expect(purposes).toEqual([
      { name: "sql", description: "Natural language to SQL", model: "echo", models: ["echo"] },
    ]);
  });

  it("fails at load on a typo, naming the path", async () => {
    const config = configFile("purposes:\n  x:\n    modle: echo\n");
    const result = await run(["--config", config, "prompt", "hi"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("purposes.x.modle: unknown setting");
  });
});

describe("switchboard secrets", () => {
  it("stores a secret from stdin and lists it without its value", async () => {
    const userDir = mkdtempSync(join(tmpdir(), "switchboard-cli-"));
    const env = { SWITCHBOARD_SECRETS_KEY: Buffer.alloc(32, 7).toString("base64") };
    const set = await run(["secrets", "set", "MY_TOKEN"], { userDir, env, stdin: "hunter2\n" });
    expect(set.code).toBe(0);
    const listed = await run(["secrets", "list"], { userDir, env });
    expect(listed.stdout).toContain("MY_TOKEN\tstored v1");
    expect(listed.stdout + listed.stderr).not.toContain("hunter2");
  });
});

describe("usage, logs, limits and allowance", () => {
  it("summarises CLI prompts by purpose and shows the prompt log", async () => {
    const userDir = mkdtempSync(join(tmpdir(), "switchboard-cli-"));
    const config = configFile(
      "default_model: echo\nusage: {log_prompts: true}\npurposes:\n  sql: {model: echo}\n  notes: {model: echo}\n" +
        "accounting: {pricing: {echo: {input: 1, output: 2}}}\n",
    );
    const env = { SWITCHBOARD_CONFIG: config };
    for (const [purpose, text] of [
      ["sql", "how many rows"],
      ["sql", "top customers"],
      ["notes", "remember this"],
    ] as const) {
      expect((await run(["prompt", "--purpose", purpose, text], { userDir, env })).code).toBe(0);
    }
    const summary = JSON.parse(
      (await run(["usage", "--by", "purpose", "--since", "1h", "--json"], { userDir, env })).stdout,
    );
    const sql = summary.find((row: { purpose: string }) => row.purpose === "sql");
    expect(sql).toMatchObject({ responses: 2, inputTokens: 5 });
    expect(sql.costUsd).toBeGreaterThan(0);
    expect(summary.find((row: { purpose: string }) => row.purpose === "notes")).toMatchObject({
      responses: 1,
      inputTokens: 2,
    });
    const table = (await run(["usage", "--by", "purpose"], { userDir, env })).stdout;
    expect(table).toMatch(/^sql\s+2\s+5\s+\d+\s+-\s+\$0\.0000\d+$/m);
    const logs = JSON.parse((await run(["logs", "-n", "2", "--json"], { userDir, env })).stdout);
    expect(logs).toHaveLength(2);
    expect(logs[0]).toMatchObject({ purpose: "notes", prompt: "remember this", modelAnswered: "echo" });
    expect(JSON.parse(logs[0].response).prompt).toBe("remember this");
    expect((await run(["usage", "--since", "soon"], { userDir, env })).stderr).toContain(
      "--since takes a duration",
    );
  });

  it("reports limits and tops up allowances", async () => {
    const userDir = mkdtempSync(join(tmpdir(), "switchboard-cli-"));
    const config = configFile(
      "default_model: echo\naccounting: {pricing: {echo: {input: 1000, output: 1000}}}\nallowance: {enabled: true}\n" +
        "limits:\n  daily: {scope: instance, window: calendar-day, amount_usd: 5}\n",
    );
    const env = { SWITCHBOARD_CONFIG: config };
    expect((await run(["allowance", "topup", "ada", "2.5"], { userDir, env })).stdout).toBe(
      "ada: balance $2.50\n",
    );
    expect((await run(["allowance", "show", "ada"], { userDir, env })).stdout).toBe("ada: balance $2.50\n");
    const limits = JSON.parse((await run(["limits", "--json"], { userDir, env })).stdout);
    expect(limits).toEqual([
      expect.objectContaining({ limit: "daily", used: "$0.00", remaining: "$5.00", cap: "$5.00" }),
    ]);
    expect(limits[0].reset).toMatch(/^resets at \d{4}-\d\d-\d\dT00:00:00\.000Z$/);
    expect((await run(["allowance", "topup", "ada", "-1"], { userDir, env })).code).not.toBe(0);
  });
});

describe("plugins from the configuration", () => {
  it("loads plugins listed in the config, so their purposes are listed", async () => {
    const plugin = new URL("../../hub/test/fixtures/extract-plugin.ts", import.meta.url).pathname;
    const config = configFile(
      `plugins: [${plugin}]\ndefault_model: echo\npurposes:\n  sql: {model: echo, description: SQL}\n`,
    );
    const purposes = JSON.parse((await run(["--config", config, "purposes", "--json"])).stdout);
    expect(
      purposes.map((purpose: { name: string; description: string }) => [purpose.name, purpose.description]),
    ).toEqual([
      ["sql", "SQL"],
      ["extract", "Extract structured rows from text"],
    ]);
  });

  it("names a plugin that cannot be loaded", async () => {
    const config = configFile("plugins: [./no-such-plugin.ts]\n");
    const result = await run(["--config", config, "purposes"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/plugins\[0\]: cannot load \.\/no-such-plugin\.ts/);
  });
});

describe("attachments and schemas from the CLI", () => {
  it("attaches a URL or a file, and refuses a schema the model cannot follow", async () => {
    const withUrl = JSON.parse(
      (await run(["prompt", "-m", "echo", "-a", "https://example.com/cat.png", "look"])).stdout,
    );
    expect(withUrl.attachments).toEqual([
      { type: "image/png", path: null, url: "https://example.com/cat.png" },
    ]);
    const image = join(mkdtempSync(join(tmpdir(), "switchboard-cli-")), "dot.gif");
    writeFileSync(image, Buffer.from("GIF89a"));
    const withFile = JSON.parse((await run(["prompt", "-m", "echo", "-a", image, "look"])).stdout);
    expect(withFile.attachments).toEqual([{ type: "image/gif", path: image, url: null }]);
    const schema = await run(["prompt", "-m", "echo", "--schema", '{"type": "object"}', "hi"]);
    expect(schema.code).toBe(1);
    expect(schema.stderr).toBe("Error: Model echo does not support schemas.\n");
    const badSchema = await run(["prompt", "-m", "echo", "--schema", "{not json", "hi"]);
    expect(badSchema.stderr).toContain("--schema must be a JSON object");
  });

  it("names --schema and the path when the schema file cannot be read", async () => {
    const missing = join(mkdtempSync(join(tmpdir(), "switchboard-cli-")), "schema.json");
    const result = await run(["prompt", "-m", "echo", "--schema", missing, "hi"]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toBe(
      `Error: --schema: cannot read the file ${missing} (no such file or directory). ` +
        "Pass a JSON object, or the path of a file holding one.\n",
    );
  });
});

describe("error lines", () => {
  it("end in one full stop when they quote an upstream message that has its own", async () => {
    const fake = await startFakeOpenAI();
    try {
      fake.enqueue({ status: 400, message: "Your request was malformed." });
      const config = configFile(
        `providers:\n  upstream:\n    type: openai\n    base_url: ${fake.url}\n    models: [{id: upstream-model}]\n`,
      );
      const result = await run(["--config", config, "prompt", "-m", "upstream-model", "--key", "k", "hi"]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^Error: .*Your request was malformed\.\n$/);
      expect(result.stderr).not.toContain("..");
    } finally {
      await fake.close();
    }
  });
});
