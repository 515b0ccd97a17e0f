import { readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runBackup, type BackupOutcome } from '../../../core/backup/backup';
import { verifiedPlaintext } from '../../../core/catalog/artifact-reader';
import { readCatalog } from '../../../core/catalog/catalog';
import { listMysqlDatabases } from '../../../core/sources/mysql';
import { listPostgresDatabases } from '../../../core/sources/postgres';
import { parseDatabaseUrl, type Engine } from '../../../core/sources/connection';
import type { Keys } from '../../../core/vault/crypto';
import { IntegrityError } from '../../../core/util/errors';
import { verifyBackup } from '../../../core/verify/verify';
import { FileVault, readAll, S3Vault, type Vault } from '../../../core/vault';
import {
  createDatabase,
  describeDatabase,
  loadTrickySchema,
  rowCounts,
  tableChecksums,
  TRICKY_ROW_COUNTS,
  withMysqlConnection,
  withPostgresClient,
  type TestDatabase,
} from '../../helpers/databases';
import { filesUnder } from '../../helpers/cli';
import { loadDumpInto, manifestRows, testKeys } from '../../helpers/engine';
import { startLocalS3, type LocalS3 } from '../../helpers/s3';
import { tempDir } from '../../helpers/temp';

function ok(outcomes: BackupOutcome[]): Extract<BackupOutcome, { ok: true }> {
  expect(outcomes.map((o) => (o.ok ? 'ok' : o.error))).toEqual(['ok']);
  return outcomes[0] as Extract<BackupOutcome, { ok: true }>;
}

function fileVault(): FileVault {
  return new FileVault(tempDir('fv'));
}

/** Kills the database session that is streaming the dump (as a failover or an admin would). */
async function killDumpSession(engine: Engine, database: string): Promise<number> {
  if (engine === 'postgres')
    return withPostgresClient(
      process.env.COFRE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
      async (c) => {
        const { rows } = await c.query<{ pid: number }>(
          `SELECT pg_terminate_backend(pid) AS t, pid FROM pg_stat_activity
         WHERE datname = $1 AND query LIKE 'COPY %' AND pid <> pg_backend_pid()`,
          [database],
        );
        return rows.length;
      },
    );
  return withMysqlConnection(
    process.env.COFRE_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/',
    async (c) => {
      const [rows] = await c.query<import('mysql2').RowDataPacket[]>(
        "SELECT id FROM information_schema.processlist WHERE db = ? AND info LIKE 'SELECT /*!40001 SQL_NO_CACHE */%'",
        [database],
      );
      for (const r of rows) await c.query(`KILL ${Number(r.id)}`);
      return rows.length;
    },
  );
}

/** Adds a table of ~`mib` MiB of incompressible rows, so a dump takes long enough to interrupt. */
async function addBulk(engine: Engine, url: string, mib: number): Promise<void> {
  if (engine === 'postgres')
    await withPostgresClient(url, (c) =>
      c.query(`CREATE TABLE bulk AS SELECT g AS id, decode(string_agg(md5(g::text || '-' || k), ''), 'hex') AS b
               FROM generate_series(1, ${mib * 64}) g, generate_series(1, 1024) k GROUP BY g`),
    );
  else
    await withMysqlConnection(url, async (c) => {
      await c.query('CREATE TABLE bulk (id INT PRIMARY KEY, b LONGBLOB)');
      const block = `CONCAT(${Array.from({ length: 16 }, () => 'RANDOM_BYTES(1024)').join(', ')})`;
      await c.query(`INSERT INTO bulk SELECT seq, ${block} FROM seq_1_to_${mib * 64}`);
    });
}

