/**
 * The weekly AWS Backup restore test of an AWS S3 application bucket, validated: AWS Backup's restore
 * testing plan restores the latest periodic recovery point of the bucket into a new bucket
 * (`awsbackup-restore-test-…`); when that restore job ends, this module lists the restored bucket,
 * reads a random sample of its objects and compares each, by SHA-256 (streamed), with the version of
 * the same key that was current in the source bucket at the recovery point's creation date (the
 * source is versioned: AWS Backup requires it); and, for completeness, it looks up in the restored
 * bucket a random sample of the objects the source held since at least an hour before the recovery
 * point (newer ones may have changed while the backup ran). The result is recorded in the history as a
 * `files-restore-test` of `s3:<bucket>` with `method: aws-backup`, reported to AWS Backup
 * (`PutRestoreValidationResult`, after which AWS Backup deletes the restored bucket) and alerted on
 * failure through the notify path.
 *
 * A differing object, a key the source did not hold at that time, an object the source held long
 * before missing from the restore, an empty restored bucket while the source held objects, an object
 * that cannot be read: each is a FAILED validation with its reason,
 * never a crash that leaves the job unvalidated. A restore job of the plan that failed or was aborted
 * is a failed test, recorded and alerted.
 */
import { randomInt } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { NotifyEvent } from '../alerts/message';
import {
  recordRestoreTestOutcome,
  restoreJobIdOf,
  restoreTestIdOf,
  triageRestoreTestJob,
  type RestoreJobFacts,
  type RestoreTestOutcomeDeps,
} from '../aws/restore-jobs';
import type { HistoryRecord } from '../history/records';
import { messageOf } from '../util/errors';
import { sha256Of } from '../util/sha256';

/** An AWS S3 bucket the restore testing plan restores (`buckets[]` without `source`). */
export interface RestoreTestedBucket {
  /** `buckets[].bucketName`. */
  readonly bucketName: string;
  /** Its ARN (AWS Backup's `SourceResourceArn`). */
  readonly resourceArn: string;
}

/** One sampled object of the restored bucket against the source. */
export interface ObjectCheck {
  readonly key: string;
  /** Bytes of the restored object (when it could be read). */
  readonly size?: number;
  /** The source version it was compared with. */
  readonly sourceVersionId?: string;
  /**
   * A completeness check: an object the source held since long before the recovery point, looked up in
   * the restored bucket (absent: a content check of a restored object against the source).
   */
  readonly presence?: true;
  /** Why it failed; absent: equal SHA-256 and size, or present. */
  readonly problem?: string;
}

export interface BucketRestoreValidation {
  readonly passed: boolean;
  /** One line for AWS Backup, the history and the alert. */
  readonly message: string;
  readonly checks: readonly ObjectCheck[];
  /** Objects in the restored bucket. */
  readonly restoredObjects: number;
}

export interface BucketRestoreValidationDeps extends RestoreTestOutcomeDeps {
  /** ARN of Cofre's S3 restore testing plan: restore jobs of any other plan (or by hand) are ignored. */
  readonly restoreTestingPlanArn: string;
  readonly buckets: readonly RestoreTestedBucket[];
  describeRestoreJob(restoreJobId: string): Promise<RestoreJobFacts>;
  /** Reads the source buckets and the restored bucket (same account and region). */
  readonly s3: S3Client;
  notify(event: NotifyEvent): Promise<unknown>;
  /** Objects to sample. @default 20 */
  readonly sample?: number;
  /** Picks an index below `n` (tests make the sample deterministic). @default crypto.randomInt */
  readonly pick?: (n: number) => number;
  /**
   * Objects the source last changed at least this long before the recovery point must be in the
   * restored bucket (newer ones may have changed while the backup ran). @default 1 hour
   */
  readonly settledMs?: number;
  readonly log?: (line: string) => void;
  readonly now?: () => Date;
}

/** The default sample: as the files restore test of S3-compatible sources. */
export const DEFAULT_RESTORE_TEST_SAMPLE = 20;

/** An object older than this at the recovery point is surely in it. */
const SETTLED_MS = 3_600_000;

/** The bucket name of an S3 bucket ARN (`arn:aws:s3:::name`). */
export function bucketNameOfArn(arn: string): string | undefined {
  return /^arn:aws[a-z-]*:s3:::([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])$/.exec(arn)?.[1];
}

/**
 * A uniform random sample of up to `size` keys of a bucket, read page by page (reservoir sampling:
 * memory for the sample only, whatever the bucket holds). Returns the sample and the object count.
 */
