import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createMysqlDatabase,
  createPostgresDatabase,
  describeMysql,
  describePostgres,
  withMysqlConnection,
  MYSQL_ADMIN_URL,
  type TestDatabase,
} from '../helpers/databases';
import { cofre, filesUnder, tempDir } from '../helpers/cli';
import { testKeys } from '../helpers/engine';

const BIN = path.join(__dirname, '..', '..', 'cli', 'bin.js');

/** Runs the real `cofre` executable (Node 24 + tsx), as an operator would. */
function spawnCofre(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    child.once('close', (code) => {
      resolve({ code, stdout, stderr });
    });
  });
  return { child, done };
}

/** Command lines of every process on this machine (Linux /proc). */
function allCommandLines(): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      out.push(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' '));
    } catch {
      // gone
    }
  }
  return out;
}

/** Every process command line seen, every 10 ms, until `run` has ended; and its result. */
async function commandLinesDuring(run: ReturnType<typeof spawnCofre>) {
  const seen: string[] = [];
  const state = { finished: false };
  void run.done.then(() => (state.finished = true));
  while (!state.finished) {
    seen.push(...allCommandLines());
    await new Promise((r) => setTimeout(r, 10));
  }
  return { seen, result: await run.done };
}

describe('help and version', () => {
  it('prints help on stdout, exit 0, for the program and for a command', async () => {
    for (const args of [['--help'], ['backup', '--help']]) {
      const r = await cofre(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^Usage: cofre/);
      expect(r.stderr).toBe('');
    }
  });

  it('prints the version of package.json with --version', async () => {
    const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
      version: string;
    };
    const r = await cofre(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });
});

describe('bad usage exits 2 with one clear message and changes nothing', () => {
  let keyFile: string;
  beforeAll(async () => {
    ({ keyFile } = await testKeys());
  });

  it.each([
    [
      ['backup', '--engine', 'oracle', '--url', 'postgres://h/db', '--vault', 'VAULT', '--key-file', 'KEY'],
      /--engine: expected "postgres" or "mysql", got "oracle"/,
    ],
    [
      ['backup', '--engine', 'postgres', '--url', 'not-a-url', '--vault', 'VAULT', '--key-file', 'KEY'],
      /--url: expected a URL like/,
    ],
    [
      [
        'backup',
        '--engine',
        'postgres',
        '--url',
        'postgres://h/db',
        '--vault',
        'VAULT',
        '--key-file',
        '/nonexistent/key',
      ],
      /--key-file: cannot read \/nonexistent\/key/,
    ],
    [
      [
        'backup',
        '--engine',
        'postgres',
        '--url',
        'postgres://h/db',
        '--vault',
        'ftp://x',
        '--key-file',
        'KEY',
      ],
      /--vault: expected s3:\/\/bucket\/prefix or file:\/\/\/absolute\/dir/,
    ],
    [
      ['backup', '--engine', 'postgres', '--url', 'postgres://h/db', '--vault', 'VAULT'],
      /KEY: expected exactly one of --key-file FILE or --kms-key ARN/,
    ],
    [
      [
        'backup',
        '--engine',
        'postgres',
        '--url',
        'postgres://h/db',
        '--vault',
        'VAULT',
        '--key-file',
        'KEY',
        '--class',
        'medical',
      ],
      /--class: unknown data class "medical"/,
    ],
    [
      [
        'backup',
        '--engine',
        'postgres',
        '--url',
        'postgres://h/db',
        '--vault',
        'VAULT',
        '--key-file',
        'KEY',
        '--zstd-level',
        '40',
      ],
      /--zstd-level: expected a whole number from 1 to 19, got 40/,
    ],
    [
      ['backup', '--engine', 'postgres', '--url', 'postgres://h/db', '--key-file', 'KEY'],
      /required option '--vault <vault>' not specified/,
    ],
    [
      [
        'backup',
        '--engine',
        'postgres',
        '--url',
        'postgres://h/db',
        '--vault',
        'VAULT',
        '--key-file',
        'KEY',
        '--bogus',
      ],
      /unknown option '--bogus'/,
    ],
    [['verify', '--vault', 'VAULT'], /--backup ID or --all: expected exactly one/],
    [
      ['verify', '--vault', 'EMPTY_VAULT', '--backup', '20261123T000000000Z-00000000'],
      /--backup: no backup "20261123T000000000Z-00000000"/,
    ],
    [['frobnicate'], /unknown command 'frobnicate'/],
  ])('%j', async (args, message) => {
    const vaultDir = path.join(tempDir('usage'), 'vault');
    // EMPTY_VAULT: a vault folder that exists (a missing one is its own error: test/cli/cli-ux.test.ts).
    if (args.includes('EMPTY_VAULT')) mkdirSync(vaultDir);
    const resolved = args.map((a) =>
      a === 'VAULT' || a === 'EMPTY_VAULT' ? `file://${vaultDir}` : a === 'KEY' ? keyFile : a,
    );
    const result = await cofre(resolved);
    expect(result.stderr).toMatch(message);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(filesUnder(vaultDir)).toEqual([]);
  });

  it('keygen refuses to overwrite a key (exit 2)', async () => {
    const result = await cofre(['keygen', '--out', keyFile]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/already exists; Cofre never overwrites a key/);
  });
});

