/**
 * The last steps of the `restore` state machine (lambdas/restore-record): the history record of kind
 * `restore` (replacing the `running` one the validation wrote) with the measured duration — from the
 * validated start to the checked copy, the RTO the operator experienced — and the notify event with
 * the result, the database restored into and what to do next. A rejected input is only turned into
 * the execution's error and cause (nothing was started, nobody is paged for a typo at the console).
 */
import { formatDuration } from '../alerts/message';
import type { NotifyEvent } from '../alerts/notify';
import type { HistoryRecord } from '../history/records';
import type { HistoryStore } from '../history/store';
import { TASK_ERRORS, causeText } from './task-errors';
import { RESTORE_TAG, type RdsRestoreStatus } from './rds-restore';
import { POST_CHECK_FAILED, type ConsoleRestoreOutput, type RestoreCheckOutput } from './restore-task';
import { isRdsPlan, type ValidatedRestore } from './restore-validate';

export interface RestoreRecordEvent {
  readonly outcome: 'succeeded' | 'failed' | 'rejected';
  readonly executionId: string;
  readonly state: {
    readonly database?: unknown;
    readonly validated?: { readonly result?: ValidatedRestore };
    readonly restore?: ConsoleRestoreOutput;
    readonly check?: RestoreCheckOutput;
    /** point-in-time: the last status of the new instance or cluster. */
    readonly rds?: { readonly result?: RdsRestoreStatus };
    readonly error?: { readonly Error?: string; readonly Cause?: unknown };
  };
}

export interface RestoreRecordResult {
  readonly status: 'succeeded' | 'failed';
  readonly record?: HistoryRecord;
  readonly error?: string;
  readonly cause?: string;
  readonly notify?: NotifyEvent;
  /** Seconds from the validated start to the end of the post-restore check. */
  readonly durationSeconds?: number;
}

export interface RestoreRecordDeps {
  readonly history: HistoryStore;
  readonly now?: () => Date;
}

export async function recordRestore(
  event: RestoreRecordEvent,
  deps: RestoreRecordDeps,
): Promise<RestoreRecordResult> {
  const state = event.state;
  if (event.outcome === 'rejected')
    return {
      status: 'failed',
      error: state.error?.Error ?? TASK_ERRORS.badInput,
      cause: causeText(state.error?.Cause) || 'the restore input was rejected',
    };
  const now = (deps.now ?? (() => new Date()))();
  const v = state.validated?.result;
  const database = v?.database.id ?? (typeof state.database === 'string' ? state.database : 'unknown');
  const startedAt = v?.startedAt ?? now.toISOString();
  const durationMs = Math.max(0, now.getTime() - Date.parse(startedAt));
  const plan = v?.job.restore;
  const target =
    state.restore?.targetDatabase ??
    (plan !== undefined && isRdsPlan(plan) ? plan.rds.target : plan?.targetDatabase);
  let status: RestoreRecordResult['status'] = event.outcome;
  let error: string | undefined;
  let cause: string | undefined;
  let message: string;
  if (event.outcome === 'failed') {
    error = state.error?.Error ?? 'Cofre.Failed';
    cause = `restore of ${database}${target ? ` into ${target}` : ''} failed: ${error}: ${causeText(state.error?.Cause) || 'no cause given'}`;
    message = cause;
  } else if (plan !== undefined && isRdsPlan(plan) && state.check && state.rds?.result) {
    const rds = state.rds.result;
    message = `${v?.summary ?? `restore into ${target}`}: available at ${rds.endpoint ? `${rds.endpoint.host}:${rds.endpoint.port}` : '(no endpoint)'} after ${formatDuration(rds.elapsedSeconds * 1000)}; RTO (start to checked copy) ${formatDuration(durationMs)} (${durationMs} ms); post-check: ${state.check.checks.join('; ')}`;
  } else if (!state.restore || !state.check) {
    status = 'failed';
    error = TASK_ERRORS.other;
    cause = `restore of ${database}: the ${state.restore ? 'post-restore check' : 'restore task'} reported nothing`;
    message = cause;
  } else {
    const r = state.restore;
    message = `${v?.summary ?? `restore into ${r.targetDatabase}`}: ${
      r.kind === 'tenant'
        ? `${r.dryRun ? 'would delete' : 'deleted'} ${r.deleted ?? 0} and ${r.dryRun ? 'would load' : 'loaded'} ${r.rows} rows in ${r.tables} table(s)`
        : `${r.tables} table(s), ${r.rows} rows${r.replaced ? ', the existing database replaced' : ''}`
    }; restore ${formatDuration(r.durationMs)}, RTO (start to checked copy) ${formatDuration(durationMs)} (${durationMs} ms); post-check: ${state.check.checks.join('; ')}`;
  }
  const record: HistoryRecord = {
    id: v?.runId ?? `restore-${now.toISOString()}`,
    kind: 'restore',
    database,
    ...(plan && !isRdsPlan(plan) && plan.tenant !== undefined ? { tenant: plan.tenant } : {}),
    status,
    startedAt,
    finishedAt: now.toISOString(),
    message,
    requestedBy: v?.requestedBy ?? 'console',
    ...(event.executionId.startsWith('arn:') ? { executionArn: event.executionId } : {}),
  };
  await deps.history.put(record);
  const notify: NotifyEvent = {
    outcome: status,
    job: 'restore',
    database,
    kind: 'restore',
    record,
    ...(event.executionId.startsWith('arn:') ? { executionArn: event.executionId } : {}),
    ...(error ? { error } : {}),
    ...(cause ? { cause } : {}),
    nextSteps: nextSteps(status, v, state.restore, error),
    ...(state.restore
      ? {
          summary: {
            backupId: state.restore.backupId,
            tables: state.restore.tables,
            rows: state.restore.rows,
          },
        }
      : {}),
  };
  return {
    status,
    record,
    ...(error ? { error } : {}),
    ...(cause ? { cause } : {}),
    notify,
    durationSeconds: Math.round(durationMs / 1000),
  };
}

