import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createMysqlDatabase,
  createPostgresDatabase,
  describeMysql,
  describePostgres,
  withMysqlConnection,
  type TestDatabase,
} from '../helpers/databases';
import { cofre, tempDir } from '../helpers/cli';
import { testKeys } from '../helpers/engine';

/** Issue 17, item 6: what a user expects from the CLI. */

describe('--engine: inferred from the URL scheme, an explicit contradiction is exit 2', () => {
  let keyFile: string;
  beforeAll(async () => {
    ({ keyFile } = await testKeys());
  });

  it.each([
    ['postgres', 'mysql://h/db', /--url: the URL is for mysql but --engine is postgres/],
    ['mysql', 'postgresql://h/db', /--url: the URL is for postgres but --engine is mysql/],
    ['postgresql', 'mariadb://h/db', /--url: the URL is for mysql but --engine is postgres/],
  ])('--engine %s with %s: exit 2 naming both', async (engine, url, message) => {
    const vault = tempDir('ux');
    const r = await cofre([
      'backup',
      '--engine',
      engine,
      '--url',
      url,
      '--vault',
      `file://${vault}/v`,
      '--key-file',
      keyFile,
    ]);
    expect(r.stderr).toMatch(message);
    expect(r.code).toBe(2);
    expect(existsSync(path.join(vault, 'v'))).toBe(false);
  });

  it('an unknown scheme without --engine is exit 2 naming --url', async () => {
    const r = await cofre([
      'backup',
      '--url',
      'oracle://h/db',
      '--vault',
      'file:///nowhere',
      '--key-file',
      keyFile,
    ]);
    expect(r.stderr).toMatch(
      /--url: expected a postgres:\/\/, postgresql:\/\/, mysql:\/\/ or mariadb:\/\/ URL/,
    );
    expect(r.code).toBe(2);
  });

  it('help marks required options and shows defaults', async () => {
    const r = await cofre(['backup', '--help']);
    expect(r.code).toBe(0);
    // commander wraps the descriptions to the terminal width: compare with the spaces collapsed.
    const help = r.stdout.replace(/\s+/g, ' ');
    expect(help).toContain('--url <url> postgres://user@host:5432/db or mysql://user@host:3306/db');
    expect(help).toMatch(/--url <url> [^]*?COFRE_DB_PASSWORD\) \(required\) --vault/);
    expect(help).toContain('--vault <vault> s3://bucket/prefix or file:///absolute/dir (required)');
    expect(help).toContain(
      '--engine <engine> postgres (or postgresql) or mysql (or mariadb); default: from the --url scheme',
    );
    expect(help).toContain(
      '--class <class> data class: general, health, accounting, labour (default: "general")',
    );
    const plan = (await cofre(['tenant', 'plan', '--help'])).stdout.replace(/\s+/g, ' ');
    expect(plan).toContain('--tenant-table <table> the tenant table, name or schema.name (required)');
    expect(plan).toContain(
      '--engine <engine> postgres (or postgresql) or mysql (or mariadb); default: from the --url scheme -',
    );
  });
});

/** A backup without --engine, into a file vault; the manifest's engine (read back by `list`). */
async function backupWithoutEngine(db: TestDatabase, url: string, keyFile: string) {
  const vault = `file://${tempDir('ux')}/vault`;
  const r = await cofre(['backup', '--url', url, '--vault', vault, '--key-file', keyFile, '--json']);
  expect(r.stderr).toMatch(/OK \S+ \S+ \(\w+\): .* 1 table, 3 rows/);
  expect(r.code).toBe(0);
  const listed = await cofre(['list', '--vault', vault, '--json']);
  return JSON.parse(listed.stdout) as { backups: { engine: string; database: string; rows: number }[] };
}

describePostgres('backup without --engine: postgres:// and postgresql:// are PostgreSQL', () => {
  let db: TestDatabase;
  let keyFile: string;
  beforeAll(async () => {
    db = await createPostgresDatabase('ux_pg');
    const c = new Client({ connectionString: db.url });
    await c.connect();
    await c.query('CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2), (3)');
    await c.end();
    ({ keyFile } = await testKeys());
  });
  afterAll(async () => {
    await db.drop();
  });

  it.each(['postgres', 'postgresql'])('%s:// URL, and "postgresql" as an engine name', async (scheme) => {
    const url = db.url.replace(/^postgres(ql)?:/, `${scheme}:`);
    const listed = await backupWithoutEngine(db, url, keyFile);
    expect(listed.backups).toMatchObject([{ engine: 'postgres', database: db.name, rows: 3 }]);
    const vault = `file://${tempDir('ux')}/vault`;
    const r = await cofre([
      'backup',
      '--engine',
      'postgresql',
      '--url',
      url,
      '--vault',
      vault,
      '--key-file',
      keyFile,
    ]);
    expect(r.code).toBe(0);
  });
});

