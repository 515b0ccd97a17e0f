import { Logger } from '@aws-lambda-powertools/logger';
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { rmSync } from 'node:fs';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { backupMetrics } from '../../../core/policy/metrics';
import { causeText } from '../../../core/aws/task-errors';
import { parseContainerJob, parseJobInput } from '../../../core/aws/job';
import {
  batchIds,
  prepare,
  recordStep,
  type PrepareEvent,
  type PrepareResult,
} from '../../../core/aws/steps';
import { createPrepareHandler } from '../../../lambdas/prepare/index';
import { DynamoHistoryStore, FileHistoryStore } from '../../../core/history/store';
import type { Context } from 'aws-lambda';
import { tempDir } from '../../helpers/cli';
import { lambdaContext } from '../../helpers/lambda-context';
import {
  clientConfig,
  createHistoryTable,
  createIdempotencyTable,
  describeLocalAws,
  localAws,
  localAwsEnv,
} from '../../helpers/local-aws';

const input = {
  database: {
    id: 'app-prod',
    engine: 'postgres',
    rdsInstanceId: 'app-prod',
    databases: 'all',
    excludeDatabases: [],
    credentialsSecretArn: 'arn:aws:secretsmanager:sa-east-1:111111111111:secret:cofre/app-prod-AbCdEf',
    network: {
      vpcId: 'vpc-0123456789abcdef0',
      subnetIds: ['subnet-0123456789abcdef0'],
      securityGroupId: 'sg-0123456789abcdef0',
    },
    dataClass: 'health',
  },
  taskDefinitionArn: 'arn:aws:ecs:sa-east-1:111111111111:task-definition/CofreDump:3',
  requestedBy: 'schedule',
};

describe('execution input (job.ts)', () => {
  it('accepts what a schedule sends, with defaults', () => {
    const job = parseJobInput(input);
    expect(job).toMatchObject({ timeZone: 'America/Sao_Paulo', timeoutMinutes: 360, tenantBatchSize: 50 });
    expect(job.retention.tiers.dailyDays).toBe(30);
  });

  it.each([
    [{ ...input, taskDefinitionArn: 'CofreDump' }, /taskDefinitionArn: expected an ECS task definition ARN/],
    [
      { ...input, database: { ...input.database, network: { ...input.database.network, subnetIds: [] } } },
      /database\.network\.subnetIds: expected at least one subnet id/,
    ],
    [
      { ...input, database: { ...input.database, host: 'db.internal' } },
      /database\.host: expected exactly one of rdsInstanceId, rdsClusterId or host, got rdsInstanceId and host/,
    ],
    [{ ...input, timeZone: 'Mars/Olympus' }, /timeZone: expected an IANA time zone/],
    [{ ...input, requestedBy: undefined }, /requestedBy: expected who started the run/],
  ])('names the field of a bad input (%#)', (bad, message) => {
    expect(() => parseJobInput(bad)).toThrow(message);
  });

  it('names the field of a bad COFRE_JOB', () => {
    expect(() => parseContainerJob('{nope')).toThrow(/COFRE_JOB: expected JSON/);
    expect(() => parseContainerJob({ job: 'backup-database' })).toThrow(/COFRE_JOB\.runId/);
  });
});

describe('metrics', () => {
  it('computes the signed size deviation from the trailing average and flags it beyond the threshold', () => {
    const m = backupMetrics({
      storedBytes: 150,
      rawBytes: 600,
      durationSeconds: 120,
      previousStoredBytes: [100, 100, 100],
      maxDurationMinutes: 30,
      sizeAnomalyPercent: 30,
    });
    expect(m.sizeDeviationPercent).toBe(50);
    expect(m.anomalies).toEqual([
      expect.stringMatching(
        /\+50 % from the average of the last 3 good backups \(100 bytes\); threshold ±30 %/,
      ),
    ]);
    expect(Object.fromEntries(m.metrics.map((d) => [d.name, [d.value, d.unit]]))).toEqual({
      BackupSucceeded: [1, 'Count'],
      BackupSizeBytes: [150, 'Bytes'],
      BackupDurationSeconds: [120, 'Seconds'],
      CompressionRatio: [4, 'None'],
      BackupSizeDeviationPercent: [50, 'Percent'],
      BackupDurationOverThreshold: [0, 'Count'],
    });
  });

  it('flags a shrunken backup and a slow one; the first backup has no deviation', () => {
    const m = backupMetrics({
      storedBytes: 60,
      rawBytes: 60,
      durationSeconds: 31 * 60,
      previousStoredBytes: [100],
      maxDurationMinutes: 30,
      sizeAnomalyPercent: 30,
    });
    expect(m.sizeDeviationPercent).toBe(-40);
    expect(m.durationOverThreshold).toBe(true);
    expect(m.anomalies).toHaveLength(2);
    const first = backupMetrics({
      storedBytes: 60,
      rawBytes: 60,
      durationSeconds: 1,
      previousStoredBytes: [],
      maxDurationMinutes: 30,
      sizeAnomalyPercent: 30,
    });
    expect(first.sizeDeviationPercent).toBeUndefined();
    expect(first.metrics.map((d) => d.name)).not.toContain('BackupSizeDeviationPercent');
  });
});

