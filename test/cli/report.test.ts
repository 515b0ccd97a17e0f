import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MonthlyReport } from '../../core/alerts/report';
import { cofre, tempDir } from '../helpers/cli';
import { createPostgresDatabase, describePostgres, type TestDatabase } from '../helpers/databases';
import { testKeys } from '../helpers/engine';

describe('cofre report: bad usage exits 2', () => {
  it.each([
    [
      ['report', '--month', '2026-13', '--vault', 'file:///tmp/x'],
      /--month: expected a month as YYYY-MM \(e\.g\. 2026-10\), got "2026-13"/,
    ],
    [['report', '--month', 'last', '--vault', 'file:///tmp/x'], /--month: expected a month as YYYY-MM/],
    [['report', '--month', '2026-10'], /--vault VAULT or --history-table NAME: expected exactly one/],
    [
      ['report', '--month', '2026-10', '--vault', 'file:///tmp/x', '--history-table', 't'],
      /--vault VAULT or --history-table NAME: expected exactly one/,
    ],
    [['report', '--vault', 'file:///tmp/x'], /required option '--month <YYYY-MM>' not specified/],
  ])('%j', async (args, message) => {
    const result = await cofre(args);
    expect(result.stderr).toMatch(message);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
  });
});

describePostgres('cofre report on a local vault with real backups', () => {
  let db: TestDatabase;
  let vault: string;
  const backups: { backupId: string; storedBytes: number; rawBytes: number }[] = [];
  beforeAll(async () => {
    db = await createPostgresDatabase('report');
    const c = new Client({ connectionString: db.url });
    await c.connect();
    await c.query(
      `CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 3000) g`,
    );
    await c.end();
    const { keyFile } = await testKeys();
    vault = `file://${tempDir('report')}`;
    for (let i = 0; i < 2; i++) {
      const r = await cofre([
        'backup',
        '--engine',
        'postgres',
        '--url',
        db.url,
        '--vault',
        vault,
        '--key-file',
        keyFile,
        '--id',
        'clinic',
        '--json',
      ]);
      expect(r.code, r.stderr).toBe(0);
      backups.push(...(JSON.parse(r.stdout) as { backups: typeof backups }).backups);
    }
  });
  afterAll(async () => {
    await db.drop();
  });

  it('reports this month’s backups: runs, success, average size, compression and storage cost (--json)', async () => {
    // the month the backups were made in (their ids start with the UTC time)
    const month = `${backups[0]!.backupId.slice(0, 4)}-${backups[0]!.backupId.slice(4, 6)}`;
    const result = await cofre(['report', '--month', month, '--vault', vault, '--json']);
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as MonthlyReport;
    const stored = backups.reduce((n, b) => n + b.storedBytes, 0);
    const raw = backups.reduce((n, b) => n + b.rawBytes, 0);
    expect(report.groups).toEqual([
      expect.objectContaining({
        database: 'clinic',
        kind: 'full',
        runs: 2,
        succeeded: 2,
        failed: 0,
        successRatePercent: 100,
        averageStoredBytes: Math.round(stored / 2),
        compressionSavedBytes: raw - stored,
        compressionRatio: Math.round((raw / stored) * 100) / 100,
      }),
    ]);
    expect(report.groups[0]!.compressionRatio).toBeGreaterThan(1);
    expect(report.storage).toMatchObject({
      currency: 'USD',
      totalBytes: stored,
      lines: [{ storageClass: 'STANDARD', bytes: stored, pricePerGbMonth: 0.0405 }],
    });
    expect(report.notes.join(' ')).toMatch(/only backups that succeeded/);

    const text = await cofre(['report', '--month', month, '--vault', vault]);
    expect(text.stdout).toMatch(new RegExp(`^Cofre monthly report for ${month} `));
    expect(text.stdout).toMatch(/clinic full backups\s+2\s+2\s+0\s+0\s+100 %/);
  });

  it('a month without backups reports none', async () => {
    const result = await cofre(['report', '--month', '2001-01', '--vault', vault]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/Runs: 0, succeeded: 0 \(0 %\)\n\nNo backups ran this month\./);
  });
});

describePostgres('cofre report groups a vault by backup kind', () => {
  let db: TestDatabase;
  let vault: string;
  let month = '';
  beforeAll(async () => {
    db = await createPostgresDatabase('report_kinds');
    const c = new Client({ connectionString: db.url });
    await c.connect();
    await c.query(
      `CREATE TABLE tenants (id int PRIMARY KEY);
       CREATE TABLE notes (id int PRIMARY KEY, tenant_id int NOT NULL REFERENCES tenants (id), v text);
       INSERT INTO tenants VALUES (1), (2);
       INSERT INTO notes SELECT g, 1 + g % 2, md5(g::text) FROM generate_series(1, 200) g`,
    );
    await c.end();
    const { keyFile } = await testKeys();
    vault = `file://${tempDir('report-kinds')}`;
    const backup = async (...extra: string[]) => {
      const r = await cofre([
        'backup',
        '--engine',
        'postgres',
        '--url',
        db.url,
        '--vault',
        vault,
        '--key-file',
        keyFile,
        '--id',
        'clinic',
        '--json',
        ...extra,
      ]);
      expect(r.code, r.stderr).toBe(0);
      const ids = (JSON.parse(r.stdout) as { backups: { backupId: string }[] }).backups;
      month ||= `${ids[0]!.backupId.slice(0, 4)}-${ids[0]!.backupId.slice(4, 6)}`;
    };
    await backup();
    await backup('--globals');
    await backup(
      '--all-tenants',
      '--tenant-table',
      'tenants',
      '--key-column',
      'id',
      '--tenant-column',
      'tenant_id',
    );
  });
  afterAll(async () => {
    await db.drop();
  });

  it('full, server-globals and tenant backups are separate groups, in JSON and in text', async () => {
    const result = await cofre(['report', '--month', month, '--vault', vault, '--json']);
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as MonthlyReport;
    expect(report.groups.map((g) => [g.database, g.kind, g.runs])).toEqual([
      ['clinic', 'full', 2],
      ['clinic', 'globals', 1],
      ['clinic', 'tenant', 2],
    ]);
    expect(report.totals.runs).toBe(5);
    const text = await cofre(['report', '--month', month, '--vault', vault]);
    expect(text.stdout).toMatch(/clinic full backups\s+2\s+2\s/);
    expect(text.stdout).toMatch(/clinic server globals\s+1\s+1\s/);
    expect(text.stdout).toMatch(/clinic tenant exports\s+2\s+2\s/);
  });
});
