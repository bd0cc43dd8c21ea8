/**
 * Two offline models for trying the data tools by hand (and for tests), as a hub plugin:
 *
 * - `slow-echo` answers `done:<prompt>` after SLOW_ECHO_MS milliseconds (default 20), slow enough
 *   to pause, kill and resume an enrichment job. With SLOW_ECHO_HANG_AFTER=N every call after the
 *   N-th never answers, so a process can be killed while rows are certainly in flight.
 * - `echo-schema` follows a JSON schema the way the echo model scripts output: a prompt that is a
 *   JSON object `{"raw": "…"}` answers exactly `raw`, streamed a few characters at a time (so
 *   extraction inserts rows as they arrive); any other prompt answers `{"items": []}`.
 *
 *   # switchboard.yaml
 *   default_model: echo
 *   plugins: [./scripts/demo-models.ts]
 *
 *   SLOW_ECHO_MS=100 npx switchboard enrich sample.db books --prompt "{{ title }}" --output note -m slow-echo
 *   echo '{"raw": "{\"items\": [{\"name\": \"Ada\"}]}"}' | npx switchboard extract sample.db people --field name -m echo-schema
 */
import type { SwitchboardPlugin } from "@switchboard/hub";

/** How many characters `echo-schema` streams per chunk. */
const CHUNK = 8;

function scriptedRaw(prompt: string): string | undefined {
  if (!prompt.trim().startsWith("{")) return undefined;
  try {
    const parsed = JSON.parse(prompt) as { raw?: unknown };
    return typeof parsed.raw === "string" ? parsed.raw : undefined;
  } catch {
    return undefined;
  }
}

export default function demoModels(): SwitchboardPlugin {
  const delayMs = Number(process.env.SLOW_ECHO_MS ?? 20);
  const hangAfter = Number(process.env.SLOW_ECHO_HANG_AFTER ?? Number.POSITIVE_INFINITY);
  let calls = 0;
  return {
    name: "demo-models",
    registerModels({ register }) {
      register({
        id: "slow-echo",
        provider: "demo",
        async *execute(request) {
          calls++;
          if (calls > hangAfter) await new Promise(() => undefined);
          await new Promise((resolve) => setTimeout(resolve, delayMs));
          yield { type: "text", text: `done:${request.prompt}` };
          yield { type: "usage", usage: { input: 1, output: 1 } };
          yield { type: "finish", reason: "stop" };
        },
      });
      register({
        id: "echo-schema",
        provider: "demo",
        capabilities: { streaming: true, schema: true, attachmentTypes: ["image/png", "image/jpeg"] },
        async *execute(request) {
          const output = scriptedRaw(request.prompt) ?? '{"items": []}';
          for (let index = 0; index < output.length; index += CHUNK) {
            yield { type: "text", text: output.slice(index, index + CHUNK) };
          }
          yield {
            type: "usage",
            usage: { input: request.prompt.split(/\s+/).length, output: output.length },
          };
          yield { type: "finish", reason: "stop" };
        },
      });
    },
  };
}