for (const engine of ['postgres', 'mysql'] as const) {
  describeDatabase(engine, `backup engine on ${engine}`, () => {
    let db: TestDatabase;
    let bulk: TestDatabase;
    let s3: LocalS3;
    let keys: Keys;
    const drops: TestDatabase[] = [];

    beforeAll(async () => {
      db = await createDatabase(engine, 'bk_tricky');
      drops.push(db);
      await loadTrickySchema(engine, db.url);
      bulk = await createDatabase(engine, 'bk_bulk');
      drops.push(bulk);
      await addBulk(engine, bulk.url, 24);
      s3 = await startLocalS3();
      ({ keys } = await testKeys());
    });

    afterAll(async () => {
      for (const d of drops) await d.drop().catch(() => undefined);
      await s3.dispose();
    });

    const connection = () => parseDatabaseUrl(engine, db.url);

    for (const kind of ['file', 's3'] as const) {
      it(`backs up the tricky schema into a ${kind} vault; verify --deep passes; the dump restores equal, table by table`, async () => {
        const vault: Vault =
          kind === 'file'
            ? fileVault()
            : new S3Vault({
                objectLockMode: 'none',
                client: s3.client,
                bucket: s3.bucket,
                prefix: `rt-${engine}`,
                partSize: 5 * 1024 * 1024,
              });
        const outcome = ok(
          await runBackup({
            connection: connection(),
            vault,
            keys,
            sourceId: 'app-prod',
            dataClass: 'health',
          }),
        );
        const m = outcome.manifest;
        expect(m).toMatchObject({
          engine,
          kind: 'full',
          tier: 'yearly',
          dataClass: 'health',
          sourceId: 'app-prod',
          previous: null,
        });
        expect(m.source).toEqual({
          host: '127.0.0.1',
          port: engine === 'postgres' ? 5432 : 3306,
          user: engine === 'postgres' ? 'postgres' : 'root',
          database: db.name,
        });
        expect(manifestRows(engine, m)).toEqual(TRICKY_ROW_COUNTS[engine]);
        const a = m.artifacts[0]!;
        expect(a.bytes.raw).toBeGreaterThan(10 * 1024 * 1024);
        expect(a.bytes.compressed).toBeLessThan(a.bytes.raw);
        if (engine === 'mysql') expect(a.largestStatementBytes).toBeGreaterThan(20 * 1024 * 1024);
        expect(a.encryption.encryptionContext).toMatchObject({
          'cofre:backup-id': m.backupId,
          'cofre:database': db.name,
          'cofre:tier': 'yearly',
        });

        const report = await verifyBackup({ vault, backupId: m.backupId, deep: keys });
        expect(report.status).toBe('ok');

        const restored = await createDatabase(engine, `bk_rt_${kind}`);
        drops.push(restored);
        await loadDumpInto(engine, vault, outcome.folder, m, keys, restored.url);
        expect(await tableChecksums(engine, restored.url)).toEqual(await tableChecksums(engine, db.url));

        // A second backup the same day is daily and chains to the first.
        const second = ok(
          await runBackup({
            connection: connection(),
            vault,
            keys,
            sourceId: 'app-prod',
            dataClass: 'health',
          }),
        );
        expect(second.manifest.tier).not.toBe('yearly');
        expect(second.manifest.previous?.backupId).toBe(m.backupId);
        expect((await verifyBackup({ vault, backupId: second.manifest.backupId })).status).toBe('ok');
        expect((await readCatalog(vault)).map((e) => e.backupId)).toEqual([
          m.backupId,
          second.manifest.backupId,
        ]);
      });
    }

    if (engine === 'postgres')
      it('backs up the server globals beside the databases, as their own verified backup', async () => {
        const vault = fileVault();
        const outcomes = await runBackup({
          connection: connection(),
          databases: [db.name],
          globals: true,
          vault,
          keys,
          sourceId: 'srv',
        });
        expect(outcomes.map((o) => [o.ok, o.database])).toEqual([
          [true, db.name],
          [true, null],
        ]);
        const globals = outcomes[1] as Extract<BackupOutcome, { ok: true }>;
        expect(globals.folder).toMatch(/^full\/srv\/=globals\//);
        expect(globals.manifest).toMatchObject({ kind: 'globals', source: { database: null } });
        expect(globals.manifest.artifacts[0]!.format).toBe('pg_dumpall-globals-sql');
        expect((await verifyBackup({ vault, backupId: globals.manifest.backupId, deep: keys })).status).toBe(
          'ok',
        );
        const sql = (
          await readAll(
            await verifiedPlaintext({
              vault,
              key: `${globals.folder}/${globals.manifest.artifacts[0]!.name}`,
              artifact: globals.manifest.artifacts[0]!,
              keys,
            }),
          )
        ).toString();
        expect(sql).toMatch(/CREATE ROLE postgres;/);
      });

    it('means by "all" every database but the system ones and the excluded', async () => {
      const list = engine === 'postgres' ? listPostgresDatabases : listMysqlDatabases;
      const all = await list(connection());
      expect(all).toContain(db.name);
      expect(
        all.filter((d) =>
          ['template0', 'template1', 'information_schema', 'mysql', 'performance_schema', 'sys'].includes(d),
        ),
      ).toEqual([]);
      expect(await list(connection(), [db.name])).not.toContain(db.name);
    });

    it('counts exactly what the dump contains while rows are being written', async () => {
      const vault = fileVault();
      let stop = false;
      let inserted = 0;
      const writer = (async () => {
        const table = engine === 'postgres' ? 'audit.events' : 'audit_events';
        const run =
          engine === 'postgres'
            ? (fn: (q: (sql: string) => Promise<unknown>) => Promise<void>) =>
                withPostgresClient(db.url, (c) => fn((sql) => c.query(sql)))
            : (fn: (q: (sql: string) => Promise<unknown>) => Promise<void>) =>
                withMysqlConnection(db.url, (c) => fn((sql) => c.query(sql)));
        await run(async (q) => {
          while (!stop) {
            await q(
              `INSERT INTO ${table} (tenant_id, table_name, op, row_id) SELECT tenant_id, 'concurrent', op, row_id FROM ${table} LIMIT 1`,
            );
            inserted++;
          }
        });
      })();
      const outcome = ok(await runBackup({ connection: connection(), vault, keys }));
      stop = true;
      await writer;
      expect(inserted).toBeGreaterThan(0);
      const restored = await createDatabase(engine, 'bk_conc');
      drops.push(restored);
      await loadDumpInto(engine, vault, outcome.folder, outcome.manifest, keys, restored.url);
      expect(manifestRows(engine, outcome.manifest)).toEqual(await rowCounts(engine, restored.url));
    });

    it('fails cleanly when the database connection is killed mid-dump: nothing listed, no file left', async () => {
      const vault = fileVault();
      let killed = 0;
      const outcomes = await runBackup({
        connection: parseDatabaseUrl(engine, bulk.url),
        vault,
        keys,
        onProgress: (_db, p) => {
          if (p.storedBytes > 2 * 1024 * 1024 && killed === 0) {
            killed = -1;
            void killDumpSession(engine, bulk.name).then((n) => (killed = n));
          }
        },
      });
      expect(killed).toBeGreaterThan(0);
      expect(outcomes).toHaveLength(1);
      expect(outcomes[0]).toMatchObject({ ok: false, exitCode: 1 });
      expect((outcomes[0] as { error: string }).error).toMatch(
        engine === 'postgres' ? /pg_dump failed/ : /mysqldump failed|Dump completed/,
      );
      expect(await readCatalog(vault)).toEqual([]);
      expect(filesUnder(vault.root)).toEqual([]);
    });

    it('fails cleanly when the S3 server stops mid-upload: no object appears', async () => {
      const local = await startLocalS3();
      try {
        const vault = new S3Vault({
          objectLockMode: 'none',
          client: local.client,
          bucket: local.bucket,
          prefix: '',
          partSize: 5 * 1024 * 1024,
        });
        let stopped = false;
        const outcomes = await runBackup({
          connection: parseDatabaseUrl(engine, bulk.url),
          vault,
          keys,
          onProgress: (_db, p) => {
            if (p.storedBytes > 7 * 1024 * 1024 && !stopped) {
              stopped = true;
              void local.stop();
            }
          },
        });
        expect(stopped).toBe(true);
        expect(outcomes[0]).toMatchObject({ ok: false, exitCode: 1 });
        await local.start();
        // Nothing that looks like a backup; at most the chain's lock object, whose release failed
        // while S3 was down (the next backup takes it over once it is stale, or released).
        expect((await vault.list('')).filter((k) => !k.endsWith('/=lock.json'))).toEqual([]);
      } finally {
        await local.dispose();
      }
    });

    it('detects a flipped byte, a truncated artifact and a deleted middle backup (exit 3)', async () => {
      const vault = fileVault();
      const ids: string[] = [];
      const folders: string[] = [];
      for (let i = 0; i < 3; i++) {
        const o = ok(await runBackup({ connection: connection(), vault, keys, sourceId: 'chain' }));
        ids.push(o.manifest.backupId);
        folders.push(o.folder);
      }
      for (const id of ids)
        expect((await verifyBackup({ vault, backupId: id, deep: keys })).status).toBe('ok');

      // Deleted middle backup: the third's chain link finds it gone before its time.
      rmSync(path.join(vault.root, folders[1]!), { recursive: true, force: true });
      await expect(verifyBackup({ vault, backupId: ids[2]! })).rejects.toThrow(
        new RegExp(`hash chain: previous backup ${ids[1]!} is gone although it was to be kept until`),
      );

      // Flipped byte in the first backup's artifact.
      const first = (await readCatalog(vault))[0]!;
      const artifactPath = path.join(vault.root, first.folder, first.manifest!.artifacts[0]!.name);
      chmodSync(artifactPath, 0o600);
      const bytes = readFileSync(artifactPath);
      bytes[Math.floor(bytes.length / 2)]! ^= 0x40;
      writeFileSync(artifactPath, bytes);
      const quick = verifyBackup({ vault, backupId: ids[0]! });
      await expect(quick).rejects.toBeInstanceOf(IntegrityError);
      await expect(quick).rejects.toThrow(
        /artifact .*\.zst\.enc: SHA-256 [0-9a-f]{64} differs from the manifest's/,
      );
      // Deep reads the file once: the damage is named as a SHA-256 mismatch and as the frame that
      // no longer authenticates.
      const deep = verifyBackup({ vault, backupId: ids[0]!, deep: keys });
      await expect(deep).rejects.toThrow(
        /artifact .*\.zst\.enc: SHA-256 [0-9a-f]{64} differs from the manifest's/,
      );
      await expect(deep).rejects.toThrow(/cannot be decrypted and decompressed/);

      // Truncated artifact.
      writeFileSync(artifactPath, bytes.subarray(0, bytes.length - 100));
      await expect(verifyBackup({ vault, backupId: ids[0]! })).rejects.toThrow(
        /has \d+ bytes, the manifest records \d+/,
      );
    });
  });
}
