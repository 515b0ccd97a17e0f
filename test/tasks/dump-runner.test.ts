/**
 * The Fargate dump runner's entry (tasks/dump-runner/main.ts) in-process: real PostgreSQL, and S3
 * and KMS from the local AWS (moto: Object Lock, SSE-KMS, encryption context); Step Functions
 * through aws-sdk-client-mock (moto cannot issue the task token of a `.waitForTaskToken` state).
 */
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { KMS } from '@aws-sdk/client-kms';
import {
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  SFNClient,
} from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseDatabaseUrl } from '../../core/sources/connection';
import { loadDemoData } from '../../core/local/demo-data';
import { startHeartbeats } from '../../core/aws/task';
import { runDumpRunner } from '../../tasks/dump-runner/main';
import { createPostgresDatabase, describePostgres, type TestDatabase } from '../helpers/databases';
import {
  clientConfig,
  createKmsKey,
  createVaultBucket,
  describeLocalAws,
  localAws,
  localAwsEnv,
  type LocalAws,
} from '../helpers/local-aws';

describe('startHeartbeats', () => {
  it('beats only while progress advances, so a stalled dump stops heartbeating', async () => {
    vi.useFakeTimers();
    try {
      let bytes = 0;
      const beat = vi.fn(() => Promise.resolve());
      const stop = startHeartbeats({
        progress: () => bytes,
        beat,
        intervalMs: 1000,
        onError: () => undefined,
      });
      bytes = 10;
      await vi.advanceTimersByTimeAsync(1000); // advanced: beat
      await vi.advanceTimersByTimeAsync(3000); // stalled for 3 intervals: no beat
      expect(beat).toHaveBeenCalledTimes(1);
      bytes = 20;
      await vi.advanceTimersByTimeAsync(1000);
      expect(beat).toHaveBeenCalledTimes(2);
      stop();
      bytes = 30;
      await vi.advanceTimersByTimeAsync(5000);
      expect(beat).toHaveBeenCalledTimes(2);
    } finally {
      vi.useRealTimers();
    }
  });
});

