import { Logger } from '@aws-lambda-powertools/logger';
import { SNSClient } from '@aws-sdk/client-sns';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { backupJobRun, parseBackupJobEvent } from '../../core/alerts/backup-events';
import { DynamoHistoryStore } from '../../core/history/store';
import { createBackupEventsHandler } from '../../lambdas/backup-events';
import {
  clientConfig,
  createHistoryTable,
  createTopicWithQueue,
  describeLocalAws,
  localAws,
  type TopicWithQueue,
} from '../helpers/local-aws';
import { withEnv } from '../helpers/env';

const logger = new Logger({ serviceName: 'test', logLevel: 'SILENT' });
const DB_ARN = 'arn:aws:rds:us-east-1:123456789012:db:database-1';
const DATABASES = [{ database: 'app-prod', resourceArn: DB_ARN }];

/**
 * Event payloads in the shape of AWS Backup's documented EventBridge examples ("Monitoring AWS Backup
 * events using Amazon EventBridge", Backup Job / Copy Job / Restore Job State Change): the same
 * envelope and detail fields (string sizes, ISO dates, `state` for backup and copy jobs, `status` for
 * restore jobs), with an RDS resource.
 */
function backupJobEvent(state: string, extra: Record<string, unknown> = {}) {
  return {
    version: '0',
    id: '710b0398-d48e-f3c3-afca-cfeb2fdaa656',
    'detail-type': 'Backup Job State Change',
    source: 'aws.backup',
    account: '123456789012',
    time: '2020-07-29T20:15:26Z',
    region: 'us-east-1',
    resources: [DB_ARN],
    detail: {
      backupJobId: '52BEE35C-4BB2-9A1C-A6E2-B1DA9E8EE2F0',
      backupSizeInBytes: '0',
      backupVaultArn:
        'arn:aws:backup:us-east-1:123456789012:backup-vault:8LWXuC-5w3-Q3Nt7M6CpB4AtTwkE6zCfSHNl',
      backupVaultName: '8LWXuC-5w3-Q3Nt7M6CpB4AtTwkE6zCfSHNl',
      bytesTransferred: '0',
      creationDate: '2020-07-29T20:14:59.478Z',
      iamRoleArn: 'arn:aws:iam::123456789012:role/service-role/AWSBackupDefaultServiceRole',
      resourceArn: DB_ARN,
      resourceType: 'RDS',
      state,
      statusMessage: 'Backup job failed because the resource was modified during the backup job.',
      percentDone: 0,
      startBy: '2020-07-30T04:14:59.478Z',
      ...extra,
    },
  };
}

function copyJobEvent(state: string) {
  return {
    version: '0',
    id: '5c0ee7b0-5d2c-4a2e-8b20-9b1b4b8b9a01',
    'detail-type': 'Copy Job State Change',
    source: 'aws.backup',
    account: '123456789012',
    time: '2020-07-29T21:22:07Z',
    region: 'us-east-1',
    resources: ['arn:aws:backup:us-east-1:123456789012:recovery-point:awsbackup:job-52bee35c'],
    detail: {
      copyJobId: '3F1B4F2A-8E39-1D3D-2C30-3B6C1F0A9D31',
      backupSizeInBytes: '8589934592',
      creationDate: '2020-07-29T21:20:11.278Z',
      completionDate: '2020-07-29T21:22:01.002Z',
      iamRoleArn: 'arn:aws:iam::123456789012:role/service-role/AWSBackupDefaultServiceRole',
      resourceArn: DB_ARN,
      resourceType: 'RDS',
      sourceBackupVaultArn: 'arn:aws:backup:us-east-1:123456789012:backup-vault:primary',
      destinationBackupVaultArn: 'arn:aws:backup:us-west-2:123456789012:backup-vault:dr',
      destinationRecoveryPointArn: 'arn:aws:rds:us-west-2:123456789012:snapshot:awsbackup:copyjob-3f1b4f2a',
      state,
    },
  };
}

