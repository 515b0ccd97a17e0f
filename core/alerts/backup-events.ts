/**
 * AWS Backup job events (EventBridge `aws.backup`: Backup / Copy / Restore Job State Change) as
 * Cofre history records and alerts. A backup job of a continuous (point in time) recovery point is
 * kind `pitr`, any other backup job `snapshot`, a copy job (to the DR vault) `snapshot-copy`, a
 * restore job `restore`. Every state change updates one record per job (id `awsbackup-<job id>`);
 * a job that ends is also reported through the same notify path as the pipeline's jobs: FAILED,
 * ABORTED, EXPIRED and PARTIAL are failures (critical: e-mail and PagerDuty), COMPLETED a success.
 *
 * Pure mapping ({@link backupJobRun}) plus one step with injected dependencies ({@link recordBackupJobEvent}).
 */
import { z } from 'zod';
import { UsageError } from '../util/errors';
import { NO_DATABASE, type HistoryKind, type HistoryRecord, type HistoryStatus } from '../history/records';
import type { HistoryStore } from '../history/store';
import type { NotifyEvent } from './message';

/** The EventBridge detail types this module handles. */
export const BACKUP_EVENT_TYPES = [
  'Backup Job State Change',
  'Copy Job State Change',
  'Restore Job State Change',
] as const;
export type BackupEventType = (typeof BACKUP_EVENT_TYPES)[number];

/** Job states that end a job in failure (AWS Backup API `BackupJobState` / `CopyJobState` / `RestoreJobStatus`). */
export const FAILED_JOB_STATES = ['FAILED', 'ABORTED', 'EXPIRED', 'PARTIAL'] as const;
const RUNNING_JOB_STATES = ['CREATED', 'PENDING', 'RUNNING', 'ABORTING'];

/** The history `requestedBy` of runs that AWS Backup started. */
export const AWS_BACKUP_REQUESTER = 'aws-backup';

const detailSchema = z.looseObject({
  backupJobId: z.string().min(1).optional(),
  copyJobId: z.string().min(1).optional(),
  restoreJobId: z.string().min(1).optional(),
  state: z.string().optional(),
  status: z.string().optional(),
  statusMessage: z.string().optional(),
  resourceArn: z.string().optional(),
  resourceType: z.string().optional(),
  recoveryPointArn: z.string().optional(),
  destinationRecoveryPointArn: z.string().optional(),
  destinationBackupVaultArn: z.string().optional(),
  createdResourceArn: z.string().optional(),
  creationDate: z.string().optional(),
  completionDate: z.string().optional(),
  backupSizeInBytes: z.union([z.string(), z.number()]).optional(),
});

const eventSchema = z.looseObject({
  source: z.literal('aws.backup'),
  'detail-type': z.enum(BACKUP_EVENT_TYPES),
  time: z.string(),
  detail: detailSchema,
});

export type BackupJobEvent = z.infer<typeof eventSchema>;

/** Validates an EventBridge event, or throws naming the field. */
export function parseBackupJobEvent(input: unknown): BackupJobEvent {
  const result = eventSchema.safeParse(input);
  if (result.success) return result.data;
  throw new UsageError(
    `invalid AWS Backup event: ${result.error.issues.map((i) => `${i.path.map(String).join('.') || '(event)'}: ${i.message}`).join('; ')}`,
  );
}

/** A protected database: its id and the ARN AWS Backup reports as `resourceArn`. */
export interface BackupEventDatabase {
  readonly database: string;
  readonly resourceArn: string;
}

/** What one event means for Cofre. */
export interface BackupJobRun {
  readonly record: HistoryRecord;
  /** The alert, when the job has ended. */
  readonly notify?: NotifyEvent;
}

function isoOf(value: string | undefined, fallback: string): string {
  const time = Date.parse(value ?? '');
  return new Date(Number.isNaN(time) ? Date.parse(fallback) : time).toISOString();
}

/** Whether a recovery point ARN is a continuous (point in time) one. */
export function isContinuousRecoveryPoint(arn: string | undefined): boolean {
  return arn !== undefined && /:recovery-point:continuous:/.test(arn);
}

