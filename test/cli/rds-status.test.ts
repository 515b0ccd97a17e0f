/**
 * `cofre rds status` against the local AWS: moto's RDS (an instance and an Aurora cluster, whose
 * LatestRestorableTime moto reports as now) and DynamoDB (the history); AWS Backup's
 * ListRecoveryPointsByResource, which moto does not implement, through aws-sdk-client-mock for that
 * call only, answering per region (README, Testing).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  BackupClient,
  ListRecoveryPointsByResourceCommand,
  type RecoveryPointByResource,
} from '@aws-sdk/client-backup';
import { CreateDBClusterCommand, CreateDBInstanceCommand, RDSClient } from '@aws-sdk/client-rds';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DynamoHistoryStore } from '../../core/history/store';
import { rdsStatus, type RdsStatus } from '../../core/rds/status';
import type { CofreConfigInput } from '../../lib/config';
import { exampleConfig } from '../helpers/cdk';
import { cofre, tempDir } from '../helpers/cli';
import {
  ACCOUNT,
  clientConfig,
  createHistoryTable,
  describeLocalAws,
  localAws,
  localAwsEnv,
  REGION,
  uniqueName,
} from '../helpers/local-aws';

const DR_REGION = 'us-east-1';
const HOUR = 3_600_000;

describeLocalAws('cofre rds status (moto RDS and DynamoDB; ListRecoveryPointsByResource mocked)', () => {
  const backup = mockClient(BackupClient);
  let table: string;
  let store: DynamoHistoryStore;
  let instanceId: string;
  let clusterId: string;
  let configFile: string;
  const points: Record<string, Record<string, RecoveryPointByResource[]>> = {};

  const arnOf = (kind: 'db' | 'cluster', id: string) => `arn:aws:rds:${REGION}:${ACCOUNT}:${kind}:${id}`;

  beforeAll(async () => {
    const aws = localAws();
    table = await createHistoryTable(aws.dynamodb);
    store = new DynamoHistoryStore(DynamoDBDocumentClient.from(aws.dynamodb), table);
    const rds = new RDSClient(clientConfig());
    instanceId = uniqueName('app').replace(/[^a-z0-9-]/g, '-');
    clusterId = uniqueName('ledger').replace(/[^a-z0-9-]/g, '-');
    await rds.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: instanceId,
        Engine: 'postgres',
        DBInstanceClass: 'db.t4g.micro',
        AllocatedStorage: 20,
        MasterUsername: 'postgres',
        MasterUserPassword: 'not-used-1234',
      }),
    );
    await rds.send(
      new CreateDBClusterCommand({
        DBClusterIdentifier: clusterId,
        Engine: 'aurora-postgresql',
        MasterUsername: 'postgres',
        MasterUserPassword: 'not-used-1234',
      }),
    );
    configFile = writeConfig((c) => c);
  }, 60_000);

  afterAll(() => {
    backup.restore();
  });

  function writeConfig(change: (c: CofreConfigInput) => CofreConfigInput): string {
    const config = exampleConfig((c) => {
      const [app, ledger] = [structuredClone(c.databases![0]!), structuredClone(c.databases![0]!)];
      app.rdsInstanceId = instanceId;
      ledger.id = 'ledger-aurora';
      delete ledger.rdsInstanceId;
      delete ledger.snapshotRestoreTest;
      delete ledger.tenants;
      ledger.rdsClusterId = clusterId;
      return change({
        ...c,
        account: ACCOUNT,
        regions: { primary: REGION, dr: DR_REGION },
        databases: [app, ledger],
        snapshots: { rpoMinutes: 45 },
      });
    });
    const file = path.join(tempDir('rds-status'), 'cofre.config.json');
    writeFileSync(file, JSON.stringify(config));
    return file;
  }

  beforeEach(() => {
    backup.reset();
    backup
      .on(ListRecoveryPointsByResourceCommand)
      .callsFake(async (input: { ResourceArn: string }, getClient) => {
        const region = await getClient().config.region();
        return { RecoveryPoints: points[region]?.[input.ResourceArn] ?? [] };
      });
  });

  const rp = (arn: string, hoursAgo: number, status = 'COMPLETED', vault = 'cofre-snapshots') => ({
    RecoveryPointArn: arn,
    CreationDate: new Date(Date.now() - hoursAgo * HOUR),
    Status: status as RecoveryPointByResource['Status'],
    BackupVaultName: vault,
  });

  function healthyRecoveryPoints() {
    for (const [kind, id] of [
      ['db', instanceId],
      ['cluster', clusterId],
    ] as const) {
      const arn = arnOf(kind, id);
      points[REGION] = {
        ...points[REGION],
        [arn]: [
          rp(`arn:aws:backup:${REGION}:${ACCOUNT}:recovery-point:continuous:${kind}-${id}`, 0.1),
          rp(`arn:aws:rds:${REGION}:${ACCOUNT}:snapshot:awsbackup:job-old-${id}`, 27),
          rp(`arn:aws:rds:${REGION}:${ACCOUNT}:snapshot:awsbackup:job-new-${id}`, 3),
          rp(`arn:aws:rds:${REGION}:${ACCOUNT}:snapshot:awsbackup:job-running-${id}`, 0.2, 'CREATING'),
        ],
      };
      points[DR_REGION] = {
        ...points[DR_REGION],
        [arn]: [
          rp(
            `arn:aws:rds:${DR_REGION}:${ACCOUNT}:snapshot:awsbackup:copyjob-new-${id}`,
            2,
            'COMPLETED',
            'cofre-dr',
          ),
        ],
      };
    }
  }

  async function restoreTest(
    database: string,
    status: 'succeeded' | 'failed',
    daysAgo: number,
    method?: 'snapshot',
  ) {
    const started = new Date(Date.now() - daysAgo * 24 * HOUR);
    await store.put({
      id: uniqueName('rt'),
      kind: 'restore-test',
      database,
      status,
      startedAt: started.toISOString(),
      finishedAt: new Date(started.getTime() + 1410_000).toISOString(),
      requestedBy: 'aws-backup',
      message: status === 'failed' ? 'visits: 73 rows, fewer than the 75 of backup X' : 'ok',
      ...(method ? { method } : {}),
    });
  }

  const run = (args: string[]) => cofre(['rds', 'status', '--history-table', table, ...args], localAwsEnv());

  it('reports the lag, the newest completed snapshot (not the continuous or a running one), its DR copy and the last restore test with its RTO; exit 0', async () => {
    healthyRecoveryPoints();
    await restoreTest('app-prod', 'succeeded', 3, 'snapshot');
    await restoreTest('ledger-aurora', 'succeeded', 5);
    const { code, stdout, stderr } = await run(['--config', configFile, '--json']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const status = JSON.parse(stdout) as RdsStatus;
    expect(status.ok).toBe(true);
    expect(status.limits.rpoMinutes).toBe(45);
    const app = status.databases.find((d) => d.database === 'app-prod')!;
    expect(app.resourceArn).toBe(arnOf('db', instanceId));
    expect(app.lagMinutes).toBeLessThan(1);
    expect(app.snapshot).toMatchObject({
      recoveryPointArn: `arn:aws:rds:${REGION}:${ACCOUNT}:snapshot:awsbackup:job-new-${instanceId}`,
      ageHours: 3,
      vault: 'cofre-snapshots',
    });
    expect(app.drCopy).toMatchObject({ ageHours: 2, vault: 'cofre-dr' });
    expect(app.lastRestoreTest).toMatchObject({ status: 'succeeded', method: 'snapshot', rtoSeconds: 1410 });
    const ledger = status.databases.find((d) => d.database === 'ledger-aurora')!;
    expect(ledger.resourceArn).toBe(arnOf('cluster', clusterId));
    expect(ledger.latestRestorableTime).toBeDefined();
    expect(ledger.lastRestoreTest).toMatchObject({ method: 'logical' });
    const text = await run(['--config', configFile]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/app-prod {2}OK/);
    expect(text.stdout).toMatch(/restore test {4}succeeded .* \(snapshot, restored in 24 min\)/);
  });

  it('a point-in-time lag beyond the RPO is a problem (LatestRestorableTime from moto, checked two hours later)', async () => {
    healthyRecoveryPoints();
    const config = { ...clientConfig(), region: REGION };
    const status = await rdsStatus(
      [{ database: 'app-prod', rdsInstanceId: instanceId, resourceArn: arnOf('db', instanceId) }],
      {
        rds: new RDSClient(config),
        backup: new BackupClient(config),
        drBackup: new BackupClient({ ...config, region: DR_REGION }),
        history: store,
        now: new Date(Date.now() + 2 * HOUR),
        limits: { rpoMinutes: 45 },
      },
    );
    const app = status.databases[0]!;
    expect(app.lagMinutes).toBeGreaterThanOrEqual(119.9);
    expect(app.problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^point-in-time lag 1[12]\d(\.\d)? min is beyond the RPO of 45 min$/),
      ]),
    );
    expect(status.ok).toBe(false);
  });

  it('exit 1 naming each problem: a newest snapshot without its DR copy, a failed last restore test', async () => {
    healthyRecoveryPoints();
    const arn = arnOf('db', instanceId);
    points[DR_REGION]![arn] = [
      rp(`arn:aws:rds:${DR_REGION}:${ACCOUNT}:snapshot:awsbackup:copyjob-old-${instanceId}`, 26),
    ];
    await restoreTest('app-prod', 'failed', 1, 'snapshot');
    const { code, stdout } = await run(['--config', configFile]);
    expect(code).toBe(1);
    expect(stdout).toMatch(/app-prod {2}NOT OK/);
    expect(stdout).toMatch(/PROBLEM the newest snapshot \(.*\) has no DR copy yet/);
    expect(stdout).toMatch(/PROBLEM the last restore test failed: visits: 73 rows/);
    expect(stdout).toMatch(/last good test /);
  });

  it('fails closed: an AWS Backup call that fails and a database RDS does not know are errors (status unknown), exit 1', async () => {
    healthyRecoveryPoints();
    backup
      .on(ListRecoveryPointsByResourceCommand)
      .callsFake(async (input: { ResourceArn: string }, getClient) => {
        const region = await getClient().config.region();
        if (region === DR_REGION)
          throw Object.assign(
            new Error('User is not authorized to perform: backup:ListRecoveryPointsByResource'),
            {
              name: 'AccessDeniedException',
            },
          );
        return { RecoveryPoints: points[region]?.[input.ResourceArn] ?? [] };
      });
    const gone = writeConfig((c) => {
      c.databases![0]!.rdsInstanceId = 'app-deleted';
      return c;
    });
    const { code, stdout, stderr } = await run(['--config', gone, '--json']);
    expect(code).toBe(1);
    const status = JSON.parse(stdout) as RdsStatus;
    expect(status.ok).toBe(false);
    const app = status.databases.find((d) => d.database === 'app-prod')!;
    expect(app.errors).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^RDS DescribeDBInstances: .*app-deleted/),
        expect.stringMatching(
          /^AWS Backup ListRecoveryPointsByResource \(DR region\): User is not authorized/,
        ),
      ]),
    );
    expect(app.latestRestorableTime).toBeUndefined();
    expect(app.drCopy).toBeUndefined();
    expect(app.problems.join(' ')).not.toMatch(/DR region/);
    expect(stderr).toMatch(
      /could not read \(status unknown, not assumed fine\): app-prod: RDS DescribeDBInstances/,
    );
    // The example cofre.config.ts (TypeScript, loaded as cdk synth loads it): app-prod is unknown to moto.
    const example = await run(['--config', path.join(__dirname, '..', '..', 'cofre.config.ts')]);
    expect(example.code).toBe(1);
    expect(example.stdout).toMatch(
      /app-prod {2}NOT OK {2}\(arn:aws:rds:sa-east-1:111111111111:db:app-prod\)/,
    );
    expect(example.stdout).toMatch(/ERROR {3}RDS DescribeDBInstances: .*app-prod/);
  });
});

describe('cofre rds status: bad usage is exit 2, nothing read', () => {
  it('a config without RDS databases, an invalid one, a missing file, no --history-table: exit 2', async () => {
    const dir = tempDir('rds-usage');
    const noRds = path.join(dir, 'no-rds.json');
    writeFileSync(
      noRds,
      JSON.stringify(
        exampleConfig((c) => ({ ...c, databases: c.databases!.filter((d) => d.host !== undefined) })),
      ),
    );
    const none = await cofre(['rds', 'status', '--history-table', 't', '--config', noRds]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/names no RDS instance or Aurora cluster/);
    const invalid = path.join(dir, 'invalid.json');
    writeFileSync(
      invalid,
      JSON.stringify(
        exampleConfig((c) => {
          delete c.databases![0]!.snapshotRestoreTest;
          return c;
        }),
      ),
    );
    const bad = await cofre(['rds', 'status', '--history-table', 't', '--config', invalid]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/databases\[0\]\.snapshotRestoreTest: is required with rdsInstanceId/);
    const missing = await cofre([
      'rds',
      'status',
      '--history-table',
      't',
      '--config',
      path.join(dir, 'nope.ts'),
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--config: cannot load .*nope\.ts/);
    expect((await cofre(['rds', 'status'])).code).toBe(2);
  });
});
