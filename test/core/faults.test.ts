/**
 * Faults end cleanly (issue 16): a restore whose backend, tool or connection is killed, a run that
 * is cancelled (SIGTERM), a lock held by another session and a corrupt tenant artifact each end
 * within a bound, with the documented exit code and one line, and leave nothing behind.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { RowDataPacket } from 'mysql2';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runBackup } from '../../core/backup/backup';
import { findBackup, readCatalog } from '../../core/catalog/catalog';
import { parseDatabaseUrl, type Engine } from '../../core/sources/connection';
import type { Keys } from '../../core/vault/crypto';
import { CancelledError } from '../../core/util/errors';
import { ABANDONED_AFTER_S } from '../../core/restore/postgres';
import { restoreBackup } from '../../core/restore/restore';
import { withRun } from '../../core/util/run-context';
import { runTenantBackup } from '../../core/tenants/backup';
import { restoreTenant } from '../../core/tenants/restore';
import { openVault, type Vault } from '../../core/vault';
import { cofre, filesUnder } from '../helpers/cli';
import {
  createDatabase,
  describeDatabase,
  MYSQL_ADMIN_URL,
  PG_ADMIN_URL,
  uniqueDatabaseName,
  withMysqlConnection,
  withPostgresClient,
  type TestDatabase,
} from '../helpers/databases';
import { testKeys } from '../helpers/engine';
import { loadTenantFixture, TENANT_MODEL, tenantChecksums } from '../helpers/tenant-fixture';
import { discoverTenantPlan } from '../../core/tenants/plan';
import { tempDir } from '../helpers/temp';
import { reasonLine, recordFault } from '../helpers/fault-matrix';

/** The bound the issue sets: a faulted run ends within 10 s. */
const BOUND_MS = 10_000;
const ROOT = path.join(__dirname, '..', '..');