async function sampleKeys(
  s3: S3Client,
  bucket: string,
  size: number,
  pick: (n: number) => number,
): Promise<{ keys: string[]; count: number }> {
  const keys: string[] = [];
  let count = 0;
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      if (o.Key === undefined) continue;
      count += 1;
      if (keys.length < size) keys.push(o.Key);
      else {
        const j = pick(count);
        if (j < size) keys[j] = o.Key;
      }
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return { keys, count };
}

/**
 * The version of `key` current in `bucket` at `asOf`: the newest version or delete marker last
 * modified at or before it; undefined when there was none, or when it was a delete marker.
 */
async function versionAt(
  s3: S3Client,
  bucket: string,
  key: string,
  asOf: Date,
): Promise<{ versionId: string } | undefined> {
  let newest: { versionId?: string; at: number; deleted: boolean } | undefined;
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectVersionsCommand({
        Bucket: bucket,
        Prefix: key,
        KeyMarker: keyMarker,
        VersionIdMarker: versionMarker,
      }),
    );
    const entries = [
      ...(page.Versions ?? []).map((v) => ({ ...v, deleted: false })),
      ...(page.DeleteMarkers ?? []).map((d) => ({ ...d, deleted: true })),
    ];
    for (const e of entries) {
      if (e.Key !== key || !e.LastModified) continue;
      const at = e.LastModified.getTime();
      if (at > asOf.getTime()) continue;
      if (!newest || at > newest.at || (at === newest.at && e.IsLatest))
        newest = { versionId: e.VersionId, at, deleted: e.deleted };
    }
    // Keys sort after `key` once the listing has moved past it.
    const past = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].some(
      (e) => e.Key !== undefined && e.Key > key,
    );
    keyMarker = page.IsTruncated && !past ? page.NextKeyMarker : undefined;
    versionMarker = page.IsTruncated && !past ? page.NextVersionIdMarker : undefined;
  } while (keyMarker);
  if (!newest || newest.deleted || newest.versionId === undefined) return undefined;
  return { versionId: newest.versionId };
}

/**
 * The source bucket as it was at `asOf`: how many keys it held (a key whose newest version or delete
 * marker last modified at or before `asOf` is a version) and a uniform random sample of those held
 * since before `settledBefore` (written well before the backup ran, so the recovery point must hold
 * them). The listing comes sorted by key, each key's entries together (possibly across pages), so one
 * key is judged at a time.
 */
async function sourceAt(
  s3: S3Client,
  bucket: string,
  asOf: Date,
  settledBefore: Date,
  size: number,
  pick: (n: number) => number,
): Promise<{ held: number; settled: { key: string; since: Date }[] }> {
  let held = 0;
  let settledCount = 0;
  const settled: { key: string; since: Date }[] = [];
  let key: string | undefined;
  let newest: { at: number; deleted: boolean } | undefined;
  const judge = () => {
    if (key === undefined || newest === undefined || newest.deleted) return;
    held += 1;
    if (newest.at > settledBefore.getTime()) return;
    settledCount += 1;
    const entry = { key, since: new Date(newest.at) };
    if (settled.length < size) settled.push(entry);
    else {
      const j = pick(settledCount);
      if (j < size) settled[j] = entry;
    }
  };
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectVersionsCommand({ Bucket: bucket, KeyMarker: keyMarker, VersionIdMarker: versionMarker }),
    );
    const entries = [
      ...(page.Versions ?? []).map((v) => ({
        key: v.Key,
        at: v.LastModified,
        latest: v.IsLatest,
        deleted: false,
      })),
      ...(page.DeleteMarkers ?? []).map((d) => ({
        key: d.Key,
        at: d.LastModified,
        latest: d.IsLatest,
        deleted: true,
      })),
    ].sort((x, y) => ((x.key ?? '') < (y.key ?? '') ? -1 : (x.key ?? '') > (y.key ?? '') ? 1 : 0));
    for (const e of entries) {
      if (e.key === undefined || !e.at) continue;
      if (e.key !== key) {
        judge();
        key = e.key;
        newest = undefined;
      }
      const at = e.at.getTime();
      // LastModified has whole seconds: of two entries in the same second, the latest one is newer.
      if (at <= asOf.getTime() && (!newest || at > newest.at || (at === newest.at && e.latest)))
        newest = { at, deleted: e.deleted };
    }
    keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
    versionMarker = page.IsTruncated ? page.NextVersionIdMarker : undefined;
  } while (keyMarker);
  judge();
  return { held, settled };
}

