/**
 * `cofre local` end to end: the state machines, the restore test and the report, against the
 * machine's PostgreSQL (DATABASE_URL, a unique database) with a file vault; then `cofre verify
 * --deep` accepts what it wrote. And once on the embedded PostgreSQL, as `npm start` runs it.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { parseDatabaseUrl } from '../../../core/sources/connection';
import { keygen } from '../../../core/vault/crypto';
import { loadDemoData } from '../../../core/local/demo-data';
import { cofre, tempDir } from '../../helpers/cli';
import {
  createPostgresDatabase,
  describePostgres,
  withPostgresClient,
  PG_ADMIN_URL,
} from '../../helpers/databases';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describePostgres('cofre local', () => {
  it('backs up $DATABASE_URL through both state machines, restore-tests it, and leaves backups that verify --deep accepts', async () => {
    const db = await createPostgresDatabase('local_cmd');
    try {
      const rows = await loadDemoData(parseDatabaseUrl('postgres', db.url), { patientsPerTenant: 50 });
      const dir = tempDir('local-cmd');
      dirs.push(dir);
      const keyFile = path.join(dir, 'local.key');
      await keygen(keyFile);
      const vault = `file://${path.join(dir, 'vault')}`;
      const env = { ...process.env, DATABASE_URL: db.url };
      const started = Date.now();
      const run = await cofre(
        [
          'local',
          '--vault',
          vault,
          '--key-file',
          keyFile,
          '--tenants',
          'public.clinics,id,clinic_id',
          '--json',
        ],
        env,
      );
      const seconds = (Date.now() - started) / 1000;
      expect(run.code, run.stderr).toBe(0);
      const report = JSON.parse(run.stdout) as {
        ok: boolean;
        jobs: { job: string; status: string }[];
        restoreTest: { ok: boolean; rows: number; tables: number };
        source: { rows: Record<string, number> };
      };
      expect(report.ok).toBe(true);
      expect(report.jobs.map((j) => [j.job, j.status])).toEqual([
        ['backup-database', 'succeeded'],
        ['backup-tenants', 'succeeded'],
      ]);
      const total = Object.values(rows).reduce((a, b) => a + b, 0);
      expect(report.restoreTest).toMatchObject({ ok: true, tables: 5, rows: total });
      expect(report.source.rows).toEqual(rows);
      expect(run.stderr).toMatch(/result {10}OK/);
      expect(run.stderr).toMatch(/4 of 4 tenant\(s\) exported and verified/);
      console.log(`cofre local against DATABASE_URL: ${seconds.toFixed(1)} s`);
      // The scratch database of the restore test is gone.
      const left = await withPostgresClient(PG_ADMIN_URL, (c) =>
        c.query("SELECT datname FROM pg_database WHERE datname LIKE 'cofre_restore_test_%'"),
      );
      expect(left.rows).toEqual([]);

      const verify = await cofre([
        'verify',
        '--vault',
        vault,
        '--all',
        '--deep',
        '--key-file',
        keyFile,
        '--json',
      ]);
      expect(verify.code, verify.stderr).toBe(0);
      const verified = JSON.parse(verify.stdout) as {
        ok: boolean;
        reports: { status: string; deep: boolean }[];
      };
      expect(verified.ok).toBe(true);
      // One full backup and four tenant exports, all deep-verified.
      expect(verified.reports).toHaveLength(5);
      expect(verified.reports.every((r) => r.status === 'ok' && r.deep)).toBe(true);
    } finally {
      await db.drop();
    }
  }, 120_000);

  it('runs on an embedded PostgreSQL 15 with the demo dataset when DATABASE_URL is not set (npm start)', async () => {
    const { DATABASE_URL: _unset, ...env } = process.env;
    const started = Date.now();
    const run = await cofre(['local', '--json'], env);
    const seconds = (Date.now() - started) / 1000;
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout) as {
      ok: boolean;
      source: { kind: string; serverVersion: string };
      vault: { url: string };
      restoreTest: { ok: boolean };
    };
    expect(report).toMatchObject({
      ok: true,
      source: { kind: 'embedded' },
      vault: { url: 's3://cofre-local' },
      restoreTest: { ok: true },
    });
    expect(report.source.serverVersion).toMatch(/^15\./);
    console.log(`cofre local on embedded PostgreSQL: ${seconds.toFixed(1)} s`);
  }, 120_000);

  it('exits 2 with how to install pg_dump when it is not on PATH', async () => {
    const run = await cofre(['local'], { ...process.env, PATH: '/nonexistent' });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/pg_dump and pg_restore not found on PATH.*apt-get install postgresql-client/);
  });
});