function urlFor(engine: Engine, name: string): string {
  const u = new URL(engine === 'postgres' ? PG_ADMIN_URL : MYSQL_ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

type Row = Record<string, unknown>;
async function sql(engine: Engine, url: string, text: string, params: unknown[] = []): Promise<Row[]> {
  if (engine === 'postgres')
    return withPostgresClient(url, async (c) => (await c.query<Row>(text, params)).rows);
  return withMysqlConnection(url, async (c) => {
    const [rows] = await c.query<RowDataPacket[]>(text, params);
    return Array.isArray(rows) ? rows : [];
  });
}

/** Databases whose name starts with `prefix` (the target and any `<target>_cofre_restoring_*`). */
async function databasesLike(engine: Engine, prefix: string): Promise<string[]> {
  const rows =
    engine === 'postgres'
      ? await sql(
          engine,
          PG_ADMIN_URL,
          'SELECT datname AS n FROM pg_database WHERE starts_with(datname, $1)',
          [prefix],
        )
      : await sql(
          engine,
          MYSQL_ADMIN_URL,
          'SELECT SCHEMA_NAME AS n FROM information_schema.SCHEMATA WHERE LEFT(SCHEMA_NAME, ?) = ?',
          [prefix.length, prefix],
        );
  return rows.map((r) => String(r.n));
}

async function dropDatabases(engine: Engine, names: readonly string[]): Promise<void> {
  for (const n of names)
    if (engine === 'postgres') await sql(engine, PG_ADMIN_URL, `DROP DATABASE IF EXISTS "${n}" WITH (FORCE)`);
    else await sql(engine, MYSQL_ADMIN_URL, `DROP DATABASE IF EXISTS \`${n}\``);
}

/** Waits until `find` returns a value (polling), or fails after `ms`. */
async function until<T>(what: string, find: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await find();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 40));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The session loading rows into `database` (PostgreSQL: prefix of the temporary database). */
async function loadingSession(engine: Engine, database: string): Promise<number | undefined> {
  const rows =
    engine === 'postgres'
      ? await sql(
          engine,
          PG_ADMIN_URL,
          `SELECT pid AS id FROM pg_stat_activity WHERE starts_with(datname, $1) AND state = 'active' AND query ILIKE 'COPY%'`,
          [database],
        )
      : await sql(
          engine,
          MYSQL_ADMIN_URL,
          `SELECT ID AS id FROM information_schema.PROCESSLIST WHERE DB = ? AND INFO LIKE 'INSERT%'`,
          [database],
        );
  return rows.length ? Number(rows[0]!.id) : undefined;
}

async function killSession(engine: Engine, id: number): Promise<void> {
  if (engine === 'postgres') await sql(engine, PG_ADMIN_URL, 'SELECT pg_terminate_backend($1)', [id]);
  else await sql(engine, MYSQL_ADMIN_URL, `KILL ${id}`).catch(() => undefined);
}

/** The pid of a dump (`name`, not its `--version` run) among this process's descendants. */
function descendant(name: string): number | undefined {
  const rows = execFileSync('ps', ['-eo', 'pid=,ppid=,stat=,comm=,args='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .map(([pid, ppid, stat, comm, ...args]) => ({
      pid: Number(pid),
      ppid: Number(ppid),
      comm: !stat?.startsWith('Z') && !args.includes('--version') ? (comm ?? '') : '',
    }));
  const mine = new Set([process.pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const r of rows)
      if (mine.has(r.ppid) && !mine.has(r.pid)) {
        mine.add(r.pid);
        grew = true;
      }
  }
  return rows.find((r) => mine.has(r.pid) && r.comm === name)?.pid;
}

/** Runs the `cofre` command as its own process (the real signal handling); resolves with how it ended. */
function cofreProcess(args: string[]) {
  const child = spawn(process.execPath, [path.join(ROOT, 'cli', 'bin.js'), ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (t: string) => (stderr += t));
  child.stdout.resume();
  const ended = new Promise<{ code: number | null; stderr: string }>((resolve) => {
    child.on('close', (code) => {
      resolve({ code, stderr });
    });
  });
  return { child, ended, stderr: () => stderr };
}

for (const engine of ['postgres', 'mysql'] as const) {
  describeDatabase(engine, `faults end cleanly (${engine})`, () => {
    let source: TestDatabase;
    let tenants: TestDatabase;
    let dir: string;
    let vaultUrl: string;
    let vault: Vault;
    let keys: Keys;
    let keyFile: string;
    let fullId: string;
    let tenantId: string;
    const made: string[] = [];

    const newTarget = (label: string) => {
      const name = uniqueDatabaseName(label);
      made.push(name);
      return { name, url: urlFor(engine, name), connection: parseDatabaseUrl(engine, urlFor(engine, name)) };
    };

    beforeAll(async () => {
      source = await createDatabase(engine, 'fault_src');
      // ~25 MB of rows: a restore that lasts long enough to be hit mid-way.
      if (engine === 'postgres')
        await sql(
          engine,
          source.url,
          `CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 5) AS pad FROM generate_series(1, 150000) g;
           ALTER TABLE big ADD PRIMARY KEY (id)`,
        );
      else {
        await sql(engine, source.url, 'CREATE TABLE big (id INT PRIMARY KEY, pad TEXT) ENGINE=InnoDB');
        await withMysqlConnection(source.url, async (c) => {
          await c.query('SET SESSION max_recursive_iterations = 200000');
          await c.query(
            `INSERT INTO big WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 150000)
           SELECT n, REPEAT(MD5(n), 5) FROM g`,
          );
        });
      }
      tenants = await createDatabase(engine, 'fault_tn');
      await loadTenantFixture(engine, tenants.url, { tenants: 6 });
      // Tenant 5 gets ~300,000 more patients: its export lasts long enough to be hit mid-way.
      if (engine === 'postgres')
        await sql(
          engine,
          tenants.url,
          `INSERT INTO patients (id, tenant_id, name, notes) SELECT 1000000 + g, 5, 'p' || g, repeat(md5(g::text), 3) FROM generate_series(1, 300000) g`,
        );
      else
        await withMysqlConnection(tenants.url, async (c) => {
          await c.query('SET SESSION max_recursive_iterations = 400000');
          await c.query(
            `INSERT INTO patients (tenant_id, name, notes) WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 300000)
             SELECT 5, CONCAT('p', n), REPEAT(MD5(n), 3) FROM g`,
          );
        });
      dir = tempDir('faults');
      vaultUrl = `file://${dir}/vault`;
      vault = openVault(vaultUrl);
      ({ keys, keyFile } = await testKeys());
      const [full] = await runBackup({ connection: parseDatabaseUrl(engine, source.url), vault, keys });
      if (!full?.ok) throw new Error(`backup failed: ${full?.ok === false ? full.error : '?'}`);
      fullId = full.manifest.backupId;
      const [t] = await runTenantBackup({
        connection: parseDatabaseUrl(engine, tenants.url),
        model: TENANT_MODEL,
        tenants: ['3'],
        vault,
        keys,
      });
      if (!t?.ok) throw new Error(`tenant backup failed: ${t?.ok === false ? t.error : '?'}`);
      tenantId = t.manifest.backupId;
    }, 180_000);

    afterAll(async () => {
      await dropDatabases(engine, (await Promise.all(made.map((m) => databasesLike(engine, m)))).flat());
      for (const db of [source, tenants] as (TestDatabase | undefined)[]) await db?.drop();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('backend killed mid-restore: the restore fails within 10 s and leaves no database', async () => {
      const target = newTarget('fault_kill');
      const started = Date.now();
      const restoring = restoreBackup({ vault, backupId: fullId, keys, target: target.connection });
      restoring.catch(() => undefined);
      const id = await until('the loading session', () => loadingSession(engine, target.name));
      const killedAt = Date.now();
      await killSession(engine, id);
      await expect(restoring).rejects.toThrow(/failed|terminat|lost|killed|gone away|connection/i);
      const ms = Date.now() - killedAt;
      expect(Date.now() - started).toBeLessThan(30_000);
      expect(await databasesLike(engine, target.name)).toEqual([]);
      recordFault({
        engine,
        fault: 'backend killed',
        operation: 'full restore',
        outcome: 'exit 1',
        reason: firstLine(await restoring.catch((e: unknown) => e)),
        ms,
        leftovers: 'none (no target or temporary database)',
      });
    }, 60_000);

    it('cancelled mid-restore (SIGTERM in the CLI): ends within 10 s, nothing kept', async () => {
      const target = newTarget('fault_cancel');
      const controller = new AbortController();
      const restoring = restoreBackup({
        vault,
        backupId: fullId,
        keys,
        target: target.connection,
        signal: controller.signal,
      });
      restoring.catch(() => undefined);
      await until('the loading session', () => loadingSession(engine, target.name));
      const abortedAt = Date.now();
      controller.abort('SIGTERM');
      await expect(restoring).rejects.toBeInstanceOf(CancelledError);
      const ms = Date.now() - abortedAt;
      expect(ms).toBeLessThan(BOUND_MS);
      expect(await databasesLike(engine, target.name)).toEqual([]);
      recordFault({
        engine,
        fault: 'cancelled (abort signal, as SIGTERM)',
        operation: 'full restore',
        outcome: 'exit 1 (CancelledError)',
        reason: firstLine(await restoring.catch((e: unknown) => e)),
        ms,
        leftovers: 'none (no target or temporary database)',
      });
    }, 60_000);

    it('the cofre process ends within 10 s of SIGTERM mid-restore, exit 1, one line, nothing kept', async () => {
      const target = newTarget('fault_sigterm');
      const run = cofreProcess([
        'restore',
        '--vault',
        vaultUrl,
        '--backup',
        fullId,
        '--target-url',
        target.url,
        '--key-file',
        keyFile,
      ]);
      await until('the loading session', () => loadingSession(engine, target.name), 60_000);
      const sentAt = Date.now();
      run.child.kill('SIGTERM');
      const { code, stderr } = await run.ended;
      expect(Date.now() - sentAt).toBeLessThan(BOUND_MS);
      expect(code).toBe(1);
      expect(stderr).toMatch(/^cofre: cancelled: SIGTERM; nothing was kept$/m);
      expect(stderr).not.toMatch(/\n\s+at /);
      expect(await databasesLike(engine, target.name)).toEqual([]);
      expect(await loadingSession(engine, target.name)).toBeUndefined();
      recordFault({
        engine,
        fault: 'SIGTERM',
        operation: 'full restore (cofre process)',
        outcome: `exit ${code}`,
        reason: reasonLine(stderr),
        ms: Date.now() - sentAt,
        leftovers: 'none (no database, no session, no tool process)',
      });
    }, 90_000);

    it('a lock held by another session ends the tenant restore at --lock-timeout, rolled back', async () => {
      const plan = await discoverTenantPlan(parseDatabaseUrl(engine, tenants.url), TENANT_MODEL);
      const before = await tenantChecksums(engine, tenants.url, plan.tables, '3');
      const holder =
        engine === 'postgres'
          ? await holdPostgres(tenants.url, 'SELECT * FROM patients WHERE tenant_id = 3 FOR UPDATE')
          : await holdMysql(tenants.url, 'SELECT * FROM patients WHERE tenant_id = 3 FOR UPDATE');
      try {
        const started = Date.now();
        const timedOut = withRun({ lockTimeoutMs: 1500 }, () =>
          restoreTenant({
            vault,
            backupId: tenantId,
            keys,
            target: parseDatabaseUrl(engine, tenants.url),
            tenant: '3',
          }),
        );
        await expect(timedOut).rejects.toThrow(/lock/i);
        expect(Date.now() - started).toBeLessThan(BOUND_MS);
        recordFault({
          engine,
          fault: 'lock held by another session',
          operation: 'tenant restore',
          outcome: 'exit 1 (lock timeout); cancelled while waiting: exit 1 at once',
          reason: firstLine(await timedOut.catch((e: unknown) => e)),
          ms: Date.now() - started,
          leftovers: "none (rolled back: the tenant's rows unchanged)",
        });
        // Cancelled while waiting (default lock timeout 60 s): ends at once.
        const controller = new AbortController();
        const waiting = restoreTenant({
          vault,
          backupId: tenantId,
          keys,
          target: parseDatabaseUrl(engine, tenants.url),
          tenant: '3',
          signal: controller.signal,
        });
        waiting.catch(() => undefined);
        await new Promise((r) => setTimeout(r, 1500));
        const abortedAt = Date.now();
        controller.abort('SIGTERM');
        await expect(waiting).rejects.toThrow(/cancel/i);
        expect(Date.now() - abortedAt).toBeLessThan(BOUND_MS);
      } finally {
        await holder.release();
      }
      expect(await tenantChecksums(engine, tenants.url, plan.tables, '3')).toEqual(before);
    }, 60_000);

    it('SIGKILL mid-backup: the next verify reports the temporary file and the next backup removes it', async () => {
      const vaultDir = path.join(dir, 'killed-backup');
      const run = cofreProcess([
        'backup',
        '--engine',
        engine,
        '--url',
        source.url,
        '--vault',
        `file://${vaultDir}`,
        '--key-file',
        keyFile,
      ]);
      const partial = await until(
        'a temporary file',
        () => Promise.resolve(filesUnder(vaultDir).find((f) => f.includes('.partial-'))),
        60_000,
      );
      run.child.kill('SIGKILL');
      await run.ended;
      expect(existsSync(partial)).toBe(true);
      const report = await cofre(['verify', '--vault', `file://${vaultDir}`, '--all', '--json']);
      expect(report.stderr).toMatch(
        /LEFTOVER .*\.partial-[0-9a-f]+: a temporary file of a write that never finished/,
      );
      const lines: string[] = [];
      const [next] = await runBackup({
        connection: parseDatabaseUrl(engine, source.url),
        vault: openVault(`file://${vaultDir}`),
        keys,
        log: (l) => lines.push(l),
      });
      expect(next?.ok).toBe(true);
      expect(lines.join('\n')).toMatch(
        /taking over the stale chain lock .*: its process \d+ on this host is gone/,
      );
      expect(lines.join('\n')).toMatch(/removing .*\.partial-[0-9a-f]+: a temporary file/);
      expect(filesUnder(vaultDir).filter((f) => f.includes('.partial-') || f.endsWith('=lock.json'))).toEqual(
        [],
      );
      recordFault({
        engine,
        fault: 'SIGKILL, then the next run',
        operation: 'full backup',
        outcome: 'killed; next backup exit 0',
        reason: reasonLine(report.stderr),
        ms: -1, // not a timed run: what the next run found
        leftovers: 'temporary file and lock: reported by verify, removed by the next backup',
      });
    }, 90_000);

    it('an artifact whose manifest was never written is reported, and removed by the next backup', async () => {
      const vaultDir = path.join(dir, 'no-manifest');
      const v = openVault(`file://${vaultDir}`);
      const [first] = await runBackup({ connection: parseDatabaseUrl(engine, source.url), vault: v, keys });
      if (!first?.ok) throw new Error('backup failed');
      const manifestFile = path.join(vaultDir, ...first.folder.split('/'), 'manifest.json');
      rmSync(manifestFile); // as after ENOSPC while writing it
      const report = await cofre(['verify', '--vault', `file://${vaultDir}`, '--all']);
      expect(report.stderr).toMatch(/LEFTOVER .*: an artifact without a manifest/);
      const lines: string[] = [];
      const [next] = await runBackup({
        connection: parseDatabaseUrl(engine, source.url),
        vault: v,
        keys,
        log: (l) => lines.push(l),
      });
      expect(next?.ok && next.manifest.previous).toBeNull();
      expect(lines.join('\n')).toMatch(/removing .*: an artifact without a manifest/);
      expect(filesUnder(path.join(vaultDir, ...first.folder.split('/')))).toEqual([]);
      recordFault({
        engine,
        fault: 'killed between artifact and manifest',
        operation: 'full backup',
        outcome: 'next backup exit 0',
        reason: reasonLine(report.stderr),
        ms: -1, // not a timed run: what the next run found
        leftovers: 'artifact without manifest: reported by verify, removed by the next backup',
      });
    }, 90_000);

    it('SIGKILL mid-restore: the next restore into the same target finds what it left, says so and removes it', async () => {
      const target = newTarget('fault_sigkill');
      const args = [
        'restore',
        '--vault',
        vaultUrl,
        '--backup',
        fullId,
        '--target-url',
        target.url,
        '--key-file',
        keyFile,
      ];
      const run = cofreProcess(args);
      await until('the loading session', () => loadingSession(engine, target.name), 60_000);
      run.child.kill('SIGKILL');
      await run.ended;
      // What it left: PostgreSQL its temporary copy, MySQL the target with its in-progress marker.
      await until('the killed session to end', async () =>
        (await loadingSession(engine, target.name)) === undefined ? true : undefined,
      );
      const left = await databasesLike(engine, target.name);
      expect(left).toHaveLength(1);
      // PostgreSQL drops a copy only when it is old enough to be nobody's running restore.
      if (engine === 'postgres') await new Promise((r) => setTimeout(r, ABANDONED_AFTER_S * 1000 + 500));
      const lines: string[] = [];
      const report = await restoreBackup({
        vault,
        backupId: fullId,
        keys,
        target: target.connection,
        log: (l) => lines.push(l),
      });
      expect(report.rows).toBe(150_000);
      recordFault({
        engine,
        fault: 'SIGKILL, then the next run',
        operation: 'full restore',
        outcome: 'killed; next restore exit 0',
        reason: lines.find((l) => l.startsWith('dropping')) ?? '',
        ms: -1, // not a timed run: what the next run found
        leftovers:
          engine === 'postgres'
            ? 'temporary database: dropped by the next restore once older than the abandon age'
            : 'target with the in-progress marker: dropped by the next restore',
      });
      expect(lines.join('\n')).toMatch(
        /dropping ".*": (the temporary database of an earlier restore|an earlier restore into it did not finish)/,
      );
      expect(await databasesLike(engine, target.name)).toEqual([target.name]);
    }, 90_000);

    it('a byte flipped at the start, middle or end of a full backup: restore is exit 3, one line, no database left', async () => {
      const entry = await findBackup(vault, fullId);
      const file = path.join(dir, 'vault', entry.folder, entry.manifest!.artifacts[0]!.name);
      const original = readFileSync(file);
      try {
        for (const at of [0.01, 0.5, 0.99]) {
          const target = newTarget('fault_flip');
          const bad = Buffer.from(original);
          const i = Math.floor(bad.length * at);
          bad[i] = bad[i]! ^ 0x01;
          chmodSync(file, 0o600);
          writeFileSync(file, bad);
          const started = Date.now();
          const r = await cofre([
            'restore',
            '--vault',
            vaultUrl,
            '--backup',
            fullId,
            '--target-url',
            target.url,
            '--key-file',
            keyFile,
          ]);
          expect({ at, code: r.code }).toEqual({ at, code: 3 });
          expect(Date.now() - started).toBeLessThan(30_000);
          expect(r.stderr.split('\n').filter((l) => l.startsWith('cofre:'))).toHaveLength(1);
          expect(r.stderr).toMatch(/is damaged|SHA-256/);
          expect(await databasesLike(engine, target.name)).toEqual([]);
          recordFault({
            engine,
            fault: `byte flipped (${at === 0.01 ? 'start' : at === 0.5 ? 'middle' : 'end'})`,
            operation: 'full restore',
            outcome: `exit ${r.code}`,
            reason: reasonLine(r.stderr),
            ms: Date.now() - started,
            leftovers: 'none (no database)',
          });
        }
      } finally {
        writeFileSync(file, original);
      }
    }, 120_000);

    it('--into-table cancelled mid-way: ends within 10 s and drops the table it made', async () => {
      const controller = new AbortController();
      const restoring = restoreBackup({
        vault,
        backupId: fullId,
        keys,
        target: parseDatabaseUrl(engine, source.url),
        table: 'big',
        intoTable: 'big_cmp',
        signal: controller.signal,
      });
      restoring.catch(() => undefined);
      await until('the loading session', () => loadingSession(engine, source.name));
      const abortedAt = Date.now();
      controller.abort('SIGTERM');
      await expect(restoring).rejects.toBeInstanceOf(CancelledError);
      expect(Date.now() - abortedAt).toBeLessThan(BOUND_MS);
      recordFault({
        engine,
        fault: 'cancelled (abort signal, as SIGTERM)',
        operation: '--into-table',
        outcome: 'exit 1 (CancelledError)',
        reason: firstLine(await restoring.catch((e: unknown) => e)),
        ms: Date.now() - abortedAt,
        leftovers: 'none (the new table dropped)',
      });
      const tables =
        engine === 'postgres'
          ? await sql(engine, source.url, "SELECT 1 FROM pg_class WHERE relname = 'big_cmp'")
          : await sql(
              engine,
              source.url,
              "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'big_cmp'",
            );
      expect(tables).toEqual([]);
    }, 60_000);

    it('--table --force with its backend killed mid-way: the table keeps its rows (rolled back)', async () => {
      // The server thread of the previous test's killed client may still be finishing its INSERT.
      await until('no earlier loading session', async () =>
        (await loadingSession(engine, source.name)) === undefined ? true : undefined,
      );
      const restoring = restoreBackup({
        vault,
        backupId: fullId,
        keys,
        target: parseDatabaseUrl(engine, source.url),
        table: 'big',
        force: true,
      });
      restoring.catch(() => undefined);
      const id = await until('the loading session', () => loadingSession(engine, source.name));
      const started = Date.now();
      await killSession(engine, id);
      await expect(restoring).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(BOUND_MS);
      const [count] = await sql(engine, source.url, 'SELECT count(*) AS n FROM big');
      expect(Number(count!.n)).toBe(150_000);
      recordFault({
        engine,
        fault: 'backend killed',
        operation: 'table restore (--table --force)',
        outcome: 'exit 1',
        reason: firstLine(await restoring.catch((e: unknown) => e)),
        ms: Date.now() - started,
        leftovers: 'none (rolled back: the table keeps its rows)',
      });
    }, 60_000);

    it('SIGTERM mid-backup: the cofre process ends within 10 s, exit 1, nothing in the vault', async () => {
      const vaultDir = path.join(dir, 'sigterm-backup');
      const run = cofreProcess([
        'backup',
        '--engine',
        engine,
        '--url',
        source.url,
        '--vault',
        `file://${vaultDir}`,
        '--key-file',
        keyFile,
      ]);
      await until(
        'a temporary file',
        () => Promise.resolve(filesUnder(vaultDir).find((f) => f.includes('.partial-'))),
        60_000,
      );
      const sentAt = Date.now();
      run.child.kill('SIGTERM');
      const { code, stderr } = await run.ended;
      expect(Date.now() - sentAt).toBeLessThan(BOUND_MS);
      expect(code).toBe(1);
      expect(stderr).not.toMatch(/\n\s+at /);
      expect(filesUnder(vaultDir)).toEqual([]);
      recordFault({
        engine,
        fault: 'SIGTERM',
        operation: 'full backup (cofre process)',
        outcome: `exit ${code}`,
        reason: reasonLine(stderr),
        ms: Date.now() - sentAt,
        leftovers: 'none (no artifact, temporary file or lock)',
      });
    }, 90_000);

    it('the dump tool killed mid-backup: the backup fails (exit 1), nothing in the vault', async () => {
      const vaultDir = path.join(dir, 'tool-killed');
      const backing = runBackup({
        connection: parseDatabaseUrl(engine, source.url),
        vault: openVault(`file://${vaultDir}`),
        keys,
      });
      const tool = engine === 'postgres' ? 'pg_dump' : 'mysqldump';
      const pid = await until(`the running ${tool}`, () => Promise.resolve(descendant(tool)), 60_000);
      const killedAt = Date.now();
      process.kill(pid, 'SIGKILL');
      const [outcome] = await backing;
      recordFault({
        engine,
        fault: 'tool killed',
        operation: 'full backup',
        outcome: `exit ${outcome?.ok === false ? outcome.exitCode : 0}`,
        reason: outcome?.ok === false ? outcome.error : '',
        ms: Date.now() - killedAt,
        leftovers: 'none (no artifact, temporary file or lock)',
      });
      expect(outcome?.ok).toBe(false);
      expect(outcome?.ok === false && outcome.exitCode).toBe(1);
      // MySQL's dump runs under a sh wrapper, which reports the kill as exit code 137.
      expect(outcome?.ok === false && outcome.error).toMatch(
        new RegExp(`${tool} failed \\((killed by SIGKILL|exit code 137)\\)`),
      );
      expect(filesUnder(vaultDir)).toEqual([]);
    }, 90_000);

    it('two backups of the same database (and of the same tenant) at once: one runs, the other fails before writing', async () => {
      const v = openVault(`file://${path.join(dir, 'concurrent')}`);
      const full = await Promise.all(
        [1, 2].map(() => runBackup({ connection: parseDatabaseUrl(engine, source.url), vault: v, keys })),
      );
      expect(
        full
          .flat()
          .map((o) => o.ok)
          .sort(),
      ).toEqual([false, true]);
      const tenant = await Promise.all(
        [1, 2].map(() =>
          runTenantBackup({
            connection: parseDatabaseUrl(engine, tenants.url),
            model: TENANT_MODEL,
            tenants: ['5'], // the big tenant: the two runs surely overlap
            vault: v,
            keys,
          }),
        ),
      );
      const outcomes = tenant.flat();
      expect(outcomes.map((o) => o.ok).sort()).toEqual([false, true]);
      for (const o of outcomes)
        if (!o.ok) expect(o.error).toMatch(/another backup of tenants\/.* is running/);
      for (const [operation, o] of [
        ['full backup', full.flat().find((x) => !x.ok)],
        ['tenant backup', outcomes.find((x) => !x.ok)],
      ] as const)
        recordFault({
          engine,
          fault: 'concurrent run (same chain)',
          operation,
          outcome: `exit ${o?.ok === false ? o.exitCode : 0} for the second; the first exit 0`,
          reason: o?.ok === false ? o.error : '',
          ms: -1, // not a timed run: what the next run found
          leftovers: 'none (the second wrote nothing)',
        });
      expect((await readCatalog(v)).length).toBe(2);
    }, 90_000);

    it('a corrupt tenant artifact ends with exit 3 and one line, at the start and near the end', async () => {
      const entry = await findBackup(vault, tenantId);
      const file = path.join(dir, 'vault', entry.folder, entry.manifest!.artifacts[0]!.name);
      const original = readFileSync(file);
      const plan = await discoverTenantPlan(parseDatabaseUrl(engine, tenants.url), TENANT_MODEL);
      const before = await tenantChecksums(engine, tenants.url, plan.tables, '3');
      try {
        for (const at of [0.02, 0.5, 0.75, 0.98]) {
          const bad = Buffer.from(original);
          const i = Math.floor(bad.length * at);
          bad[i] = bad[i]! ^ 0xff;
          writeFileSync(file, bad);
          const started = Date.now();
          const r = await cofre([
            'restore',
            '--vault',
            vaultUrl,
            '--backup',
            tenantId,
            '--target-url',
            tenants.url,
            '--key-file',
            keyFile,
            '--tenant',
            '3',
          ]);
          expect(Date.now() - started, `flipped at ${at}`).toBeLessThan(BOUND_MS);
          expect({ at, code: r.code }).toEqual({ at, code: 3 });
          expect(
            r.stderr
              .trim()
              .split('\n')
              .filter((l) => l.startsWith('cofre:')),
          ).toHaveLength(1);
          expect(r.stderr).not.toMatch(/\n\s+at |Unhandled/);
          recordFault({
            engine,
            fault: `byte flipped (at ${Math.round(at * 100)} %)`,
            operation: 'tenant restore',
            outcome: `exit ${r.code}`,
            reason: reasonLine(r.stderr),
            ms: Date.now() - started,
            leftovers: "none (rolled back: the tenant's rows unchanged)",
          });
        }
      } finally {
        writeFileSync(file, original);
      }
      expect(await tenantChecksums(engine, tenants.url, plan.tables, '3')).toEqual(before);
    }, 90_000);

    it('tenant backup with its database session killed mid-export: fails within 10 s, exit 1, nothing in the vault', async () => {
      // A tenant backup runs no dump tool (it reads through its own session): "tool killed" is this.
      const vaultDir = path.join(dir, 'tenant-session');
      const backing = runTenantBackup({
        connection: parseDatabaseUrl(engine, tenants.url),
        model: TENANT_MODEL,
        tenants: ['5'],
        vault: openVault(`file://${vaultDir}`),
        keys,
      });
      const id = await until('the exporting session', () => exportingSession(engine, tenants.name));
      const killedAt = Date.now();
      await killSession(engine, id);
      const [outcome] = await backing;
      const ms = Date.now() - killedAt;
      expect(ms).toBeLessThan(BOUND_MS);
      expect(outcome?.ok).toBe(false);
      const error = outcome?.ok === false ? outcome.error : '';
      expect(outcome?.ok === false && outcome.exitCode).toBe(1);
      expect(error).not.toContain('\n');
      // The session's own reason, not the "premature close" of the pipe after it. PostgreSQL sends
      // "terminating connection …" and closes the socket; the client reports whichever it reads first
      // (CI saw "Connection terminated unexpectedly" once), both the session's end.
      expect(error).toMatch(
        /^exporting tenant "5" of ".*" failed: (terminating connection|Connection terminated unexpectedly|the MySQL server closed the connection)/,
      );
      expect(error).not.toMatch(/premature close/i);
      expect(filesUnder(vaultDir)).toEqual([]);
      await until('the export session to end', async () =>
        (await exportingSession(engine, tenants.name)) === undefined ? true : undefined,
      );
      recordFault({
        engine,
        fault: 'backend killed',
        operation: 'tenant backup',
        outcome: 'exit 1',
        reason: `FAILED tenant 5: ${error}`,
        ms,
        leftovers: 'none (no artifact, temporary file, lock or session)',
      });
    }, 90_000);

    it('--table --force behind a lock held by another session: ends at --lock-timeout (or at once when cancelled), table unchanged', async () => {
      await until('no earlier loading session', async () =>
        (await loadingSession(engine, source.name)) === undefined ? true : undefined,
      );
      const tablesBefore = await tableNames(engine, source.url);
      const holder =
        engine === 'postgres'
          ? await holdPostgres(source.url, 'LOCK TABLE big IN SHARE MODE')
          : await holdMysql(source.url, 'SELECT * FROM big WHERE id = 1 FOR UPDATE');
      let reason: string;
      let ms: number;
      try {
        const started = Date.now();
        const failed = await withRun({ lockTimeoutMs: 1500 }, () =>
          restoreBackup({
            vault,
            backupId: fullId,
            keys,
            target: parseDatabaseUrl(engine, source.url),
            table: 'big',
            force: true,
          }),
        ).catch((e: unknown) => e as Error);
        ms = Date.now() - started;
        expect(failed).toBeInstanceOf(Error);
        reason = (failed as Error).message;
        expect(reason).toMatch(/lock/i);
        expect(ms).toBeLessThan(BOUND_MS);
        const controller = new AbortController();
        const waiting = restoreBackup({
          vault,
          backupId: fullId,
          keys,
          target: parseDatabaseUrl(engine, source.url),
          table: 'big',
          force: true,
          signal: controller.signal,
        });
        waiting.catch(() => undefined);
        await new Promise((r) => setTimeout(r, 1500));
        const abortedAt = Date.now();
        controller.abort('SIGTERM');
        await expect(waiting).rejects.toBeInstanceOf(CancelledError);
        expect(Date.now() - abortedAt).toBeLessThan(BOUND_MS);
      } finally {
        await holder.release();
      }
      const [count] = await sql(engine, source.url, 'SELECT count(*) AS n FROM big');
      expect(Number(count!.n)).toBe(150_000);
      expect(await tableNames(engine, source.url)).toEqual(tablesBefore);
      recordFault({
        engine,
        fault: 'lock held by another session',
        operation: 'table restore (--table --force)',
        outcome: 'exit 1 (lock timeout); cancelled while waiting: exit 1 at once',
        reason,
        ms,
        leftovers: 'none (table unchanged, rolled back, no extra table)',
      });
    }, 90_000);

    it('a byte flipped in the middle of a full backup: --table restore is exit 3, one line, table unchanged', async () => {
      const entry = await findBackup(vault, fullId);
      const file = path.join(dir, 'vault', entry.folder, entry.manifest!.artifacts[0]!.name);
      const original = readFileSync(file);
      const tablesBefore = await tableNames(engine, source.url);
      try {
        const bad = Buffer.from(original);
        const i = Math.floor(bad.length * 0.5);
        bad[i] = bad[i]! ^ 0x01;
        chmodSync(file, 0o600);
        writeFileSync(file, bad);
        const started = Date.now();
        const r = await cofre([
          'restore',
          '--vault',
          vaultUrl,
          '--backup',
          fullId,
          '--target-url',
          source.url,
          '--key-file',
          keyFile,
          '--table',
          'big',
          '--force',
        ]);
        const ms = Date.now() - started;
        expect(r.code).toBe(3);
        expect(ms).toBeLessThan(30_000);
        const lines = r.stderr.split('\n').filter((l) => l.startsWith('cofre:'));
        expect(lines).toHaveLength(1);
        expect(r.stderr).not.toMatch(/\n\s+at |Unhandled/);
        recordFault({
          engine,
          fault: 'byte flipped (middle)',
          operation: 'table restore (--table --force)',
          outcome: `exit ${r.code}`,
          reason: lines[0]!,
          ms,
          leftovers: 'none (table unchanged, no extra table)',
        });
      } finally {
        writeFileSync(file, original);
      }
      const [count] = await sql(engine, source.url, 'SELECT count(*) AS n FROM big');
      expect(Number(count!.n)).toBe(150_000);
      expect(await tableNames(engine, source.url)).toEqual(tablesBefore);
    }, 90_000);

    it.runIf(engine === 'mysql')(
      'restore --force behind a metadata lock held by another session: ends at --lock-timeout, target unchanged',
      async () => {
        const target = newTarget('fault_mdl');
        await sql(engine, MYSQL_ADMIN_URL, `CREATE DATABASE \`${target.name}\``);
        await sql(engine, target.url, 'CREATE TABLE keep (id INT PRIMARY KEY)');
        await sql(engine, target.url, 'INSERT INTO keep VALUES (1), (2), (3)');
        // A table before the locked one (DROP DATABASE must not drop it and then stop).
        await sql(engine, target.url, 'CREATE TABLE a_first (id INT PRIMARY KEY)');
        const holder = await holdMysql(target.url, 'SELECT * FROM keep');
        const started = Date.now();
        let failed: unknown;
        try {
          failed = await withRun({ lockTimeoutMs: 1500 }, () =>
            restoreBackup({ vault, backupId: fullId, keys, target: target.connection, force: true }),
          ).catch((e: unknown) => e);
        } finally {
          await holder.release();
        }
        const ms = Date.now() - started;
        expect(failed).toBeInstanceOf(Error);
        expect((failed as Error).message).toMatch(
          /^--force: could not drop ".*", nothing was changed: Lock wait timeout exceeded.*another session holds a lock/,
        );
        expect(ms).toBeLessThan(BOUND_MS + 5_000); // the whole artifact is checked before the drop
        expect(await tableNames(engine, target.url)).toEqual(['a_first', 'keep']);
        recordFault({
          engine,
          fault: 'lock held by another session (metadata lock)',
          operation: 'full restore --force',
          outcome: 'exit 1',
          reason: firstLine(failed),
          ms,
          leftovers: 'none (the target unchanged)',
        });
      },
      60_000,
    );

    it('restoring to a URL of the other engine names the backup’s engine (exit 2), nothing made', async () => {
      const other = engine === 'postgres' ? 'mysql' : 'postgres';
      const target = uniqueDatabaseName('fault_engine');
      const r = await cofre([
        'restore',
        '--vault',
        vaultUrl,
        '--backup',
        fullId,
        '--target-url',
        urlFor(other, target),
        '--key-file',
        keyFile,
      ]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(
        new RegExp(
          `^cofre: --target-url: backup ${fullId} is a ${engine} backup, the target URL is ${other} `,
          'm',
        ),
      );
      expect(r.stderr).not.toMatch(/--engine/);
      expect(await databasesLike(other, target)).toEqual([]);
    });

    it('list says "missing" for a backup whose artifact is gone, never "ok"', async () => {
      const vaultDir = path.join(dir, 'missing-artifact');
      const v = openVault(`file://${vaultDir}`);
      const [t] = await runTenantBackup({
        connection: parseDatabaseUrl(engine, tenants.url),
        model: TENANT_MODEL,
        tenants: ['2'],
        vault: v,
        keys,
      });
      if (!t?.ok) throw new Error('tenant backup failed');
      rmSync(path.join(vaultDir, ...t.folder.split('/'), t.manifest.artifacts[0]!.name), { force: true });
      const listed = await cofre(['list', '--vault', `file://${vaultDir}`, '--json']);
      const rows = (JSON.parse(listed.stdout) as { backups: { backupId: string; status: string }[] }).backups;
      expect(rows.find((b) => b.backupId === t.manifest.backupId)?.status).toBe('missing');
      const table = await cofre(['list', '--vault', `file://${vaultDir}`]);
      expect(table.stdout + table.stderr).toMatch(new RegExp(`${t.manifest.backupId}.*missing`));
      expect(table.stdout + table.stderr).not.toMatch(new RegExp(`${t.manifest.backupId}.*\\bok\\b`));
    });
  });
}

/** The first line of a thrown error's message. */
function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
}

/** The session exporting a tenant's rows from `database` (PostgreSQL COPY out, MySQL streamed SELECT). */
async function exportingSession(engine: Engine, database: string): Promise<number | undefined> {
  const rows =
    engine === 'postgres'
      ? await sql(
          engine,
          PG_ADMIN_URL,
          `SELECT pid AS id FROM pg_stat_activity WHERE datname = $1 AND state = 'active' AND query ILIKE 'COPY (%'`,
          [database],
        )
      : await sql(
          engine,
          MYSQL_ADMIN_URL,
          `SELECT ID AS id FROM information_schema.PROCESSLIST WHERE DB = ? AND INFO LIKE 'SELECT%patients%' AND ID <> CONNECTION_ID()`,
          [database],
        );
  return rows.length ? Number(rows[0]!.id) : undefined;
}

/** The tables of the database at `url`, sorted. */
async function tableNames(engine: Engine, url: string): Promise<string[]> {
  const rows =
    engine === 'postgres'
      ? await sql(
          engine,
          url,
          "SELECT relname AS n FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace",
        )
      : await sql(
          engine,
          url,
          'SELECT TABLE_NAME AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()',
        );
  return rows.map((r) => String(r.n)).sort();
}

interface Holder {
  release(): Promise<void>;
}

async function holdPostgres(url: string, statement: string): Promise<Holder> {
  const { Client } = await import('pg');
  const c = new Client({ connectionString: url });
  await c.connect();
  await c.query('BEGIN');
  await c.query(statement);
  return {
    async release() {
      await c.query('ROLLBACK').catch(() => undefined);
      await c.end();
    },
  };
}

async function holdMysql(url: string, statement: string): Promise<Holder> {
  const { createConnection } = await import('mysql2/promise');
  const u = new URL(url);
  const c = await createConnection({
    host: u.hostname,
    port: Number(u.port || 3306),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: decodeURIComponent(u.pathname.slice(1)),
  });
  await c.query('START TRANSACTION');
  await c.query(statement);
  return {
    async release() {
      await c.query('ROLLBACK').catch(() => undefined);
      await c.end();
    },
  };
}
