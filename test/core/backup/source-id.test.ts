/**
 * The default source id is the backed-up database's own name (not the database named in the URL),
 * and the first backup of a new source warns that it will be yearly and locked until a date.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runBackup } from '../../../core/backup/backup';
import { parseDatabaseUrl } from '../../../core/sources/connection';
import { FileVault } from '../../../core/vault';
import {
  createDatabase,
  describePostgres,
  PG_ADMIN_URL,
  withPostgresClient,
  type TestDatabase,
} from '../../helpers/databases';
import { testKeys } from '../../helpers/engine';
import { tempDir } from '../../helpers/temp';

describePostgres('default source id and the first-backup warning', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createDatabase('postgres', 'srcid');
    await withPostgresClient(db.url, (c) => c.query('CREATE TABLE t (id int PRIMARY KEY)'));
  });
  afterAll(async () => {
    await db.drop();
  });

  it('files a database under its own name whatever database the URL names, one chain for both', async () => {
    const { keys } = await testKeys();
    const vault = new FileVault(tempDir('srcid'));
    const logs: string[] = [];
    const now = new Date('2026-11-28T12:00:00Z');
    const [viaAdmin] = await runBackup({
      connection: parseDatabaseUrl('postgres', PG_ADMIN_URL),
      databases: [db.name],
      vault,
      keys,
      log: (l) => logs.push(l),
      now: () => now,
    });
    if (!viaAdmin?.ok) throw new Error('backup failed');
    expect(viaAdmin.manifest.sourceId).toBe(db.name);
    expect(viaAdmin.manifest.tier).toBe('yearly');
    const lockDate = viaAdmin.manifest.retention.lockUntil.slice(0, 10);
    const warning = logs.find((l) => l.startsWith('warning:'));
    expect(warning).toMatch(new RegExp(`first backup of "${db.name}" under source "${db.name}"`));
    expect(warning).toMatch(new RegExp(`yearly backup, kept until ${lockDate}`));
    expect(logs.indexOf(warning!)).toBeLessThan(logs.findIndex((l) => l.startsWith('backup ')));

    // The same database through its own URL continues the same chain: no warning, not yearly.
    logs.length = 0;
    const [direct] = await runBackup({
      connection: parseDatabaseUrl('postgres', db.url),
      vault,
      keys,
      log: (l) => logs.push(l),
      now: () => new Date(now.getTime() + 60_000),
    });
    if (!direct?.ok) throw new Error('backup failed');
    expect(direct.manifest.sourceId).toBe(db.name);
    expect(direct.manifest.previous?.backupId).toBe(viaAdmin.manifest.backupId);
    expect(direct.manifest.tier).toBe('daily');
    expect(logs.filter((l) => l.startsWith('warning:'))).toEqual([]);
  });
});
