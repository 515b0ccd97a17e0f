import { randomUUID } from 'node:crypto';
import {
  DescribeRecoveryPointCommand,
  DescribeRestoreJobCommand,
  ListRecoveryPointsByResourceCommand,
  StartRestoreJobCommand,
  type BackupClient,
} from '@aws-sdk/client-backup';
import { GetBucketVersioningCommand, type S3Client } from '@aws-sdk/client-s3';
import { OperationalError, UsageError, messageOf } from '../util/errors';
import type { FilesSelection } from './restore';

/**
 * Restores of AWS S3 buckets from AWS Backup: the recovery point is chosen by date (the continuous
 * one when the date is inside its point-in-time window, else the newest periodic one made at or
 * before it), the keys or prefixes to bring back go in `ItemsToRestore` (AWS takes at most 5 per
 * job, so larger requests become several jobs), and every job is watched to its end.
 *
 * AWS Backup never overwrites an object that exists in the destination bucket: restoring into the
 * original bucket adds what is missing (a deleted file comes back) and leaves every present object
 * as it is; for an older version of a present file, restore into a new bucket.
 */
export const ITEMS_PER_JOB = 5;

/** A recovery point of one bucket, as AWS Backup lists it. */
export interface BucketRecoveryPoint {
  readonly arn: string;
  readonly createdAt: Date;
  readonly status: string;
  readonly continuous: boolean;
  readonly vaultName: string;
  readonly bytes?: number | undefined;
}

/** Every recovery point of `bucketArn` in `vaultName`, newest first. */
export async function listBucketRecoveryPoints(
  backup: BackupClient,
  bucketArn: string,
  vaultName: string,
): Promise<BucketRecoveryPoint[]> {
  const out: BucketRecoveryPoint[] = [];
  let token: string | undefined;
  try {
    do {
      const page = await backup.send(
        new ListRecoveryPointsByResourceCommand({ ResourceArn: bucketArn, NextToken: token }),
      );
      for (const p of page.RecoveryPoints ?? [])
        if (p.RecoveryPointArn && p.CreationDate && p.BackupVaultName === vaultName)
          out.push({
            arn: p.RecoveryPointArn,
            createdAt: p.CreationDate,
            status: p.Status ?? 'UNKNOWN',
            continuous: /:recovery-point:continuous:/.test(p.RecoveryPointArn),
            vaultName: p.BackupVaultName,
            bytes: p.BackupSizeBytes,
          });
      token = page.NextToken;
    } while (token);
  } catch (error) {
    throw new OperationalError(`cannot list the recovery points of ${bucketArn}: ${messageOf(error)}`, {
      cause: error,
    });
  }
  return out.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
}

/** The recovery point a restore as of `asOf` uses, and the point in time (continuous only). */
export interface ChosenRecoveryPoint {
  readonly point: BucketRecoveryPoint;
  /** Set for a continuous recovery point: the time restored to. */
  readonly restoreTime?: Date | undefined;
  readonly why: string;
}

/**
 * The continuous recovery point when `asOf` is inside its window (from `now` minus its retention,
 * and not before it was created, up to `now`), else the newest completed periodic one created at or
 * before `asOf`.
 */
