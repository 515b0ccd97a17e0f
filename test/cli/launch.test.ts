/**
 * cli/launch.js: streaming commands run in a child Node process with the GC flags (issue 18); the
 * child must never outlive its launcher, whatever killed the launcher.
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { GC_FLAGS, gcFlagsFor } from '../../cli/launch';
import { processAlive } from '../../core/catalog/chain-lock';
import {
  createPostgresDatabase,
  describePostgres,
  withPostgresClient,
  type TestDatabase,
} from '../helpers/databases';
import { tempDir } from '../helpers/cli';
import { testKeys } from '../helpers/engine';

const ROOT = path.join(__dirname, '..', '..');
const BIN = path.join(ROOT, 'cli', 'bin.js');

async function until<T>(what: string, probe: () => T | undefined, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

it('backup runs with the GC flags; verify and files also with a fixed heap growth; the rest in the launcher', () => {
  expect(gcFlagsFor('backup')).toEqual([...GC_FLAGS]);
  for (const command of ['verify', 'files'])
    expect(gcFlagsFor(command)).toEqual([...GC_FLAGS, '--heap-growing-percent=100']);
  for (const command of ['restore', 'list', 'keygen', 'decrypt', '--help'])
    expect(gcFlagsFor(command)).toEqual([]);
});

it('the Fargate task image starts node with the same GC flags as the CLI', () => {
  const dockerfile = readFileSync(path.join(ROOT, 'tasks', 'dump-runner', 'Dockerfile'), 'utf8');
  const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1];
  expect(JSON.parse(entrypoint ?? '[]')).toEqual(['node', ...GC_FLAGS, '/app/index.js']);
});

describePostgres('a streaming command runs in a tuned child that dies with its launcher', () => {
  let db: TestDatabase;
  let keyFile: string;
  beforeAll(async () => {
    db = await createPostgresDatabase('launch');
    await withPostgresClient(db.url, (c) =>
      c.query('CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)'),
    );
    ({ keyFile } = await testKeys());
  });
  afterAll(async () => {
    await db.drop();
  });

  it('backup: the child has the GC flags; SIGKILL of the launcher ends it too', async () => {
    const vaultDir = tempDir('launch');
    // A lock pg_dump waits for keeps the backup mid-way.
    const locker = new Client({ connectionString: db.url });
    locker.on('error', () => undefined);
    await locker.connect();
    await locker.query('BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE');
    const launcher = spawn(
      process.execPath,
      [BIN, 'backup', '--url', db.url, '--vault', `file://${vaultDir}`, '--key-file', keyFile],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    launcher.stdout.resume();
    launcher.stderr.resume();
    const closed = new Promise((r) => launcher.once('close', r));
    try {
      await until('a temporary file in the vault', () =>
        readdirSync(vaultDir, { recursive: true }).some((f) => String(f).includes('.partial-'))
          ? true
          : undefined,
      );
      const child = Number(
        readFileSync(`/proc/${launcher.pid}/task/${launcher.pid}/children`, 'utf8').trim().split(/\s+/)[0],
      );
      // (The password-redaction of the launcher's own command line: test/cli/faults-cli.test.ts.)
      const argv = readFileSync(`/proc/${child}/cmdline`, 'utf8').split('\0');
      for (const flag of GC_FLAGS) expect(argv).toContain(flag);
      expect(argv.filter((a) => a.startsWith('--heap-growing-percent'))).toEqual([]);
      launcher.kill('SIGKILL');
      await closed;
      await until('the child to end', () => (processAlive(child) ? undefined : true), 5_000);
    } finally {
      launcher.kill('SIGKILL');
      await locker.query('ROLLBACK');
      await locker.end();
    }
  });
});
