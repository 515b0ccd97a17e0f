/**
 * The `point-in-time` kind of the console restore, run locally end to end: the state machine
 * (aws-local-stepfunctions) with the restore-validate and restore-rds steps against moto's RDS
 * (RestoreDBInstanceToPointInTime, RestoreDBClusterToPointInTime + CreateDBInstance, Describe*), the
 * Wait/poll loop until the new resource is available or the timeout passes, and the post-restore
 * check of the Fargate task connecting and counting rows.
 *
 * The one stand-in: moto's RDS has no database engine behind the endpoints it returns, so the
 * post-check is pointed at the real PostgreSQL database whose backups are in the vault (what a
 * restore of it to "now" holds); everything else is what runs in AWS.
 */
import { rmSync } from 'node:fs';
import {
  CreateDBClusterCommand,
  CreateDBInstanceCommand,
  CopyDBSnapshotCommand,
  CreateDBParameterGroupCommand,
  CreateDBSnapshotCommand,
  CreateDBSubnetGroupCommand,
  DeleteDBInstanceCommand,
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  ListTagsForResourceCommand,
  RDSClient,
  StartDBInstanceCommand,
  StopDBInstanceCommand,
} from '@aws-sdk/client-rds';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildKeys } from '../../../core/vault/crypto';
import { loadDemoData } from '../../../core/local/demo-data';
import { jobDatabaseSchema } from '../../../core/aws/job';
import { runLocalJob, type LocalPipelineOptions } from '../../../core/local/state-machine-runner';
import { parseDatabaseUrl } from '../../../core/sources/connection';
import { formatAlert } from '../../../core/alerts/message';
import {
  createPostgresDatabase,
  postgresAvailable,
  rowCounts,
  type TestDatabase,
} from '../../helpers/databases';
import { testKeys } from '../../helpers/engine';
import { ACCOUNT, clientConfig, describeLocalAws, REGION, uniqueName } from '../../helpers/local-aws';

const DR_REGION = 'us-east-1';
import { localJobInput, localPipeline } from '../../helpers/orchestration';

