import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../../core/backup/backup';
import { parseDatabaseUrl } from '../../../core/sources/connection';
import { restoreBackup } from '../../../core/restore/restore';
import { DefinerRewriter } from '../../../core/sources/mysql-definers';
import { FileVault, readAll } from '../../../core/vault';
import {
  createMysqlDatabase,
  describeMysql,
  MYSQL_ADMIN_URL,
  uniqueDatabaseName,
  withMysqlConnection,
  type TestDatabase,
} from '../../helpers/databases';
import { testKeys } from '../../helpers/engine';
import { tempDir } from '../../helpers/temp';

describe('DefinerRewriter', () => {
  const dump = [
    '/*!50013 DEFINER=`app`@`%` SQL SECURITY DEFINER */',
    "/*!50003 CREATE*/ /*!50017 DEFINER=`we``ird`@`10.0.0.1`*/ /*!50003 TRIGGER `t` AFTER INSERT ON `x` FOR EACH ROW SET @a = 'DEFINER=`not`@`me`' */;;",
    `INSERT INTO \`big\` VALUES (1,'${'DEFINER=`x`@`y` '.repeat(400)}');`,
    '',
  ].join('\n');

  it.each([1, 7, 100, Infinity])(
    'makes every definer CURRENT_USER in line heads, whatever the chunks (%s)',
    async (size) => {
      const bytes = Buffer.from(dump);
      const chunks: Buffer[] = [];
      for (let i = 0; i < bytes.length; i += Math.min(size, bytes.length))
        chunks.push(bytes.subarray(i, i + size));
      const rewriter = new DefinerRewriter();
      const out = (await readAll(Readable.from(chunks).pipe(rewriter))).toString();
      const lines = out.split('\n');
      expect(lines[0]).toBe('/*!50013 DEFINER=CURRENT_USER SQL SECURITY DEFINER */');
      expect(lines[1]).toContain('/*!50017 DEFINER=CURRENT_USER*/');
      // Data beyond a line's first 2 KiB is never touched.
      expect(lines[2]!.endsWith(`${'DEFINER=`x`@`y` '.repeat(20)}');`)).toBe(true);
      expect(out.length).toBeLessThan(dump.length);
    },
  );
});

describeMysql('restoring MySQL objects whose definer does not exist on the target', () => {
  let db: TestDatabase;
  const user = `cofre_def_${randomBytes(4).toString('hex')}`;
  const targets: string[] = [];
  let vault: FileVault;
  let backupId: string;
  let keys: Awaited<ReturnType<typeof testKeys>>['keys'];

  beforeAll(async () => {
    db = await createMysqlDatabase('def_src');
    await withMysqlConnection(MYSQL_ADMIN_URL, async (c) => {
      await c.query(`CREATE USER ?@'%'`, [user]);
      await c.query(`GRANT ALL ON \`${db.name}\`.* TO ?@'%'`, [user]);
    });
    await withMysqlConnection(db.url, async (c) => {
      await c.query('CREATE TABLE t (id INT PRIMARY KEY)');
      await c.query('INSERT INTO t VALUES (1), (2)');
      await c.query(
        `CREATE DEFINER = \`${user}\`@\`%\` SQL SECURITY DEFINER VIEW v AS SELECT count(*) AS n FROM t`,
      );
    });
    ({ keys } = await testKeys());
    vault = new FileVault(tempDir('def'));
    const [outcome] = await runBackup({ connection: parseDatabaseUrl('mysql', db.url), vault, keys });
    if (!outcome?.ok) throw new Error('backup failed');
    backupId = outcome.manifest.backupId;
    // The account is gone on the "new server".
    await withMysqlConnection(MYSQL_ADMIN_URL, (c) => c.query(`DROP USER ?@'%'`, [user]));
  });

  afterAll(async () => {
    await withMysqlConnection(MYSQL_ADMIN_URL, async (c) => {
      await c.query(`DROP USER IF EXISTS ?@'%'`, [user]);
      for (const t of targets) await c.query(`DROP DATABASE IF EXISTS \`${t}\``);
    });
    await db.drop();
  });

  const target = () => {
    const name = uniqueDatabaseName('def_rs');
    targets.push(name);
    const u = new URL(MYSQL_ADMIN_URL);
    u.pathname = `/${name}`;
    return { name, url: u.toString() };
  };

  it('makes the restoring user the definer by default, so the view works', async () => {
    const t = target();
    const lines: string[] = [];
    await restoreBackup({
      vault,
      backupId,
      keys,
      target: parseDatabaseUrl('mysql', t.url),
      log: (l) => lines.push(l),
    });
    expect(lines.join('\n')).toMatch(/made the restoring user the DEFINER of 1 views/);
    const n = await withMysqlConnection(t.url, async (c) =>
      String((await c.query<import('mysql2').RowDataPacket[]>('SELECT n FROM v'))[0][0]!.n),
    );
    expect(n).toBe('2');
  });

  it('keeps the dump’s definers with keepDefiners (and the view then fails, as MySQL says)', async () => {
    const t = target();
    await restoreBackup({
      vault,
      backupId,
      keys,
      target: parseDatabaseUrl('mysql', t.url),
      keepDefiners: true,
    });
    await expect(withMysqlConnection(t.url, (c) => c.query('SELECT n FROM v'))).rejects.toThrow(
      /definer .* does not exist/i,
    );
  });
});
