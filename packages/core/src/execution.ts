import { describeError } from "./errors.ts";
import type { ModelResponse, ResponseScope } from "./response.ts";
import type { ExecutionStart, FallbackModel } from "./types.ts";

export interface ExecutionOutcome {
  responses: readonly ModelResponse[];
  /** Set when the prompt or chain failed. */
  error?: unknown;
}

/**
 * Watches one prompt or one whole chain, in the same three phases as the hub's `PromptContext`.
 * This is the single mechanism through which the hub's hooks see executions, so every access path
 * (iteration, `text()`, conversations, chains) is observed the same way.
 */
export interface ExecutionObserver {
  /** Runs before any request is sent; throwing refuses the prompt (then `after` is not called). */
  before?: () => Promise<void> | void;
  /** Runs after each response completes, successfully or not. */
  onResponse?: (response: ModelResponse) => Promise<void> | void;
  /** Runs once when the prompt or chain ends, on success or failure. */
  after?: (outcome: ExecutionOutcome) => Promise<void> | void;
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

/** Errors thrown by observers after a response exists must not lose that response. */
function reportObserverError(error: unknown): void {
  process.emitWarning(`Switchboard hook failed: ${describeError(error)}`, { code: "SWITCHBOARD_HOOK" });
}

/** The lifecycle of one observed execution: `before` once, `after` once, never `after` without `before`. */
export class ExecutionScope implements ResponseScope {
  readonly responses: ModelResponse[] = [];
  readonly #observer: ExecutionObserver | undefined;
  #began: Promise<void> | undefined;
  #refused = false;
  #ended = false;

  constructor(observer: ExecutionObserver | undefined) {
    this.#observer = observer;
  }

  before(): Promise<void> {
    if (!this.#began) {
      const before = this.#observer?.before;
      this.#began = before
        ? (async () => {
            try {
              await before();
            } catch (error) {
              this.#refused = true;
              throw error;
            }
          })()
        : Promise.resolve();
    }
    return this.#began;
  }

  async onResponse(response: ModelResponse): Promise<void> {
    this.responses.push(response);
    const onResponse = this.#observer?.onResponse;
    if (!onResponse) return;
    try {
      await onResponse(response);
    } catch (error) {
      reportObserverError(error);
    }
  }

  async after(error?: unknown): Promise<void> {
    if (this.#ended || this.#refused || !this.#began) return;
    this.#ended = true;
    const after = this.#observer?.after;
    if (!after) return;
    try {
      await after(error === undefined ? { responses: this.responses } : { responses: this.responses, error });
    } catch (hookError) {
      reportObserverError(hookError);
    }
  }
}
