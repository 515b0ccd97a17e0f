/**
 * Error names the orchestration reports to Step Functions (the `Error` of SendTaskFailure, the
 * `errorType` of a Lambda), which the ASL files retry or catch on. See state-machines/README.md.
 */
import { CancelledError, CofreError, IntegrityError, UsageError, messageOf } from '../util/errors';

export const TASK_ERRORS = {
  /** Bad input or configuration: retrying cannot help. */
  badInput: 'Cofre.BadInput',
  /** A backup does not match its manifest. */
  integrity: 'Cofre.IntegrityFailed',
  /** The task got SIGTERM (Fargate stop, Spot reclaim): worth a retry. */
  cancelled: 'Cofre.Cancelled',
  /** The dump / export failed (database, network, storage): worth a retry. */
  dump: 'Cofre.DumpFailed',
  /** A restore test found no full backup of the database in the vault: retrying cannot help. */
  nothingToRestore: 'Cofre.NothingToRestore',
  /** A restore test could not restore (database, network, storage): worth a retry. */
  restore: 'Cofre.RestoreFailed',
  /** Quick verification of a new backup failed. */
  verify: 'Cofre.VerifyFailed',
  /** Anything else (a bug): retried like a dump failure, and reported. */
  other: 'Cofre.TaskFailed',
} as const;

/** The Step Functions error name for an error thrown by the engine. */
export function taskErrorName(error: unknown): string {
  if (error instanceof NamedError) return error.name;
  if (error instanceof UsageError) return TASK_ERRORS.badInput;
  if (error instanceof IntegrityError) return TASK_ERRORS.integrity;
  if (error instanceof CancelledError) return TASK_ERRORS.cancelled;
  if (error instanceof CofreError) return TASK_ERRORS.dump;
  return TASK_ERRORS.other;
}

/** An error whose `name` is the Step Functions error name (Lambda reports it as `errorType`). */
export class NamedError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

/** The same error with the Step Functions name, so a Lambda's `errorType` is what the ASL catches. */
export function asNamedError(error: unknown): NamedError {
  if (error instanceof NamedError) return error;
  return new NamedError(taskErrorName(error), messageOf(error));
}

/**
 * The readable cause of a caught error: a Lambda's cause is its JSON error payload
 * (`{"errorType":…,"errorMessage":…,"trace":…}`); a task's is the text it sent.
 */
export function causeText(cause: unknown): string {
  if (typeof cause !== 'string') return cause === undefined ? '' : JSON.stringify(cause);
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: unknown } | null;
    if (typeof parsed?.errorMessage === 'string') return parsed.errorMessage;
  } catch {
    // plain text
  }
  return cause;
}
