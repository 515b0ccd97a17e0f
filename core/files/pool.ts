/**
 * At most `size` tasks at once; the first failure stops new tasks (the signal aborts the running
 * ones) and is what {@link drain} throws.
 */
export class TaskPool {
  private readonly running = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;
  private readonly controller = new AbortController();

  constructor(
    private readonly size: number,
    outer?: AbortSignal,
  ) {
    if (outer) {
      if (outer.aborted) this.controller.abort(outer.reason);
      else
        outer.addEventListener(
          'abort',
          () => {
            this.controller.abort(outer.reason);
          },
          { once: true },
        );
    }
  }

  /** Aborted on the first failure (or when the outer signal aborts). */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The first task failure, if there was one (the real cause when other work was aborted by it). */
  get firstFailure(): unknown {
    return this.failure?.error;
  }

  /** Waits for a free slot, then starts `task`; throws the first failure instead once there is one. */
  async add(task: (signal: AbortSignal) => Promise<void>): Promise<void> {
    while (this.running.size >= this.size && !this.failure) await Promise.race(this.running);
    this.throwIfFailed();
    // Each task gets its own signal, tied to the pool's only while it runs: whatever the SDK hangs on
    // a request's signal is let go with the task (listeners on one long-lived signal would pile up).
    const child = new AbortController();
    const forward = () => {
      child.abort(this.controller.signal.reason);
    };
    this.controller.signal.addEventListener('abort', forward, { once: true });
    const p: Promise<void> = task(child.signal)
      .finally(() => {
        this.controller.signal.removeEventListener('abort', forward);
      })
      .catch((error: unknown) => {
        // A task that fails because the pool was already aborted (settle, the outer signal) is not the cause.
        if (!this.failure && !this.controller.signal.aborted) {
          this.failure = { error };
          this.controller.abort(error);
        }
      })
      .finally(() => this.running.delete(p));
    this.running.add(p);
  }

  /** Waits for every started task; throws the first failure. */
  async drain(): Promise<void> {
    await this.settle();
    this.throwIfFailed();
  }

  /** Stops new work, aborts and waits for the running tasks, never throws (after a failure elsewhere). */
  async settle(abortReason?: unknown): Promise<void> {
    if (abortReason !== undefined && !this.controller.signal.aborted) this.controller.abort(abortReason);
    while (this.running.size) await Promise.all([...this.running]);
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }
}
