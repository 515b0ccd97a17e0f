/**
 * The state machines of state-machines/ run locally (aws-local-stepfunctions) against real
 * PostgreSQL and a file vault: every Task mapped to the same step and task code as in AWS.
 */
import { appendFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseDatabaseUrl } from '../../../core/sources/connection';
import { buildKeys, type Keys } from '../../../core/vault/crypto';
import { DEMO_TENANT_MODEL, DEMO_TENANTS, loadDemoData } from '../../../core/local/demo-data';
import { NamedError } from '../../../core/aws/task-errors';
import { lockName } from '../../../core/aws/job';
import { runLocalJob, type LocalPipelineOptions } from '../../../core/local/state-machine-runner';
import { filesUnder } from '../../helpers/cli';
import { createPostgresDatabase, describePostgres, type TestDatabase } from '../../helpers/databases';
import { testKeys } from '../../helpers/engine';
import { localJobInput, localPipeline } from '../../helpers/orchestration';

describePostgres('local state machine executions', () => {
  let db: TestDatabase;
  const dirs: string[] = [];
  let keys: Keys;
  let decryptKeys: Keys;

  beforeAll(async () => {
    db = await createPostgresDatabase('orchestration');
    await loadDemoData(parseDatabaseUrl('postgres', db.url), { patientsPerTenant: 40 });
    const k = await testKeys();
    keys = k.keys;
    decryptKeys = await buildKeys({ keyFile: k.keyFile }, 'decrypt');
  }, 60_000);
  afterAll(async () => {
    await db.drop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const input = (overrides: { databases?: string[]; tenantBatchSize?: number } = {}) =>
    localJobInput(db.url, { ...overrides, tenants: DEMO_TENANT_MODEL });
  const setup = (extra: Partial<LocalPipelineOptions> = {}) =>
    localPipeline(db.url, { keys, decryptKeys }, dirs, extra);

  it('backs up, verifies, records and notifies: a succeeded run', async () => {
    const { history, metrics, options, vault } = setup();
    const run = await runLocalJob('backup-database', input(), options);
    expect(run.status, `${run.error}: ${run.cause}`).toBe('succeeded');
    const record = await history.latest('demo', 'full');
    expect(record).toMatchObject({
      status: 'succeeded',
      kind: 'full',
      database: 'demo',
      requestedBy: 'test',
    });
    expect(record!.bytes).toBeGreaterThan(0);
    expect(record!.tier).toBe('yearly'); // the first backup of the year
    expect(record!.message).toMatch(/1 backup\(s\) verified/);
    expect(run.notifications.map((n) => n.outcome)).toEqual(['succeeded']);
    expect(metrics[0]!.data.map((d) => d.name)).toEqual(
      expect.arrayContaining([
        'BackupSucceeded',
        'BackupSizeBytes',
        'BackupDurationSeconds',
        'CompressionRatio',
      ]),
    );
    expect(filesUnder(vault.url.replace('file://', '')).some((f) => f.endsWith('.pgdump.zst.enc'))).toBe(
      true,
    );
    // A second run: the tier is now daily-or-finer and the size is compared with the first.
    const again = await runLocalJob('backup-database', input(), options);
    expect(again.status).toBe('succeeded');
    expect(metrics[1]!.data.find((d) => d.name === 'BackupSizeDeviationPercent')).toBeDefined();
    expect((await history.recent('demo', 'full', 'succeeded', 5)).length).toBe(2);
  }, 60_000);

  it('retries a dump that Step Functions timed out, then succeeds', async () => {
    let attempts = 0;
    const { history, options } = setup({
      around: async (state, _input, run) => {
        if (state === 'Dump' && ++attempts === 1)
          throw new NamedError('States.HeartbeatTimeout', 'no heartbeat for 300 s (simulated hung task)');
        return run();
      },
    });
    const run = await runLocalJob('backup-database', input(), options);
    expect(run.status).toBe('succeeded');
    expect(attempts).toBe(2);
    expect(run.events.filter((e) => e.type === 'StateRetried' && e.state === 'Dump')).toHaveLength(1);
    expect((await history.latest('demo', 'full'))?.status).toBe('succeeded');
  }, 60_000);

  it('records a dump that keeps failing as failed, notifies, and fails with a clear cause', async () => {
    const { history, metrics, options } = setup();
    const run = await runLocalJob(
      'backup-database',
      input({ databases: [db.name, 'cofre_no_such_db'] }),
      options,
    );
    expect(run.status).toBe('failed');
    expect(run.error).toBe('Cofre.DumpFailed');
    expect(run.cause).toMatch(
      /backup-database of demo failed: Cofre\.DumpFailed: 1 of 2 backup\(s\) of demo failed: cofre_no_such_db/,
    );
    // 1 attempt + 2 retries, as the ASL's Retry says.
    expect(run.events.filter((e) => e.type === 'StateRetried' && e.state === 'Dump')).toHaveLength(2);
    const record = await history.latest('demo', 'full');
    expect(record).toMatchObject({ status: 'failed' });
    expect(record!.message).toMatch(/cofre_no_such_db/);
    expect(run.notifications).toHaveLength(1);
    expect(run.notifications[0]).toMatchObject({
      outcome: 'failed',
      error: 'Cofre.DumpFailed',
      database: 'demo',
    });
    expect(metrics.flatMap((m) => m.data.map((d) => d.name))).toEqual(['BackupFailed']);
    // The lock was released: the next run is not skipped.
    expect(await history.acquire(lockName('backup-database', 'demo'), 'next', 60, new Date())).toEqual({
      acquired: true,
    });
  }, 60_000);

  it('fails the run when the new backup does not match its manifest', async () => {
    let vaultDir = '';
    const { history, options, dir } = setup({
      around: async (state, _input, run) => {
        const out = await run();
        if (state === 'Dump') {
          const artifact = filesUnder(vaultDir).find((f) => f.endsWith('.pgdump.zst.enc'))!;
          appendFileSync(artifact, Buffer.from([0])); // one byte more than the manifest says
        }
        return out;
      },
    });
    vaultDir = path.join(dir, 'vault');
    const run = await runLocalJob('backup-database', input(), options);
    expect(run.status).toBe('failed');
    expect(run.error).toBe('Cofre.VerifyFailed');
    expect(run.cause).toMatch(/bytes, the manifest records/);
    expect((await history.latest('demo', 'full'))?.status).toBe('failed');
    expect(run.notifications[0]).toMatchObject({ outcome: 'failed', error: 'Cofre.VerifyFailed' });
  }, 60_000);

  it('skips, records and notifies a run while the same job for the same database is running', async () => {
    const { history, options, vault } = setup();
    await history.acquire(
      lockName('backup-database', 'demo'),
      'arn:aws:states:…:execution:earlier',
      3600,
      new Date(),
    );
    const run = await runLocalJob('backup-database', input(), options);
    expect(run.status).toBe('succeeded');
    expect(run.events.some((e) => e.type === 'StateEntered' && e.state === 'Skipped')).toBe(true);
    expect(run.events.some((e) => e.state === 'Dump')).toBe(false);
    const record = await history.latest('demo', 'full');
    expect(record).toMatchObject({ status: 'skipped' });
    expect(record!.message).toMatch(/still running \(execution arn:aws:states:…:execution:earlier/);
    expect(run.notifications.map((n) => n.outcome)).toEqual(['skipped']);
    expect(filesUnder(vault.url.replace('file://', ''))).toEqual([]);
  }, 60_000);
  it('exports every tenant in batches (Map), verifies each export, and records the run', async () => {
    const { history, options } = setup();
    const run = await runLocalJob('backup-tenants', input({ tenantBatchSize: 3 }), options);
    expect(run.status, `${run.error}: ${run.cause}`).toBe('succeeded');
    // 4 tenants in batches of 3: two Fargate tasks, not four.
    expect(run.events.filter((e) => e.type === 'StateEntered' && e.state === 'ExportBatch')).toHaveLength(2);
    const record = await history.latest('demo', 'tenant');
    expect(record).toMatchObject({ status: 'succeeded', tier: 'tenant' });
    expect(record!.message).toBe(
      `${DEMO_TENANTS.length} of ${DEMO_TENANTS.length} tenant(s) exported and verified in 2 batch(es)`,
    );
    expect(run.notifications[0]).toMatchObject({
      outcome: 'succeeded',
      job: 'backup-tenants',
      kind: 'tenant',
    });
  }, 60_000);

  it('names the tenant whose export failed, after its retries, and fails the run', async () => {
    const { history, options } = setup({
      around: async (state, taskInput, run) => {
        if (state === 'ExportBatch' && JSON.stringify(taskInput).includes('odonto-bh'))
          throw new NamedError('Cofre.DumpFailed', 'the export task of odonto-bh crashed (simulated)');
        return run();
      },
    });
    const run = await runLocalJob('backup-tenants', input({ tenantBatchSize: 1 }), options);
    expect(run.status).toBe('failed');
    expect(run.error).toBe('Cofre.TenantsFailed');
    expect(run.cause).toMatch(
      /1 of 4 tenant\(s\) failed: odonto-bh \(Cofre\.DumpFailed: the export task of odonto-bh crashed/,
    );
    expect(run.events.filter((e) => e.type === 'StateRetried' && e.state === 'ExportBatch')).toHaveLength(2);
    expect((await history.latest('demo', 'tenant'))?.status).toBe('failed');
    expect(run.notifications[0]).toMatchObject({ outcome: 'failed', failedTenants: ['odonto-bh'] });
  }, 60_000);

  it('deep-verifies the recent backups (verify-integrity), and fails on a damaged one', async () => {
    const { options, dir } = setup();
    expect((await runLocalJob('backup-database', input(), options)).status).toBe('succeeded');
    const ok = await runLocalJob('verify-integrity', input(), options);
    expect(ok.status, `${ok.error}: ${ok.cause}`).toBe('succeeded');
    expect(ok.notifications[0]).toMatchObject({ outcome: 'succeeded', job: 'verify-integrity' });
    const artifact = filesUnder(path.join(dir, 'vault')).find((f) => f.endsWith('.pgdump.zst.enc'))!;
    appendFileSync(artifact, Buffer.from([0]));
    const bad = await runLocalJob('verify-integrity', input(), options);
    expect(bad.status).toBe('failed');
    expect(bad.error).toBe('Cofre.IntegrityFailed');
    expect(bad.cause).toMatch(/bytes, the manifest records/);
  }, 60_000);
});