/**
 * The history record (and alert, for a job that ended) of one AWS Backup event; `undefined` for a
 * resource Cofre does not protect (another plan's job in the same account).
 */
export function backupJobRun(
  event: BackupJobEvent,
  databases: readonly BackupEventDatabase[],
): BackupJobRun | undefined {
  const d = event.detail;
  const type = event['detail-type'];
  const jobId =
    type === 'Backup Job State Change'
      ? d.backupJobId
      : type === 'Copy Job State Change'
        ? d.copyJobId
        : d.restoreJobId;
  if (!jobId) throw new UsageError(`invalid AWS Backup event: detail: no job id in a ${type} event`);
  const state = (type === 'Restore Job State Change' ? (d.status ?? d.state) : (d.state ?? d.status)) ?? '';
  const database = databases.find((db) => db.resourceArn === d.resourceArn)?.database;
  if (database === undefined && type !== 'Restore Job State Change') return undefined;
  const kind: HistoryKind =
    type === 'Copy Job State Change'
      ? 'snapshot-copy'
      : type === 'Restore Job State Change'
        ? 'restore'
        : isContinuousRecoveryPoint(d.recoveryPointArn)
          ? 'pitr'
          : 'snapshot';
  const status: HistoryStatus =
    state === 'COMPLETED'
      ? 'succeeded'
      : (FAILED_JOB_STATES as readonly string[]).includes(state)
        ? 'failed'
        : RUNNING_JOB_STATES.includes(state)
          ? 'running'
          : 'failed';
  const ended = status !== 'running';
  const bytes = Number(d.backupSizeInBytes);
  const location =
    kind === 'snapshot-copy'
      ? d.destinationRecoveryPointArn
      : kind === 'restore'
        ? d.createdResourceArn
        : d.recoveryPointArn;
  const message = [
    `AWS Backup ${type.replace(' State Change', '').toLowerCase()} ${jobId}: ${state || 'unknown state'}`,
    ...(d.statusMessage ? [d.statusMessage] : []),
  ].join(': ');
  const record: HistoryRecord = {
    id: `awsbackup-${jobId}`,
    kind,
    database: database ?? NO_DATABASE,
    status,
    startedAt: isoOf(d.creationDate, event.time),
    ...(ended ? { finishedAt: isoOf(d.completionDate, event.time) } : {}),
    ...(Number.isFinite(bytes) && bytes > 0 ? { bytes } : {}),
    ...(location ? { location } : {}),
    message,
    requestedBy: AWS_BACKUP_REQUESTER,
  };
  if (!ended) return { record };
  return {
    record,
    notify: {
      outcome: status === 'succeeded' ? 'succeeded' : 'failed',
      job: 'aws-backup',
      database: record.database!,
      kind,
      record,
      ...(status === 'failed'
        ? {
            error: `AwsBackup.${state || 'UnknownState'}`,
            cause: `${type} of ${record.database!}${d.resourceArn ? ` (${d.resourceArn})` : ''}: ${state}${d.statusMessage ? `: ${d.statusMessage}` : ''}`,
          }
        : {}),
    },
  };
}

export interface BackupEventDeps {
  readonly history: Pick<HistoryStore, 'put'>;
  /** Reports a job that ended (the notify path: SNS topic, e-mail and PagerDuty routing). */
  notify(event: NotifyEvent): Promise<unknown>;
  readonly databases: readonly BackupEventDatabase[];
}

/** Records one AWS Backup event in the history and reports a job that ended. */
export async function recordBackupJobEvent(
  input: unknown,
  deps: BackupEventDeps,
): Promise<{ ignored: true } | { ignored: false; record: HistoryRecord; notified: boolean }> {
  const run = backupJobRun(parseBackupJobEvent(input), deps.databases);
  if (!run) return { ignored: true };
  await deps.history.put(run.record);
  if (run.notify) await deps.notify(run.notify);
  return { ignored: false, record: run.record, notified: run.notify !== undefined };
}
