/**
 * The RDS steps of the console restore (lambdas/restore-rds): `start` the point-in-time restore the
 * validation planned, then `status` in a Wait/poll loop of the state machine until the new instance
 * or cluster is available or the restore's timeout has passed.
 */
import type { RDSClient } from '@aws-sdk/client-rds';
import { UsageError } from '../util/errors';
import { rdsRestoreStatus, startRdsRestore, type RdsRestoreStatus } from './rds-restore';
import { isRdsPlan, type RestoreJob, type ValidatedRestore } from './restore-validate';

export interface RdsRestoreEvent {
  readonly action: 'start' | 'status';
  readonly validated: ValidatedRestore;
  readonly executionId: string;
}

export interface RdsStatusResult extends RdsRestoreStatus {
  /** The job for the post-restore check: the validated one with the new endpoint. */
  readonly job: RestoreJob;
}

/** The execution's name (the last part of its ARN): the `cofre:restore` tag value. */
export function runName(executionId: string): string {
  return executionId.split(':').at(-1) || executionId;
}

export async function rdsRestoreStep(
  event: RdsRestoreEvent,
  deps: { readonly rdsIn: (region: string | undefined) => RDSClient; readonly now?: () => Date },
): Promise<{ started: string } | RdsStatusResult> {
  const plan = event.validated.job.restore;
  if (!isRdsPlan(plan))
    throw new UsageError(
      `validated.job.restore.kind: expected "point-in-time" or "snapshot", got "${plan.kind}"`,
    );
  // A snapshot restore is made in its recovery point's region (primary or DR).
  const rds = deps.rdsIn(plan.rds.region);
  if (event.action === 'start') return startRdsRestore(plan.rds, rds, runName(event.executionId));
  if ((event.action as string) !== 'status')
    throw new UsageError(`action: expected "start" or "status", got ${JSON.stringify(event.action)}`);
  const status = await rdsRestoreStatus(
    plan.rds,
    rds,
    event.validated.startedAt,
    event.validated.timeoutSeconds,
    (deps.now ?? (() => new Date()))(),
  );
  return {
    ...status,
    job: {
      ...event.validated.job,
      restore: { ...plan, ...(status.endpoint ? { endpoint: status.endpoint } : {}) },
    },
  };
}
