/**
 * The weekly AWS Backup restore test of an AWS S3 bucket, validated: a `Restore Job State Change`
 * event → DescribeRestoreJob → the restored bucket sampled and compared with the source versions
 * current at the recovery point → history (moto DynamoDB), AWS Backup's PutRestoreValidationResult,
 * alert (moto SNS, read back through SQS). The source bucket is a versioned moto bucket whose objects
 * change after the recovery point; the "restored" bucket is a moto bucket holding what AWS Backup would
 * have restored (the versions current then).
 *
 * moto implements neither DescribeRestoreJob nor PutRestoreValidationResult: those two AWS Backup
 * calls alone go through aws-sdk-client-mock (README, Testing). S3 is real moto.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Logger } from '@aws-lambda-powertools/logger';
import {
  BackupClient,
  DescribeRestoreJobCommand,
  PutRestoreValidationResultCommand,
  type DescribeRestoreJobOutput,
} from '@aws-sdk/client-backup';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { checkFilesFreshness, FRESHNESS_METRICS } from '../../../core/alerts/freshness';
import type { NotifyEvent } from '../../../core/alerts/message';
import {
  describeRestoreJobWith,
  putValidationResultWith,
  restoreTestIdOf,
} from '../../../core/aws/restore-jobs';
import {
  handleBucketRestoreTestEvent,
  type BucketRestoreValidationDeps,
} from '../../../core/files/aws-restore-validation';
import { DynamoHistoryStore } from '../../../core/history/store';
import { UsageError } from '../../../core/util/errors';
import { createFilesRestoreValidationHandler } from '../../../lambdas/files-restore-validation';
import { withEnv } from '../../helpers/env';
import {
  createHistoryTable,
  createTopicWithQueue,
  describeLocalAws,
  localAws,
  REGION,
  uniqueName,
  type LocalAws,
  type TopicWithQueue,
} from '../../helpers/local-aws';

const PLAN_ARN =
  'arn:aws:backup:sa-east-1:123456789012:restore-testing-plan:CofrePrimaryBucketRestoreTests-abc';
const logger = new Logger({ serviceName: 'test', logLevel: 'SILENT' });

/** A `Restore Job State Change` event as AWS Backup's EventBridge documentation shows it. */
function restoreJobEvent(restoreJobId: string, status = 'COMPLETED') {
  return {
    version: '0',
    id: '5d1c4f0e-7a2b-4c3d-9e8f-0a1b2c3d4e5f',
    'detail-type': 'Restore Job State Change',
    source: 'aws.backup',
    account: '123456789012',
    time: '2026-11-28T08:40:00Z',
    region: REGION,
    resources: [],
    detail: { restoreJobId, resourceType: 'S3', status, percentDone: 100 },
  };
}