const dirs: string[] = [];
function dir(): string {
  const d = tempDir('steps');
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('steps', () => {
  it('batches tenant ids by count and by characters (ECS overrides are limited to 8 KiB)', () => {
    expect(batchIds(['a', 'b', 'c', 'd', 'e'], 2)).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
    const long = Array.from({ length: 10 }, (_, i) => `${i}`.padEnd(900, 'x'));
    const batches = batchIds(long, 50);
    expect(batches.length).toBeGreaterThan(1);
    for (const b of batches) expect(JSON.stringify(b).length).toBeLessThanOrEqual(4000);
    expect(batches.flat()).toEqual(long);
  });

  it('reads the error message out of a Lambda cause', () => {
    expect(
      causeText(JSON.stringify({ errorType: 'Cofre.VerifyFailed', errorMessage: 'size differs', trace: [] })),
    ).toBe('size differs');
    expect(causeText('pg_dump: connection refused')).toBe('pg_dump: connection refused');
  });

  it('decides the tier of a full backup from the last good one in the history', async () => {
    const history = new FileHistoryStore(dir());
    const now = new Date('2026-11-23T05:00:00.000Z'); // a Monday, 02:00 in São Paulo
    await history.put({
      id: 'x',
      kind: 'full',
      database: 'app-prod',
      status: 'succeeded',
      startedAt: '2026-11-20T05:00:00.000Z',
      requestedBy: 's',
    });
    const p = await prepare(
      { job: 'backup-database', input, executionId: 'arn:aws:states:sa-east-1:1:execution:a:b' },
      { history, now: () => now },
    );
    expect(p).toMatchObject({
      skip: false,
      timeoutSeconds: 21600,
      job: { tier: 'weekly', runId: expect.any(String) as string },
    });
    expect(await history.latest('app-prod', 'full', 'running')).toMatchObject({
      tier: 'weekly',
      requestedBy: 'schedule',
    });
  });

  it('records a run whose prepare failed (no running record) with the cause, and emits BackupFailed', async () => {
    const history = new FileHistoryStore(dir());
    const emitted: string[] = [];
    const r = await recordStep(
      {
        job: 'backup-database',
        outcome: 'failed',
        executionId: 'arn:aws:states:sa-east-1:1:execution:a:b',
        state: {
          database: { id: 'app-prod' },
          requestedBy: 'schedule',
          error: {
            Error: 'Cofre.BadInput',
            Cause: JSON.stringify({ errorMessage: 'invalid execution input: timeZone: …' }),
          },
        },
      },
      {
        history,
        metrics: { emit: (_db, d) => void emitted.push(...d.map((x) => x.name)) },
        vaultUrl: 's3://v',
      },
    );
    expect(r.status).toBe('failed');
    expect(r.cause).toBe(
      'backup-database of app-prod failed: Cofre.BadInput: invalid execution input: timeZone: …',
    );
    expect(r.notify).toMatchObject({
      outcome: 'failed',
      job: 'backup-database',
      database: 'app-prod',
      kind: 'full',
      error: 'Cofre.BadInput',
    });
    expect((await history.latest('app-prod', 'full'))?.status).toBe('failed');
    expect(emitted).toEqual(['BackupFailed']);
  });
});

/** Loaded per test (each reads its environment at load); by path, as the runtime loads them. */
const HANDLERS = {
  verify: '../../../lambdas/verify/index',
  prepare: '../../../lambdas/prepare/index',
};

describe('Lambda handlers', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.resetModules();
  });

  it('fail loudly at load when their environment is incomplete', async () => {
    vi.stubEnv('COFRE_HISTORY_TABLE', '');
    await expect(import(HANDLERS.verify)).rejects.toThrow(
      /missing environment variable\(s\) COFRE_HISTORY_TABLE, COFRE_VAULT_URL, COFRE_OBJECT_LOCK_MODE, COFRE_MAX_DURATION_MINUTES, COFRE_SIZE_ANOMALY_PERCENT/,
    );
  });
});

