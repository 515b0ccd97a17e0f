/**
 * The restore-test state machine (state-machines/restore-test.asl.json) run locally against real
 * PostgreSQL and a file vault: backup-database first, then restore-test, whose Fargate task (in
 * process) restores the newest full backup into a scratch database on the same server, checks the
 * row counts against the manifest and drops the scratch database again.
 */
import { rmSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkFreshness, FRESHNESS_METRICS } from '../../../core/alerts/freshness';
import { formatAlert } from '../../../core/alerts/message';
import { parseDatabaseUrl } from '../../../core/sources/connection';
import { buildKeys, type Keys } from '../../../core/vault/crypto';
import { FileHistoryStore } from '../../../core/history/store';
import { DEMO_TENANT_MODEL, loadDemoData } from '../../../core/local/demo-data';
import { lockName } from '../../../core/aws/job';
import { runLocalJob, type LocalPipelineOptions } from '../../../core/local/state-machine-runner';
import type { BackupTaskOutput } from '../../../core/aws/task';
import {
  isScratchOf,
  runRestoreTest,
  scratchDatabaseName,
  serverIsRestoring,
} from '../../../core/verify/restore-test';
import { parseContainerJob } from '../../../core/aws/job';
import { prepare } from '../../../core/aws/steps';
import type { Vault } from '../../../core/vault';
import { NamedError } from '../../../core/aws/task-errors';
import { filesUnder } from '../../helpers/cli';
import {
  createPostgresDatabase,
  describePostgres,
  PG_ADMIN_URL,
  withPostgresClient,
  type TestDatabase,
} from '../../helpers/databases';
import { testKeys } from '../../helpers/engine';
import { localJobInput, localPipeline } from '../../helpers/orchestration';

describe('scratch database names', () => {
  it('are <db>_cofre_rt_<8 hex>, cut to 63 bytes, and recognised only in that form', () => {
    expect(scratchDatabaseName('clinic', '0a1b2c3d')).toBe('clinic_cofre_rt_0a1b2c3d');
    const long = scratchDatabaseName('x'.repeat(80), 'deadbeef');
    expect(Buffer.byteLength(long)).toBe(63);
    expect(long.endsWith('_cofre_rt_deadbeef')).toBe(true);
    // Multi-byte names are cut by bytes, never in the middle of a character.
    const accented = scratchDatabaseName('clínica_'.repeat(10), '00000000');
    expect(Buffer.byteLength(accented)).toBeLessThanOrEqual(63);
    expect(accented).not.toContain('\uFFFD');
    expect(isScratchOf('clinic', 'clinic_cofre_rt_0a1b2c3d')).toBe(true);
    expect(isScratchOf('clinic', 'clinic_cofre_rt_0a1b2c3')).toBe(false);
    expect(isScratchOf('clinic', 'clinic2_cofre_rt_0a1b2c3d')).toBe(false);
    expect(isScratchOf('clinic', 'clinic')).toBe(false);
    expect(() => scratchDatabaseName('clinic', 'xyz')).toThrow(/expected 8 hex digits, got "xyz"/);
  });
});

