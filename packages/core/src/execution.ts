import { describeError } from "./errors.ts";
import type { ModelResponse } from "./response.ts";
import type { PromptInput } from "./types.ts";

/** What an observer learns when a top-level prompt or chain is created. */
export interface ExecutionStart {
  kind: "prompt" | "chain";
  modelId: string;
  input: PromptInput;
  /** The chain's id for a chain; a fresh `exec_…` id for a single prompt. */
  executionId: string;
  conversationId: string | undefined;
  /** Drives the execution to completion (errors are left to its consumer); used by groups. */
  complete: () => Promise<void>;
}

export interface ExecutionOutcome {
  responses: readonly ModelResponse[];
  /** Set when the prompt or chain failed. */
  error?: unknown;
}

/**
 * Watches one prompt or one whole chain. This is the single mechanism through which the hub's
 * hooks see executions, so every access path (iteration, `text()`, conversations, chains) is
 * observed the same way.
 */
export interface ExecutionObserver {
  /** Runs before any request is sent; throwing refuses the prompt (then `end` is not called). */
  begin?: () => Promise<void> | void;
  /** Runs after each response completes, successfully or not. */
  responseDone?: (response: ModelResponse) => Promise<void> | void;
  /** Runs once when the prompt or chain ends, on success or failure. */
  end?: (outcome: ExecutionOutcome) => Promise<void> | void;
}

/**
 * Set by the layer above the core (the hub) to govern every prompt of a model: the key to use,
 * fallback models and the observer of each execution.
 */
export interface ExecutionContext {
  key?: string;
  fallbacks?: readonly FallbackModel[];
  observe?: (start: ExecutionStart) => ExecutionObserver | undefined;
}

export interface FallbackModel {
  model: import("./model.ts").Model;
  key?: string;
}

/** Errors thrown by observers after a response exists must not lose that response. */
function reportObserverError(error: unknown): void {
  process.emitWarning(`Switchboard hook failed: ${describeError(error)}`, { code: "SWITCHBOARD_HOOK" });
}

/** The lifecycle of one observed execution: `begin` once, `end` once, never `end` without `begin`. */
export class ExecutionScope {
  readonly responses: ModelResponse[] = [];
  readonly #observer: ExecutionObserver | undefined;
  #begun: Promise<void> | undefined;
  #refused = false;
  #ended = false;

  constructor(observer: ExecutionObserver | undefined) {
    this.#observer = observer;
  }

  begin(): Promise<void> {
    if (!this.#begun) {
      const begin = this.#observer?.begin;
      this.#begun = begin
        ? (async () => {
            try {
              await begin();
            } catch (error) {
              this.#refused = true;
              throw error;
            }
          })()
        : Promise.resolve();
    }
    return this.#begun;
  }

  async responseDone(response: ModelResponse): Promise<void> {
    this.responses.push(response);
    const responseDone = this.#observer?.responseDone;
    if (!responseDone) return;
    try {
      await responseDone(response);
    } catch (error) {
      reportObserverError(error);
    }
  }

  async end(error?: unknown): Promise<void> {
    if (this.#ended || this.#refused || !this.#begun) return;
    this.#ended = true;
    const end = this.#observer?.end;
    if (!end) return;
    try {
      await end(error === undefined ? { responses: this.responses } : { responses: this.responses, error });
    } catch (hookError) {
      reportObserverError(hookError);
    }
  }
}