describeLocalAws('restore state machine: point-in-time (moto RDS, Wait/poll loop, post-check)', () => {
  let rds: RDSClient;
  let db: TestDatabase;
  const dirs: string[] = [];
  let options: LocalPipelineOptions;
  let instance: string;
  let cluster: string;
  let parameterGroup: string;
  let gone: string;
  let pgMissing: string | undefined;

  const config = (id: string, source: { rdsInstanceId?: string; rdsClusterId?: string }) => {
    const base = localJobInput(db.url, { id });
    const { host: _host, port: _port, ...rest } = base.database;
    return {
      database: jobDatabaseSchema.parse({ ...rest, ...source }),
      taskDefinitionArn: `arn:aws:ecs:us-east-1:000000000000:task-definition/cofre-${id}:1`,
    };
  };

  beforeAll(async () => {
    pgMissing = await postgresAvailable();
    if (pgMissing && process.env.CI === 'true') throw new Error(pgMissing);
    if (pgMissing) return;
    rds = new RDSClient(clientConfig());
    instance = uniqueName('pitr');
    cluster = uniqueName('pitrc');
    parameterGroup = uniqueName('pg16');
    await rds.send(
      new CreateDBParameterGroupCommand({
        DBParameterGroupName: parameterGroup,
        DBParameterGroupFamily: 'postgres16',
        Description: 'cofre test',
      }),
    );
    await rds.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: instance,
        Engine: 'postgres',
        DBInstanceClass: 'db.r6g.large',
        AllocatedStorage: 20,
        MasterUsername: 'cofre',
        MasterUserPassword: 'not-a-real-password-1',
        BackupRetentionPeriod: 7,
        MultiAZ: true,
        DBParameterGroupName: parameterGroup,
      }),
    );
    await rds.send(
      new CreateDBClusterCommand({
        DBClusterIdentifier: cluster,
        Engine: 'aurora-postgresql',
        MasterUsername: 'cofre',
        MasterUserPassword: 'not-a-real-password-1',
        BackupRetentionPeriod: 7,
      }),
    );
    await rds.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: `${cluster}-w`,
        DBClusterIdentifier: cluster,
        Engine: 'aurora-postgresql',
        DBInstanceClass: 'db.r6g.xlarge',
      }),
    );
    gone = uniqueName('gone');
    await rds.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: gone,
        Engine: 'postgres',
        DBInstanceClass: 'db.t3.micro',
        AllocatedStorage: 20,
        MasterUsername: 'cofre',
        MasterUserPassword: 'not-a-real-password-1',
        BackupRetentionPeriod: 7,
      }),
    );
    db = await createPostgresDatabase('pitr');
    await loadDemoData(parseDatabaseUrl('postgres', db.url), { patientsPerTenant: 5 });
    const k = await testKeys();
    const setup = localPipeline(
      db.url,
      { keys: k.keys, decryptKeys: await buildKeys({ keyFile: k.keyFile }, 'decrypt') },
      dirs,
    );
    options = {
      ...setup.options,
      rds,
      rdsIn: (region) => new RDSClient({ ...clientConfig(), region }),
      aws: { account: ACCOUNT, primaryRegion: REGION, drRegion: DR_REGION },
      waitSeconds: 0,
      restoreDatabases: [
        config('app-rds', { rdsInstanceId: instance }),
        config('app-aurora', { rdsClusterId: cluster }),
        config('demo', {}),
        config('app-gone', { rdsInstanceId: gone }),
      ].map((c, i) =>
        i === 2 ? { ...c, database: jobDatabaseSchema.parse(localJobInput(db.url).database) } : c,
      ),
    };
    // The backups the post-check compares with, under each RDS database's id.
    for (const id of ['app-rds', 'app-aurora', 'app-gone']) {
      const backup = await runLocalJob('backup-database', localJobInput(db.url, { id }), options);
      expect(backup.status, `${backup.error}: ${backup.cause}`).toBe('succeeded');
    }
  }, 120_000);

  afterAll(async () => {
    await (db as TestDatabase | undefined)?.drop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const skip = () => {
    if (pgMissing) console.warn(`[restore-rds] skipping: ${pgMissing}`);
    return pgMissing !== undefined;
  };

  /** The post-check connects to the new endpoint: moto has no engine behind it, so it is the backed-up PostgreSQL. */
  const postCheckOnLocalPostgres: LocalPipelineOptions['around'] = async (state, input, next) => {
    if (state === 'RdsPostRestoreCheck') {
      const env = (
        input as { Overrides: { ContainerOverrides: { Environment: { Name: string; Value: string }[] }[] } }
      ).Overrides.ContainerOverrides[0]!.Environment;
      const entry = env.find((e) => e.Name === 'COFRE_JOB')!;
      const job = JSON.parse(entry.Value) as { restore: { endpoint?: { host: string; port: number } } };
      expect(job.restore.endpoint?.host).toMatch(/rds\.amazonaws\.com$/);
      const u = new URL(db.url);
      job.restore.endpoint = { host: u.hostname, port: Number(u.port || 5432) };
      entry.Value = JSON.stringify(job);
    }
    return next();
  };

  it("instance: restored at a time in the window into a new instance with the source's settings, tagged, waited for, checked, recorded", async () => {
    if (skip()) return;
    // After the backups (the post-check compares with the one nearest before it), before now.
    const time = new Date(Date.now() - 10).toISOString();
    const target = uniqueName('pitr-new');
    const run = await runLocalJob(
      'restore',
      { kind: 'point-in-time', database: 'app-rds', time, targetIdentifier: target },
      { ...options, around: postCheckOnLocalPostgres },
    );
    expect(run.status, `${run.error}: ${run.cause}`).toBe('succeeded');
    const made = (await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: target })))
      .DBInstances![0]!;
    expect(made).toMatchObject({
      DBInstanceStatus: 'available',
      DBInstanceClass: 'db.r6g.large',
      MultiAZ: true,
    });
    expect(made.DBParameterGroups?.[0]?.DBParameterGroupName).toBe(parameterGroup);
    const tags = await rds.send(new ListTagsForResourceCommand({ ResourceName: made.DBInstanceArn! }));
    expect(tags.TagList).toContainEqual({ Key: 'cofre:restore', Value: run.executionArn.split(':').at(-1) });
    // The source is as it was.
    const source = (await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: instance })))
      .DBInstances![0]!;
    expect(source.DBInstanceStatus).toBe('available');
    // The post-check counted the rows of every table of the nearest backup.
    const counts = await rowCounts('postgres', db.url);
    expect(run.output?.check, JSON.stringify(run.output?.check)).toMatchObject({
      targetDatabase: target,
      tablesCompared: Object.keys(counts).length,
      rowsCompared: Object.values(counts).reduce((a, b) => a + b, 0),
    });
    const record = await options.history.latest('app-rds', 'restore');
    expect(record).toMatchObject({ status: 'succeeded', kind: 'restore' });
    expect(record!.message).toContain(`restored to ${time} into the new instance ${target}`);
    // Where it is, and how long RDS took, from the last status of the poll loop.
    expect(record!.message).toMatch(/: available at \S+\.rds\.amazonaws\.com:\d+ after [\d.]+ s; RTO /);
    const body = formatAlert(run.notifications[0]!, { region: 'local' }).body;
    expect(body).toContain(`The new instance ${target} is available`);
  });

  it('Aurora: a new cluster and its first instance, with the class asked for, waited for until both are available', async () => {
    if (skip()) return;
    const target = uniqueName('pitrc-new');
    const run = await runLocalJob(
      'restore',
      {
        kind: 'point-in-time',
        database: 'app-aurora',
        time: 'latest',
        targetIdentifier: target,
        instanceClass: 'db.r6g.large',
      },
      { ...options, around: postCheckOnLocalPostgres },
    );
    expect(run.status, `${run.error}: ${run.cause}`).toBe('succeeded');
    expect(run.events.some((e) => e.type === 'StateEntered' && e.state === 'RdsStatus')).toBe(true);
    const made = (await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: target })))
      .DBClusters![0]!;
    expect(made.Status).toBe('available');
    const first = (
      await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: `${target}-instance-1` }))
    ).DBInstances![0]!;
    expect(first).toMatchObject({ DBClusterIdentifier: target, DBInstanceClass: 'db.r6g.large' });
  });

  it('the Wait/poll loop goes round while the new instance is not available, and goes on once it is', async () => {
    if (skip()) return;
    // moto makes an instance available at once: it is stopped before the first look and started
    // before the third, so the loop sees stopped, stopped, available.
    const target = uniqueName('pitr-loop');
    let looks = 0;
    const seen: string[] = [];
    const run = await runLocalJob(
      'restore',
      { kind: 'point-in-time', database: 'app-rds', time: 'latest', targetIdentifier: target },
      {
        ...options,
        around: async (state, input, next) => {
          if (state === 'RdsStatus') {
            looks++;
            if (looks === 1) await rds.send(new StopDBInstanceCommand({ DBInstanceIdentifier: target }));
            if (looks === 3) await rds.send(new StartDBInstanceCommand({ DBInstanceIdentifier: target }));
            const out = (await next()) as { Payload: { status: string } };
            seen.push(out.Payload.status);
            return out;
          }
          return postCheckOnLocalPostgres(state, input, next);
        },
      },
    );
    expect(run.status, `${run.error}: ${run.cause}`).toBe('succeeded');
    expect(seen).toEqual(['stopped', 'stopped', 'available']);
    expect(run.events.filter((e) => e.type === 'StateEntered' && e.state === 'WaitForRds').length).toBe(3);
  });

  it('times out when the new instance does not become available: failed, recorded, notified, the source untouched', async () => {
    if (skip()) return;
    const target = uniqueName('pitr-slow');
    let clock = Date.now();
    const run = await runLocalJob(
      'restore',
      {
        kind: 'point-in-time',
        database: 'app-rds',
        time: 'latest',
        targetIdentifier: target,
        timeoutMinutes: 5,
      },
      {
        ...options,
        // Four minutes pass between two looks at it.
        now: () => new Date((clock += 4 * 60_000)),
        around: async (state, input, next) => {
          // The new instance is stopped as soon as it exists: it never becomes available.
          if (state === 'WaitForRds' || state === 'RdsStatus') {
            const i = (await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: target })))
              .DBInstances![0]!;
            if (i.DBInstanceStatus === 'available')
              await rds.send(new StopDBInstanceCommand({ DBInstanceIdentifier: target }));
          }
          return next();
        },
      },
    );
    expect(run.status).toBe('failed');
    expect(run.error).toBe('Cofre.RestoreTimedOut');
    expect(run.cause).toMatch(
      new RegExp(
        `^restore of app-rds into ${target} failed: Cofre.RestoreTimedOut: the new ${target} is not available after \\d+ s \\(status stopped\\); the source was not touched$`,
      ),
    );
    expect(run.notifications[0]).toMatchObject({ outcome: 'failed', error: 'Cofre.RestoreTimedOut' });
    expect(formatAlert(run.notifications[0]!, { region: 'local' }).body).toContain('larger "timeoutMinutes"');
  });

  it('rejects, before anything is created, a future time, a time outside the window, a target that exists, a database without RDS, bad identifiers', async () => {
    if (skip()) return;
    const now = new Date();
    const future = new Date(now.getTime() + 3600_000).toISOString();
    const reject = async (input: unknown, lines: (string | RegExp)[]) => {
      const before = (await rds.send(new DescribeDBInstancesCommand({}))).DBInstances!.length;
      const run = await runLocalJob('restore', input, options);
      expect(run.status).toBe('failed');
      expect(run.error).toBe('Cofre.BadInput');
      const [head, ...got] = run.cause!.split('\n');
      expect(head).toBe(
        `restore input rejected, nothing was changed (${lines.length} problem${lines.length === 1 ? '' : 's'}):`,
      );
      lines.forEach((l, i) => {
        if (typeof l === 'string') expect(got[i]).toBe(l);
        else expect(got[i]).toMatch(l);
      });
      expect((await rds.send(new DescribeDBInstancesCommand({}))).DBInstances!.length).toBe(before);
    };
    await reject({ kind: 'point-in-time', database: 'app-rds', time: future }, [
      new RegExp(
        `^time: expected a time that has passed \\(now is .+\\), got ${future.replace(/[.]/g, '\\.')}$`,
      ),
    ]);
    await reject({ kind: 'point-in-time', database: 'app-rds', time: '2020-01-01T00:00:00Z' }, [
      new RegExp(
        `^time: expected a time within the restorable window of ${instance} \\(.+ – .+\\), got 2020-01-01T00:00:00Z$`,
      ),
    ]);
    await reject({ kind: 'point-in-time', database: 'app-rds', time: 'latest', targetIdentifier: instance }, [
      `targetIdentifier: expected the identifier of a new instance, got "${instance}", which already exists (a point-in-time restore never replaces anything)`,
    ]);
    await reject({ kind: 'point-in-time', database: 'demo', time: 'latest' }, [
      'database: expected a database with rdsInstanceId or rdsClusterId for a point-in-time restore, got demo, which has neither (a self-managed server: restore a logical backup with kind "database")',
    ]);
    await reject(
      {
        kind: 'point-in-time',
        database: 'app-rds',
        time: 'yesterday',
        targetIdentifier: 'bad--name',
        instanceClass: 'huge',
      },
      [
        'time: expected "latest" or an ISO-8601 time with its offset, like "2026-01-02T03:04:00Z" or "2026-01-02T00:04:00-03:00", got "yesterday"',
        'targetIdentifier: expected a new RDS identifier (a letter, then letters, digits and single hyphens, at most 63, not ending in a hyphen), got "bad--name"',
        'instanceClass: expected an instance class like "db.r6g.large", got "huge"',
      ],
    );
  });
  it('snapshot: an AWS Backup recovery point of the primary region into a new instance with the source settings, tagged, checked', async () => {
    if (skip()) return;
    const snapshot = uniqueName('rp');
    const made = await rds.send(
      new CreateDBSnapshotCommand({ DBInstanceIdentifier: instance, DBSnapshotIdentifier: snapshot }),
    );
    const target = uniqueName('snap-new');
    const run = await runLocalJob(
      'restore',
      {
        kind: 'snapshot',
        database: 'app-rds',
        recoveryPointArn: made.DBSnapshot!.DBSnapshotArn,
        targetIdentifier: target,
      },
      { ...options, around: postCheckOnLocalPostgres },
    );
    expect(run.status, `${run.error}: ${run.cause}`).toBe('succeeded');
    const copy = (await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: target })))
      .DBInstances![0]!;
    expect(copy).toMatchObject({
      DBInstanceStatus: 'available',
      DBInstanceClass: 'db.r6g.large',
      MultiAZ: true,
    });
    expect(copy.DBParameterGroups?.[0]?.DBParameterGroupName).toBe(parameterGroup);
    const tags = await rds.send(new ListTagsForResourceCommand({ ResourceName: copy.DBInstanceArn! }));
    expect(tags.TagList).toContainEqual({ Key: 'cofre:restore', Value: run.executionArn.split(':').at(-1) });
    expect(run.output?.check).toMatchObject({ targetDatabase: target });
  });

  it('snapshot: a copy in the DR region is restored there, into the network given for it', async () => {
    if (skip()) return;
    const snapshot = uniqueName('rp-src');
    const made = await rds.send(
      new CreateDBSnapshotCommand({ DBInstanceIdentifier: instance, DBSnapshotIdentifier: snapshot }),
    );
    const dr = new RDSClient({ ...clientConfig(), region: DR_REGION });
    const copied = await dr.send(
      new CopyDBSnapshotCommand({
        SourceDBSnapshotIdentifier: made.DBSnapshot!.DBSnapshotArn,
        TargetDBSnapshotIdentifier: uniqueName('rp-dr'),
      }),
    );
    // A VPC and two subnets in the DR region for the subnet group (the EC2 query API, as moto
    // serves it: @aws-sdk/client-ec2 is not a dependency of this project).
    const ec2 = async (params: Record<string, string>) => {
      const response = await fetch(clientConfig().endpoint, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `AWS4-HMAC-SHA256 Credential=test/20260101/${DR_REGION}/ec2/aws4_request, SignedHeaders=host, Signature=0`,
        },
        body: new URLSearchParams({ Version: '2016-11-15', ...params }).toString(),
      });
      return response.text();
    };
    const vpcId = /<vpcId>(vpc-[0-9a-f]+)<\/vpcId>/.exec(
      await ec2({ Action: 'CreateVpc', CidrBlock: '10.9.0.0/16' }),
    )![1]!;
    const subnetIds: string[] = [];
    for (const [i, cidr] of ['10.9.1.0/24', '10.9.2.0/24'].entries())
      subnetIds.push(
        /<subnetId>(subnet-[0-9a-f]+)<\/subnetId>/.exec(
          await ec2({
            Action: 'CreateSubnet',
            VpcId: vpcId,
            CidrBlock: cidr,
            AvailabilityZone: `${DR_REGION}${'ab'[i]}`,
          }),
        )![1]!,
      );
    const subnetGroup = uniqueName('dr-db');
    await dr.send(
      new CreateDBSubnetGroupCommand({
        DBSubnetGroupName: subnetGroup,
        DBSubnetGroupDescription: 'cofre DR test',
        SubnetIds: subnetIds,
      }),
    );
    // moto restores a snapshot from its source instance's record in the same region (AWS needs no
    // source there): an instance of the same name in the DR region stands for that record.
    await dr.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: instance,
        Engine: 'postgres',
        DBInstanceClass: 'db.r6g.large',
        AllocatedStorage: 20,
        MasterUsername: 'cofre',
        MasterUserPassword: 'not-a-real-password-1',
      }),
    );
    const arn = copied.DBSnapshot!.DBSnapshotArn!;
    expect(arn).toContain(`:rds:${DR_REGION}:`);
    // Without the DR network: rejected, nothing made.
    const rejected = await runLocalJob(
      'restore',
      { kind: 'snapshot', database: 'app-rds', recoveryPointArn: arn },
      options,
    );
    expect(rejected.error).toBe('Cofre.BadInput');
    expect(rejected.cause).toBe(
      `restore input rejected, nothing was changed (1 problem):\nsubnetGroup / securityGroupIds: expected the DB subnet group and security groups of the new instance in ${DR_REGION} (the source's exist only in ${REGION})`,
    );
    const target = uniqueName('dr-new');
    const run = await runLocalJob(
      'restore',
      {
        kind: 'snapshot',
        database: 'app-rds',
        recoveryPointArn: arn,
        targetIdentifier: target,
        subnetGroup,
        securityGroupIds: ['sg-0123456789abcdef0'],
      },
      { ...options, around: postCheckOnLocalPostgres },
    );
    expect(run.status, `${run.error}: ${run.cause}`).toBe('succeeded');
    const copy = (await dr.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: target })))
      .DBInstances![0]!;
    expect(copy.DBSubnetGroup?.DBSubnetGroupName).toBe(subnetGroup);
    expect(copy.DBInstanceArn).toContain(`:rds:${DR_REGION}:`);
    // Nothing was made in the primary region.
    await expect(
      rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: target })),
    ).rejects.toMatchObject({
      name: 'DBInstanceNotFoundFault',
    });
  });

  it('snapshot: rejects a recovery point in another account, another region, of another database, or that does not exist', async () => {
    if (skip()) return;
    const other = uniqueName('other-src');
    await rds.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: other,
        Engine: 'postgres',
        DBInstanceClass: 'db.t3.micro',
        AllocatedStorage: 20,
        MasterUsername: 'cofre',
        MasterUserPassword: 'not-a-real-password-1',
      }),
    );
    const otherSnapshot = (
      await rds.send(
        new CreateDBSnapshotCommand({
          DBInstanceIdentifier: other,
          DBSnapshotIdentifier: uniqueName('rp-other'),
        }),
      )
    ).DBSnapshot!.DBSnapshotArn!;
    const cases: [string, string][] = [
      [
        'arn:aws:rds:sa-east-1:999999999999:snapshot:awsbackup:job-0a1b2c3d',
        `recoveryPointArn: expected a recovery point in this account (${ACCOUNT}), got one in 999999999999: a restore never reads from or creates anything in another account`,
      ],
      [
        `arn:aws:rds:eu-west-1:${ACCOUNT}:snapshot:awsbackup:job-0a1b2c3d`,
        `recoveryPointArn: expected a recovery point in the primary (${REGION}) or DR (${DR_REGION}) region, got one in eu-west-1`,
      ],
      [
        otherSnapshot,
        `recoveryPointArn: expected a recovery point of ${instance} (app-rds), got one of ${other}`,
      ],
      [
        `arn:aws:rds:${REGION}:${ACCOUNT}:snapshot:awsbackup:job-deadbeef`,
        `recoveryPointArn: expected an existing recovery point, got arn:aws:rds:${REGION}:${ACCOUNT}:snapshot:awsbackup:job-deadbeef, which does not exist`,
      ],
      [
        'rp-123',
        'recoveryPointArn: expected the ARN of an RDS recovery point (AWS Backup > Backup vaults > the recovery point: arn:aws:rds:<region>:<account>:snapshot:awsbackup:job-…), got "rp-123"',
      ],
    ];
    for (const [arn, line] of cases) {
      const before = (await rds.send(new DescribeDBInstancesCommand({}))).DBInstances!.length;
      const run = await runLocalJob(
        'restore',
        { kind: 'snapshot', database: 'app-rds', recoveryPointArn: arn },
        options,
      );
      expect(run.error, arn).toBe('Cofre.BadInput');
      expect(run.cause).toBe(`restore input rejected, nothing was changed (1 problem):\n${line}`);
      expect((await rds.send(new DescribeDBInstancesCommand({}))).DBInstances!.length).toBe(before);
    }
  });
  it('snapshot: the recovery point of an instance that is gone (deleted, the ransomware case) is restored; a point in time of it is refused', async () => {
    if (skip()) return;
    const made = await rds.send(
      new CreateDBSnapshotCommand({
        DBInstanceIdentifier: gone,
        DBSnapshotIdentifier: uniqueName('rp-gone'),
      }),
    );
    await rds.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: gone, SkipFinalSnapshot: true }));
    const pitr = await runLocalJob(
      'restore',
      { kind: 'point-in-time', database: 'app-gone', time: 'latest' },
      options,
    );
    expect(pitr.cause).toBe(
      `restore input rejected, nothing was changed (1 problem):\ndatabase: expected the RDS instance ${gone} of app-gone to exist, it does not`,
    );
    const target = uniqueName('from-gone');
    const run = await runLocalJob(
      'restore',
      {
        kind: 'snapshot',
        database: 'app-gone',
        recoveryPointArn: made.DBSnapshot!.DBSnapshotArn,
        targetIdentifier: target,
      },
      { ...options, around: postCheckOnLocalPostgres },
    );
    expect(run.status, `${run.error}: ${run.cause}`).toBe('succeeded');
    const copy = (await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: target })))
      .DBInstances![0]!;
    expect(copy.DBInstanceStatus).toBe('available');
  });
});
