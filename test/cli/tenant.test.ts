import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseDatabaseUrl } from '../../core/sources/connection';
import { discoverTenantPlan } from '../../core/tenants/plan';
import { cofre, filesUnder, tempDir } from '../helpers/cli';
import {
  createPostgresDatabase,
  describePostgres,
  tableChecksums,
  withPostgresClient,
  type TableChecksum,
  type TestDatabase,
} from '../helpers/databases';
import { testKeys } from '../helpers/engine';
import { loadTenantFixture, TENANT_MODEL, tenantChecksums } from '../helpers/tenant-fixture';

const MODEL_ARGS = ['--tenant-table', 'tenants', '--key-column', 'id', '--tenant-column', 'tenant_id'];

describePostgres('cofre backup --tenant / restore --tenant (CLI)', () => {
  let db: TestDatabase;
  let vaultUrl: string;
  let vaultDir: string;
  let keyFile: string;
  let original: Record<string, TableChecksum>;

  beforeAll(async () => {
    db = await createPostgresDatabase('tenant_cli');
    await loadTenantFixture('postgres', db.url, { tenants: 10 });
    original = await tableChecksums('postgres', db.url);
    vaultDir = tempDir('tenant-cli');
    vaultUrl = `file://${vaultDir}`;
    keyFile = (await testKeys()).keyFile;
  }, 60_000);
  afterAll(async () => {
    await db.drop();
  });

  const backupArgs = () => [
    'backup',
    '--engine',
    'postgres',
    '--url',
    db.url,
    '--vault',
    vaultUrl,
    '--key-file',
    keyFile,
  ];

  it('rejects bad per-tenant usage with exit 2, naming the option, and writes nothing', async () => {
    const cases: [string[], RegExp][] = [
      [[...backupArgs(), '--tenant', '3'], /--tenant-table, --key-column and --tenant-column: needed/],
      [
        [...backupArgs(), '--tenant', '3', '--all-tenants', ...MODEL_ARGS],
        /--tenant and --all-tenants: choose one/,
      ],
      [[...backupArgs(), '--tenant', '3', '--tenant-table', 'tenants'], /give all three, or none/],
      [
        [...backupArgs(), '--tenant', '3', '--databases', 'all', ...MODEL_ARGS],
        /--databases: not with --tenant/,
      ],
      [[...backupArgs(), '--tenant', '99', ...MODEL_ARGS], /--tenant: no tenant "99"/],
      [
        [...backupArgs(), '--all-tenants', '--concurrency', '0', ...MODEL_ARGS],
        /--concurrency: expected a whole number from 1 to 32/,
      ],
      [
        [
          ...backupArgs(),
          '--tenant',
          '3',
          '--tenant-table',
          'nope',
          '--key-column',
          'id',
          '--tenant-column',
          'tenant_id',
        ],
        /nope/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = await cofre(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    expect(filesUnder(vaultDir)).toEqual([]);
  }, 60_000);

  it('backs up one tenant, lists it, dry-runs and restores it after damage', async () => {
    const backup = await cofre([...backupArgs(), '--tenant', '3', ...MODEL_ARGS, '--json']);
    expect(backup.code, backup.stderr).toBe(0);
    const summary = JSON.parse(backup.stdout) as {
      ok: boolean;
      backups: { backupId: string; tenant: string }[];
    };
    expect(summary.ok).toBe(true);
    expect(summary.backups.map((b) => b.tenant)).toEqual(['3']);
    const backupId = summary.backups[0]!.backupId;

    const list = await cofre(['list', '--vault', vaultUrl, '--json']);
    const listed = JSON.parse(list.stdout) as {
      backups: { backupId: string; kind: string; tenant?: string }[];
    };
    expect(listed.backups).toEqual([expect.objectContaining({ backupId, kind: 'tenant', tenant: '3' })]);
    expect((await cofre(['list', '--vault', vaultUrl])).stdout).toMatch(/\(tenant 3\)/);
    expect(
      (await cofre(['verify', '--vault', vaultUrl, '--backup', backupId, '--deep', '--key-file', keyFile]))
        .code,
    ).toBe(0);

    await withPostgresClient(db.url, (c) =>
      c.query(`UPDATE patients SET notes = 'danificado' WHERE tenant_id = 3`),
    );
    const damaged = await tableChecksums('postgres', db.url);
    const restoreArgs = [
      'restore',
      '--vault',
      vaultUrl,
      '--backup',
      backupId,
      '--target-url',
      db.url,
      '--key-file',
      keyFile,
    ];

    const dry = await cofre([...restoreArgs, '--tenant', '3', '--dry-run', '--json']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stderr).toMatch(/DRY RUN tenant 3 .* nothing was changed/);
    expect(JSON.parse(dry.stdout)).toMatchObject({ mode: 'dry-run', tenant: '3', from: 'tenant-backup' });
    expect(await tableChecksums('postgres', db.url)).toEqual(damaged);

    expect((await cofre([...restoreArgs, '--dry-run'])).code).toBe(2);
    expect((await cofre([...restoreArgs, '--tenant', '3', '--table', 'patients'])).code).toBe(2);
    expect((await cofre([...restoreArgs, '--tenant', '4'])).stderr).toMatch(/holds tenant "3", not "4"/);

    const restored = await cofre([...restoreArgs, '--tenant', '3', '--json']);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stderr).toMatch(/OK restored tenant 3/);
    expect(await tableChecksums('postgres', db.url)).toEqual(original);
  }, 60_000);

  it("exports a tenant backup whose instructions load the tenant's rows with psql alone", async () => {
    const backup = await cofre([...backupArgs(), '--tenant', '5', ...MODEL_ARGS, '--json']);
    expect(backup.code, backup.stderr).toBe(0);
    const backupId = (JSON.parse(backup.stdout) as { backups: { backupId: string }[] }).backups[0]!.backupId;
    const out = path.join(tempDir('tenant-export'), 'copy');
    expect((await cofre(['export', '--vault', vaultUrl, '--backup', backupId, '--to', out])).code).toBe(0);
    const instructions = readFileSync(path.join(out, 'RESTORE_INSTRUCTIONS.md'), 'utf8');
    expect(instructions).toMatch(/tenant 5's rows only/);
    expect(instructions).toMatch(/--tenant 5 --dry-run/);
    const plain = path.join(tempDir('tenant-plain'), 'tenant5.sql');
    expect(
      (
        await cofre([
          'decrypt',
          '--vault',
          `file://${out}`,
          '--backup',
          backupId,
          '--key-file',
          keyFile,
          '--out',
          plain,
        ])
      ).code,
    ).toBe(0);
    // The standard-tools steps of the instructions, with the test server's settings.
    const copy = await createPostgresDatabase('tenant_plain');
    try {
      const env = { ...process.env, PGHOST: '127.0.0.1', PGUSER: 'postgres', PGPORT: '5432' };
      const sh = (script: string) =>
        execFileSync('/bin/bash', ['-o', 'pipefail', '-c', script], { env, stdio: 'pipe' });
      sh(
        `pg_dump --schema-only --no-owner --no-acl ${db.name} | psql -q -v ON_ERROR_STOP=1 --dbname=${copy.name}`,
      );
      sh(
        `pg_dump --data-only --table=public.specialties ${db.name} | psql -q -v ON_ERROR_STOP=1 --dbname=${copy.name}`,
      );
      sh(`psql -q -v ON_ERROR_STOP=1 --single-transaction --dbname=${copy.name} --file=${plain}`);
      const plan = await discoverTenantPlan(parseDatabaseUrl('postgres', db.url), TENANT_MODEL);
      expect(await tenantChecksums('postgres', copy.url, plan.tables, '5')).toEqual(
        await tenantChecksums('postgres', db.url, plan.tables, '5'),
      );
    } finally {
      await copy.drop();
    }
  }, 60_000);

  it('--all-tenants backs up every tenant, one backup each', async () => {
    const r = await cofre([...backupArgs(), '--all-tenants', '--concurrency', '3', ...MODEL_ARGS, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as { backups: { tenant: string }[] };
    expect(summary.backups.map((b) => b.tenant).sort((a, b) => Number(a) - Number(b))).toEqual(
      Array.from({ length: 10 }, (_, i) => String(i + 1)),
    );
  }, 60_000);

  it('tenant plan --check proves coverage (exit 0); a row no tenant owns is named, exit 3, and --all-tenants refuses with exit 2 unless acknowledged', async () => {
    const plan = ['tenant', 'plan', '--engine', 'postgres', '--url', db.url, ...MODEL_ARGS, '--check'];
    const ok = await cofre(plan);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/OK: every row of the tenant tables belongs to exactly one tenant/);
    await withPostgresClient(db.url, (c) =>
      c.query('ALTER TABLE patients ALTER COLUMN tenant_id DROP NOT NULL'),
    );
    await withPostgresClient(db.url, (c) => c.query('UPDATE patients SET tenant_id = NULL WHERE id = 11'));
    try {
      const bad = await cofre(plan);
      expect(bad.code, bad.stderr).toBe(3);
      expect(bad.stdout).toMatch(/public\.patients: \d+ rows, 1 owned by no tenant, 0 by more than one/);
      expect(bad.stdout).toMatch(/NOT COVERED: 1 rows owned by no tenant/);
      const refused = await cofre([...backupArgs(), '--all-tenants', ...MODEL_ARGS]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(
        /public\.patients: 1 of \d+ rows are owned by no tenant[\s\S]*--accept-unowned-rows/,
      );
      const accepted = await cofre([
        ...backupArgs(),
        '--all-tenants',
        ...MODEL_ARGS,
        '--accept-unowned-rows',
      ]);
      expect(accepted.code, accepted.stderr).toBe(0);
    } finally {
      await withPostgresClient(db.url, (c) => c.query('UPDATE patients SET tenant_id = 1 WHERE id = 11'));
      await withPostgresClient(db.url, (c) =>
        c.query('ALTER TABLE patients ALTER COLUMN tenant_id SET NOT NULL'),
      );
    }
    expect(await tableChecksums('postgres', db.url)).toEqual(original);
  }, 60_000);
});
