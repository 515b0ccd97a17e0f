import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runBackup } from '../../../core/backup/backup';
import { readCatalog } from '../../../core/catalog/catalog';
import { parseDatabaseUrl, type Engine } from '../../../core/sources/connection';
import { buildKeys, keygen, type Keys } from '../../../core/vault/crypto';
import { IntegrityError, UsageError } from '../../../core/util/errors';
import { exportBackup } from '../../../core/offline/export';
import { restoreBackup } from '../../../core/restore/restore';
import { FileVault, S3Vault, type Vault } from '../../../core/vault';
import {
  createDatabase,
  describeDatabase,
  loadTrickySchema,
  MYSQL_ADMIN_URL,
  PG_ADMIN_URL,
  tableChecksums,
  TRICKY_ROW_COUNTS,
  uniqueDatabaseName,
  withMysqlConnection,
  withPostgresClient,
  type TestDatabase,
} from '../../helpers/databases';
import { startLocalS3, type LocalS3 } from '../../helpers/s3';
import { tempDir } from '../../helpers/temp';

function urlFor(engine: Engine, name: string): string {
  const u = new URL(engine === 'postgres' ? PG_ADMIN_URL : MYSQL_ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

async function databaseNames(engine: Engine, like: string): Promise<string[]> {
  if (engine === 'postgres')
    return withPostgresClient(PG_ADMIN_URL, async (c) =>
      (
        await c.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1', [
          `${like}%`,
        ])
      ).rows.map((r) => r.datname),
    );
  return withMysqlConnection(MYSQL_ADMIN_URL, async (c) => {
    const [rows] = await c.query<import('mysql2').RowDataPacket[]>(
      'SELECT SCHEMA_NAME AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?',
      [`${like}%`],
    );
    return rows.map((r) => String(r.n));
  });
}

async function exec(engine: Engine, url: string, sql: string): Promise<void> {
  if (engine === 'postgres') await withPostgresClient(url, (c) => c.query(sql));
  else await withMysqlConnection(url, (c) => c.query(sql));
}

