/**
 * Runs sync (blocking-generator) models in a pool of worker threads, so every model is usable
 * asynchronously and none blocks the event loop. The pool is created on first use; idle workers are
 * unref'd so they never keep the process alive. A job is cancelled by terminating its worker (a
 * blocking generator cannot be interrupted otherwise); a replacement is spawned when work waits.
 */
import { availableParallelism } from "node:os";
import { isAbsolute } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { abortError } from "../abort.ts";
import { describeError, SwitchboardError } from "../errors.ts";
import type {
  ModelRequest,
  StreamPart,
  SyncModelDefinition,
  SyncModelRequest,
  ToolDefinition,
} from "../types.ts";

/** Main thread → worker: run one generator. */
export interface JobMessage {
  jobId: number;
  /** URL or package specifier of the model's module, importable from the worker. */
  module: string;
  exportName: string;
  request: SyncModelRequest;
}

/** Worker → main thread. */
export type WorkerMessage =
  | { type: "parts"; jobId: number; parts: StreamPart[] }
  | { type: "done"; jobId: number }
  | { type: "error"; jobId: number; message: string; errorName: string };

export interface WorkerPoolStats {
  /** Most workers the pool runs at once. */
  size: number;
  workers: number;
  busy: number;
  queued: number;
}

const WORKER_URL = new URL("./worker.ts", import.meta.url);

interface Job {
  readonly message: JobMessage;
  readonly modelId: string;
  /** Parts received and not yet handed to the consumer. */
  buffered: StreamPart[];
  finished: boolean;
  failure: SwitchboardError | undefined;
  /** Resumes the consumer waiting for parts, set while it waits. */
  wake: (() => void) | undefined;
}

interface PoolWorker {
  readonly worker: Worker;
  job: Job | undefined;
}

let nextJobId = 1;

class WorkerPool {
  readonly size: number;
  readonly #workers = new Set<PoolWorker>();
  readonly #idle: PoolWorker[] = [];
  readonly #queue: Job[] = [];
  readonly #terminations = new Set<Promise<unknown>>();

  constructor(size: number) {
    this.size = size;
  }

  stats(): WorkerPoolStats {
    return {
      size: this.size,
      workers: this.#workers.size,
      busy: this.#workers.size - this.#idle.length,
      queued: this.#queue.length,
    };
  }

  submit(job: Job): void {
    this.#queue.push(job);
    this.#dispatch();
  }

  /** The consumer is gone (abort or early exit): drop the job, killing its worker if it runs. */
  cancel(job: Job): void {
    if (job.finished || job.failure) return;
    job.finished = true;
    const queued = this.#queue.indexOf(job);
    if (queued >= 0) {
      this.#queue.splice(queued, 1);
      return;
    }
    for (const slot of this.#workers) {
      if (slot.job === job) {
        this.#retire(slot);
        break;
      }
    }
    this.#dispatch();
  }