describeMysql('backup without --engine: mysql:// and mariadb:// are MySQL', () => {
  let db: TestDatabase;
  let keyFile: string;
  beforeAll(async () => {
    db = await createMysqlDatabase('ux_my');
    await withMysqlConnection(db.url, async (c) => {
      await c.query('CREATE TABLE t (id int PRIMARY KEY)');
      await c.query('INSERT INTO t VALUES (1), (2), (3)');
    });
    ({ keyFile } = await testKeys());
  });
  afterAll(async () => {
    await db.drop();
  });

  it.each(['mysql', 'mariadb'])('%s:// URL', async (scheme) => {
    const url = db.url.replace(/^(mysql|mariadb):/, `${scheme}:`);
    const listed = await backupWithoutEngine(db, url, keyFile);
    expect(listed.backups).toMatchObject([{ engine: 'mysql', database: db.name, rows: 3 }]);
  });
});

describe('list / verify on a file vault path that does not exist', () => {
  it.each([
    ['list'],
    ['list', '--json'],
    ['verify', '--all'],
    ['verify', '--backup', '20260101T000000Z-abcdef'],
  ])('cofre %s: exit 2 naming the path, nothing created', async (...args) => {
    const root = path.join(tempDir('ux'), 'unmounted', 'vault');
    const r = await cofre([...args, '--vault', `file://${root}`]);
    expect(r.stderr).toContain(`cofre: --vault: no such vault at ${root}; is the disk mounted?`);
    expect(r.stdout).toBe('');
    expect(r.code).toBe(2);
    expect(existsSync(root)).toBe(false);
  });

  it('an existing, empty vault folder is still "no backups" (exit 0)', async () => {
    const root = tempDir('ux');
    const r = await cofre(['list', '--vault', `file://${root}`, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ backups: [] });
  });
});

describe('--exclude needs --databases all', () => {
  it.each([[[]], [['--databases', 'a,b']]])('with %j: exit 2, nothing written', async (databases) => {
    const { keyFile } = await testKeys();
    const root = path.join(tempDir('ux'), 'vault');
    const r = await cofre([
      'backup',
      '--url',
      'postgres://127.0.0.1:1/db',
      '--vault',
      `file://${root}`,
      '--key-file',
      keyFile,
      ...databases,
      '--exclude',
      'b',
    ]);
    expect(r.stderr).toContain('cofre: --exclude: only with --databases all');
    expect(r.code).toBe(2);
    expect(existsSync(root)).toBe(false);
  });
});

const BIN = path.join(__dirname, '..', '..', 'cli', 'bin.js');

/** Runs the real `cofre` executable, as an operator would; `signal` is sent once `ready()` holds. */
async function runAndSignal(args: string[], ready: () => boolean, signal: NodeJS.Signals) {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<number | null>((resolve) => child.once('close', resolve));
  const deadline = Date.now() + 30_000;
  while (!ready() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  expect(ready()).toBe(true);
  child.kill(signal);
  return { code: await done, stderr };
}

describePostgres('a cancelled backup: SIGINT exits 130, SIGTERM 1, no folder left in the vault', () => {
  let db: TestDatabase;
  let keyFile: string;
  beforeAll(async () => {
    db = await createPostgresDatabase('ux_sig');
    const c = new Client({ connectionString: db.url });
    await c.connect();
    await c.query('CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)');
    await c.end();
    ({ keyFile } = await testKeys());
  });
  afterAll(async () => {
    await db.drop();
  });

  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 1],
  ] as const)('%s mid-backup: exit %i, the vault folder as it was (empty)', async (signal, code) => {
    const vaultDir = tempDir('ux-sig');
    // Hold a lock pg_dump must wait for, so that the backup is mid-way when the signal lands.
    const locker = new Client({ connectionString: db.url });
    locker.on('error', () => undefined);
    await locker.connect();
    await locker.query('BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE');
    try {
      const partial = () =>
        readdirSync(vaultDir, { recursive: true }).some((f) => String(f).includes('.partial-'));
      const r = await runAndSignal(
        ['backup', '--url', db.url, '--vault', `file://${vaultDir}`, '--key-file', keyFile],
        partial,
        signal,
      );
      expect(r.stderr).toMatch(new RegExp(`cancelled: ${signal}; nothing was kept`));
      expect(r.code).toBe(code);
      expect(readdirSync(vaultDir, { recursive: true })).toEqual([]);
    } finally {
      await locker.query('ROLLBACK');
      await locker.end();
    }
  });
});
