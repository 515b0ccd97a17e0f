/**
 * A console restore whose execution was stopped (ABORTED) or timed out (TIMED_OUT): Step Functions runs
 * no Catch then, so the `running` history record the validation wrote would stay `running` forever.
 * EventBridge sends the execution's status change here (lambdas/restore-stopped); the record is marked
 * `failed` with the reason, and the failure is notified like any failed restore.
 *
 * The record is found by its `executionArn` among the database's `running` restore records (the
 * database is read from the execution's input). A stop before the validation wrote a record finds
 * none: that is reported (notified as a stopped restore with no record) rather than ignored.
 */
import { z } from 'zod';
import type { NotifyEvent } from '../alerts/message';
import type { HistoryRecord } from '../history/records';
import type { HistoryStore, RecentHistory } from '../history/store';

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
  readonly history: Pick<HistoryStore, 'put'> & Pick<RecentHistory, 'recent'>;
  readonly notify: (event: NotifyEvent) => Promise<unknown>;
  readonly now?: () => Date;
}

export interface RestoreStoppedResult {
  /** The record marked failed, if the validation had written one. */
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
  if (found) {
    record = {
      ...found,
      status: 'failed',
      finishedAt: stoppedAt.toISOString(),
      message: `${reason}. Was: ${found.message ?? ''}`.trim(),
    };
    await deps.history.put(record);
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
