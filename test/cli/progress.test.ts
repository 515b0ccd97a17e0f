/**
 * Long commands show progress on stderr from the one progress module: bytes of the total, rate and
 * elapsed time (not a terminal here: a line every few seconds and one when the work ends).
 */
import path from 'node:path';
import { Client } from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cofre, tempDir } from '../helpers/cli';
import { createPostgresDatabase, describePostgres, type TestDatabase } from '../helpers/databases';
import { testKeys } from '../helpers/engine';

const line = (label: string, verb: string) =>
  new RegExp(
    `^${label}: [\\d.]+ (B|KiB|MiB) of [\\d.]+ (B|KiB|MiB) \\(100 %\\) ${verb}, [\\d.]+ MiB/s, \\d\\d:\\d\\d$`,
    'm',
  );

describePostgres('progress of restore, verify --deep, export, decrypt and tenant restore', () => {
  let db: TestDatabase;
  let vault: string;
  let keyFile: string;
  let full: string;
  let tenant: string;
  const model = ['--tenant-table', 'tenants', '--key-column', 'id', '--tenant-column', 'tenant_id'];
  const targets: TestDatabase[] = [];

  beforeAll(async () => {
    db = await createPostgresDatabase('progress');
    const c = new Client({ connectionString: db.url });
    await c.connect();
    await c.query(
      `CREATE TABLE tenants (id int PRIMARY KEY);
       CREATE TABLE notes (id int PRIMARY KEY, tenant_id int NOT NULL REFERENCES tenants (id), v text);
       INSERT INTO tenants VALUES (1), (2);
       INSERT INTO notes SELECT g, 1 + g % 2, repeat(md5(g::text), 8) FROM generate_series(1, 5000) g`,
    );
    await c.end();
    ({ keyFile } = await testKeys());
    vault = `file://${tempDir('progress')}`;
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
        '--json',
        ...extra,
      ]);
      expect(r.code, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as { backups: { backupId: string }[] }).backups[0]!.backupId;
    };
    full = await backup();
    tenant = await backup('--tenant', '1', ...model);
  });
  afterAll(async () => {
    for (const t of targets) await t.drop();
    await db.drop();
  });

  it('backup (the dump size is known only at its end: bytes dumped and stored)', async () => {
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
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      new RegExp(
        `^${db.name}: [\\d.]+ (KiB|MiB) dumped, [\\d.]+ (KiB|MiB) stored, [\\d.]+ MiB/s, \\d\\d:\\d\\d$`,
        'm',
      ),
    );
  });

  it('restore', async () => {
    const t = await createPostgresDatabase('progress_dst');
    targets.push(t);
    await t.drop();
    const r = await cofre([
      'restore',
      '--vault',
      vault,
      '--backup',
      full,
      '--target-url',
      t.url,
      '--key-file',
      keyFile,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(line(`restore ${full}`, 'read'));
  });

  it('tenant restore', async () => {
    const r = await cofre([
      'restore',
      '--vault',
      vault,
      '--backup',
      tenant,
      '--target-url',
      db.url,
      '--key-file',
      keyFile,
      '--tenant',
      '1',
      ...model,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(line(`restore ${tenant}`, 'read'));
  });

  it('verify --deep', async () => {
    const r = await cofre(['verify', '--vault', vault, '--backup', full, '--deep', '--key-file', keyFile]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(line(`verify --deep ${full}`, 'read'));
  });

  it('export', async () => {
    const r = await cofre([
      'export',
      '--vault',
      vault,
      '--backup',
      full,
      '--to',
      path.join(tempDir('progress-exp'), 'usb'),
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(line(`export ${full}`, 'copied'));
  });

  it('decrypt', async () => {
    const r = await cofre([
      'decrypt',
      '--vault',
      vault,
      '--backup',
      full,
      '--key-file',
      keyFile,
      '--out',
      path.join(tempDir('progress-dec'), 'dump'),
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(line(`decrypt ${full}`, 'read'));
  });
});
