/**
 * Restores of AWS S3 buckets through AWS Backup, checked by the exact requests they send. moto
 * 5.2.5 implements AWS Backup plans and vaults but not recovery points or restore jobs
 * (ListRecoveryPointsByResource, DescribeRecoveryPoint, StartRestoreJob, DescribeRestoreJob), so
 * these calls go to aws-sdk-client-mock (README, Testing).
 */
import {
  BackupClient,
  DescribeRecoveryPointCommand,
  DescribeRestoreJobCommand,
  ListRecoveryPointsByResourceCommand,
  StartRestoreJobCommand,
} from '@aws-sdk/client-backup';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { backupJobRun, parseBackupJobEvent } from '../../../core/alerts/backup-events';
import { UsageError } from '../../../core/util/errors';
import { itemBatches, restoreAwsBucket } from '../../../core/files/aws-restore';

const VAULT = 'CofreSnapshotVault';
const ROLE = 'arn:aws:iam::111111111111:role/cofre-bucket-backup';
const NOW = new Date('2026-11-28T12:00:00Z');
const CONTINUOUS =
  'arn:aws:backup:sa-east-1:111111111111:recovery-point:continuous:app-prod-documents-1a2b3c';
const periodic = (day: string) => `arn:aws:backup:sa-east-1:111111111111:recovery-point:${day}`;

const backupMock = mockClient(BackupClient);

function givenRecoveryPoints(continuousDays = 35) {
  backupMock
    .on(ListRecoveryPointsByResourceCommand)
    .resolvesOnce({
      RecoveryPoints: [
        {
          RecoveryPointArn: CONTINUOUS,
          CreationDate: new Date('2026-06-01T03:00:00Z'),
          Status: 'COMPLETED',
          BackupVaultName: VAULT,
        },
        {
          RecoveryPointArn: periodic('2026-11-27'),
          CreationDate: new Date('2026-11-27T06:00:00Z'),
          Status: 'COMPLETED',
          BackupVaultName: VAULT,
        },
        // A copy in another vault of the same bucket is not ours to restore from.
        {
          RecoveryPointArn: periodic('other'),
          CreationDate: new Date('2026-09-02T06:00:00Z'),
          Status: 'COMPLETED',
          BackupVaultName: 'another-vault',
        },
      ],
      NextToken: 'page-2',
    })
    .resolvesOnce({
      RecoveryPoints: [
        {
          RecoveryPointArn: periodic('2026-09-01'),
          CreationDate: new Date('2026-09-01T06:00:00Z'),
          Status: 'COMPLETED',
          BackupVaultName: VAULT,
        },
        {
          RecoveryPointArn: periodic('2026-08-31-partial'),
          CreationDate: new Date('2026-08-31T06:00:00Z'),
          Status: 'PARTIAL',
          BackupVaultName: VAULT,
        },
        {
          RecoveryPointArn: periodic('2026-08-01'),
          CreationDate: new Date('2026-08-01T06:00:00Z'),
          Status: 'COMPLETED',
          BackupVaultName: VAULT,
        },
      ],
    });
  backupMock.on(DescribeRecoveryPointCommand).resolves({ Lifecycle: { DeleteAfterDays: continuousDays } });
}

const base = {
  backup: new BackupClient({ region: 'sa-east-1' }),
  bucket: 'app-prod-documents',
  vaultName: VAULT,
  roleArn: ROLE,
  now: () => NOW,
  pollMs: 0,
  sleep: () => Promise.resolve(),
};