describePostgres('cofre on PostgreSQL (the real executable)', () => {
  let db: TestDatabase;
  let keyFile: string;
  beforeAll(async () => {
    db = await createPostgresDatabase('cli_pg');
    const c = new Client({ connectionString: db.url });
    await c.connect();
    await c.query(
      `CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g`,
    );
    await c.end();
    ({ keyFile } = await testKeys());
  });
  afterAll(async () => {
    await db.drop();
  });

  it('backs up, lists and verifies with --json on stdout and people’s text on stderr', async () => {
    const vault = `file://${tempDir('cli')}`;
    const backup = await spawnCofre([
      'backup',
      '--engine',
      'postgres',
      '--url',
      db.url,
      '--vault',
      vault,
      '--key-file',
      keyFile,
      '--id',
      'clinic',
      '--json',
    ]).done;
    expect(backup.stderr).toMatch(/OK \S+ cofre_t_cli_pg\S* \(yearly\): .* 1 table, 5000 rows/);
    expect(backup.code).toBe(0);
    const summary = JSON.parse(backup.stdout) as {
      ok: boolean;
      backups: { backupId: string; rows: number }[];
    };
    expect(summary).toMatchObject({ ok: true, backups: [{ rows: 5000 }] });
    const id = summary.backups[0]!.backupId;

    const listed = await cofre(['list', '--vault', vault, '--json']);
    expect(JSON.parse(listed.stdout)).toMatchObject({
      backups: [{ backupId: id, sourceId: 'clinic', tier: 'yearly', rows: 5000, status: 'ok' }],
    });
    const table = await cofre(['list', '--vault', vault]);
    expect(table.stdout).toMatch(new RegExp(`^BACKUP ID .*\\n${id}\\s+clinic\\s+cofre_t_cli_pg`));

    const verified = await cofre([
      'verify',
      '--vault',
      vault,
      '--backup',
      id,
      '--deep',
      '--key-file',
      keyFile,
      '--json',
    ]);
    expect(verified.code).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({
      ok: true,
      reports: [{ backupId: id, status: 'ok', deep: true }],
    });
  });

  it('restores with a --json report, refuses a non-empty target (exit 2) and a bad --jobs (exit 2)', async () => {
    const vault = `file://${tempDir('cli-rs')}`;
    const backup = await cofre([
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
    ]);
    const id = (JSON.parse(backup.stdout) as { backups: { backupId: string }[] }).backups[0]!.backupId;
    const restoredName = `${db.name}_r`;
    const targetUrl = db.url.replace(/\/[^/]*$/, `/${restoredName}`);
    try {
      const restored = await cofre([
        'restore',
        '--vault',
        vault,
        '--backup',
        id,
        '--key-file',
        keyFile,
        '--target-url',
        targetUrl,
        '--json',
      ]);
      expect(restored.stderr).toMatch(/OK restored .* into cofre_t_cli_pg\S*_r: 1 table, 5000 rows/);
      expect(restored.code).toBe(0);
      expect(JSON.parse(restored.stdout)).toMatchObject({
        backupId: id,
        mode: 'database',
        target: { host: '127.0.0.1', port: 5432, database: restoredName },
        tables: [{ schema: 'public', name: 't', rows: 5000 }],
        rows: 5000,
        method: 'stream',
      });
      const again = await cofre([
        'restore',
        '--vault',
        vault,
        '--backup',
        id,
        '--key-file',
        keyFile,
        '--target-url',
        targetUrl,
      ]);
      expect(again.code).toBe(2);
      expect(again.stderr).toMatch(
        /--target-url: database ".*_r" on 127.0.0.1:5432 is not empty .* nothing was changed/,
      );
      const badJobs = await cofre([
        'restore',
        '--vault',
        vault,
        '--backup',
        id,
        '--key-file',
        keyFile,
        '--target-url',
        targetUrl,
        '--jobs',
        '0',
      ]);
      expect(badJobs.code).toBe(2);
      expect(badJobs.stderr).toMatch(/--jobs: expected "auto" or a whole number from 1 to 64, got "0"/);
    } finally {
      const admin = new Client({ connectionString: db.url.replace(/\/[^/]*$/, '/postgres') });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS "${restoredName}" WITH (FORCE)`);
      await admin.end();
    }
  });

  it('stops on SIGTERM mid-backup, says so, exits non-zero and leaves nothing behind', async () => {
    const vaultDir = tempDir('sigterm');
    // Hold a lock that pg_dump must wait for, so the backup is reliably mid-way when SIGTERM lands.
    const locker = new Client({ connectionString: db.url });
    locker.on('error', () => undefined);
    await locker.connect();
    await locker.query('BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE');
    try {
      const run = spawnCofre([
        'backup',
        '--engine',
        'postgres',
        '--url',
        db.url,
        '--vault',
        `file://${vaultDir}`,
        '--key-file',
        keyFile,
      ]);
      const deadline = Date.now() + 30_000;
      while (!filesUnder(vaultDir).some((f) => f.includes('.partial-')) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      expect(filesUnder(vaultDir).some((f) => f.includes('.partial-'))).toBe(true);
      run.child.kill('SIGTERM');
      const result = await run.done;
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(/received SIGTERM, stopping and cleaning up/);
      expect(result.stderr).toMatch(/cancelled: SIGTERM; nothing was kept/);
      expect(filesUnder(vaultDir)).toEqual([]);
      expect(allCommandLines().filter((c) => c.includes('pg_dump') && c.includes('--snapshot'))).toEqual([]);
    } finally {
      await locker.query('ROLLBACK');
      await locker.end();
    }
  });

  it('never puts the database password in a process argv or a log line', async () => {
    const password = `Pw-${randomBytes(9).toString('hex')}`;
    const url = db.url.replace('postgres://postgres@', `postgres://postgres:${password}@`);
    const run = spawnCofre([
      'backup',
      '--engine',
      'postgres',
      '--url',
      url,
      '--vault',
      `file://${tempDir('pw')}`,
      '--key-file',
      keyFile,
      '--json',
    ]);
    const watched = await commandLinesDuring(run);
    const seen = watched.seen.filter((c) => c.includes('pg_dump') || c.includes('cofre'));
    const result = watched.result;
    expect(result.code).toBe(0);
    expect(seen.some((c) => c.includes('pg_dump'))).toBe(true);
    expect(seen.filter((c) => c.includes(password) && !c.includes(BIN))).toEqual([]);
    expect(result.stdout + result.stderr).not.toContain(password);
  });
});

