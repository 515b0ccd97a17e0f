/**
 * The Fargate dump runner's entry (tasks/dump-runner/main.ts) in-process: real PostgreSQL and a real
 * S3 API (s3rver); Step Functions and KMS through aws-sdk-client-mock (exact commands).
 */
import { randomBytes } from 'node:crypto';
import { DecryptCommand, GenerateDataKeyCommand, KMS, KMSClient } from '@aws-sdk/client-kms';
import {
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  SFNClient,
} from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseDatabaseUrl } from '../../core/connection';
import { loadDemoData } from '../../core/orchestration/demo-data';
import { startHeartbeats } from '../../core/orchestration/task';
import { runDumpRunner } from '../../tasks/dump-runner/main';
import { createPostgresDatabase, describePostgres, type TestDatabase } from '../helpers/databases';
import { startLocalS3, type LocalS3 } from '../helpers/s3';

const KEY_ARN = 'arn:aws:kms:us-east-1:111111111111:key/00000000-0000-0000-0000-000000000001';

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

describePostgres('dump runner (Fargate entry point)', () => {
  let db: TestDatabase;
  let s3: LocalS3;
  const sfn = mockClient(SFNClient);
  const kms = mockClient(KMSClient);
  const lines: string[] = [];

  beforeAll(async () => {
    db = await createPostgresDatabase('dump_runner');
    await loadDemoData(parseDatabaseUrl('postgres', db.url), { patientsPerTenant: 30 });
    s3 = await startLocalS3('cofre-runner');
  }, 60_000);
  afterAll(async () => {
    await db.drop();
    await s3.dispose();
  });
  beforeEach(() => {
    sfn.reset();
    kms.reset();
    lines.length = 0;
    sfn.onAnyCommand().resolves({});
    // A stand-in KMS: the data key "wrapped" is the key itself with a marker, bound to our key ARN.
    kms.on(GenerateDataKeyCommand).callsFake(() => {
      const plain = randomBytes(32);
      return {
        KeyId: KEY_ARN,
        Plaintext: plain,
        CiphertextBlob: Buffer.concat([Buffer.from('wrapped:'), plain]),
      };
    });
    kms.on(DecryptCommand).callsFake((input: { CiphertextBlob: Uint8Array }) => ({
      KeyId: KEY_ARN,
      Plaintext: Buffer.from(input.CiphertextBlob).subarray('wrapped:'.length),
    }));
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
      ...s3.env,
      COFRE_COMMAND: 'backup',
      COFRE_JOB: JSON.stringify(job),
      COFRE_TASK_TOKEN: 'token-1',
      COFRE_DB_SECRET: JSON.stringify({
        username: u.username || 'postgres',
        password: decodeURIComponent(u.password),
        host: u.hostname,
        port: Number(u.port || 5432),
      }),
      COFRE_VAULT_URL: `s3://${s3.bucket}`,
      COFRE_KMS_KEY_ARN: KEY_ARN,
      ...overrides,
    };
  }

  const run = (e: NodeJS.ProcessEnv, signal?: AbortSignal) =>
    runDumpRunner({
      env: e,
      sfn: new SFNClient({ region: 'us-east-1' }),
      s3: s3.client,
      kms: () => new KMS({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }),
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
    expect(kms.commandCalls(GenerateDataKeyCommand)[0]!.args[0].input).toMatchObject({ KeyId: KEY_ARN });

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
    expect(kms.commandCalls(DecryptCommand).length).toBeGreaterThan(0);
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
    expect(failure.cause).not.toContain(decodeURIComponent(new URL(db.url).password) || 'no-password-in-url');
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
    const before =
      (
        await s3.client.send(
          new (await import('@aws-sdk/client-s3')).ListObjectsV2Command({ Bucket: s3.bucket }),
        )
      ).KeyCount ?? 0;
    expect(await run(env(), controller.signal)).toBe(1);
    expect(sfn.commandCalls(SendTaskFailureCommand)[0]!.args[0].input.error).toBe('Cofre.Cancelled');
    const after =
      (
        await s3.client.send(
          new (await import('@aws-sdk/client-s3')).ListObjectsV2Command({ Bucket: s3.bucket }),
        )
      ).KeyCount ?? 0;
    expect(after).toBe(before);
  });

  it('refuses to run without a task token (not started by the state machine)', async () => {
    expect(await run(env({ COFRE_TASK_TOKEN: undefined }))).toBe(2);
    expect(sfn.commandCalls(SendTaskHeartbeatCommand)).toHaveLength(0);
    expect(lines.join('\n')).toMatch(/COFRE_TASK_TOKEN is not set/);
  });
});