describe('restore of an AWS S3 bucket through AWS Backup', () => {
  beforeEach(() => backupMock.reset());

  it('splits 12 keys and prefixes into jobs of 5, 5 and 2 items, from the continuous recovery point at the date, and watches all of them', async () => {
    givenRecoveryPoints();
    let started = 0;
    backupMock.on(StartRestoreJobCommand).callsFake(() => ({ RestoreJobId: `job-${++started}` }));
    const polls = new Map<string, number>();
    backupMock.on(DescribeRestoreJobCommand).callsFake((input: { RestoreJobId: string }) => {
      const n = (polls.get(input.RestoreJobId) ?? 0) + 1;
      polls.set(input.RestoreJobId, n);
      return {
        Status: n < 2 ? 'RUNNING' : 'COMPLETED',
        CreatedResourceArn: 'arn:aws:s3:::app-prod-documents',
      };
    });
    const keys = Array.from({ length: 11 }, (_, i) => ({ key: `tenants/42/nfe-${i}.xml` }));
    const asOf = new Date('2026-11-27T21:00:00Z');
    const report = await restoreAwsBucket({ ...base, items: [...keys, { prefix: 'tenants/7/' }], asOf });

    const calls = backupMock.commandCalls(StartRestoreJobCommand).map((c) => c.args[0].input);
    expect(calls.map((c) => JSON.parse(c.Metadata!.ItemsToRestore!) as string[])).toEqual([
      keys.slice(0, 5).map((k) => `s3://app-prod-documents/${k.key}`),
      keys.slice(5, 10).map((k) => `s3://app-prod-documents/${k.key}`),
      [`s3://app-prod-documents/${keys[10]!.key}`, 's3://app-prod-documents/tenants/7/'],
    ]);
    for (const c of calls) {
      expect(c).toMatchObject({
        RecoveryPointArn: CONTINUOUS,
        IamRoleArn: ROLE,
        ResourceType: 'S3',
        Metadata: {
          DestinationBucketName: 'app-prod-documents',
          NewBucket: 'false',
          Encrypted: 'false',
          RestoreTime: '2026-11-27T21:00:00.000Z',
        },
      });
      expect(c.IdempotencyToken).toBe(c.Metadata!.CreationToken);
    }
    expect(new Set(calls.map((c) => c.IdempotencyToken)).size).toBe(3);
    expect(backupMock.commandCalls(ListRecoveryPointsByResourceCommand).map((c) => c.args[0].input)).toEqual([
      { ResourceArn: 'arn:aws:s3:::app-prod-documents', NextToken: undefined },
      { ResourceArn: 'arn:aws:s3:::app-prod-documents', NextToken: 'page-2' },
    ]);
    expect(report.jobs.map((j) => [j.restoreJobId, j.status])).toEqual([
      ['job-1', 'COMPLETED'],
      ['job-2', 'COMPLETED'],
      ['job-3', 'COMPLETED'],
    ]);
    expect([...polls.values()]).toEqual([2, 2, 2]);
  });

  it('takes the newest completed periodic recovery point at or before a date outside the continuous window', async () => {
    givenRecoveryPoints(35);
    backupMock.on(StartRestoreJobCommand).resolves({ RestoreJobId: 'job-1' });
    backupMock.on(DescribeRestoreJobCommand).resolves({ Status: 'COMPLETED' });
    const report = await restoreAwsBucket({
      ...base,
      items: [{ all: true }],
      asOf: new Date('2026-09-15T00:00:00Z'),
      toBucket: 'cofre-restore-documents-0915',
      newBucket: true,
    });
    expect(report.recoveryPointArn).toBe(periodic('2026-09-01'));
    const [call] = backupMock.commandCalls(StartRestoreJobCommand).map((c) => c.args[0].input);
    expect(call!.Metadata).toEqual({
      DestinationBucketName: 'cofre-restore-documents-0915',
      NewBucket: 'true',
      Encrypted: 'false',
      CreationToken: expect.any(String) as unknown,
    });
    // a PARTIAL recovery point is never chosen: on 2026-08-31 the one of 2026-08-01 is used
    backupMock.reset();
    givenRecoveryPoints(35);
    const dry = await restoreAwsBucket({
      ...base,
      items: [{ key: 'a.pdf' }],
      asOf: new Date('2026-08-31T12:00:00Z'),
      dryRun: true,
    });
    expect(dry.recoveryPointArn).toBe(periodic('2026-08-01'));
    expect(dry.jobs).toEqual([{ items: ['s3://app-prod-documents/a.pdf'], status: 'NOT_STARTED' }]);
    expect(backupMock.commandCalls(StartRestoreJobCommand)).toHaveLength(0);
  });

  it('a date before every recovery point is bad input naming --as-of, and nothing is started', async () => {
    givenRecoveryPoints();
    await expect(
      restoreAwsBucket({ ...base, items: [{ all: true }], asOf: new Date('2026-01-01T00:00:00Z') }),
    ).rejects.toThrow(
      new UsageError(
        '--as-of: no recovery point of this bucket covers 2026-01-01T00:00:00.000Z; the oldest is from 2026-06-01T03:00:00.000Z',
      ),
    );
    expect(backupMock.commandCalls(StartRestoreJobCommand)).toHaveLength(0);
  });

  it('a job that fails fails the restore, naming it, after every job was watched to its end', async () => {
    givenRecoveryPoints();
    let started = 0;
    backupMock.on(StartRestoreJobCommand).callsFake(() => ({ RestoreJobId: `job-${++started}` }));
    backupMock
      .on(DescribeRestoreJobCommand)
      .callsFake((input: { RestoreJobId: string }) =>
        input.RestoreJobId === 'job-1'
          ? { Status: 'FAILED', StatusMessage: 'Access Denied for s3:PutObject' }
          : { Status: 'COMPLETED' },
      );
    const keys = Array.from({ length: 6 }, (_, i) => ({ key: `k${i}` }));
    await expect(restoreAwsBucket({ ...base, items: keys, asOf: NOW })).rejects.toThrow(
      /1 of 2 restore jobs of app-prod-documents did not complete: job-1 FAILED \(Access Denied for s3:PutObject\)/,
    );
    expect(
      backupMock
        .commandCalls(DescribeRestoreJobCommand)
        .map((c) => c.args[0].input.RestoreJobId)
        .sort(),
    ).toEqual(['job-1', 'job-2']);
  });

  it('batches by 5 exactly: 5 items are one job, 6 are two, the whole bucket is one without ItemsToRestore', () => {
    const k = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `f${i}` }));
    expect(itemBatches('b', k(5)).map((b) => b?.length)).toEqual([5]);
    expect(itemBatches('b', k(6)).map((b) => b?.length)).toEqual([5, 1]);
    expect(itemBatches('b', [{ all: true }])).toEqual([undefined]);
  });
});

