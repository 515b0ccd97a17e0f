/**
 * A MariaDB backup whose largest statement (an 11 MiB BLOB, dumped as a 22 MiB `--hex-blob`
 * INSERT) exceeds the server's default 16 MiB max_allowed_packet restores on the first try: the
 * restore raises the global for its own connections and puts it back, also on failure and cancel;
 * an account that may not raise it is refused before anything changes.
 *
 * Runs against a private MariaDB server started for this file (its defaults, its own port and data
 * directory), so raising and lowering the global never disturbs other test runs on the shared server.
 */
import { chmodSync, cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { RowDataPacket } from 'mysql2';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../../core/backup/backup';
import { readCatalog } from '../../../core/catalog/catalog';
import { parseDatabaseUrl } from '../../../core/sources/connection';
import type { Keys } from '../../../core/vault/crypto';
import { CancelledError, IntegrityError, UsageError } from '../../../core/util/errors';
import { restoreBackup } from '../../../core/restore/restore';
import { FileVault } from '../../../core/vault';
import { withMysqlConnection } from '../../helpers/databases';
import { testKeys } from '../../helpers/engine';
import {
  privateMariadbUnavailable,
  startPrivateMariadb,
  type PrivateMariadb,
} from '../../helpers/private-mariadb';
import { tempDir } from '../../helpers/temp';

const DEFAULT_PACKET = 16 * 1024 * 1024;
const BLOB_BYTES = 11 * 1024 * 1024;

const unavailable = privateMariadbUnavailable();
const suite = unavailable && process.env.CI !== 'true' ? describe.skip : describe;
if (unavailable) console.warn(`skipping the max_allowed_packet restore tests: ${unavailable}`);

suite('MySQL restore of a statement larger than the default max_allowed_packet', () => {
  let server: PrivateMariadb;
  let vault: FileVault;
  let keys: Keys;
  let backupId: string;
  let counter = 0;
  const url = (database = '', user = 'root') => {
    const u = new URL(server.adminUrl);
    u.username = user;
    u.pathname = `/${database}`;
    return u.toString();
  };
  const admin = <T>(fn: (c: import('mysql2/promise').Connection) => Promise<T>) =>
    withMysqlConnection(url(), fn);
  const globalPacket = () =>
    admin(async (c) =>
      Number((await c.query<RowDataPacket[]>('SELECT @@global.max_allowed_packet AS p'))[0][0]!.p),
    );
  const blobOf = (database: string) =>
    admin(
      async (c) =>
        (
          await c.query<RowDataPacket[]>(
            `SELECT length(data) AS n, md5(data) AS h FROM \`${database}\`.blobs WHERE id = 1`,
          )
        )[0][0] as { n: string; h: string },
    );
  const target = (user = 'root') => parseDatabaseUrl('mysql', url(`restored_${++counter}`, user));

  beforeAll(async () => {
    if (unavailable) throw new Error(unavailable);
    server = await startPrivateMariadb();
    expect(await globalPacket()).toBe(DEFAULT_PACKET);
    await admin(async (c) => {
      await c.query('CREATE DATABASE src');
      await c.query('CREATE TABLE src.blobs (id int PRIMARY KEY, data longblob NOT NULL)');
      await c.query('CREATE TABLE src.notes (id int PRIMARY KEY, blob_id int REFERENCES blobs (id))');
      // 11 MiB built on the server: the INSERT itself stays small.
      await c.query(`INSERT INTO src.blobs VALUES (1, REPEAT(UNHEX('0badc0ffee'), ${BLOB_BYTES / 5 + 1}))`);
      await c.query('INSERT INTO src.notes VALUES (1, 1), (2, 1)');
      // An account without SUPER / SYSTEM_VARIABLES_ADMIN (as on RDS), free to create databases.
      await c.query("CREATE USER 'restorer'@'%' IDENTIFIED BY 'pw'");
      await c.query("GRANT ALL ON `restored\\_%`.* TO 'restorer'@'%'");
    });
    ({ keys } = await testKeys());
    vault = new FileVault(tempDir('packet'));
    const [outcome] = await runBackup({ connection: parseDatabaseUrl('mysql', url('src')), vault, keys });
    if (!outcome?.ok) throw new Error(`backup failed: ${outcome?.ok === false ? outcome.error : ''}`);
    backupId = outcome.manifest.backupId;
    expect(outcome.manifest.artifacts[0]!.largestStatementBytes).toBeGreaterThan(DEFAULT_PACKET);
  });

  afterEach(async () => {
    // Whatever a failed test left, the next starts from the server's default.
    await admin((c) => c.query(`SET GLOBAL max_allowed_packet = ${DEFAULT_PACKET}`));
  });

  afterAll(async () => {
    await server.stop();
  });

  it('raises the global for the restore, says so, and puts it back', async () => {
    const logs: string[] = [];
    const t = target();
    const report = await restoreBackup({ vault, backupId, keys, target: t, log: (l) => logs.push(l) });
    expect(report.rows).toBe(3);
    expect(await blobOf(t.database!)).toEqual(await blobOf('src'));
    expect(logs.filter((l) => l.includes('max_allowed_packet'))).toEqual([
      expect.stringMatching(
        /^raised the global max_allowed_packet of 127\.0\.0\.1:\d+ from 16777216 to \d+ bytes/,
      ),
      expect.stringMatching(/^put the global max_allowed_packet of .* back to 16777216 bytes$/),
    ]);
    expect(await globalPacket()).toBe(DEFAULT_PACKET);
  });

  it('one-table restore of the dropped table: raised and put back', async () => {
    const t = target();
    await restoreBackup({ vault, backupId, keys, target: t });
    await admin((c) => c.query(`DROP TABLE \`${t.database!}\`.notes, \`${t.database!}\`.blobs`));
    const logs: string[] = [];
    await restoreBackup({ vault, backupId, keys, target: t, table: 'blobs', log: (l) => logs.push(l) });
    expect(await blobOf(t.database!)).toEqual(await blobOf('src'));
    expect(logs.join('\n')).toMatch(/raised the global max_allowed_packet/);
    expect(await globalPacket()).toBe(DEFAULT_PACKET);
  });

  it('puts it back when the restore fails after loading (row counts differ)', async () => {
    const copy = new FileVault(tempDir('packet-bad'));
    cpSync(vault.root, copy.root, { recursive: true });
    const entry = (await readCatalog(copy)).find((e) => e.backupId === backupId)!;
    const manifestPath = path.join(copy.root, entry.folder, 'manifest.json');
    const m = JSON.parse(readFileSync(manifestPath, 'utf8')) as {
      artifacts: { tables: { name: string; rows: number }[] }[];
    };
    m.artifacts[0]!.tables.find((t) => t.name === 'notes')!.rows += 1;
    chmodSync(manifestPath, 0o600);
    writeFileSync(manifestPath, JSON.stringify(m));
    await expect(restoreBackup({ vault: copy, backupId, keys, target: target() })).rejects.toBeInstanceOf(
      IntegrityError,
    );
    expect(await globalPacket()).toBe(DEFAULT_PACKET);
  });

  it('puts it back when the restore is cancelled (SIGTERM) once under way', async () => {
    const controller = new AbortController();
    const restoring = restoreBackup({
      vault,
      backupId,
      keys,
      target: target(),
      signal: controller.signal,
      log: (l) => {
        if (l.startsWith('restoring '))
          setTimeout(() => {
            controller.abort('SIGTERM');
          }, 50);
      },
    });
    await expect(restoring).rejects.toBeInstanceOf(CancelledError);
    expect(await globalPacket()).toBe(DEFAULT_PACKET);
  });

  it('leaves the global alone if someone else changed it during the restore', async () => {
    const logs: string[] = [];
    await restoreBackup({
      vault,
      backupId,
      keys,
      target: target(),
      log: (l) => {
        logs.push(l);
        if (l.startsWith('raised '))
          void admin((c) => c.query(`SET GLOBAL max_allowed_packet = ${64 * 1024 * 1024}`));
      },
    });
    expect(await globalPacket()).toBe(64 * 1024 * 1024);
    expect(logs.join('\n')).toMatch(
      /left the global max_allowed_packet of .* at 67108864 bytes: it was changed by someone else/,
    );
  });

  it('refuses, nothing changed, when the account may not raise it, naming the parameter group setting', async () => {
    const t = target('restorer');
    const withPassword = { ...t, password: 'pw' };
    const p = restoreBackup({ vault, backupId, keys, target: withPassword });
    await expect(p).rejects.toBeInstanceOf(UsageError);
    await expect(p).rejects.toThrow(
      /max_allowed_packet of .* is 16777216, and restorer may not raise it \(that needs SUPER or SYSTEM_VARIABLES_ADMIN\).*nothing was changed\. Set max_allowed_packet = \d+ in the server's configuration \(RDS, Aurora: in its DB parameter group\)/s,
    );
    const exists = await admin(
      async (c) =>
        (
          await c.query<RowDataPacket[]>('SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [
            t.database,
          ])
        )[0].length,
    );
    expect(exists).toBe(0);
    expect(await globalPacket()).toBe(DEFAULT_PACKET);
  });
});