export async function chooseRecoveryPoint(
  backup: BackupClient,
  points: readonly BucketRecoveryPoint[],
  vaultName: string,
  asOf: Date,
  now: Date,
): Promise<ChosenRecoveryPoint> {
  const usable = (p: BucketRecoveryPoint) => p.status === 'COMPLETED';
  const continuous = points.find((p) => p.continuous && usable(p));
  if (continuous && asOf.getTime() <= now.getTime()) {
    let days: number | undefined;
    try {
      const described = await backup.send(
        new DescribeRecoveryPointCommand({ BackupVaultName: vaultName, RecoveryPointArn: continuous.arn }),
      );
      days = described.Lifecycle?.DeleteAfterDays;
    } catch (error) {
      throw new OperationalError(`cannot describe ${continuous.arn}: ${messageOf(error)}`, { cause: error });
    }
    const earliest = Math.max(
      continuous.createdAt.getTime(),
      days ? now.getTime() - days * 86_400_000 : -Infinity,
    );
    if (asOf.getTime() >= earliest)
      return {
        point: continuous,
        restoreTime: asOf,
        why: `continuous backup (point in time from ${new Date(earliest).toISOString()} to now)`,
      };
  }
  const periodic = points.find((p) => !p.continuous && usable(p) && p.createdAt.getTime() <= asOf.getTime());
  if (periodic)
    return { point: periodic, why: `the newest periodic recovery point at or before ${asOf.toISOString()}` };
  const oldest = points.filter(usable).at(-1);
  throw new UsageError(
    oldest
      ? `--as-of: no recovery point of this bucket covers ${asOf.toISOString()}; the oldest is from ${oldest.createdAt.toISOString()}`
      : '--as-of: this bucket has no completed recovery point in the vault yet',
  );
}

/** The `ItemsToRestore` paths of a selection (`undefined`: the whole bucket), in batches of 5. */
export function itemBatches(bucket: string, items: readonly FilesSelection[]): (string[] | undefined)[] {
  if (items.some((i) => 'all' in i)) return [undefined];
  const paths = items.map((i) => `s3://${bucket}/${'key' in i ? i.key : (i as { prefix: string }).prefix}`);
  const batches: string[][] = [];
  for (let i = 0; i < paths.length; i += ITEMS_PER_JOB) batches.push(paths.slice(i, i + ITEMS_PER_JOB));
  return batches;
}

export interface AwsBucketRestoreOptions {
  readonly backup: BackupClient;
  /** The protected bucket. */
  readonly bucket: string;
  /** The AWS Backup vault (primary region) that holds its recovery points. */
  readonly vaultName: string;
  /** The role AWS Backup assumes to restore (the bucket backup role). */
  readonly roleArn: string;
  /** Keys and prefixes to bring back (or `{ all: true }`). */
  readonly items: readonly FilesSelection[];
  readonly asOf: Date;
  /** Where: the original bucket (default) or another one; `newBucket` lets AWS Backup create it. */
  readonly toBucket?: string | undefined;
  readonly newBucket?: boolean;
  readonly dryRun?: boolean;
  readonly now?: () => Date;
  /** Between two looks at the jobs. @default 30 s */
  readonly pollMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly signal?: AbortSignal | undefined;
  readonly log?: (line: string) => void;
}

export interface AwsRestoreJob {
  readonly restoreJobId?: string | undefined;
  readonly items?: readonly string[] | undefined;
  readonly status: string;
  readonly statusMessage?: string | undefined;
  readonly createdResourceArn?: string | undefined;
}

export interface AwsBucketRestoreReport {
  readonly bucket: string;
  readonly asOf: string;
  readonly recoveryPointArn: string;
  readonly restoreTime?: string | undefined;
  readonly why: string;
  readonly destinationBucket: string;
  readonly dryRun: boolean;
  readonly jobs: readonly AwsRestoreJob[];
}

const ENDED = new Set(['COMPLETED', 'FAILED', 'ABORTED']);

