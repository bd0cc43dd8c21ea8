/**
 * Worker-thread entry of the sync-model pool. It runs one job at a time: imports the model's module
 * (cached per worker), drives its blocking generator and streams the yielded parts back in small
 * batches. Jobs are never cancelled here: the pool terminates the whole worker instead, because a
 * blocking generator cannot be interrupted from outside.
 */
import { inspect } from "node:util";
import { parentPort } from "node:worker_threads";
import { describeError } from "../errors.ts";
import type { StreamPart, SyncModelRequest } from "../types.ts";
import type { JobMessage, WorkerMessage } from "./pool.ts";

/** Batching keeps per-message overhead on the main thread low without delaying chunks noticeably. */
const FLUSH_INTERVAL_MS = 4;
const MAX_BATCH_PARTS = 256;
const MAX_BATCH_TEXT = 64 * 1024;

type SyncGenerator = (request: SyncModelRequest) => unknown;

const port = parentPort;
if (port === null) throw new Error("workers/worker.ts must be started as a worker thread by workers/pool.ts");

const generators = new Map<string, SyncGenerator>();

async function loadGenerator(module: string, exportName: string): Promise<SyncGenerator> {
  const cacheKey = `${module}#${exportName}`;
  const cached = generators.get(cacheKey);
  if (cached) return cached;
  let exports: Record<string, unknown>;
  try {
    exports = await import(module);
  } catch (error) {
    // The cause's message is in the text: the main thread only receives text.
    throw new Error(`Cannot load sync model module ${module}: ${describeError(error)}`);
  }
  const generator = exports[exportName];
  if (typeof generator !== "function") {
    throw new Error(`Sync model module ${module} does not export a generator function named "${exportName}"`);
  }
  generators.set(cacheKey, generator as SyncGenerator);
  return generator as SyncGenerator;
}

function toStreamPart(item: unknown): StreamPart | string {
  if (typeof item === "string") return item;
  if (typeof item === "object" && item !== null && typeof (item as { type?: unknown }).type === "string") {
    return item as StreamPart;
  }
  throw new Error(
    `The generator yielded ${inspect(item, { depth: 1 })}; yield strings (text) or stream parts`,
  );
}

function send(message: WorkerMessage): void {
  port!.postMessage(message);
}

function run(job: JobMessage, generator: SyncGenerator): void {
  const output = generator(job.request);
  if (typeof output !== "object" || output === null || !(Symbol.iterator in output)) {
    throw new Error(`Export "${job.exportName}" of ${job.module} must be a generator function (function*)`);
  }

  // Adjacent text is merged so a model yielding one word at a time costs one message per batch.
  let parts: StreamPart[] = [];
  let text = "";
  let lastFlush = performance.now();
  let sentAny = false;
  const flush = (): void => {
    if (text.length > 0) {
      parts.push({ type: "text", text });
      text = "";
    }
    if (parts.length === 0) return;
    send({ type: "parts", jobId: job.jobId, parts });
    parts = [];
    sentAny = true;
  };

  for (const item of output as Iterable<unknown>) {
    const part = toStreamPart(item);
    if (typeof part === "string") {
      text += part;
    } else if (part.type === "text") {
      text += part.text;
    } else {
      if (text.length > 0) {
        parts.push({ type: "text", text });
        text = "";
      }
      parts.push(part);
    }
    const now = performance.now();
    // The first chunk goes out at once; later ones are held at most one flush interval (or until
    // the next yield, which is all a blocking generator allows).
    if (
      !sentAny ||
      now - lastFlush >= FLUSH_INTERVAL_MS ||
      parts.length >= MAX_BATCH_PARTS ||
      text.length >= MAX_BATCH_TEXT
    ) {
      flush();
      lastFlush = now;
    }
  }
  flush();
}

port.on("message", async (job: JobMessage) => {
  try {
    const generator = await loadGenerator(job.module, job.exportName);
    run(job, generator);
    send({ type: "done", jobId: job.jobId });
  } catch (error) {
    send({
      type: "error",
      jobId: job.jobId,
      message: describeError(error),
      errorName: error instanceof Error ? error.name : typeof error,
    });
  }
});
