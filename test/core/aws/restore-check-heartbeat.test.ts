/**
 * The post-restore check heartbeats through a count longer than the state's HeartbeatSeconds: while
 * a count runs, the task asks the server (another session) whether the counting session is working,
 * and each yes is progress that the heartbeat timer turns into SendTaskHeartbeat. A count that is
 * stuck waiting for a lock is not progress: the heartbeat stops and Step Functions fails the state.
 *
 * Real PostgreSQL: the slow count is a real one (the table replaced by a view that sleeps with
 * `pg_sleep`, 1.5 s), the stuck count a real lock wait; the task's heartbeat interval and the probe
 * interval are 100 ms instead of 60 s (Step Functions: HeartbeatSeconds 300).
 */
import { rmSync } from 'node:fs';
import { SendTaskHeartbeatCommand, SendTaskSuccessCommand, SFNClient } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { jobDatabaseSchema, type ContainerJob } from '../../../core/aws/job';
import { runReportedTask, type BackupTaskOutput } from '../../../core/aws/task';
import { runLocalJob, type LocalPipelineOptions } from '../../../core/local/state-machine-runner';
import { parseDatabaseUrl } from '../../../core/sources/connection';
import { DEFAULT_RETENTION } from '../../../core/policy/retention';
import { buildKeys, type Keys } from '../../../core/vault/crypto';
import {
  createPostgresDatabase,
  describePostgres,
  withPostgresClient,
  type TestDatabase,
} from '../../helpers/databases';
import { testKeys } from '../../helpers/engine';
import { localJobInput, localPipeline } from '../../helpers/orchestration';

const INTERVAL_MS = 100;

describePostgres('post-restore check: heartbeats during a long count, none during a stuck one', () => {
  let db: TestDatabase;
  const dirs: string[] = [];
  let options: LocalPipelineOptions;
  let decryptKeys: Keys;
  let job: ContainerJob;
  const sfn = mockClient(SFNClient);
  let beats: number[] = [];

  beforeAll(async () => {
    db = await createPostgresDatabase('rchb');
    await withPostgresClient(db.url, (c) =>
      c.query(`CREATE TABLE slow (id int); INSERT INTO slow SELECT generate_series(1, 40);
               CREATE TABLE locked (id int); INSERT INTO locked SELECT generate_series(1, 7);
               CREATE TABLE quick (id int); INSERT INTO quick VALUES (1), (2)`),
    );
    const k = await testKeys();
    decryptKeys = await buildKeys({ keyFile: k.keyFile }, 'decrypt');
    options = localPipeline(db.url, { keys: k.keys, decryptKeys }, dirs).options;
    const input = localJobInput(db.url);
    const backup = await runLocalJob('backup-database', input, options);
    expect(backup.status, `${backup.error}: ${backup.cause}`).toBe('succeeded');
    const b = (backup.output?.dump as BackupTaskOutput).backups[0]!;
    job = {
      job: 'restore',
      runId: 'rchb',
      startedAt: new Date().toISOString(),
      database: jobDatabaseSchema.parse(input.database),
      requestedBy: 'test',
      timeZone: 'UTC',
      retention: DEFAULT_RETENTION,
      restore: {
        kind: 'database',
        backupId: b.backupId,
        backupKind: 'full',
        backupStartedAt: new Date().toISOString(),
        sourceDatabase: db.name,
        targetDatabase: db.name,
        targetIs: 'new',
        replace: false,
      },
    };
    // The table becomes a view with the same rows that takes 1.5 s to count (a real, slow count).
    await withPostgresClient(db.url, (c) =>
      c.query(`ALTER TABLE slow RENAME TO slow_rows;
               CREATE VIEW slow AS SELECT id FROM slow_rows, pg_sleep(1.5)`),
    );
  }, 120_000);

  afterAll(async () => {
    sfn.restore();
    await db.drop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  beforeEach(() => {
    beats = [];
    sfn.reset();
    sfn.on(SendTaskHeartbeatCommand).callsFake(() => {
      beats.push(Date.now());
      return {};
    });
    sfn.on(SendTaskSuccessCommand).resolves({});
  });

  const check = () =>
    runReportedTask({
      sfn: new SFNClient({ region: 'us-east-1' }),
      token: 'token',
      command: 'restore-check',
      job: { ...job, database: { ...job.database } },
      deps: {
        connection: parseDatabaseUrl('postgres', db.url),
        vault: options.vault,
        keys: decryptKeys,
        probeIntervalMs: INTERVAL_MS,
      },
      heartbeatIntervalMs: INTERVAL_MS,
    });

  it('a 1.5 s count (15 heartbeat intervals) keeps heartbeating while the server works on it', async () => {
    const started = Date.now();
    const code = await check();
    const elapsed = Date.now() - started;
    expect(code, JSON.stringify(sfn.calls().map((c) => c.args[0].input))).toBe(0);
    expect(elapsed).toBeGreaterThanOrEqual(1500);
    // Without the probe this table's count would give one progress tick, at its end: at most one beat.
    expect(beats.length).toBeGreaterThanOrEqual(5);
    // No gap between beats anywhere near HeartbeatSeconds' share of the run (here: 10 intervals).
    const gaps = beats.slice(1).map((t, i) => t - beats[i]!);
    expect(Math.max(...gaps)).toBeLessThan(10 * INTERVAL_MS);
    const output = JSON.parse(String(sfn.commandCalls(SendTaskSuccessCommand)[0]!.args[0].input.output)) as {
      rowsCompared: number;
    };
    expect(output.rowsCompared).toBe(40 + 7 + 2);
  });

  it('a count stuck on a lock sends no heartbeat while it waits (so HeartbeatSeconds fails the state)', async () => {
    let released = 0;
    let locked!: () => void;
    const holding = new Promise<void>((resolve) => (locked = resolve));
    // Another session holds the table for 1.5 s; the check's count waits for it.
    const holder = withPostgresClient(db.url, async (c) => {
      await c.query('BEGIN');
      await c.query('LOCK TABLE locked IN ACCESS EXCLUSIVE MODE');
      locked();
      await new Promise((r) => setTimeout(r, 1500));
      released = Date.now();
      await c.query('COMMIT');
    });
    await holding;
    const started = Date.now();
    const code = await check();
    await holder;
    expect(code).toBe(0);
    expect(released).toBeGreaterThan(started + 1000);
    // Beats only before the count began waiting (the connection's first progress) or after the lock
    // was released: none in the 1 s before the release.
    expect(beats.filter((t) => t > started + 3 * INTERVAL_MS && t < released - 2 * INTERVAL_MS)).toEqual([]);
  });
});