describeMysql('cofre on MySQL/MariaDB: a password that must really authenticate', () => {
  let db: TestDatabase;
  let keyFile: string;
  const user = `cofre_pw_${randomBytes(4).toString('hex')}`;
  const password = `Pw'"\\-${randomBytes(9).toString('hex')}`;
  beforeAll(async () => {
    db = await createMysqlDatabase('cli_my');
    await withMysqlConnection(MYSQL_ADMIN_URL, async (c) => {
      await c.query(`CREATE USER ?@'127.0.0.1' IDENTIFIED BY ?`, [user, password]);
      await c.query(`GRANT ALL ON \`${db.name}\`.* TO ?@'127.0.0.1'`, [user]);
    });
    await withMysqlConnection(db.url, async (c) => {
      await c.query('CREATE TABLE t (id INT PRIMARY KEY, v TEXT)');
      await c.query('INSERT INTO t SELECT seq, MD5(seq) FROM seq_1_to_3000');
    });
    ({ keyFile } = await testKeys());
  });
  afterAll(async () => {
    await withMysqlConnection(MYSQL_ADMIN_URL, (c) => c.query(`DROP USER IF EXISTS ?@'127.0.0.1'`, [user]));
    await db.drop();
  });

  it('authenticates through the piped option file and never shows the password', async () => {
    const run = spawnCofre(
      [
        'backup',
        '--engine',
        'mysql',
        '--url',
        `mysql://${user}@127.0.0.1:3306/${db.name}`,
        '--vault',
        `file://${tempDir('mypw')}`,
        '--key-file',
        keyFile,
        '--json',
      ],
      { ...process.env, COFRE_DB_PASSWORD: password },
    );
    const { seen, result } = await commandLinesDuring(run);
    expect(result.stderr).toMatch(/1 table, 3000 rows/);
    expect(result.code).toBe(0);
    expect(seen.filter((c) => c.includes(password))).toEqual([]);
    expect(result.stdout + result.stderr).not.toContain(password);
  });

  it('reports a wrong password as an operational failure (exit 1) without echoing it', async () => {
    const result = await cofre(
      [
        'backup',
        '--engine',
        'mysql',
        '--url',
        `mysql://${user}@127.0.0.1:3306/${db.name}`,
        '--vault',
        `file://${tempDir('mybad')}`,
        '--key-file',
        keyFile,
      ],
      { ...process.env, COFRE_DB_PASSWORD: 'wrong-password-123' },
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/cannot connect to MySQL at 127.0.0.1:3306/);
    expect(result.stderr).not.toContain('wrong-password-123');
  });
});
