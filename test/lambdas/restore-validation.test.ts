/**
 * The snapshot restore test's event handling: a `Restore Job State Change` event (the documented
 * EventBridge shape) → DescribeRestoreJob → validation → history (moto DynamoDB), AWS Backup's
 * PutRestoreValidationResult, alert (moto SNS, read back through SQS). The Cofre backup is real
 * (PostgreSQL → moto S3 vault), the source secret is moto's, the restored instance of the failing
 * path is a moto RDS instance (whose endpoint no server answers).
 *
 * moto implements neither DescribeRestoreJob nor PutRestoreValidationResult: those two AWS Backup
 * calls alone go through aws-sdk-client-mock (README, Testing).
 */
import { Logger } from '@aws-lambda-powertools/logger';
import {
  BackupClient,
  DescribeRestoreJobCommand,
  PutRestoreValidationResultCommand,
  type DescribeRestoreJobOutput,
} from '@aws-sdk/client-backup';
import { CreateDBInstanceCommand, RDSClient } from '@aws-sdk/client-rds';
import { S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { checkFreshness, FRESHNESS_METRICS } from '../../core/alerts/freshness';
import { notify, snsPublisher } from '../../core/alerts/notify';
import { runBackup } from '../../core/backup/backup';
import { parseDatabaseUrl } from '../../core/sources/connection';
import { DynamoHistoryStore } from '../../core/history/store';
import {
  describeRestoreJobWith,
  handleRestoreTestEvent,
  putValidationResultWith,
  secretCredentialsWith,
  snapshotRestoreTestId,
  type RestoreTestedDatabase,
} from '../../core/rds/restore-validation';
import { openVault, type Vault } from '../../core/vault';
import { createRestoreValidationHandler } from '../../lambdas/restore-validation';
import {
  createPostgresDatabase,
  postgresAvailable,
  withPostgresClient,
  type TestDatabase,
} from '../helpers/databases';
import { testKeys } from '../helpers/engine';
import {
  clientConfig,
  createHistoryTable,
  createSecret,
  createTopicWithQueue,
  createVaultBucket,
  describeLocalAws,
  localAws,
  REGION,
  uniqueName,
  type LocalAws,
  type TopicWithQueue,
} from '../helpers/local-aws';
import { withEnv } from '../helpers/env';

const logger = new Logger({ serviceName: 'test', logLevel: 'SILENT' });
const PLAN_ARN =
  'arn:aws:backup:sa-east-1:123456789012:restore-testing-plan:CofrePrimarySnapshotRestoreTests-abc';
const SOURCE_ARN = 'arn:aws:rds:sa-east-1:123456789012:db:app-prod';

/** A `Restore Job State Change` event as AWS Backup's EventBridge documentation shows it. */
function restoreJobEvent(restoreJobId: string, status = 'COMPLETED') {
  return {
    version: '0',
    id: '8f7a1e46-2c49-8e64-0b5c-9a0b3f7a6d11',
    'detail-type': 'Restore Job State Change',
    source: 'aws.backup',
    account: '123456789012',
    time: '2026-11-01T07:23:31Z',
    region: REGION,
    resources: ['arn:aws:rds:sa-east-1:123456789012:snapshot:awsbackup:job-52bee35c'],
    detail: {
      restoreJobId,
      backupSizeInBytes: '21474836480',
      creationDate: '2026-11-01T07:00:00.000Z',
      completionDate: '2026-11-01T07:23:30.000Z',
      iamRoleArn: 'arn:aws:iam::123456789012:role/CofrePrimary-RestoreRole',
      percentDone: 100,
      resourceType: 'RDS',
      createdResourceArn: `arn:aws:rds:sa-east-1:123456789012:db:awsbackup-${restoreJobId.toLowerCase()}`,
      status,
    },
  };
}

describeLocalAws('snapshot restore test: event → validation → history, AWS Backup result, alert', () => {
  let aws: LocalAws;
  let db: TestDatabase | undefined;
  let pgMissing: string | undefined;
  let topic: TopicWithQueue;
  let store: DynamoHistoryStore;
  let tableName: string;
  let vault: Vault;
  let vaultBucket: string;
  let secretArn: string;
  let tested: RestoreTestedDatabase;
  let snapshotAt: Date;
  const backup = mockClient(BackupClient);
  const jobs = new Map<string, DescribeRestoreJobOutput>();

  beforeAll(async () => {
    pgMissing = await postgresAvailable();
    if (pgMissing && process.env.CI === 'true') throw new Error(pgMissing);
    aws = localAws();
    topic = await createTopicWithQueue(aws.sns, aws.sqs, 'restore-validation');
    tableName = await createHistoryTable(aws.dynamodb);
    store = new DynamoHistoryStore(DynamoDBDocumentClient.from(aws.dynamodb), tableName);
    vaultBucket = await createVaultBucket(aws.s3);
    vault = openVault(`s3://${vaultBucket}`, {
      s3: new S3Client({ ...clientConfig(), forcePathStyle: true }),
      objectLockMode: 'COMPLIANCE',
    });
    if (pgMissing) return;
    db = await createPostgresDatabase('rds-event');
    await withPostgresClient(db.url, async (c) => {
      await c.query('CREATE TABLE clinics (id int PRIMARY KEY)');
      await c.query('INSERT INTO clinics SELECT generate_series(1, 12)');
    });
    const [outcome] = await runBackup({
      connection: parseDatabaseUrl('postgres', db.url),
      vault,
      keys: (await testKeys()).keys,
      sourceId: 'app-prod',
    });
    if (!outcome?.ok) throw new Error(`backup failed: ${JSON.stringify(outcome)}`);
    snapshotAt = new Date(Date.now() + 1000);
    const u = parseDatabaseUrl('postgres', db.url);
    secretArn = await createSecret(aws.secrets, { username: u.user, password: u.password ?? '' }, 'app-prod');
    tested = {
      database: 'app-prod',
      engine: 'postgres',
      resourceArn: SOURCE_ARN,
      credentialsSecretArn: secretArn,
      databases: [db.name],
      excludeDatabases: [],
    };
  }, 120_000);

  afterAll(async () => {
    backup.restore();
    await db?.drop();
  });

  beforeEach(() => {
    backup.reset();
    backup.on(DescribeRestoreJobCommand).callsFake((input: { RestoreJobId: string }) => {
      const job = jobs.get(input.RestoreJobId);
      if (!job)
        throw Object.assign(new Error('restore job not found'), { name: 'ResourceNotFoundException' });
      return job;
    });
    backup.on(PutRestoreValidationResultCommand).resolves({});
  });

  const skip = () => {
    if (pgMissing) console.warn(`[restore-validation] skipping: ${pgMissing}`);
    return pgMissing !== undefined;
  };

  function job(id: string, over: Partial<DescribeRestoreJobOutput> = {}): string {
    jobs.set(id, {
      RestoreJobId: id,
      Status: 'COMPLETED',
      CreationDate: new Date('2026-11-01T07:00:00.000Z'),
      CompletionDate: new Date('2026-11-01T07:23:30.000Z'),
      SourceResourceArn: SOURCE_ARN,
      RecoveryPointArn: 'arn:aws:rds:sa-east-1:123456789012:snapshot:awsbackup:job-52bee35c',
      RecoveryPointCreationDate: snapshotAt,
      CreatedResourceArn: `arn:aws:rds:sa-east-1:123456789012:db:awsbackup-${id.toLowerCase()}`,
      ResourceType: 'RDS',
      CreatedBy: { RestoreTestingPlanArn: PLAN_ARN },
      ...over,
    });
    return id;
  }

  const deps = (endpoint: { host: string; port: number }) => ({
    restoreTestingPlanArn: PLAN_ARN,
    databases: [tested],
    describeRestoreJob: describeRestoreJobWith(new BackupClient({ region: REGION })),
    putValidationResult: putValidationResultWith(new BackupClient({ region: REGION })),
    endpointOf: () => Promise.resolve(endpoint),
    credentialsOf: secretCredentialsWith(aws.secrets),
    vault,
    history: store,
    notify: (e: Parameters<typeof notify>[0]) =>
      notify(e, { publish: snsPublisher(aws.sns, topic.topicArn), notifyOnSuccess: false, region: REGION }),
  });

  const validationCalls = () =>
    backup.commandCalls(PutRestoreValidationResultCommand).map((c) => c.args[0].input);

  it('a passing restore test: recorded as restore-test/snapshot with the restore time, SUCCESSFUL reported, no alert; DaysSinceLastGoodRestoreTest counts it', async () => {
    if (skip()) return;
    const u = parseDatabaseUrl('postgres', db!.url);
    const id = job(`PASS-${uniqueName('j')}`);
    const out = await handleRestoreTestEvent(restoreJobEvent(id), deps({ host: u.host, port: u.port }));
    expect(out.ignored).toBe(false);
    const record = await store.latest('app-prod', 'restore-test', 'succeeded');
    expect(record).toMatchObject({
      id: snapshotRestoreTestId(id),
      kind: 'restore-test',
      method: 'snapshot',
      database: 'app-prod',
      status: 'succeeded',
      startedAt: '2026-11-01T07:00:00.000Z',
      finishedAt: '2026-11-01T07:23:30.000Z',
      location: 'arn:aws:rds:sa-east-1:123456789012:snapshot:awsbackup:job-52bee35c',
      requestedBy: 'aws-backup',
    });
    expect(record!.message).toMatch(/app-prod: snapshot restored in 24 min; 1 table\(s\), 12 rows/);
    expect(validationCalls()).toEqual([
      { RestoreJobId: id, ValidationStatus: 'SUCCESSFUL', ValidationStatusMessage: record!.message },
    ]);
    expect(await topic.receive(1)).toEqual([]);
    // The hourly freshness check counts it as the last good restore test, and its RTO.
    const { findings, metrics } = await checkFreshness(
      store,
      [{ database: 'app-prod', tenants: false }],
      new Date('2026-11-03T07:23:30.000Z'),
    );
    expect(findings.find((f) => f.check === 'restore-test')).toMatchObject({
      state: 'fresh',
      age: 2,
      lastGood: { id: snapshotRestoreTestId(id) },
    });
    expect(metrics).toEqual(
      expect.arrayContaining([
        {
          name: FRESHNESS_METRICS.daysSinceLastGoodRestoreTest,
          dimensions: { Database: 'app-prod' },
          value: 2,
          unit: 'None',
        },
        {
          name: FRESHNESS_METRICS.lastRestoreTestSeconds,
          dimensions: { Database: 'app-prod' },
          value: 1410,
          unit: 'Seconds',
        },
      ]),
    );
  });

  it('the Lambda handler on a restored instance nobody answers (a moto RDS instance): FAILED reported, failed record, critical alert, no crash', async () => {
    if (skip()) return;
    const rds = new RDSClient(clientConfig());
    const restoredId = `awsbackup-${uniqueName('rt')}`.slice(0, 60);
    await rds.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: restoredId,
        Engine: 'postgres',
        DBInstanceClass: 'db.t4g.micro',
        AllocatedStorage: 20,
        MasterUsername: 'postgres',
        MasterUserPassword: 'not-used-1234',
      }),
    );
    const id = job(`FAIL-${uniqueName('j')}`, {
      CreatedResourceArn: `arn:aws:rds:${REGION}:123456789012:db:${restoredId}`,
    });
    const handle = withEnv(
      {
        AWS_REGION: REGION,
        COFRE_TOPIC_ARN: topic.topicArn,
        COFRE_NOTIFY_ON_SUCCESS: 'false',
        COFRE_VAULT_URL: `s3://${vaultBucket}`,
        COFRE_OBJECT_LOCK_MODE: 'COMPLIANCE',
        COFRE_RESTORE_TESTING_PLAN_ARN: PLAN_ARN,
        COFRE_RESTORE_TEST_DATABASES: JSON.stringify([tested]),
      },
      () =>
        createRestoreValidationHandler({
          history: store,
          backup: new BackupClient({ region: REGION }),
          rds,
          secrets: aws.secrets,
          s3: new S3Client({ ...clientConfig(), forcePathStyle: true }),
          sns: aws.sns,
          logger,
        }),
    );
    const out = await handle(restoreJobEvent(id));
    expect(out.ignored).toBe(false);
    const record = await store.latest('app-prod', 'restore-test', 'failed');
    expect(record).toMatchObject({ id: snapshotRestoreTestId(id), status: 'failed', method: 'snapshot' });
    expect(record!.message).toMatch(
      /clinics: cannot connect: cannot connect to PostgreSQL at .*rds\.amazonaws\.com:5432/,
    );
    expect(validationCalls()).toEqual([
      expect.objectContaining({ RestoreJobId: id, ValidationStatus: 'FAILED' }),
    ]);
    const messages = await topic.receive(2);
    expect(messages).toHaveLength(1);
    expect(messages[0]!.subject).toMatch(/FAILED restore test app-prod/);
    expect(messages[0]!.message).toContain('Cofre.SnapshotRestoreTestFailed');
    expect(messages[0]!.message).toContain('Open the AWS Backup restore job');
    expect(messages[0]!.attributes).toMatchObject({ severity: { Value: 'critical' } });
  }, 60_000);

  it('ignores restore jobs of another plan or started by hand, and jobs already validated: nothing recorded or reported', async () => {
    if (skip()) return;
    const u = parseDatabaseUrl('postgres', db!.url);
    const other = job(`OTHER-${uniqueName('j')}`, { CreatedBy: {} });
    const done = job(`DONE-${uniqueName('j')}`, { ValidationStatus: 'SUCCESSFUL' });
    for (const id of [other, done]) {
      const out = await handleRestoreTestEvent(restoreJobEvent(id), deps({ host: u.host, port: u.port }));
      expect(out.ignored).toBe(true);
    }
    expect(validationCalls()).toEqual([]);
    const records = await store.between('2026-11-01T00:00:00.000Z', '2026-11-02T00:00:00.000Z');
    expect(records.map((r) => r.id)).not.toContain(snapshotRestoreTestId(other));
    expect(records.map((r) => r.id)).not.toContain(snapshotRestoreTestId(done));
  });

  it('a restore job of the plan that FAILED is a failed restore test: recorded and alerted, nothing to report to AWS Backup', async () => {
    if (skip()) return;
    const id = job(`RFAIL-${uniqueName('j')}`, {
      Status: 'FAILED',
      StatusMessage: 'DB subnet group app-prod-subnets does not exist',
      CompletionDate: new Date('2026-11-01T07:02:00.000Z'),
      CreatedResourceArn: undefined,
    });
    const out = await handleRestoreTestEvent(
      restoreJobEvent(id, 'FAILED'),
      deps({ host: '127.0.0.1', port: 1 }),
    );
    expect(out.ignored).toBe(false);
    const records = await store.between('2026-11-01T00:00:00.000Z', '2026-11-02T00:00:00.000Z');
    expect(records.find((r) => r.id === snapshotRestoreTestId(id))).toMatchObject({
      status: 'failed',
      method: 'snapshot',
      database: 'app-prod',
      message:
        'app-prod: the restore of the snapshot ended FAILED: DB subnet group app-prod-subnets does not exist',
    });
    expect(validationCalls()).toEqual([]);
    const messages = await topic.receive(2);
    expect(messages.map((m) => m.subject)).toEqual([expect.stringMatching(/FAILED restore test app-prod/)]);
  });

  it('a restore of a source Cofre does not know is FAILED, naming it', async () => {
    if (skip()) return;
    const id = job(`UNKNOWN-${uniqueName('j')}`, {
      SourceResourceArn: 'arn:aws:rds:sa-east-1:123456789012:db:someone-else',
    });
    const out = await handleRestoreTestEvent(restoreJobEvent(id), deps({ host: '127.0.0.1', port: 1 }));
    expect(out.ignored).toBe(false);
    expect(validationCalls()).toEqual([
      {
        RestoreJobId: id,
        ValidationStatus: 'FAILED',
        ValidationStatusMessage:
          'the restored source arn:aws:rds:sa-east-1:123456789012:db:someone-else is not an RDS instance of the Cofre configuration',
      },
    ]);
    await topic.receive(2);
  });

  it('rejects an event that is not a restore job event, naming the field', async () => {
    await expect(
      handleRestoreTestEvent(
        { ...restoreJobEvent('x'), 'detail-type': 'Backup Job State Change' },
        deps({ host: 'x', port: 1 }),
      ),
    ).rejects.toThrow(/invalid restore job event: detail-type/);
  });
});