describe('AWS Backup job events of an application bucket', () => {
  const buckets = [{ database: 's3:app-prod-documents', resourceArn: 'arn:aws:s3:::app-prod-documents' }];
  const event = (detailType: string, detail: Record<string, unknown>) => ({
    source: 'aws.backup',
    'detail-type': detailType,
    time: '2026-11-28T06:10:00Z',
    detail: { resourceArn: 'arn:aws:s3:::app-prod-documents', resourceType: 'S3', ...detail },
  });

  it('a failed backup job of the bucket is a failed history record and a critical alert naming the bucket', () => {
    const run = backupJobRun(
      parseBackupJobEvent(
        event('Backup Job State Change', {
          backupJobId: 'b-1',
          state: 'FAILED',
          statusMessage: 'Bucket versioning is not enabled',
          recoveryPointArn: periodic('2026-11-28'),
        }),
      ),
      buckets,
    )!;
    expect(run.record).toMatchObject({
      database: 's3:app-prod-documents',
      kind: 'snapshot',
      status: 'failed',
    });
    expect(run.notify).toMatchObject({
      outcome: 'failed',
      error: 'AwsBackup.FAILED',
      cause: expect.stringContaining('Bucket versioning is not enabled') as unknown,
    });
  });

  it('a completed continuous backup is a pitr record; another bucket of the account is ignored', () => {
    const done = backupJobRun(
      parseBackupJobEvent(
        event('Backup Job State Change', {
          backupJobId: 'b-2',
          state: 'COMPLETED',
          recoveryPointArn: CONTINUOUS,
        }),
      ),
      buckets,
    )!;
    expect(done.record).toMatchObject({ kind: 'pitr', status: 'succeeded' });
    const other = parseBackupJobEvent({
      ...event('Backup Job State Change', { backupJobId: 'b-3', state: 'FAILED' }),
      detail: {
        backupJobId: 'b-3',
        state: 'FAILED',
        resourceArn: 'arn:aws:s3:::someone-else',
        resourceType: 'S3',
      },
    });
    expect(backupJobRun(other, buckets)).toBeUndefined();
  });
});