function restoreJobEvent(status: string) {
  return {
    version: '0',
    id: '8f7a1e46-2c49-8e64-0b5c-9a0b3f7a6d11',
    'detail-type': 'Restore Job State Change',
    source: 'aws.backup',
    account: '123456789012',
    time: '2020-07-30T01:02:03Z',
    region: 'us-east-1',
    resources: ['arn:aws:rds:us-east-1:123456789012:snapshot:awsbackup:job-52bee35c'],
    detail: {
      restoreJobId: '9E8D7C6B-5A49-3827-1605-F4E3D2C1B0A9',
      backupSizeInBytes: '8589934592',
      creationDate: '2020-07-30T00:40:00.000Z',
      completionDate: '2020-07-30T01:01:00.000Z',
      iamRoleArn: 'arn:aws:iam::123456789012:role/service-role/AWSBackupDefaultServiceRole',
      percentDone: 100,
      recoveryPointArn: 'arn:aws:rds:us-east-1:123456789012:snapshot:awsbackup:job-52bee35c',
      resourceType: 'RDS',
      createdResourceArn: 'arn:aws:rds:us-east-1:123456789012:db:restored-1',
      status,
    },
  };
}

describe('AWS Backup events → history record and alert (pure mapping)', () => {
  it.each([
    ['FAILED', 'failed'],
    ['ABORTED', 'failed'],
    ['EXPIRED', 'failed'],
    ['COMPLETED', 'succeeded'],
    ['RUNNING', 'running'],
    ['CREATED', 'running'],
  ] as const)('a backup job %s is a %s snapshot record', (state, status) => {
    const run = backupJobRun(parseBackupJobEvent(backupJobEvent(state)), DATABASES)!;
    expect(run.record).toMatchObject({
      id: 'awsbackup-52BEE35C-4BB2-9A1C-A6E2-B1DA9E8EE2F0',
      kind: 'snapshot',
      database: 'app-prod',
      status,
      startedAt: '2020-07-29T20:14:59.478Z',
      requestedBy: 'aws-backup',
    });
    if (status === 'running') {
      expect(run.notify).toBeUndefined();
      expect(run.record.finishedAt).toBeUndefined();
    } else {
      expect(run.notify).toMatchObject({
        outcome: status,
        job: 'aws-backup',
        database: 'app-prod',
        kind: 'snapshot',
      });
      expect(run.record.finishedAt).toBe('2020-07-29T20:15:26.000Z');
    }
    if (status === 'failed')
      expect(run.notify!.cause).toBe(
        `Backup Job State Change of app-prod (${DB_ARN}): ${state}: Backup job failed because the resource was modified during the backup job.`,
      );
  });

  it('a backup job of a continuous recovery point is kind pitr', () => {
    const run = backupJobRun(
      parseBackupJobEvent(
        backupJobEvent('COMPLETED', {
          recoveryPointArn:
            'arn:aws:backup:us-east-1:123456789012:recovery-point:continuous:db-abcdefg-1a2b3c4d',
        }),
      ),
      DATABASES,
    )!;
    expect(run.record.kind).toBe('pitr');
  });

  it('a copy job is kind snapshot-copy, located at the DR recovery point, with its size', () => {
    const run = backupJobRun(parseBackupJobEvent(copyJobEvent('COMPLETED')), DATABASES)!;
    expect(run.record).toMatchObject({
      kind: 'snapshot-copy',
      status: 'succeeded',
      bytes: 8589934592,
      location: 'arn:aws:rds:us-west-2:123456789012:snapshot:awsbackup:copyjob-3f1b4f2a',
      finishedAt: '2020-07-29T21:22:01.002Z',
    });
  });

  it('a restore job reads `status` (not `state`) and is kind restore', () => {
    const run = backupJobRun(parseBackupJobEvent(restoreJobEvent('FAILED')), DATABASES)!;
    expect(run.record).toMatchObject({ kind: 'restore', status: 'failed' });
    expect(run.notify?.outcome).toBe('failed');
  });

  it('ignores a job of a resource Cofre does not protect', () => {
    const other = backupJobEvent('FAILED', { resourceArn: 'arn:aws:rds:us-east-1:123456789012:db:other' });
    expect(backupJobRun(parseBackupJobEvent(other), DATABASES)).toBeUndefined();
  });

  it('rejects an event that is not an AWS Backup job event, naming the field', () => {
    expect(() => parseBackupJobEvent({ ...backupJobEvent('FAILED'), source: 'aws.s3' })).toThrow(
      /invalid AWS Backup event: source:/,
    );
    expect(() =>
      parseBackupJobEvent({ ...backupJobEvent('FAILED'), 'detail-type': 'Backup Vault State Change' }),
    ).toThrow(/detail-type:/);
  });
});