/** An object the source held long before the recovery point, looked up in the restored bucket. */
async function presentIn(s3: S3Client, bucket: string, key: string): Promise<boolean> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (error) {
    const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404) return false;
    throw error;
  }
}

/**
 * Compares a sample of the restored bucket with the source bucket as it was at the recovery point.
 * Never throws: every problem is a failed validation naming it.
 */
export async function validateRestoredBucket(
  job: RestoreJobFacts,
  bucket: RestoreTestedBucket,
  deps: Pick<BucketRestoreValidationDeps, 's3' | 'sample' | 'pick' | 'settledMs'>,
): Promise<BucketRestoreValidation> {
  const fail = (why: string, checks: readonly ObjectCheck[] = [], restoredObjects = 0) => ({
    passed: false,
    message: `${bucket.bucketName}: ${why}`,
    checks,
    restoredObjects,
  });
  const restored = job.createdResourceArn ? bucketNameOfArn(job.createdResourceArn) : undefined;
  if (!restored)
    return fail(
      `the restore job names no restored bucket (CreatedResourceArn ${job.createdResourceArn ?? 'missing'})`,
    );
  const asOf = job.recoveryPointCreationDate;
  if (!asOf) return fail('the restore job names no recovery point creation date to compare the source at');
  const when = asOf.toISOString();
  const size = deps.sample ?? DEFAULT_RESTORE_TEST_SAMPLE;
  const pick = deps.pick ?? ((n: number) => randomInt(n));
  const settledBefore = new Date(asOf.getTime() - (deps.settledMs ?? SETTLED_MS));
  let sample: { keys: string[]; count: number };
  try {
    sample = await sampleKeys(deps.s3, restored, size, pick);
  } catch (error) {
    return fail(`cannot list the restored bucket ${restored}: ${messageOf(error)}`);
  }
  let then: { held: number; settled: { key: string; since: Date }[] };
  try {
    then = await sourceAt(deps.s3, bucket.bucketName, asOf, settledBefore, size, pick);
  } catch (error) {
    return fail(`cannot list the versions of the source bucket: ${messageOf(error)}`, [], sample.count);
  }
  if (sample.count === 0) {
    return then.held > 0
      ? fail(`the restored bucket ${restored} is empty, but the source held ${then.held} objects at ${when}`)
      : {
          passed: true,
          message: `${bucket.bucketName}: the recovery point of ${when} restored into ${restored}: empty, as the source was then (nothing to compare)`,
          checks: [],
          restoredObjects: 0,
        };
  }
  const checks: ObjectCheck[] = [];
  for (const key of sample.keys) {
    let copy: { sha256: string; bytes: number };
    try {
      const got = await deps.s3.send(new GetObjectCommand({ Bucket: restored, Key: key }));
      copy = await sha256Of(got.Body as Readable);
    } catch (error) {
      checks.push({ key, problem: `the restored object cannot be read: ${messageOf(error)}` });
      continue;
    }
    let version: { versionId: string } | undefined;
    try {
      version = await versionAt(deps.s3, bucket.bucketName, key, asOf);
    } catch (error) {
      checks.push({
        key,
        size: copy.bytes,
        problem: `the source versions cannot be listed: ${messageOf(error)}`,
      });
      continue;
    }
    if (!version) {
      checks.push({ key, size: copy.bytes, problem: `the source held no such object at ${when}` });
      continue;
    }
    let source: { sha256: string; bytes: number };
    try {
      const got = await deps.s3.send(
        new GetObjectCommand({ Bucket: bucket.bucketName, Key: key, VersionId: version.versionId }),
      );
      source = await sha256Of(got.Body as Readable);
    } catch (error) {
      checks.push({
        key,
        size: copy.bytes,
        sourceVersionId: version.versionId,
        problem: `the source version ${version.versionId} cannot be read: ${messageOf(error)}`,
      });
      continue;
    }
    checks.push(
      source.sha256 === copy.sha256 && source.bytes === copy.bytes
        ? { key, size: copy.bytes, sourceVersionId: version.versionId }
        : {
            key,
            size: copy.bytes,
            sourceVersionId: version.versionId,
            problem: `differs from the source version ${version.versionId} current at ${when} (SHA-256${source.bytes === copy.bytes ? '' : `, ${copy.bytes} bytes instead of ${source.bytes}`})`,
          },
    );
  }
  const compared = checks.length;
  // Completeness: objects the source held since long before the recovery point must be restored.
  for (const { key, since } of then.settled) {
    let present: boolean;
    try {
      present = await presentIn(deps.s3, restored, key);
    } catch (error) {
      checks.push({
        key,
        presence: true,
        problem: `cannot be looked up in the restored bucket: ${messageOf(error)}`,
      });
      continue;
    }
    checks.push(
      present
        ? { key, presence: true }
        : {
            key,
            presence: true,
            problem: `missing from the restored bucket (the source held it since ${since.toISOString()})`,
          },
    );
  }
  const bad = checks.filter((c) => c.problem !== undefined);
  const head = `the recovery point of ${when} restored into ${restored} (${sample.count} objects; the source held ${then.held} then)`;
  if (bad.length)
    return fail(
      `${head}; ${bad.length} of ${checks.length} checks failed: ${bad.map((c) => `${c.key}: ${c.problem!}`).join('; ')}`,
      checks,
      sample.count,
    );
  return {
    passed: true,
    message: `${bucket.bucketName}: ${head}; ${compared} sampled objects equal (SHA-256) to the source versions current then; ${checks.length - compared} sampled objects the source held since before ${settledBefore.toISOString()} present`,
    checks,
    restoredObjects: sample.count,
  };
}

