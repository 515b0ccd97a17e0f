/**
 * The race between a console restore's validation and its stop: Step Functions does not wait for a
 * running Lambda when an execution is stopped, so the stopped-execution handler (restore-stopped) can
 * run BEFORE the validation writes its `running` record. Both now name the same record (an id derived
 * from the execution) and neither overwrites a finished one, so the record ends `failed` whatever the
 * order, and a record already finished stays as it was. The history is DynamoDB on the local AWS
 * (moto: the condition expression is the real one); the restore state machine runs locally against a
 * real PostgreSQL backup.
 */
import { rmSync } from 'node:fs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { NotifyEvent } from '../../../core/alerts/message';
import { jobDatabaseSchema } from '../../../core/aws/job';
import { recordStoppedRestore, restoreRecordId } from '../../../core/aws/restore-stopped';
import type { BackupTaskOutput } from '../../../core/aws/task';
import { DynamoHistoryStore, FileHistoryStore } from '../../../core/history/store';
import { runLocalJob, type LocalPipelineOptions } from '../../../core/local/state-machine-runner';
import { buildKeys } from '../../../core/vault/crypto';
import { tempDir } from '../../helpers/cli';
import {
  createPostgresDatabase,
  describePostgres,
  withPostgresClient,
  type TestDatabase,
} from '../../helpers/databases';
import { testKeys } from '../../helpers/engine';
import { createHistoryTable, describeLocalAws, localAws } from '../../helpers/local-aws';
import { localJobInput, localPipeline } from '../../helpers/orchestration';

describePostgres('console restore: a stop racing the validation never leaves a running record', () => {
  describeLocalAws('history in DynamoDB (local AWS)', () => {
    let db: TestDatabase;
    const dirs: string[] = [];
    let options: LocalPipelineOptions;
    let history: DynamoHistoryStore;
    let fullId: string;

    const stopEvent = (executionArn: string, input: unknown) => ({
      source: 'aws.states',
      'detail-type': 'Step Functions Execution Status Change',
      detail: {
        executionArn,
        stateMachineArn: executionArn.replace(':execution:', ':stateMachine:').replace(/:[^:]+$/, ''),
        name: executionArn.split(':').pop()!,
        status: 'ABORTED',
        startDate: Date.now() - 1000,
        stopDate: Date.now(),
        input: JSON.stringify(input),
      },
    });

    beforeAll(async () => {
      const aws = localAws();
      history = new DynamoHistoryStore(
        DynamoDBDocumentClient.from(aws.dynamodb),
        await createHistoryTable(aws.dynamodb),
      );
      db = await createPostgresDatabase('rsr');
      const k = await testKeys();
      const setup = localPipeline(
        db.url,
        { keys: k.keys, decryptKeys: await buildKeys({ keyFile: k.keyFile }, 'decrypt') },
        dirs,
      );
      await withPostgresClient(db.url, (c) =>
        c.query('CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2), (3)'),
      );
      options = {
        ...setup.options,
        history,
        restoreDatabases: [
          {
            database: jobDatabaseSchema.parse(localJobInput(db.url).database),
            taskDefinitionArn: 'arn:aws:ecs:us-east-1:000000000000:task-definition/cofre-demo:1',
          },
        ],
      };
      const backup = await runLocalJob('backup-database', localJobInput(db.url), options);
      expect(backup.status, `${backup.error}: ${backup.cause}`).toBe('succeeded');
      fullId = (backup.output?.dump as BackupTaskOutput).backups[0]!.backupId;
    }, 120_000);

    afterAll(async () => {
      await db.drop();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });

    it('the stop is handled while the validation Lambda still runs: the record ends failed, and the validation writes no running record', async () => {
      const input = {
        kind: 'database',
        database: 'demo',
        backup: fullId,
        targetDatabase: `${db.name.slice(0, 30)}_never`,
        requestedBy: 'oncall@example.com',
      };
      const notified: NotifyEvent[] = [];
      let executionArn = '';
      const run = await runLocalJob('restore', input, {
        ...options,
        around: async (state, stateInput, next) => {
          if (state === 'Validate') {
            // EventBridge delivers the ABORTED event and restore-stopped runs first...
            executionArn = (stateInput as { Payload: { executionId: string } }).Payload.executionId;
            await recordStoppedRestore(stopEvent(executionArn, input), {
              history,
              notify: (e) => Promise.resolve(void notified.push(e)),
            });
          }
          // ...then the validation Lambda, still running, reaches its write.
          return next();
        },
      });
      expect(run.status).toBe('failed');
      expect(run.events.some((e) => e.state === 'Restore')).toBe(false);
      const running = await history.recent('demo', 'restore', 'running', 50);
      expect(running.filter((r) => r.executionArn === executionArn)).toEqual([]);
      const failed = await history.recent('demo', 'restore', 'failed', 50);
      const mine = failed.filter((r) => r.executionArn === executionArn);
      expect(mine).toHaveLength(1);
      expect(mine[0]).toMatchObject({
        id: restoreRecordId(executionArn),
        status: 'failed',
        requestedBy: 'oncall@example.com',
      });
      expect(mine[0]!.message).toContain('it was stopped before its validation had recorded it');
      expect(notified).toHaveLength(1);
      expect(notified[0]).toMatchObject({
        outcome: 'failed',
        error: 'Cofre.RestoreStopped',
        record: mine[0],
      });
    });

    it('a stop after the restore was recorded (while notifying) leaves the finished record as it is', async () => {
      const executionArn = 'arn:aws:states:us-east-1:000000000000:execution:cofre-restore:finished-1';
      const done = {
        id: restoreRecordId(executionArn),
        kind: 'restore' as const,
        database: 'demo',
        status: 'succeeded' as const,
        startedAt: new Date(Date.now() - 60_000).toISOString(),
        finishedAt: new Date().toISOString(),
        message: 'restored',
        requestedBy: 'console',
        executionArn,
      };
      await history.put(done);
      const stopped = await recordStoppedRestore(
        stopEvent(executionArn, { kind: 'database', database: 'demo' }),
        {
          history,
          notify: () => Promise.resolve(),
        },
      );
      expect(stopped.record).toBeUndefined();
      expect(
        (await history.recent('demo', 'restore', 'succeeded', 50)).find((r) => r.id === done.id),
      ).toEqual(done);
    });
  });
});

it('the file history (local runner) keeps the same rule: a finished record is never overwritten by putUnlessFinished', async () => {
  const dir = tempDir('rsr');
  try {
    const files = new FileHistoryStore(dir);
    const base = {
      id: 'restore-x',
      kind: 'restore' as const,
      database: 'demo',
      startedAt: '2026-01-01T00:00:00.000Z',
      requestedBy: 'console',
    };
    expect(await files.putUnlessFinished({ ...base, status: 'running' })).toBe(true);
    expect(await files.putUnlessFinished({ ...base, status: 'running', message: 'retried' })).toBe(true);
    expect(
      await files.putUnlessFinished({ ...base, status: 'failed', finishedAt: '2026-01-01T00:01:00.000Z' }),
    ).toBe(true);
    expect(await files.putUnlessFinished({ ...base, status: 'running' })).toBe(false);
    expect((await files.all())[0]).toMatchObject({ status: 'failed' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