describeLocalAws(
  'backup-events handler (local AWS: history in DynamoDB, alerts read back through SQS)',
  () => {
    let topic: TopicWithQueue;
    let store: DynamoHistoryStore;
    let handle: ReturnType<typeof createBackupEventsHandler>;
    beforeAll(async () => {
      const aws = localAws();
      topic = await createTopicWithQueue(aws.sns, aws.sqs, 'backup-events');
      const table = await createHistoryTable(aws.dynamodb);
      store = new DynamoHistoryStore(DynamoDBDocumentClient.from(aws.dynamodb), table);
      handle = withEnv(
        {
          COFRE_HISTORY_TABLE: table,
          COFRE_TOPIC_ARN: topic.topicArn,
          COFRE_NOTIFY_ON_SUCCESS: 'false',
          COFRE_SNAPSHOT_DATABASES: JSON.stringify(DATABASES),
          AWS_REGION: 'us-east-1',
        },
        () =>
          createBackupEventsHandler({
            history: store,
            sns: new SNSClient(clientConfig()),
            logger,
          }),
      );
    });

    it('RUNNING then FAILED: one record, updated, and one critical alert routed like the pipeline', async () => {
      await handle(backupJobEvent('RUNNING'));
      expect(await store.latest('app-prod', 'snapshot')).toMatchObject({ status: 'running' });
      expect(await topic.receive(1)).toEqual([]);

      await handle(backupJobEvent('FAILED'));
      const record = await store.latest('app-prod', 'snapshot');
      expect(record).toMatchObject({
        id: 'awsbackup-52BEE35C-4BB2-9A1C-A6E2-B1DA9E8EE2F0',
        status: 'failed',
        finishedAt: '2020-07-29T20:15:26.000Z',
      });
      expect(await store.latest('app-prod', 'snapshot', 'running')).toBeUndefined();
      const [received, ...more] = await topic.receive(2);
      expect(more).toEqual([]);
      expect(received!.subject).toBe('[Cofre] FAILED RDS snapshot app-prod (us-east-1)');
      expect(received!.message).toMatch(/resource was modified during the backup job/);
      expect(received!.message).toMatch(/aws backup start-backup-job/);
      expect(received!.attributes).toMatchObject({
        severity: { Type: 'String', Value: 'critical' },
        kind: { Type: 'String', Value: 'snapshot' },
        outcome: { Type: 'String', Value: 'failed' },
        job: { Type: 'String', Value: 'aws-backup' },
        audience: { Type: 'String', Value: 'people' },
      });
    });

    it('a completed DR copy is recorded as a good snapshot-copy and resolves (audience pagerduty)', async () => {
      await handle(copyJobEvent('COMPLETED'));
      expect(await store.latest('app-prod', 'snapshot-copy', 'succeeded')).toMatchObject({
        kind: 'snapshot-copy',
        bytes: 8589934592,
      });
      const [received] = await topic.receive(2);
      expect(received!.attributes).toMatchObject({
        severity: { Type: 'String', Value: 'info' },
        audience: { Type: 'String', Value: 'pagerduty' },
      });
    });

    it('refuses a malformed COFRE_SNAPSHOT_DATABASES naming the variable', () => {
      expect(() =>
        withEnv(
          {
            COFRE_TOPIC_ARN: topic.topicArn,
            COFRE_NOTIFY_ON_SUCCESS: 'false',
            COFRE_SNAPSHOT_DATABASES: '[{"database":"x"}]',
            AWS_REGION: 'us-east-1',
          },
          () =>
            createBackupEventsHandler({
              history: store,
              sns: new SNSClient(clientConfig()),
              logger,
            }),
        ),
      ).toThrow(/COFRE_SNAPSHOT_DATABASES: 0\.resourceArn/);
    });
  },
);
