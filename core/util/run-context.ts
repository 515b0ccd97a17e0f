import { AsyncLocalStorage } from 'node:async_hooks';
import { CancelledError, IntegrityError, UsageError } from './errors';

/**
 * One cancellation path for a run (a backup, a restore, a verify): the run's abort signal and the
 * database session limits travel with the asynchronous context, so every stage started inside it
 * — each child process (`spawnTool`), each database session (`connectPostgres`, `connectMysql`)
 * — is tied to the same signal and gets the same `lock_timeout` / `statement_timeout`, without
 * every function having to pass them on. A stage added later is covered by the same path.
 */
export interface RunContext {
  /** Aborting it kills the run's child processes and cancels its sessions' running statements. */
  readonly signal?: AbortSignal | undefined;
  /** How long a statement waits for a lock before it fails (PostgreSQL `lock_timeout`, MySQL `lock_wait_timeout` and `innodb_lock_wait_timeout`). */
  readonly lockTimeoutMs: number;
  /** How long one statement may run (PostgreSQL `statement_timeout`, MariaDB `max_statement_time`); 0: no limit. */
  readonly statementTimeoutMs: number;
}

/** Defaults: a lock wait ends after 60 s; a statement after 6 hours (a whole-table COPY of a large table). */
export const DEFAULT_LOCK_TIMEOUT_MS = 60_000;
export const DEFAULT_STATEMENT_TIMEOUT_MS = 6 * 3600_000;
/** After a cancellation, how long cleanup (rollback, dropping what the run made) may take before the CLI exits anyway. */
export const CANCEL_GRACE_MS = 8_000;

const DEFAULTS: RunContext = {
  lockTimeoutMs: DEFAULT_LOCK_TIMEOUT_MS,
  statementTimeoutMs: DEFAULT_STATEMENT_TIMEOUT_MS,
};

const storage = new AsyncLocalStorage<RunContext>();

/** The context of the running code (defaults outside any run). */
export function currentRun(): RunContext {
  return storage.getStore() ?? DEFAULTS;
}

/**
 * Runs `fn` in a context with `options` added to the current one: both signals abort it (the
 * outer run's and this one's), limits given here replace the outer ones.
 */
export function withRun<T>(
  options: {
    readonly signal?: AbortSignal | undefined;
    readonly lockTimeoutMs?: number | undefined;
    readonly statementTimeoutMs?: number | undefined;
  },
  fn: () => Promise<T>,
): Promise<T> {
  const outer = currentRun();
  const signals = [outer.signal, options.signal].filter((s): s is AbortSignal => s !== undefined);
  const signal =
    signals.length === 0
      ? undefined
      : signals.length === 1 || signals[0] === signals[1]
        ? signals[0]
        : AbortSignal.any(signals);
  return storage.run(
    {
      signal,
      lockTimeoutMs: options.lockTimeoutMs ?? outer.lockTimeoutMs,
      statementTimeoutMs: options.statementTimeoutMs ?? outer.statementTimeoutMs,
    },
    fn,
  );
}

/**
 * {@link withRun}, and a run that was cancelled fails as cancelled: the statement, tool or pipe that
 * the cancellation interrupted ("Query execution was interrupted", "killed by SIGTERM", EPIPE) is
 * not the reason the run ended. Usage and integrity errors found before it keep their code.
 */
export async function withCancellableRun<T>(
  options: Parameters<typeof withRun>[0],
  fn: () => Promise<T>,
): Promise<T> {
  try {
    return await withRun(options, fn);
  } catch (error) {
    const signal = options.signal;
    if (
      signal?.aborted &&
      !(error instanceof CancelledError || error instanceof UsageError || error instanceof IntegrityError)
    )
      throw new CancelledError(String(signal.reason));
    throw error;
  }
}

/**
 * Runs cleanup `fn` outside the run's signal (with the same limits): dropping a half-made database
 * after a cancellation must not itself be cancelled.
 */
export function detached<T>(fn: () => Promise<T>): Promise<T> {
  const { lockTimeoutMs, statementTimeoutMs } = currentRun();
  return storage.run({ lockTimeoutMs, statementTimeoutMs }, fn);
}

/** Calls `onAbort` when the run's signal aborts (at once if it already has); returns the unsubscriber. */
export function onRunAbort(onAbort: () => void, signal = currentRun().signal): () => void {
  if (!signal) return () => undefined;
  if (signal.aborted) {
    onAbort();
    return () => undefined;
  }
  signal.addEventListener('abort', onAbort, { once: true });
  return () => {
    signal.removeEventListener('abort', onAbort);
  };
}

/**
 * Parses a duration flag: `30s`, `5m`, `2h`, `1500ms`, or plain seconds; `0` means no limit
 * where the flag allows it.
 */
export function parseDuration(value: string, flag: string, options: { allowZero?: boolean } = {}): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(value.trim());
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3600_000 } as const;
  const ms = m ? Math.round(Number(m[1]) * unit[(m[2] ?? 's') as keyof typeof unit]) : NaN;
  if (!Number.isFinite(ms) || (ms === 0 && !options.allowZero) || ms > 7 * 24 * 3600_000)
    throw new UsageError(
      `${flag}: expected a duration like 30s, 5m or 2h${options.allowZero ? ' (0: no limit)' : ''}, up to 7 days, got "${value}"`,
    );
  return ms;
}