describeLocalAws('dump runner (Fargate entry point)', () => {
  describePostgres('against PostgreSQL and the local AWS', () => {
    let db: TestDatabase;
    let aws: LocalAws;
    let bucket: string;
    let keyArn: string;
    const sfn = mockClient(SFNClient);
    const lines: string[] = [];

    beforeAll(async () => {
      db = await createPostgresDatabase('dump_runner');
      await loadDemoData(parseDatabaseUrl('postgres', db.url), { patientsPerTenant: 30 });
      aws = localAws();
      bucket = await createVaultBucket(aws.s3, { mode: 'COMPLIANCE', days: 30 });
      keyArn = await createKmsKey(aws.kms, 'vault key');
    }, 60_000);
    afterAll(async () => {
      await db.drop();
    });
    beforeEach(() => {
      sfn.reset();
      lines.length = 0;
      sfn.onAnyCommand().resolves({});
    });

    function env(overrides: Record<string, string | undefined> = {}, databases: string[] = [db.name]) {
      const u = new URL(db.url);
      const job = {
        job: 'backup-database',
        runId: '20261123T050000000Z-00000000',
        startedAt: '2026-11-23T05:00:00.000Z',
        database: {
          id: 'app-prod',
          engine: 'postgres',
          rdsInstanceId: 'app-prod',
          databases,
          excludeDatabases: [],
          credentialsSecretArn: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:app-AbCdEf',
          network: { vpcId: 'vpc-00000000', subnetIds: ['subnet-00000000'], securityGroupId: 'sg-00000000' },
          dataClass: 'general',
        },
        requestedBy: 'schedule',
        timeZone: 'America/Sao_Paulo',
        retention: {
          tiers: { dailyDays: 30, weeklyWeeks: 12, monthlyMonths: 12, yearlyYears: 7 },
          classes: {},
          tenantExportDays: 90,
        },
        tier: 'daily',
      };
      return {
        ...localAwsEnv(),
        COFRE_COMMAND: 'backup',
        COFRE_JOB: JSON.stringify(job),
        COFRE_TASK_TOKEN: 'token-1',
        COFRE_DB_SECRET: JSON.stringify({
          username: u.username || 'postgres',
          password: decodeURIComponent(u.password),
          host: u.hostname,
          port: Number(u.port || 5432),
        }),
        COFRE_VAULT_URL: `s3://${bucket}`,
        COFRE_KMS_KEY_ARN: keyArn,
        // As the task definition sets it from the vault's configured lock (lib/constructs/dump-task.ts).
        COFRE_OBJECT_LOCK_MODE: 'COMPLIANCE',
        ...overrides,
      };
    }

    const run = (e: NodeJS.ProcessEnv, signal?: AbortSignal, s3: S3Client = aws.s3) =>
      runDumpRunner({
        env: e,
        sfn: new SFNClient({ region: 'us-east-1' }),
        s3,
        kms: () => new KMS(clientConfig()),
        signal,
        log: (l) => lines.push(l),
        heartbeatIntervalMs: 10,
      });

    it('dumps into the vault with the KMS key and reports the summary with SendTaskSuccess', async () => {
      expect(await run(env()), lines.join('\n')).toBe(0);
      const success = sfn.commandCalls(SendTaskSuccessCommand);
      expect(success).toHaveLength(1);
      const input = success[0]!.args[0].input;
      expect(input.taskToken).toBe('token-1');
      const output = JSON.parse(input.output!) as {
        backups: { backupId: string; tier: string; folder: string; rows: number }[];
      };
      expect(output.backups).toHaveLength(1);
      expect(output.backups[0]).toMatchObject({
        tier: 'daily',
        folder: expect.stringMatching(/^full\/app-prod\//) as string,
      });
      expect(output.backups[0]!.rows).toBeGreaterThan(0);
      expect(sfn.commandCalls(SendTaskFailureCommand)).toHaveLength(0);
      const folder = output.backups[0]!.folder;
      const head = await aws.s3.send(
        new HeadObjectCommand({ Bucket: bucket, Key: `${folder}/manifest.json` }),
      );
      expect(head).toMatchObject({ ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyArn });

      // Then verify-deep of that backup, decrypting through KMS.
      const backupId = output.backups[0]!.backupId;
      sfn.resetHistory();
      const verifyJob = {
        ...(JSON.parse(env().COFRE_JOB) as Record<string, unknown>),
        job: 'verify-integrity',
        backupIds: [backupId],
      };
      expect(
        await run(env({ COFRE_COMMAND: 'verify-deep', COFRE_JOB: JSON.stringify(verifyJob) })),
        lines.join('\n'),
      ).toBe(0);
      const verified = JSON.parse(sfn.commandCalls(SendTaskSuccessCommand)[0]!.args[0].input.output!) as {
        reports: { backupId: string; status: string }[];
      };
      expect(verified.reports).toEqual([{ backupId, status: 'ok', problems: [] }]);
    }, 60_000);

    it('locks a yearly backup until its retention ends, not the vault default, under the task role', async () => {
      // The task role may not read the bucket's Object Lock configuration (it has no
      // s3:GetBucketObjectLockConfiguration; test/aws checks every call against the synthesized role),
      // so S3 answers AccessDenied to it, as AWS does.
      const s3 = new S3Client({ ...clientConfig(), forcePathStyle: true });
      s3.middlewareStack.add(
        (next, context) => (args) => {
          if (context.commandName === 'GetObjectLockConfigurationCommand')
            return Promise.reject(Object.assign(new Error('Access Denied'), { name: 'AccessDenied' }));
          return next(args);
        },
        { step: 'initialize', name: 'taskRoleDeniesObjectLockConfiguration' },
      );
      const job = { ...(JSON.parse(env().COFRE_JOB) as Record<string, unknown>), tier: 'yearly' };
      expect(await run(env({ COFRE_JOB: JSON.stringify(job) }), undefined, s3), lines.join('\n')).toBe(0);
      const output = JSON.parse(sfn.commandCalls(SendTaskSuccessCommand)[0]!.args[0].input.output!) as {
        backups: { folder: string; tier: string }[];
      };
      expect(output.backups[0]!.tier).toBe('yearly');
      const folder = output.backups[0]!.folder;
      const keys = (await aws.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${folder}/` })))
        .Contents!;
      const manifest = JSON.parse(
        await (
          await aws.s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${folder}/manifest.json` }))
        ).Body!.transformToString(),
      ) as { retention: { lockUntil: string } };
      const wanted = new Date(manifest.retention.lockUntil).getTime();
      expect(wanted - Date.now()).toBeGreaterThan(6 * 365 * 86_400_000);
      expect(keys.length).toBe(2);
      for (const { Key } of keys) {
        const head = await aws.s3.send(new HeadObjectCommand({ Bucket: bucket, Key }));
        expect(head.ObjectLockMode, Key).toBe('COMPLIANCE');
        expect(
          head.ObjectLockRetainUntilDate!.getTime(),
          `${Key}: retain-until ${head.ObjectLockRetainUntilDate!.toISOString()}, manifest ${manifest.retention.lockUntil}`,
        ).toBeGreaterThanOrEqual(wanted - 1000);
      }
    }, 60_000);

    it('reports a failed dump with SendTaskFailure, an error the ASL retries on, and the cause', async () => {
      expect(await run(env({}, [db.name, 'cofre_no_such_db']))).toBe(1);
      expect(sfn.commandCalls(SendTaskSuccessCommand)).toHaveLength(0);
      const failure = sfn.commandCalls(SendTaskFailureCommand)[0]!.args[0].input;
      expect(failure.taskToken).toBe('token-1');
      expect(failure.error).toBe('Cofre.DumpFailed');
      expect(failure.cause).toMatch(
        /1 of 2 backup\(s\) of app-prod failed: cofre_no_such_db: .*does not exist/,
      );
      expect(failure.cause).not.toContain(
        decodeURIComponent(new URL(db.url).password) || 'no-password-in-url',
      );
    }, 60_000);

    it('reports a bad job as Cofre.BadInput (not retried) and exits 2', async () => {
      expect(await run(env({ COFRE_JOB: '{"job":"backup-database"}' }))).toBe(2);
      const failure = sfn.commandCalls(SendTaskFailureCommand)[0]!.args[0].input;
      expect(failure.error).toBe('Cofre.BadInput');
      expect(failure.cause).toMatch(/COFRE_JOB\.runId/);
      expect(await run(env({ COFRE_DB_SECRET: undefined }))).toBe(2);
      expect(sfn.commandCalls(SendTaskFailureCommand)[1]!.args[0].input.cause).toMatch(
        /COFRE_DB_SECRET: not set/,
      );
    });

    it('reports a SIGTERM as Cofre.Cancelled, leaving nothing in the vault', async () => {
      const controller = new AbortController();
      controller.abort('SIGTERM');
      const before = (await aws.s3.send(new ListObjectsV2Command({ Bucket: bucket }))).KeyCount ?? 0;
      expect(await run(env(), controller.signal)).toBe(1);
      expect(sfn.commandCalls(SendTaskFailureCommand)[0]!.args[0].input.error).toBe('Cofre.Cancelled');
      const after = (await aws.s3.send(new ListObjectsV2Command({ Bucket: bucket }))).KeyCount ?? 0;
      expect(after).toBe(before);
    });

    it('refuses to run without a task token (not started by the state machine)', async () => {
      expect(await run(env({ COFRE_TASK_TOKEN: undefined }))).toBe(2);
      expect(sfn.commandCalls(SendTaskHeartbeatCommand)).toHaveLength(0);
      expect(lines.join('\n')).toMatch(/COFRE_TASK_TOKEN is not set/);
    });
  });
});