/** What the operator does next, by kind and outcome. */
export function nextSteps(
  status: 'succeeded' | 'failed',
  v: ValidatedRestore | undefined,
  restore: ConsoleRestoreOutput | undefined,
  error: string | undefined,
): string[] {
  const plan = v?.job.restore;
  if (plan !== undefined && isRdsPlan(plan)) {
    const what = plan.rds.resource === 'cluster' ? 'cluster' : 'instance';
    return status === 'failed'
      ? [
          '1. Open the execution (link above): the failed state and its cause say what went wrong.',
          `2. The new ${what} ${plan.rds.target} may exist (tagged ${RESTORE_TAG}): check it in the RDS console; the source ${plan.rds.source} was not touched.`,
          error === 'Cofre.RestoreTimedOut'
            ? `3. It was not available within the timeout: wait for it in the RDS console (the restore goes on), or delete it (the restore role cannot) and start again with a larger "timeoutMinutes".`
            : `3. Delete ${plan.rds.target} if it is not wanted (the restore role cannot delete), fix the cause and start again.`,
        ]
      : [
          `1. The new ${what} ${plan.rds.target} is available (restored to ${plan.rds.restoreTime ?? 'the latest restorable time'}); the source ${plan.rds.source} was not touched.`,
          `2. Check the data, then point the application at its endpoint (or copy what you need from it).`,
          `3. It costs money while it runs and it is not in an AWS Backup plan: delete it when done, or add it to databases[] in cofre.config.ts.`,
        ];
  }
  const target = restore?.targetDatabase ?? plan?.targetDatabase ?? '<target>';
  const named = plan !== undefined && !isRdsPlan(plan) ? plan.target : undefined;
  const server = named ? `restore target ${named.name}` : `${v?.database.id ?? '<database>'}'s server`;
  if (status === 'failed') {
    const steps = [
      '1. Open the execution (link above): the failed state and its cause say what went wrong.',
      error === POST_CHECK_FAILED
        ? `2. The restored ${target} does NOT match the backup's manifest: do not point the application at it. Compare by hand, then drop it (DROP DATABASE) and restore again.`
        : `2. Nothing half-made is kept: a failed restore drops its temporary copy (check that no database ${target} or *_cofre_restoring_* is left on ${server}).`,
      '3. Fix the cause and start the restore again with the same input (a new execution).',
    ];
    if (error === TASK_ERRORS.integrity)
      steps.push(
        '4. The backup itself failed its checks: restore an older backup, and run cofre verify --deep on this one.',
      );
    return steps;
  }
  if (!plan) return ['Nothing to do.'];
  if (plan.kind === 'tenant' && plan.dryRun)
    return [
      `1. Read the dry run above: what restoring tenant ${plan.tenant} would delete and load in ${target}. Nothing was changed.`,
      `2. To restore for real, start the restore again with "dryRun": false and "confirm": "${target}" (or "intoDatabase" to restore into a new database first).`,
    ];
  if (plan.kind === 'database')
    return [
      `1. The restored copy is the database ${target} on ${server}${plan.replace ? ' (it replaced the previous one)' : ''}; its row counts match the backup's manifest.`,
      plan.replace
        ? '2. The application can use it now; check it does.'
        : `2. Compare it with the live database, then either point the application at ${target} or copy what you need from it.`,
      plan.replace
        ? '3. Record the incident.'
        : `3. Drop ${target} when you are done with it (it is not backed up unless you add it to databases[].databases).`,
    ];
  if (plan.kind === 'table')
    return plan.intoTable
      ? [
          `1. The rows are in the new table ${plan.intoTable} of ${target}; compare them with ${plan.table}.`,
          `2. Swap or copy what you need (in one transaction), then drop ${plan.intoTable}.`,
        ]
      : [`1. ${plan.table} in ${target} holds the backup's rows again; check the application.`];
  return plan.targetIs === 'new'
    ? [
        `1. Tenant ${plan.tenant}'s rows are in the new database ${target}; compare them with the live ones.`,
        `2. To replace the live rows, start a tenant restore with "dryRun": false and "confirm": "<live database>"; drop ${target} when done.`,
      ]
    : [
        `1. Tenant ${plan.tenant}'s rows in ${target} are the backup's again; tell the tenant and check the application.`,
      ];
}