/** Starts the restore jobs (one per batch of 5 items) and waits for all of them. */
export async function restoreAwsBucket(options: AwsBucketRestoreOptions): Promise<AwsBucketRestoreReport> {
  const now = options.now ?? (() => new Date());
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const bucketArn = `arn:aws:s3:::${options.bucket}`;
  const points = await listBucketRecoveryPoints(options.backup, bucketArn, options.vaultName);
  const chosen = await chooseRecoveryPoint(options.backup, points, options.vaultName, options.asOf, now());
  const destination = options.toBucket ?? options.bucket;
  const batches = itemBatches(options.bucket, options.items);
  const base = {
    bucket: options.bucket,
    asOf: options.asOf.toISOString(),
    recoveryPointArn: chosen.point.arn,
    restoreTime: chosen.restoreTime?.toISOString(),
    why: chosen.why,
    destinationBucket: destination,
  };
  if (options.dryRun)
    return { ...base, dryRun: true, jobs: batches.map((items) => ({ items, status: 'NOT_STARTED' })) };
  const jobs: { id: string; items?: string[] | undefined }[] = [];
  for (const items of batches) {
    const metadata: Record<string, string> = {
      DestinationBucketName: destination,
      NewBucket: String(options.newBucket ?? false),
      Encrypted: 'false',
      CreationToken: randomUUID(),
      ...(items ? { ItemsToRestore: JSON.stringify(items) } : {}),
      ...(chosen.restoreTime ? { RestoreTime: chosen.restoreTime.toISOString() } : {}),
    };
    try {
      const out = await options.backup.send(
        new StartRestoreJobCommand({
          RecoveryPointArn: chosen.point.arn,
          IamRoleArn: options.roleArn,
          ResourceType: 'S3',
          Metadata: metadata,
          IdempotencyToken: metadata.CreationToken,
        }),
      );
      if (!out.RestoreJobId) throw new Error('AWS Backup returned no restore job id');
      jobs.push({ id: out.RestoreJobId, items });
      options.log?.(
        `started restore job ${out.RestoreJobId}${items ? ` for ${items.join(', ')}` : ' for the whole bucket'}`,
      );
    } catch (error) {
      throw new OperationalError(
        `starting restore job ${jobs.length + 1} of ${batches.length} of ${options.bucket} failed${jobs.length ? ` (jobs already started, still running: ${jobs.map((j) => j.id).join(', ')})` : ''}: ${messageOf(error)}`,
        { cause: error },
      );
    }
  }
  const states = new Map<string, AwsRestoreJob>();
  for (;;) {
    for (const job of jobs) {
      if (ENDED.has(states.get(job.id)?.status ?? '')) continue;
      const d = await options.backup.send(new DescribeRestoreJobCommand({ RestoreJobId: job.id }));
      states.set(job.id, {
        restoreJobId: job.id,
        items: job.items,
        status: d.Status ?? 'UNKNOWN',
        statusMessage: d.StatusMessage,
        createdResourceArn: d.CreatedResourceArn,
      });
    }
    if (jobs.every((j) => ENDED.has(states.get(j.id)!.status))) break;
    if (options.signal?.aborted)
      throw new OperationalError(
        `stopped watching; restore jobs ${jobs.map((j) => j.id).join(', ')} go on in AWS Backup`,
      );
    await sleep(options.pollMs ?? 30_000);
  }
  const report = { ...base, dryRun: false, jobs: jobs.map((j) => states.get(j.id)!) };
  const failed = report.jobs.filter((j) => j.status !== 'COMPLETED');
  if (failed.length)
    throw new OperationalError(
      `${failed.length} of ${jobs.length} restore jobs of ${options.bucket} did not complete: ${failed.map((j) => `${j.restoreJobId} ${j.status}${j.statusMessage ? ` (${j.statusMessage})` : ''}`).join('; ')}`,
    );
  return report;
}

/** Whether AWS Backup can protect `bucket`: it needs versioning Enabled (Cofre never turns it on). */
export async function bucketVersioningProblem(s3: S3Client, bucket: string): Promise<string | undefined> {
  let status: string | undefined;
  try {
    status = (await s3.send(new GetBucketVersioningCommand({ Bucket: bucket }))).Status;
  } catch (error) {
    throw new OperationalError(`cannot read the versioning of bucket ${bucket}: ${messageOf(error)}`, {
      cause: error,
    });
  }
  if (status === 'Enabled') return undefined;
  return `bucket ${bucket} has versioning ${status ?? 'never enabled'}: AWS Backup cannot back it up (every job fails). Turn it on ("aws s3api put-bucket-versioning --bucket ${bucket} --versioning-configuration Status=Enabled"); Cofre never changes the application bucket itself`;
}
