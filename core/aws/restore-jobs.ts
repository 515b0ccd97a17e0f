/**
 * AWS Backup restore jobs as the restore-test validations see them (RDS snapshots,
 * core/rds/restore-validation.ts; AWS S3 buckets, core/files/aws-restore-validation.ts): the
 * `Restore Job State Change` event, what DescribeRestoreJob says about the job, and the validation
 * result reported back with PutRestoreValidationResult. No database drivers here, so the small S3
 * validation Lambda does not bundle them.
 */
import {
  DescribeRestoreJobCommand,
  PutRestoreValidationResultCommand,
  type BackupClient,
} from '@aws-sdk/client-backup';
import { z } from 'zod';
import type { HistoryRecord } from '../history/records';
import type { HistoryStore } from '../history/store';
import { UsageError } from '../util/errors';

/** What AWS Backup says about the restore job (DescribeRestoreJob). */
export interface RestoreJobFacts {
  readonly restoreJobId: string;
  readonly status: string;
  readonly statusMessage?: string | undefined;
  readonly creationDate: Date;
  readonly completionDate?: Date | undefined;
  readonly sourceResourceArn?: string | undefined;
  readonly recoveryPointArn?: string | undefined;
  readonly recoveryPointCreationDate?: Date | undefined;
  readonly createdResourceArn?: string | undefined;
  readonly restoreTestingPlanArn?: string | undefined;
  /** Set once a validation result was reported (SUCCESSFUL, FAILED, TIMED_OUT, VALIDATING). */
  readonly validationStatus?: string | undefined;
}

/** Restore job states that end a restore test without a restored resource (AWS Backup `RestoreJobStatus`). */
export const RESTORE_FAILED_STATES = ['FAILED', 'ABORTED'] as const;

/** AWS Backup's limit on `ValidationStatusMessage` is not documented; the message is cut to this many characters. */
export const MAX_VALIDATION_MESSAGE = 1000;

/**
 * What a restore testing validation does with a job: ignore it (not of `planArn`, not ended yet, or
 * validated already), or handle it, as a failed test when the restore itself failed or was aborted.
 */
export function triageRestoreTestJob(
  job: RestoreJobFacts,
  planArn: string,
  planLabel: string,
):
  | { readonly ignored: true; readonly reason: string }
  | { readonly ignored: false; readonly restoreFailed: boolean } {
  if (job.restoreTestingPlanArn !== planArn)
    return { ignored: true, reason: `not a restore job of the ${planLabel}` };
  const restoreFailed = (RESTORE_FAILED_STATES as readonly string[]).includes(job.status);
  if (job.status !== 'COMPLETED' && !restoreFailed)
    return { ignored: true, reason: `restore job ${job.restoreJobId} is ${job.status}, not ended` };
  if (job.validationStatus && job.validationStatus !== 'VALIDATING')
    return {
      ignored: true,
      reason: `restore job ${job.restoreJobId} was already validated (${job.validationStatus})`,
    };
  return { ignored: false, restoreFailed };
}

/** The history id of a restore test run by AWS Backup (one per restore job). */
export function restoreTestIdOf(restoreJobId: string): string {
  return `awsbackup-restore-test-${restoreJobId}`;
}

const eventSchema = z.looseObject({
  source: z.literal('aws.backup'),
  'detail-type': z.literal('Restore Job State Change'),
  detail: z.looseObject({ restoreJobId: z.string().min(1) }),
});

/** The restore job id of a `Restore Job State Change` event; anything else is a {@link UsageError}. */
export function restoreJobIdOf(input: unknown): string {
  const parsed = eventSchema.safeParse(input);
  if (!parsed.success)
    throw new UsageError(
      `invalid restore job event: ${parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(event)'}: ${i.message}`).join('; ')}`,
    );
  return parsed.data.detail.restoreJobId;
}

/** DescribeRestoreJob, as {@link RestoreJobFacts}. */
export function describeRestoreJobWith(
  backup: BackupClient,
): (restoreJobId: string) => Promise<RestoreJobFacts> {
  return async (restoreJobId) => {
    const out = await backup.send(new DescribeRestoreJobCommand({ RestoreJobId: restoreJobId }));
    if (!out.CreationDate)
      throw new Error(`DescribeRestoreJob ${restoreJobId}: AWS Backup returned no CreationDate`);
    return {
      restoreJobId,
      status: out.Status ?? 'UNKNOWN',
      statusMessage: out.StatusMessage,
      creationDate: out.CreationDate,
      completionDate: out.CompletionDate,
      sourceResourceArn: out.SourceResourceArn,
      recoveryPointArn: out.RecoveryPointArn,
      recoveryPointCreationDate: out.RecoveryPointCreationDate,
      createdResourceArn: out.CreatedResourceArn,
      restoreTestingPlanArn: out.CreatedBy?.RestoreTestingPlanArn,
      validationStatus: out.ValidationStatus,
    };
  };
}

/**
 * PutRestoreValidationResult (AWS Backup then ends the validation window and deletes the restored
 * resource), its message cut to {@link MAX_VALIDATION_MESSAGE} characters.
 */
export function putValidationResultWith(
  backup: BackupClient,
): (restoreJobId: string, status: 'SUCCESSFUL' | 'FAILED', message: string) => Promise<void> {
  return async (restoreJobId, status, message) => {
    await backup.send(
      new PutRestoreValidationResultCommand({
        RestoreJobId: restoreJobId,
        ValidationStatus: status,
        ValidationStatusMessage:
          message.length <= MAX_VALIDATION_MESSAGE
            ? message
            : `${message.slice(0, MAX_VALIDATION_MESSAGE - 1)}…`,
      }),
    );
  };
}

/**
 * Where both restore-test validations report an outcome: the history table, and AWS Backup's
 * restore job (PutRestoreValidationResult, which ends its validation window).
 */
export interface RestoreTestOutcomeDeps {
  readonly history: Pick<HistoryStore, 'put'>;
  putValidationResult(restoreJobId: string, status: 'SUCCESSFUL' | 'FAILED', message: string): Promise<void>;
}

/**
 * Records a restore test's outcome: the history record, then the validation result on the restore
 * job, unless the restore itself failed or was aborted (nothing is in validation then).
 */
export async function recordRestoreTestOutcome(
  deps: RestoreTestOutcomeDeps,
  restoreJobId: string,
  record: HistoryRecord,
  outcome: { readonly passed: boolean; readonly message: string; readonly restoreFailed: boolean },
): Promise<void> {
  await deps.history.put(record);
  if (!outcome.restoreFailed)
    await deps.putValidationResult(restoreJobId, outcome.passed ? 'SUCCESSFUL' : 'FAILED', outcome.message);
}
