import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import {
  chmodSync,
  cpSync,
  createReadStream,
  existsSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { RowDataPacket } from 'mysql2';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseDatabaseUrl } from '../../core/sources/connection';
import { parseManifest, sha256, type Manifest } from '../../core/catalog/manifest';
import { spawnMysqlClient } from '../../core/sources/mysql';
import { postgresEnv } from '../../core/sources/postgres';
import { CancelledError } from '../../core/util/errors';
import { exportBackup } from '../../core/offline/export';
import { FileVault, S3Vault } from '../../core/vault';
import {
  createDatabase,
  describeDatabase,
  loadTrickySchema,
  tableChecksums,
  withMysqlConnection,
  withPostgresClient,
  type TableChecksum,
  type TestDatabase,
} from '../helpers/databases';
import { cofre, tempDir } from '../helpers/cli';
import { testKeys } from '../helpers/engine';
import { startLocalS3, type LocalS3 } from '../helpers/s3';

/** Every file under `dir`, relative to it, sorted. */
function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

/** Every entry (files and directories) under `dir`. */
function entries(dir: string): string[] {
  return readdirSync(dir, { recursive: true }).map(String).sort();
}

/** The row-count SQL of RESTORE_INSTRUCTIONS.md. */
function rowCountSql(instructions: string): string {
  const match = /```sql\n(-- Cofre: expected row counts[\s\S]*?)```/.exec(instructions);
  if (!match) throw new Error('no row-count SQL in the instructions');
  return match[1]!;
}

