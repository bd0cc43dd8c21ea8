/**
 * The requests an app is answering, streams included, so a shutdown can wait for them (bounded)
 * and then abort whatever is left.
 */
export class InFlightRequests {
  #count = 0;
  #idle: (() => void)[] = [];
  readonly #controllers = new Set<AbortController>();

  get count(): number {
    return this.#count;
  }

  /** Registers one request; the returned function ends it (calling it again does nothing). */
  begin(): { controller: AbortController; end: () => void } {
    this.#count++;
    const controller = new AbortController();
    this.#controllers.add(controller);
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      this.#controllers.delete(controller);
      if (--this.#count === 0) {
        const waiters = this.#idle;
        this.#idle = [];
        for (const wake of waiters) wake();
      }
    };
    return { controller, end };
  }

  /** Resolves `true` once no request is in flight, or `false` after `timeoutMs`. */
  idle(timeoutMs: number): Promise<boolean> {
    if (this.#count === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.#idle.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Aborts every request still running (their upstream calls end, and are charged as delivered). */
  abortAll(reason: string): void {
    for (const controller of this.#controllers) controller.abort(new Error(reason));
  }
}