/**
 * Handles one `Restore Job State Change` event: ignores restore jobs of other plans, jobs not ended
 * and jobs already validated; otherwise validates, records, reports and alerts.
 */
export async function handleBucketRestoreTestEvent(
  input: unknown,
  deps: BucketRestoreValidationDeps,
): Promise<
  | { readonly ignored: true; readonly reason: string }
  | { readonly ignored: false; readonly record: HistoryRecord; readonly validation: BucketRestoreValidation }
> {
  const restoreJobId = restoreJobIdOf(input);
  const log = deps.log ?? (() => undefined);
  const job = await deps.describeRestoreJob(restoreJobId);
  const triage = triageRestoreTestJob(job, deps.restoreTestingPlanArn, 'Cofre S3 restore testing plan');
  if (triage.ignored) return triage;
  const { restoreFailed } = triage;
  const bucket = deps.buckets.find((b) => b.resourceArn === job.sourceResourceArn);
  const source = bucket?.bucketName ?? job.sourceResourceArn ?? 'the source';
  const validation: BucketRestoreValidation = restoreFailed
    ? {
        passed: false,
        message: `${source}: the restore of the recovery point ended ${job.status}${job.statusMessage ? `: ${job.statusMessage}` : ''}`,
        checks: [],
        restoredObjects: 0,
      }
    : bucket
      ? await validateRestoredBucket(job, bucket, deps)
      : {
          passed: false,
          message: `the restored source ${job.sourceResourceArn ?? '(none named)'} is not an AWS S3 bucket of the Cofre configuration`,
          checks: [],
          restoredObjects: 0,
        };
  log(`files restore test ${validation.passed ? 'passed' : 'FAILED'}: ${validation.message}`);
  const finished = job.completionDate ?? (deps.now ?? (() => new Date()))();
  const bytes = validation.checks.reduce((n, c) => n + (c.size ?? 0), 0);
  const record: HistoryRecord = {
    id: restoreTestIdOf(job.restoreJobId),
    kind: 'files-restore-test',
    method: 'aws-backup',
    database: `s3:${bucket?.bucketName ?? bucketNameOfArn(job.sourceResourceArn ?? '') ?? '-'}`,
    status: validation.passed ? 'succeeded' : 'failed',
    startedAt: job.creationDate.toISOString(),
    finishedAt: finished.toISOString(),
    ...(bytes > 0 ? { bytes } : {}),
    ...(job.recoveryPointArn ? { location: job.recoveryPointArn } : {}),
    message: validation.message,
    requestedBy: 'aws-backup',
  };
  await recordRestoreTestOutcome(deps, job.restoreJobId, record, {
    passed: validation.passed,
    message: validation.message,
    restoreFailed,
  });
  await deps.notify({
    outcome: validation.passed ? 'succeeded' : 'failed',
    job: 'aws-backup',
    database: record.database!,
    kind: 'files-restore-test',
    record,
    ...(validation.passed ? {} : { error: 'Cofre.FilesRestoreTestFailed', cause: validation.message }),
  });
  return { ignored: false, record, validation };
}