describeLocalAws(
  'AWS S3 bucket restore test: event → sample comparison → history, AWS Backup result, alert',
  () => {
    let aws: LocalAws;
    let s3: S3Client;
    let topic: TopicWithQueue;
    let store: DynamoHistoryStore;
    let tableName: string;
    let source: string;
    let sourceArn: string;
    /** The recovery point's creation date: after the first versions, before the changes. */
    let asOf: Date;
    const backup = mockClient(BackupClient);
    const jobs = new Map<string, DescribeRestoreJobOutput>();
    const notified: NotifyEvent[] = [];

    const put = (bucket: string, key: string, body: string) =>
      s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));

    async function bucketWith(prefix: string, objects: Record<string, string>): Promise<string> {
      const name = `${prefix}${uniqueName('b')}`.slice(0, 63);
      await s3.send(
        new CreateBucketCommand({ Bucket: name, CreateBucketConfiguration: { LocationConstraint: REGION } }),
      );
      for (const [key, body] of Object.entries(objects)) await put(name, key, body);
      return name;
    }

    /** What AWS Backup restored from the recovery point: the versions current at `asOf`. */
    const THEN = {
      'clinic-1/receipt.pdf': 'receipt v1',
      'clinic-1/exam.xml': '<exam>v1</exam>',
      'clinic-2/photo.jpg': 'photo v1',
    };

    beforeAll(async () => {
      aws = localAws();
      s3 = aws.s3;
      topic = await createTopicWithQueue(aws.sns, aws.sqs, 'files-restore-test');
      tableName = await createHistoryTable(aws.dynamodb);
      store = new DynamoHistoryStore(DynamoDBDocumentClient.from(aws.dynamodb), tableName);
      source = await bucketWith('', {});
      sourceArn = `arn:aws:s3:::${source}`;
      await s3.send(
        new PutBucketVersioningCommand({ Bucket: source, VersioningConfiguration: { Status: 'Enabled' } }),
      );
      for (const [key, body] of Object.entries(THEN)) await put(source, key, body);
      const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: source }));
      asOf = new Date(Math.max(...(versions.Versions ?? []).map((v) => v.LastModified!.getTime())));
      // Later changes (LastModified has second precision in S3): the recovery point must not see them.
      await sleep(1100);
      await put(source, 'clinic-1/exam.xml', '<exam>v2 changed after the backup</exam>');
      await s3.send(new DeleteObjectCommand({ Bucket: source, Key: 'clinic-2/photo.jpg' }));
      await put(source, 'clinic-3/new.pdf', 'added after the backup');
    }, 60_000);

    afterAll(() => {
      backup.restore();
    });

    beforeEach(() => {
      backup.reset();
      notified.length = 0;
      backup.on(DescribeRestoreJobCommand).callsFake((input: { RestoreJobId: string }) => {
        const job = jobs.get(input.RestoreJobId);
        if (!job)
          throw Object.assign(new Error('restore job not found'), { name: 'ResourceNotFoundException' });
        return job;
      });
      backup.on(PutRestoreValidationResultCommand).resolves({});
    });

    let started = 0;
    /** A restore job; each starts a minute after the previous one, so the latest record is the last job's. */
    function job(id: string, restored: string | undefined, over: Partial<DescribeRestoreJobOutput> = {}) {
      const at = Date.parse('2026-11-28T08:00:00.000Z') + 60_000 * started++;
      jobs.set(id, {
        RestoreJobId: id,
        Status: 'COMPLETED',
        CreationDate: new Date(at),
        CompletionDate: new Date(at + 39 * 60_000),
        SourceResourceArn: sourceArn,
        RecoveryPointArn: 'arn:aws:backup:sa-east-1:123456789012:recovery-point:app-docs-20261128',
        RecoveryPointCreationDate: asOf,
        ...(restored ? { CreatedResourceArn: `arn:aws:s3:::${restored}` } : {}),
        ResourceType: 'S3',
        CreatedBy: { RestoreTestingPlanArn: PLAN_ARN },
        ...over,
      });
      return id;
    }

    const deps = (over: Partial<BucketRestoreValidationDeps> = {}): BucketRestoreValidationDeps => {
      const client = new BackupClient({ region: REGION });
      return {
        restoreTestingPlanArn: PLAN_ARN,
        buckets: [{ bucketName: source, resourceArn: sourceArn }],
        describeRestoreJob: describeRestoreJobWith(client),
        putValidationResult: putValidationResultWith(client),
        s3,
        history: store,
        notify: (e) => {
          notified.push(e);
          return Promise.resolve();
        },
        ...over,
      };
    };

    const validationCalls = () =>
      backup.commandCalls(PutRestoreValidationResultCommand).map((c) => c.args[0].input);

    it('a faithful restore (the versions current at the recovery point, later changes ignored): SUCCESSFUL, recorded, DaysSinceLastGoodFilesRestoreTest counts it', async () => {
      const restored = await bucketWith('awsbackup-restore-test-', THEN);
      const id = job(`PASS-${uniqueName('j')}`, restored);
      const out = await handleBucketRestoreTestEvent(restoreJobEvent(id), deps());
      expect(out.ignored).toBe(false);
      if (out.ignored) return;
      expect(out.validation.checks.map((c) => c.key).sort()).toEqual(Object.keys(THEN).sort());
      expect(out.validation.checks.every((c) => c.problem === undefined && c.sourceVersionId)).toBe(true);
      const record = await store.latest(`s3:${source}`, 'files-restore-test', 'succeeded');
      expect(record).toMatchObject({
        id: restoreTestIdOf(id),
        kind: 'files-restore-test',
        method: 'aws-backup',
        database: `s3:${source}`,
        status: 'succeeded',
        startedAt: '2026-11-28T08:00:00.000Z',
        finishedAt: '2026-11-28T08:39:00.000Z',
        location: 'arn:aws:backup:sa-east-1:123456789012:recovery-point:app-docs-20261128',
        requestedBy: 'aws-backup',
        bytes: Object.values(THEN).reduce((n, b) => n + b.length, 0),
      });
      expect(record!.message).toContain(
        `restored into ${restored} (3 objects; the source held 3 then); 3 sampled objects equal (SHA-256)`,
      );
      expect(validationCalls()).toEqual([
        { RestoreJobId: id, ValidationStatus: 'SUCCESSFUL', ValidationStatusMessage: record!.message },
      ]);
      expect(notified).toEqual([
        expect.objectContaining({ outcome: 'succeeded', job: 'aws-backup', kind: 'files-restore-test' }),
      ]);
      const { findings, metrics } = await checkFilesFreshness(
        store,
        [source],
        new Date('2026-11-30T08:39:00.000Z'),
      );
      expect(findings.find((f) => f.check === 'files-restore-test')).toMatchObject({
        state: 'fresh',
        age: 2,
        lastGood: { id: restoreTestIdOf(id) },
      });
      expect(metrics).toContainEqual({
        name: FRESHNESS_METRICS.daysSinceLastGoodFilesRestoreTest,
        dimensions: { Bucket: source },
        value: 2,
        unit: 'None',
      });
    });

    it('one restored object differs from the version current then: FAILED naming the key, alerted', async () => {
      const restored = await bucketWith('awsbackup-restore-test-', {
        ...THEN,
        'clinic-1/exam.xml': '<exam>v2 changed after the backup</exam>',
      });
      const id = job(`ALTER-${uniqueName('j')}`, restored);
      const out = await handleBucketRestoreTestEvent(restoreJobEvent(id), deps());
      expect(out.ignored).toBe(false);
      const record = await store.latest(`s3:${source}`, 'files-restore-test', 'failed');
      expect(record).toMatchObject({ id: restoreTestIdOf(id), status: 'failed', method: 'aws-backup' });
      expect(record!.message).toMatch(
        /1 of 3 checks failed: clinic-1\/exam\.xml: differs from the source version \S+ current at .*\(SHA-256, 40 bytes instead of 15\)/,
      );
      expect(record!.message).not.toContain('receipt.pdf');
      expect(validationCalls()).toEqual([
        { RestoreJobId: id, ValidationStatus: 'FAILED', ValidationStatusMessage: record!.message },
      ]);
      expect(notified).toEqual([
        expect.objectContaining({
          outcome: 'failed',
          job: 'aws-backup',
          kind: 'files-restore-test',
          database: `s3:${source}`,
          error: 'Cofre.FilesRestoreTestFailed',
          cause: record!.message,
        }),
      ]);
    });

    it('a partial restore (an object the source held long before the recovery point is missing): FAILED naming it, completeness sampled from the source', async () => {
      const { 'clinic-2/photo.jpg': _missing, ...partial } = THEN;
      const restored = await bucketWith('awsbackup-restore-test-', partial);
      const id = job(`PARTIAL-${uniqueName('j')}`, restored);
      // Every object of the moto source was written seconds before the recovery point: count them all as settled.
      const out = await handleBucketRestoreTestEvent(restoreJobEvent(id), deps({ settledMs: 0 }));
      if (out.ignored) throw new Error(out.reason);
      expect(out.validation.passed).toBe(false);
      expect(out.validation.message).toMatch(
        /\(2 objects; the source held 3 then\); 1 of 5 checks failed: clinic-2\/photo\.jpg: missing from the restored bucket \(the source held it since /,
      );
      expect(out.validation.checks.filter((c) => c.presence).map((c) => c.key)).toEqual(
        Object.keys(THEN).sort(),
      );
      // The same restore with every object present passes the completeness checks too.
      const whole = await bucketWith('awsbackup-restore-test-', THEN);
      const ok = await handleBucketRestoreTestEvent(
        restoreJobEvent(job(`WHOLE-${uniqueName('j')}`, whole)),
        deps({ settledMs: 0 }),
      );
      if (ok.ignored) throw new Error(ok.reason);
      expect(ok.validation.message).toMatch(
        /3 sampled objects equal \(SHA-256\) .*; 3 sampled objects the source held since before .* present$/,
      );
      expect(ok.validation.passed).toBe(true);
    });

    it('a restored key the source did not hold at the recovery point (added later), and one deleted before it: FAILED naming them', async () => {
      const restored = await bucketWith('awsbackup-restore-test-', {
        'clinic-1/receipt.pdf': 'receipt v1',
        'clinic-3/new.pdf': 'added after the backup',
      });
      const id = job(`EXTRA-${uniqueName('j')}`, restored);
      const out = await handleBucketRestoreTestEvent(restoreJobEvent(id), deps());
      if (out.ignored) throw new Error(out.reason);
      expect(out.validation.passed).toBe(false);
      expect(out.validation.message).toMatch(/clinic-3\/new\.pdf: the source held no such object at /);
      expect(out.validation.message).not.toMatch(/receipt\.pdf:/);
    });

    it('an empty restored bucket while the source held objects then: FAILED', async () => {
      const restored = await bucketWith('awsbackup-restore-test-', {});
      const id = job(`EMPTY-${uniqueName('j')}`, restored);
      const out = await handleBucketRestoreTestEvent(restoreJobEvent(id), deps());
      if (out.ignored) throw new Error(out.reason);
      expect(out.validation.passed).toBe(false);
      expect(out.validation.message).toBe(
        `${source}: the restored bucket ${restored} is empty, but the source held 3 objects at ${asOf.toISOString()}`,
      );
      expect(validationCalls()).toEqual([
        expect.objectContaining({ RestoreJobId: id, ValidationStatus: 'FAILED' }),
      ]);
    });

    it('an empty restored bucket of a source that held nothing then (its only object deleted before, another added after): SUCCESSFUL, nothing to compare', async () => {
      const empty = await bucketWith('', {});
      await s3.send(
        new PutBucketVersioningCommand({ Bucket: empty, VersioningConfiguration: { Status: 'Enabled' } }),
      );
      await put(empty, 'old.pdf', 'deleted before the backup');
      await s3.send(new DeleteObjectCommand({ Bucket: empty, Key: 'old.pdf' }));
      const listed = await s3.send(new ListObjectVersionsCommand({ Bucket: empty }));
      const then = new Date(
        Math.max(
          ...[...(listed.Versions ?? []), ...(listed.DeleteMarkers ?? [])].map((v) =>
            v.LastModified!.getTime(),
          ),
        ),
      );
      await sleep(1100);
      await put(empty, 'new.pdf', 'added after the backup');
      const restored = await bucketWith('awsbackup-restore-test-', {});
      const arn = `arn:aws:s3:::${empty}`;
      const id = job(`NONE-${uniqueName('j')}`, restored, {
        SourceResourceArn: arn,
        RecoveryPointCreationDate: then,
      });
      const out = await handleBucketRestoreTestEvent(
        restoreJobEvent(id),
        deps({ buckets: [{ bucketName: empty, resourceArn: arn }] }),
      );
      if (out.ignored) throw new Error(out.reason);
      expect(out.validation).toMatchObject({ passed: true, restoredObjects: 0, checks: [] });
      expect(out.validation.message).toMatch(/empty, as the source was then \(nothing to compare\)$/);
      expect(validationCalls()).toEqual([
        expect.objectContaining({ RestoreJobId: id, ValidationStatus: 'SUCCESSFUL' }),
      ]);
      // The same empty restore of a recovery point taken after new.pdf was added: FAILED.
      const later = job(`NONE2-${uniqueName('j')}`, restored, {
        SourceResourceArn: arn,
        RecoveryPointCreationDate: new Date(Date.now() + 1000),
      });
      const failed = await handleBucketRestoreTestEvent(
        restoreJobEvent(later),
        deps({ buckets: [{ bucketName: empty, resourceArn: arn }] }),
      );
      if (failed.ignored) throw new Error(failed.reason);
      expect(failed.validation.passed).toBe(false);
      expect(failed.validation.message).toMatch(/is empty, but the source held 1 objects at/);
    });

    it('a restored bucket that cannot be read (gone, or denied): FAILED with the reason, no crash', async () => {
      const id = job(
        `GONE-${uniqueName('j')}`,
        `awsbackup-restore-test-${uniqueName('missing')}`.slice(0, 63),
      );
      const out = await handleBucketRestoreTestEvent(restoreJobEvent(id), deps());
      if (out.ignored) throw new Error(out.reason);
      expect(out.validation.message).toMatch(
        /cannot list the restored bucket awsbackup-restore-test-.*NoSuchBucket|does not exist/,
      );
      expect(validationCalls()).toEqual([expect.objectContaining({ ValidationStatus: 'FAILED' })]);
    });

    it('samples the restored bucket: at most `sample` objects, chosen by the picker', async () => {
      const restored = await bucketWith('awsbackup-restore-test-', THEN);
      const id = job(`SAMPLE-${uniqueName('j')}`, restored);
      // Reservoir sampling: the third object (count 3) replaces slot 0 when the picker answers 0.
      const out = await handleBucketRestoreTestEvent(restoreJobEvent(id), deps({ sample: 2, pick: () => 0 }));
      if (out.ignored) throw new Error(out.reason);
      expect(out.validation.passed).toBe(true);
      expect(out.validation.restoredObjects).toBe(3);
      expect(out.validation.checks.map((c) => c.key)).toEqual(['clinic-2/photo.jpg', 'clinic-1/receipt.pdf']);
    });

    it('ignores restore jobs of another plan or started by hand, jobs still running, and jobs already validated', async () => {
      const restored = await bucketWith('awsbackup-restore-test-', THEN);
      const ids = [
        job(`OTHER-${uniqueName('j')}`, restored, { CreatedBy: {} }),
        job(`RUN-${uniqueName('j')}`, restored, { Status: 'RUNNING' }),
        job(`DONE-${uniqueName('j')}`, restored, { ValidationStatus: 'SUCCESSFUL' }),
      ];
      for (const id of ids) {
        const out = await handleBucketRestoreTestEvent(restoreJobEvent(id), deps());
        expect(out.ignored).toBe(true);
      }
      expect(validationCalls()).toEqual([]);
      expect(notified).toEqual([]);
      const records = await store.between('2026-11-28T00:00:00.000Z', '2026-11-29T00:00:00.000Z');
      for (const id of ids) expect(records.map((r) => r.id)).not.toContain(restoreTestIdOf(id));
    });

    it('a restore job of the plan that FAILED is a failed test: recorded and alerted, nothing reported to AWS Backup', async () => {
      const id = job(`RFAIL-${uniqueName('j')}`, undefined, {
        Status: 'FAILED',
        StatusMessage: 'Access denied creating bucket awsbackup-restore-test-1a2b',
      });
      const out = await handleBucketRestoreTestEvent(restoreJobEvent(id, 'FAILED'), deps());
      expect(out.ignored).toBe(false);
      const record = await store.latest(`s3:${source}`, 'files-restore-test', 'failed');
      expect(record).toMatchObject({
        id: restoreTestIdOf(id),
        status: 'failed',
        message: `${source}: the restore of the recovery point ended FAILED: Access denied creating bucket awsbackup-restore-test-1a2b`,
      });
      expect(validationCalls()).toEqual([]);
      expect(notified).toEqual([
        expect.objectContaining({ outcome: 'failed', error: 'Cofre.FilesRestoreTestFailed' }),
      ]);
    });

    it('rejects an event that is not a restore job state change', async () => {
      await expect(handleBucketRestoreTestEvent({ source: 'aws.backup' }, deps())).rejects.toThrow(
        UsageError,
      );
    });

    it('the Lambda handler: environment → validation → record, AWS Backup result and a critical SNS alert on failure', async () => {
      const restored = await bucketWith('awsbackup-restore-test-', {
        ...THEN,
        'clinic-2/photo.jpg': 'tampered',
      });
      const id = job(`LAMBDA-${uniqueName('j')}`, restored);
      const handle = withEnv(
        {
          AWS_REGION: REGION,
          COFRE_TOPIC_ARN: topic.topicArn,
          COFRE_NOTIFY_ON_SUCCESS: 'false',
          COFRE_RESTORE_TESTING_PLAN_ARN: PLAN_ARN,
          COFRE_RESTORE_TEST_BUCKETS: JSON.stringify([{ bucketName: source, resourceArn: sourceArn }]),
          COFRE_RESTORE_TEST_SAMPLE: '20',
        },
        () =>
          createFilesRestoreValidationHandler({
            history: store,
            backup: new BackupClient({ region: REGION }),
            s3,
            sns: aws.sns,
            logger,
          }),
      );
      const out = await handle(restoreJobEvent(id));
      expect(out.ignored).toBe(false);
      const record = await store.latest(`s3:${source}`, 'files-restore-test', 'failed');
      expect(record).toMatchObject({ id: restoreTestIdOf(id), method: 'aws-backup' });
      expect(record!.message).toMatch(/clinic-2\/photo\.jpg: differs from the source version/);
      expect(validationCalls()).toEqual([
        expect.objectContaining({ RestoreJobId: id, ValidationStatus: 'FAILED' }),
      ]);
      const messages = await topic.receive(2);
      expect(messages).toHaveLength(1);
      expect(messages[0]!.message).toContain('Cofre.FilesRestoreTestFailed');
      expect(messages[0]!.message).toContain('DaysSinceLastGoodFilesRestoreTest');
      expect(messages[0]!.attributes).toMatchObject({ severity: { Value: 'critical' } });
    });

    it('the Lambda refuses to start without its bucket list or with a bad sample size', () => {
      const base = {
        AWS_REGION: REGION,
        COFRE_TOPIC_ARN: topic.topicArn,
        COFRE_NOTIFY_ON_SUCCESS: 'false',
        COFRE_RESTORE_TESTING_PLAN_ARN: PLAN_ARN,
        COFRE_RESTORE_TEST_BUCKETS: JSON.stringify([{ bucketName: source, resourceArn: sourceArn }]),
        COFRE_RESTORE_TEST_SAMPLE: '20',
      };
      const make = (over: Record<string, string>) =>
        withEnv({ ...base, ...over }, () =>
          createFilesRestoreValidationHandler({
            history: store,
            backup: new BackupClient({ region: REGION }),
            s3,
            sns: aws.sns,
            logger,
          }),
        );
      expect(() => make({ COFRE_RESTORE_TEST_BUCKETS: '[]' })).toThrow(/COFRE_RESTORE_TEST_BUCKETS/);
      expect(() => make({ COFRE_RESTORE_TEST_SAMPLE: '2.5' })).toThrow(/COFRE_RESTORE_TEST_SAMPLE/);
    });
  },
);