describeLocalAws('Lambda handlers against the local AWS', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.resetModules();
  });

  it('prepare writes the running record to the table and names a bad input Cofre.BadInput', async () => {
    const table = await createHistoryTable(localAws().dynamodb);
    for (const [name, value] of Object.entries(localAwsEnv()))
      if (name.startsWith('AWS_')) vi.stubEnv(name, value);
    vi.stubEnv('COFRE_HISTORY_TABLE', table);
    vi.stubEnv('COFRE_IDEMPOTENCY_TABLE', await createIdempotencyTable(localAws().dynamodb));
    vi.stubEnv('POWERTOOLS_DEV', 'true');
    const { handler } = (await import(HANDLERS.prepare)) as {
      handler: (event: PrepareEvent, context: Context) => Promise<PrepareResult>;
    };
    const out = await handler(
      {
        job: 'backup-database',
        input,
        executionId: 'arn:aws:states:sa-east-1:1:execution:a:b',
      },
      lambdaContext('prepare'),
    );
    expect(out.skip).toBe(false);
    const scan = await localAws().dynamodb.send(new ScanCommand({ TableName: table }));
    const items = (scan.Items ?? []).map((item) => unmarshall(item));
    expect(items.filter((item) => !String(item.id).startsWith('lock#'))).toEqual([
      expect.objectContaining({
        status: 'running',
        database: 'app-prod',
        databaseKindStatus: 'app-prod#full#running',
        tier: 'yearly',
      }),
    ]);
    await expect(
      handler(
        { job: 'backup-database', input: { ...input, requestedBy: '' }, executionId: 'e' },
        lambdaContext('prepare'),
      ),
    ).rejects.toMatchObject({
      name: 'Cofre.BadInput',
      message: expect.stringMatching(/requestedBy/) as string,
    });
  });

  it('prepare is idempotent per execution: a retry returns the first result and writes no second record', async () => {
    const aws = localAws();
    const [table, idempotencyTable] = await Promise.all([
      createHistoryTable(aws.dynamodb),
      createIdempotencyTable(aws.dynamodb),
    ]);
    const client = new DynamoDBClient(clientConfig());
    const handle = createPrepareHandler({
      history: new DynamoHistoryStore(DynamoDBDocumentClient.from(client), table),
      idempotency: { client, tableName: idempotencyTable },
      logger: new Logger({ serviceName: 'test', logLevel: 'SILENT' }),
    });
    const event = {
      job: 'backup-database',
      input,
      executionId: 'arn:aws:states:sa-east-1:1:execution:a:retried',
    };
    const first = await handle(event, lambdaContext('prepare'));
    const retried = await handle(event, lambdaContext('prepare'));
    expect(first.skip).toBe(false);
    expect(retried).toEqual(first);
    const history = (await aws.dynamodb.send(new ScanCommand({ TableName: table }))).Items ?? [];
    const records = history.map((i) => unmarshall(i)).filter((i) => !String(i.id).startsWith('lock#'));
    expect(records).toEqual([expect.objectContaining({ id: first.runId, status: 'running' })]);
    const stored = (await aws.dynamodb.send(new ScanCommand({ TableName: idempotencyTable }))).Items ?? [];
    expect(stored.map((i) => unmarshall(i))).toEqual([
      expect.objectContaining({ status: 'COMPLETED', expiration: expect.any(Number) as number }),
    ]);

    // Another execution of the same job is a run of its own (the key is the execution id, not the input).
    const other = await handle({ ...event, executionId: `${event.executionId}-2` }, lambdaContext('prepare'));
    expect(other.runId).not.toBe(first.runId);
  });
});
