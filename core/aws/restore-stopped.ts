/**
 * A console restore whose execution was stopped (ABORTED) or timed out (TIMED_OUT): Step Functions runs
 * no Catch then, so the `running` history record the validation wrote would stay `running` forever.
 * EventBridge sends the execution's status change here (lambdas/restore-stopped); the record is marked
 * `failed` with the reason, and the failure is notified like any failed restore.
 *
 * The record's id is derived from the execution ({@link restoreRecordId}), so both writers name the
 * same record whatever their order: the validation writes `running` only if the record is absent or
 * still running, and this handler writes `failed` the same way. A stop while the validation Lambda
 * is still running (Step Functions does not wait for it) thus ends `failed` whichever write lands
 * last; a record already finished (recorded succeeded or failed) is left as it is. The running
 * record, when there is one, is found by its `executionArn` among the database's `running` restore
 * records (the database is read from the execution's input), to keep its start and summary.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { NotifyEvent } from '../alerts/message';
import type { HistoryRecord } from '../history/records';
import type { RecentHistory, RunningRecords } from '../history/store';

/** The history id of a console restore execution's record: the same for its validation and its stop. */
export function restoreRecordId(executionArn: string): string {
  return `restore-${createHash('sha256').update(executionArn).digest('hex').slice(0, 24)}`;
}

/** The execution statuses that end an execution without running its Catch. */
export const STOPPED_STATUSES = ['ABORTED', 'TIMED_OUT'] as const;

/** How many `running` restore records of one database are searched for the execution. */
const RUNNING_SEARCH_LIMIT = 50;

const eventSchema = z.object({
  source: z.literal('aws.states'),
  'detail-type': z.literal('Step Functions Execution Status Change'),
  detail: z.object({
    executionArn: z.string().startsWith('arn:'),
    stateMachineArn: z.string().startsWith('arn:'),
    name: z.string(),
    status: z.enum(STOPPED_STATUSES),
    startDate: z.number(),
    stopDate: z.number().nullish(),
    input: z.string().nullish(),
    error: z.string().nullish(),
    cause: z.string().nullish(),
  }),
});

export type ExecutionStoppedEvent = z.infer<typeof eventSchema>;

/** Parses an EventBridge "Step Functions Execution Status Change" event, or throws naming the field. */
export function parseExecutionStoppedEvent(input: unknown): ExecutionStoppedEvent {
  const parsed = eventSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  throw new Error(
    `not a stopped Step Functions execution event: ${parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(event)'}: ${i.message}`).join('; ')}`,
  );
}

export interface RestoreStoppedDeps {
  readonly history: RunningRecords & Pick<RecentHistory, 'recent'>;
  readonly notify: (event: NotifyEvent) => Promise<unknown>;
  readonly now?: () => Date;
}

export interface RestoreStoppedResult {
  /** The record marked failed: the validation's, or a new one if the validation had not written it yet. */
  readonly record?: HistoryRecord;
  readonly database: string;
  readonly reason: string;
}

/** The database id of the execution's input, if it names one. */
function databaseOf(input: string | null | undefined): string | undefined {
  if (!input) return undefined;
  try {
    const parsed: unknown = JSON.parse(input);
    if (parsed && typeof parsed === 'object' && 'database' in parsed) {
      const database = parsed.database;
      if (typeof database === 'string' && database.length > 0) return database;
    }
  } catch {
    // An input that is not JSON was rejected by the validation: no record to find.
  }
  return undefined;
}

/** Who asked for the restore, from the execution's input, if it says. */
function requestedByOf(input: string | null | undefined): string | undefined {
  try {
    const parsed: unknown = JSON.parse(input ?? '');
    if (parsed && typeof parsed === 'object' && 'requestedBy' in parsed) {
      const who = parsed.requestedBy;
      if (typeof who === 'string' && who.length > 0 && who.length <= 200) return who;
    }
  } catch {
    // Not JSON: nobody named.
  }
  return undefined;
}

/** Marks the `running` record of a stopped or timed-out restore execution failed, and notifies. */
export async function recordStoppedRestore(
  input: unknown,
  deps: RestoreStoppedDeps,
): Promise<RestoreStoppedResult> {
  const { detail } = parseExecutionStoppedEvent(input);
  const now = (deps.now ?? (() => new Date()))();
  const stoppedAt = new Date(detail.stopDate ?? now.getTime());
  const how = detail.status === 'ABORTED' ? 'stopped' : 'timed out (the state machine timeout)';
  const extra = [detail.error, detail.cause].filter((t): t is string => !!t).join(': ');
  const reason = `restore execution ${detail.name} ${how} at ${stoppedAt.toISOString()}${extra ? ` (${extra})` : ''}: the restore did not finish; its target may be incomplete`;
  const database = databaseOf(detail.input);
  const running = database
    ? await deps.history.recent(database, 'restore', 'running', RUNNING_SEARCH_LIMIT)
    : [];
  const found = running.find((r) => r.executionArn === detail.executionArn);
  let record: HistoryRecord | undefined;
  if (database) {
    const failed: HistoryRecord = found
      ? {
          ...found,
          status: 'failed',
          finishedAt: stoppedAt.toISOString(),
          message: `${reason}. Was: ${found.message ?? ''}`.trim(),
        }
      : {
          // Not written yet (the validation may still be running): written failed now, so a late
          // `running` write of the validation is refused and the record cannot stay running.
          id: restoreRecordId(detail.executionArn),
          kind: 'restore',
          database,
          status: 'failed',
          startedAt: new Date(detail.startDate).toISOString(),
          finishedAt: stoppedAt.toISOString(),
          message: `${reason}; it was stopped before its validation had recorded it`,
          requestedBy: requestedByOf(detail.input) ?? 'console',
          executionArn: detail.executionArn,
        };
    // A record already finished (the restore was recorded, then stopped while notifying) stays.
    if (await deps.history.putUnlessFinished(failed)) record = failed;
  }
  const error = detail.status === 'ABORTED' ? 'Cofre.RestoreStopped' : 'Cofre.RestoreTimedOut';
  await deps.notify({
    outcome: 'failed',
    job: 'restore',
    database: database ?? 'unknown',
    kind: 'restore',
    ...(record ? { record } : {}),
    executionArn: detail.executionArn,
    error,
    cause: found ? reason : `${reason}; no running history record of this execution was found`,
    nextSteps: [
      '1. Open the execution (link above): the last state it was in says how far the restore got.',
      '2. A new target database (or *_cofre_restoring_* copy) may be left half-made: check the target server and drop it.',
      '3. Start the restore again with the same input (a new execution), with a larger "timeoutMinutes" if it timed out.',
    ],
  });
  return { ...(record ? { record } : {}), database: database ?? 'unknown', reason };
}
