import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { isSwitchboardError } from "../src/errors.ts";
import { markovPlugin } from "../src/providers/markov.ts";
import { Registry } from "../src/registry.ts";
import { echoRegistry, pluginOf, scriptedModel, temporaryDirectory, temporaryKeyStore } from "./helpers.ts";

/** The error a synchronous call throws. */
function thrown(call: () => unknown): unknown {
  try {
    call();
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to throw");
}

const NO_SUCH_FILE = join(temporaryDirectory(), "does-not-exist.png");
const PNG_BYTES = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

describe("untrusted prompts", () => {
  it("refuse a {path} attachment with INVALID_INPUT before looking at the file", async () => {
    const registry = await echoRegistry();
    const error = thrown(() =>
      registry.get("echo").prompt("describe", { untrusted: true, attachments: [{ path: NO_SUCH_FILE }] }),
    );
    // A trusted prompt would be told the file is missing: the path was never looked at.
    expect(isSwitchboardError(error, "INVALID_INPUT")).toBe(true);
    expect((error as Error).message).toMatch(/Attachment 1 names a file path.*send the file's content/);
    expect(
      isSwitchboardError(
        thrown(() => registry.get("echo").prompt("describe", { attachments: [{ path: NO_SUCH_FILE }] })),
        "INVALID_ATTACHMENT",
      ),
    ).toBe(true);
  });

  it("refuse markov's file option with INVALID_INPUT before anything is read", async () => {
    const registry = await Registry.create([markovPlugin()], { keys: temporaryKeyStore() });
    const markov = registry.get("markov");
    expect(markov.definition.fileOptions).toEqual(["file"]);
    const error = thrown(() =>
      markov.prompt("some words to train on", {
        untrusted: true,
        options: { file: "/etc/passwd", length: 5 },
      }),
    );
    expect(isSwitchboardError(error, "INVALID_INPUT")).toBe(true);
    expect((error as Error).message).toBe(
      'Option "file" of model markov reads a file, which a prompt from outside may not do.',
    );
    const missing = thrown(() => markov.prompt("x", { untrusted: true, options: { file: NO_SUCH_FILE } }));
    expect(isSwitchboardError(missing, "INVALID_INPUT")).toBe(true);
    // Other options stay usable from outside.
    const words = await markov
      .prompt("alpha beta gamma delta alpha beta", { untrusted: true, options: { length: 4, seed: 1 } })
      .text();
    expect(words.trim().split(/\s+/)).toHaveLength(4);
  });

  it("refuse URL attachments unless allowed, and accept bytes", async () => {
    const registry = await echoRegistry();
    const echo = registry.get("echo");
    const url = { url: "https://example.com/cat.png" };
    const refused = thrown(() => echo.prompt("describe", { untrusted: true, attachments: [url] }));
    expect(isSwitchboardError(refused, "INVALID_INPUT")).toBe(true);
    expect((refused as Error).message).toContain("is a URL");

    const allowed = JSON.parse(
      await echo
        .prompt("describe", { untrusted: true, allowUrlAttachments: true, attachments: [url] })
        .text(),
    );
    expect(allowed.attachments).toEqual([{ type: "image/png", path: null, url: url.url }]);
    const bytes = JSON.parse(
      await echo.prompt("describe", { untrusted: true, attachments: [{ content: PNG_BYTES }] }).text(),
    );
    expect(bytes.attachments).toEqual([{ type: "image/png", path: null, url: null }]);
  });

  it("refuse {path} attachments inside explicit history too", async () => {
    const registry = await echoRegistry();
    const error = thrown(() =>
      registry.get("echo").prompt("and this?", {
        untrusted: true,
        history: [{ role: "user", content: "look", attachments: [{ path: NO_SUCH_FILE }] }],
      }),
    );
    expect(isSwitchboardError(error, "INVALID_INPUT")).toBe(true);
    expect((error as Error).message).toMatch(/^history\[0\]: Attachment 1 names a file path/);
  });

  it("apply to chains and conversations, and nothing reaches the model", async () => {
    const model = scriptedModel(
      "files",
      async function* () {
        yield { type: "text", text: "read it" };
      },
      {
        capabilities: { attachmentTypes: ["image/png"] },
        options: z.object({ source: z.string().optional() }),
        fileOptions: ["source"],
      },
    );
    const registry = await echoRegistry(pluginOf("test", model));
    const files = registry.get("files");
    expect(
      isSwitchboardError(
        thrown(() => files.chain("go", { untrusted: true, attachments: [{ path: NO_SUCH_FILE }] })),
        "INVALID_INPUT",
      ),
    ).toBe(true);
    expect(
      isSwitchboardError(
        thrown(() =>
          files.conversation().prompt("go", { untrusted: true, options: { source: "/etc/hosts" } }),
        ),
        "INVALID_INPUT",
      ),
    ).toBe(true);
    expect(model.requests).toHaveLength(0);
  });
});