describePostgres('restore-test state machine (local execution)', () => {
  let db: TestDatabase;
  const dirs: string[] = [];
  let keys: Keys;
  let decryptKeys: Keys;
  let rows = 0;

  beforeAll(async () => {
    db = await createPostgresDatabase('rt');
    const counts = await loadDemoData(parseDatabaseUrl('postgres', db.url), { patientsPerTenant: 30 });
    rows = Object.values(counts).reduce((a, b) => a + b, 0);
    const k = await testKeys();
    keys = k.keys;
    decryptKeys = await buildKeys({ keyFile: k.keyFile }, 'decrypt');
  }, 60_000);
  afterAll(async () => {
    // Whatever a failed assertion left: the scratch databases of this test's database.
    for (const name of await scratchDatabases())
      await withPostgresClient(PG_ADMIN_URL, (c) =>
        c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
      );
    await db.drop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  /** Databases on the server named after this test's database and `_cofre_` (scratch and temporary restore copies). */
  async function scratchDatabases(): Promise<string[]> {
    return withPostgresClient(PG_ADMIN_URL, async (c) => {
      const { rows: found } = await c.query<{ datname: string }>(
        "SELECT datname FROM pg_database WHERE datname LIKE $1 || '\\_cofre\\_%' ORDER BY 1",
        [db.name.slice(0, 40)],
      );
      return found.map((r) => r.datname);
    });
  }

  const input = () => localJobInput(db.url);
  const setup = (extra: Partial<LocalPipelineOptions> = {}) =>
    localPipeline(db.url, { keys, decryptKeys }, dirs, extra);

  it('restores the newest full backup into a scratch database, checks it, drops it, records the RTO and feeds the freshness check', async () => {
    const { history, options } = setup();
    const backup = await runLocalJob('backup-database', input(), options);
    expect(backup.status, `${backup.error}: ${backup.cause}`).toBe('succeeded');
    const backupId = (backup.output?.dump as BackupTaskOutput).backups[0]!.backupId;

    const run = await runLocalJob('restore-test', input(), options);
    expect(run.status, `${run.error}: ${run.cause}`).toBe('succeeded');
    expect(run.events.some((e) => e.type === 'StateEntered' && e.state === 'RestoreTest')).toBe(true);

    const record = await history.latest('demo', 'restore-test');
    expect(record).toMatchObject({
      kind: 'restore-test',
      status: 'succeeded',
      database: 'demo',
      requestedBy: 'test',
    });
    expect(record!.message).toMatch(
      /^1 database\(s\) restored and row counts equal to the manifest; RTO \(restore\) [\d.]+ s \(\d+ ms\); /,
    );
    expect(record!.message).toContain(`${db.name}: backup ${backupId}`);
    expect(record!.message).toContain(`rows equal to the manifest, scratch database dropped`);
    expect(record!.message).toMatch(new RegExp(`5 tables and ${rows} rows`));
    expect(record!.message).toMatch(/restored into \S+_cofre_rt_[0-9a-f]{8} in /);
    expect(Date.parse(record!.finishedAt!)).toBeGreaterThan(Date.parse(record!.startedAt));
    expect(record!.bytes).toBeGreaterThan(0);
    // No scratch database (nor temporary restore copy) is left on the server.
    expect(await scratchDatabases()).toEqual([]);
    // The notification says what was tested.
    expect(run.notifications).toHaveLength(1);
    const event = run.notifications[0]!;
    expect(event).toMatchObject({ outcome: 'succeeded', job: 'restore-test', kind: 'restore-test' });
    const alert = formatAlert(event, { region: 'sa-east-1' });
    expect(alert.subject).toBe('[Cofre] OK restore test demo (sa-east-1)');
    expect(alert.body).toMatch(/Result: +1 database\(s\) restored/);
    expect(alert.body).toMatch(new RegExp(`Tables: +5 \\(${rows} rows\\)`));
    // The lock was released.
    expect(await history.acquire(lockName('restore-test', 'demo'), 'next', 60, new Date())).toEqual({
      acquired: true,
    });
    await history.release(lockName('restore-test', 'demo'), 'next');

    // The freshness check (the DaysSinceLastGoodRestoreTest alarm) now sees a good restore test.
    const { findings, metrics } = await checkFreshness(
      history,
      [{ database: 'demo', tenants: false }],
      new Date(),
    );
    const days = metrics.find((m) => m.name === FRESHNESS_METRICS.daysSinceLastGoodRestoreTest);
    expect(days?.value).toBeGreaterThanOrEqual(0);
    expect(days!.value).toBeLessThan(1);
    expect(findings.find((f) => f.check === 'restore-test')?.lastGood?.id).toBe(record!.id);
    expect(metrics.find((m) => m.name === FRESHNESS_METRICS.lastRestoreTestPassed)?.value).toBe(1);
    expect(metrics.find((m) => m.name === FRESHNESS_METRICS.lastRestoreTestSeconds)?.value).toBeGreaterThan(
      0,
    );
  }, 120_000);

  it('fails on a corrupted artifact, without retrying, records and notifies it, and leaves no scratch database', async () => {
    const { history, options, dir, metrics, vault } = setup();
    expect((await runLocalJob('backup-database', input(), options)).status).toBe('succeeded');
    // Flip one byte in the middle of the stored, encrypted dump: same size, different content.
    const artifact = filesUnder(path.join(dir, 'vault')).find((f) => f.endsWith('.pgdump.zst.enc'))!;
    const bytes = readFileSync(artifact);
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    writeFileSync(artifact, bytes);

    const run = await runLocalJob('restore-test', input(), options);
    expect(run.status).toBe('failed');
    expect(run.error).toBe('Cofre.IntegrityFailed');
    expect(run.cause).toMatch(
      new RegExp(
        `restore-test of demo failed: Cofre\\.IntegrityFailed: 1 of 1 restore test\\(s\\) of demo failed: ${db.name}: Cofre\\.IntegrityFailed: backup \\S+: artifact `,
      ),
    );
    expect(run.events.filter((e) => e.type === 'StateRetried' && e.state === 'RestoreTest')).toHaveLength(0);
    const record = await history.latest('demo', 'restore-test');
    expect(record).toMatchObject({ kind: 'restore-test', status: 'failed' });
    expect(record!.message).toMatch(/Cofre\.IntegrityFailed/);
    expect(run.notifications).toHaveLength(1);
    expect(run.notifications[0]).toMatchObject({
      outcome: 'failed',
      job: 'restore-test',
      error: 'Cofre.IntegrityFailed',
    });
    const alert = formatAlert(run.notifications[0]!, { region: 'sa-east-1', vaultUrl: vault.url });
    expect(alert.subject).toBe('[Cofre] FAILED restore test demo (sa-east-1)');
    expect(alert.attributes.severity).toBe('critical');
    expect(alert.body).toContain(`npx cofre verify --vault ${vault.url} --backup <backup id> --deep`);
    // A file vault's artifact is hashed before anything is created (an S3 vault's stored checksum is
    // compared); then, whichever trips first: the stream's SHA-256, or the AES-GCM authentication.
    expect(alert.body).toMatch(
      /pgdump\.zst\.enc (has SHA-256 [0-9a-f]{64}, the manifest records [0-9a-f]{64}; nothing was restored|.*the manifest records \d+ bytes with SHA-256|.*cannot be authenticated|.*is damaged)/,
    );
    expect(await scratchDatabases()).toEqual([]);
    // A failed restore test is not a failed backup.
    expect(metrics.flatMap((m) => m.data.map((d) => d.name))).not.toContain('BackupFailed');
    const { metrics: freshness } = await checkFreshness(
      history,
      [{ database: 'demo', tenants: false }],
      new Date(),
    );
    expect(freshness.find((m) => m.name === FRESHNESS_METRICS.lastRestoreTestPassed)?.value).toBe(0);
  }, 120_000);

  it('fails with Cofre.NothingToRestore when the vault has no full backup of the database', async () => {
    const { history, options } = setup();
    const run = await runLocalJob('restore-test', input(), options);
    expect(run.status).toBe('failed');
    expect(run.error).toBe('Cofre.NothingToRestore');
    expect(run.cause).toMatch(
      new RegExp(`no full backup of ${db.name} in file://\\S+/full/demo/ to restore`),
    );
    expect(run.events.filter((e) => e.type === 'StateRetried')).toHaveLength(0);
    expect(await history.latest('demo', 'restore-test')).toMatchObject({ status: 'failed' });
    expect(run.notifications[0]).toMatchObject({ outcome: 'failed', error: 'Cofre.NothingToRestore' });
    const alert = formatAlert(run.notifications[0]!, { region: 'sa-east-1' });
    expect(alert.body).toMatch(/No full backup of this database is in the vault/);
  }, 60_000);

  it('drops a scratch database an earlier, killed test left behind', async () => {
    const { options } = setup();
    expect((await runLocalJob('backup-database', input(), options)).status).toBe('succeeded');
    const leftover = scratchDatabaseName(db.name);
    await withPostgresClient(PG_ADMIN_URL, (c) => c.query(`CREATE DATABASE "${leftover}"`));
    expect(await scratchDatabases()).toEqual([leftover]);
    const run = await runLocalJob('restore-test', input(), options);
    expect(run.status, `${run.error}: ${run.cause}`).toBe('succeeded');
    expect(await scratchDatabases()).toEqual([]);
  }, 120_000);

  /** The container job prepare hands the task, for calling the task's core directly. */
  async function containerJob(history: FileHistoryStore, jobInput: ReturnType<typeof input> = input()) {
    const prepared = await prepare(
      {
        job: 'restore-test',
        input: jobInput,
        executionId: 'arn:aws:states:us-east-1:000000000000:execution:x:y',
      },
      { history },
    );
    if (prepared.skip) throw new Error('unexpected skip');
    return parseContainerJob(prepared.job);
  }

  it('with a tenant model, also restores one tenant in turn from its tenant backup into a scratch copy and compares content digests', async () => {
    const { history, options } = setup();
    const withTenants = localJobInput(db.url, { tenants: DEMO_TENANT_MODEL });
    expect((await runLocalJob('backup-database', withTenants, options)).status).toBe('succeeded');
    const tenants = await runLocalJob('backup-tenants', withTenants, options);
    expect(tenants.status, `${tenants.error}: ${tenants.cause}`).toBe('succeeded');
    const job = await containerJob(history, withTenants);
    const out = await runRestoreTest(job, {
      connection: await options.connect(job),
      vault: options.vault,
      keys: decryptKeys,
      now: () => new Date('2026-12-06T07:00:00Z'),
    });
    expect(out.restores).toHaveLength(1);
    expect(out.tenantRestore).toMatchObject({ database: db.name });
    expect(out.tenantRestore!.rows).toBeGreaterThan(0);
    expect(await scratchDatabases()).toEqual([]);
  }, 180_000);

  it('drops the scratch database when the task is stopped (SIGTERM) in the middle of the restore', async () => {
    const { history, options, vault } = setup();
    expect((await runLocalJob('backup-database', input(), options)).status).toBe('succeeded');
    const controller = new AbortController();
    let aborted = false;
    // The vault aborts the task (as SIGTERM does) once the restore has started reading the dump.
    const stopping: Vault = Object.assign(Object.create(vault) as Vault, {
      read: async (key: string, signal?: AbortSignal) => {
        const stream = await vault.read(key, signal);
        if (key.endsWith('.enc'))
          stream.once('data', () => {
            aborted = true;
            controller.abort('SIGTERM');
          });
        return stream;
      },
    });
    const connection = await options.connect(await containerJob(history));
    const error = await runRestoreTest(await containerJob(history), {
      connection,
      vault: stopping,
      keys: decryptKeys,
      signal: controller.signal,
    }).catch((e: unknown) => e);
    expect(aborted).toBe(true);
    expect(error).toBeInstanceOf(NamedError);
    expect((error as NamedError).name).toBe('Cofre.Cancelled');
    expect((error as NamedError).message).toMatch(
      new RegExp(`${db.name}: Cofre\\.Cancelled: backup \\S+: cancelled`),
    );
    expect(await scratchDatabases()).toEqual([]);
  }, 60_000);

  it('logs its byte progress (bytes of the total, rate, elapsed) from the shared progress module', async () => {
    const { history, options, vault } = setup();
    expect((await runLocalJob('backup-database', input(), options)).status).toBe('succeeded');
    const connection = await options.connect(await containerJob(history));
    const logs: string[] = [];
    await runRestoreTest(await containerJob(history), {
      connection,
      vault,
      keys: decryptKeys,
      log: (l) => logs.push(l),
    });
    expect(logs).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^restore test of ${db.name}: [\\d.]+ (B|KiB|MiB) of [\\d.]+ (B|KiB|MiB) \\(100 %\\) read, [\\d.]+ MiB/s, 00:\\d\\d$`,
        ),
      ),
    );
  }, 60_000);

  it('knows when the server is still working on a restore (progress without bytes read, for the heartbeat)', async () => {
    const connection = parseDatabaseUrl('postgres', db.url);
    const scratch = scratchDatabaseName(db.name);
    expect(await serverIsRestoring(connection, scratch)).toBe(false);
    await withPostgresClient(PG_ADMIN_URL, (c) => c.query(`CREATE DATABASE "${scratch}"`));
    try {
      const u = new URL(db.url);
      u.pathname = `/${scratch}`;
      // A statement running in the scratch database, as pg_restore's index builds do.
      const busy = withPostgresClient(u.toString(), (c) => c.query('SELECT pg_sleep(1.5)'));
      let seen = false;
      for (let i = 0; i < 20 && !seen; i++) {
        seen = await serverIsRestoring(connection, scratch);
        if (!seen) await new Promise((r) => setTimeout(r, 50));
      }
      expect(seen).toBe(true);
      await busy;
      expect(await serverIsRestoring(connection, scratch)).toBe(false);
      // Another database's work does not count.
      expect(await serverIsRestoring(connection, scratchDatabaseName(`${db.name}x`))).toBe(false);
    } finally {
      await withPostgresClient(PG_ADMIN_URL, (c) =>
        c.query(`DROP DATABASE IF EXISTS "${scratch}" WITH (FORCE)`),
      );
    }
  }, 60_000);
});