for (const engine of ['postgres', 'mysql'] as const) {
  describeDatabase(engine, `cofre export and cofre decrypt on ${engine}`, () => {
    let db: TestDatabase;
    let s3: LocalS3;
    let keyFile: string;
    let escrowPublic: string;
    let escrowPrivate: string;
    let sourceChecksums: Record<string, TableChecksum>;
    const drops: TestDatabase[] = [];
    const s3Vault = `s3://cofre-vault/export-${engine}`;
    let fileVaultDir: string;
    /** Backups in the S3 vault (the second chains to the first) and in the file vault. */
    let s3Ids: string[];
    let fileId: string;

    async function backup(vault: string, env: NodeJS.ProcessEnv): Promise<string> {
      const result = await cofre(
        [
          'backup',
          '--engine',
          engine,
          '--url',
          db.url,
          '--vault',
          vault,
          '--key-file',
          keyFile,
          '--escrow-public-key',
          escrowPublic,
          '--id',
          'clinic',
          '--class',
          'health',
          '--json',
        ],
        env,
      );
      expect(result.stderr).toMatch(/^OK /m);
      expect(result.code).toBe(0);
      return (JSON.parse(result.stdout) as { backups: { backupId: string }[] }).backups[0]!.backupId;
    }

    beforeAll(async () => {
      db = await createDatabase(engine, 'exp_src');
      drops.push(db);
      await loadTrickySchema(engine, db.url);
      sourceChecksums = await tableChecksums(engine, db.url);
      s3 = await startLocalS3();
      ({ keyFile } = await testKeys());
      const keyDir = tempDir('escrow');
      const pair = generateKeyPairSync('rsa', { modulusLength: 3072 });
      escrowPublic = path.join(keyDir, 'escrow-public.pem');
      escrowPrivate = path.join(keyDir, 'escrow-private.pem');
      writeFileSync(escrowPublic, pair.publicKey.export({ type: 'spki', format: 'pem' }));
      writeFileSync(escrowPrivate, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      s3Ids = [await backup(s3Vault, s3.env), await backup(s3Vault, s3.env)];
      fileVaultDir = tempDir('exp-vault');
      fileId = await backup(`file://${fileVaultDir}`, process.env);
    });

    afterAll(async () => {
      for (const d of drops) await d.drop().catch(() => undefined);
      await s3.dispose();
    });

    /** Loads a plaintext dump file with the engine's own tool, as RESTORE_INSTRUCTIONS.md says. */
    async function loadWithStandardTools(file: string, target: TestDatabase): Promise<void> {
      const c = parseDatabaseUrl(engine, target.url);
      if (engine === 'postgres') {
        const list = spawnSync('pg_restore', ['--list', file], { encoding: 'utf8' });
        expect(list.status).toBe(0);
        expect(list.stdout).toMatch(/TABLE DATA public patients/);
        const restore = spawnSync(
          'pg_restore',
          ['--no-owner', '--no-acl', '--exit-on-error', '--jobs=4', `--dbname=${target.name}`, file],
          { encoding: 'utf8', env: { ...process.env, ...postgresEnv(c, target.name) } },
        );
        expect(restore.stderr).toBe('');
        expect(restore.status).toBe(0);
        return;
      }
      // mysql --binary-mode --max-allowed-packet=1G NEWDB < FILE (credentials from a piped option file).
      const tool = spawnMysqlClient(c, target.name);
      await pipeline(createReadStream(file), tool.stdin!);
      await tool.finished;
    }

    it('exports a chained backup from S3: the folder is a file vault that sha256sum -c and cofre verify --deep accept', async () => {
      const id = s3Ids[1]!;
      const to = path.join(tempDir('exp-s3'), 'usb-disk-copy');
      const result = await cofre(
        ['export', '--vault', s3Vault, '--backup', id, '--to', to, '--json'],
        s3.env,
      );
      expect(result.stderr).toMatch(new RegExp(`OK exported ${id} from ${s3Vault} to ${to}`));
      expect(result.code).toBe(0);
      const report = JSON.parse(result.stdout) as { folder: string; files: { path: string }[] };
      const folder = report.folder;
      expect(folder).toBe(`full/clinic/${db.name}/${id}`);
      const artifactName = `${db.name}.${engine === 'postgres' ? 'pgdump' : 'sql'}.zst.enc`;
      expect(files(to)).toEqual(
        [
          'EXPORT.json',
          'RESTORE_INSTRUCTIONS.md',
          'checksum.sha256',
          `${folder}/${artifactName}`,
          `${folder}/manifest.json`,
        ].sort(),
      );

      // Byte for byte what the vault holds.
      const vault = new S3Vault({
        objectLockMode: 'none',
        client: s3.client,
        bucket: s3.bucket,
        prefix: `export-${engine}`,
      });
      for (const name of [artifactName, 'manifest.json'])
        expect(
          readFileSync(path.join(to, folder, name)).equals((await vault.readBytes(`${folder}/${name}`))!),
        ).toBe(true);
      const manifest = (
        parseManifest(readFileSync(path.join(to, folder, 'manifest.json'))) as { manifest: Manifest }
      ).manifest;
      expect(readFileSync(path.join(to, 'checksum.sha256'), 'utf8')).toBe(
        `${manifest.artifacts[0]!.sha256.stored}  ${folder}/${artifactName}\n` +
          `${sha256(readFileSync(path.join(to, folder, 'manifest.json')))}  ${folder}/manifest.json\n`,
      );
      const check = spawnSync('sha256sum', ['-c', 'checksum.sha256'], { cwd: to, encoding: 'utf8' });
      expect(check.stdout).toBe(`${folder}/${artifactName}: OK\n${folder}/manifest.json: OK\n`);
      expect(check.status).toBe(0);
      const marker = JSON.parse(readFileSync(path.join(to, 'EXPORT.json'), 'utf8')) as Record<string, string>;
      expect(marker).toEqual({ backupId: id, exportedAt: expect.any(String) as string, from: s3Vault });

      // The exported folder verifies deeply with the escrow key alone; its chain link is not checkable offline.
      const verified = await cofre([
        'verify',
        '--vault',
        `file://${to}`,
        '--backup',
        id,
        '--deep',
        '--escrow-private-key',
        escrowPrivate,
        '--json',
      ]);
      expect(verified.stderr).toContain(
        `hash chain: previous backup ${s3Ids[0]!} (manifest SHA-256 ${manifest.previous!.sha256}) is not checkable in an offline export`,
      );
      expect(verified.code).toBe(0);
      expect(JSON.parse(verified.stdout)).toMatchObject({
        ok: true,
        reports: [{ status: 'ok', deep: true }],
      });

      // Only the export's own backup is excused: a marker naming another backup excuses nothing.
      const markerPath = path.join(to, 'EXPORT.json');
      chmodSync(markerPath, 0o600);
      writeFileSync(markerPath, JSON.stringify({ ...marker, backupId: s3Ids[0] }));
      const strict = await cofre(['verify', '--vault', `file://${to}`, '--backup', id]);
      expect(strict.code).toBe(3);
      expect(strict.stderr).toMatch(
        new RegExp(`previous backup ${s3Ids[0]!} is gone although it was to be kept`),
      );
    });

    it('decrypts an exported backup with only the escrow private key; the engine’s own tool restores it equal', async () => {
      const to = tempDir('exp-file'); // exists and is empty
      const exported = await cofre([
        'export',
        '--vault',
        `file://${fileVaultDir}`,
        '--backup',
        fileId,
        '--to',
        to,
      ]);
      expect(exported.code).toBe(0);
      for (const f of files(fileVaultDir))
        expect(readFileSync(path.join(to, f)).equals(readFileSync(path.join(fileVaultDir, f)))).toBe(true);
      expect(spawnSync('sha256sum', ['-c', '--quiet', 'checksum.sha256'], { cwd: to }).status).toBe(0);

      const out = path.join(tempDir('plain'), engine === 'postgres' ? 'clinic.pgdump' : 'clinic.sql');
      const decrypted = await cofre([
        'decrypt',
        '--vault',
        `file://${to}`,
        '--backup',
        fileId,
        '--escrow-private-key',
        escrowPrivate,
        '--out',
        out,
        '--json',
      ]);
      expect(decrypted.stderr).toMatch(/OK decrypted .* as in the manifest/);
      expect(decrypted.code).toBe(0);
      const manifest = (
        parseManifest(
          readFileSync(
            path.join(
              to,
              files(to).find((f) => f.endsWith('manifest.json'))!,
            ),
          ),
        ) as {
          manifest: Manifest;
        }
      ).manifest;
      const artifact = manifest.artifacts[0]!;
      expect(JSON.parse(decrypted.stdout)).toMatchObject({
        ok: true,
        backupId: fileId,
        out,
        bytes: artifact.bytes.raw,
        sha256: artifact.sha256.plain,
      });
      // The plain dump: decompressed too, private to its owner, nothing else left in its directory.
      expect(sha256(readFileSync(out))).toBe(artifact.sha256.plain);
      expect(statSync(out).mode & 0o777).toBe(0o600);
      expect(readdirSync(path.dirname(out))).toEqual([path.basename(out)]);

      const restored = await createDatabase(engine, 'exp_std');
      drops.push(restored);
      await loadWithStandardTools(out, restored);
      expect(await tableChecksums(engine, restored.url)).toEqual(sourceChecksums);

      // The instructions' row-count SQL, run in the restored database, says ok for every table.
      const sql = rowCountSql(readFileSync(path.join(to, 'RESTORE_INSTRUCTIONS.md'), 'utf8'));
      const rows =
        engine === 'postgres'
          ? await withPostgresClient(restored.url, async (c) => (await c.query<{ status: string }>(sql)).rows)
          : await withMysqlConnection(restored.url, async (c) => (await c.query<RowDataPacket[]>(sql))[0]);
      expect(rows).toHaveLength(artifact.tables.length);
      expect(rows.map((r) => String(r.status))).toEqual(artifact.tables.map(() => 'ok'));
      // … and a lost row shows up first as a MISMATCH.
      const items = engine === 'postgres' ? 'public.prescription_items' : 'prescription_items';
      if (engine === 'postgres')
        await withPostgresClient(restored.url, (c) =>
          c.query(`DELETE FROM ${items} WHERE ctid = (SELECT ctid FROM ${items} LIMIT 1)`),
        );
      else await withMysqlConnection(restored.url, (c) => c.query(`DELETE FROM ${items} LIMIT 1`));
      const after =
        engine === 'postgres'
          ? await withPostgresClient(
              restored.url,
              async (c) => (await c.query<{ table_name: string; status: string }>(sql)).rows,
            )
          : await withMysqlConnection(restored.url, async (c) => (await c.query<RowDataPacket[]>(sql))[0]);
      expect(after.filter((r) => r.status === 'MISMATCH').map((r) => String(r.table_name))).toContain(items);
      expect(String(after[0]!.status)).toBe('MISMATCH');
    });

    it('writes RESTORE_INSTRUCTIONS.md for that backup and engine: id, commands, keys, row counts', async () => {
      const to = path.join(tempDir('exp-doc'), 'copy');
      expect(
        (await cofre(['export', '--vault', s3Vault, '--backup', s3Ids[0]!, '--to', to], s3.env)).code,
      ).toBe(0);
      const text = readFileSync(path.join(to, 'RESTORE_INSTRUCTIONS.md'), 'utf8');
      const manifestFile = files(to).find((f) => f.endsWith('manifest.json'))!;
      const manifest = (parseManifest(readFileSync(path.join(to, manifestFile))) as { manifest: Manifest })
        .manifest;
      const artifact = manifest.artifacts[0]!;
      expect(text).toContain(`# Restore instructions: backup \`${s3Ids[0]!}\``);
      expect(text).toContain('sha256sum -c checksum.sha256');
      expect(text).toContain(
        `npx cofre verify  --vault "file://$EXPORT" --backup ${s3Ids[0]!} --deep --escrow-private-key /path/to/escrow-private.pem`,
      );
      expect(text).toContain(`npx cofre restore --vault "file://$EXPORT" --backup ${s3Ids[0]!} --target-url`);
      expect(text).toContain(
        `npx cofre decrypt --vault "file://$EXPORT" --backup ${s3Ids[0]!} --escrow-private-key /path/to/escrow-private.pem --out`,
      );
      expect(text).toContain('decrypted *and* decompressed');
      const escrowId = artifact.encryption.keyIds.find((k) => k.startsWith('escrow:'))!;
      const localId = artifact.encryption.keyIds.find((k) => k.startsWith('local:'))!;
      expect(text).toContain(`| escrow key used | **yes**: \`${escrowId.slice('escrow:'.length)}\` |`);
      expect(text).toContain(`\`${localId}\``);
      if (engine === 'postgres') {
        expect(text).toContain(
          'pg_restore --no-owner --no-acl --exit-on-error --jobs=4 --dbname="$NEWDB" "$DUMP"',
        );
        expect(text).toContain('createdb --template=template0 "$NEWDB"');
        expect(text).toContain('| `public.patients` | 1,181 |');
        expect(text).not.toContain('max_allowed_packet');
      } else {
        expect(text).toContain(
          'mysql -h HOST -P 3306 -u USER -p --binary-mode --max-allowed-packet=1G "$NEWDB" < "$DUMP"',
        );
        const largest = artifact.largestStatementBytes!;
        expect(text).toContain(
          `The largest statement in this dump is ${largest.toLocaleString('en-US')} bytes`,
        );
        expect(text).toContain('SET GLOBAL max_allowed_packet = 67108864');
        expect(text).toContain('| `patients` | 1,181 |');
      }
      expect(text).toContain(
        `| **total** | **${artifact.tables.reduce((n, t) => n + t.rows, 0).toLocaleString('en-US')}** |`,
      );

      // The fingerprint command the instructions give prints the escrow key id of the manifest.
      const fp = spawnSync(
        'bash',
        ['-c', `openssl pkey -in "$1" -pubout -outform DER | sha256sum | cut -c1-16`, 'fp', escrowPrivate],
        { encoding: 'utf8' },
      );
      expect(`escrow:${fp.stdout.trim()}`).toBe(escrowId);
    });

    it('decrypts straight from S3 with the local key file too', async () => {
      const out = path.join(tempDir('plain-s3'), 'dump');
      const result = await cofre(
        ['decrypt', '--vault', s3Vault, '--backup', s3Ids[0]!, '--key-file', keyFile, '--out', out],
        s3.env,
      );
      expect(result.code).toBe(0);
      const listed = await cofre(['list', '--vault', s3Vault, '--json'], s3.env);
      expect(listed.code).toBe(0);
      const vault = new S3Vault({
        objectLockMode: 'none',
        client: s3.client,
        bucket: s3.bucket,
        prefix: `export-${engine}`,
      });
      const key = (await vault.list('full/')).find(
        (k) => k.includes(s3Ids[0]!) && k.endsWith('manifest.json'),
      )!;
      const manifest = (parseManifest((await vault.readBytes(key))!) as { manifest: Manifest }).manifest;
      expect(sha256(readFileSync(out))).toBe(manifest.artifacts[0]!.sha256.plain);
    });

    it('bad inputs exit 2 and write nothing', async () => {
      const vault = `file://${fileVaultDir}`;
      const unknown = '20261123T000000000Z-00000000';
      // --to not empty: left exactly as it was.
      const busy = tempDir('busy');
      writeFileSync(path.join(busy, 'notes.txt'), 'mine');
      let r = await cofre(['export', '--vault', vault, '--backup', fileId, '--to', busy]);
      expect([r.code, r.stderr]).toEqual([
        2,
        expect.stringMatching(/--to: .* is not empty \(1 entry, e\.g\. notes\.txt\)/),
      ]);
      expect(entries(busy)).toEqual(['notes.txt']);
      // --to whose parent does not exist (an unmounted disk): nothing created.
      const unmounted = path.join(tempDir('mnt'), 'usb', 'copy');
      r = await cofre(['export', '--vault', vault, '--backup', fileId, '--to', unmounted]);
      expect([r.code, r.stderr]).toEqual([
        2,
        expect.stringMatching(/--to: the parent directory .* does not exist/),
      ]);
      expect(existsSync(path.dirname(unmounted))).toBe(false);
      // --to inside the vault.
      r = await cofre(['export', '--vault', vault, '--backup', fileId, '--to', path.join(fileVaultDir, 'x')]);
      expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/--to: .* is inside the vault/)]);
      // Unknown backup: --to not created.
      const fresh = path.join(tempDir('fresh'), 'copy');
      r = await cofre(['export', '--vault', vault, '--backup', unknown, '--to', fresh]);
      expect([r.code, r.stderr]).toEqual([
        2,
        expect.stringMatching(new RegExp(`--backup: no backup "${unknown}"`)),
      ]);
      expect(existsSync(fresh)).toBe(false);
      r = await cofre(['export', '--vault', vault, '--backup', fileId]);
      expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/required option '--to <dir>'/)]);

      // --out exists: untouched.
      const outDir = tempDir('out');
      const existing = path.join(outDir, 'dump');
      writeFileSync(existing, 'keep me');
      r = await cofre([
        'decrypt',
        '--vault',
        vault,
        '--backup',
        fileId,
        '--escrow-private-key',
        escrowPrivate,
        '--out',
        existing,
      ]);
      expect([r.code, r.stderr]).toEqual([
        2,
        expect.stringMatching(/--out: .* already exists; Cofre never overwrites a file/),
      ]);
      expect(readFileSync(existing, 'utf8')).toBe('keep me');
      // Unknown backup, no key, two keys, a key the backup was not encrypted for.
      const out = path.join(outDir, 'new');
      const otherPair = generateKeyPairSync('rsa', { modulusLength: 3072 });
      const otherKey = path.join(outDir, 'other.pem');
      writeFileSync(otherKey, otherPair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      for (const [args, message] of [
        [['--backup', unknown, '--escrow-private-key', escrowPrivate], /--backup: no backup/],
        [
          ['--backup', fileId],
          /KEY: expected exactly one of --key-file FILE, --kms-key ARN or --escrow-private-key PEM/,
        ],
        [
          ['--backup', fileId, '--escrow-private-key', escrowPrivate, '--key-file', keyFile],
          /KEY: expected exactly one/,
        ],
        [
          ['--backup', fileId, '--escrow-private-key', otherKey],
          /KEY: the given key \(escrow:[0-9a-f]{16}\) is not one that backup/,
        ],
      ] as const) {
        r = await cofre(['decrypt', '--vault', vault, ...args, '--out', out]);
        expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(message)]);
      }
      expect(readdirSync(outDir).sort()).toEqual(['dump', 'other.pem']);
    });

    it('cancelled mid-copy (SIGTERM): the export stops and leaves nothing', async () => {
      const controller = new AbortController();
      const inner = new FileVault(fileVaultDir);
      // The vault as it is, except that the first chunk read triggers the cancellation.
      const vault = Object.assign(Object.create(inner) as FileVault, {
        read: async (key: string, signal?: AbortSignal) => {
          const stream = await inner.read(key, signal);
          stream.once('data', () => {
            controller.abort('SIGTERM');
          });
          return stream;
        },
      });
      const parent = tempDir('exp-cancel');
      const run = exportBackup({
        vault,
        backupId: fileId,
        to: path.join(parent, 'copy'),
        signal: controller.signal,
      });
      await expect(run).rejects.toBeInstanceOf(CancelledError);
      await expect(run).rejects.toThrow('cancelled: SIGTERM; nothing was kept');
      expect(readdirSync(parent)).toEqual([]);
    });

    it('a flipped byte in the vault: export and decrypt exit 3 and leave nothing behind', async () => {
      const damaged = tempDir('damaged');
      cpSync(fileVaultDir, damaged, { recursive: true });
      const artifactFile = files(damaged).find((f) => f.endsWith('.zst.enc'))!;
      const artifactPath = path.join(damaged, artifactFile);
      chmodSync(artifactPath, 0o600);
      const bytes = readFileSync(artifactPath);
      bytes[Math.floor(bytes.length / 3)]! ^= 0x01;
      writeFileSync(artifactPath, bytes);

      const parent = tempDir('exp-bad');
      const to = path.join(parent, 'copy');
      let r = await cofre(['export', '--vault', `file://${damaged}`, '--backup', fileId, '--to', to]);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(
        new RegExp(
          `export of backup ${fileId} stopped and nothing was kept in ${to}: artifact ${artifactFile}.* the manifest records \\d+ bytes with SHA-256 [0-9a-f]{64}`,
        ),
      );
      expect(readdirSync(parent)).toEqual([]);
      // Into an existing empty directory: it stays empty.
      const empty = tempDir('exp-bad-empty');
      r = await cofre(['export', '--vault', `file://${damaged}`, '--backup', fileId, '--to', empty]);
      expect(r.code).toBe(3);
      expect(entries(empty)).toEqual([]);

      const outDir = tempDir('out-bad');
      r = await cofre([
        'decrypt',
        '--vault',
        `file://${damaged}`,
        '--backup',
        fileId,
        '--escrow-private-key',
        escrowPrivate,
        '--out',
        path.join(outDir, 'dump'),
      ]);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/cannot be authenticated, decrypted and decompressed/);
      expect(readdirSync(outDir)).toEqual([]);
    });
  });
}