  async shutdown(): Promise<void> {
    const shutDown = (job: Job) =>
      new SwitchboardError("ABORTED", `Model ${job.modelId} was stopped: the worker pool was shut down.`, {
        model: job.modelId,
      });
    for (const job of this.#queue.splice(0)) fail(job, shutDown(job));
    for (const slot of [...this.#workers]) {
      if (slot.job) fail(slot.job, shutDown(slot.job));
      this.#retire(slot);
    }
    await Promise.all(this.#terminations);
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      const slot = this.#idle.pop() ?? (this.#workers.size < this.size ? this.#spawn() : undefined);
      if (slot === undefined) return;
      const job = this.#queue.shift()!;
      try {
        slot.worker.postMessage(job.message);
      } catch (error) {
        slot.worker.unref();
        this.#idle.push(slot);
        fail(
          job,
          new SwitchboardError(
            "WORKER_ERROR",
            `The request for model ${job.modelId} cannot be sent to a worker thread: ${describeError(error)}`,
            { model: job.modelId },
            { cause: error },
          ),
        );
        continue;
      }
      slot.job = job;
      slot.worker.ref();
    }
  }

  #spawn(): PoolWorker {
    const slot: PoolWorker = { worker: new Worker(WORKER_URL), job: undefined };
    slot.worker.on("message", (message: WorkerMessage) => this.#onMessage(slot, message));
    slot.worker.on("error", (error) => this.#onCrash(slot, `crashed: ${describeError(error)}`));
    slot.worker.on("exit", (code) => this.#onCrash(slot, `exited with code ${code}`));
    this.#workers.add(slot);
    return slot;
  }

  #onMessage(slot: PoolWorker, message: WorkerMessage): void {
    const job = slot.job;
    if (job === undefined || job.message.jobId !== message.jobId) return;
    if (message.type === "parts") {
      if (job.buffered.length === 0) job.buffered = message.parts;
      else for (const part of message.parts) job.buffered.push(part);
      job.wake?.();
      return;
    }
    this.#release(slot);
    if (message.type === "done") {
      job.finished = true;
      job.wake?.();
    } else {
      fail(
        job,
        new SwitchboardError("WORKER_ERROR", message.message, {
          model: job.modelId,
          errorName: message.errorName,
        }),
      );
    }
  }

  /** Only the job on a crashed worker fails; the next queued job gets a fresh worker. */
  #onCrash(slot: PoolWorker, what: string): void {
    if (!this.#workers.has(slot)) return;
    this.#forget(slot);
    const job = slot.job;
    slot.job = undefined;
    if (job) {
      fail(
        job,
        new SwitchboardError("WORKER_ERROR", `The worker thread running model ${job.modelId} ${what}.`, {
          model: job.modelId,
        }),
      );
    }
    this.#dispatch();
  }

  #release(slot: PoolWorker): void {
    slot.job = undefined;
    slot.worker.unref();
    this.#idle.push(slot);
    this.#dispatch();
  }

  #retire(slot: PoolWorker): void {
    this.#forget(slot);
    slot.job = undefined;
    slot.worker.unref();
    const termination = slot.worker.terminate().finally(() => this.#terminations.delete(termination));
    this.#terminations.add(termination);
  }

  #forget(slot: PoolWorker): void {
    this.#workers.delete(slot);
    const idleIndex = this.#idle.indexOf(slot);
    if (idleIndex >= 0) this.#idle.splice(idleIndex, 1);
  }
}

function fail(job: Job, error: SwitchboardError): void {
  job.failure = error;
  job.wake?.();
}

let pool: WorkerPool | undefined;

function workerPool(): WorkerPool {
  pool ??= new WorkerPool(Math.min(4, availableParallelism()));
  return pool;
}

/** Terminates every worker; running and queued jobs fail with `ABORTED`. The next job starts a new pool. */
export async function shutdownWorkerPool(): Promise<void> {
  const current = pool;
  pool = undefined;
  await current?.shutdown();
}

/** Current pool occupancy (all zeros before the first sync model runs). */
export function workerPoolStats(): WorkerPoolStats {
  return pool?.stats() ?? { size: Math.min(4, availableParallelism()), workers: 0, busy: 0, queued: 0 };
}

/**
 * The `execute` of every sync model: runs `definition.sync.module`'s generator in a worker and
 * streams what it yields. Errors inside the worker surface as `WORKER_ERROR`; aborting the request
 * (or leaving the loop early) ends the job at once with `ABORTED`/`TIMEOUT` and kills its worker.
 */
export async function* runSyncModel(
  definition: SyncModelDefinition,
  request: ModelRequest,
): AsyncGenerator<StreamPart, void, undefined> {
  const { signal } = request;
  const subject = { model: definition.id };
  if (signal.aborted) throw abortError(signal, subject);
  const job: Job = {
    message: {
      jobId: nextJobId++,
      module: moduleSpecifier(definition),
      exportName: definition.sync.exportName ?? "generate",
      request: toSyncRequest(request),
    },
    modelId: definition.id,
    buffered: [],
    finished: false,
    failure: undefined,
    wake: undefined,
  };
  const jobPool = workerPool();
  // Kill the worker at once, even if the consumer never asks for the next part.
  const onAbort = () => {
    jobPool.cancel(job);
    job.wake?.();
  };
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    jobPool.submit(job);
    for (;;) {
      if (signal.aborted) throw abortError(signal, subject);
      if (job.buffered.length > 0) {
        const batch = job.buffered;
        job.buffered = [];
        for (const part of batch) {
          yield part;
          if (signal.aborted) throw abortError(signal, subject);
        }
        continue;
      }
      if (job.failure) throw job.failure;
      if (job.finished) return;
      await new Promise<void>((resolve) => {
        job.wake = resolve;
      });
      job.wake = undefined;
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    jobPool.cancel(job);
  }
}

/** The worker imports by URL or package specifier; a relative path would resolve against the pool's own file. */
function moduleSpecifier(definition: SyncModelDefinition): string {
  const { module } = definition.sync;
  if (module instanceof URL) return module.href;
  if (isAbsolute(module)) return pathToFileURL(module).href;
  if (module.startsWith(".")) {
    throw new SwitchboardError(
      "WORKER_ERROR",
      `Sync model ${definition.id} names its module by the relative path "${module}": ` +
        `use new URL("${module}", import.meta.url), an absolute path or a package specifier.`,
      { model: definition.id },
    );
  }
  return module;
}

/** Tools may carry `execute` functions, which cannot cross a thread boundary; the model only needs their definitions. */
function toolDefinitions(tools: readonly ToolDefinition[]): ToolDefinition[] {
  return tools.map(({ name, description, inputSchema }) => ({
    name,
    ...(description === undefined ? {} : { description }),
    ...(inputSchema === undefined ? {} : { inputSchema }),
  }));
}

function toSyncRequest(request: ModelRequest): SyncModelRequest {
  const { signal: _signal, tools, ...rest } = request;
  return { ...rest, tools: toolDefinitions(tools) };
}
