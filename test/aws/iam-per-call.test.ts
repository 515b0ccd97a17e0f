/**
 * IAM proven per call. Every runtime path runs against the local AWS (moto) and real PostgreSQL,
 * the state machines through the same ASL files as in AWS (aws-local-stepfunctions), each Task state
 * calling the real Lambda handler (`lambdas/*`) or the real dump-task entry (`tasks/dump-runner`),
 * and every AWS call goes through a middleware (test/helpers/iam-check.ts) that evaluates the IAM
 * requests AWS would authorize against the synthesized policies of the role that runs that code in
 * AWS, plus the bucket, key and topic policies: a denied request fails the call as AccessDenied.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DisableKeyCommand, KMS, KMSClient, ScheduleKeyDeletionCommand } from '@aws-sdk/client-kms';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  S3Client,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SNSClient } from '@aws-sdk/client-sns';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { SNSEvent } from 'aws-lambda';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { parseDatabaseUrl } from '../../core/sources/connection';
import { buildKeys, type Keys } from '../../core/vault/crypto';
import { DynamoHistoryStore, FileHistoryStore } from '../../core/history/store';
import { DEMO_TENANT_MODEL, loadDemoData } from '../../core/local/demo-data';
import { NamedError } from '../../core/aws/task-errors';
import type { JobName } from '../../core/aws/job';
import { runLocalJob, STATE_MACHINES_DIR, type LocalExecution } from '../../core/local/state-machine-runner';
import { openVault, S3Vault } from '../../core/vault';
import { rdsLatestRestorableTime } from '../../core/alerts/freshness';
import {
  CreateDBInstanceCommand,
  CreateDBSnapshotCommand,
  DeleteDBInstanceCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { BackupClient } from '@aws-sdk/client-backup';
import type { Context } from 'aws-lambda';
import { lambdaContext } from '../helpers/lambda-context';
import { createFreshnessHandler } from '../../lambdas/freshness';
import { createMonthlyReportHandler } from '../../lambdas/monthly-report';
import { createNotifyHandler } from '../../lambdas/notify';
import { createPagerDutyHandler } from '../../lambdas/pagerduty';
import { createBackupEventsHandler } from '../../lambdas/backup-events';
import { createConfigSnapshotHandler } from '../../lambdas/config-snapshot';
import { createRestoreValidationHandler } from '../../lambdas/restore-validation';
import { createFilesRestoreValidationHandler } from '../../lambdas/files-restore-validation';
import { createRestoreStoppedHandler } from '../../lambdas/restore-stopped';
import { runDumpRunner } from '../../tasks/dump-runner/main';
import { sourceClientOf } from '../../core/files/task';
import { cofre, tempDir } from '../helpers/cli';
import {
  createPostgresDatabase,
  PG_ADMIN_URL,
  postgresAvailable,
  withPostgresClient,
  type TestDatabase,
} from '../helpers/databases';
import { IamChecker, type IamRequest } from '../helpers/iam-check';
import {
  synthesizeIam,
  type LocalResources,
  type RuntimeRoleName,
  type SynthesizedIam,
} from '../helpers/iam';
import { localJobInput } from '../helpers/orchestration';
import {
  clientConfig,
  createHistoryTable,
  createIdempotencyTable,
  createKmsKey,
  createSecret,
  createTopicWithQueue,
  createVaultBucket,
  describeLocalAws,
  REGION,
  uniqueName,
  localAws,
  localAwsEnv,
  ssmClient,
  uniqueParameterPath,
  type LocalAws,
  type TopicWithQueue,
} from '../helpers/local-aws';
import { withEnv } from '../helpers/env';

const DATABASE = 'app-prod';
const TASK_ROLE: RuntimeRoleName = `task:${DATABASE}`;
const OTHER_DATABASE = 'ledger-prod';
const silent = new Logger({ serviceName: 'cofre-iam-test', logLevel: 'SILENT' });

describeLocalAws('IAM per call: every runtime path against the synthesized policies', () => {
  let aws: LocalAws;
  let db: TestDatabase;
  let iam: SynthesizedIam;
  let checker: IamChecker;
  let topic: TopicWithQueue;
  let resources: LocalResources;
  let pagerDuty: Server;
  const pagerDutyBodies: unknown[] = [];
  const executions: Partial<Record<JobName, LocalExecution>> = {};
  let pgMissing: string | undefined;
  let filesSourceBucket: string;
  let awsBucket: string;
  /** Setup clients made before the checker exists (exempted once it does). */
  const checker0Exempt: SSMClient[] = [];

  beforeAll(async () => {
    pgMissing = await postgresAvailable();
    if (pgMissing && process.env.CI === 'true') throw new Error(pgMissing);
    aws = localAws();
    const started = Date.now();
    // The database (when PostgreSQL runs) and the moto resources, made at the same time.
    const database = pgMissing
      ? Promise.resolve(undefined)
      : createPostgresDatabase('iam').then(async (created) => {
          db = created;
          await loadDemoData(parseDatabaseUrl('postgres', created.url), { patientsPerTenant: 5 });
          const u = new URL(created.url);
          return createSecret(
            aws.secrets,
            {
              username: u.username || 'postgres',
              password: decodeURIComponent(u.password),
              host: u.hostname,
              port: Number(u.port || 5432),
            },
            'app-prod',
          );
        });
    const [
      appSecret,
      alerts,
      vaultBucket,
      drVaultBucket,
      historyTable,
      keys,
      ledgerSecret,
      pagerDutySecretArn,
      idempotencyTable,
    ] = await Promise.all([
      database,
      createTopicWithQueue(aws.sns, aws.sqs, 'iam-alerts'),
      createVaultBucket(aws.s3),
      createVaultBucket(aws.s3),
      createHistoryTable(aws.dynamodb),
      Promise.all(
        ['vault', 'dr vault', 'history', 'alerts', 'pipeline'].map((d) => createKmsKey(aws.kms, d)),
      ),
      createSecret(aws.secrets, { username: 'x', password: 'y' }, 'ledger'),
      createSecret(aws.secrets, { routingKey: 'ROUTING-KEY-FROM-MOTO' }, 'pd'),
      createIdempotencyTable(aws.dynamodb),
    ]);
    topic = alerts;
    // A restore target of app-prod (databases[].restoreTargets): the same local server, its own secret.
    const u = pgMissing ? undefined : new URL(db.url);
    const targetSecretArn = await createSecret(
      aws.secrets,
      u
        ? {
            username: u.username || 'postgres',
            password: decodeURIComponent(u.password),
            host: u.hostname,
            port: Number(u.port || 5432),
          }
        : { username: 'x', password: 'y' },
      'restore-target',
    );
    // What the configuration snapshots protect: one secret and one parameter path.
    const configSecretArn = await createSecret(aws.secrets, { apiKey: 'config-value' }, 'config');
    // The example's S3-compatible bucket: a second moto bucket stands for the store, reached with the
    // access key of its own secret.
    filesSourceBucket = uniqueName('minio');
    await aws.s3.send(
      new CreateBucketCommand({
        Bucket: filesSourceBucket,
        CreateBucketConfiguration: { LocationConstraint: REGION },
      }),
    );
    const filesSecretArn = await createSecret(
      aws.secrets,
      {
        accessKeyId: clientConfig().credentials.accessKeyId,
        secretAccessKey: clientConfig().credentials.secretAccessKey,
      },
      'minio',
    );
    // The example's AWS S3 bucket (AWS Backup; its weekly restore test reads it): a versioned moto bucket.
    awsBucket = uniqueName('appdocs');
    await aws.s3.send(
      new CreateBucketCommand({
        Bucket: awsBucket,
        CreateBucketConfiguration: { LocationConstraint: REGION },
      }),
    );
    await aws.s3.send(
      new PutBucketVersioningCommand({ Bucket: awsBucket, VersioningConfiguration: { Status: 'Enabled' } }),
    );
    const configParameterPath = uniqueParameterPath('iam-config');
    const ssm = ssmClient();
    checker0Exempt.push(ssm);
    for (const [name, value] of [
      ['feature-flags', 'on'],
      ['db/pool-size', '20'],
    ])
      await ssm.send(
        new PutParameterCommand({ Name: `${configParameterPath}/${name}`, Value: value, Type: 'String' }),
      );
    const [vaultKeyArn, drVaultKeyArn, historyKeyArn, alertsKeyArn, pipelineKeyArn] = keys as [
      string,
      string,
      string,
      string,
      string,
    ];
    resources = {
      vaultBucket,
      vaultKeyArn,
      drVaultBucket,
      drVaultKeyArn,
      historyTable,
      historyKeyArn,
      idempotencyTable,
      alertsTopicArn: topic.topicArn,
      alertsKeyArn,
      pipelineKeyArn,
      databaseSecretArns: {
        [DATABASE]:
          appSecret ?? (await createSecret(aws.secrets, { username: 'x', password: 'y' }, 'app-prod')),
        [OTHER_DATABASE]: ledgerSecret,
      },
      pagerDutySecretArn,
      configSecretArn,
      configParameterPath,
      restoreTargets: { [DATABASE]: [{ name: 'staging', credentialsSecretArn: targetSecretArn }] },
      filesSources: { 'clinic-attachments': { bucket: filesSourceBucket, secretArn: filesSecretArn } },
      awsBuckets: { 'app-prod-documents': awsBucket },
    };
    const made = Date.now();
    iam = synthesizeIam(resources);
    const synthesized = Date.now();
    checker = new IamChecker(iam, 'enforce');
    for (const client of Object.values(aws)) checker.exempt(client);
    for (const client of checker0Exempt) checker.exempt(client);
    checker.interceptAll();
    for (const [name, value] of Object.entries(localAwsEnv()))
      if (name.startsWith('AWS_')) vi.stubEnv(name, value);
    vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'SILENT');
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'true');
    pagerDuty = createServer((req, res) => {
      let data = '';
      req.on('data', (c: Buffer) => (data += c.toString()));
      req.on('end', () => {
        pagerDutyBodies.push(JSON.parse(data));
        res.writeHead(202).end('{"status":"success"}');
      });
    });
    await new Promise<void>((r) => pagerDuty.listen(0, '127.0.0.1', r));
    console.log(
      `[iam] setup: moto resources and database ${made - started} ms, synth ${synthesized - made} ms`,
    );
  }, 120_000);

  afterAll(async () => {
    // Each may be missing when the setup failed half-way.
    (checker as IamChecker | undefined)?.dispose();
    vi.unstubAllEnvs();
    await (db as TestDatabase | undefined)?.drop();
    const server = pagerDuty as Server | undefined;
    if (server) await new Promise((r) => server.close(r));
  });

  /** Each role's environment exactly as CDK sets it, plus what AWS sets (region, credentials, endpoint). */
  function stubEnvOf(role: RuntimeRoleName): void {
    for (const [name, value] of Object.entries(iam.environments.get(role)!)) vi.stubEnv(name, value);
  }

  const handlers = new Map<string, (event: unknown) => Promise<unknown>>();
  async function lambdaHandler(name: RuntimeRoleName): Promise<(event: unknown) => Promise<unknown>> {
    const known = handlers.get(name);
    if (known) return known;
    stubEnvOf(name);
    const mod = (await import(`../../lambdas/${name}/index`)) as {
      handler: (event: unknown, context: Context) => Promise<unknown>;
    };
    const handler = (event: unknown) => mod.handler(event, lambdaContext(name));
    handlers.set(name, handler);
    return handler;
  }

  /** The dump task's entry in-process, as ECS would start it (container env from the template + overrides). */
  async function runTask(overrides: Record<string, string>): Promise<unknown> {
    const job = JSON.parse(overrides.COFRE_JOB!) as { database: { id: string } };
    const role: RuntimeRoleName = `task:${job.database.id}`;
    const secret = await aws.secrets.send(
      new (await import('@aws-sdk/client-secrets-manager')).GetSecretValueCommand({
        SecretId: resources.databaseSecretArns[job.database.id],
      }),
    );
    const before = checker.stubbed.length;
    const config = clientConfig();
    const code = await checker.as(role, () =>
      runDumpRunner({
        env: {
          ...localAwsEnv(),
          ...iam.environments.get(role),
          ...overrides,
          COFRE_DB_SECRET: secret.SecretString,
        },
        sfn: checker.attach(new SFNClient(config), role),
        s3: checker.attach(new S3Client({ ...config, forcePathStyle: true }), role),
        kms: () => checker.attach(new KMS(config), role),
        secrets: () => checker.attach(new SecretsManagerClient(config), role),
        log: () => undefined,
        heartbeatIntervalMs: 50,
      }),
    );
    const reports = checker.stubbed.slice(before).filter((s) => s.command !== 'SendTaskHeartbeatCommand');
    const last = reports.at(-1);
    if (!last) throw new Error(`the dump task reported nothing (exit ${code})`);
    if (last.command === 'SendTaskFailureCommand')
      throw new NamedError(String(last.input.error), String(last.input.cause));
    return JSON.parse(String(last.input.output));
  }

  /** Runs a job's state machine (the ASL of AWS) with every Task state on its real entry point and role. */
  async function runJob(job: JobName, consoleInput?: unknown): Promise<LocalExecution> {
    const dir = tempDir('iam');
    const scheduled = {
      ...localJobInput(db.url, { id: DATABASE, tenants: DEMO_TENANT_MODEL }),
      requestedBy: 'iam-per-call test',
    };
    scheduled.database.credentialsSecretArn = resources.databaseSecretArns[DATABASE]!;
    scheduled.taskDefinitionArn = iam.arns.taskDefinitions.get(DATABASE)!;
    const input = consoleInput ?? scheduled;
    const machine: RuntimeRoleName = `sm:${job}`;
    if (readFileSync(path.join(STATE_MACHINES_DIR, `${job}.asl.json`), 'utf8').includes('"DISTRIBUTED"'))
      // A Distributed Map runs its iterations as child executions of the same state machine.
      await checker.checkRequests(machine, 'States.DistributedMap', [
        { action: 'states:StartExecution', resource: iam.arns.stateMachines.get(job)!, context: {} },
      ]);
    const execution = await runLocalJob(job, input, {
      // Never used: every Task state is replaced below by its AWS entry point.
      history: new FileHistoryStore(dir),
      vault: openVault(`file://${dir}/vault`),
      keys: {} as Keys,
      decryptKeys: {} as Keys,
      connect: () => Promise.reject(new Error('the local stand-ins are not used')),
      retryIntervalMs: 0,
      waitSeconds: 0,
      around: async (_state, stateInput) => {
        const i = stateInput as {
          FunctionName?: string;
          Payload?: unknown;
          Overrides?: { ContainerOverrides?: { Environment?: { Name: string; Value: string }[] }[] };
        };
        if (i.FunctionName) {
          const name = i.FunctionName.replace(/^.*:function:cofre-local-/, '') as RuntimeRoleName;
          // The state machine's role invokes the function (lambda:invoke integration).
          await checker.checkRequests(machine, 'States.lambda:invoke', [
            { action: 'lambda:InvokeFunction', resource: iam.arns.functions.get(name)!, context: {} },
          ]);
          if (name === 'notify') {
            const notify = withEnv(
              { ...process.env, ...iam.environments.get('notify'), COFRE_NOTIFY_ON_SUCCESS: 'true' },
              () =>
                createNotifyHandler({
                  sns: new SNSClient({}),
                  logger: silent,
                }),
            );
            const out = await checker.as('notify', () => notify(i.Payload));
            return { StatusCode: 200, Payload: JSON.parse(JSON.stringify(out)) as never };
          }
          const handler = await lambdaHandler(name);
          const out = await checker.as(name, () => handler(i.Payload));
          return { StatusCode: 200, Payload: JSON.parse(JSON.stringify(out ?? null)) as never };
        }
        // ecs:runTask.waitForTaskToken: run the task definition in the cluster, pass its two roles
        // to ECS, and tag the task (PropagateTags); then the task itself runs under its own role.
        const clusterName = iam.arns.cluster.split('/').at(-1)!;
        const passRole = (arn: string): IamRequest => ({
          action: 'iam:PassRole',
          resource: arn,
          context: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' },
        });
        await checker.checkRequests(machine, 'States.ecs:runTask', [
          {
            action: 'ecs:RunTask',
            resource: (stateInput as { TaskDefinition: string }).TaskDefinition,
            context: { 'ecs:cluster': iam.arns.cluster },
          },
          passRole(iam.arns.taskRoles.get(DATABASE)!),
          passRole(iam.arns.executionRoles.get(DATABASE)!),
          {
            action: 'ecs:TagResource',
            resource: `arn:aws:ecs:${iam.region}:${iam.account}:task/${clusterName}/0123456789abcdef0123456789abcdef`,
            context: { 'ecs:CreateAction': 'RunTask' },
          },
        ]);
        const env = Object.fromEntries(
          (i.Overrides?.ContainerOverrides?.[0]?.Environment ?? []).map((e) => [e.Name, e.Value]),
        );
        if (_state === 'RdsPostRestoreCheck') {
          // moto's RDS has no engine behind its endpoints: the check connects to the backed-up database.
          const job = JSON.parse(env.COFRE_JOB!) as {
            restore: { endpoint?: { host: string; port: number } };
          };
          const u = new URL(db.url);
          job.restore.endpoint = { host: u.hostname, port: Number(u.port || 5432) };
          env.COFRE_JOB = JSON.stringify(job);
        }
        return JSON.parse(JSON.stringify(await runTask(env))) as never;
      },
    });
    executions[job] = execution;
    return execution;
  }

  const skipWithoutPostgres = () => {
    if (pgMissing) console.warn(`[iam] skipping: ${pgMissing}`);
    return pgMissing !== undefined;
  };

  it('backup-database: prepare, dump task (backup), verify, record, notify', async () => {
    if (skipWithoutPostgres()) return;
    const run = await runJob('backup-database');
    expect(run.status, `${run.error}: ${run.cause}`).toBe('succeeded');
    const messages = await topic.receive(2);
    expect(messages.some((m) => /backup/i.test(m.subject ?? ''))).toBe(true);
  });

  it('backup-tenants: prepare, list-tenants (secret), dump task (tenant-backup), verify, record, notify', async () => {
    if (skipWithoutPostgres()) return;
    const run = await runJob('backup-tenants');
    expect(run.status, `${run.error}: ${run.cause}`).toBe('succeeded');
  });

  it('verify-integrity: prepare, list-backups, dump task (verify-deep), record, notify', async () => {
    if (skipWithoutPostgres()) return;
    const run = await runJob('verify-integrity');
    expect(run.status, `${run.error}: ${run.cause}`).toBe('succeeded');
  });

  it('restore-test: prepare, dump task (restore-test), record, notify', async () => {
    if (skipWithoutPostgres()) return;
    const run = await runJob('restore-test');
    expect(run.status, `${run.error}: ${run.cause}`).toBe('succeeded');
  });

  it('restore (console): restore-validate, dump task (restore, restore-check), restore-record, notify', async () => {
    if (skipWithoutPostgres()) return;
    const target = `${db.name.slice(0, 40)}_iamrestore`;
    try {
      const run = await runJob('restore', {
        kind: 'database',
        database: DATABASE,
        backup: 'latest',
        sourceDatabase: db.name,
        targetDatabase: target,
        requestedBy: 'iam-per-call test',
      });
      expect(run.status, `${run.error}: ${run.cause}`).toBe('succeeded');
      expect(run.output?.check).toMatchObject({ targetDatabase: target });
    } finally {
      await withPostgresClient(PG_ADMIN_URL, (c) =>
        c.query(`DROP DATABASE IF EXISTS "${target}" WITH (FORCE)`),
      );
    }
  });

  it("restore (console) onto a restore target: the dump task reads the listed target's secret and restores there", async () => {
    if (skipWithoutPostgres()) return;
    const target = `${db.name.slice(0, 40)}_iamtarget`;
    const before = checker.records.length;
    try {
      const run = await runJob('restore', {
        kind: 'database',
        database: DATABASE,
        backup: 'latest',
        sourceDatabase: db.name,
        target: 'staging',
        targetDatabase: target,
        requestedBy: 'iam-per-call test',
      });
      expect(run.status, `${run.error}: ${run.cause}`).toBe('succeeded');
      expect(run.output?.check).toMatchObject({ targetDatabase: target });
      const reads = checker.records
        .slice(before)
        .filter((r) => r.action === 'secretsmanager:GetSecretValue' && r.role === TASK_ROLE);
      // Restore and its check: each reads the target's secret, under the task role.
      expect(reads.map((r) => [r.resource, r.decision])).toEqual([
        [resources.restoreTargets![DATABASE]![0]!.credentialsSecretArn, 'Allowed'],
        [resources.restoreTargets![DATABASE]![0]!.credentialsSecretArn, 'Allowed'],
      ]);
    } finally {
      await withPostgresClient(PG_ADMIN_URL, (c) =>
        c.query(`DROP DATABASE IF EXISTS "${target}" WITH (FORCE)`),
      );
    }
  });

  it('cofre verify (quick) under the verify Lambda role', async () => {
    if (skipWithoutPostgres()) return;
    const listed = await checker.as('verify', () =>
      cofre(['list', '--vault', `s3://${resources.vaultBucket}`, '--json'], localAwsEnv()),
    );
    expect(listed.code, listed.stderr).toBe(0);
    const ids = (JSON.parse(listed.stdout) as { backups: { backupId: string }[] }).backups.map(
      (b) => b.backupId,
    );
    expect(ids.length).toBeGreaterThan(0);
    const verified = await checker.as('verify', () =>
      cofre(
        ['verify', '--vault', `s3://${resources.vaultBucket}`, '--backup', ids[0]!, '--json'],
        localAwsEnv(),
      ),
    );
    expect(verified.code, verified.stderr).toBe(0);
  });

  it('freshness and monthly report read the history; the report is published', async () => {
    if (skipWithoutPostgres()) return;
    const store = new DynamoHistoryStore(
      DynamoDBDocumentClient.from(new DynamoDBClient({})),
      iam.environments.get('freshness')!.COFRE_HISTORY_TABLE!,
    );
    const freshness = withEnv(iam.environments.get('freshness')!, () =>
      createFreshnessHandler({
        store,
        logger: silent,
        metrics: new Metrics({ namespace: 'CofreTest', serviceName: 'iam' }),
        // As the Lambda builds it: the point-in-time lag of the databases AWS Backup protects.
        latestRestorableTime: rdsLatestRestorableTime(new RDSClient({})),
      }),
    );
    const fresh = await checker.as('freshness', () => freshness());
    expect(fresh.findings).toBeGreaterThan(0);
    const report = withEnv(
      { ...iam.environments.get('monthly-report'), AWS_REGION: process.env.AWS_REGION },
      () =>
        createMonthlyReportHandler({
          store: new DynamoHistoryStore(
            DynamoDBDocumentClient.from(new DynamoDBClient({})),
            iam.environments.get('monthly-report')!.COFRE_HISTORY_TABLE!,
          ),
          cloudwatch: new CloudWatchClient({}),
          sns: new SNSClient({}),
          logger: silent,
        }),
    );
    const month = new Date().toISOString().slice(0, 7);
    const out = await checker.as('monthly-report', () => report({ month }));
    expect(out.runs).toBeGreaterThan(0);
  });

  it('restore validation (snapshot restore test): describes the job and the restored instance, reads the secret and the manifests, records, reports and alerts', async () => {
    if (skipWithoutPostgres()) return;
    const env = iam.environments.get('restore-validation')!;
    const rds = new RDSClient({});
    // The temporary instance AWS Backup restores (moto's endpoint answers no connection: a FAILED test).
    const restoredId = `awsbackup-restore-test-${Date.now()}`;
    const setup = new RDSClient(clientConfig());
    checker.exempt(setup);
    await setup.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: restoredId,
        Engine: 'postgres',
        DBInstanceClass: 'db.t4g.micro',
        AllocatedStorage: 20,
        MasterUsername: 'postgres',
        MasterUserPassword: 'not-used-1234',
      }),
    );
    const source = (JSON.parse(env.COFRE_RESTORE_TEST_DATABASES!) as { resourceArn: string }[])[0]!;
    const jobId = `IAM-${Date.now()}`;
    // moto implements no restore jobs: DescribeRestoreJob is answered here (still checked against IAM).
    checker.addStub('BackupClient/DescribeRestoreJobCommand', () => ({
      RestoreJobId: jobId,
      Status: 'COMPLETED',
      CreationDate: new Date(Date.now() - 1800_000),
      CompletionDate: new Date(),
      SourceResourceArn: source.resourceArn,
      RecoveryPointCreationDate: new Date(),
      CreatedResourceArn: `arn:aws:rds:${iam.region}:${iam.account}:db:${restoredId}`,
      CreatedBy: { RestoreTestingPlanArn: env.COFRE_RESTORE_TESTING_PLAN_ARN },
    }));
    const handle = withEnv({ ...env, AWS_REGION: process.env.AWS_REGION }, () =>
      createRestoreValidationHandler({
        history: new DynamoHistoryStore(
          DynamoDBDocumentClient.from(new DynamoDBClient({})),
          env.COFRE_HISTORY_TABLE!,
        ),
        backup: new BackupClient({}),
        rds,
        secrets: new SecretsManagerClient({}),
        s3: new S3Client({ forcePathStyle: true }),
        sns: new SNSClient({}),
        logger: silent,
      }),
    );
    const before = checker.records.length;
    const out = await checker.as('restore-validation', () =>
      handle({
        source: 'aws.backup',
        'detail-type': 'Restore Job State Change',
        detail: { restoreJobId: jobId, status: 'COMPLETED', resourceType: 'RDS' },
      }),
    );
    expect(out.ignored).toBe(false);
    const actions = new Set(checker.records.slice(before).map((r) => r.action));
    for (const action of [
      'backup:DescribeRestoreJob',
      'rds:DescribeDBInstances',
      'secretsmanager:GetSecretValue',
      's3:ListBucket',
      's3:GetObject',
      'dynamodb:PutItem',
      'backup:PutRestoreValidationResult',
      'sns:Publish',
    ])
      expect([...actions]).toContain(action);
  }, 60_000);

  it('AWS Backup events: a failed snapshot job is recorded and alerted under the backup-events role', async () => {
    const env = iam.environments.get('backup-events')!;
    const [db] = JSON.parse(env.COFRE_SNAPSHOT_DATABASES!) as { resourceArn: string }[];
    const handle = withEnv({ ...env, AWS_REGION: process.env.AWS_REGION }, () =>
      createBackupEventsHandler({
        history: new DynamoHistoryStore(
          DynamoDBDocumentClient.from(new DynamoDBClient({})),
          env.COFRE_HISTORY_TABLE!,
        ),
        sns: new SNSClient({}),
        logger: silent,
      }),
    );
    const before = checker.records.length;
    const out = await checker.as('backup-events', () =>
      handle({
        source: 'aws.backup',
        'detail-type': 'Backup Job State Change',
        time: new Date().toISOString(),
        detail: {
          backupJobId: `IAM-${Date.now()}`,
          state: 'FAILED',
          resourceArn: db!.resourceArn,
          resourceType: 'RDS',
          creationDate: new Date().toISOString(),
        },
      }),
    );
    expect(out).toMatchObject({ ignored: false, notified: true });
    const actions = new Set(checker.records.slice(before).map((r) => r.action));
    expect([...actions].sort()).toEqual([
      'dynamodb:PutItem',
      'kms:Decrypt',
      'kms:GenerateDataKey',
      'sns:Publish',
    ]);
  });

  it('stopped console restore: the running record is found, marked failed and alerted under the restore-stopped role', async () => {
    const env = iam.environments.get('restore-stopped')!;
    const store = new DynamoHistoryStore(
      DynamoDBDocumentClient.from(new DynamoDBClient({})),
      env.COFRE_HISTORY_TABLE!,
    );
    const executionArn = `arn:aws:states:${process.env.AWS_REGION}:123456789012:execution:Restore:iam-${Date.now()}`;
    // Written as restore-validate writes it, under its role.
    await checker.as('restore-validate', () =>
      store.put({
        id: `20261128T230000000Z-${Date.now().toString(16).slice(-8)}`,
        kind: 'restore',
        database: DATABASE,
        status: 'running',
        startedAt: new Date(Date.now() - 60_000).toISOString(),
        requestedBy: 'iam-per-call test',
        executionArn,
      }),
    );
    const handle = withEnv({ ...env, AWS_REGION: process.env.AWS_REGION }, () =>
      createRestoreStoppedHandler({
        history: store,
        sns: new SNSClient({}),
        logger: silent,
      }),
    );
    const before = checker.records.length;
    const out = await checker.as('restore-stopped', () =>
      handle({
        source: 'aws.states',
        'detail-type': 'Step Functions Execution Status Change',
        detail: {
          executionArn,
          stateMachineArn: executionArn.replace(':execution:', ':stateMachine:').replace(/:iam-\d+$/, ''),
          name: executionArn.split(':').pop(),
          status: 'ABORTED',
          startDate: Date.now() - 60_000,
          stopDate: Date.now(),
          input: JSON.stringify({ kind: 'database', database: DATABASE, backup: 'latest' }),
        },
      }),
    );
    expect(out.record?.status).toBe('failed');
    const actions = new Set(checker.records.slice(before).map((r) => r.action));
    expect([...actions].sort()).toEqual([
      'dynamodb:PutItem',
      'dynamodb:Query',
      'kms:Decrypt',
      'kms:GenerateDataKey',
      'sns:Publish',
    ]);
  });

  it('configuration snapshots: the weekly snapshot reads the configured secret and parameters, writes config/, records', async () => {
    const env = iam.environments.get('config-snapshot')!;
    const before = checker.records.length;
    const out = await checker.as('config-snapshot', async () => {
      const kms = new KMS({});
      const keys = await buildKeys({ kmsKeyArn: env.COFRE_KMS_KEY_ARN! }, 'encrypt', () => kms);
      const handle = withEnv(env, () =>
        createConfigSnapshotHandler({
          vault: openVault(env.COFRE_VAULT_URL!, {
            s3: new S3Client({ forcePathStyle: true }),
            sseKmsKeyId: env.COFRE_KMS_KEY_ARN,
            objectLockMode: 'COMPLIANCE',
          }),
          keys,
          clients: { secrets: new SecretsManagerClient({}), ssm: new SSMClient({}) },
          logger: silent,
          history: new DynamoHistoryStore(
            DynamoDBDocumentClient.from(new DynamoDBClient({})),
            env.COFRE_HISTORY_TABLE!,
          ),
        }),
      );
      return handle({ cofre: 'config-weekly' });
    });
    expect(out).toMatchObject({ outcome: 'weekly', secrets: 1, parameters: 2 });
    const actions = new Set(checker.records.slice(before).map((r) => r.action));
    for (const action of [
      'secretsmanager:GetSecretValue',
      'ssm:GetParametersByPath',
      's3:PutObject',
      'kms:GenerateDataKey',
      'dynamodb:PutItem',
    ])
      expect([...actions]).toContain(action);
    const writes = checker.records
      .slice(before)
      .filter((r) => r.action === 's3:PutObject')
      .map((r) => r.resource);
    expect(writes.every((r) => r.startsWith(`arn:aws:s3:::${resources.vaultBucket}/config/`))).toBe(true);
  });

  it('PagerDuty relay reads its routing key from Secrets Manager and pages', async () => {
    const handle = withEnv(
      {
        ...iam.environments.get('pagerduty'),
        COFRE_PAGERDUTY_URL: `http://127.0.0.1:${(pagerDuty.address() as AddressInfo).port}/v2/enqueue`,
      },
      () =>
        createPagerDutyHandler({
          secrets: new SecretsManagerClient({}),
          logger: silent,
        }),
    );
    const event = {
      Records: [
        {
          Sns: {
            Subject: '[Cofre] FAILED full backup app-prod (sa-east-1)',
            Message: 'body',
            MessageAttributes: Object.fromEntries(
              Object.entries({
                severity: 'critical',
                database: DATABASE,
                kind: 'full',
                outcome: 'failed',
                job: 'backup-database',
              }).map(([k, v]) => [k, { Type: 'String', Value: v }]),
            ),
          },
        },
      ],
    } as unknown as SNSEvent;
    await checker.as('pagerduty', () => handle(event));
    expect(pagerDutyBodies).toMatchObject([{ routing_key: 'ROUTING-KEY-FROM-MOTO' }]);
  });

  it('multipart writes and an aborted write of the task role are allowed, and the abort leaves no upload', async () => {
    const s3 = checker.attach(new S3Client({ ...clientConfig(), forcePathStyle: true }), TASK_ROLE);
    const vault = new S3Vault({
      client: s3,
      bucket: resources.vaultBucket,
      prefix: '',
      sseKmsKeyId: resources.vaultKeyArn,
      objectLockMode: 'COMPLIANCE',
      partSize: 5 * 1024 * 1024,
    });
    const big = Buffer.alloc(11 * 1024 * 1024, 7);
    // Without a retain-until date: moto 5.2.5 ignores the Object Lock headers of CreateMultipartUpload,
    // so the writer's lock read-back would fail there (AWS applies them). The request AWS would
    // authorize for a locked multipart upload is checked right below instead.
    const stored = await vault.write(`full/${DATABASE}/iam-multipart/artifact.bin`, Readable.from([big]), {
      tags: { 'cofre:tier': 'yearly', 'cofre:class': 'health' },
    });
    expect(stored.bytes).toBe(big.length);
    const locked = await checker.check(TASK_ROLE, 'S3Client', 'CreateMultipartUploadCommand', {
      Bucket: resources.vaultBucket,
      Key: `full/${DATABASE}/iam-multipart/locked.bin`,
      ServerSideEncryption: 'aws:kms',
      SSEKMSKeyId: resources.vaultKeyArn,
      BucketKeyEnabled: true,
      Tagging: 'cofre%3Atier=yearly&cofre%3Aclass=health',
      ObjectLockMode: 'COMPLIANCE',
      ObjectLockRetainUntilDate: new Date(Date.now() + 7 * 366 * 86_400_000),
    });
    expect(locked.map((r) => `${r.action} ${r.decision}`)).toEqual([
      's3:PutObject Allowed',
      's3:PutObjectTagging Allowed',
      's3:PutObjectRetention Allowed',
      'kms:GenerateDataKey Allowed',
    ]);
    const failing = new Readable({
      read() {
        this.push(Buffer.alloc(6 * 1024 * 1024, 1));
        setTimeout(() => this.destroy(new Error('dump failed')), 20);
      },
    });
    await expect(
      vault.write(`full/${DATABASE}/iam-multipart/aborted.bin`, failing, { tags: { 'cofre:tier': 'daily' } }),
    ).rejects.toThrow(/nothing was stored|aborting multipart upload/);
    const uploads = await aws.s3.send(new ListMultipartUploadsCommand({ Bucket: resources.vaultBucket }));
    expect(uploads.Uploads ?? []).toEqual([]);
  });

  it('restore (console, point-in-time and snapshot): restore-validate and restore-rds against RDS, the post-check, restore-record, notify', async () => {
    if (skipWithoutPostgres()) return;
    // The source instance of app-prod (cofre.config.ts rdsInstanceId), made outside the checker.
    const admin = new RDSClient(clientConfig());
    checker.exempt(admin);
    await admin.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: 'app-prod',
        Engine: 'postgres',
        DBInstanceClass: 'db.t3.micro',
        AllocatedStorage: 20,
        MasterUsername: 'cofre',
        MasterUserPassword: 'not-a-real-password-1',
        BackupRetentionPeriod: 7,
      }),
    );
    const target = `app-prod-iam-${process.pid}`;
    const fromSnapshot = `app-prod-iam-snap-${process.pid}`;
    try {
      const run = await runJob('restore', {
        kind: 'point-in-time',
        database: DATABASE,
        time: 'latest',
        targetIdentifier: target,
        requestedBy: 'iam-per-call test',
      });
      expect(run.status, `${run.error}: ${run.cause}`).toBe('succeeded');
      expect(run.output?.check).toMatchObject({ targetDatabase: target });
      // And from a recovery point (primary region): DescribeDBSnapshots, RestoreDBInstanceFromDBSnapshot.
      const snapshot = await admin.send(
        new CreateDBSnapshotCommand({
          DBInstanceIdentifier: 'app-prod',
          DBSnapshotIdentifier: `iam-rp-${process.pid}`,
        }),
      );
      const fromRp = await runJob('restore', {
        kind: 'snapshot',
        database: DATABASE,
        recoveryPointArn: snapshot.DBSnapshot!.DBSnapshotArn,
        targetIdentifier: fromSnapshot,
      });
      expect(fromRp.status, `${fromRp.error}: ${fromRp.cause}`).toBe('succeeded');
      expect(checker.records.filter((r) => r.role === 'restore-rds').map((r) => r.action)).toContain(
        'rds:RestoreDBInstanceFromDBSnapshot',
      );
    } finally {
      for (const id of [target, fromSnapshot, 'app-prod'])
        await admin
          .send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: id, SkipFinalSnapshot: true }))
          .catch(() => undefined);
    }
  });

  it('files task (S3-compatible source): files-sync, files-sync-full and files-restore-test under the files task role, as the schedule starts them', async () => {
    const role: RuntimeRoleName = `files:${filesSourceBucket}`;
    for (const [key, body] of [
      ['tenants/1/nfe.xml', '<nfe/>'],
      ['tenants/2/receipt.pdf', '%PDF receipt'],
    ])
      await aws.s3.send(new PutObjectCommand({ Bucket: filesSourceBucket, Key: key, Body: body }));
    const secret = await aws.secrets.send(
      new (await import('@aws-sdk/client-secrets-manager')).GetSecretValueCommand({
        SecretId: resources.filesSources!['clinic-attachments']!.secretArn,
      }),
    );
    const config = clientConfig();
    const before = checker.records.length;
    for (const command of ['files-sync', 'files-sync-full', 'files-restore-test']) {
      const logs: string[] = [];
      const code = await checker.as(role, () =>
        runDumpRunner({
          // The container environment from the template, the schedule's override, the ECS secret.
          env: {
            ...localAwsEnv(),
            ...iam.environments.get(role),
            COFRE_COMMAND: command,
            COFRE_FILES_CREDENTIALS: secret.SecretString,
          },
          sfn: checker.attach(new SFNClient(config), role),
          s3: checker.attach(new S3Client({ ...config, forcePathStyle: true }), role),
          dynamodb: DynamoDBDocumentClient.from(checker.attach(new DynamoDBClient(config), role)),
          // The store is not AWS: its requests are not the task role's.
          filesSourceClient: (s, c) => checker.exempt(sourceClientOf({ ...s, endpoint: config.endpoint }, c)),
          log: (line) => logs.push(line),
        }),
      );
      expect(code, `${command}: ${logs.join('\n')}`).toBe(0);
    }
    const mine = checker.records.slice(before).filter((r) => r.role === role);
    expect([...new Set(mine.map((r) => r.action))]).toEqual(
      expect.arrayContaining(['s3:PutObject', 's3:GetObjectVersion', 's3:ListBucket', 'dynamodb:PutItem']),
    );
    expect(mine.filter((r) => r.decision !== 'Allowed' && !r.optional)).toEqual([]);
    const history = new DynamoHistoryStore(
      checker.exempt(DynamoDBDocumentClient.from(aws.dynamodb)),
      resources.historyTable,
    );
    expect((await history.latest(`s3:${filesSourceBucket}`, 'files-restore-test'))?.status).toBe('succeeded');
  }, 60_000);

  it('files restore validation (AWS S3 bucket restore test): describes the job, lists and reads the restored bucket and the source versions, records, reports and alerts', async () => {
    const env = iam.environments.get('files-restore-validation')!;
    const setup = checker.exempt(new S3Client({ ...clientConfig(), forcePathStyle: true }));
    await setup.send(
      new PutObjectCommand({ Bucket: awsBucket, Key: 'clinic-1/nfe.xml', Body: '<nfe>1</nfe>' }),
    );
    const asOf = new Date(Date.now() + 1000);
    // The bucket AWS Backup restore testing creates: the object as it was at the recovery point.
    const restored = `awsbackup-restore-test-${uniqueName('rt')}`.slice(0, 63);
    await setup.send(
      new CreateBucketCommand({
        Bucket: restored,
        CreateBucketConfiguration: { LocationConstraint: REGION },
      }),
    );
    await setup.send(
      new PutObjectCommand({ Bucket: restored, Key: 'clinic-1/nfe.xml', Body: '<nfe>1</nfe>' }),
    );
    const source = (JSON.parse(env.COFRE_RESTORE_TEST_BUCKETS!) as { resourceArn: string }[])[0]!;
    expect(source.resourceArn).toBe(`arn:aws:s3:::${awsBucket}`);
    const jobId = `IAM-S3-${Date.now()}`;
    // moto implements no restore jobs: DescribeRestoreJob is answered here (still checked against IAM).
    checker.addStub('BackupClient/DescribeRestoreJobCommand', () => ({
      RestoreJobId: jobId,
      Status: 'COMPLETED',
      CreationDate: new Date(Date.now() - 1800_000),
      CompletionDate: new Date(),
      SourceResourceArn: source.resourceArn,
      RecoveryPointCreationDate: asOf,
      CreatedResourceArn: `arn:aws:s3:::${restored}`,
      CreatedBy: { RestoreTestingPlanArn: env.COFRE_RESTORE_TESTING_PLAN_ARN },
    }));
    const handle = withEnv({ ...env, AWS_REGION: process.env.AWS_REGION }, () =>
      createFilesRestoreValidationHandler({
        history: new DynamoHistoryStore(
          DynamoDBDocumentClient.from(new DynamoDBClient({})),
          env.COFRE_HISTORY_TABLE!,
        ),
        backup: new BackupClient({}),
        s3: new S3Client({ forcePathStyle: true }),
        sns: new SNSClient({}),
        logger: silent,
      }),
    );
    const before = checker.records.length;
    const out = await checker.as('files-restore-validation', () =>
      handle({
        source: 'aws.backup',
        'detail-type': 'Restore Job State Change',
        detail: { restoreJobId: jobId, status: 'COMPLETED', resourceType: 'S3' },
      }),
    );
    if (out.ignored) throw new Error(out.reason);
    expect(out.validation.message).toMatch(/1 sampled objects equal/);
    expect(out.validation.passed).toBe(true);
    const mine = checker.records.slice(before).filter((r) => r.role === 'files-restore-validation');
    expect([...new Set(mine.map((r) => r.action))]).toEqual(
      expect.arrayContaining([
        'backup:DescribeRestoreJob',
        's3:ListBucket',
        's3:ListBucketVersions',
        's3:GetObject',
        's3:GetObjectVersion',
        'dynamodb:PutItem',
        'backup:PutRestoreValidationResult',
        'sns:Publish',
      ]),
    );
    expect(mine.filter((r) => r.decision !== 'Allowed' && !r.optional)).toEqual([]);
  }, 60_000);

  it('every recorded request is allowed by the synthesized policies', () => {
    const table = checker.table();
    console.log(`[iam] recorded requests (role, action, resource):\n${table}`);
    const pairs = checker.pairs();
    console.log(`[iam] ${pairs.length} distinct (role, action) pairs checked:\n${pairs.join('\n')}`);
    expect(checker.records.length).toBeGreaterThan(0);
    // An optional request (HeadObject's legal hold field) denied only leaves that field out, as in
    // AWS: the configuration snapshot Lambda reads back the lock, never a legal hold; the files restore
    // validation only hashes object bodies, it reads no lock field of the application buckets.
    const denied = checker.records.filter((r) => r.decision !== 'Allowed' && !r.optional);
    expect([
      ...new Set(
        checker.records
          .filter((r) => r.decision !== 'Allowed' && r.optional)
          .map((r) => `${r.role} ${r.action}`),
      ),
    ]).toEqual([
      'config-snapshot s3:GetObjectLegalHold',
      'files-restore-validation s3:GetObjectRetention',
      'files-restore-validation s3:GetObjectLegalHold',
    ]);
    expect(denied.map((d) => `${d.role} ${d.action} ${d.resource} (${d.command})`)).toEqual([]);
  });

  it('each asynchronously invoked Lambda can put a failed event into its encrypted dead-letter queue', async () => {
    // Not a call of our code: Lambda delivers the event with the function's execution role, and an
    // SSE-KMS queue needs the sender to make and read a data key under the queue's key (via SQS).
    expect([...iam.deadLetterQueues.keys()].sort()).toEqual([
      'backup-events',
      'config-snapshot',
      'files-restore-validation',
      'freshness',
      'monthly-report',
      'pagerduty',
      'restore-stopped',
      'restore-validation',
    ]);
    const problems: string[] = [];
    for (const [role, { queueArn, keyArn }] of iam.deadLetterQueues) {
      const kms = (action: string): IamRequest => ({
        action,
        resource: keyArn!,
        via: 'sqs',
        context: {
          'kms:ViaService': `sqs.${iam.region}.amazonaws.com`,
          'kms:CallerAccount': iam.account,
          'kms:EncryptionContext:aws:sqs:arn': queueArn,
          'kms:EncryptionContextKeys': ['aws:sqs:arn'],
        },
      });
      const requests: IamRequest[] = [
        { action: 'sqs:SendMessage', resource: queueArn, context: {} },
        ...(keyArn ? [kms('kms:GenerateDataKey'), kms('kms:Decrypt')] : []),
      ];
      for (const request of requests) {
        const { decision } = await checker.evaluate(role, request);
        if (decision !== 'Allowed')
          problems.push(`${role} ${request.action} ${request.resource}: ${decision}`);
      }
    }
    expect(problems).toEqual([]);
  });

  // ---------------------------------------------------------------------------------------------
  // What must be denied

  const s3Of = (role: RuntimeRoleName) =>
    checker.attach(new S3Client({ ...clientConfig(), forcePathStyle: true }), role);

  it('denies the task role deleting a backup (object or version), and the object stays', async () => {
    const s3 = s3Of(TASK_ROLE);
    const key = `full/${DATABASE}/iam-multipart/artifact.bin`;
    await expect(
      s3.send(new DeleteObjectCommand({ Bucket: resources.vaultBucket, Key: key })),
    ).rejects.toMatchObject({
      name: 'AccessDenied',
    });
    const versions = await aws.s3.send(
      new ListObjectVersionsCommand({ Bucket: resources.vaultBucket, Prefix: key }),
    );
    const versionId = versions.Versions![0]!.VersionId!;
    await expect(
      s3.send(new DeleteObjectCommand({ Bucket: resources.vaultBucket, Key: key, VersionId: versionId })),
    ).rejects.toMatchObject({ name: 'AccessDenied' });
    await expect(
      aws.s3.send(new HeadObjectCommand({ Bucket: resources.vaultBucket, Key: key })),
    ).resolves.toMatchObject({ VersionId: versionId });
  });

  it("denies the task role reading a secret that is not one of its restore targets' (another database's)", async () => {
    const secrets = checker.attach(new SecretsManagerClient(clientConfig()), TASK_ROLE);
    await expect(
      secrets.send(new GetSecretValueCommand({ SecretId: resources.databaseSecretArns[OTHER_DATABASE] })),
    ).rejects.toMatchObject({ name: 'AccessDeniedException' });
    await expect(
      secrets.send(new GetSecretValueCommand({ SecretId: resources.pagerDutySecretArn })),
    ).rejects.toMatchObject({ name: 'AccessDeniedException' });
  });

  it("denies the task role writing under another database's prefix (a manifest of ledger-prod)", async () => {
    const vault = new S3Vault({
      client: s3Of(TASK_ROLE),
      bucket: resources.vaultBucket,
      prefix: '',
      sseKmsKeyId: resources.vaultKeyArn,
      objectLockMode: 'none',
    });
    await expect(
      vault.write(
        `full/${OTHER_DATABASE}/20260101T000000000Z-00000000/manifest.json`,
        Readable.from(['{}']),
        {
          tags: { 'cofre:tier': 'daily' },
        },
      ),
    ).rejects.toThrow(/AccessDenied|not authorized to perform: s3:PutObject/);
  });

  it('denies restore-rds creating without the cofre:restore tag or with another tag, and deleting or changing any instance (the source included)', async () => {
    const db = (id: string) => `arn:aws:rds:${iam.region}:${iam.account}:db:${id}`;
    const tagged = (tags: Record<string, string>) => ({
      'aws:TagKeys': Object.keys(tags),
      ...Object.fromEntries(Object.entries(tags).map(([k, v]) => [`aws:RequestTag/${k}`, v])),
    });
    const decide = async (action: string, resource: string, context: Record<string, string | string[]>) =>
      (await checker.evaluate('restore-rds', { action, resource, context })).decision;
    expect(
      await decide(
        'rds:RestoreDBInstanceToPointInTime',
        db('new-copy'),
        tagged({ 'cofre:restore': 'exec-1' }),
      ),
    ).toBe('Allowed');
    expect(await decide('rds:RestoreDBInstanceToPointInTime', db('new-copy'), {})).not.toBe('Allowed');
    expect(
      await decide('rds:RestoreDBInstanceToPointInTime', db('new-copy'), tagged({ 'cofre:restore': '' })),
    ).not.toBe('Allowed');
    expect(
      await decide(
        'rds:CreateDBInstance',
        db('new-copy'),
        tagged({ 'cofre:restore': 'exec-1', owner: 'someone' }),
      ),
    ).not.toBe('Allowed');
    for (const action of [
      'rds:DeleteDBInstance',
      'rds:ModifyDBInstance',
      'rds:StopDBInstance',
      'rds:RebootDBInstance',
      'rds:DeleteDBCluster',
      'rds:ModifyDBCluster',
      'rds:FailoverDBCluster',
      'rds:RemoveTagsFromResource',
    ])
      for (const role of ['restore-rds', 'restore-validate', 'sm:restore', TASK_ROLE] as const)
        expect(
          (
            await checker.evaluate(role, {
              action,
              resource: action.includes('Cluster')
                ? `arn:aws:rds:${iam.region}:${iam.account}:cluster:app-prod`
                : db('app-prod'),
              context: {},
            })
          ).decision,
          `${role} ${action}`,
        ).not.toBe('Allowed');
  });

  it('denies every runtime role reading the DR vault', async () => {
    for (const role of iam.roles.keys()) {
      const decision = await checker.evaluate(role, {
        action: 's3:GetObject',
        resource: `arn:aws:s3:::${resources.drVaultBucket}/full/${DATABASE}/x/manifest.json`,
        context: {},
      });
      expect(decision.decision, role).not.toBe('Allowed');
    }
    await expect(
      s3Of('verify').send(
        new GetObjectCommand({ Bucket: resources.drVaultBucket, Key: `full/${DATABASE}/x` }),
      ),
    ).rejects.toMatchObject({ name: 'AccessDenied' });
  });

  it('denies disabling or scheduling the deletion of the vault key to every runtime role', async () => {
    for (const role of iam.roles.keys())
      for (const action of ['kms:DisableKey', 'kms:ScheduleKeyDeletion'])
        for (const key of [
          resources.vaultKeyArn,
          resources.historyKeyArn,
          resources.alertsKeyArn,
          resources.pipelineKeyArn,
        ])
          expect(
            (await checker.evaluate(role, { action, resource: key, context: {} })).decision,
            `${role} ${action} ${key}`,
          ).not.toBe('Allowed');
    const kms = checker.attach(new KMSClient(clientConfig()), TASK_ROLE);
    await expect(kms.send(new DisableKeyCommand({ KeyId: resources.vaultKeyArn }))).rejects.toMatchObject({
      name: 'AccessDeniedException',
    });
    await expect(
      kms.send(new ScheduleKeyDeletionCommand({ KeyId: resources.vaultKeyArn, PendingWindowInDays: 7 })),
    ).rejects.toMatchObject({ name: 'AccessDeniedException' });
  });

  it('denies every recorded S3 and SNS request when it comes without TLS (aws:SecureTransport=false)', async () => {
    const seen = new Set<string>();
    let replayed = 0;
    for (const r of checker.records) {
      if (!/^(s3|sns):/.test(r.action) || r.decision !== 'Allowed') continue;
      // The application buckets and the restore-test buckets AWS Backup makes are not Cofre's: their
      // bucket policies are not in the templates (the SDK speaks TLS to them all the same).
      if (r.role === 'files-restore-validation' && r.action.startsWith('s3:')) continue;
      const key = `${r.role} ${r.action} ${r.resource}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const request: IamRequest = { action: r.action, resource: r.resource, context: r.context };
      expect((await checker.evaluate(r.role, request, { secureTransport: false })).decision, key).toBe(
        'ExplicitlyDenied',
      );
      replayed++;
    }
    expect(replayed).toBeGreaterThan(5);
  });

  it('denies an upload that asks for another encryption: another KMS key, SSE-S3, aws:kms without a key id, SSE-C', async () => {
    const otherKey = await createKmsKey(aws.kms, 'not the vault key');
    const s3 = s3Of(TASK_ROLE);
    const put = (key: string, sse: Partial<PutObjectCommandInput>) =>
      s3.send(
        new PutObjectCommand({
          Bucket: resources.vaultBucket,
          Key: `full/${DATABASE}/iam-sse/${key}`,
          Body: 'x',
          ...sse,
        }),
      );
    // Through the writer, as the runtime would with a wrong key.
    const vault = new S3Vault({
      client: s3,
      bucket: resources.vaultBucket,
      prefix: '',
      sseKmsKeyId: otherKey,
      objectLockMode: 'none',
    });
    await expect(
      vault.write(`full/${DATABASE}/iam-sse/other-key.bin`, Readable.from(['x']), {
        tags: { 'cofre:tier': 'daily' },
      }),
    ).rejects.toThrow(/s3:PutObject .*explicit deny/);
    await expect(put('sse-s3', { ServerSideEncryption: 'AES256' })).rejects.toThrow(/explicit deny/);
    await expect(put('kms-no-key-id', { ServerSideEncryption: 'aws:kms' })).rejects.toThrow(/explicit deny/);
    const customerKey = Buffer.alloc(32, 9);
    await expect(
      put('sse-c', {
        SSECustomerAlgorithm: 'AES256',
        SSECustomerKey: customerKey.toString('base64'),
      }),
    ).rejects.toThrow(/explicit deny/);
  });

  it('allows an upload without encryption headers only because S3 encrypts it with the vault key (bucket default)', async () => {
    // The bucket policy cannot deny a missing header without denying UploadPart and
    // CompleteMultipartUpload too (they never carry one); the bucket's default encryption applies.
    const checked = await checker.check(
      TASK_ROLE,
      'S3Client',
      'PutObjectCommand',
      { Bucket: resources.vaultBucket, Key: `full/${DATABASE}/iam-sse/no-header.bin` },
      { record: false },
    );
    expect(checked.map((c) => [c.action, c.resource, c.decision])).toEqual([
      [
        's3:PutObject',
        `arn:aws:s3:::${resources.vaultBucket}/full/${DATABASE}/iam-sse/no-header.bin`,
        'Allowed',
      ],
      ['kms:GenerateDataKey', resources.vaultKeyArn, 'Allowed'],
    ]);
    const template = iam.resourcePolicies.get(`arn:aws:s3:::${resources.vaultBucket}`)!;
    expect(JSON.stringify(template)).not.toContain('IfExists":{"s3:x-amz-server-side-encryption');
  });

  it("denies the files task role writing under another bucket's files folder or a database prefix", async () => {
    const role: RuntimeRoleName = `files:${filesSourceBucket}`;
    const s3 = checker.attach(new S3Client({ ...clientConfig(), forcePathStyle: true }), role);
    for (const key of ['files/other-bucket/objects/x', 'full/app-prod/x/manifest.json'])
      await expect(
        checker.as(role, () =>
          s3.send(
            new PutObjectCommand({
              Bucket: resources.vaultBucket,
              Key: key,
              Body: 'x',
              ServerSideEncryption: 'aws:kms',
              SSEKMSKeyId: resources.vaultKeyArn,
            }),
          ),
        ),
      ).rejects.toThrow(/AccessDenied|not authorized/);
  });
});
