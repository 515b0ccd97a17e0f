/**
 * Issue 16, items 9 and 11 on real file systems: a read-only mount (EROFS), a directory this user
 * may not write (EACCES), and a full disk (ENOSPC) at the artifact and at the manifest. Each is said
 * as what it is, with the documented exit code, and leaves nothing that looks like a backup.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperationalError } from '../../core/util/errors';
import { FileVault } from '../../core/vault';
import { cofre, filesUnder, tempDir } from '../helpers/cli';
import {
  createDatabase,
  databaseAvailable,
  describeDatabase,
  PG_ADMIN_URL,
  uniqueDatabaseName,
  withMysqlConnection,
  withPostgresClient,
  type TestDatabase,
} from '../helpers/databases';
import { testKeys } from '../helpers/engine';
import { reasonLine, recordFault } from '../helpers/fault-matrix';
import { mountTmpfs, type Tmpfs } from '../helpers/tmpfs';

const ROOT = path.join(__dirname, '..', '..');

/** Whether a tmpfs can be mounted here (root with the mount capability); the reason when not. */
const mountProblem = (() => {
  const probe = mountTmpfs('probe', 1);
  if (typeof probe === 'string') return probe;
  probe.unmount();
  return undefined;
})();
if (mountProblem) console.warn(`[cofre tests] skipping the tmpfs fault tests: ${mountProblem}`);

/** Every file under `dir` with its bytes: what "nothing changed" is compared with. */
function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(filesUnder(dir).map((f) => [f, readFileSync(f).toString('base64')] as const));
}

async function timed<T>(fn: () => Promise<T>): Promise<T & { ms: number }> {
  const started = Date.now();
  const out = await fn();
  return { ...out, ms: Date.now() - started };
}