for (const engine of ['postgres', 'mysql'] as const) {
  describeDatabase(engine, `restore engine on ${engine}`, () => {
    let source: TestDatabase;
    let s3: LocalS3;
    let fileVault: FileVault;
    let s3Vault: Vault;
    let keys: Keys;
    let escrowOnly: Keys;
    let otherKey: Keys;
    let fileBackup: string;
    let s3Backup: string;
    let expected: Awaited<ReturnType<typeof tableChecksums>>;
    const cleanup: string[] = [];

    const target = (label: string) => {
      const name = uniqueDatabaseName(label);
      cleanup.push(name);
      return { name, url: urlFor(engine, name), connection: parseDatabaseUrl(engine, urlFor(engine, name)) };
    };

    beforeAll(async () => {
      source = await createDatabase(engine, 'rs_src');
      await loadTrickySchema(engine, source.url);
      expected = await tableChecksums(engine, source.url);
      const dir = tempDir('rs');
      const keyFile = path.join(dir, 'key');
      await keygen(keyFile);
      const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 3072 });
      writeFileSync(path.join(dir, 'escrow.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
      writeFileSync(path.join(dir, 'escrow.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }), {
        mode: 0o600,
      });
      keys = await buildKeys({ keyFile, escrowPublicKey: path.join(dir, 'escrow.pub') }, 'encrypt');
      escrowOnly = await buildKeys({ escrowPrivateKey: path.join(dir, 'escrow.pem') }, 'decrypt');
      await keygen(path.join(dir, 'other'));
      otherKey = await buildKeys({ keyFile: path.join(dir, 'other') }, 'decrypt');
      s3 = await startLocalS3();
      fileVault = new FileVault(path.join(dir, 'vault'));
      s3Vault = new S3Vault({
        objectLockMode: 'none',
        client: s3.client,
        bucket: s3.bucket,
        prefix: 'rs',
        partSize: 5 * 1024 * 1024,
      });
      const connection = parseDatabaseUrl(engine, source.url);
      const [f] = await runBackup({ connection, vault: fileVault, keys });
      const [s] = await runBackup({ connection, vault: s3Vault, keys });
      if (!f?.ok || !s?.ok) throw new Error('backup failed');
      fileBackup = f.manifest.backupId;
      s3Backup = s.manifest.backupId;
    });

    afterAll(async () => {
      for (const name of cleanup)
        await exec(
          engine,
          engine === 'postgres' ? PG_ADMIN_URL : MYSQL_ADMIN_URL,
          engine === 'postgres'
            ? `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`
            : `DROP DATABASE IF EXISTS \`${name}\``,
        ).catch(() => undefined);
      await source.drop();
      await s3.dispose();
    });

    it.each(['file', 's3', 'escrow'] as const)(
      'restores the whole database equal, table by table (%s)',
      async (how) => {
        const t = target(`rs_${how}`);
        const report = await restoreBackup({
          vault: how === 's3' ? s3Vault : fileVault,
          backupId: how === 's3' ? s3Backup : fileBackup,
          keys: how === 'escrow' ? escrowOnly : keys,
          target: t.connection,
        });
        expect(report).toMatchObject({ mode: 'database', target: { database: t.name } });
        expect(report.rows).toBe(Object.values(TRICKY_ROW_COUNTS[engine]).reduce((a, b) => a + b, 0));
        expect(await tableChecksums(engine, t.url)).toEqual(expected);
        expect(await databaseNames(engine, `${t.name}_cofre`)).toEqual([]);
      },
    );

    it('restores from an exported folder (an offline copy) with the escrow key only', async () => {
      const to = path.join(tempDir('rs-exp'), 'usb');
      await exportBackup({ vault: s3Vault, backupId: s3Backup, to });
      const t = target('rs_export');
      const report = await restoreBackup({
        vault: new FileVault(to),
        backupId: s3Backup,
        keys: escrowOnly,
        target: t.connection,
      });
      expect(report.backupId).toBe(s3Backup);
      expect(await tableChecksums(engine, t.url)).toEqual(expected);
    });

    it('refuses a non-empty target without --force (exit 2, unchanged), replaces it with --force', async () => {
      const t = target('rs_busy');
      await exec(
        engine,
        engine === 'postgres' ? PG_ADMIN_URL : MYSQL_ADMIN_URL,
        `CREATE DATABASE ${engine === 'postgres' ? `"${t.name}"` : `\`${t.name}\``}`,
      );
      await exec(engine, t.url, 'CREATE TABLE keep_me (id int PRIMARY KEY)');
      await exec(engine, t.url, 'INSERT INTO keep_me VALUES (42)');
      const before = await tableChecksums(engine, t.url);
      const p = restoreBackup({ vault: fileVault, backupId: fileBackup, keys, target: t.connection });
      await expect(p).rejects.toBeInstanceOf(UsageError);
      await expect(p).rejects.toThrow(/is not empty .*nothing was changed.*--force/);
      expect(await tableChecksums(engine, t.url)).toEqual(before);
      const forced = await restoreBackup({
        vault: fileVault,
        backupId: fileBackup,
        keys,
        target: t.connection,
        force: true,
      });
      expect(forced.replaced).toBe(true);
      expect(await tableChecksums(engine, t.url)).toEqual(expected);
    });

    it('rejects a corrupted or truncated artifact (exit 3) and a wrong key (exit 2), and leaves no database', async () => {
      const copy = new FileVault(tempDir('rs-bad'));
      cpSync(fileVault.root, copy.root, { recursive: true });
      const entry = (await readCatalog(copy)).find((e) => e.backupId === fileBackup)!;
      const file = path.join(copy.root, entry.folder, entry.manifest!.artifacts[0]!.name);
      chmodSync(file, 0o600);
      const bytes = readFileSync(file);
      bytes[bytes.length - 5000]! ^= 0x10;
      writeFileSync(file, bytes);
      const flipped = target('rs_flip');
      await expect(
        restoreBackup({ vault: copy, backupId: fileBackup, keys, target: flipped.connection }),
      ).rejects.toBeInstanceOf(IntegrityError);
      expect(await databaseNames(engine, flipped.name)).toEqual([]);

      writeFileSync(file, bytes.subarray(0, 1000));
      const truncated = target('rs_trunc');
      await expect(
        restoreBackup({ vault: copy, backupId: fileBackup, keys, target: truncated.connection }),
      ).rejects.toThrow(/has 1000 bytes, the manifest records \d+; nothing was restored/);
      expect(await databaseNames(engine, truncated.name)).toEqual([]);

      const wrong = target('rs_wrongkey');
      await expect(
        restoreBackup({ vault: fileVault, backupId: fileBackup, keys: otherKey, target: wrong.connection }),
      ).rejects.toThrow(
        /KEY: the given key \(local:[0-9a-f]+\) is not one that backup \S+ was encrypted for/,
      );
      expect(await databaseNames(engine, wrong.name)).toEqual([]);
    });

    it('checks a corrupted artifact before it creates or touches anything (exit 3)', async () => {
      const copy = new FileVault(tempDir('rs-first'));
      cpSync(fileVault.root, copy.root, { recursive: true });
      const entry = (await readCatalog(copy)).find((e) => e.backupId === fileBackup)!;
      const file = path.join(copy.root, entry.folder, entry.manifest!.artifacts[0]!.name);
      chmodSync(file, 0o600);
      const bytes = readFileSync(file);
      bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
      writeFileSync(file, bytes);
      const t = target('rs_first');
      const logs: string[] = [];
      const p = restoreBackup({
        vault: copy,
        backupId: fileBackup,
        keys,
        target: t.connection,
        log: (l) => logs.push(l),
      });
      await expect(p).rejects.toBeInstanceOf(IntegrityError);
      await expect(p).rejects.toThrow(/SHA-256 .*nothing was restored/);
      expect(logs).toEqual([]);
    });

    it('rejects an unknown backup id (exit 2)', async () => {
      await expect(
        restoreBackup({
          vault: fileVault,
          backupId: '20200101T000000000Z-00000000',
          keys,
          target: target('rs_unknown').connection,
        }),
      ).rejects.toThrow(/--backup: no backup "20200101T000000000Z-00000000"/);
    });

    it('reports a row-count mismatch (exit 3), naming the table, and keeps nothing', async () => {
      const copy = new FileVault(tempDir('rs-rows'));
      cpSync(fileVault.root, copy.root, { recursive: true });
      const entry = (await readCatalog(copy)).find((e) => e.backupId === fileBackup)!;
      const manifestPath = path.join(copy.root, entry.folder, 'manifest.json');
      const m = JSON.parse(readFileSync(manifestPath, 'utf8')) as {
        artifacts: { tables: { name: string; rows: number }[] }[];
      };
      m.artifacts[0]!.tables.find((t) => t.name.endsWith('invoices'))!.rows += 1;
      chmodSync(manifestPath, 0o600);
      writeFileSync(manifestPath, JSON.stringify(m));
      const t = target('rs_rows');
      const p = restoreBackup({ vault: copy, backupId: fileBackup, keys, target: t.connection });
      await expect(p).rejects.toBeInstanceOf(IntegrityError);
      await expect(p).rejects.toThrow(/invoices has 400, expected 401/);
      expect(await databaseNames(engine, t.name)).toEqual([]);
    });

    it('stops on cancel mid-way and leaves no database that looks restored', async () => {
      const t = target('rs_cancel');
      const controller = new AbortController();
      // Cancel once the restore is visibly under way (not after a fixed delay, which a fast machine
      // outran): PostgreSQL's temporary database exists; MySQL's target holds its first tables.
      const underway = async () =>
        engine === 'postgres'
          ? (await databaseNames(engine, `${t.name}_cofre_restoring`)).length > 0
          : await withMysqlConnection(MYSQL_ADMIN_URL, async (c) => {
              const [rows] = await c.query<import('mysql2').RowDataPacket[]>(
                'SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?',
                [t.name],
              );
              return Number(rows[0]!.n) >= 3;
            });
      const restoring = restoreBackup({
        vault: fileVault,
        backupId: fileBackup,
        keys,
        target: t.connection,
        signal: controller.signal,
      });
      const settled = { done: false };
      restoring.then(
        () => (settled.done = true),
        () => (settled.done = true),
      );
      while (!settled.done && !(await underway())) await new Promise((r) => setTimeout(r, 10));
      controller.abort('SIGTERM');
      await expect(restoring).rejects.toThrow();
      expect(await databaseNames(engine, t.name)).toEqual([]);
    });

    const big = engine === 'postgres' ? 'public.prescription_items' : 'prescription_items';
    it('restores one table after its rows were deleted; the other tables are untouched', async () => {
      const t = target('rs_table');
      await restoreBackup({ vault: fileVault, backupId: fileBackup, keys, target: t.connection });
      await exec(engine, t.url, `DELETE FROM ${big}`);
      const p = restoreBackup({
        vault: fileVault,
        backupId: fileBackup,
        keys,
        target: t.connection,
        table: big,
      });
      const report = await p;
      expect(report).toMatchObject({ mode: 'table', rows: TRICKY_ROW_COUNTS[engine][big] });
      expect(await tableChecksums(engine, t.url)).toEqual(expected);
      // Still full: refused without --force; --into-table loads a copy beside it.
      await expect(
        restoreBackup({ vault: fileVault, backupId: fileBackup, keys, target: t.connection, table: big }),
      ).rejects.toThrow(/still has \d+ rows; nothing was changed/);
      const into = await restoreBackup({
        vault: fileVault,
        backupId: fileBackup,
        keys,
        target: t.connection,
        table: big,
        intoTable: 'items_restored',
      });
      expect(into.rows).toBe(TRICKY_ROW_COUNTS[engine][big]);
      const after = await tableChecksums(engine, t.url);
      const restoredKey = engine === 'postgres' ? 'public.items_restored' : 'items_restored';
      expect(after[restoredKey]?.sha256).toBe(expected[big]?.sha256);
      expect(Object.fromEntries(Object.entries(after).filter(([k]) => k !== restoredKey))).toEqual(expected);
    });

    it('restores a dropped table with its definition', async () => {
      const t = target('rs_dropped');
      await restoreBackup({ vault: fileVault, backupId: fileBackup, keys, target: t.connection });
      const table = engine === 'postgres' ? 'public.waiting_list' : 'invoices';
      await exec(engine, t.url, `DROP TABLE ${table}`);
      await restoreBackup({ vault: fileVault, backupId: fileBackup, keys, target: t.connection, table });
      expect(await tableChecksums(engine, t.url)).toEqual(expected);
    });
  });
}