describe.skipIf(mountProblem !== undefined)('a read-only file system (EROFS)', () => {
  let fs: Tmpfs;
  let source: TestDatabase | undefined;
  let keyFile: string;
  let backupId: string;
  let pgProblem: string | undefined;

  beforeAll(async () => {
    pgProblem = await databaseAvailable('postgres');
    if (pgProblem && process.env.CI === 'true') throw new Error(`PostgreSQL is required: ${pgProblem}`);
    const mounted = mountTmpfs('erofs', 4);
    if (typeof mounted === 'string') throw new Error(mounted);
    fs = mounted;
    ({ keyFile } = await testKeys());
    mkdirSync(path.join(fs.dir, 'out'));
    if (!pgProblem) {
      source = await createDatabase('postgres', 'erofs_src');
      await withPostgresClient(source.url, (c) =>
        c.query('CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 100) g'),
      );
      const r = await cofre([
        'backup',
        '--engine',
        'postgres',
        '--url',
        source.url,
        '--vault',
        `file://${fs.dir}/vault`,
        '--key-file',
        keyFile,
        '--json',
      ]);
      expect(r.code).toBe(0);
      backupId = (JSON.parse(r.stdout) as { backups: { backupId: string }[] }).backups[0]!.backupId;
    }
    fs.readOnly();
  }, 60_000);

  afterAll(async () => {
    (fs as Tmpfs | undefined)?.unmount();
    await source?.drop();
  });

  const cases: [string, string, (dir: string) => string[], RegExp][] = [
    [
      'backup',
      'into an existing vault',
      (d) => ['backup', '--engine', 'postgres', '--url', source!.url, '--vault', `file://${d}/vault`],
      /^cofre: --vault: read-only file system at \/.*\/vault; nothing was written$/m,
    ],
    [
      'backup',
      'into a new vault folder',
      (d) => ['backup', '--engine', 'postgres', '--url', source!.url, '--vault', `file://${d}/new-vault`],
      new RegExp(
        `^cofre: --vault: read-only file system at ${os.tmpdir().replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\/cofre-erofs-\\w+; nothing was written$`,
        'm',
      ),
    ],
    [
      'export',
      'to a folder on the mount',
      (d) => ['export', '--vault', `file://${d}/vault`, '--backup', backupId, '--to', `${d}/out/copy`],
      /^cofre: --to: read-only file system at \/.*\/out; nothing was written$/m,
    ],
    [
      'decrypt',
      'to a file on the mount',
      (d) => ['decrypt', '--vault', `file://${d}/vault`, '--backup', backupId, '--out', `${d}/out/dump.sql`],
      /^cofre: --out: read-only file system at \/.*\/out; nothing was written$/m,
    ],
    [
      'keygen',
      'a key file on the mount',
      (d) => ['keygen', '--out', `${d}/out/new.key`],
      /^cofre: --out: cannot create .*new\.key: read-only file system at \/.*\/out$/m,
    ],
    [
      'restore',
      '--spill-dir on the mount',
      (d) => [
        'restore',
        '--vault',
        `file://${d}/vault`,
        '--backup',
        backupId,
        '--target-url',
        PG_ADMIN_URL.replace(/\/[^/]*$/, `/${uniqueDatabaseName('erofs_dst')}`),
        '--jobs',
        '2',
        '--spill-dir',
        `${d}/out`,
      ],
      /^cofre: --spill-dir: read-only file system at \/.*\/out; nothing was changed$/m,
    ],
  ];
  for (const [command, where, args, expected] of cases)
    it(`${command} ${where}: exit 2 naming the read-only file system, nothing changed`, async (ctx) => {
      if (pgProblem && command !== 'keygen') ctx.skip();
      const before = snapshot(fs.dir);
      const withKey = command === 'keygen' || command === 'export' ? [] : ['--key-file', keyFile];
      const r = await timed(() => cofre([...args(fs.dir), ...withKey]));
      expect(r.stderr).toMatch(expected);
      expect(r.stderr).not.toMatch(/ENOENT|no such file/);
      expect(r.code).toBe(2);
      expect(snapshot(fs.dir)).toEqual(before);
      recordFault({
        engine: command === 'keygen' ? '-' : 'postgres',
        fault: 'read-only file system (EROFS)',
        operation: `${command} ${where}`,
        outcome: `exit ${r.code}`,
        reason: reasonLine(r.stderr),
        ms: r.ms,
        leftovers: 'none (every file on the mount unchanged)',
      });
    });

  it('a write that meets a read-only mount mid-run fails naming it (not ENOENT), and leaves nothing', async () => {
    const vault = new FileVault(path.join(fs.dir, 'vault'));
    const before = snapshot(fs.dir);
    const writing = vault.write(
      'full/x/y/20261128T000000000Z-00000000/a.enc',
      Readable.from([Buffer.alloc(10)]),
      {
        tags: {},
      },
    );
    await expect(writing).rejects.toBeInstanceOf(OperationalError);
    await expect(writing).rejects.toThrow(/cannot write full\/x\/y\/.*a\.enc: read-only file system at \//);
    await expect(vault.createExclusive('full/x/y/=lock.json', Buffer.from('{}'))).rejects.toThrow(
      /read-only file system at \//,
    );
    expect(snapshot(fs.dir)).toEqual(before);
  });
});

// Root may write anywhere: a directory it may not write is tried as the unprivileged user "nobody".
const nobodyProblem =
  process.getuid?.() !== 0
    ? 'not root: cannot run as another user'
    : spawnSync('runuser', ['-u', 'nobody', '--', 'true']).status !== 0
      ? 'runuser -u nobody is not available'
      : undefined;
if (nobodyProblem) console.warn(`[cofre tests] skipping the EACCES tests: ${nobodyProblem}`);

describe.skipIf(nobodyProblem !== undefined)('a directory this user may not write (EACCES)', () => {
  function asNobody(args: string[]) {
    const started = Date.now();
    const r = spawnSync(
      'runuser',
      ['-u', 'nobody', '--', process.execPath, path.join(ROOT, 'cli', 'bin.js'), ...args],
      {
        cwd: ROOT,
        encoding: 'utf8',
        env: { ...process.env, HOME: '/tmp' },
        timeout: 60_000,
      },
    );
    return { code: r.status, stderr: r.stderr, ms: Date.now() - started };
  }

  it('backup, keygen and --key-file say "permission denied at PATH", exit 2, nothing changed', () => {
    const dir = tempDir('eacces');
    chmodSync(dir, 0o755);
    const closed = path.join(dir, 'closed');
    mkdirSync(closed, { mode: 0o755 }); // root's: others may read, not write
    const key = path.join(dir, 'root.key');
    writeFileSync(key, Buffer.alloc(32, 7), { mode: 0o600 }); // readable by root only
    const readable = path.join(dir, 'nobody.key');
    writeFileSync(readable, Buffer.alloc(32, 7), { mode: 0o600 });
    spawnSync('chown', ['nobody', readable]);
    const open = path.join(dir, 'open');
    mkdirSync(open);
    spawnSync('chown', ['nobody', open]);
    const runs: [string, string[], RegExp][] = [
      [
        'backup into a vault folder it may not write',
        [
          'backup',
          '--engine',
          'postgres',
          '--url',
          'postgres://u@127.0.0.1:1/db',
          '--vault',
          `file://${closed}/vault`,
          '--key-file',
          readable,
        ],
        /^cofre: --vault: permission denied at .*\/closed; nothing was written$/m,
      ],
      [
        'keygen --out in a folder it may not write',
        ['keygen', '--out', `${closed}/k`],
        /^cofre: --out: cannot create .*: permission denied at .*\/closed$/m,
      ],
      [
        'a --key-file it may not read',
        [
          'backup',
          '--engine',
          'postgres',
          '--url',
          'postgres://u@127.0.0.1:1/db',
          '--vault',
          `file://${open}/v`,
          '--key-file',
          key,
        ],
        /^cofre: --key-file: cannot read .*root\.key: permission denied at .*root\.key$/m,
      ],
    ];
    for (const [what, args, expected] of runs) {
      const r = asNobody(args);
      expect(r.stderr, what).toMatch(expected);
      expect(r.code, what).toBe(2);
      recordFault({
        engine: '-',
        fault: 'permission denied (EACCES)',
        operation: what,
        outcome: `exit ${r.code}`,
        reason: reasonLine(r.stderr),
        ms: r.ms,
        leftovers: 'none',
      });
    }
    expect(filesUnder(closed)).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);
});

for (const engine of ['postgres', 'mysql'] as const)
  describeDatabase(engine, `a full disk (ENOSPC) during a file-vault backup (${engine})`, () => {
    let fs: Tmpfs | undefined;
    let source: TestDatabase;
    let keyFile: string;

    beforeAll(async () => {
      source = await createDatabase(engine, 'enospc');
      // ~20,000 random 16-byte values: an artifact of a few hundred KB that compresses little.
      if (engine === 'postgres')
        await withPostgresClient(source.url, (c) =>
          c.query(
            `CREATE TABLE r AS SELECT g AS id, decode(md5(random()::text), 'hex') AS b FROM generate_series(1, 20000) g`,
          ),
        );
      else
        await withMysqlConnection(source.url, async (c) => {
          await c.query('CREATE TABLE r (id INT PRIMARY KEY, b VARBINARY(16))');
          await c.query('SET SESSION max_recursive_iterations = 30000');
          await c.query(
            `INSERT INTO r WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 20000)
             SELECT n, UNHEX(MD5(RAND())) FROM g`,
          );
        });
      ({ keyFile } = await testKeys());
      if (mountProblem === undefined) {
        const mounted = mountTmpfs('enospc', 4);
        if (typeof mounted === 'string') throw new Error(mounted);
        fs = mounted;
      }
    }, 60_000);

    afterAll(async () => {
      fs?.unmount();
      await (source as TestDatabase | undefined)?.drop();
    });

    const backup = (vaultDir: string) =>
      timed(() =>
        cofre([
          'backup',
          '--engine',
          engine,
          '--url',
          source.url,
          '--vault',
          `file://${vaultDir}`,
          '--key-file',
          keyFile,
          '--json',
        ]),
      );

    /** Fills the disk so that exactly `pages` 4 KiB pages stay free. */
    function leaveFree(pages: number): string {
      const filler = path.join(fs!.dir, 'filler');
      const bytes = fs!.free() - pages * 4096;
      writeFileSync(filler, Buffer.alloc(bytes));
      expect(fs!.free()).toBe(pages * 4096);
      return filler;
    }

    it.skipIf(mountProblem !== undefined)(
      'at the artifact and at the manifest: exit 1 saying the disk is full, no backup-like leftover; the next run succeeds',
      async () => {
        // How many pages this database's artifact takes (a trial backup, then removed).
        const trial = await backup(path.join(fs!.dir, 'trial'));
        expect(trial.code).toBe(0);
        const artifact = filesUnder(path.join(fs!.dir, 'trial')).find((f) => f.endsWith('.enc'))!;
        const pages = Math.ceil(readFileSync(artifact).length / 4096);
        expect(pages).toBeGreaterThan(20);
        rmSync(path.join(fs!.dir, 'trial'), { recursive: true, force: true });
        const vaultDir = path.join(fs!.dir, 'vault');

        for (const [at, free] of [
          ['artifact', 1 + Math.floor(pages / 2)], // the lock, and half the artifact
          ['manifest', 1 + pages], // the lock and the whole artifact, not one page more
        ] as const) {
          const filler = leaveFree(free);
          const r = await backup(vaultDir);
          rmSync(filler);
          const reason = reasonLine(r.stderr);
          expect(r.code, r.stderr).toBe(1);
          expect(reason).toMatch(
            at === 'artifact'
              ? /^FAILED .*: .*cannot write full\/.*\.enc: no space left on the device at \//
              : /^FAILED .*: manifest not written: .*cannot write full\/.*\/manifest\.json: no space left on the device at \/.*; its artifact was removed$/,
          );
          expect(r.stderr).not.toMatch(/\n\s+at /);
          // Nothing that looks like a backup: no artifact, no manifest, no temporary file, no lock.
          expect(filesUnder(vaultDir)).toEqual([]);
          recordFault({
            engine,
            fault: `disk full (ENOSPC) at the ${at}`,
            operation: 'full backup (file vault)',
            outcome: `exit ${r.code}`,
            reason,
            ms: r.ms,
            leftovers: 'none (artifact, temporary file and chain lock removed by the failing run)',
          });
        }
        // With space again, the next backup runs and finds nothing to clean.
        const next = await backup(vaultDir);
        expect(next.code).toBe(0);
        expect(next.stderr).not.toMatch(/removing|LEFTOVER|stale/);
        const verify = await cofre([
          'verify',
          '--vault',
          `file://${vaultDir}`,
          '--all',
          '--key-file',
          keyFile,
        ]);
        expect(verify.code).toBe(0);
        expect(verify.stderr).not.toMatch(/LEFTOVER/);
      },
      120_000,
    );
  });
